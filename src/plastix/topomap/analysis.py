"""Measures of topographic-map structure for grid-to-grid projections (pure numpy).

Conventions used throughout
---------------------------
* A *grid* ``shape = (rows, cols)`` numbers its neurons row-major: neuron ``i`` sits at
  ``(row, col) = (i // cols, i % cols)`` (:func:`plastix.connect.grid_positions`).  Grids are tori
  (periodic boundaries).  All distances and displacements are in **grid units** (one unit = spacing of
  neighbouring neurons of the grid named in each function).
* A projection is a synapse list ``pre[s] -> post[s]`` (integer indices) with optional weights ``w[s]``
  (conductances, ``0 .. g_max``).  Duplicated ``(pre, post)`` pairs are separate synapses.
* **Post-grid coordinates** (connection-probability maps, formation/elimination distances): source neuron
  ``(r, c)`` of a ``(pr, pc)`` grid is mapped to ``(r * qr / pr, c * qc / pc)`` on the ``(qr, qc)``
  target grid, exactly as :class:`plastix.connect.GaussianGrid2D` does; displacements are
  ``target position - mapped source position``, wrapped to the minimal image in ``[-L/2, L/2)`` per axis.
* **Source-grid coordinates** (receptive fields): a target's receptive field is described by the positions
  of its afferents on the *source* grid; its ideal topographic position is the target position mapped to
  the source grid, ``(r * pr / qr, c * pc / qc)``.  For equal grids both coordinate systems coincide.

The module never imports numba itself (it only reuses two numpy helpers from
:mod:`plastix.model.geometry`) and never imports matplotlib (see :mod:`plastix.topomap.plots`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..analysis.connectivity import degree_summary, degrees, json_float, multiset_minus, synapse_indices
from ..model.geometry import grid_positions, periodic_distance_sq

__all__ = [
    "periodic_displacement",
    "mapped_source_positions",
    "synapse_displacements",
    "connection_probability_map",
    "mean_weight_map",
    "displacement_maps",
    "connection_probability_by_distance",
    "rf_centres",
    "rf_spread",
    "ideal_rf_positions",
    "rf_deviation",
    "mean_absolute_deviation",
    "FormationElimination",
    "formation_elimination",
    "distance_bins",
    "degrees",
    "degree_summary",
    "summarise",
]


# --------------------------------------------------------------------------------------------------
# helpers


def _shape(name: str, shape) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}") from None
    if rows < 1 or cols < 1 or (rows, cols) != tuple(shape):
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}")
    return rows, cols


def _synapses(pre, post, shape_pre, shape_post, w=None):
    """Validated ``(pre, post, w_or_None, shape_pre, shape_post)``."""
    shape_pre = _shape("shape_pre", shape_pre)
    shape_post = _shape("shape_post", shape_post)
    pre = synapse_indices("pre", pre, shape_pre[0] * shape_pre[1])
    post = synapse_indices("post", post, shape_post[0] * shape_post[1])
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(pre.shape, float(w))
        if w.shape != pre.shape:
            raise ValueError(f"w must have one entry per synapse ({pre.size}), got shape {w.shape}")
    return pre, post, w, shape_pre, shape_post


def _wrap(d: np.ndarray, period) -> np.ndarray:
    """Minimal image of displacement(s) ``d`` for the given period(s): values in ``[-P/2, P/2)``."""
    period = np.asarray(period, dtype=np.float64)
    return np.mod(d + 0.5 * period, period) - 0.5 * period


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def _wrap_int(k: np.ndarray, length: int) -> np.ndarray:
    """Integer minimal image in ``[-(length // 2), length - length // 2)``."""
    half = length // 2
    return np.mod(k + half, length) - half


def _axis_displacement_counts(n_pre: int, n_post: int):
    """Rounded, wrapped 1-D displacements ``post_coord - pre_coord * n_post / n_pre`` on a ring of
    ``n_post`` positions, over all (pre_coord, post_coord) pairs: ``(values, counts)`` (sorted)."""
    x_pre = np.arange(n_pre, dtype=np.float64) * (n_post / n_pre)
    d = np.arange(n_post, dtype=np.float64)[None, :] - x_pre[:, None]
    k = _wrap_int(_round_half_up(_wrap(d, n_post)), n_post)
    values, counts = np.unique(k, return_counts=True)
    return values, counts


def _axis_exact_displacements(n_pre: int, n_post: int):
    """Exact wrapped 1-D displacements (post-grid units) over all coordinate pairs: ``(values, counts)``."""
    x_pre = np.arange(n_pre, dtype=np.float64) * (n_post / n_pre)
    d = _wrap(np.arange(n_post, dtype=np.float64)[None, :] - x_pre[:, None], n_post)
    d = np.round(d, 9)  # merge values that differ only by floating-point noise
    return np.unique(d, return_counts=True)


# --------------------------------------------------------------------------------------------------
# displacements


def periodic_displacement(a, b, shape) -> np.ndarray:
    """Minimal-image displacement ``b - a`` on a torus of size ``shape = (rows, cols)``.

    ``a`` and ``b`` are arrays ``(..., 2)`` of (row, col) positions in grid units (floats allowed),
    broadcast against each other.  Each component is wrapped into ``[-L/2, L/2)`` with ``L`` the grid
    side along that axis, so on a 16 x 16 grid the displacement from (0, 0) to (0, 15) is (0, -1) and a
    displacement of exactly half the grid is reported as ``-L/2``.
    """
    rows, cols = _shape("shape", shape)
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if d.shape[-1:] != (2,):
        raise ValueError(f"positions must have a last axis of length 2, got shape {d.shape}")
    return _wrap(d, (rows, cols))


def mapped_source_positions(shape_pre, shape_post) -> np.ndarray:
    """Source-neuron positions in target-grid coordinates, ``(n_pre, 2)``:
    ``(r * qr / pr, c * qc / pc)`` for source neuron ``(r, c)`` (grid units of the target grid)."""
    pr, pc = _shape("shape_pre", shape_pre)
    qr, qc = _shape("shape_post", shape_post)
    return grid_positions((pr, pc)) * np.array([qr / pr, qc / pc])


def synapse_displacements(pre, post, shape_pre, shape_post) -> np.ndarray:
    """Per-synapse minimal-image displacement ``target position - mapped source position``, ``(n, 2)``
    (row, col), in target-grid units, each component in ``[-L_post/2, L_post/2)``."""
    pre, post, _, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post)
    src = mapped_source_positions(shape_pre, shape_post)[pre]
    tgt = grid_positions(shape_post)[post]
    return periodic_displacement(src, tgt, shape_post)


def _synapse_distances(pre, post, shape_pre, shape_post) -> np.ndarray:
    """Periodic Euclidean distance (target-grid units) between each synapse's mapped source and target."""
    src = mapped_source_positions(shape_pre, shape_post)[pre]
    tgt = grid_positions(shape_post)[post]
    return np.sqrt(periodic_distance_sq(src, tgt, shape_post))


# --------------------------------------------------------------------------------------------------
# connection probability / weight vs displacement


def _window(radius) -> int:
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise ValueError(f"radius must be a non-negative number, got {radius!r}") from None
    if not (0.0 <= r < math.inf):
        raise ValueError(f"radius must be a non-negative finite number, got {radius!r}")
    return int(math.floor(r))


def _map_bins(pre, post, shape_pre, shape_post, R):
    """Flat bin index in the (2R+1) x (2R+1) window of each synapse (-1 outside) and the pair counts."""
    pr, pc = shape_pre
    qr, qc = shape_post
    side = 2 * R + 1
    axis = np.arange(-R, R + 1)
    # number of (pre, post) pairs at each rounded displacement factorises over the two axes
    vr, cr = _axis_displacement_counts(pr, qr)
    vc, cc = _axis_displacement_counts(pc, qc)
    row_n = np.zeros(side)
    col_n = np.zeros(side)
    keep = np.abs(vr) <= R
    row_n[vr[keep] + R] = cr[keep]
    keep = np.abs(vc) <= R
    col_n[vc[keep] + R] = cc[keep]
    pair_counts = np.outer(row_n, col_n)
    d = synapse_displacements(pre, post, shape_pre, shape_post)
    kr = _wrap_int(_round_half_up(d[:, 0]), qr)
    kc = _wrap_int(_round_half_up(d[:, 1]), qc)
    inside = (np.abs(kr) <= R) & (np.abs(kc) <= R)
    flat = np.where(inside, (kr + R) * side + (kc + R), -1)
    return flat, pair_counts, axis


def connection_probability_map(pre, post, shape_pre, shape_post, radius):
    """Fraction of (source, target) pairs that are connected, as a function of 2-D displacement.

    For every integer displacement ``(dr, dc)`` with ``|dr| <= radius`` and ``|dc| <= radius`` (a square
    window; ``radius`` in target-grid units, truncated to an integer) the result is
    ``#connected distinct pairs at (dr, dc) / #all pairs at (dr, dc)``.  A pair's displacement is
    ``target position - mapped source position`` (minimal image on the target torus, see the module
    docstring), rounded half-up to integers when the grids differ in size.  Duplicate synapses of one pair
    count once, so the result is in ``[0, 1]``.  On two equal L x L grids every displacement occurs
    ``L * L`` times (once per target); displacements that no pair has (e.g. ``+L/2`` when ``radius >=
    L/2``: the minimal image of a half-grid displacement is ``-L/2``) give NaN.

    Returns ``(probability, dr, dc)``: a ``(2R+1, 2R+1)`` array indexed ``[dr + R, dc + R]`` and the
    row- and column-displacement axes (integer arrays ``-R .. R``).
    """
    pre, post, _, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post)
    R = _window(radius)
    n_post = shape_post[0] * shape_post[1]
    if pre.size:
        _, first = np.unique(pre * n_post + post, return_index=True)
        pre, post = pre[first], post[first]
    flat, pair_counts, axis = _map_bins(pre, post, shape_pre, shape_post, R)
    side = 2 * R + 1
    connected = np.bincount(flat[flat >= 0], minlength=side * side).reshape(side, side).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.where(pair_counts > 0, connected / pair_counts, np.nan)
    return prob, axis.copy(), axis.copy()


def mean_weight_map(pre, post, w, shape_pre, shape_post, radius):
    """Mean weight of the synapses at each integer 2-D displacement (same window, displacement and
    rounding conventions as :func:`connection_probability_map`).

    Every synapse counts (duplicates included); NaN where no synapse has that displacement.  Weights keep
    their own units (conductance).  Returns ``(mean_weight, dr, dc)``.
    """
    pre, post, w, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post, w)
    if w is None:
        raise ValueError("w (one weight per synapse) is required")
    R = _window(radius)
    side = 2 * R + 1
    flat, _, axis = _map_bins(pre, post, shape_pre, shape_post, R)
    sel = flat >= 0
    n = np.bincount(flat[sel], minlength=side * side).astype(np.float64)
    s = np.bincount(flat[sel], weights=w[sel], minlength=side * side)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
    return mean.reshape(side, side), axis.copy(), axis.copy()


def displacement_maps(pre, post, w, shape_pre, shape_post, radius) -> dict:
    """Both maps in one dict, the input format of :func:`plastix.topomap.plots.plot_maps`:
    ``{"probability": 2-D, "mean_weight": 2-D, "dr": 1-D, "dc": 1-D}``."""
    prob, dr, dc = connection_probability_map(pre, post, shape_pre, shape_post, radius)
    mean, _, _ = mean_weight_map(pre, post, w, shape_pre, shape_post, radius)
    return {"probability": prob, "mean_weight": mean, "dr": dr, "dc": dc}


def distance_bins(shape_post, bin_width: float = 1.0) -> np.ndarray:
    """Default distance-bin edges (target-grid units): ``0, w, 2w, ...`` up to beyond the largest
    periodic distance on the target torus, ``sqrt((qr/2)^2 + (qc/2)^2)``."""
    qr, qc = _shape("shape_post", shape_post)
    if not (bin_width > 0):
        raise ValueError(f"bin_width must be positive, got {bin_width!r}")
    dmax = math.hypot(qr / 2.0, qc / 2.0)
    n = int(math.floor(dmax / bin_width)) + 1
    return np.arange(n + 1, dtype=np.float64) * bin_width


def _edges(bins, shape_post) -> np.ndarray:
    if bins is None:
        return distance_bins(shape_post)
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise ValueError(f"bins must be a positive number of bins or an array of edges, got {bins!r}")
        qr, qc = shape_post
        return np.linspace(0.0, math.hypot(qr / 2.0, qc / 2.0) * (1 + 1e-9), n + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be a strictly increasing 1-D array of at least two edges")
    return edges


def connection_probability_by_distance(pre, post, shape_pre, shape_post, bins=None, *, return_counts=False):
    """Connection probability as a function of (radially binned) distance.

    The distance of a (source, target) pair is the exact periodic Euclidean distance between the target
    and the mapped source position (target-grid units, not rounded).  For each bin
    ``[edges[k], edges[k+1])`` the probability is ``#connected distinct pairs / #all pairs`` with the
    distance in that bin (NaN for bins no pair falls in).  ``bins``: an array of edges, a number of equal
    bins between 0 and the largest distance, or ``None`` for unit-wide bins (:func:`distance_bins`).

    Returns ``(centres, probability)``, or ``(centres, probability, n_connected, n_pairs)`` with
    ``return_counts=True`` (the counts allow binomial error bars,
    ``sqrt(p (1 - p) / n_pairs)``).
    """
    pre, post, _, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post)
    edges = _edges(bins, shape_post)
    (pr, pc), (qr, qc) = shape_pre, shape_post
    n_post = qr * qc
    # all pairs: the distance depends on the row displacement and the column displacement only
    vr, cr = _axis_exact_displacements(pr, qr)
    vc, cc = _axis_exact_displacements(pc, qc)
    dist_all = np.hypot(vr[:, None], vc[None, :]).ravel()
    n_pairs, _ = np.histogram(dist_all, bins=edges, weights=np.outer(cr, cc).ravel().astype(np.float64))
    if pre.size:
        _, first = np.unique(pre * n_post + post, return_index=True)
        dist = _synapse_distances(pre[first], post[first], shape_pre, shape_post)
    else:
        dist = np.zeros(0)
    n_conn, _ = np.histogram(dist, bins=edges)
    n_conn = n_conn.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.where(n_pairs > 0, n_conn / n_pairs, np.nan)
    centres = 0.5 * (edges[:-1] + edges[1:])
    if return_counts:
        return centres, prob, n_conn, n_pairs
    return centres, prob


# --------------------------------------------------------------------------------------------------
# receptive fields


#: Resultant lengths below this (relative to the total weight) leave a circular mean undefined (NaN).
_RESULTANT_TOL = 1e-9


def rf_centres(pre, post, w, shape_pre, shape_post) -> np.ndarray:
    """Receptive-field centre of every target neuron, ``(n_post, 2)`` (row, col) in **source-grid**
    coordinates (grid units, each in ``[0, L_pre)``).

    Definition (per axis, periodic "circular mean"): with source grid side ``L`` along the axis, each
    afferent at coordinate ``x`` is the angle ``theta = 2 pi x / L``; the centre is
    ``atan2(sum_s w_s sin theta_s, sum_s w_s cos theta_s) * L / (2 pi)`` (mod ``L``), the sums running
    over the target's afferent synapses with their weights ``w_s``.  ``w=None`` weighs all synapses
    equally.  The row is NaN for targets without afferents, with zero total weight, or whose weighted
    angles cancel along an axis (resultant length below 1e-9 of the total weight, e.g. a uniform
    receptive field), where no centre is defined.
    """
    pre, post, w, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post, w)
    n_post = shape_post[0] * shape_post[1]
    if w is None:
        w = np.ones(pre.size)
    pos = grid_positions(shape_pre)[pre]
    total = np.bincount(post, weights=w, minlength=n_post)
    centres = np.full((n_post, 2), np.nan)
    for axis, length in enumerate(shape_pre):
        theta = (2.0 * np.pi / length) * pos[:, axis]
        c = np.bincount(post, weights=w * np.cos(theta), minlength=n_post)
        s = np.bincount(post, weights=w * np.sin(theta), minlength=n_post)
        ok = (total > 0) & (np.hypot(c, s) > _RESULTANT_TOL * np.abs(total))
        ang = np.arctan2(s[ok], c[ok])
        x = np.mod(ang * (length / (2.0 * np.pi)), length)
        x[x >= length] = 0.0  # mod can round up to exactly L
        centres[ok, axis] = x
    centres[np.isnan(centres).any(axis=1)] = np.nan
    return centres


def rf_spread(pre, post, w, shape_pre, shape_post, centres=None):
    """Receptive-field spread: per target, the weighted RMS periodic distance of its afferents from its
    receptive-field centre (source-grid units),

        spread_j = sqrt( sum_s w_s d(x_s, centre_j)^2 / sum_s w_s ),

    the sums over target ``j``'s afferent synapses, ``x_s`` the source position and ``d`` the periodic
    Euclidean distance on the source torus.  ``centres`` defaults to :func:`rf_centres` of the same
    synapses.  Returns ``(spread, mean_spread)``: the ``(n_post,)`` array (NaN where the centre is
    undefined, see :func:`rf_centres`) and its mean over the targets with a defined value (NaN if none).
    """
    pre, post, w, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post, w)
    n_post = shape_post[0] * shape_post[1]
    if w is None:
        w = np.ones(pre.size)
    if centres is None:
        centres = rf_centres(pre, post, w, shape_pre, shape_post)
    centres = np.asarray(centres, dtype=np.float64)
    if centres.shape != (n_post, 2):
        raise ValueError(f"centres must have shape ({n_post}, 2), got {centres.shape}")
    d2 = periodic_distance_sq(grid_positions(shape_pre)[pre], centres[post], shape_pre) if pre.size else np.zeros(0)
    total = np.bincount(post, weights=w, minlength=n_post)
    acc = np.bincount(post, weights=w * np.nan_to_num(d2), minlength=n_post)
    ok = (total > 0) & np.isfinite(centres).all(axis=1)
    spread = np.full(n_post, np.nan)
    spread[ok] = np.sqrt(np.maximum(acc[ok] / total[ok], 0.0))
    mean = float(np.mean(spread[ok])) if ok.any() else float("nan")
    return spread, mean


def ideal_rf_positions(shape_post, shape_pre=None) -> np.ndarray:
    """Ideal topographic receptive-field centre of every target, ``(n_post, 2)`` in source-grid
    coordinates: target ``(r, c)`` maps to ``(r * pr / qr, c * pc / qc)`` (its own position for equal
    grids; ``shape_pre`` defaults to ``shape_post``)."""
    qr, qc = _shape("shape_post", shape_post)
    pr, pc = (qr, qc) if shape_pre is None else _shape("shape_pre", shape_pre)
    return grid_positions((qr, qc)) * np.array([pr / qr, pc / qc])


def rf_deviation(centres, shape_post, shape_pre=None) -> np.ndarray:
    """Per-target periodic Euclidean distance (source-grid units) between the receptive-field centre
    (:func:`rf_centres`) and the ideal position (:func:`ideal_rf_positions`); NaN where the centre is NaN."""
    qr, qc = _shape("shape_post", shape_post)
    shape_pre = (qr, qc) if shape_pre is None else _shape("shape_pre", shape_pre)
    centres = np.asarray(centres, dtype=np.float64)
    if centres.shape != (qr * qc, 2):
        raise ValueError(f"centres must have shape ({qr * qc}, 2), got {centres.shape}")
    return np.sqrt(periodic_distance_sq(centres, ideal_rf_positions((qr, qc), shape_pre), shape_pre))


def mean_absolute_deviation(centres, shape_post, shape_pre=None) -> float:
    """AD (Bamford et al.'s map-quality measure): the mean, over targets with a defined receptive-field
    centre, of :func:`rf_deviation` (periodic distance between centre and ideal topographic position,
    source-grid units).  NaN if no target has a centre.  A perfect map gives 0; a map in which every
    receptive field is shifted by ``(dr, dc)`` gives ``sqrt(dr^2 + dc^2)``."""
    dev = rf_deviation(centres, shape_post, shape_pre)
    ok = np.isfinite(dev)
    return float(np.mean(dev[ok])) if ok.any() else float("nan")


# --------------------------------------------------------------------------------------------------
# formation / elimination


@dataclass(frozen=True)
class FormationElimination:
    """Synapses formed and eliminated between two connectivity snapshots.

    ``formed_pre/formed_post`` and ``eliminated_pre/eliminated_post`` list the synapses (a pair present
    ``m`` more times after than before is listed ``m`` times in ``formed``, and vice versa);
    ``formed_distance`` / ``eliminated_distance`` are their periodic distances (target-grid units, see
    the module docstring); ``formed_hist`` / ``eliminated_hist`` their counts in the distance bins
    ``bins`` (edges).
    """

    formed_pre: np.ndarray
    formed_post: np.ndarray
    eliminated_pre: np.ndarray
    eliminated_post: np.ndarray
    formed_distance: np.ndarray
    eliminated_distance: np.ndarray
    formed_hist: np.ndarray
    eliminated_hist: np.ndarray
    bins: np.ndarray

    @property
    def n_formed(self) -> int:
        return int(self.formed_pre.size)

    @property
    def n_eliminated(self) -> int:
        return int(self.eliminated_pre.size)


def formation_elimination(before, after, shape_pre, shape_post, bins=None) -> FormationElimination:
    """Synapses formed and eliminated between snapshots ``before = (pre, post)`` and
    ``after = (pre, post)`` of one projection.

    Formed = multiset difference ``after - before`` of the ``(pre, post)`` pairs, eliminated =
    ``before - after`` (multiplicities counted: a pair with 1 synapse before and 3 after counts as 2
    formations).  A synapse that was eliminated and re-formed between the snapshots is invisible.
    ``bins``: distance-bin edges (target-grid units), a number of bins, or ``None`` for unit-wide bins
    (:func:`distance_bins`).
    """
    bpre, bpost, _, shape_pre, shape_post = _synapses(before[0], before[1], shape_pre, shape_post)
    apre, apost, _, _, _ = _synapses(after[0], after[1], shape_pre, shape_post)
    edges = _edges(bins, shape_post)
    n_post = shape_post[0] * shape_post[1]
    kb = bpre * n_post + bpost
    ka = apre * n_post + apost
    formed = multiset_minus(ka, kb)
    elim = multiset_minus(kb, ka)
    fpre, fpost = np.divmod(formed, n_post)
    epre, epost = np.divmod(elim, n_post)
    fd = _synapse_distances(fpre, fpost, shape_pre, shape_post)
    ed = _synapse_distances(epre, epost, shape_pre, shape_post)
    fh, _ = np.histogram(fd, bins=edges)
    eh, _ = np.histogram(ed, bins=edges)
    return FormationElimination(fpre, fpost, epre, epost, fd, ed, fh, eh, edges)


# --------------------------------------------------------------------------------------------------
# summary (degrees: plastix.analysis, re-exported here)


def summarise(pre, post, w, shape_pre, shape_post) -> dict:
    """Map-quality and connectivity summary of one projection, JSON-serialisable
    (``json.dumps(..., allow_nan=False)`` works: undefined values are ``None``):

    ``rf_spread``       mean receptive-field spread (:func:`rf_spread`, source-grid units)
    ``ad``              mean absolute deviation of RF centres (:func:`mean_absolute_deviation`)
    ``mean_in_degree``  synapses per target neuron
    ``mean_out_degree`` synapses per source neuron
    ``in_degree_std``, ``in_degree_max``, ``out_degree_std``, ``out_degree_max``  their spread over neurons
    ``n_synapses``      number of synapses (int)
    ``mean_weight``     mean synaptic weight (conductance units of ``w``)
    """
    pre, post, w, shape_pre, shape_post = _synapses(pre, post, shape_pre, shape_post, w)
    if w is None:
        w = np.ones(pre.size)
    n_pre = shape_pre[0] * shape_pre[1]
    n_post = shape_post[0] * shape_post[1]
    centres = rf_centres(pre, post, w, shape_pre, shape_post)
    _, spread = rf_spread(pre, post, w, shape_pre, shape_post, centres=centres)
    deg = degree_summary(*degrees(pre, post, n_pre, n_post))
    return {
        "rf_spread": json_float(spread),
        "ad": json_float(mean_absolute_deviation(centres, shape_post, shape_pre)),
        "mean_in_degree": json_float(pre.size / n_post),
        "mean_out_degree": json_float(pre.size / n_pre),
        **{k: json_float(deg[k]) for k in ("in_degree_std", "in_degree_max", "out_degree_std", "out_degree_max")},
        "n_synapses": int(pre.size),
        "mean_weight": json_float(np.mean(w)) if w.size else None,
    }
