"""Neuron / filter importance, the pruning choice, pruned-unit counts, the adaptive rate and the
regeneration qualification -- vectorised host numpy run once per structure step.

Elements (synapses of an fc layer, kernel entries of a conv layer) carry a *unit* index: the postsynaptic
neuron (fc) or the output channel ``kidx // (c_in * kh * kw)`` (conv, with ``kidx`` the flat index into a
``[c_out, c_in, kh, kw]`` kernel).
"""
from __future__ import annotations

import math

import numpy as np


def min_max_unit(x: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min)``, or 0.5 everywhere when ``max == min`` (the authors' ``unit``)."""
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return x.copy()
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.full_like(x, 0.5)
    return (x - lo) / (hi - lo)


def unit_importance(width: np.ndarray, active: np.ndarray, unit: np.ndarray, num_units: int,
                    normalise_over: np.ndarray | None = None) -> np.ndarray:
    """``I_j = sum_{i in j} unit(width)_i * active_i``: min-max-normalised spine widths summed over each
    unit's active elements (pruned units score exactly 0).

    ``normalise_over`` (bool per element, default all) selects the elements the min and max are taken over:
    the faithful mode uses the whole layer, the sparse mode the existing synapses.
    """
    width = np.asarray(width, np.float64)
    if normalise_over is None:
        u = min_max_unit(width)
    else:
        u = np.zeros_like(width)
        u[normalise_over] = min_max_unit(width[normalise_over])
    return np.bincount(unit, weights=u * np.asarray(active, np.float64), minlength=num_units)[:num_units]


def prune_count(num_units: int, percent: float) -> int:
    """``floor(N * p / 100)`` clamped to [0, N]: the cumulative number of units the ranking must cover."""
    return int(min(max(math.floor(num_units * percent / 100.0), 0), num_units))


def lowest_units(importance: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest-importance units (ascending stable sort: ties go to the lowest index;
    the authors' ``torch.argsort`` leaves tie order unspecified)."""
    return np.argsort(importance, kind="stable")[:k]


def newly_pruned(importance: np.ndarray, k: int, history: np.ndarray | None) -> np.ndarray:
    """Boolean per unit: the ``k`` lowest units, minus those in ``history`` (bool per unit) when given
    (fc and CIFAR conv; MNIST-family conv2 has no history and re-prunes all ``k``)."""
    new = np.zeros(importance.size, bool)
    new[lowest_units(importance, k)] = True
    if history is not None:
        new &= ~history
    return new


def count_pruned_units(active: np.ndarray, unit: np.ndarray, num_units: int, min_active: int) -> int:
    """P_l: units with fewer than ``min_active`` (K) active elements."""
    per_unit = np.bincount(unit, weights=np.asarray(active, np.float64), minlength=num_units)[:num_units]
    return int(np.count_nonzero(per_unit < min_active))


def rate_increment(alpha: float, size: int, pruned: int, target_size: int, target_pruned: int) -> float:
    """``alpha * (size - P_l) / (target_size - P_{l+1})``: surviving units of this layer per surviving unit
    of the one it projects to (the "neurotrophic" competition).  Raises ``ValueError`` when the target
    has no survivors (the formula would divide by zero)."""
    denom = target_size - target_pruned
    if denom <= 0:
        raise ValueError(f"rate update: the target layer has no surviving units (target_size {target_size}, "
                         f"pruned {target_pruned}); the rate formula divides by zero")
    return alpha * (size - pruned) / denom


def regrowth_threshold(values: np.ndarray, q: float) -> float:
    """``percentile(values, q)`` over every candidate value of the layer (signed; numpy's linear
    interpolation), -inf for an empty layer."""
    values = np.asarray(values, np.float64)
    return float(np.percentile(values, q)) if values.size else -math.inf


def count_qualified(qualified: np.ndarray, grow_prev: np.ndarray, grow_cnt: np.ndarray,
                    regrow_after: int) -> np.ndarray:
    """Consecutive regeneration counting in place: ``cnt = cnt + 1`` where ``G_t & G_{t-1}``, else 0;
    ``regrow = cnt > R`` (their counters restart at 0); ``G_prev <- G_t``.  Returns ``regrow`` (bool)."""
    both = qualified & (grow_prev != 0)
    grow_cnt[:] = np.where(both, grow_cnt + 1, 0)
    regrow = grow_cnt > regrow_after
    grow_cnt[regrow] = 0
    grow_prev[:] = qualified
    return regrow


def count_qualified_keyed(keys: np.ndarray, qualified: np.ndarray, prev_keys: np.ndarray, prev_cnt: np.ndarray,
                          regrow_after: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`count_qualified` for candidates that have no storage slot (absent synapses of a sparse
    layer), keyed by an int64 ``key`` per candidate (``pre * num_post + post``).

    ``prev_keys`` (sorted, unique) / ``prev_cnt`` hold G_{t-1} and its counters.  Returns ``(regrow``
    (bool per candidate), ``new_keys``, ``new_cnt)`` -- the new G_t, sorted, with counters (0 where regrown).
    """
    keys = np.asarray(keys, np.int64)
    pos = np.searchsorted(prev_keys, keys)
    pos_c = np.minimum(pos, max(prev_keys.size - 1, 0))
    in_prev = (prev_keys.size > 0) & (prev_keys[pos_c] == keys) if prev_keys.size else np.zeros(keys.size, bool)
    cnt = np.where(qualified & in_prev, (prev_cnt[pos_c] if prev_cnt.size else 0) + 1, 0)
    regrow = qualified & (cnt > regrow_after)
    cnt = np.where(regrow, 0, cnt)
    order = np.argsort(keys[qualified], kind="stable")
    return regrow, keys[qualified][order], cnt[qualified][order].astype(np.int32)
