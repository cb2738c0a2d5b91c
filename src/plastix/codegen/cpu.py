"""CPU (numba.njit) module emitter: one kernel per phase and group, and ``run`` with the time loop.

Parallel variants use ``prange`` without races and without dependence on the thread count: the spiking
rows of a step are split into a fixed number P of contiguous partitions (``Simulation(partitions=...)``,
not the thread count), each partition accumulates its synapses' input into its own buffer
``qb_accbuf[c]`` in serial order, and the neuron update adds the buffers to ``in_syn`` in partition order.  Each
synapse belongs to exactly one row, so per-synapse writes never race either.  Serial variants add
directly in spike order (the order the plain-numpy references use).

Numba cannot cache a function that calls ``parallel=True`` functions, so in the parallel variant the
kernel bodies are inlined (locals renamed per kernel) into one ``parallel=True`` ``run``, which is cached
on disk like the serial variant.
"""
from __future__ import annotations

import ast

from . import custom
from .elements import Names, header, indent, neuron_body, scalar_functions, synapse_body
from .merge import merge_identical
from .names import STAT, rec_var
from .plan import Plan, PopPlan, ProjPlan, UpdatePlan
from .row_draws import predraw_stages
from .taps import tap_propagate

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


def _kernel(name: str, names: Names, body: list[str], parallel: bool, extra_args=()) -> list[str]:
    args = _LOOP_SCALARS + list(extra_args) + sorted(names.used)
    deco = "@njit(parallel=True)" if parallel else "@njit(cache=True)"
    return [deco, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args


def _plain_add(arr: str, idx: str, val: str) -> str:
    return f"{arr}[{idx}] += {val}"


def _neuron_kernel(plan: Plan, pp: PopPlan, parallel: bool):
    names = Names()
    pfx, keys = pp.prefix, pp.keys
    loop = "prange" if parallel else "range"
    body = [f"n = {names(keys.flag)}.shape[0]", f"for i in {loop}(n):"]
    partitioned = {q.prefix for q in plan.incoming(pp) if _accumulates(q)} if parallel else set()
    body += indent(neuron_body(plan, pp, names, partitioned=partitioned, inline_arrays=True), 1)
    body += indent([f"{names(keys.flag)}[i] = _spk"], 1)
    if pp.pop.model.spikes:
        # serial compaction keeps spikes in ascending neuron order whatever the thread count
        spk, cnt, nspk = names(keys.spk), names(keys.spkcnt), names(keys.nspk)
        rs, ri, rn = names(keys.rec_step), names(keys.rec_idx), names(keys.rec_n)
        body += [
            f"slot = step % {cnt}.shape[0]",
            "c = 0",
            f"cap = {rs}.shape[0]",
            f"r = {rn}[0]",
            "for i in range(n):",
            f"    if {names(keys.flag)}[i]:",
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


def _accumulates(q: ProjPlan) -> bool:
    """Does the projection add input in the partitioned kernels (and so own ``qb_accbuf``)?"""
    return any(o == ("", "_to_post") for ph in ("on_pre", "dynamics") if ph in q.funcs for o in q.funcs[ph].outputs)


def _partitioned(rows: str, count: str, acc: str, inner: list[str]) -> list[str]:
    """Loop over ``count`` rows (``i = <rows expression of r>``) split into P partitions with private
    accumulation buffers, then add the buffers to the target in partition order (deterministic)."""
    return ([f"P = {acc}.shape[0]", f"chunk = ({count} + P - 1) // P", "for c in prange(P):",
             "    buf = " + acc + "[c]", f"    for r in range(c * chunk, min({count}, (c + 1) * chunk)):",
             f"        i = {rows}"] + indent(inner, 2))


def _buffer_add(arr: str, idx: str, val: str) -> str:
    return f"buf[{idx}] += {val}"


def _row_loop(q: ProjPlan, names: Names, syn: list[str]) -> list[str]:
    if q.proj.dense:
        return ["for k in range(n_post):", "    j = k"] + indent(syn, 1)
    ind, rl = names(q.keys.ind), names(q.keys.rowlen)
    return [f"for k in range({rl}[i]):", f"    j = {ind}[i, k]"] + indent(syn, 1)


def _propagate_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp, proj = q.prefix, q.proj
    pre = plan.pop_plan(proj.pre).keys
    spk, cnt = names(pre.spk), names(pre.spkcnt)
    insyn = names(q.keys.in_syn)
    body = [f"slot = (step - {1 + proj.delay}) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"n_post = {insyn}.shape[0]", f"stride = {names(q.keys.ind)}.shape[1]"]
    if parallel:
        acc = names(q.keys.accbuf)
        syn = synapse_body(q, "on_pre", names, _buffer_add)
        # the buffers are added to in_syn by the neuron update (no extra pass over the targets)
        body += _partitioned(f"{spk}[slot, r]", "nspk", acc, _row_loop(q, names, syn))
    else:
        syn = synapse_body(q, "on_pre", names, _plain_add)
        rows = ["for s in range(nspk):", f"    i = {spk}[slot, s]"] + indent(_row_loop(q, names, syn), 1)
        if q.taps:  # through the kernel taps when the backend found the synapses to be the geometry's
            rows = tap_propagate(plan, q, names, spk, insyn, rows)
        body += rows
    return _kernel(f"{qp}_propagate", names, body, parallel)


def _post_learn_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp, proj = q.prefix, q.proj
    post = plan.pop_plan(proj.post).keys
    spk, cnt = names(post.spk), names(post.spkcnt)
    loop = "prange" if parallel else "range"
    body = [f"slot = (step - 1) % {cnt}.shape[0]", f"nspk = {cnt}[slot]",
            f"stride = {names(q.keys.ind)}.shape[1]", f"for s in {loop}(nspk):", f"    j = {spk}[slot, s]"]
    syn = synapse_body(q, "on_post", names, _plain_add)
    if proj.dense:
        body += [f"    for i in range({names(q.keys.rowlen)}.shape[0]):", "        k = j"] + indent(syn, 2)
    else:
        cl, cs = names(q.keys.collen), names(q.keys.colsyn)
        body += [f"    for c in range({cl}[j]):", f"        syn = {cs}[j, c]", "        i = syn // stride",
                 "        k = syn - i * stride"] + indent(syn, 2)
    return _kernel(f"{qp}_post_learn", names, body, parallel)


def _dynamics_kernel(plan: Plan, q: ProjPlan, parallel: bool):
    names = Names()
    qp = q.prefix
    rl, insyn = names(q.keys.rowlen), names(q.keys.in_syn)
    accumulates = any(o == ("", "_to_post") for o in q.funcs["dynamics"].outputs)
    body = [f"stride = {names(q.keys.ind)}.shape[1]", f"n_pre = {rl}.shape[0]", f"n_post = {insyn}.shape[0]"]
    if parallel and accumulates:
        acc = names(q.keys.accbuf)
        syn = synapse_body(q, "dynamics", names, _buffer_add)
        body += _partitioned("r", "n_pre", acc, _row_loop(q, names, syn))
    else:
        syn = synapse_body(q, "dynamics", names, _plain_add)
        loop = "prange" if parallel else "range"  # no accumulation: rows are independent
        body += [f"for i in {loop}(n_pre):"] + indent(_row_loop(q, names, syn), 1)
    return _kernel(f"{qp}_syn_dynamics", names, body, parallel)


def _update_kernel(plan: Plan, u: UpdatePlan, parallel: bool):
    """Row kernel of a connectivity update: rows are independent (each owns its slots), so the
    parallel variant is a plain ``prange``.  Counters accumulate into ``cu<k>_stats``: removed, added,
    full-row adds (errors), failed adds (handled by the rule), out-of-range targets, column overflows,
    duplicate adds (errors)."""
    names = Names()
    # serial kernels keep the column view up to date themselves (no O(synapses) rebuild per update)
    code = u.code_incremental if (not parallel and u.code_incremental is not None) else u.code
    names.used |= set(code.names)
    q = u.proj
    ind, rowlen = names(q.keys.ind), names(q.keys.rowlen)
    post = names(plan.pop_plan(q.proj.post).keys.flag)  # [num_post], or [batch, num_post]
    stats = names(u.keys.stats)
    # rows are split into contiguous partitions, each with its own selection scratch buffer
    # (``cu<k>_scratch``, allocated by the backend); rows are independent, so any partitioning gives
    # the same result
    body = [f"_stride = {ind}.shape[1]", f"n_pre = {rowlen}.shape[0]", f"_npost = {post}.shape[-1]",
            "_nrem = 0", "_nadd = 0", "_full = 0", "_failed = 0", "_bad = 0", "_dup = 0", "_colovf = 0",
            f"_P = {names(u.keys.scratch)}.shape[0]", "_chunk = (n_pre + _P - 1) // _P",
            f"for _c in {'prange' if parallel else 'range'}(_P):", f"    _scratch = {names(u.keys.scratch)}[_c]"]
    active = u.update.model.active_if
    # rows the rule leaves alone cost one load
    skip = [f"if {names(u.code.row_keys[active])}[i] == 0:", "    continue"] if active is not None else []
    # rules that touch a few random synapses per row are bound by memory latency: pipeline them; rules
    # that stream whole rows are not (measured: SET's 10 % rewire gained nothing and lost ~5 %)
    if not code.predraw or code.scans_row:
        body += ["    for i in range(_c * _chunk, min(n_pre, (_c + 1) * _chunk)):"]
        body += indent(skip + code.body, 2)
    else:
        body += indent(_pipelined_rows(code, skip, names), 1)
    counters = {STAT.removed: "_nrem", STAT.added: "_nadd", STAT.full: "_full", STAT.failed_adds: "_failed",
                STAT.bad_target: "_bad", STAT.duplicate: "_dup", STAT.column_overflow: "_colovf"}
    body += [f"{stats}[{n}] += {v}" for n, v in sorted(counters.items())]
    deco = "@njit(cache=True, parallel=True)" if parallel else "@njit(cache=True)"
    args = _LOOP_SCALARS + sorted(names.used)
    return [deco, f"def {u.prefix}_row({', '.join(args)}):"] + indent(body, 1) + [""], args


#: rows per tile of a pipelined row loop (random turnover: 4, 8 and 16 within noise in the loop; 8 beat
#: 16 and 32 in a probe of the kernel alone)
_TILE = 8


def _pipelined_rows(code, skip: list[str], names: Names) -> list[str]:
    """The partition's row loop for row code that draws random numbers and touches O(1) synapses per
    row (no synapse loop or whole-row selection), software-pipelined over tiles of _TILE rows: tile
    t + 2 gets its first Philox blocks drawn (and the cache lines they point at prefetched), tile t + 1
    prefetches what depends on those lines, tile t runs the row code.  A Philox block is well over a
    hundred instructions: drawn inline, two of them per row kept the next rows' loads out of the CPU's
    out-of-order window, so each row's cache misses were paid one after another."""
    draw, settle, load, used = predraw_stages(code, "_pd", "_q")
    names.used.update(used)
    ring = 3 * _TILE

    def tile(t):
        return [f"for i in range(_lo + {t} * {_TILE}, min(_hi, _lo + {t} * {_TILE} + {_TILE})):"]

    L = ["_lo = _c * _chunk", "_hi = min(n_pre, _lo + _chunk)",
         f"_ntile = (max(_hi - _lo, 0) + {_TILE - 1}) // {_TILE}",
         f"_pd = np.empty(({ring}, 8), np.uint64)", "for _tt in range(-2, _ntile):",
         "    if _tt + 2 < _ntile:"]
    L += indent(tile("(_tt + 2)") + indent(skip + [f"_q = (i - _lo) % {ring}"] + draw, 1), 2)
    if settle:
        L += ["    if _tt + 1 >= 0 and _tt + 1 < _ntile:"]
        L += indent(tile("(_tt + 1)") + indent(skip + [f"_q = (i - _lo) % {ring}"] + settle, 1), 2)
    L += ["    if _tt < 0:", "        continue"]
    L += indent(tile("_tt") + indent(skip + [f"_q = (i - _lo) % {ring}"] + load + code.body_predrawn, 1), 1)
    return L


def _global_functions(plan: Plan, parallel: bool) -> list[str]:
    """Compiled global phases: ``cu<k>_global`` (multi-threaded array code when ``parallel``) for calls
    from Python, and a serial ``cu<k>_global_s`` that scheduled updates call inside ``run``."""
    from .globalcode import array_rng_source

    L = [array_rng_source()] if any(u.global_code for u in plan.updates) else []
    for u in plan.updates:
        if u.global_code is None:
            continue
        src = u.global_code.source
        L += ["@njit(cache=True, parallel=True)" if parallel else "@njit(cache=True)", src]
        if u.update.every is not None:
            L += ["@njit(cache=True)", src.replace(f"def {u.prefix}_global(", f"def {u.prefix}_global_s(")]
    return L


def emit_global_module(plan: Plan) -> str:
    """A CPU module holding only what the CUDA backend runs on the host: compiled global phases and
    per="population" custom updates."""
    L = header("cpu", plan.network.precision) + _global_functions(plan, True)
    for c in plan.customs:
        if c.array is not None:
            L += custom.cpu_kernel(plan, c, f"{c.prefix}_update", chunked=False)[0]
    return merge_identical("\n".join(L))


def host_custom_args(plan: Plan) -> dict[str, list[str]]:
    """Argument names of the per="population" custom updates in :func:`emit_global_module`."""
    return {c.prefix: custom.cpu_kernel(plan, c, f"{c.prefix}_update", chunked=False)[1]
            for c in plan.customs if c.array is not None}


def update_kernel_args(plan: Plan, parallel: bool) -> dict[str, list[str]]:
    """Argument names of each update's row kernel (``cu<k>_row``), for calls from Python."""
    return {u.prefix: _update_kernel(plan, u, parallel)[1] for u in plan.updates}


def custom_kernel_args(plan: Plan) -> dict[str, list[str]]:
    """Argument names of each custom update's kernel (``cx<k>_update``), for calls from Python."""
    return {c.prefix: custom.cpu_kernel(plan, c, f"{c.prefix}_update")[1] for c in plan.customs}


def _inline_body(kernel_lines: list[str], args: list[str], tag: str) -> list[str]:
    """The body of a generated kernel, its locals suffixed with ``__tag`` so that kernels inlined into
    one function never share a variable (its arguments are ``run``'s variables of the same names)."""
    fdef = ast.parse("\n".join(kernel_lines[1:])).body[0]
    args = set(args)
    local = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - args

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in local:
                node.id = f"{node.id}__{tag}"
            return node

    body = [Rename().visit(st) for st in fdef.body]
    return [f"# {tag}"] + ast.unparse(ast.Module(body=body, type_ignores=[])).splitlines()


def emit_module(plan: Plan, *, parallel: bool) -> tuple[str, list[str]]:
    """Source of the CPU module and the argument names of its ``run`` function (after the scalars
    ``step0, n_steps, dt64, seed, rec_every``)."""
    L = header("cpu", plan.network.precision) + scalar_functions(plan, "cpu")
    calls = {"dynamics": [], "propagate": [], "post_learn": [], "neuron": []}
    all_args: set[str] = set()

    def add(kernel_lines_args, phase, name):
        lines, args = kernel_lines_args
        if parallel:
            calls[phase].append(_inline_body(lines, args, name))
        else:
            L.extend(lines)
            calls[phase].append([f"{name}({', '.join(args)})"])
        all_args.update(a for a in args if a not in _LOOP_SCALARS)

    for q in plan.projs:
        if "dynamics" in q.funcs:
            add(_dynamics_kernel(plan, q, parallel), "dynamics", f"{q.prefix}_syn_dynamics")
        if "on_pre" in q.funcs:
            add(_propagate_kernel(plan, q, parallel), "propagate", f"{q.prefix}_propagate")
        if "on_post" in q.funcs:
            add(_post_learn_kernel(plan, q, parallel), "post_learn", f"{q.prefix}_post_learn")
    for pp in plan.pops:
        add(_neuron_kernel(plan, pp, parallel), "neuron", f"{pp.prefix}_neuron_update")
    L += _global_functions(plan, parallel)
    for u in plan.updates:
        lines, args = _update_kernel(plan, u, parallel)
        L.extend(lines)  # callable from Python (Simulation.custom_update) in both variants
        if u.update.every is not None:  # scheduled: also runs at the end of every `every`-th step
            block = _inline_body(lines, args, u.prefix) if parallel else [f"{u.prefix}_row({', '.join(args)})"]
            if u.global_code is not None:  # the global phase comes first
                gargs = ["seed", "step", "t", "dt"] + u.global_code.args
                block = [f"{u.prefix}_global_s({', '.join(gargs)})"] + block
                all_args.update(u.global_code.args)
            q = u.proj
            if q.needs_columns and parallel:  # keep the column view consistent before the next step's learning
                cols = [q.keys.ind, q.keys.rowlen, q.keys.collen, q.keys.colsyn]
                st = u.keys.stats
                changes = f"{st}[{STAT.removed}] + {st}[{STAT.added}]"
                # rebuilt only when this call removed or added synapses (most rewiring steps change nothing)
                block = [f"_changes_{u.prefix} = {changes}"] + block
                block += [f"if {changes} != _changes_{u.prefix}:",
                          f"    if _fill_cols({', '.join(cols)}) >= 0:", f"        {st}[{STAT.column_overflow}] += 1"]
                all_args.update(cols)
            calls["neuron"].append([f"if (step + 1) % {u.update.every} == 0:"] + ["    " + b for b in block])
            all_args.update(a for a in args if a not in _LOOP_SCALARS)
    for c in plan.customs:
        # callable from Python (Simulation.custom_update); a scheduled one also runs, serially, in `run`
        lines, args = custom.cpu_kernel(plan, c, f"{c.prefix}_update")
        L.extend(lines)
        if c.update.every is not None:
            lines, args = custom.cpu_kernel(plan, c, f"{c.prefix}_update_s", chunked=False)
            L.extend(lines)
            calls["neuron"].append([f"if (step + 1) % {c.update.every} == 0:",
                                    f"    {c.prefix}_update_s({', '.join(args)})"])
            all_args.update(a for a in args if a not in _LOOP_SCALARS)
    rec_lines = []
    for r, (pop_name, var) in enumerate(plan.recorded_vars):
        src = plan.pop_plan(plan.network.populations[pop_name]).keys.var(var)
        all_args.update({src, rec_var(r)})
        # an element loop: a slice assignment would pull in numba's broadcasting checks and their error
        # formatting, several seconds of compilation per module
        rec_lines += [f"        for _i in range({src}.shape[0]):", f"            {rec_var(r)}[row, _i] = {src}[_i]"]
    run_args = sorted(all_args)
    L += ["@njit(cache=True, parallel=True)" if parallel else "@njit(cache=True)",
          f"def run(step0, n_steps, dt64, seed, rec_every, {', '.join(run_args)}):",
          "    dt = _T(dt64)",
          "    for step in range(step0, step0 + n_steps):",
          "        t = _T(step * dt64)"]
    for phase in ("dynamics", "propagate", "post_learn", "neuron"):
        for block in calls[phase]:
            L += ["        " + c for c in block]
    if rec_lines:
        L += ["        if (step - step0) % rec_every == 0:", "            row = (step - step0) // rec_every"]
        L += ["    " + line for line in rec_lines]
    L += ["    return", ""]
    if plan.batched:
        if parallel:
            raise ValueError("batched modules run each batch element's time loop serially (parallel=False); "
                             "the batch itself is the parallel loop")
        L += _batched_run(plan, run_args)
    return merge_identical("\n".join(L)), run_args


def _batched_run(plan: Plan, run_args: list[str]) -> list[str]:
    """``run_batched``: a chunk of the batch elements per call (chunks on threads, see
    ``custom.chunked_def``), each element running the whole serial time loop ``run`` on
    its own slices of the per-element arrays (no barrier per step; elements share only read-only state,
    so results do not depend on the thread count).  Element b draws random numbers keyed by
    ``batch_seed(seed, b)``."""
    count = plan.pops[0].keys.flag  # every population has per-element spike flags
    sliced = [f"{a}[_b]" if a in plan.duplicated else a for a in run_args]
    body = custom.chunk_bounds(f"{count}.shape[0]") + [
        "for _b in range(_lo, _hi):",
        f"    run(step0, n_steps, dt64, batch_seed(seed, _b), rec_every, {', '.join(sliced)})", "return"]
    return custom.chunked_def("run_batched", ["step0", "n_steps", "dt64", "seed", "rec_every"] + run_args, body)
