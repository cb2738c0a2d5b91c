"""CUDA (numba-cuda) module emitter: one ``@cuda.jit`` kernel per phase and group, and a host-side ``run``
that loops over the steps and launches them in the order of docs/semantics.md.

Kernels and their parallel decomposition:

* **neuron update** (``pa_neuron_update``): one thread per neuron.  A spiking thread appends itself to the
  ring slot ``step % S`` at the position an atomic add on ``spkcnt[slot]`` returns, likewise to the spike
  recording through ``rec_n`` (always counted, written only below the capacity, so the host detects
  overflow), and counts itself in ``nspk``.  Spike order within a slot is therefore not deterministic on
  the GPU.  (No shared-memory block aggregation: first-touch allocation of shared arrays is racy in
  numba-cuda's simulator, and one atomic per spike is cheap next to the synaptic work the spike causes.)
  Thread 0 zeroes the count of slot ``(step + 1) % S``, the slot the next step writes: no propagation
  reads it any more, because the ring has ``S = max_delay + 2`` slots (see ``Network.spike_slots``).
* **propagation** (``qb_propagate``): 2-D grid; x over the row slots ``k`` (for dense projections over
  the targets), y striding over the spikes of the slot read at this step; ``add_to_post`` is an atomic
  add into ``in_syn``.
* **post learning** (``qb_post_learn``): x over the column view of each spiking target (dense: over the
  presynaptic rows), y striding over the target's population spikes of the previous step.
* **synapse dynamics** (``qb_syn_dynamics``; ``qb_dynamics`` is the model's scalar function): x over
  row slots, y striding over rows; atomics when the model adds to the target.
* **variable recording** (``rec_varR_copy``): one thread per neuron copies into row ``(step - step0) //
  rec_every`` of the recording array.

The spike counts stay on the device: ``run`` never reads anything back, so the steps are launched without
any device-to-host synchronisation; launch configurations depend only on array shapes and are computed once
per ``run`` call.
"""
from __future__ import annotations

import re

from ..model.specs import VarAccess
from . import custom
from .elements import Names, header, indent, neuron_body, scalar_functions, synapse_body
from .merge import merge_identical
from .names import STAT, rec_var
from .plan import Plan, PopPlan, ProjPlan, UpdatePlan

#: Kernel decorator.  ``cache=True`` stores compiled kernels beside the generated module on a real GPU;
#: the simulator accepts and ignores it.
KERNEL_DECORATOR = "@cuda.jit(cache=True)"

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


def _kernel(name: str, names: Names, body: list[str], extra_args=(), plan: Plan | None = None
            ) -> tuple[list[str], list[str]]:
    """A kernel over ``body``; with a batched ``plan`` (per-element kernels only) the grid's z index is the
    batch element: the kernel takes the whole per-element arrays (``<key>__b``) and works on element
    ``blockIdx.z``'s slices under the usual names, drawing random numbers keyed by ``batch_seed``."""
    # only the arrays and params the body really reads: every kernel argument costs launch time on the host
    text = "\n".join(body)
    used = [a for a in sorted(names.used) if re.search(rf"\b{re.escape(a)}\b", text)]
    args = _LOOP_SCALARS + list(extra_args) + used
    params = args
    if plan is not None and plan.batched:
        per_element = [a for a in used if a in plan.duplicated]
        params = [f"{a}__b" if a in per_element else a for a in args]
        body = (["_b = cuda.blockIdx.z", "seed = batch_seed(seed, _b)"]
                + [f"{a} = {a}__b[_b]" for a in per_element] + body)
    return [KERNEL_DECORATOR, f"def {name}({', '.join(params)}):"] + indent(body, 1) + [""], args


def _atomic_add(arr: str, idx: str, val: str) -> str:
    return f"cuda.atomic.add({arr}, {idx}, {val})"


def _xy() -> list[str]:
    """Thread coordinates of the 2-D kernels: ``_x`` along rows / columns, ``_y0`` / ``_ys`` the start and
    stride along spikes or rows."""
    return ["_x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
            "_y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y",
            "_ys = cuda.gridDim.y * cuda.blockDim.y"]


def _neuron_kernel(plan: Plan, pp: PopPlan):
    names = Names()
    pfx, keys = pp.prefix, pp.keys
    flag = names(keys.flag)
    body = ["i = cuda.grid(1)", f"n = {flag}.shape[0]", "_spk = False", "if i < n:"]
    body += indent(neuron_body(plan, pp, names), 1)
    body += indent([f"{flag}[i] = _spk"], 1)
    if pp.pop.model.spikes:
        spk, cnt, nspk = names(keys.spk), names(keys.spkcnt), names(keys.nspk)
        rs, ri, rn = names(keys.rec_step), names(keys.rec_idx), names(keys.rec_n)
        body += [
            f"_S = {cnt}.shape[0]",
            "slot = step % _S",
            "if i == 0:  # the slot the next step writes: nothing reads it any more (S = max_delay + 2)",
            f"    {cnt}[(step + 1) % _S] = 0",
            "if _spk:",
            f"    _pos = cuda.atomic.add({cnt}, slot, 1)",
            f"    {spk}[slot, _pos] = i",
            f"    cuda.atomic.add({nspk}, 0, 1)",
            f"    cap = {rs}.shape[0]",
            "    if cap > 0:  # recording on: always count, so the host can detect overflow",
            f"        _r = cuda.atomic.add({rn}, 0, 1)",
            "        if _r < cap:",
            f"            {rs}[_r] = step",
            f"            {ri}[_r] = i",
        ]
    return _kernel(f"{pfx}_neuron_update", names, body, plan=plan)


def _propagate_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    pre = plan.pop_plan(proj.pre).keys
    spk, cnt = names(pre.spk), names(pre.spkcnt)
    insyn = names(q.keys.in_syn)
    body = [f"slot = (step - {1 + proj.delay}) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"n_post = {insyn}.shape[0]", f"stride = {names(q.keys.ind)}.shape[1]"] + _xy()
    syn = synapse_body(q, "on_pre", names, _atomic_add)
    if proj.dense:
        body += ["k = _x", "if k < n_post:", "    j = k", "    for s in range(_y0, nspk, _ys):",
                 f"        i = {spk}[slot, s]"] + indent(syn, 2)
    else:
        ind, rl = names(q.keys.ind), names(q.keys.rowlen)
        body += ["k = _x", "for s in range(_y0, nspk, _ys):", f"    i = {spk}[slot, s]",
                 f"    if k < {rl}[i]:", f"        j = {ind}[i, k]"] + indent(syn, 2)
    return _kernel(f"{qp}_propagate", names, body, plan=plan)


def _post_learn_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    post = plan.pop_plan(proj.post).keys
    spk, cnt = names(post.spk), names(post.spkcnt)
    body = [f"slot = (step - 1) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"stride = {names(q.keys.ind)}.shape[1]"] + _xy()
    syn = synapse_body(q, "on_post", names, _atomic_add)
    if proj.dense:
        body += ["i = _x", f"if i < {names(q.keys.rowlen)}.shape[0]:", "    for s in range(_y0, nspk, _ys):",
                 f"        j = {spk}[slot, s]", "        k = j"] + indent(syn, 2)
    else:
        cl, cs = names(q.keys.collen), names(q.keys.colsyn)
        body += ["c = _x", "for s in range(_y0, nspk, _ys):", f"    j = {spk}[slot, s]",
                 f"    if c < {cl}[j]:", f"        syn = {cs}[j, c]", "        i = syn // stride",
                 "        k = syn - i * stride"] + indent(syn, 2)
    return _kernel(f"{qp}_post_learn", names, body, plan=plan)


def _dynamics_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    rl = names(q.keys.rowlen)
    body = [f"stride = {names(q.keys.ind)}.shape[1]", f"n_pre = {rl}.shape[0]",
            f"n_post = {names(q.keys.in_syn)}.shape[0]"] + _xy() + ["k = _x"]
    syn = synapse_body(q, "dynamics", names, _atomic_add)
    if proj.dense:
        body += ["if k < n_post:", "    j = k", "    for i in range(_y0, n_pre, _ys):"] + indent(syn, 2)
    else:
        body += ["for i in range(_y0, n_pre, _ys):", f"    if k < {rl}[i]:",
                 f"        j = {names(q.keys.ind)}[i, k]"] + indent(syn, 2)
    return _kernel(f"{qp}_syn_dynamics", names, body, plan=plan)


def _update_kernel(plan: Plan, u: UpdatePlan):
    """Row kernel of a connectivity update: one thread per row (rows own their slots, so no races); the
    thread's counters are added to ``cu<k>_stats`` with atomics.  ``cu<k>_scratch`` has one row of
    selection scratch per presynaptic row when the rule uses ``row.smallest_magnitude``."""
    names = Names()
    names.used |= set(u.code.names)
    q = u.proj
    ind, rowlen = names(q.keys.ind), names(q.keys.rowlen)
    post, stats = names(plan.pop_plan(q.proj.post).keys.flag), names(u.keys.stats)
    scratch = names(u.keys.scratch)
    # the column view is rebuilt after the row kernel here, so the rows never count its overflow
    counters = {STAT.removed: "_nrem", STAT.added: "_nadd", STAT.full: "_full", STAT.failed_adds: "_failed",
                STAT.bad_target: "_bad", STAT.duplicate: "_dup"}
    # (explicit axes: the simulator's device arrays take no negative indices)
    inner = [f"_stride = {ind}.shape[1]", f"_npost = {post}.shape[{1 if plan.batched else 0}]"]
    inner += [f"{c} = 0" for c in counters.values()]
    inner += [f"_scratch = {scratch}[i % {scratch}.shape[0]]"] + u.code.body
    for n, c in sorted(counters.items()):
        inner += [f"if {c} != 0:", f"    cuda.atomic.add({stats}, {n}, {c})"]
    cond = f"i < {rowlen}.shape[0]"
    if u.update.model.active_if is not None:  # rows the rule leaves alone return at once
        cond += f" and {names(u.code.row_keys[u.update.model.active_if])}[i] != 0"
    body = ["i = cuda.grid(1)", f"if {cond}:"] + indent(inner, 1)
    return _kernel(f"{u.prefix}_row", names, body)


def _record_kernel(r: int, batched: bool, src_batched: bool) -> list[str]:
    if not batched:
        return [KERNEL_DECORATOR, f"def {rec_var(r)}_copy(row, src, dst):", "    i = cuda.grid(1)",
                "    if i < src.shape[0]:", "        dst[row, i] = src[i]", ""]
    src, axis = ("src[_b, i]", 1) if src_batched else ("src[i]", 0)
    return [KERNEL_DECORATOR, f"def {rec_var(r)}_copy(row, src, dst):", "    i = cuda.grid(1)",
            "    _b = cuda.blockIdx.z", f"    if i < src.shape[{axis}]:", f"        dst[_b, row, i] = {src}", ""]


_HOST_HELPERS = [
    "# launch geometry is read from plastix.kernels.launch when a run call configures its launches",
    "from plastix.kernels.launch import cfg1 as _cfg1, cfg2 as _cfg2, cfg_batch as _cfg_batch, configure as _configure",
    "",
    "",
]
#: zeroes a 2-D array (x over columns, y striding over rows)
_ZERO2 = [KERNEL_DECORATOR, "def _zero2(a):", "    _x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
          "    _y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y",
          "    _ys = cuda.gridDim.y * cuda.blockDim.y", "    if _x < a.shape[1]:",
          "        for i in range(_y0, a.shape[0], _ys):", "            a[i, _x] = 0", ""]
_CLEAR_SLOT = [KERNEL_DECORATOR, "def _clear_slot(cnt, step):", "    if cuda.grid(1) == 0:",
               "        cnt[step % cnt.shape[0]] = 0", ""]
_CLEAR_SLOT_BATCH = [KERNEL_DECORATOR, "def _clear_slot(cnt, step):", "    b = cuda.grid(1)",
                     "    if b < cnt.shape[0]:", "        cnt[b, step % cnt.shape[1]] = 0", ""]

#: The column-view kernels (plastix.kernels.columns_cuda), bound in modules with connectivity updates.
_COLUMN_KERNELS = ["from plastix.kernels.columns_cuda import column_kernels as _column_kernels", "",
                   "_cols_clear, _cols_fill, _cols_clamp = _column_kernels()", ""]


def emit_module(plan: Plan, *, parallel: bool) -> tuple[str, list[str]]:
    """Source of the CUDA module and the argument names of its ``run`` function (after the scalars
    ``step0, n_steps, dt64, seed, rec_every, rec_origin``).  ``parallel`` is part of the emitters' common
    signature; GPU kernels are always parallel."""
    if not parallel:
        raise ValueError("the CUDA emitter only writes parallel kernels (parallel=True)")
    L = header("cuda", plan.network.precision)
    L += ["import warnings", ""]
    L += scalar_functions(plan, "cuda")
    L += _HOST_HELPERS + (_CLEAR_SLOT_BATCH if plan.batched else _CLEAR_SLOT)
    if any(c.update.model.events for c in plan.customs):
        L += _ZERO2
    calls = {"dynamics": [], "propagate": [], "post_learn": [], "neuron": []}
    configs: list[str] = []
    all_args: set[str] = set()

    spk_axis = 2 if plan.batched else 1  # the neuron axis of spike buffers ([batch,] slots, neurons)

    def batch(cfg: str) -> str:
        return f"_cfg_batch({cfg}, _B)" if plan.batched else cfg

    def add(kernel_lines_args, phase, name, cfg, *cfg_arrays):
        lines, args = kernel_lines_args
        L.extend(lines)
        configs.append(f"_k_{name} = _configure({name}, {batch(cfg.format(*cfg_arrays))})")
        calls[phase].append(f"_k_{name}({', '.join(args)})")
        all_args.update(a for a in args if a not in _LOOP_SCALARS)
        all_args.update(cfg_arrays)

    for q in plan.projs:
        qp, proj = q.prefix, q.proj
        pre, post = plan.pop_plan(proj.pre).keys, plan.pop_plan(proj.post).keys
        # x: the row stride (dense: n_post), the column capacity (dense: n_pre); y: rows or spikes
        if "dynamics" in q.funcs:
            add(_dynamics_kernel(plan, q), "dynamics", f"{qp}_syn_dynamics", "_cfg2({}.shape[1], {}.shape[0])",
                q.keys.ind, q.keys.rowlen)
        if "on_pre" in q.funcs:
            add(_propagate_kernel(plan, q), "propagate", f"{qp}_propagate",
                "_cfg2({}.shape[1], {}.shape[%d])" % spk_axis,
                q.keys.ind, pre.spk)
        if "on_post" in q.funcs:
            cols = "{}.shape[0]" if proj.dense else "{}.shape[1]"
            add(_post_learn_kernel(plan, q), "post_learn", f"{qp}_post_learn",
                "_cfg2(" + cols + ", {}.shape[%d])" % spk_axis,
                q.keys.rowlen if proj.dense else q.keys.colsyn, post.spk)
    update_hosts = []
    for u in plan.updates:
        lines, args = _update_kernel(plan, u)
        L.extend(lines)
        q = u.proj
        cfg = f"_cfg1({q.keys.rowlen}.shape[0])"
        launch = [f"{u.prefix}_row[{cfg}]({', '.join(args)})"]
        col_args = []
        if q.needs_columns:
            cl, cs, ind, rl = q.keys.collen, q.keys.colsyn, q.keys.ind, q.keys.rowlen
            col_args = [cl, cs, ind, rl]
            launch += [f"_cols_clear[_cfg1({cl}.shape[0])]({cl})",
                       f"_cols_fill[_cfg2({ind}.shape[1], {rl}.shape[0])]({ind}, {rl}, {cl}, {cs}, {u.keys.stats}, "
                       f"np.int64({STAT.column_overflow}))",
                       f"_cols_clamp[_cfg1({cl}.shape[0])]({cl}, np.int64({cs}.shape[1]))"]
        host_args = sorted((set(args) - set(_LOOP_SCALARS)) | set(col_args) | {u.keys.stats})
        # callable from Python (Simulation.custom_update); launches the row kernel only, the runtime
        # maintains the column view
        update_hosts += [f"def run_update_{u.prefix}(step, t, dt, seed, {', '.join(host_args)}, with_columns=False):",
                         "    with warnings.catch_warnings():", "        warnings.simplefilter('ignore')",
                         f"        {launch[0]}", "        if with_columns:"]
        update_hosts += [f"            {x}" for x in launch[1:]] + ["            pass", ""]
        # scheduled updates with a global phase are driven by the backend (the phase runs on the host)
        if u.update.every is not None and u.update.model.global_update is None:
            # configured once per run call, launched every `every` steps
            configured = []
            for n, line in enumerate(launch):
                kern, rest = line.split("[", 1)
                cfg_expr, call_args = rest.split("](", 1)
                configs.append(f"_k_{u.prefix}_{n} = _configure({kern}, {cfg_expr})")
                configured.append(f"_k_{u.prefix}_{n}({call_args}")
            calls["neuron"].append(f"if (_s + 1) % {u.update.every} == 0:\n" + "\n".join(
                "            " + x for x in configured))
            all_args.update(host_args)
    custom_hosts = []
    for c in plan.customs:
        if c.array is not None:  # per="population": runs on the host (the backend's CPU module)
            continue
        lines, args, cfg = custom.cuda_kernel(plan, c, f"{c.prefix}_update", KERNEL_DECORATOR)
        L.extend(lines)
        host_args = [a for a in args if a not in _LOOP_SCALARS]
        cfg_arrays = sorted(set(re.findall(r"\b([pq]\d+_\w+)\.shape", cfg)) - set(host_args))
        # callable from Python (Simulation.custom_update); sums over events are added with atomics, so
        # their arrays start from zero
        zero = [f"        _zero2[_cfg2({c.fields[n].key}.shape[1], {c.fields[n].key}.shape[0])]({c.fields[n].key})"
                for n in sorted(c.written) if c.update.model.events and c.fields[n].access == VarAccess.REDUCE_SUM]
        custom_hosts += [f"def run_custom_{c.prefix}(step, t, dt, seed, {', '.join(host_args + cfg_arrays)}):",
                         "    with warnings.catch_warnings():", "        warnings.simplefilter('ignore')"] + zero + [
                         f"        {c.prefix}_update[{cfg}]({', '.join(args)})", ""]
        if c.update.every is not None:
            configs.append(f"_k_{c.prefix} = _configure({c.prefix}_update, {cfg})")
            calls["neuron"].append(f"if (_s + 1) % {c.update.every} == 0:\n"
                                   f"            _k_{c.prefix}({', '.join(args)})")
            all_args.update(host_args + cfg_arrays)
    spiking = []
    for pp in plan.pops:
        add(_neuron_kernel(plan, pp), "neuron", f"{pp.prefix}_neuron_update", "_cfg1({}.shape[%d])" % (spk_axis - 1),
            pp.keys.flag)
        if pp.pop.model.spikes:
            spiking.append(pp.keys.spkcnt)
            all_args.add(pp.keys.spkcnt)
    rec_lines = []
    for r, (pop_name, var) in enumerate(plan.recorded_vars):
        src, dst = plan.pop_plan(plan.network.populations[pop_name]).keys.var(var), rec_var(r)
        all_args.update({src, dst})
        L += _record_kernel(r, plan.batched, src in plan.duplicated)
        axis = 1 if src in plan.duplicated and plan.batched else 0
        configs.append(f"_k_{dst}_copy = _configure({dst}_copy, {batch(f'_cfg1({src}.shape[{axis}])')})")
        rec_lines.append(f"_k_{dst}_copy(row, {src}, {dst})")
    if plan.updates:
        L += _COLUMN_KERNELS + update_hosts
    L += custom_hosts
    run_args = sorted(all_args)
    L += ["def run(step0, n_steps, dt64, seed, rec_every, rec_origin, " + ", ".join(run_args) + "):",
          "    \"\"\"Launch steps step0 .. step0 + n_steps - 1 (asynchronously: no device-to-host copies).\"\"\"",
          "    if n_steps <= 0:",
          "        return",
          "    step0 = int(step0)",
          "    rec_every = int(rec_every)",
          "    dt = _T(dt64)",
          "    seed = np.uint64(seed)"]
    # small networks make small grids: numba-cuda's low-occupancy (performance) warning would fire on every
    # run call; configuring launches warns about nothing else
    if plan.batched:  # every per-element kernel's grid repeats over the batch (z)
        L += [f"    _B = {plan.pops[0].keys.flag}.shape[0]"]  # every neuron kernel reads its flags: a run arg
    L += ["    with warnings.catch_warnings():", "        warnings.simplefilter('ignore')",
          "        _k_clear_slot = _clear_slot[" + ("_cfg1(_B)" if plan.batched else "1, 1") + "]"]
    L += ["        " + c for c in configs]
    # a state saved by another backend may hold a stale count in the slot this run writes first
    L += [f"    _k_clear_slot({cnt}, np.int64(step0))" for cnt in spiking]
    L += ["    for _s in range(step0, step0 + int(n_steps)):",
          "        step = np.int64(_s)",
          "        t = _T(_s * dt64)"]
    for phase in ("dynamics", "propagate", "post_learn", "neuron"):
        L += ["        " + c for c in calls[phase]]
    if rec_lines:
        L += ["        if (_s - rec_origin) % rec_every == 0:",
              "            row = np.int64((_s - rec_origin) // rec_every)"]
        L += ["            " + line for line in rec_lines]
    L += ["    return", ""]
    return merge_identical("\n".join(L)), run_args
