"""Dendritic-spine bounds per synapse: initialisation, the consecutive-count range update and clipping.

Every function works on flat arrays with one entry per *element* (a synapse of an fc layer, a kernel entry
of a conv layer) and is vectorised with boolean masks: "i in P_t and in P_{t-1}" is
``cond_t & prev`` with ``prev`` the stored ``cond_{t-1}`` (never Python sets).  Host numpy, once per
structure step.
"""
from __future__ import annotations

import numpy as np

#: Per-element spine state: name -> dtype kind ("f": the weight's float type, "i": int32).  Flags are
#: int32 0/1 so that they can be per-synapse variables of a connectivity update.
SPINE_VARS = {
    "r_plus": "f", "r_minus": "f", "sum_plus": "f", "sum_minus": "f", "w_abs_prev": "f",
    "cnt_plus": "i", "cnt_minus": "i", "cnt_in": "i", "prev_plus": "i", "prev_minus": "i", "prev_in": "i",
}


def empty_spines(n: int, dtype=np.float64) -> dict[str, np.ndarray]:
    """Zeroed spine state for ``n`` elements."""
    return {k: np.zeros(n, dtype if kind == "f" else np.int32) for k, kind in SPINE_VARS.items()}


def init_spines(w: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """The authors' ``init_length`` (end of step 0): ``r+ = max(w)``, ``r- = -max(w)`` for every element
    (one scalar per layer, both from the maximum), ``|w|_prev = |w|``, counters and flags 0.

    Returns ``(state, r0)`` with ``r0 = max(w)`` (0 for an empty layer), the initial range that
    sparse-mode regrown synapses start from.
    """
    w = np.asarray(w)
    r0 = float(w.max()) if w.size else 0.0
    state = empty_spines(w.size, w.dtype if w.dtype.kind == "f" else np.float64)
    state["r_plus"][:] = r0
    state["r_minus"][:] = -r0
    state["w_abs_prev"][:] = np.abs(w)
    return state, r0


def _count(cond: np.ndarray, prev: np.ndarray, cnt: np.ndarray, total: np.ndarray | None, excess):
    """Consecutive counting: where ``cond & prev`` increment ``cnt`` (and add ``excess`` to ``total``),
    elsewhere reset both to 0; then ``prev <- cond``."""
    both = cond & (prev != 0)
    cnt[:] = np.where(both, cnt + 1, 0)
    if total is not None:
        total[:] = np.where(both, total + excess, 0)
    prev[:] = cond


def update_spines(state: dict[str, np.ndarray], w_eff: np.ndarray, count_thre: int, shrink: float) -> None:
    """One range update (``get_range_weight``) in place, on ``w_eff = w * mask`` (pruned elements are 0).

    Order: expand the upper bound, expand the lower bound, then shrink.  Upper: ``P_t = w >= r+``;
    consecutive exceeders count and accumulate ``w - r+``; at ``cnt+ >= count_thre`` ``r+ += sum+ /
    count_thre`` and the counter restarts (the element stays in ``prev``, so a persistent condition
    retriggers every ``count_thre`` steps).  Lower: the same with ``w <= r-`` (sums <= 0 move r- outward).
    Shrink: ``D_t = |w| < |w|_prev`` counted the same way; at ``cnt_in >= count_thre`` both bounds are
    multiplied by ``shrink``; then ``|w|_prev <- |w|``.
    """
    w = np.asarray(w_eff)
    s = state
    rp, rm = s["r_plus"], s["r_minus"]
    _count(w >= rp, s["prev_plus"], s["cnt_plus"], s["sum_plus"], w - rp)
    fire = s["cnt_plus"] >= count_thre
    rp[fire] += s["sum_plus"][fire] / count_thre
    s["cnt_plus"][fire] = 0
    s["sum_plus"][fire] = 0
    _count(w <= rm, s["prev_minus"], s["cnt_minus"], s["sum_minus"], w - rm)
    fire = s["cnt_minus"] >= count_thre
    rm[fire] += s["sum_minus"][fire] / count_thre
    s["cnt_minus"][fire] = 0
    s["sum_minus"][fire] = 0
    aw = np.abs(w)
    _count(aw < s["w_abs_prev"], s["prev_in"], s["cnt_in"], None, None)
    fire = s["cnt_in"] >= count_thre
    rp[fire] *= shrink
    rm[fire] *= shrink
    s["cnt_in"][fire] = 0
    s["w_abs_prev"][:] = aw


def clip_to_spines(w: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    """``min(max(w, r-), r+)`` per element (the authors' "synaptic constraint"); a new array."""
    return np.minimum(np.maximum(w, state["r_minus"]), state["r_plus"]).astype(np.asarray(w).dtype, copy=False)


def spine_width(state: dict[str, np.ndarray]) -> np.ndarray:
    """``r+ + |r-|`` per element: the range width that importance is made of."""
    return state["r_plus"] + np.abs(state["r_minus"])
