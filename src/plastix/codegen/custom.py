"""Kernels of custom updates, CPU and CUDA from one per-element body.

A custom update visits every element of its target (a neuron, or an existing synapse ``(i, k)``).  Per
element the body loads the fields the stage functions read into locals ``u_<name>``, calls the stages in
order and stores what they wrote.  When the update runs once per batch element (it touches per-element
variables of a batched simulation), the body loops over the batch elements in order inside the element:
per-element fields are loaded and stored at ``[b, ...]``, reductions accumulate in a local (sum, mean,
max) and are stored once, after the last element -- a fixed order, so the result does not depend on the
thread count or the GPU's scheduling.  Elements never share state, so the element loop needs no atomics.
"""
from __future__ import annotations

from ..model.specs import VarAccess
from .elements import Names, call, indent, rng_scalars
from .plan import CustomPlan, Plan

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


def _element_body(c: CustomPlan, names: Names, idx: str, elem: str) -> list[str]:
    """Body for the element at index expression ``idx`` (``i`` or ``i, k``; ``elem`` its flat id)."""
    read = {f for sf in c.stages for ns, f in sf.inputs if ns == "u"}
    written = c.written
    touched = read | written
    fields = {n: f for n, f in c.fields.items() if n in touched}
    m = {("u", n): f"u_{n}" for n in c.fields}
    m.update({("p", p): names(c.keys.param(p)) for p in c.param_names})

    def load(n, f, at):
        if f.kind == "temp" or f.access in VarAccess.REDUCTIONS:
            return [f"u_{n} = _T(0.0)"]
        if f.kind == "global":  # one scalar for the target ([1], or [batch, 1])
            return [f"u_{n} = {names(f.key)}[{'_b, 0' if f.per_element else '0'}]"]
        return [f"u_{n} = {names(f.key)}[{at}]"]

    def calls(seed: str) -> list[str]:
        sc = dict(rng_scalars(elem, c.stream), _seed=seed)
        return [call(sf, m, sc) for sf in c.stages]

    shared = {n: f for n, f in fields.items() if not f.per_element}
    per = {n: f for n, f in fields.items() if f.per_element}
    reductions = {n: f for n, f in fields.items() if f.access in VarAccess.REDUCTIONS and n in written}
    L = []
    if not c.batched:
        for n, f in fields.items():
            L += load(n, f, idx)
        L += calls("seed")
        L += [f"{names(f.key)}[{idx}] = u_{n}" for n, f in fields.items() if n in written and f.kind != "temp"]
        return L
    for n, f in shared.items():
        if f.access not in VarAccess.REDUCTIONS and f.kind != "temp":
            L += load(n, f, idx)
    for n, f in reductions.items():
        L.append(f"_red_{n} = _T(-np.inf)" if f.access == VarAccess.REDUCE_MAX else f"_red_{n} = _T(0.0)")
    batch = names(next(f.key for f in per.values()))
    L += [f"_B = {batch}.shape[0]", "for _b in range(_B):"]
    inner = []
    for n, f in per.items():
        inner += load(n, f, f"_b, {idx}")
    for n, f in fields.items():
        if f.kind == "temp" or f.access in VarAccess.REDUCTIONS:
            inner += load(n, f, idx)
    inner.append("_seedb = batch_seed(seed, _b)")
    inner += calls("_seedb")
    inner += [f"{names(f.key)}[_b, {idx}] = u_{n}" for n, f in per.items() if n in written]
    for n, f in reductions.items():
        inner.append(f"_red_{n} = max(_red_{n}, u_{n})" if f.access == VarAccess.REDUCE_MAX
                     else f"_red_{n} += u_{n}")
    L += indent(inner, 1)
    for n, f in reductions.items():
        value = f"_T(_red_{n} / _B)" if f.access == VarAccess.REDUCE_MEAN else f"_red_{n}"
        L.append(f"{names(f.key)}[{idx}] = {value}")
    return L


def _signature(names: Names, body: list[str]) -> list[str]:
    return _LOOP_SCALARS + sorted(names.used)


def cpu_kernel(plan: Plan, c: CustomPlan, name: str, parallel: bool) -> tuple[list[str], list[str]]:
    """``name(step, t, dt, seed, <arrays and params>)``: every element of the target, ``prange`` over
    neurons or rows when ``parallel``."""
    names = Names()
    loop = "prange" if parallel else "range"
    tk = c.target_keys
    if c.per_synapse:
        rl = names(tk.rowlen)
        body = [f"stride = {names(tk.ind)}.shape[1]", f"for i in {loop}({rl}.shape[0]):",
                f"    for k in range({rl}[i]):"]
        body += indent(_element_body(c, names, "i, k", "i * stride + k"), 2)
    else:
        flag = names(tk.flag)  # [neurons] or [batch, neurons]
        body = [f"for i in {loop}({flag}.shape[{flag}.ndim - 1]):"]
        body += indent(_element_body(c, names, "i", "i"), 1)
    args = _signature(names, body)
    deco = "@njit(cache=True, parallel=True)" if parallel else "@njit(cache=True)"
    return [deco, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args


def cuda_kernel(plan: Plan, c: CustomPlan, name: str, decorator: str) -> tuple[list[str], list[str], str]:
    """The CUDA kernel (one thread per neuron, or x over row slots and y striding over rows), its
    argument names and its launch configuration expression."""
    names = Names()
    tk = c.target_keys
    if c.per_synapse:
        ind, rl = names(tk.ind), names(tk.rowlen)
        body = ["_x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
                "_y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y",
                "_ys = cuda.gridDim.y * cuda.blockDim.y", f"stride = {ind}.shape[1]", "k = _x",
                f"for i in range(_y0, {rl}.shape[0], _ys):", f"    if k < {rl}[i]:"]
        body += indent(_element_body(c, names, "i, k", "i * stride + k"), 2)
        cfg = f"_cfg2({tk.ind}.shape[1], {tk.rowlen}.shape[0])"
    else:
        flag = names(tk.flag)
        axis = 1 if plan.batched else 0  # explicit: the simulator's device arrays take no negative indices
        body = ["i = cuda.grid(1)", f"if i < {flag}.shape[{axis}]:"]
        body += indent(_element_body(c, names, "i", "i"), 1)
        cfg = f"_cfg1({tk.flag}.shape[{axis}])"
    args = _signature(names, body)
    return [decorator, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args, cfg
