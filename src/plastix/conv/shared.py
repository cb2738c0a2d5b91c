"""Shared kernel weights of :class:`~plastix.model.conv.Conv2D` projections in a running simulation.

The engine's kernels read each synapse's own ``w``; a convolution's synapses share a kernel through their
``kidx``.  :func:`tie` copies the kernel into every synapse (``w = K.flat[kidx]``) and :func:`kernel_sum`
sums a per-synapse quantity (a weight gradient) back into the kernel's shape.  Both are host-side numpy
over the simulation's live ragged arrays (pulled from the backend first, pushed after a write), with
serial numba row loops (:mod:`.rows`): the engine's per-synapse custom updates see scalars only, not an
array indexed by a synapse variable, so a gather ``K.flat[kidx]`` or a scatter-add by ``kidx`` cannot
be written as one yet.  Work is proportional to the synapses.
"""
from __future__ import annotations

import numpy as np

from ..codegen.names import NAMES
from ..errors import StateError
from ..model.conv import Conv2D
from .rows import gather_kernel, scatter_flat, scatter_outer, scatter_ragged

__all__ = ["conv_projection", "synapse_keys", "valid_slots", "tie", "kernel_sum", "kernel_sum_outer",
           "kernel_from_synapses"]


def conv_projection(sim, proj: str):
    """``(projection, conv, keys)`` of the :class:`Conv2D` projection ``proj`` of ``sim`` (state built)."""
    net = sim.network
    q = net.projections.get(proj)
    if q is None:
        raise StateError(f"unknown projection {proj!r}; known: {sorted(net.projections)}")
    if not isinstance(q.connectivity, Conv2D):
        raise StateError(f"projection {proj!r} is not a Conv2D projection (its connectivity is "
                         f"{type(q.connectivity).__name__})")
    wu_vars = q.weight_update.vars
    if "w" not in wu_vars or wu_vars.get("kidx") is None or wu_vars["kidx"].dtype != "int32":
        raise StateError(f"projection {proj!r}: its weight-update model {q.weight_update.name!r} must declare "
                         "per-synapse 'w' and int32 'kidx' (use plastix.conv.conv_synapse())")
    sim.build()
    return q, q.connectivity, NAMES.proj(q)


def synapse_keys(sim, q) -> list[str]:
    """State keys of every per-synapse array of projection ``q``: its weight-update variables, its
    connectivity updates' and its per-synapse custom updates' own variables (all [..., num_pre, stride])."""
    keys = NAMES.proj(q)
    out = [keys.syn(v) for v in q.weight_update.vars]
    for upd in sim.network.connectivity_updates.values():
        if upd.projection is q:
            out += [NAMES.update(upd).syn(v) for v in upd.model.vars]
    for cu in sim.network.custom_updates.values():
        if cu.target is q:
            out += [NAMES.custom(cu).var(v) for v in cu.model.vars]
    return out


def valid_slots(state: dict, keys) -> np.ndarray:
    """[num_pre, row_stride] True where a row holds a synapse."""
    rowlen = state[keys.rowlen]
    return np.arange(state[keys.ind].shape[1])[None, :] < rowlen[:, None]


def tie(sim, proj: str, kernel) -> None:
    """Write ``w = kernel.flat[kidx]`` into every existing synapse of the Conv2D projection ``proj``.

    ``kernel`` has the projection's ``kernel_shape`` ([C_out, C_in, kh, kw]); call this after every
    change of the kernel (an optimiser step) so that the next run transmits with it.
    """
    q, conv, keys = conv_projection(sim, proj)
    k = conv.check_kernel(kernel).ravel()
    w_key, kidx_key = keys.syn("w"), keys.syn("kidx")
    sim.backend.pull(sim.state, [keys.rowlen, w_key, kidx_key])
    w, kidx, rowlen = sim.state[w_key], sim.state[kidx_key], sim.state[keys.rowlen]
    k = k.astype(w.dtype)
    for elem in np.ndindex(w.shape[:-2]):  # one copy, or one per batch element
        gather_kernel(k, kidx, rowlen, w[elem])
    sim.backend.push(sim.state, [w_key])


def kernel_sum(sim, proj: str, per_synapse) -> np.ndarray:
    """Sum a per-synapse array into the kernel's shape by ``kidx``: ``out.flat[k] = sum of per_synapse
    over the synapses with kidx == k`` (float64, [C_out, C_in, kh, kw]).

    With ``per_synapse`` the gradient of a loss with respect to each synapse's ``w``, the result is the
    gradient with respect to the shared kernel.  ``per_synapse`` is either one value per existing
    synapse in row order (what ``sim.get(proj, var)`` returns) or a ragged [num_pre, row_stride] array
    (only the occupied slots are read).  Kernel entries that no synapse uses (pruned) get 0.
    """
    q, conv, keys = conv_projection(sim, proj)
    kidx_key = keys.syn("kidx")
    sim.backend.pull(sim.state, [keys.rowlen, kidx_key])
    kidx, rowlen = sim.state[kidx_key], sim.state[keys.rowlen]
    values = np.ascontiguousarray(per_synapse, dtype=np.float64)
    out = np.zeros(int(np.prod(conv.kernel_shape)))
    n_syn = int(rowlen.sum())
    if values.shape == kidx.shape:
        scatter_ragged(values, kidx, rowlen, out)
    elif values.shape == (n_syn,):
        scatter_flat(values, kidx, rowlen, out)
    else:
        raise StateError(f"kernel_sum({proj!r}): per_synapse must have one value per synapse ({n_syn}, row "
                         f"order) or the ragged shape {kidx.shape}, got shape {values.shape}")
    return out.reshape(conv.kernel_shape)


def kernel_sum_outer(sim, proj: str, post_values, pre_values) -> np.ndarray:
    """``kernel_sum`` of the per-synapse products ``post_values[post] * pre_values[pre]``, summed over a
    leading time axis if there is one, without forming them: ``out.flat[k] = sum over t and over the
    synapses s with kidx[s] == k of post_values[t, post[s]] * pre_values[t, pre[s]]`` (float64,
    [C_out, C_in, kh, kw]).

    With ``post_values`` the loss gradient at each output neuron and ``pre_values`` the presynaptic
    spikes (or traces), this is the gradient with respect to the kernel of the existing synapses
    (pruned entries get 0).  Shapes: [num_post] and [num_pre], or [T, num_post] and [T, num_pre].
    Presynaptic zeros are skipped, so with spikes the work is events x row length.
    """
    q, conv, keys = conv_projection(sim, proj)
    post_v = np.asarray(post_values, dtype=np.float64)
    pre_v = np.asarray(pre_values, dtype=np.float64)
    if (post_v.ndim not in (1, 2) or post_v.ndim != pre_v.ndim or post_v.shape[-1] != q.post.size
            or pre_v.shape[-1] != q.pre.size or post_v.shape[:-1] != pre_v.shape[:-1]):
        raise StateError(f"kernel_sum_outer({proj!r}): post_values / pre_values must have shapes "
                         f"({q.post.size},) / ({q.pre.size},) or (T, {q.post.size}) / (T, {q.pre.size}), "
                         f"got {post_v.shape} / {pre_v.shape}")
    if not (np.all(np.isfinite(post_v)) and np.all(np.isfinite(pre_v))):
        raise StateError(f"kernel_sum_outer({proj!r}): values must be finite (found NaN or inf)")
    kidx_key = keys.syn("kidx")
    sim.backend.pull(sim.state, [keys.ind, keys.rowlen, kidx_key])
    out = np.zeros(int(np.prod(conv.kernel_shape)))
    scatter_outer(np.ascontiguousarray(np.atleast_2d(post_v)), np.ascontiguousarray(np.atleast_2d(pre_v)),
                  sim.state[keys.ind], sim.state[kidx_key], sim.state[keys.rowlen], out)
    return out.reshape(conv.kernel_shape)


def kernel_from_synapses(sim, proj: str) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, count)``: the mean of ``w`` over the synapses of each kernel entry (0 where none) and
    how many synapses each entry has ([C_out, C_in, kh, kw]); after :func:`tie` every synapse of an
    entry holds the same value, so the mean is that value."""
    q, conv, keys = conv_projection(sim, proj)
    w_key, kidx_key = keys.syn("w"), keys.syn("kidx")
    sim.backend.pull(sim.state, [keys.ind, keys.rowlen, w_key, kidx_key])
    valid = valid_slots(sim.state, keys)
    w = sim.state[w_key]
    if w.ndim != 2:
        raise StateError(f"kernel_from_synapses({proj!r}): 'w' has one copy per batch element; expected one")
    kidx = sim.state[kidx_key][valid]
    size = int(np.prod(conv.kernel_shape))
    count = np.bincount(kidx, minlength=size)
    total = np.bincount(kidx, weights=w[valid].astype(np.float64), minlength=size)
    mean = np.divide(total, count, out=np.zeros(size), where=count > 0)
    return mean.reshape(conv.kernel_shape), count.reshape(conv.kernel_shape)
