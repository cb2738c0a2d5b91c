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

from .elements import Names, header, indent, neuron_body, scalar_functions, synapse_body
from .plan import Plan, PopPlan, ProjPlan, UpdatePlan

#: Threads per block of every kernel (tests shrink it so tiny networks still use several blocks).
THREADS_PER_BLOCK = 128
#: Upper bound on the blocks launched along the spike / row axis (y); more spikes or rows are strided.
MAX_SPIKE_BLOCKS = 4096
#: Kernel decorator.  ``cache=True`` stores compiled kernels beside the generated module on a real GPU;
#: the simulator accepts and ignores it.
KERNEL_DECORATOR = "@cuda.jit(cache=True)"

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


def _kernel(name: str, names: Names, body: list[str], extra_args=()) -> tuple[list[str], list[str]]:
    # only the arrays and params the body really reads: every kernel argument costs launch time on the host
    text = "\n".join(body)
    used = [a for a in sorted(names.used) if re.search(rf"\b{re.escape(a)}\b", text)]
    args = _LOOP_SCALARS + list(extra_args) + used
    return [KERNEL_DECORATOR, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args


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
    pfx = pp.prefix
    flag = names(f"{pfx}_flag")
    body = ["i = cuda.grid(1)", f"n = {flag}.shape[0]", "_spk = False", "if i < n:"]
    body += indent(neuron_body(plan, pp, names), 1)
    body += indent([f"{flag}[i] = _spk"], 1)
    if pp.pop.model.spikes:
        spk, cnt, nspk = names(f"{pfx}_spk"), names(f"{pfx}_spkcnt"), names(f"{pfx}_nspk")
        rs, ri, rn = names(f"{pfx}_rec_step"), names(f"{pfx}_rec_idx"), names(f"{pfx}_rec_n")
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
    return _kernel(f"{pfx}_neuron_update", names, body)


def _propagate_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    pre = plan.pop_plan(proj.pre).prefix
    spk, cnt = names(f"{pre}_spk"), names(f"{pre}_spkcnt")
    insyn = names(f"{qp}_psm_in_syn")
    body = [f"slot = (step - {1 + proj.delay}) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"n_post = {insyn}.shape[0]", f"stride = {names(f'{qp}_ind')}.shape[1]"] + _xy()
    syn = synapse_body(q, "on_pre", names, _atomic_add)
    if proj.dense:
        body += ["k = _x", "if k < n_post:", "    j = k", "    for s in range(_y0, nspk, _ys):",
                 f"        i = {spk}[slot, s]"] + indent(syn, 2)
    else:
        ind, rl = names(f"{qp}_ind"), names(f"{qp}_rowlen")
        body += ["k = _x", "for s in range(_y0, nspk, _ys):", f"    i = {spk}[slot, s]",
                 f"    if k < {rl}[i]:", f"        j = {ind}[i, k]"] + indent(syn, 2)
    return _kernel(f"{qp}_propagate", names, body)


def _post_learn_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    post = plan.pop_plan(proj.post).prefix
    spk, cnt = names(f"{post}_spk"), names(f"{post}_spkcnt")
    body = [f"slot = (step - 1) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"stride = {names(f'{qp}_ind')}.shape[1]"] + _xy()
    syn = synapse_body(q, "on_post", names, _atomic_add)
    if proj.dense:
        body += ["i = _x", f"if i < {names(f'{qp}_rowlen')}.shape[0]:", "    for s in range(_y0, nspk, _ys):",
                 f"        j = {spk}[slot, s]", "        k = j"] + indent(syn, 2)
    else:
        cl, cs = names(f"{qp}_collen"), names(f"{qp}_colsyn")
        body += ["c = _x", "for s in range(_y0, nspk, _ys):", f"    j = {spk}[slot, s]",
                 f"    if c < {cl}[j]:", f"        syn = {cs}[j, c]", "        i = syn // stride",
                 "        k = syn - i * stride"] + indent(syn, 2)
    return _kernel(f"{qp}_post_learn", names, body)


def _dynamics_kernel(plan: Plan, q: ProjPlan):
    names = Names()
    qp, proj = q.prefix, q.proj
    rl = names(f"{qp}_rowlen")
    body = [f"stride = {names(f'{qp}_ind')}.shape[1]", f"n_pre = {rl}.shape[0]",
            f"n_post = {names(f'{qp}_psm_in_syn')}.shape[0]"] + _xy() + ["k = _x"]
    syn = synapse_body(q, "dynamics", names, _atomic_add)
    if proj.dense:
        body += ["if k < n_post:", "    j = k", "    for i in range(_y0, n_pre, _ys):"] + indent(syn, 2)
    else:
        body += ["for i in range(_y0, n_pre, _ys):", f"    if k < {rl}[i]:",
                 f"        j = {names(f'{qp}_ind')}[i, k]"] + indent(syn, 2)
    return _kernel(f"{qp}_syn_dynamics", names, body)


def _update_kernel(plan: Plan, u: UpdatePlan):
    """Row kernel of a connectivity update: one thread per row (rows own their slots, so no races); the
    thread's counters are added to ``cu<k>_stats`` with atomics.  ``cu<k>_scratch`` has one row of
    selection scratch per presynaptic row when the rule uses ``row.smallest_magnitude``."""
    names = Names()
    names.used |= set(u.code.names)
    q = u.proj
    ind, rowlen = names(f"{q.prefix}_ind"), names(f"{q.prefix}_rowlen")
    post, stats = names(f"p{q.proj.post.index}_flag"), names(f"{u.prefix}_stats")
    scratch = names(f"{u.prefix}_scratch")
    counters = ("_nrem", "_nadd", "_full", "_failed", "_bad", None, "_dup")
    inner = [f"_stride = {ind}.shape[1]", f"_npost = {post}.shape[0]"] + [f"{c} = 0" for c in counters if c]
    inner += [f"_scratch = {scratch}[i % {scratch}.shape[0]]"] + u.code.body
    for n, c in enumerate(counters):
        if c:
            inner += [f"if {c} != 0:", f"    cuda.atomic.add({stats}, {n}, {c})"]
    cond = f"i < {rowlen}.shape[0]"
    if u.update.model.active_if is not None:  # rows the rule leaves alone return at once
        cond += f" and {names(u.code.row_keys[u.update.model.active_if])}[i] != 0"
    body = ["i = cuda.grid(1)", f"if {cond}:"] + indent(inner, 1)
    return _kernel(f"{u.prefix}_row", names, body)


_COLUMN_KERNELS = [
    KERNEL_DECORATOR,
    "def _cols_clear(collen):",
    "    j = cuda.grid(1)",
    "    if j < collen.shape[0]:",
    "        collen[j] = 0",
    "",
    KERNEL_DECORATOR,
    "def _cols_fill(ind, rowlen, collen, colsyn, stats):",
    "    # x over row slots, y striding over rows; the order within a column is not deterministic, which",
    "    # postsynaptic learning does not depend on (each synapse is updated independently)",
    "    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
    "    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y",
    "    rs = cuda.gridDim.y * cuda.blockDim.y",
    "    cap = colsyn.shape[1]",
    "    stride = ind.shape[1]",
    "    while r < rowlen.shape[0]:",
    "        if k < rowlen[r]:",
    "            j = ind[r, k]",
    "            pos = cuda.atomic.add(collen, j, 1)",
    "            if pos < cap:",
    "                colsyn[j, pos] = r * stride + k",
    "            else:",
    "                stats[5] = 1",
    "        r += rs",
    "",
    KERNEL_DECORATOR,
    "def _cols_clamp(collen, cap):",
    "    j = cuda.grid(1)",
    "    if j < collen.shape[0] and collen[j] > cap:",
    "        collen[j] = cap  # overflow was flagged; kernels must never read past the capacity",
    "",
]


def _record_kernel(r: int) -> list[str]:
    return [KERNEL_DECORATOR, f"def rec_var{r}_copy(row, src, dst):", "    i = cuda.grid(1)",
            "    if i < src.shape[0]:", "        dst[row, i] = src[i]", ""]


_HOST_HELPERS = [
    "# launches configured once per run call (each launch anew under numba-cuda's simulator)",
    "from plastix.backends.cuda_support import configure as _configure",
    "",
    "",
    "def _cdiv(a, b):",
    "    return -(-int(a) // int(b))",
    "",
    "",
    "def _cfg1(n):",
    "    \"\"\"(grid, block) of a 1-D kernel over n elements.\"\"\"",
    "    return max(1, _cdiv(n, TPB)), TPB",
    "",
    "",
    "def _cfg2(width, n_y):",
    "    # (grid, block) of a 2-D kernel: x covers width (row slots, columns or targets), y strides over",
    "    # up to n_y spikes or rows",
    "    bx = 1",
    "    while bx < width and bx < TPB:",
    "        bx *= 2",
    "    by = max(1, TPB // bx)",
    "    gx = max(1, _cdiv(width, bx))",
    "    gy = max(1, min(_cdiv(max(1, n_y), by), max(1, MAX_SPIKE_BLOCKS // gx), 65535))",
    "    return (gx, gy), (bx, by)",
    "",
    "",
    KERNEL_DECORATOR,
    "def _clear_slot(cnt, step):",
    "    if cuda.grid(1) == 0:",
    "        cnt[step % cnt.shape[0]] = 0",
    "",
]


def emit_module(plan: Plan) -> tuple[str, list[str]]:
    """Source of the CUDA module and the argument names of its ``run`` function (after the scalars
    ``step0, n_steps, dt64, seed, rec_every``)."""
    L = header("cuda", plan.network.precision)
    L += ["import warnings", "",
          f"TPB = {int(THREADS_PER_BLOCK)}", f"MAX_SPIKE_BLOCKS = {int(MAX_SPIKE_BLOCKS)}", ""]
    L += scalar_functions(plan, "cuda")
    L += _HOST_HELPERS
    calls = {"dynamics": [], "propagate": [], "post_learn": [], "neuron": []}
    configs: list[str] = []
    all_args: set[str] = set()

    def add(kernel_lines_args, phase, name, cfg, *cfg_arrays):
        lines, args = kernel_lines_args
        L.extend(lines)
        configs.append(f"_k_{name} = _configure({name}, {cfg.format(*cfg_arrays)})")
        calls[phase].append(f"_k_{name}({', '.join(args)})")
        all_args.update(a for a in args if a not in _LOOP_SCALARS)
        all_args.update(cfg_arrays)

    for q in plan.projs:
        qp, proj = q.prefix, q.proj
        pre, post = plan.pop_plan(proj.pre).prefix, plan.pop_plan(proj.post).prefix
        # x: the row stride (dense: n_post), the column capacity (dense: n_pre); y: rows or spikes
        if "dynamics" in q.funcs:
            add(_dynamics_kernel(plan, q), "dynamics", f"{qp}_syn_dynamics", "_cfg2({}.shape[1], {}.shape[0])",
                f"{qp}_ind", f"{qp}_rowlen")
        if "on_pre" in q.funcs:
            add(_propagate_kernel(plan, q), "propagate", f"{qp}_propagate", "_cfg2({}.shape[1], {}.shape[1])",
                f"{qp}_ind", f"{pre}_spk")
        if "on_post" in q.funcs:
            cols = "{}.shape[0]" if proj.dense else "{}.shape[1]"
            add(_post_learn_kernel(plan, q), "post_learn", f"{qp}_post_learn", "_cfg2(" + cols + ", {}.shape[1])",
                f"{qp}_rowlen" if proj.dense else f"{qp}_colsyn", f"{post}_spk")
    update_hosts = []
    for u in plan.updates:
        lines, args = _update_kernel(plan, u)
        L.extend(lines)
        q = u.proj
        cfg = f"_cfg1({q.prefix}_rowlen.shape[0])"
        launch = [f"{u.prefix}_row[{cfg}]({', '.join(args)})"]
        col_args = []
        if q.needs_columns:
            cl, cs, ind, rl = f"{q.prefix}_collen", f"{q.prefix}_colsyn", f"{q.prefix}_ind", f"{q.prefix}_rowlen"
            col_args = [cl, cs, ind, rl]
            launch += [f"_cols_clear[_cfg1({cl}.shape[0])]({cl})",
                       f"_cols_fill[_cfg2({ind}.shape[1], {rl}.shape[0])]({ind}, {rl}, {cl}, {cs}, {u.prefix}_stats)",
                       f"_cols_clamp[_cfg1({cl}.shape[0])]({cl}, np.int64({cs}.shape[1]))"]
        host_args = sorted((set(args) - set(_LOOP_SCALARS)) | set(col_args) | {f"{u.prefix}_stats"})
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
    spiking = []
    for pp in plan.pops:
        add(_neuron_kernel(plan, pp), "neuron", f"{pp.prefix}_neuron_update", "_cfg1({}.shape[0])",
            f"{pp.prefix}_flag")
        if pp.pop.model.spikes:
            spiking.append(pp.prefix)
            all_args.add(f"{pp.prefix}_spkcnt")
    rec_lines = []
    for r, (pop_name, var) in enumerate(plan.recorded_vars):
        pfx = f"p{plan.network.populations[pop_name].index}"
        all_args.update({f"{pfx}_{var}", f"rec_var{r}"})
        L += _record_kernel(r)
        configs.append(f"_k_rec_var{r}_copy = _configure(rec_var{r}_copy, _cfg1({pfx}_{var}.shape[0]))")
        rec_lines.append(f"_k_rec_var{r}_copy(row, {pfx}_{var}, rec_var{r})")
    if plan.updates:
        L += _COLUMN_KERNELS + update_hosts
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
    L += ["    with warnings.catch_warnings():", "        warnings.simplefilter('ignore')",
          "        _k_clear_slot = _clear_slot[1, 1]"]
    L += ["        " + c for c in configs]
    # a state saved by another backend may hold a stale count in the slot this run writes first
    L += [f"    _k_clear_slot({p}_spkcnt, np.int64(step0))" for p in spiking]
    L += ["    for _s in range(step0, step0 + int(n_steps)):",
          "        step = np.int64(_s)",
          "        t = _T(_s * dt64)"]
    for phase in ("dynamics", "propagate", "post_learn", "neuron"):
        L += ["        " + c for c in calls[phase]]
    if rec_lines:
        L += ["        if (_s - rec_origin) % rec_every == 0:", "            row = np.int64((_s - rec_origin) // rec_every)"]
        L += ["            " + line for line in rec_lines]
    L += ["    return", ""]
    return "\n".join(L), run_args
