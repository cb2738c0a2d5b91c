"""Whole-population custom updates: a Python function over numpy arrays (``u.<field>`` are arrays over
neurons, or a dense projection's [pre, post] matrix, or scalars for global vars) -> the body of a
numba-compiled loop over batch elements and tape steps.

``u.x`` becomes the local array ``u_x`` (bound by the kernel to the element's slice); ``u.x = expr``
writes every element (``u_x[:] = expr``), ``u.x[i] = ...`` / ``u.x += ...`` write in place; ``p.name``
is a parameter.  Stages (a tuple of functions) run one after another in one scope.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from ..errors import ModelError
from .transform import parse_function

_ALLOWED = {"np", "math", "min", "max", "abs", "int", "float", "bool", "range", "len", "round", "True", "False",
            "exp", "log", "sqrt", "tanh"}
_ARGS = ("u", "p", "dt", "t", "row", "rows")


@dataclass
class ArrayCode:
    body: list[str]
    read: set[str]      # u fields read
    written: set[str]   # u fields written
    params: set[str]    # p names used


def array_code(fns, fields: dict, params: set, scalars: set, where: str) -> ArrayCode:
    """The combined body of ``fns`` with ``u.<field>`` -> ``u_<field>`` and ``p.<name>`` -> ``param_<name>``;
    ``scalars`` are the fields bound to scalars (read-only)."""
    read: set[str] = set()
    written: set[str] = set()
    used_params: set[str] = set()
    lines: list[str] = []
    for k, fn in enumerate(fns):
        stage = f"{where}, stage {k}"
        fdef = parse_function(fn, stage)
        args = [a.arg for a in fdef.args.args]
        for a in args:
            if a not in _ARGS:
                raise ModelError(f"{stage}: unknown argument {a!r}; per='population' functions take {list(_ARGS)}")
        local: set[str] = set()

        def err(node, msg, stage=stage):
            raise ModelError(f"{stage}: {msg} (line {getattr(node, 'lineno', '?')} of the function)")

        class Rewrite(ast.NodeTransformer):
            def visit_Assign(self, node):
                node.value = self.visit(node.value)
                targets = []
                for tgt in node.targets:
                    if _is_field(tgt):
                        name = self._field(tgt, store=True)
                        targets.append(ast.Subscript(ast.Name(f"u_{name}", ast.Load()), ast.Slice(), ast.Store()))
                    else:
                        targets.append(self.visit(tgt))
                node.targets = targets
                return node

            def visit_AugAssign(self, node):
                if _is_field(node.target):
                    name = self._field(node.target, store=True)
                    node.target = ast.Subscript(ast.Name(f"u_{name}", ast.Load()), ast.Slice(), ast.Store())
                    node.value = self.visit(node.value)
                    return node
                return self.generic_visit(node)

            def visit_Subscript(self, node):
                if isinstance(node.ctx, ast.Store) and _is_field(node.value):
                    self._field(node.value, store=True)
                return self.generic_visit(node)

            def _field(self, node, store=False):
                name = node.attr
                if name not in fields:
                    err(node, f"unknown name u.{name}; fields are {sorted(fields)}")
                if store:
                    if name in scalars:
                        err(node, f"u.{name} is a global var: read-only in update code")
                    written.add(name)
                else:
                    read.add(name)
                return name

            def visit_Attribute(self, node):
                if isinstance(node.value, ast.Name) and node.value.id == "u" and "u" in args:
                    return ast.copy_location(ast.Name(f"u_{self._field(node, isinstance(node.ctx, ast.Store))}",
                                                      ast.Load()), node)
                if isinstance(node.value, ast.Name) and node.value.id == "p" and "p" in args:
                    if isinstance(node.ctx, ast.Store):
                        err(node, f"p.{node.attr} is read-only")
                    if node.attr not in params:
                        err(node, f"unknown name p.{node.attr}; params are {sorted(params)}")
                    used_params.add(node.attr)
                    return ast.copy_location(ast.Name(f"param_{node.attr}", ast.Load()), node)
                return self.generic_visit(node)

            def visit_Name(self, node):
                if isinstance(node.ctx, ast.Store):
                    if node.id in _ARGS or node.id.startswith("_") or node.id.startswith(("u_", "param_")):
                        err(node, f"cannot assign to {node.id!r}")
                    local.add(node.id)
                elif node.id in ("u", "p"):
                    err(node, f"{node.id!r} must be used through its fields")
                elif node.id not in local and node.id not in _ALLOWED and node.id not in ("dt", "t", "row", "rows"):
                    err(node, f"unknown name {node.id!r}")
                return node

            def generic_visit(self, node):
                if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.With,
                                     ast.Try, ast.Import, ast.ImportFrom, ast.Yield, ast.Return)):
                    err(node, f"{type(node).__name__} is not supported in a per='population' update")
                return super().generic_visit(node)

        body = [Rewrite().visit(st) for st in fdef.body]
        lines += ast.unparse(ast.fix_missing_locations(ast.Module(body, []))).splitlines()
    return ArrayCode(lines or ["pass"], read, written, used_params)


def _is_field(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "u"
