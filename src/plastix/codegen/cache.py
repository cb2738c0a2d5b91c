"""On-disk cache of generated modules.

Generated source is written once to ``$PLASTIX_CACHE_DIR`` (default ``~/.cache/plastix``) under a name
derived from its hash and imported from there, so Numba's own ``cache=True`` can store the compiled
machine code beside it: a second run of the same model skips both generation and compilation.
``PLASTIX_DUMP_CODE=1`` logs where each generated module lives, for inspection.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("plastix.codegen")


def cache_dir() -> Path:
    d = Path(os.environ.get("PLASTIX_CACHE_DIR") or Path.home() / ".cache" / "plastix")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _versions() -> str:
    import numba

    from .._version import __version__

    return f"plastix {__version__} numba {numba.__version__}"


def load_module(source: str, kind: str):
    """Import ``source`` as a module, written to the cache directory if not already there."""
    digest = hashlib.sha256((_versions() + "\n" + source).encode()).hexdigest()[:20]
    modname = f"plastix_gen_{kind}_{digest}"
    if modname in sys.modules:
        return sys.modules[modname]
    path = cache_dir() / f"{modname}.py"
    if not path.exists():
        # write-then-rename: concurrent processes never import a half-written file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    if os.environ.get("PLASTIX_DUMP_CODE"):
        log.warning("plastix generated %s module: %s", kind, path)
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module
