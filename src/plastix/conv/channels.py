"""Structural changes of :class:`~plastix.model.conv.Conv2D` projections by kernel slice: pruning an
output channel removes its synapses from the rows, regrowing a ``(c_out, c_in)`` slice puts them back.

Both are host-side numpy over the simulation's live arrays (pulled from the backend first, pushed
after).  Removal compacts each row stably (the remaining synapses keep their order) and every
per-synapse array of the projection -- weight-update variables (``w``, ``kidx``), connectivity
updates' and per-synapse custom updates' own variables (e.g. optimiser moments) -- moves with its
synapse.  Regrowth appends to the rows; it needs a free slot per synapse, which the slots freed by
pruning provide (a projection built with ``headroom=1`` has exactly the rows' full length).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CapacityError, StateError
from ..model.conv import channel_indices
from ..runtime import columns_host
from ..runtime.state import target_bits
from .rows import apply_removal, plan_removal
from .shared import conv_projection, synapse_keys

__all__ = ["prune_channel", "regrow_slice", "RegrowReport"]


def _channel_table(channels: np.ndarray, count: int) -> np.ndarray:
    """[count] True at ``channels``."""
    table = np.zeros(count, bool)
    table[channels] = True
    return table


def _pull(sim, q, keys) -> list[str]:
    names = [keys.ind, keys.rowlen] + synapse_keys(sim, q)
    names += [k for k in (keys.bits, keys.collen, keys.colsyn) if k in sim.state]
    sim.backend.pull(sim.state, names)
    return names


def _finish(sim, q, keys, names: list[str]) -> None:
    """Refresh what is derived from the rows (target bitmask, column view), then push everything."""
    state = sim.state
    if keys.bits in state:
        state[keys.bits] = target_bits(state[keys.ind], state[keys.rowlen], q.post.size)
    if keys.collen in state:
        columns_host.rebuild(state, keys, q.post.size, f"projection {q.name!r}")
    sim.backend.push(state, names)


def prune_channel(sim, proj: str, c_out, c_in=None) -> int:
    """Remove every synapse of the Conv2D projection ``proj`` whose postsynaptic neuron is in output
    channel(s) ``c_out`` (with ``c_in``: only those from input channel(s) ``c_in``, the kernel slices
    ``K[c_out, c_in]``) and return how many were removed.

    Rows are compacted in place and keep their order; every per-synapse array moves with its synapse
    and the freed slots are zeroed.  The kernel itself is not changed: after pruning the forward pass
    equals the convolution with ``K[c_out, c_in]`` zeroed.
    """
    q, conv, keys = conv_projection(sim, proj)
    couts = channel_indices("c_out", c_out, conv.channels)
    cins = channel_indices("c_in", c_in, conv.in_shape[0])
    names = _pull(sim, q, keys)
    state = sim.state
    ind, rowlen = state[keys.ind], state[keys.rowlen]
    in_plane = conv.in_shape[1] * conv.in_shape[2]
    rows = np.nonzero(np.repeat(_channel_table(cins, conv.in_shape[0]), in_plane))[0]  # rows of c_in
    drop_post = np.repeat(_channel_table(couts, conv.channels), conv.num_post // conv.channels)
    src = np.empty((rows.size, ind.shape[1]), np.int32)
    new_len = plan_removal(ind, rowlen, rows, drop_post, src)
    removed = int(rowlen[rows].sum() - new_len.sum())
    if removed == 0:
        return 0
    for key in synapse_keys(sim, q) + [keys.ind]:
        arr = state[key]
        for elem in np.ndindex(arr.shape[:-2]):  # one copy, or one per batch element
            apply_removal(arr[elem], rowlen, rows, src, new_len)
    rowlen[rows] = new_len
    _finish(sim, q, keys, names)
    return removed


@dataclass(frozen=True)
class RegrowReport:
    """What :func:`regrow_slice` did: ``added`` synapses, ``present`` (already in their rows, left
    alone) and the ``(unfitted_pre, unfitted_post)`` synapses that found their row full (only with
    ``strict=False``; with ``strict=True`` a full row raises and nothing changes)."""

    added: int
    present: int
    unfitted_pre: np.ndarray
    unfitted_post: np.ndarray

    @property
    def unfitted(self) -> int:
        return int(self.unfitted_pre.size)


def regrow_slice(sim, proj: str, kernel, c_out, c_in=None, *, strict: bool = True) -> RegrowReport:
    """Put back the synapses of kernel slice(s) ``K[c_out, c_in]`` (``c_in`` None: every input channel)
    of the Conv2D projection ``proj`` with ``w`` from ``kernel`` ([C_out, C_in, kh, kw]).

    Synapses already present are left as they are.  Each missing one is appended to its row with its
    ``kidx``; the weight-update model's other variables start at their declared initial values and the
    connectivity / custom updates' own variables at 0 (like ``Simulation.set_connectivity``).  A row
    without enough free slots (row stride minus row length) raises :class:`~plastix.errors.CapacityError`
    before anything changes; with ``strict=False`` the synapses that fit are added and the others are
    reported in :class:`RegrowReport` (never dropped silently).
    """
    q, conv, keys = conv_projection(sim, proj)
    k = conv.check_kernel(kernel).ravel()
    couts = channel_indices("c_out", c_out, conv.channels)
    cins = channel_indices("c_in", c_in, conv.in_shape[0])
    if not isinstance(strict, (bool, np.bool_)):
        raise StateError(f"strict must be True or False, got {strict!r}")
    names = _pull(sim, q, keys)
    state = sim.state
    ind, rowlen = state[keys.ind], state[keys.rowlen]
    stride, num_post = ind.shape[1], q.post.size
    pre, post, kidx = conv.synapses(c_out=couts, c_in=cins)  # row order
    # which candidates are already in their rows: the rows' synapses onto these output channels
    rows = np.unique(pre)
    sub = ind[rows].astype(np.int64)
    onto = (np.arange(stride)[None, :] < rowlen[rows][:, None]) & _channel_table(couts, conv.channels)[
        sub // (num_post // conv.channels)]
    have = np.sort((rows[:, None] * num_post + sub)[onto])
    want = pre * num_post + post
    at = np.minimum(np.searchsorted(have, want), max(have.size - 1, 0))
    present = have[at] == want if have.size else np.zeros(want.size, bool)
    pre, post, kidx = pre[~present], post[~present], kidx[~present]
    # slot of each missing synapse: after its row's current synapses, in candidate order
    counts = np.bincount(pre, minlength=ind.shape[0])
    first = np.cumsum(counts) - counts
    rank = np.arange(pre.size) - first[pre]
    slot = rowlen[pre].astype(np.int64) + rank
    fits = slot < stride
    if not np.all(fits) and strict:
        over = np.nonzero(~fits)[0]
        row = int(pre[over[0]])
        raise CapacityError(
            f"regrow_slice({proj!r}): {over.size} of {pre.size} synapses do not fit their rows (row {row} has "
            f"{int(rowlen[row])} of {stride} slots used and needs {int(counts[row])} more); nothing was changed. "
            "Give the projection more headroom (or row_stride), or pass strict=False to add what fits")
    unfitted = (pre[~fits], post[~fits])
    pre, post, kidx, slot = pre[fits], post[fits], kidx[fits], slot[fits]
    if pre.size:
        ind[pre, slot] = post
        values = {keys.syn(v): var.init for v, var in q.weight_update.vars.items()}
        values[keys.syn("w")], values[keys.syn("kidx")] = k[kidx], kidx
        for key in synapse_keys(sim, q):  # update-owned variables start at 0
            arr = state[key]
            arr[..., pre, slot] = np.asarray(values.get(key, 0)).astype(arr.dtype)
        np.add.at(rowlen, pre, 1)
        _finish(sim, q, keys, names)
    return RegrowReport(int(pre.size), int(present.sum()), *unfitted)

