"""A convolution's kernel taps: the geometry table and the kernel read back from a projection's synapses.

A :class:`~plastix.model.conv.Conv2D` projection stores one synapse per kernel entry and output position
it reaches (1.06 million for SD-SNN's second Fashion-MNIST convolution, whose kernel has 5,400 entries).
Propagating a presynaptic event through its row streams all of them from memory.  Propagating it through
the kernel instead visits its ``kh x kw`` taps from a precomputed table (:func:`tap_table`) and adds a
contiguous kernel row over the output channels per tap, the kernel staying in cache.  The two agree
exactly when the synapses are those of the geometry and every kernel entry is whole (all of its synapses
present, or none, all with the same weight): :func:`kernel_from_synapses` checks that while it reads
the kernel back, so the engine can take the tap path when it holds and the rows otherwise.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: ``info`` slots: written by :func:`kernel_from_synapses` (ok, live channels) and set once from the
#: geometry (output positions per channel, :func:`min_spikes`).
INFO_OK, INFO_CHANNELS, INFO_POSITIONS, INFO_MIN_SPIKES = 0, 1, 2, 3
INFO_SIZE = 4

#: A step takes the tap path when its events reach at least this many times the output positions (summed
#: over their taps): below that, copying ``in_syn`` to the channel-minor buffer and back costs more than the
#: taps save.  Measured on SD-SNN's Fashion-MNIST layers (batch 100, 2 threads): the first convolution
#: (events x taps about 2.5x the positions) ran 10 % slower by taps, the second (27x) 2.4x faster.
TAP_WORK_RATIO = 4


def min_spikes(n_taps_total: int, num_pre: int, positions: int) -> int:
    """The fewest spikes of a step that take the tap path: ``TAP_WORK_RATIO x positions`` over the mean
    number of taps per presynaptic neuron (``n_taps_total`` table entries over ``num_pre`` neurons)."""
    mean_taps = max(n_taps_total, 1) / max(num_pre, 1)
    return max(1, int(np.ceil(TAP_WORK_RATIO * positions / mean_taps)))


def tap_table(in_shape, kernel, stride, padding, out_hw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per presynaptic neuron ``i = (ci * H + iy) * W + ix``: the kernel taps through which it reaches an
    output position and that position, as ``(start [C_in H W + 1], tap, out)`` (int64; neuron ``i``'s
    entries are ``start[i] .. start[i + 1]`` in ascending tap order, ``tap = (ci * kh + ky) * kw + kx``,
    ``out = oy * W_out + ox`` with ``iy = oy * sh - ph + ky``).  Precomputed once per geometry: the event
    loops then do no integer division."""
    (c_in, h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = in_shape, kernel, stride, padding, out_hw
    ci, iy, ix, ky, kx = np.meshgrid(np.arange(c_in), np.arange(h), np.arange(w), np.arange(kh), np.arange(kw),
                                     indexing="ij")
    ny, nx = iy + ph - ky, ix + pw - kx
    ok = (ny >= 0) & (ny % sh == 0) & (ny // sh < ho) & (nx >= 0) & (nx % sw == 0) & (nx // sw < wo)
    neuron = ((ci * h + iy) * w + ix)[ok]   # C order: neuron-major, so already grouped by neuron
    start = np.zeros(c_in * h * w + 1, np.int64)
    np.cumsum(np.bincount(neuron, minlength=c_in * h * w), out=start[1:])
    tap = ((ci * kh + ky) * kw + kx)[ok].astype(np.int64)
    out = ((ny // sh) * wo + nx // sw)[ok].astype(np.int64)
    return start, tap, out


def tap_counts(tap: np.ndarray, n_taps: int, channels: int) -> np.ndarray:
    """Synapses of each kernel entry in the full geometry, flat in the kernel's C order ``[C_out, C_in, kh,
    kw]`` (int64): an entry reaches as many positions as its tap appears in the table, in every channel."""
    return np.tile(np.bincount(tap, minlength=n_taps).astype(np.int64), channels)


class TapLookup:
    """Tables that let :func:`kernel_from_synapses` place a synapse without integer division or search:
    ``entry_channel`` / ``entry_tap`` [C_out C_in kh kw] (the output channel and tap of a flat kernel
    index), ``pre_first_tap`` [C_in H W] (the first tap of neuron ``i``'s input channel) and ``slot``
    [C_in H W, kh kw] (the table entry of neuron ``i``'s tap ``pre_first_tap[i] + t``, or -1 where the
    tap reaches no output position)."""

    def __init__(self, in_shape, kernel, channels: int, start: np.ndarray, tap: np.ndarray):
        c_in, h, w = in_shape
        per_channel = kernel[0] * kernel[1]
        n_rows = c_in * per_channel
        entries = np.arange(channels * n_rows, dtype=np.int64)
        self.entry_channel, self.entry_tap = entries // n_rows, entries % n_rows
        self.pre_first_tap = (np.arange(c_in * h * w, dtype=np.int64) // (h * w)) * per_channel
        self.slot = np.full((c_in * h * w, per_channel), -1, np.int64)
        neuron = np.repeat(np.arange(c_in * h * w), np.diff(start))
        self.slot[neuron, tap - self.pre_first_tap[neuron]] = np.arange(tap.size)


@njit(cache=True, nogil=True)
def kernel_from_synapses(ind, rowlen, w, kidx, out, entry_channel, entry_tap, pre_first_tap, slot, full, kernel,
                         chan, info, count, seen):
    """Read the kernel of a Conv2D projection back from its synapses, for propagation by taps.

    ``ind`` / ``rowlen`` / ``w`` / ``kidx``: the projection's rows, weights and flat kernel indices; ``out``:
    the output positions of :func:`tap_table`; ``entry_channel`` ... ``slot``: a :class:`TapLookup`;
    ``full``: :func:`tap_counts`.  Writes ``kernel`` [C_in kh kw, C_out] (a row per tap, the live output
    channels first and contiguous; absent entries 0), ``chan`` (the live output channels, ascending, in its
    first ``info[INFO_CHANNELS]`` slots) and ``info``; ``count`` [C_out C_in kh kw] and ``seen`` [len(tap),
    C_out] (a row's synapses mark neighbouring bytes) are scratch.

    ``info[INFO_OK]`` is 1 when propagation by taps equals propagation through the rows: every synapse
    is the geometry's synapse of its kernel entry (target and entry agree, no duplicate), every entry has
    all of its synapses or none, and the synapses of an entry share one weight.  Else 0 (the rows are
    used).  O(synapses), table lookups only."""
    n_rows, c_out = kernel.shape
    n_out = info[INFO_POSITIONS]
    count[:] = 0
    seen[:, :] = 0
    kernel[:, :] = 0.0
    info[INFO_OK] = 0
    info[INFO_CHANNELS] = 0
    n_entries = count.shape[0]
    per_channel = slot.shape[1]
    for i in range(rowlen.shape[0]):
        first = pre_first_tap[i]
        for k in range(rowlen[i]):
            e = kidx[i, k]
            if e < 0 or e >= n_entries:
                return
            c = entry_channel[e]
            r = entry_tap[e]
            t = r - first
            if t < 0 or t >= per_channel:
                return   # an entry of another input channel
            q = slot[i, t]
            if q < 0 or ind[i, k] != c * n_out + out[q] or seen[q, c] != 0:
                return   # not this entry's synapse from neuron i, or a second copy of it
            seen[q, c] = 1
            if count[e] == 0:
                kernel[r, c] = w[i, k]
            elif kernel[r, c] != w[i, k]:   # NaN compares unequal too: the rows then carry it
                return
            count[e] += 1
    live = 0
    for c in range(c_out):
        any_ = False
        for r in range(n_rows):
            e = c * n_rows + r
            if count[e] != 0 and count[e] != full[e]:
                return   # an entry that lost some of its synapses
            any_ = any_ or count[e] != 0
        if any_:
            chan[live] = c
            live += 1
    # compact the live channels to the front of each row (ascending: a column never moves right)
    for a in range(live):
        c = chan[a]
        if c != a:
            for r in range(n_rows):
                kernel[r, a] = kernel[r, c]
                kernel[r, c] = 0.0
    info[INFO_CHANNELS] = live
    info[INFO_OK] = 1
