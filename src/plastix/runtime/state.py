"""Host-side state: every array and scalar a plan's kernels use, allocated and initialised from the
network description (keys built by :mod:`plastix.codegen.names`)."""
from __future__ import annotations

import numpy as np

from ..codegen.names import ALL_TAPE_ROWS, NAMES, STATS_SIZE, TAPE_ROWS, TAPE_T0
from ..codegen.plan import Plan
from ..errors import NetworkError, StateError
from ..model import connectivity as conn
from ..model.init import resolve
from ..model.network import Network
from . import columns_host


def var_dtype(var, precision: str):
    return np.dtype(precision if var.dtype == "scalar" else var.dtype)


def _init_vars(state, key, vars_, given, n, rng, precision, what):
    """Initialise ``vars_`` (one value per element, ``n`` elements) under the keys ``key(name)``."""
    for name, var in vars_.items():
        values = resolve(given.get(name, var.init), rng, n, f"{what} var {name!r}")
        state[key(name)] = np.ascontiguousarray(values, dtype=var_dtype(var, precision))


def set_params(state, key, model, params: dict, dt: float, precision: str) -> None:
    """Store ``model``'s (derived) parameters under the keys ``key(name)``."""
    for name, value in model.derive(params, dt).items():
        state[key(name)] = np.dtype(precision).type(value)


def build_connectivity(proj, rng: np.random.Generator):
    """(ind, rowlen, pre, slot, order) for a sparse projection; ``order`` reorders user-given
    per-synapse arrays into row order (None when they already are)."""
    n_pre, n_post = proj.pre.size, proj.post.size
    init = proj.connectivity
    order = None
    try:
        stride = conn.row_stride_for(init, n_pre, n_post, proj.row_stride, proj.headroom)
        if isinstance(init, conn.FromArrays):
            pre, post, order = init.build_with_order(n_pre, n_post)
        else:
            pre, post = init.build(n_pre, n_post, rng)
        ind, rowlen, slot = conn.to_ragged(pre, post, n_pre, stride, num_post=n_post, name=proj.name)
    except ValueError as e:
        msg = str(e)
        raise NetworkError(msg if repr(proj.name) in msg else f"projection {proj.name!r}: {msg}") from None
    return ind, rowlen, pre, slot, order


def allocate(net: Network, plan: Plan, col_headroom: float = 1.0) -> dict[str, np.ndarray]:
    """Fresh state for ``plan``, initialised with the network's seed (host numpy generator)."""
    prec = net.precision
    rng = np.random.default_rng(net.seed)
    state: dict[str, np.ndarray] = {}
    for pp in plan.pops:
        pop, keys = pp.pop, pp.keys
        n = pop.size
        _init_vars(state, keys.var, pop.model.vars, pop.init, n, rng, prec, f"population {pop.name!r}")
        set_params(state, keys.param, pop.model, pop.params, net.dt, prec)
        for e in pop.model.egps:
            state[keys.egp(e)] = np.zeros(0, np.float64)
        slots = net.spike_slots(pop)
        state[keys.spk] = np.zeros((slots, n), np.int32)
        state[keys.spkcnt] = np.zeros(slots, np.int32)
        state[keys.flag] = np.zeros(n, np.uint8)
        state[keys.nspk] = np.zeros(1, np.int64)
        state[keys.rec_step] = np.zeros(0, np.int32)
        state[keys.rec_idx] = np.zeros(0, np.int32)
        state[keys.rec_n] = np.zeros(1, np.int64)
    for q in plan.projs:
        proj, keys = q.proj, q.keys
        wu, psm = proj.weight_update, proj.postsynaptic
        n_pre, n_post = proj.pre.size, proj.post.size
        what = f"projection {proj.name!r}"
        if proj.dense:
            state[keys.ind] = np.zeros((0, n_post), np.int32)  # implicit j = k; shape[1] is the stride
            state[keys.rowlen] = np.full(n_pre, n_post, np.int32)
            n_syn = n_pre * n_post
            pre_idx = np.repeat(np.arange(n_pre), n_post)
            slot = np.tile(np.arange(n_post), n_pre)
            order = None
            stride = n_post
        else:
            ind, rowlen, pre_idx, slot, order = build_connectivity(proj, rng)
            state[keys.ind], state[keys.rowlen] = ind, rowlen
            n_syn, stride = pre_idx.size, ind.shape[1]
        for name, var in wu.vars.items():
            values = resolve(proj.init.get(name, var.init), rng, n_syn, f"{what} synapse var {name!r}")
            if order is not None and np.ndim(proj.init.get(name, 0)) == 1:
                values = values[order]  # user arrays follow their own (pre, post) order
            arr = np.zeros((n_pre, stride), var_dtype(var, prec))
            arr[pre_idx, slot] = values
            state[keys.syn(name)] = arr
        _init_vars(state, keys.pre, wu.pre_vars, proj.pre_init, n_pre, rng, prec, what + " pre")
        _init_vars(state, keys.post, wu.post_vars, proj.post_init, n_post, rng, prec, what + " post")
        _init_vars(state, keys.psm, psm.vars, proj.psm_init, n_post, rng, prec, what + " postsynaptic")
        set_params(state, keys.param, wu, proj.wu_params, net.dt, prec)
        set_params(state, keys.psm_param, psm, proj.psm_params, net.dt, prec)
        if q.uses_bits:
            check_no_duplicates(state[keys.ind], state[keys.rowlen], what)
            state[keys.bits] = target_bits(state[keys.ind], state[keys.rowlen], n_post)
        if q.needs_columns:
            rewired = any(u.projection is proj for u in net.connectivity_updates.values())
            # rewiring changes in-degrees: leave room for twice the in-degree full rows could give on
            # average, so the view (rebuilt inside the compiled loop by scheduled rules) rarely overflows
            extra = int(2 * state[keys.ind].shape[1] * n_pre / n_post) + 8 if rewired else 0
            columns_host.allocate(state, keys, n_post, 2.0 if rewired else col_headroom, what, extra=extra)
    for upd in net.connectivity_updates.values():
        ukeys, m = NAMES.update(upd), upd.model
        pkeys = NAMES.proj(upd.projection)
        rowlen = state[pkeys.rowlen]
        n_pre, stride = state[pkeys.ind].shape
        valid = np.arange(stride)[None, :] < rowlen[:, None]
        what = f"connectivity update {upd.name!r}"
        for name, var in m.vars.items():
            arr = np.zeros((n_pre, stride), var_dtype(var, prec))
            arr[valid] = resolve(upd.init.get(name, var.init), rng, int(valid.sum()), f"{what} var {name!r}")
            state[ukeys.syn(name)] = arr
        _init_vars(state, ukeys.row, m.row_vars, upd.row_init, n_pre, rng, prec, what + " row")
        for name, var in m.global_vars.items():  # scalars kept as 1-element arrays (written by kernels)
            state[ukeys.glob(name)] = np.full(1, var.init, var_dtype(var, prec))
        set_params(state, ukeys.param, m, upd.params, net.dt, prec)
        state[ukeys.stats] = np.zeros(STATS_SIZE, np.int64)
    if any(cu.model.events for cu in net.custom_updates.values()):
        state[TAPE_T0] = np.zeros(1, np.int64)
    if any(cu.model.over_time for cu in net.custom_updates.values()):
        state[TAPE_ROWS] = np.array(ALL_TAPE_ROWS, np.int64)
    for cu in net.custom_updates.values():
        keys, m = NAMES.custom(cu), cu.model
        what = f"custom update {cu.name!r}"
        if cu.per_synapse:
            pkeys = NAMES.proj(cu.target)
            rowlen = state[pkeys.rowlen]
            n_pre, stride = rowlen.shape[0], state[pkeys.ind].shape[1]  # (dense: ind is [0, num_post])
            valid = np.arange(stride)[None, :] < rowlen[:, None]
            for name, var in m.vars.items():
                arr = np.zeros((n_pre, stride), var_dtype(var, prec))
                arr[valid] = resolve(cu.init.get(name, var.init), rng, int(valid.sum()), f"{what} var {name!r}")
                state[keys.var(name)] = arr
        else:
            _init_vars(state, keys.var, m.vars, cu.init, cu.target.size, rng, prec, what)
        for name, var in m.global_vars.items():  # scalars kept as 1-element arrays
            state[keys.glob(name)] = np.full(1, var.init, var_dtype(var, prec))
        set_params(state, keys.param, m, cu.params, net.dt, prec)
    state.update(plan.stream_constants())
    if plan.batched:  # every batch element starts from the same initial state
        for key in plan.duplicated:
            if key in state:
                state[key] = np.ascontiguousarray(np.repeat(state[key][None], plan.batch_size, axis=0))
    return state


def target_bits(ind: np.ndarray, rowlen: np.ndarray, num_post: int) -> np.ndarray:
    """Per-row bitmask of connected targets, [num_pre, ceil(num_post / 32)] uint32 (bit j of row i set
    when row i has a synapse to j); maintained by connectivity updates for ``row.sample_free``."""
    n_pre = ind.shape[0]
    bits = np.zeros((n_pre, (num_post + 31) // 32), np.uint32)
    valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
    rows = np.nonzero(valid)[0]
    j = ind[valid].astype(np.int64)
    np.bitwise_or.at(bits, (rows, j >> 5), (np.uint32(1) << (j & 31).astype(np.uint32)))
    return bits


def check_no_duplicates(ind: np.ndarray, rowlen: np.ndarray, what: str) -> None:
    """Projections whose rules sample free targets keep duplicate-free rows (the bitmask tracks targets)."""
    stride = ind.shape[1]
    srt = np.sort(np.where(np.arange(stride)[None, :] < rowlen[:, None], ind, -1 - np.arange(stride)[None, :]), axis=1)
    dup = np.nonzero(np.any(srt[:, 1:] == srt[:, :-1], axis=1))[0]
    if dup.size:
        raise NetworkError(f"{what}: row {dup[0]} has duplicate synapses, but a connectivity update on this "
                           "projection samples free targets (row.sample_free), which needs duplicate-free rows")


def check_finite(state: dict, plan: Plan, step: int) -> None:
    """Raise :class:`StateError` naming the first non-finite neuron or synapse variable."""
    for pp in plan.pops:
        for v, var in pp.pop.model.vars.items():
            if var.dtype != "scalar":
                continue
            bad = np.argwhere(~np.isfinite(state[pp.keys.var(v)]))
            if bad.size:
                raise StateError(f"population {pp.pop.name!r}: variable {v!r} is not finite at neuron {bad[0][-1]}"
                                 f"{_element(bad[0])} ({len(bad)} values) after step {step - 1}; check parameters "
                                 "and inputs")
    for q in plan.projs:
        rowlen = state[q.keys.rowlen]
        for v in q.proj.weight_update.vars:
            arr = state[q.keys.syn(v)]
            if arr.dtype.kind != "f" or np.isfinite(arr).all():  # fast path: padding is finite too
                continue
            valid = np.arange(arr.shape[1])[None, :] < rowlen[:, None]
            bad = np.argwhere(~np.isfinite(arr) & valid)
            if bad.size:
                i, k = bad[0][-2:]
                raise StateError(f"projection {q.proj.name!r}: synapse variable {v!r} is not finite at row {i}, "
                                 f"slot {k}{_element(bad[0], 2)} after step {step - 1}")
        for v in q.proj.postsynaptic.vars:
            bad = np.argwhere(~np.isfinite(state[q.keys.psm(v)]))
            if bad.size:
                raise StateError(f"projection {q.proj.name!r}: postsynaptic variable {v!r} is not finite at "
                                 f"target {bad[0][-1]}{_element(bad[0])} after step {step - 1}")


def _element(index, trailing: int = 1) -> str:
    """' of batch element b' for an index into an array with a leading batch axis, else ''."""
    return f" of batch element {index[0]}" if len(index) > trailing else ""


def validate_values(values, shape, dtype, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(shape, arr.item())
    if arr.shape != tuple(shape):
        raise StateError(f"{what}: expected shape {tuple(shape)}, got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise StateError(f"{what}: values must be finite (found NaN or inf)")
    return np.ascontiguousarray(arr, dtype=dtype)
