"""A Conv2D projection's weight gradient summed by kernel entry straight from the last run's tape.

:func:`kernel_event_sum` is what a per-synapse weight-gradient update over presynaptic events (BPTT's
``dL/dw_ij = sum over the spikes of i of x du_j where they arrive``) followed by
:func:`~plastix.conv.kernel_sum` computes, without the per-synapse accumulators: each recorded event of the
presynaptic population visits its taps from the geometry (:mod:`.events`).  That equality holds when every
kernel entry has either all its synapses or none (what :func:`~plastix.conv.prune_channel`,
:func:`~plastix.conv.regrow_slice` and SD-SNN's entry masks leave); :func:`whole_entries` says whether it
does, and a projection that lost single synapse instances gets a clear error.
"""
from __future__ import annotations

import functools

import numpy as np

from ..codegen.names import NAMES, TAPE_T0
from ..errors import StateError
from ..model.conv import AvgPool2D, Conv2D
from ..runtime.windows import tape_rows
from .events import entry_counts, event_tap_sums, pool_window_transpose, tap_table, tap_transpose_add, transpose_table
from .shared import conv_projection

__all__ = ["full_entry_counts", "whole_entries", "kernel_event_sum", "kernel_transpose_add", "pool_transpose_add"]


def full_entry_counts(conv: Conv2D) -> np.ndarray:
    """Synapse instances of every kernel entry when the projection is complete ([C_out, C_in, kh, kw],
    int64): the output positions whose window puts tap ``(ky, kx)`` inside the input."""
    (_, h, w), (kh, kw), (sh, sw), (ph, pw) = conv.in_shape, conv.kernel, conv.stride, conv.padding
    _, ho, wo = conv.out_shape

    def per_tap(size, k, s, p, out):
        pos = np.arange(out)[None, :] * s - p + np.arange(k)[:, None]   # [tap, output] input coordinate
        return ((pos >= 0) & (pos < size)).sum(axis=1)

    taps = np.outer(per_tap(h, kh, sh, ph, ho), per_tap(w, kw, sw, pw, wo))
    return np.broadcast_to(taps, conv.kernel_shape).astype(np.int64)


@functools.lru_cache(maxsize=32)
def _tap_table(in_shape, kernel, stride, padding, out_hw):
    return tap_table(in_shape, kernel, stride, padding, out_hw)


@functools.lru_cache(maxsize=32)
def _transpose_table(in_shape, kernel, stride, padding, out_hw):
    return transpose_table(in_shape, kernel, stride, padding, out_hw)


def _taps(conv: Conv2D, transposed: bool = False):
    table = _transpose_table if transposed else _tap_table
    return table(conv.in_shape, conv.kernel, conv.stride, conv.padding, tuple(conv.out_shape[1:]))


def _counts(sim, q, conv, keys) -> tuple[np.ndarray, np.ndarray]:
    kidx_key = keys.syn("kidx")
    sim.backend.pull(sim.state, [keys.rowlen, kidx_key])
    size = int(np.prod(conv.kernel_shape))
    count = entry_counts(sim.state[kidx_key], sim.state[keys.rowlen], size).reshape(conv.kernel_shape)
    return count, full_entry_counts(conv)


def whole_entries(sim, proj: str) -> bool:
    """True when every kernel entry of the Conv2D projection ``proj`` has all its synapses or none."""
    q, conv, keys = conv_projection(sim, proj)
    count, full = _counts(sim, q, conv, keys)
    return bool(np.all((count == 0) | (count == full)))


def _present_entries(sim, q, conv, keys, what: str) -> np.ndarray:
    """[C_out, C_in, kh, kw] True where a kernel entry has its synapses; a partial entry is an error."""
    count, full = _counts(sim, q, conv, keys)
    partial = (count != 0) & (count != full)
    if np.any(partial):
        k = tuple(int(a) for a in np.argwhere(partial)[0])
        raise StateError(f"{what}({q.name!r}): kernel entry {k} has {count[k]} of its {full[k]} synapses; "
                         "the sum by kernel entry needs every entry whole or absent (use the per-synapse "
                         "updates and kernel_sum instead)")
    return count > 0


def _tape(sim, pop: str, var: str, what: str, caller: str) -> np.ndarray:
    recorded = sim.plan.recorded_vars
    if (pop, var) not in recorded:
        raise StateError(f"{caller}: {what} {pop}.{var} is not on the tape (a custom update over the "
                         f"tape must read it, or record it with sim.record({pop!r}, {var!r}))")
    key = NAMES.rec_var(recorded.index((pop, var)))
    sim.backend.pull(sim.state, [key])
    return sim.state[key]


def kernel_event_sum(sim, proj: str, post_var: str, pre_var: str | None = None, rows=None) -> np.ndarray:
    """``out[k]`` = the sum over the synapses ``s`` with ``kidx[s] == k`` and over the presynaptic events of
    the last run (every batch element) of ``post_var`` of the target at the tape row where the event
    arrives (``1 + delay`` after it was emitted), times ``pre_var`` of the source at the event's step when
    given (a graded event's value); float64 [C_out, C_in, kh, kw].

    This is :func:`~plastix.conv.kernel_sum` of a per-synapse ``gw = du`` (or ``du * x``) update over
    presynaptic events (``events="pre_spikes"``), computed per kernel entry.  Needs the batched
    simulation's tape of ``post_var`` (and ``pre_var``) and the presynaptic spikes on the tape (a custom
    update over presynaptic events of ``proj`` records them), and whole kernel entries
    (:func:`whole_entries`): entries without synapses get 0.  ``rows=(first, stop)``: only the events
    arriving at tape rows ``first .. stop - 1`` (as ``Simulation.custom_update(..., rows=)``).
    """
    row0, row1 = tape_rows(rows, f"kernel_event_sum({proj!r})")
    q, conv, keys = conv_projection(sim, proj)
    if not sim.plan.batched:
        raise StateError(f"kernel_event_sum({proj!r}) needs a batched simulation (Simulation(..., batch_size=B))")
    for var, pop, role in ((post_var, q.post, "post_var"), (pre_var, q.pre, "pre_var")):
        if var is not None and var not in pop.model.vars:
            raise StateError(f"kernel_event_sum({proj!r}): {role} {var!r} is not a variable of population "
                             f"{pop.name!r}; known: {sorted(pop.model.vars)}")
    if q.pre.name not in sim.recorder.tape_spikes and q.pre.name not in sim.recorder.spike_pops:
        raise StateError(f"kernel_event_sum({proj!r}): the spikes of {q.pre.name!r} are not recorded (a custom "
                         "update over its presynaptic events records them)")
    present = _present_entries(sim, q, conv, keys, "kernel_event_sum")
    channels = np.flatnonzero(present.any(axis=(1, 2, 3))).astype(np.int64)
    out = np.zeros(conv.kernel_shape)
    if channels.size == 0:
        return out
    post = _tape(sim, q.post.name, post_var, "post_var", "kernel_event_sum")
    pre = _tape(sim, q.pre.name, pre_var, "pre_var", "kernel_event_sum") if pre_var is not None else post[:, :, :1]
    pk = NAMES.pop(sim.access.pop(q.pre.name))
    sim.backend.pull(sim.state, [pk.rec_step, pk.rec_idx, pk.rec_n, TAPE_T0])
    start, tap, tap_out = _taps(conv)
    c_in, (kh, kw) = conv.in_shape[0], conv.kernel
    # each element's sums in the tape's precision, as the per-synapse update accumulates (a float32 row
    # of 40 channels is one cache line pair, and 135 entries x 40 channels stay in L1); elements in float64
    partials = np.empty((post.shape[0], c_in * kh * kw, channels.size), post.dtype)
    event_tap_sums(sim.state[pk.rec_step], sim.state[pk.rec_idx], sim.state[pk.rec_n], int(sim.state[TAPE_T0][0]),
                   1 + q.delay, post, pre, pre_var is not None, channels, conv.out_shape[1] * conv.out_shape[2],
                   start, tap, tap_out, partials, row0, row1)
    total = np.zeros(partials.shape[1:])
    for b in range(partials.shape[0]):   # element order: the same sum whatever the thread count
        total += partials[b]
    out[channels] = total.T.reshape((channels.size, c_in, kh, kw))
    out[~present] = 0.0
    return out


def kernel_transpose_add(sim, proj: str, post_var: str, pre_var: str, kernel, rows=None) -> None:
    """Add the transposed convolution of the last run's ``post_var`` tape into the presynaptic ``pre_var``
    tape: ``pre_var[b, u, i] += sum`` over the synapses ``s`` of ``i`` of ``kernel.flat[kidx[s]] *
    post_var[b, u + 1 + delay, target(s)]``, for ``u`` up to the tape's end less ``1 + delay``.

    This is a per-synapse backward scan ``gz += w * du`` over the tape (what carries BPTT's adjoint down
    through a projection) for a projection whose synapses hold ``kernel`` (tied, :func:`~plastix.conv.tie`),
    computed per batch element and step as kernel x tape row into column buffers, then col2im.  Needs
    whole kernel entries (:func:`whole_entries`); entries without synapses count as 0.  ``kernel``
    [C_out, C_in, kh, kw]; the values used are those the synapses hold (rounded to their precision).
    ``rows=(first, stop)``: only the ``post_var`` rows ``first .. stop - 1`` (``u + 1 + delay`` above).
    """
    row0, row1 = tape_rows(rows, f"kernel_transpose_add({proj!r})")
    q, conv, keys = conv_projection(sim, proj)
    if not sim.plan.batched:
        raise StateError(f"kernel_transpose_add({proj!r}) needs a batched simulation (Simulation(..., batch_size=B))")
    k = conv.check_kernel(kernel)
    present = _present_entries(sim, q, conv, keys, "kernel_transpose_add")
    post = _tape(sim, q.post.name, post_var, "post_var", "kernel_transpose_add")
    gz = _tape(sim, q.pre.name, pre_var, "pre_var", "kernel_transpose_add")
    w_dtype = sim.state[keys.syn("w")].dtype
    k = np.where(present, k.astype(w_dtype).astype(np.float64), 0.0)
    kernel_rows = np.ascontiguousarray(k.reshape(conv.channels, -1).astype(post.dtype))   # [C_out, C_in kh kw]
    tap_transpose_add(post, 1 + q.delay, kernel_rows, conv.in_shape[1] * conv.in_shape[2], _taps(conv, True), gz,
                      row0, row1)
    key = NAMES.rec_var(sim.plan.recorded_vars.index((q.pre.name, pre_var)))
    sim.backend.push(sim.state, [key])


def pool_transpose_add(sim, proj: str, post_var: str, pre_var: str, rows=None) -> None:
    """Add the transposed average pooling of the last run's ``post_var`` tape into the presynaptic
    ``pre_var`` tape of the :class:`AvgPool2D` projection ``proj``: ``pre_var[b, u, i] += sum`` over the
    windows ``j`` covering ``i`` of ``weight * post_var[b, u + 1 + delay, j]``, what the per-synapse scan
    ``gz += w * du`` computes, from the geometry (one task per batch element and step).  Needs the
    projection's synapses complete with the pooling weight (a fixed projection).  ``rows``: as
    :func:`kernel_transpose_add`."""
    row0, row1 = tape_rows(rows, f"pool_transpose_add({proj!r})")
    net = sim.network
    q = net.projections.get(proj)
    if q is None:
        raise StateError(f"unknown projection {proj!r}; known: {sorted(net.projections)}")
    pool = q.connectivity
    if not isinstance(pool, AvgPool2D):
        raise StateError(f"projection {proj!r} is not an AvgPool2D projection (its connectivity is "
                         f"{type(pool).__name__})")
    if not sim.plan.batched:
        raise StateError(f"pool_transpose_add({proj!r}) needs a batched simulation (Simulation(..., batch_size=B))")
    keys = NAMES.proj(q)
    sim.backend.pull(sim.state, [keys.rowlen, keys.syn("w")])
    ylo, ny, xlo, nx = pool._windows.axes()
    full = int((ny[None, :, None] * nx[None, None, :]).sum()) * pool.in_shape[0]
    valid = np.arange(sim.state[keys.syn("w")].shape[-1])[None, :] < sim.state[keys.rowlen][:, None]
    w = sim.state[keys.syn("w")]
    if int(sim.state[keys.rowlen].sum()) != full or np.any(w[..., valid] != w.dtype.type(pool.weight)):
        raise StateError(f"pool_transpose_add({proj!r}): the projection must hold all {full} pooling synapses "
                         f"with weight {pool.weight} (it was rewired or its weights changed)")
    post = _tape(sim, q.post.name, post_var, "post_var", "pool_transpose_add")
    gz = _tape(sim, q.pre.name, pre_var, "pre_var", "pool_transpose_add")
    pool_window_transpose(post, 1 + q.delay, post.dtype.type(pool.weight), np.array(pool.in_shape, np.int64),
                          np.array(pool.out_shape[1:], np.int64), ylo, ny, xlo, nx, gz, row0, row1)
    key = NAMES.rec_var(sim.plan.recorded_vars.index((q.pre.name, pre_var)))
    sim.backend.push(sim.state, [key])
