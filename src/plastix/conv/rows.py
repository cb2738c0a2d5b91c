"""Row loops over a Conv2D projection's ragged arrays (numba, serial, in row order: deterministic).

Each touches only the occupied slots ``[0, row_length[i])`` of each row (and, when compacting, the
slots freed), so its work is proportional to the synapses; numpy's boolean-mask equivalents make
several passes over every slot and run about 10x slower at SD-SNN's sizes (benchmarks/conv_layers.py).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def gather_kernel(kernel_flat, kidx, rowlen, w):
    """``w[i, j] = kernel_flat[kidx[i, j]]`` for every occupied slot; free slots get 0."""
    for i in range(rowlen.size):
        n = rowlen[i]
        for j in range(n):
            w[i, j] = kernel_flat[kidx[i, j]]
        for j in range(n, w.shape[1]):
            w[i, j] = 0


@numba.njit(cache=True)
def scatter_ragged(values, kidx, rowlen, out):
    """``out[kidx[i, j]] += values[i, j]`` over the occupied slots, rows in order."""
    for i in range(rowlen.size):
        for j in range(rowlen[i]):
            out[kidx[i, j]] += values[i, j]


@numba.njit(cache=True)
def scatter_flat(values, kidx, rowlen, out):
    """Like :func:`scatter_ragged` for ``values`` given one per synapse in row order."""
    s = 0
    for i in range(rowlen.size):
        for j in range(rowlen[i]):
            out[kidx[i, j]] += values[s]
            s += 1


@numba.njit(cache=True)
def plan_removal(ind, rowlen, rows, drop_post, src):
    """For each row ``rows[r]``: ``src[r, :new]`` = the slots of the synapses that stay (in order), where a
    synapse goes when ``drop_post[its target]``.  Returns the new row lengths (of ``rows``)."""
    new_len = np.empty(rows.size, np.int64)
    for r in range(rows.size):
        i = rows[r]
        n = 0
        for j in range(rowlen[i]):
            if not drop_post[ind[i, j]]:
                src[r, n] = j
                n += 1
        new_len[r] = n
    return new_len


@numba.njit(cache=True)
def apply_removal(arr, rowlen, rows, src, new_len):
    """Move row ``rows[r]``'s surviving values to its front (``src`` from :func:`plan_removal`, whose
    slots never lie before their destination) and zero the slots freed."""
    for r in range(rows.size):
        i = rows[r]
        n = new_len[r]
        for j in range(n):
            arr[i, j] = arr[i, src[r, j]]
        for j in range(n, rowlen[i]):
            arr[i, j] = 0


@numba.njit(cache=True)
def scatter_outer(post_values, pre_values, ind, kidx, rowlen, out):
    """``out[kidx[i, j]] += post_values[t, ind[i, j]] * pre_values[t, i]`` over the occupied slots and
    every ``t``; rows whose presynaptic value is 0 are skipped (spikes: work ~ events x row length)."""
    for t in range(post_values.shape[0]):
        for i in range(rowlen.size):
            x = pre_values[t, i]
            if x == 0.0:
                continue
            for j in range(rowlen[i]):
                out[kidx[i, j]] += post_values[t, ind[i, j]] * x
