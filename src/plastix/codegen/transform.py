"""Python phase function -> plain scalar function source that Numba can compile for CPU and CUDA.

A model's phase function reaches state through namespaces (``n.v``, ``s.w``, ``pre.x``); here each
namespace field becomes a scalar argument (``n_v``), every written field is returned, float literals are
cast to the network's float type (so float32 code stays float32), random draws (``rng.uniform()``) are
hoisted into counter-based Philox calls, and ``add_to_post(x)`` becomes an accumulator that is returned.
Anything the kernels cannot honour (unknown names, writes to read-only state) is rejected here with a
:class:`~plastix.errors.ModelError` that names the model, the phase and the offending name.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from numbers import Number
from typing import Callable

from ..errors import ModelError
from ..model.specs import PHASES

#: Names a phase function may use without defining them.
ALLOWED_GLOBALS = {
    "min", "max", "abs", "range", "int", "float", "bool", "round", "len",
    "math", "exp", "log", "sqrt", "tanh", "floor", "ceil", "clip", "True", "False",
}
_RNG_METHODS = ("uniform", "normal")


@dataclass(frozen=True)
class Field:
    """A namespace field visible to a phase: ``kind`` is "scalar", "int" or "array"."""

    kind: str


@dataclass(frozen=True)
class ScalarFunction:
    """Result of transforming one phase function."""

    name: str
    source: str
    inputs: tuple[tuple[str, str], ...]  # (namespace or "", field / scalar name) in argument order
    outputs: tuple[tuple[str, str], ...]  # returned, in order; ("", "_return") / ("", "_to_post") special
    uses_rng: bool

    @property
    def writes(self) -> tuple[tuple[str, str], ...]:
        return tuple(o for o in self.outputs if o[0])


class _Rewriter(ast.NodeTransformer):
    def __init__(self, where: str, namespaces: dict, writable: set, scalars: set, phase, fn_globals: dict):
        self.where = where
        self.namespaces = namespaces  # ns name -> {field: Field}
        self.writable = writable
        self.scalars = scalars
        self.phase = phase
        self.fn_globals = fn_globals
        self.reads: set[tuple[str, str]] = set()
        self.writes: set[tuple[str, str]] = set()
        self.used_scalars: set[str] = set()
        self.locals: set[str] = set()
        self.returns: list[ast.Return] = []
        self.used_add_to_post = False

    # -- helpers ---------------------------------------------------------------------------------------
    def _err(self, node, msg):
        line = getattr(node, "lineno", None)
        raise ModelError(f"{self.where}: {msg}" + (f" (line {line} of the function)" if line else ""))

    def _field_kind(self, node) -> str | None:
        if isinstance(node, ast.Name) and "_" in node.id:
            for ns, fields in self.namespaces.items():
                if node.id.startswith(ns + "_") and node.id[len(ns) + 1:] in fields:
                    return fields[node.id[len(ns) + 1:]].kind
        return None

    def _floaty(self, node) -> bool:
        """Conservative: does this (already rewritten) expression certainly have float type?"""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "_T":
                return True
            if isinstance(sub, ast.Name):
                if self._field_kind(sub) == "scalar" or sub.id in ("dt", "t", "i_syn"):
                    return True
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div):
                return True
        return False

    @staticmethod
    def _cast(node):
        return ast.copy_location(ast.Call(func=ast.Name("_T", ast.Load()), args=[node], keywords=[]), node)

    # -- visitors --------------------------------------------------------------------------------------
    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.namespaces:
            ns, fld = node.value.id, node.attr
            fields = self.namespaces[ns]
            if fld not in fields:
                self._err(node, f"unknown name {ns}.{fld}; {ns} has {sorted(fields) or 'nothing'}")
            if isinstance(node.ctx, ast.Store):
                if ns not in self.writable:
                    self._err(node, f"{ns}.{fld} is read-only here (only {sorted(self.writable) or 'nothing'} "
                                    f"may be written in this phase)")
                if fields[fld].kind == "array":
                    self._err(node, f"{ns}.{fld} is an extra global array and cannot be assigned")
                self.writes.add((ns, fld))
            else:
                self.reads.add((ns, fld))
            return ast.copy_location(ast.Name(f"{ns}_{fld}", node.ctx), node)
        if isinstance(node.value, ast.Name) and node.value.id == "rng":
            self._err(node, f"rng.{node.attr} must be called, e.g. rng.uniform()")
        return self.generic_visit(node)

    def visit_Subscript(self, node):
        # a store into an extra global array element is as forbidden as assigning the array
        if isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Attribute):
            v = node.value
            if isinstance(v.value, ast.Name) and v.value.id in self.namespaces:
                self._err(node, f"{v.value.id}.{v.attr} is read-only")
        return self.generic_visit(node)

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Attribute) and isinstance(node.target.value, ast.Name) \
                and node.target.value.id in self.namespaces:
            load = ast.Attribute(node.target.value, node.target.attr, ast.Load())
            self.visit_Attribute(ast.copy_location(load, node))  # counts the read
        return self.generic_visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            if node.id in self.namespaces or node.id in self.scalars or node.id == "rng":
                self._err(node, f"cannot assign to {node.id!r}; assign to its fields instead")
            if node.id.startswith("_") and node.id != "_":
                self._err(node, f"local names must not start with '_' ({node.id!r})")
            self.locals.add(node.id)
            return node
        if node.id in self.scalars:
            self.used_scalars.add(node.id)
            return node
        if node.id in self.namespaces:
            self._err(node, f"{node.id!r} must be used through its fields ({node.id}.name)")
        if node.id in self.locals or node.id in ALLOWED_GLOBALS:
            return node
        val = self.fn_globals.get(node.id, None)
        if isinstance(val, Number) and not isinstance(val, bool):
            return self.visit(ast.copy_location(ast.Constant(val), node))
        self._err(node, f"unknown name {node.id!r}; use params (p.name) for constants")

    def visit_Constant(self, node):
        if isinstance(node.value, float):
            return self._cast(node)
        return node

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        # ints next to float expressions are cast too, so float32 arithmetic stays float32
        for side in ("left", "right"):
            other = node.right if side == "left" else node.left
            val = getattr(node, side)
            if isinstance(val, ast.Constant) and type(val.value) is int and self._floaty(other):
                setattr(node, side, self._cast(val))
        return node

    def visit_Expr(self, node):
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "add_to_post":
            if not self.phase.add_to_post:
                self._err(node, "add_to_post() is only available in on_pre and dynamics code")
            if len(call.args) != 1 or call.keywords:
                self._err(node, "add_to_post takes exactly one argument")
            self.used_add_to_post = True
            value = self.visit(call.args[0])
            return ast.copy_location(ast.AugAssign(ast.Name("_to_post", ast.Store()), ast.Add(), value), node)
        return self.generic_visit(node)

    def visit_Return(self, node):
        node = self.generic_visit(node)
        if node.value is not None and self.phase.returns is None:
            self._err(node, "this phase must not return a value")
        self.returns.append(node)
        return node

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "rng":
            if node.func.attr not in _RNG_METHODS:
                self._err(node, f"rng has {_RNG_METHODS}, not {node.func.attr!r}")
            if "rng" not in self.scalars:
                self._err(node, "add 'rng' to the function's arguments to draw random numbers")
            if node.args or node.keywords:
                self._err(node, f"rng.{node.func.attr}() takes no arguments; scale the result instead")
            return node  # hoisted later
        if isinstance(node.func, ast.Name) and node.func.id == "add_to_post":
            self._err(node, "add_to_post(x) must be a statement of its own")
        return self.generic_visit(node)

    def generic_visit(self, node):
        if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal,
                             ast.With, ast.Try, ast.Yield, ast.Import, ast.ImportFrom)):
            self._err(node, f"{type(node).__name__} is not supported in model code")
        return super().generic_visit(node)


def _is_rng_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "rng")


class _RngHoister:
    """Moves every rng.<method>() of a statement into assignments just before it, each followed by a
    counter increment, so each draw gets its own Philox counter value."""

    def __init__(self, where):
        self.where = where
        self.n = 0
        self.used = False

    def _draw(self, method):
        name = f"_r{self.n}"
        self.n += 1
        self.used = True
        call = ast.parse(f"{name} = _rand_{method}(_seed, _elem, _step, _rc, _stream)\n_rc += 1").body
        return name, call

    def _replace(self, node, pre):
        class Sub(ast.NodeTransformer):
            def visit_Call(s, node):
                s.generic_visit(node)
                if _is_rng_call(node):
                    name, stmts = self._draw(node.func.attr)
                    pre.extend(stmts)
                    return ast.Name(name, ast.Load())
                return node

        return Sub().visit(node)

    def body(self, stmts):
        out = []
        for st in stmts:
            pre: list = []
            if isinstance(st, ast.If):
                st.test = self._replace(st.test, pre)
                st.body, st.orelse = self.body(st.body), self.body(st.orelse)
            elif isinstance(st, ast.For):
                st.iter = self._replace(st.iter, pre)
                st.body, st.orelse = self.body(st.body), self.body(st.orelse)
            elif isinstance(st, ast.While):
                if any(_is_rng_call(n) for n in ast.walk(st.test)):
                    raise ModelError(f"{self.where}: random draws in a while condition are not supported; "
                                     "draw into a local variable inside the loop")
                st.body, st.orelse = self.body(st.body), self.body(st.orelse)
            elif any(_is_rng_call(n) for n in ast.walk(st)):
                st = self._replace(st, pre)
            out.extend(pre)
            out.append(st)
        return out


def parse_function(fn: Callable, where: str) -> ast.FunctionDef:
    """The ``def`` of a model function, parsed from its source (clear errors for lambdas and for
    functions without readable source, e.g. typed into a bare interpreter)."""
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise ModelError(f"{where}: cannot read the source of {fn!r} ({e}); define it with def in a file") from e
    fdefs = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)]
    if not fdefs:
        raise ModelError(f"{where}: model code must be a function defined with def, not a lambda")
    return fdefs[0]


def transform(fn: Callable, phase_name: str, name: str, where: str,
              namespaces: dict[str, dict[str, Field]]) -> ScalarFunction:
    """Transform ``fn`` (a phase function) into a scalar function called ``name``.

    ``namespaces`` maps every namespace argument the phase offers to its fields; ``where`` prefixes
    error messages (e.g. "neuron model 'lif', sim").
    """
    phase = PHASES[phase_name]
    fdef = parse_function(fn, where)
    allowed_args = set(phase.namespaces) | set(phase.scalars) | ({"rng"} if phase.rng else set())
    arg_names = [a.arg for a in fdef.args.args]
    if fdef.args.vararg or fdef.args.kwarg or fdef.args.kwonlyargs or fdef.args.defaults:
        raise ModelError(f"{where}: use plain positional argument names only, from {sorted(allowed_args)}")
    for a in arg_names:
        if a not in allowed_args:
            raise ModelError(f"{where}: unknown argument {a!r}; this phase offers {sorted(allowed_args)}")
    ns_in_use = {a: namespaces[a] for a in arg_names if a in phase.namespaces}
    writable = {a for a in ns_in_use if phase.namespaces[a][1]}
    scalars = {a for a in arg_names if a in phase.scalars or a == "rng"}
    fn_globals = dict(getattr(fn, "__globals__", {}))
    if fn.__closure__:
        fn_globals.update({n: c.cell_contents for n, c in zip(fn.__code__.co_freevars, fn.__closure__)})
    rw = _Rewriter(where, ns_in_use, writable, scalars, phase, fn_globals)
    body = [rw.visit(st) for st in fdef.body]
    hoister = _RngHoister(where)
    body = hoister.body(body)

    writes = sorted(rw.writes)
    outputs: list[tuple[str, str]] = []
    if phase.returns:
        outputs.append(("", "_return"))
    outputs += writes
    if rw.used_add_to_post:
        outputs.append(("", "_to_post"))
    write_exprs = [f"{ns}_{f}" for ns, f in writes] + (["_to_post"] if rw.used_add_to_post else [])

    def ret_node(value):
        elts = ([value] if phase.returns else []) + [ast.Name(n, ast.Load()) for n in write_exprs]
        if not elts:
            return ast.Return(value=None)
        return ast.Return(value=ast.Tuple(elts=elts, ctx=ast.Load()))

    for r in rw.returns:
        if phase.returns and r.value is None:
            raise ModelError(f"{where}: must return a value")
        new = ret_node(r.value)
        r.value = new.value
    default = ast.parse("False" if phase.returns == "bool" else "_T(0.0)", mode="eval").body
    body.append(ret_node(default))

    inputs = sorted(rw.reads | rw.writes)
    arg_list = [f"{ns}_{f}" for ns, f in inputs] + sorted(rw.used_scalars - {"rng"})
    if hoister.used:
        arg_list += ["_seed", "_elem", "_step", "_stream"]
        body.insert(0, ast.parse("_rc = np.int64(0)").body[0])  # typed: a literal 0 would specialise the draw
    if rw.used_add_to_post:
        body.insert(0, ast.parse("_to_post = _T(0.0)").body[0])
    new_def = ast.FunctionDef(
        name=name,
        args=ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in arg_list], vararg=None, kwonlyargs=[],
                           kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None, type_params=[],
    )
    module = ast.fix_missing_locations(ast.Module(body=[new_def], type_ignores=[]))
    source = f"# {where}\n" + ast.unparse(module) + "\n"
    in_tuple = tuple(inputs) + tuple(("", s) for s in sorted(rw.used_scalars - {"rng"}))
    if hoister.used:
        in_tuple += (("", "_seed"), ("", "_elem"), ("", "_step"), ("", "_stream"))
    return ScalarFunction(name, source, in_tuple, tuple(outputs), hoister.used)
