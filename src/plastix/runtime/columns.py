"""Column view of a ragged projection: for each target, the flat slot ids (``i * row_stride + k``) of
its incoming synapses, in ascending row order.  Rebuilt in O(synapses) whenever connectivity changes."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import CapacityError


@njit(cache=True)
def _fill(ind, rowlen, collen, colsyn):
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
    valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
    return np.bincount(ind[valid], minlength=num_post)


def build_columns(ind, rowlen, collen, colsyn, what: str = "projection") -> None:
    """Fill ``collen`` / ``colsyn`` from the rows; :class:`CapacityError` if a target has more incoming
    synapses than ``colsyn.shape[1]``."""
    bad = _fill(ind, rowlen, collen, colsyn)
    if bad >= 0:
        raise CapacityError(f"{what}: target {bad} has more incoming synapses than the column view holds "
                            f"({colsyn.shape[1]}, col_stride); rebuild with more column headroom")
