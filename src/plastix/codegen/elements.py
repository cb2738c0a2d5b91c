"""Per-element kernel bodies shared by the CPU and CUDA emitters.

A body is the code for one neuron or one synapse: load state into locals, call the transformed phase
functions, store what they wrote.  Loops, parallelisation and atomics are the emitters' business; the
``atomic_add`` callback lets the same body accumulate into ``in_syn`` with ``+=`` on the CPU (where
parallel loops are partitioned by target and never race) and with atomics on the GPU.
"""
from __future__ import annotations

import ast
import inspect
from typing import Callable

from ..kernels import rng as rng_mod
from ..kernels import sampling
from .names import NAMES
from .plan import Plan, PopPlan, ProjPlan
from .transform import ScalarFunction


class Names:
    """Collects the global (kernel-argument) names a kernel body refers to."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        self.used.add(name)
        return name


def call(sf: ScalarFunction, mapping: dict, scalars: dict, ret: str | None = None,
         to_post: str | None = None) -> str:
    """One line calling ``sf``; outputs go to ``mapping`` locals, ``ret`` and ``to_post``."""
    args = [mapping[(ns, f)] if ns else scalars[f] for ns, f in sf.inputs]
    outs = []
    for ns, f in sf.outputs:
        if ns:
            outs.append(mapping[(ns, f)])
        elif f == "_return":
            outs.append(ret)
        else:
            outs.append(to_post)
    expr = f"{sf.name}({', '.join(args)})"
    if not outs:
        return expr
    return f"{', '.join(outs)}, = {expr}"


def _typed(stream: int) -> str:
    return f"np.int64({stream})"


def rng_scalars(elem: str, stream: int) -> dict:
    # typed, not a literal: numba compiles a function once per literal value it is called with
    return {"_seed": "seed", "_elem": elem, "_step": "step", "_stream": _typed(stream), "dt": "dt", "t": "t"}


def inline_call(sf: ScalarFunction, mapping: dict, scalars: dict, ret: str | None = None,
                to_post: str | None = None) -> list[str] | None:
    """``sf``'s body expanded in place (locals suffixed with the function name, its ``return`` an
    assignment of the outputs), or None when it returns from inside a block (early return).  CPU kernels
    use it for functions taking arrays: numba reference-counts an array every time it is passed to a
    function or bound to a new name, which per neuron and step costs ~10x a LIF update."""
    fdef = ast.parse(sf.source).body[0]
    top = [i for i, st in enumerate(fdef.body) if isinstance(st, ast.Return)]
    if not top or sum(isinstance(n, ast.Return) for n in ast.walk(fdef)) != len(top):
        return None
    body = fdef.body[: top[0] + 1]  # the first top-level return ends the function
    tag = sf.name
    args = [a.arg for a in fdef.args.args]
    inputs = [mapping[(ns, f)] if ns else scalars[f] for ns, f in sf.inputs]
    # arrays are used under the kernel's own names: an alias would be reference-counted every element
    direct = {a: expr for a, expr, (ns, _) in zip(args, inputs, sf.inputs) if ns == "g"}
    local = set(args) | {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    outs = [mapping[(ns, f)] if ns else (ret if f == "_return" else to_post) for ns, f in sf.outputs]

    class Expand(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in direct:
                node.id = direct[node.id]
            elif node.id in local:
                node.id = f"{node.id}__{tag}"
            return node

    body = [Expand().visit(st) for st in body]
    final = body.pop()
    if final.value is not None:
        target = ast.Tuple([ast.Name(o, ast.Store()) for o in outs], ast.Store())
        body.append(ast.Assign([target], final.value, lineno=0))
    lines = [f"{a}__{tag} = {expr}" for a, expr in zip(args, inputs) if a not in direct]
    return lines + ast.unparse(ast.fix_missing_locations(ast.Module(body, []))).splitlines()


def _model_call(sf, mapping, scalars, ret=None, inline_arrays=False) -> list[str]:
    if inline_arrays and any(ns == "g" for ns, _ in sf.inputs):
        lines = inline_call(sf, mapping, scalars, ret=ret)
        if lines is not None:
            return lines
    return [call(sf, mapping, scalars, ret=ret)]


def neuron_body(plan: Plan, pp: PopPlan, names: Names, i: str = "i", partitioned: set | None = None,
                inline_arrays: bool = False) -> list[str]:
    """Body of the neuron update for neuron ``i``; leaves the spike decision in local ``_spk``.

    ``partitioned`` names projections whose input arrives in per-partition buffers ``qb_accbuf`` (CPU
    parallel kernels): they are added to ``in_syn`` here, in partition order, and cleared."""
    keys, model = pp.keys, pp.pop.model
    # random numbers are keyed by the global neuron id (a partitioned simulation's block starts at elem_offset)
    elem = f"{i} + {pp.pop.elem_offset}" if pp.pop.elem_offset else i
    L = []
    nmap = {}
    for v in model.vars:
        nmap[("n", v)] = f"nv_{v}"
        L.append(f"nv_{v} = {names(keys.var(v))}[{i}]")
    for p in pp.param_names:
        nmap[("p", p)] = names(keys.param(p))
    for e in model.egps:
        nmap[("g", e)] = names(keys.egp(e))
    L.append("i_syn = _T(0.0)")
    stores: list[str] = []
    # postsynaptic models of incoming projections
    for q in plan.incoming(pp):
        qp, psm = q.prefix, q.proj.postsynaptic
        m = {("s", v): f"{qp}psm_{v}" for v in psm.vars}
        m.update({("p", p): names(q.keys.psm_param(p)) for p in q.psm_param_names})
        m.update({("n", v): f"nv_{v}" for v in model.vars})
        for v in psm.vars:
            L.append(f"{qp}psm_{v} = {names(q.keys.psm(v))}[{i}]")
        if partitioned and qp in partitioned:
            acc = names(q.keys.accbuf)
            L += [f"for _c in range({acc}.shape[0]):", f"    {qp}psm_in_syn += {acc}[_c, {i}]",
                  f"    {acc}[_c, {i}] = 0.0"]
            if ("s", "in_syn") not in [(ns, v) for ns, v in q.funcs["apply"].writes]:
                L.append(f"{names(q.keys.in_syn)}[{i}] = {qp}psm_in_syn")
        sc = rng_scalars(elem, q.streams["apply"])
        L.append(call(q.funcs["apply"], m, sc, ret="_cur"))
        L.append("i_syn += _cur")
        for ns, v in q.funcs["apply"].writes:
            L.append(f"{names(q.keys.psm(v))}[{i}] = {qp}psm_{v}")
    # trace dynamics of attached weight-update models
    trace_phases = []
    for q in plan.outgoing(pp):
        trace_phases.append((q, "pre", q.proj.weight_update.pre_vars))
    for q in plan.incoming(pp):
        trace_phases.append((q, "post", q.proj.weight_update.post_vars))
    tmaps = []
    for q, side, tvars in trace_phases:
        if not tvars:
            continue
        qp = q.prefix
        m = {(side, v): f"{qp}{side}_{v}" for v in tvars}
        m.update({("p", p): names(q.keys.param(p)) for p in q.wu_param_names})
        for v in tvars:
            L.append(f"{qp}{side}_{v} = {names(q.keys.trace(side, v))}[{i}]")
        if f"{side}_dynamics" in q.funcs:
            L.append(call(q.funcs[f"{side}_dynamics"], m, rng_scalars(elem, q.streams[f"{side}_dynamics"])))
        tmaps.append((q, side, tvars, m))
        stores += [f"{names(q.keys.trace(side, v))}[{i}] = {qp}{side}_{v}" for v in tvars]
    sc = rng_scalars(elem, 0)
    sc["i_syn"] = "i_syn"
    if "sim" in pp.funcs:
        L += _model_call(pp.funcs["sim"], nmap, dict(sc, _stream=_typed(pp.streams["sim"])),
                         inline_arrays=inline_arrays)
    if "threshold" in pp.funcs:
        L += _model_call(pp.funcs["threshold"], nmap, dict(sc, _stream=_typed(pp.streams["threshold"])), ret="_spk",
                         inline_arrays=inline_arrays)
        L.append("if _spk:")
        L.append("    pass")
        if "reset" in pp.funcs:
            L += indent(_model_call(pp.funcs["reset"], nmap, dict(sc, _stream=_typed(pp.streams["reset"])),
                                    inline_arrays=inline_arrays), 1)
        for q, side, tvars, m in tmaps:
            if f"{side}_spike" in q.funcs:
                L.append("    " + call(q.funcs[f"{side}_spike"], m, rng_scalars(elem, q.streams[f"{side}_spike"])))
    else:
        L.append("_spk = False")
    written = set()
    for ph in pp.funcs.values():
        written |= {f for ns, f in ph.writes}
    stores += [f"{names(keys.var(v))}[{i}] = nv_{v}" for v in model.vars if v in written]
    return L + stores


def synapse_body(q: ProjPlan, phase: str, names: Names, atomic_add: Callable[[str, str, str], str],
                 i: str = "i", k: str = "k", j: str = "j", stride: str = "stride") -> list[str]:
    """Body running ``phase`` on synapse (row ``i``, slot ``k``, target ``j``)."""
    wu = q.proj.weight_update
    sf = q.funcs[phase]
    m = {}
    L = []
    for v in wu.vars:
        m[("s", v)] = f"sv_{v}"
    for ns, v in sf.inputs:
        if ns == "s":
            L.append(f"sv_{v} = {names(q.keys.syn(v))}[{i}, {k}]")
    # the pre / post neurons' own variables (read-only), unless a trace variable has the name
    used = set(sf.inputs)
    pre_n, post_n = NAMES.pop(q.proj.pre), NAMES.pop(q.proj.post)
    for side, idx, traces, neuron_vars, nkeys in (("pre", i, wu.pre_vars, q.proj.pre.model.vars, pre_n),
                                                  ("post", j, wu.post_vars, q.proj.post.model.vars, post_n)):
        for v in set(traces) | set(neuron_vars):
            if (side, v) in used:
                key = q.keys.trace(side, v) if v in traces else nkeys.var(v)
                m[(side, v)] = f"{names(key)}[{idx}]"
    m.update({("p", p): names(q.keys.param(p)) for p in q.wu_param_names})
    off = f" + {q.proj.syn_elem_offset}" if q.proj.syn_elem_offset else ""
    sc = rng_scalars(f"{i} * {stride} + {k}{off}", q.streams[phase])
    L.append(call(sf, m, sc, to_post="_to_post"))
    for ns, v in sf.writes:
        L.append(f"{names(q.keys.syn(v))}[{i}, {k}] = sv_{v}")
    if any(o == ("", "_to_post") for o in sf.outputs):
        L.append(atomic_add(names(q.keys.in_syn), j, "_to_post"))
    return L


def header(backend: str, precision: str) -> list[str]:
    """Imports, the float type and the counter-based RNG, decorated for ``backend``."""
    dev = "@njit(cache=True)" if backend == "cpu" else "@cuda.jit(device=True)"
    L = [
        "# Generated by plastix.codegen; do not edit: regenerated when the model changes.",
        "import math",
        "import numpy as np",
    ]
    L.append("from numba import njit as _numba_njit, prange, get_num_threads" if backend == "cpu"
             else "from numba import cuda")
    if backend == "cpu":
        L += ["from plastix.kernels.columns import fill_columns as _fill_cols",
              "from plastix.kernels.assign import fill as _fill_rows",
              "from plastix.kernels.prefetch import prefetch", "",
              "",
              "def njit(*args, **kwargs):",
              "    # numpy's error model: no ZeroDivisionError branches in every division and modulo, which",
              "    # otherwise block vectorisation; a division by zero gives inf / nan, caught by check_finite",
              "    kwargs.setdefault('error_model', 'numpy')",
              "    return _numba_njit(*args, **kwargs)", ""]
    L += [f"_T = np.{precision}", "_sqrt = math.sqrt", "_log = math.log", "_cos = math.cos",
          "exp = math.exp", "log = math.log", "sqrt = math.sqrt", "tanh = math.tanh", "floor = math.floor",
          "ceil = math.ceil", ""]
    for c in rng_mod.KERNEL_CONSTANTS:
        val = getattr(rng_mod, c)
        L.append(f"{c} = np.uint64({int(val)})" if hasattr(val, "dtype") else f"{c} = {val!r}")
    L.append("")
    if backend == "cpu":  # compiled once per installation, loaded from numba's cache by every model
        from ..kernels.cpu_helpers import NAMES as helpers

        L.append(f"from plastix.kernels.cpu_helpers import {', '.join(helpers)}")
    else:  # device functions compile with their kernels
        for fname in rng_mod.KERNEL_FUNCTIONS + sampling.KERNEL_FUNCTIONS:
            L.append(dev)
            L.append(inspect.getsource(getattr(rng_mod if fname in rng_mod.KERNEL_FUNCTIONS else sampling, fname)))
    L += ["_rand_uniform = uniform", "_rand_normal = normal", "", dev, "def clip(x, lo, hi):",
          "    return min(max(x, lo), hi)", ""]
    return L


def scalar_functions(plan: Plan, backend: str) -> list[str]:
    """The models' per-element functions (sim, threshold, on_pre, update stages, ...).  On the CPU numba
    inlines them into their kernels before type inference (``inline="always"``) instead of compiling each
    as its own function (topomap's model: 26 functions compiled instead of 45).  The machine code runs as
    fast (LLVM inlined them anyway); the compile time fell by about a tenth, within this machine's noise
    (BENCHMARKS.md, "Compilation", session 15)."""
    L = []
    deco = '@njit(cache=True, inline="always")' if backend == "cpu" else "@cuda.jit(device=True)"
    for group in list(plan.pops) + list(plan.projs):
        for sf in group.funcs.values():
            L += [deco, sf.source]
    for c in plan.customs:
        for sf in c.stages:
            L += [deco, sf.source]
    return L


def indent(lines: list[str], n: int) -> list[str]:
    pad = " " * (4 * n)
    return [pad + line for line in lines]
