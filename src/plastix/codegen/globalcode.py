"""Global phase of a connectivity update: a Python ``global_update(glob, rows, p, rng, dt, t)`` written
with whole-array numpy operations -> a function over the state arrays that ``numba.njit(parallel=True)``
compiles (array expressions become multi-threaded loops), or, in ``global_mode="python"``, a call of the
plain function on numpy views.

``rows.<name>`` are arrays over the rows (own row vars, row_var_refs, ``rows.length``), ``rows.count`` /
``rows.capacity`` / ``rows.parts`` scalars (``parts``: 1, or the ranks of a partitioned simulation, whose
global phases see every rank's part of every row), ``glob.<name>`` the model's global vars (scalars, stored
as 1-element arrays), ``p.<name>`` params, ``rng.uniform(n)`` / ``rng.normal(n)`` arrays of counter-based
random numbers.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from ..errors import ModelError
from .transform import parse_function

_ALLOWED = {"np", "math", "min", "max", "abs", "int", "float", "bool", "range", "len", "round", "True", "False"}
_ARGS = ("glob", "rows", "p", "rng", "dt", "t")


@dataclass
class GlobalKeys:
    rows: dict[str, str]  # rows.<name> -> state key (row vars, row_var_refs)
    rowlen: str
    ind: str
    glob: dict[str, str]  # glob.<name> -> state key (1-element arrays)
    params: dict[str, str]
    #: rows.parts: 1, or a partitioned simulation's ranks (rows.count = parts x presynaptic neurons, rank-major)
    parts: int = 1
    #: the state scalar holding the stream id of rng.* (an argument: updates of the same code share one function)
    stream: str = ""


@dataclass
class GlobalCode:
    name: str
    source: str
    args: list[str]  # after (seed, step, t, dt)
    written: list[str]  # state keys the function may write


def global_code(fn, keys: GlobalKeys, name: str, where: str) -> GlobalCode:
    """``fn`` as the source of function ``name`` over the state arrays (draws keyed by ``keys.stream``)."""
    fdef = parse_function(fn, where)
    args = [a.arg for a in fdef.args.args]
    for a in args:
        if a not in _ARGS:
            raise ModelError(f"{where}: unknown argument {a!r}; global_update offers {list(_ARGS)}")
    used: set[str] = set()
    written: set[str] = set()
    local: set[str] = set()
    draws = [0]

    def err(node, msg):
        raise ModelError(f"{where}: {msg} (line {getattr(node, 'lineno', '?')} of the function)")

    class Rewrite(ast.NodeTransformer):
        def visit_Attribute(self, node):
            if isinstance(node.value, ast.Name) and node.value.id in ("rows", "glob", "p") and node.value.id in args:
                base, attr, store = node.value.id, node.attr, isinstance(node.ctx, ast.Store)
                if base == "rows":
                    if attr in ("count", "capacity"):
                        if store:
                            err(node, f"rows.{attr} is read-only")
                        used.add(keys.ind)
                        axis = 0 if attr == "count" else 1
                        return ast.copy_location(ast.parse(f"{keys.ind}.shape[{axis}]", mode="eval").body, node)
                    if attr == "parts":
                        if store:
                            err(node, "rows.parts is read-only")
                        return ast.copy_location(ast.Constant(int(keys.parts)), node)
                    if attr == "length":
                        if store:
                            err(node, "rows.length is read-only: rows change only through the row phase")
                        used.add(keys.rowlen)
                        return ast.copy_location(ast.Name(keys.rowlen, ast.Load()), node)
                    if attr not in keys.rows:
                        err(node, f"unknown name rows.{attr}; rows has length, count, capacity, parts and "
                                      f"{sorted(keys.rows)}")
                    used.add(keys.rows[attr])
                    if store:
                        written.add(keys.rows[attr])
                        # rows.x = expr assigns every element (the array itself is state)
                        return ast.copy_location(ast.Subscript(ast.Name(keys.rows[attr], ast.Load()),
                                                               ast.Slice(), ast.Store()), node)
                    return ast.copy_location(ast.Name(keys.rows[attr], ast.Load()), node)
                if base == "glob":
                    if attr not in keys.glob:
                        err(node, f"unknown name glob.{attr}; global vars are {sorted(keys.glob)}")
                    used.add(keys.glob[attr])
                    if store:
                        written.add(keys.glob[attr])
                    return ast.copy_location(ast.Subscript(ast.Name(keys.glob[attr], ast.Load()), ast.Constant(0),
                                                           node.ctx), node)
                if store:
                    err(node, f"p.{attr} is read-only")
                if attr not in keys.params:
                    err(node, f"unknown name p.{attr}; params are {sorted(keys.params)}")
                used.add(keys.params[attr])
                return ast.copy_location(ast.Name(keys.params[attr], ast.Load()), node)
            return self.generic_visit(node)

        def visit_Assign(self, node):
            t = node.targets[0] if len(node.targets) == 1 else None
            if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "rows"
                    and "rows" in args and t.attr in keys.rows):
                # rows.x = expr: every element, as an element loop (kernels.assign.fill)
                target = self.visit(t)   # checks and marks the row var written
                call = ast.Call(ast.Name("_fill_rows", ast.Load()), [ast.Name(target.value.id, ast.Load()),
                                                                      self.visit(node.value)], [])
                return ast.copy_location(ast.Expr(call), node)
            return self.generic_visit(node)

        def visit_Call(self, node):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "rng":
                if f.attr not in ("uniform", "normal") or len(node.args) != 1 or node.keywords:
                    err(node, "rng offers uniform(n) and normal(n): arrays of n counter-based random numbers")
                n = self.visit(node.args[0])
                draws[0] += 1
                used.add(keys.stream)
                # _gdraw counts the calls at run time, so draws inside loops differ per iteration
                return ast.copy_location(ast.parse(
                    f"_{f.attr}_array(seed, step, np.uint64({keys.stream}), _gdraw, {ast.unparse(n)})",
                    mode="eval").body, node)
            return self.generic_visit(node)

        def visit_Name(self, node):
            if isinstance(node.ctx, ast.Store):
                if node.id in _ARGS or node.id.startswith("_"):
                    err(node, f"cannot assign to {node.id!r}")
                local.add(node.id)
            elif node.id in ("rows", "glob", "p", "rng"):
                err(node, f"{node.id!r} must be used through its fields")
            elif node.id not in local and node.id not in _ALLOWED and node.id not in ("dt", "t"):
                err(node, f"unknown name {node.id!r}")
            return node

        def generic_visit(self, node):
            if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.With,
                                 ast.Try, ast.Import, ast.ImportFrom, ast.Yield)):
                err(node, f"{type(node).__name__} is not supported in global_update")
            return super().generic_visit(node)

    body = [Rewrite().visit(st) for st in fdef.body]
    if draws[0]:
        body.insert(0, ast.parse("_gdraw = np.zeros(1, np.int64)").body[0])
    if any(isinstance(n, ast.Return) and n.value is not None for st in body for n in ast.walk(st)):
        raise ModelError(f"{where}: global_update must not return a value; write glob.<name> or rows.<name>")
    body.append(ast.Return(None))
    arg_names = sorted(used)
    new = ast.FunctionDef(name=name, args=ast.arguments(
        posonlyargs=[], args=[ast.arg(a) for a in ["seed", "step", "t", "dt"] + arg_names], vararg=None,
        kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]), body=body, decorator_list=[], returns=None,
        type_params=[])
    source = f"# {where}, global phase\n" + ast.unparse(ast.fix_missing_locations(ast.Module([new], []))) + "\n"
    return GlobalCode(name, source, arg_names, sorted(written))


def array_rng_source() -> str:
    """Helpers drawing arrays of counter-based numbers (element index = position in the array)."""
    return "\n".join([
        "@njit(cache=True)",
        "def _uniform_array(seed, step, stream, counter, n):",
        "    draw = counter[0]",
        "    counter[0] += 1",
        "    out = np.empty(n, np.float64)",
        "    for e in range(n):",
        "        out[e] = uniform(seed, e, step, draw, stream)",
        "    return out",
        "",
        "@njit(cache=True)",
        "def _normal_array(seed, step, stream, counter, n):",
        "    draw = counter[0]",
        "    counter[0] += 1",
        "    out = np.empty(n, np.float64)",
        "    for e in range(n):",
        "        out[e] = normal(seed, e, step, draw, stream)",
        "    return out",
        "",
    ])
