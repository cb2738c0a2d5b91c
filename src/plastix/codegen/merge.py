"""One compiled function per distinct piece of code in a generated module.

Emitters write one kernel per phase and group: two projections with the same synapse model (a network's
feedforward and lateral STDP, its rewiring rules, a stack of layers of one kind) get kernels that differ
only in the names of their arguments (``q0_s_w`` / ``q1_s_w``) and of the per-group functions they call.
Numba compiles each of them anew, and compilation is most of a cold run.  :func:`merge_identical` keeps the
first definition of each distinct function and binds the other names to it (``q1_propagate =
q0_propagate``): numba then compiles the code once per argument-type signature, and arrays of other
dtypes or dimensions still get their own specialisation.

Two functions are the same code when their decorators and bodies are equal after renaming parameters by
position and replacing each call of a merged function by its representative: alpha-equivalence, checked on
the syntax tree (comments and layout do not count).  Anything else that names a group (a module global, a
literal) stays in the comparison, so functions that differ in it stay apart.
"""
from __future__ import annotations

import ast
import copy

__all__ = ["merge_identical"]


def _key(fn: ast.FunctionDef, representative: dict[str, str]) -> str | None:
    """The function's code with positional parameter names and merged callees resolved, or None when
    it has a signature this does not compare (defaults, keyword-only or variadic parameters)."""
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
        return None
    params = {p.arg: f"_p{i}" for i, p in enumerate(a.args)}
    fn = copy.deepcopy(fn)
    fn.name = "_"
    for p in fn.args.args:
        p.arg = params[p.arg]
        p.annotation = None

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in params:
                node.id = params[node.id]
            elif node.id in representative:
                node.id = representative[node.id]
            return node

    return ast.dump(Rename().visit(fn), include_attributes=False)


def merge_identical(source: str) -> str:
    """``source`` with every decorated top-level function that repeats an earlier one's code replaced by
    ``name = first_name``.  Callers and Python code reach both names; the module compiles each distinct
    function once.  Source without duplicates comes back unchanged."""
    tree = ast.parse(source)
    representative: dict[str, str] = {}
    first_of: dict[str, str] = {}
    replaced: list[tuple[int, int, str]] = []  # (first line, last line, replacement), 1-based inclusive
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.decorator_list:
            continue
        key = _key(node, representative)
        rep = first_of.setdefault(key, node.name) if key is not None else node.name
        representative[node.name] = rep
        if rep != node.name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            replaced.append((start, node.end_lineno, f"{node.name} = {rep}  # the same code"))
    if not replaced:
        return source
    lines = source.split("\n")
    for start, stop, text in reversed(replaced):
        lines[start - 1:stop] = [text]
    return "\n".join(lines)
