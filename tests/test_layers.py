"""The import graph is one straight stack: every import between plastix packages points down the layers
below (docs/architecture.md draws them), ``kernels/`` and ``model/`` import nothing of plastix above them,
library code never imports the user-facing faces, and every public ``__all__`` imports."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import plastix

ROOT = Path(plastix.__file__).parent

#: Layer of each top-level package or module: imports may only go to a strictly lower layer (or stay
#: inside the same package).  The faces (package __init__, connect, init, neurons, ...) sit on top.
LAYERS = {
    "errors": 0, "_version": 0, "compile_clock": 0,
    "compile_gc": 1, "kernels": 1, "parallel": 1, "model": 1, "analysis": 1, "datasets": 1,
    "codegen": 2, "structural": 2,
    "backends": 3,
    "runtime": 4,
    "conv": 5,
    "learning": 6, "topomap": 6, "bench": 6,
    "nir": 7,
    "cli": 8,
}
FACES = {"__init__", "connect", "init", "neurons", "postsynaptic", "weight_update"}
#: Leaves may import only themselves and these.
LEAF_ALLOWED = {"kernels": set(), "model": {"errors"}}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path):
    """(line, imported plastix top-level name) of every import in ``path``, lazy ones included."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT)
    pkg_parts = list(rel.parts[:-1])  # the module's package inside plastix
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)] if node.level > 1 else pkg_parts
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from . import x" at the package root (or "from .. import x")
                    for alias in node.names:
                        yield node.lineno, alias.name
                    continue
                yield node.lineno, target[0]
            elif node.module and node.module.split(".")[0] == "plastix":
                parts = node.module.split(".")
                if len(parts) == 1:
                    for alias in node.names:
                        yield node.lineno, alias.name
                else:
                    yield node.lineno, parts[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "plastix":
                    yield node.lineno, parts[1] if len(parts) > 1 else "__init__"


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    names = {_package_of(p) for p in _modules()}
    assert names - set(LAYERS) - FACES == set()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    here = _package_of(path)
    if here in FACES:
        return
    bad = []
    for line, target in _imports(path):
        if target == here:
            continue
        if target not in LAYERS and target not in FACES:  # a name of the package face (e.g. __version__)
            target = "__init__"
        if target in FACES:
            bad.append(f"line {line}: library code imports the user face plastix.{target}")
        elif here in LEAF_ALLOWED and target not in LEAF_ALLOWED[here]:
            bad.append(f"line {line}: leaf package {here} imports plastix.{target}")
        elif LAYERS[target] >= LAYERS[here]:
            bad.append(f"line {line}: {here} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[target]})")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


PUBLIC = ["plastix", "plastix.connect", "plastix.init", "plastix.neurons", "plastix.postsynaptic",
          "plastix.weight_update", "plastix.structural", "plastix.datasets", "plastix.topomap",
          "plastix.topomap.analysis", "plastix.analysis", "plastix.runtime", "plastix.backends",
          "plastix.model.connectivity", "plastix.kernels", "plastix.nir", "plastix.conv"]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_all_imports(name):
    mod = importlib.import_module(name)
    for attr in getattr(mod, "__all__", []):
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r}, which it does not define"
