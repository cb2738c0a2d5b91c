"""CPU (numba.njit) module emitter: one kernel per phase and group, and ``run`` with the time loop.

Parallel variants use ``prange`` without races or order dependence: spike delivery (and any synapse code
that accumulates into targets) is partitioned by *target range* — every thread scans the spiking rows in
the same order and handles only the synapses whose target it owns — so each target's input is summed in
exactly the serial order and results are bit-identical for every thread count.
"""
from __future__ import annotations

from .elements import Names, header, indent, neuron_body, scalar_functions, synapse_body
from .plan import Plan, PopPlan, ProjPlan

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


def _kernel(name: str, names: Names, body: list[str], parallel: bool, extra_args=()) -> list[str]:
    args = _LOOP_SCALARS + list(extra_args) + sorted(names.used)
    deco = "@njit(cache=True, parallel=True)" if parallel else "@njit(cache=True)"
    return [deco, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args


def _plain_add(arr: str, idx: str, val: str) -> str:
    return f"{arr}[{idx}] += {val}"


def _neuron_kernel(plan: Plan, pp: PopPlan, parallel: bool):
    names = Names()
    pfx = pp.prefix
    loop = "prange" if parallel else "range"
    body = [f"n = {names(f'{pfx}_flag')}.shape[0]", f"for i in {loop}(n):"]
    body += indent(neuron_body(plan, pp, names), 1)
    body += indent([f"{names(f'{pfx}_flag')}[i] = _spk"], 1)
    if pp.pop.model.spikes:
        # serial compaction keeps spikes in ascending neuron order whatever the thread count
        spk, cnt, nspk = names(f"{pfx}_spk"), names(f"{pfx}_spkcnt"), names(f"{pfx}_nspk")
        rs, ri, rn = names(f"{pfx}_rec_step"), names(f"{pfx}_rec_idx"), names(f"{pfx}_rec_n")
        body += [
            f"slot = step % {cnt}.shape[0]",
            "c = 0",
            f"cap = {rs}.shape[0]",
            f"r = {rn}[0]",
            "for i in range(n):",
            f"    if {names(f'{pfx}_flag')}[i]:",
            f"        {spk}[slot, c] = i",
            "        c += 1",
            "        if cap > 0:  # recording on",
            "            if r < cap:",
            f"                {rs}[r] = step",
            f"                {ri}[r] = i",
            "            r += 1",
            f"{cnt}[slot] = c",
            f"{nspk}[0] += c",
            f"{rn}[0] = r",
        ]
    return _kernel(f"{pfx}_neuron_update", names, body, parallel)


def _target_partition(parallel: bool, n_targets: str) -> list[str]:
    if parallel:
        return ["nth = get_num_threads()", f"chunk = ({n_targets} + nth - 1) // nth",
                "for c in prange(nth):", "    lo = c * chunk", f"    hi = min({n_targets}, lo + chunk)"]
    return ["for c in range(1):", "    lo = 0", f"    hi = {n_targets}"]


def _propagate_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp, proj = q.prefix, q.proj
    pre = plan.pop_plan(proj.pre).prefix
    spk, cnt = names(f"{pre}_spk"), names(f"{pre}_spkcnt")
    insyn = names(f"{qp}_psm_in_syn")
    body = [f"slot = (step - {1 + proj.delay}) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"n_post = {insyn}.shape[0]", f"stride = {names(f'{qp}_ind')}.shape[1]"]
    body += _target_partition(parallel, "n_post")
    inner = ["for s in range(nspk):", f"    i = {spk}[slot, s]"]
    syn = synapse_body(q, "on_pre", names, _plain_add)
    if proj.dense:
        inner += ["    for k in range(lo, hi):", "        j = k"] + indent(syn, 2)
    else:
        ind, rl = names(f"{qp}_ind"), names(f"{qp}_rowlen")
        inner += [f"    for k in range({rl}[i]):", f"        j = {ind}[i, k]"]
        if parallel:
            inner += ["        if j >= lo and j < hi:"] + indent(syn, 3)
        else:
            inner += indent(syn, 2)
    body += indent(inner, 1)
    return _kernel(f"{qp}_propagate", names, body, parallel)


def _post_learn_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp, proj = q.prefix, q.proj
    post = plan.pop_plan(proj.post).prefix
    spk, cnt = names(f"{post}_spk"), names(f"{post}_spkcnt")
    loop = "prange" if parallel else "range"
    body = [f"slot = (step - 1) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"stride = {names(f'{qp}_ind')}.shape[1]", f"for s in {loop}(nspk):", f"    j = {spk}[slot, s]"]
    syn = synapse_body(q, "on_post", names, _plain_add)
    if proj.dense:
        body += [f"    for i in range({names(f'{qp}_rowlen')}.shape[0]):", "        k = j"] + indent(syn, 2)
    else:
        cl, cs = names(f"{qp}_collen"), names(f"{qp}_colsyn")
        body += [f"    for c in range({cl}[j]):", f"        syn = {cs}[j, c]", "        i = syn // stride",
                 "        k = syn - i * stride"] + indent(syn, 2)
    return _kernel(f"{qp}_post_learn", names, body, parallel)


def _dynamics_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp, proj = q.prefix, q.proj
    rl = names(f"{qp}_rowlen")
    accumulates = any(o == ("", "_to_post") for o in q.funcs["dynamics"].outputs)
    body = [f"stride = {names(f'{qp}_ind')}.shape[1]", f"n_pre = {rl}.shape[0]",
            f"n_post = {names(f'{qp}_psm_in_syn')}.shape[0]"]
    syn = synapse_body(q, "dynamics", names, _plain_add)
    row = (["for k in range(n_post):", "    j = k"] if proj.dense else
           [f"for k in range({rl}[i]):", f"    j = {names(f'{qp}_ind')}[i, k]"])
    if accumulates and parallel:  # partition by target, as in propagation
        body += _target_partition(True, "n_post")
        body += indent(["for i in range(n_pre):"] + indent(row, 1)
                       + indent(["    if j >= lo and j < hi:"] + indent(syn, 2), 1), 1)
    else:
        loop = "prange" if parallel else "range"
        body += [f"for i in {loop}(n_pre):"] + indent(row + indent(syn, 1), 1)
    return _kernel(f"{qp}_dynamics", names, body, parallel)


def emit_module(plan: Plan, parallel: bool) -> tuple[str, list[str]]:
    """Source of the CPU module and the argument names of its ``run`` function (after the scalars
    ``step0, n_steps, dt64, seed, rec_every``)."""
    L = header("cpu", plan.network.precision) + scalar_functions(plan, "cpu")
    calls = {"dynamics": [], "propagate": [], "post_learn": [], "neuron": []}
    all_args: set[str] = set()

    def add(kernel_lines_args, phase, name):
        lines, args = kernel_lines_args
        L.extend(lines)
        calls[phase].append(f"{name}({', '.join(args)})")
        all_args.update(a for a in args if a not in _LOOP_SCALARS)

    for q in plan.projs:
        if "dynamics" in q.funcs:
            add(_dynamics_kernel(plan, q, parallel), "dynamics", f"{q.prefix}_dynamics")
        if "on_pre" in q.funcs:
            add(_propagate_kernel(plan, q, parallel), "propagate", f"{q.prefix}_propagate")
        if "on_post" in q.funcs:
            add(_post_learn_kernel(plan, q, parallel), "post_learn", f"{q.prefix}_post_learn")
    for pp in plan.pops:
        add(_neuron_kernel(plan, pp, parallel), "neuron", f"{pp.prefix}_neuron_update")
    rec_lines = []
    for r, (pop_name, var) in enumerate(plan.recorded_vars):
        pfx = f"p{plan.network.populations[pop_name].index}"
        all_args.update({f"{pfx}_{var}", f"rec_var{r}"})
        rec_lines += [f"        rec_var{r}[row, :] = {pfx}_{var}"]
    run_args = sorted(all_args)
    L += ["@njit(cache=True)",
          f"def run(step0, n_steps, dt64, seed, rec_every, {', '.join(run_args)}):",
          "    dt = _T(dt64)",
          "    for step in range(step0, step0 + n_steps):",
          "        t = _T(step * dt64)"]
    for phase in ("dynamics", "propagate", "post_learn", "neuron"):
        L += ["        " + c for c in calls[phase]]
    if rec_lines:
        L += ["        if (step - step0) % rec_every == 0:", "            row = (step - step0) // rec_every"]
        L += ["    " + line for line in rec_lines]
    L += ["    return", ""]
    return "\n".join(L), run_args
