"""Column view of a ragged projection, filled on the CPU: for each target, the flat slot ids
(``i * row_stride + k``) of its incoming synapses, in ascending row order.  O(synapses)."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def fill_columns(ind, rowlen, collen, colsyn):
    """Fill ``collen`` / ``colsyn`` from the rows; returns the first target whose in-degree exceeds the
    capacity ``colsyn.shape[1]`` (its column then holds the first ``capacity`` synapses), or -1."""
    collen[:] = 0
    stride = ind.shape[1]
    cap = colsyn.shape[1]
    overflow = -1
    for i in range(rowlen.shape[0]):
        for k in range(rowlen[i]):
            j = ind[i, k]
            c = collen[j]
            if c < cap:
                colsyn[j, c] = i * stride + k
                collen[j] = c + 1  # never beyond the capacity: kernels loop over collen
            elif overflow < 0:
                overflow = j
    return overflow


def in_degree(ind: np.ndarray, rowlen: np.ndarray, num_post: int) -> np.ndarray:
    """Incoming synapses per target of the ragged rows (``ind``, ``rowlen``)."""
    valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
    return np.bincount(ind[valid], minlength=num_post)
