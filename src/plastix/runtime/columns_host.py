"""The column view (incoming synapses per target) built and rebuilt on the host, with one growth rule.

A projection with postsynaptic learning keeps ``collen`` (in-degree per target) and ``colsyn`` (flat slot
ids ``i * row_stride + k`` per target, ``[num_post, capacity]``).  Kernels maintain it while they run;
whenever the host changes rows (``set_connectivity``, a ``custom_update`` on a backend whose kernels do not
maintain the view) it is rebuilt here from the rows.
"""
from __future__ import annotations

import numpy as np

from ..errors import CapacityError
from ..kernels.columns import fill_columns, in_degree

#: A view that no longer holds the largest in-degree grows to this multiple of it (room to grow further
#: without another reallocation).
GROWTH = 2.0


def fill(ind, rowlen, collen, colsyn, what: str) -> None:
    """Fill ``collen`` / ``colsyn`` from the rows; :class:`CapacityError` if a target has more incoming
    synapses than ``colsyn.shape[1]``."""
    bad = fill_columns(ind, rowlen, collen, colsyn)
    if bad >= 0:
        raise CapacityError(f"{what}: target {bad} has more incoming synapses than the column view holds "
                            f"({colsyn.shape[1]}, col_stride); rebuild with more column headroom")


def allocate(state: dict, keys, num_post: int, headroom: float, what: str, extra: int = 0) -> None:
    """Allocate and fill the column view of the projection with state keys ``keys`` (a ``ProjKeys``):
    capacity ``headroom`` x the largest in-degree, at least ``extra``, at most every slot."""
    ind, rowlen = state[keys.ind], state[keys.rowlen]
    deg = in_degree(ind, rowlen, num_post)
    cap = max(1, int(np.ceil(deg.max(initial=0) * headroom)), extra)
    cap = min(cap, max(1, ind.shape[0] * ind.shape[1]))
    state[keys.collen] = np.zeros(num_post, np.int32)
    state[keys.colsyn] = np.zeros((num_post, cap), np.int32)
    fill(ind, rowlen, state[keys.collen], state[keys.colsyn], what)


def rebuild(state: dict, keys, num_post: int, what: str) -> None:
    """Rebuild the view from the rows in ``state``, growing it (:data:`GROWTH`) if an in-degree no longer
    fits.  The caller pulls the rows before and pushes ``keys.collen`` / ``keys.colsyn`` after."""
    ind, rowlen = state[keys.ind], state[keys.rowlen]
    deg = int(in_degree(ind, rowlen, num_post).max(initial=0))
    if deg > state[keys.colsyn].shape[1]:
        state[keys.colsyn] = np.zeros((num_post, int(np.ceil(GROWTH * deg))), np.int32)
    fill(ind, rowlen, state[keys.collen], state[keys.colsyn], what)
