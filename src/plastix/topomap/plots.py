"""Figures for topographic-map experiments (matplotlib, Agg canvas, imported lazily inside each function).

Every function writes one PNG (or any format matplotlib infers from the file name) and returns its path.
Inputs come from :mod:`plastix.topomap.analysis`.  Distances and displacements are in grid units.
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import analysis

__all__ = ["plot_maps", "plot_time_series", "plot_formation_elimination", "plot_rf_map"]


def _figure(nrows: int, ncols: int, figsize, margins: dict, **kw):
    """A figure on its own Agg canvas (no pyplot state, so the caller's backend is never touched).

    ``margins``: :meth:`~matplotlib.figure.Figure.subplots_adjust` arguments (figure fractions), fixed per
    figure: matplotlib's constrained layout would find them itself, but measuring every text's extent
    took about half of each figure's time (~1 s of a short ``plastix topomap`` run)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _save(fig, path) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _nanmax(*arrays, default=1.0) -> float:
    vals = [np.asarray(a, dtype=np.float64) for a in arrays]
    vals = [v[np.isfinite(v)] for v in vals]
    vals = [v for v in vals if v.size]
    if not vals:
        return default
    m = max(float(v.max()) for v in vals)
    return m if m > 0 else default


# --------------------------------------------------------------------------------------------------


def plot_maps(initial: dict, final: dict, path, *, weight_unit: str = "µS", g_max: float | None = None,
              labels=("initial", "final"), title: str | None = None) -> str:
    """Connection probability and mean weight vs 2-D displacement, initial vs final (2 x 2 panels).

    ``initial`` / ``final``: dicts as returned by :func:`plastix.topomap.analysis.displacement_maps`
    (keys ``probability``, ``mean_weight``, ``dr``, ``dc``).  Both columns share one colour scale per row
    (weights: ``0 .. g_max`` when given).  Displacements with no data are grey.
    """
    import matplotlib as mpl

    fig, axes = _figure(2, 2, (9.5, 8.0), dict(left=0.08, right=0.99, bottom=0.07, top=0.91 if title else 0.95,
                                                 wspace=0.32, hspace=0.3))
    rows = [
        ("probability", "connection probability", "viridis", 0.0,
         _nanmax(initial["probability"], final["probability"])),
        ("mean_weight", f"mean weight ({weight_unit})", "magma", 0.0,
         g_max if g_max is not None else _nanmax(initial["mean_weight"], final["mean_weight"])),
    ]
    for i, (key, label, cmap_name, vmin, vmax) in enumerate(rows):
        cmap = mpl.colormaps[cmap_name].with_extremes(bad="0.8")
        im = None
        for j, (maps, name) in enumerate(((initial, labels[0]), (final, labels[1]))):
            ax = axes[i, j]
            dr = np.asarray(maps["dr"])
            dc = np.asarray(maps["dc"])
            data = np.ma.masked_invalid(np.asarray(maps[key], dtype=np.float64))
            extent = (dc[0] - 0.5, dc[-1] + 0.5, dr[0] - 0.5, dr[-1] + 0.5)
            im = ax.imshow(data, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                           interpolation="nearest")
            ax.axhline(0, color="w", lw=0.5, alpha=0.6)
            ax.axvline(0, color="w", lw=0.5, alpha=0.6)
            ax.set_title(f"{label}: {name}")
            ax.set_xlabel("column displacement Δc (grid units)")
            ax.set_ylabel("row displacement Δr (grid units)")
        fig.colorbar(im, ax=axes[i, :], label=label, shrink=0.9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _series(history, key):
    return np.array([np.nan if h.get(key) is None else float(h[key]) for h in history], dtype=np.float64)


def plot_time_series(history, path, *, title: str | None = None) -> str:
    """Map quality, degrees and rewiring activity over time (3 stacked panels).

    ``history``: list of dicts, one per recording interval, with ``t_s`` (time, s), ``rf_spread`` and
    ``ad`` (source-grid units), ``mean_in_degree``, ``mean_out_degree`` (with ``in_degree_std`` /
    ``out_degree_std``: shaded bands) and ``formed`` / ``eliminated``
    (synapses formed / eliminated during the interval ending at ``t_s``).  Missing keys or ``None`` values
    are left out.
    """
    if not history:
        raise ValueError("history is empty")
    t = _series(history, "t_s")
    marker = "o" if len(history) <= 60 else None
    fig, axes = _figure(3, 1, (8.0, 9.0), dict(left=0.1, right=0.97, bottom=0.06, top=0.92 if title else 0.96,
                                                 hspace=0.22), sharex=True)
    axes = axes[:, 0]
    ax = axes[0]
    ax.plot(t, _series(history, "rf_spread"), marker=marker, label="RF spread (weighted RMS)")
    ax.plot(t, _series(history, "ad"), marker=marker, label="AD (mean RF centre deviation)")
    ax.set_ylabel("distance (source grid units)")
    ax.set_title("map quality")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax = axes[1]
    for key, ls, label in (("in", "-", "in-degree (per target)"), ("out", "--", "out-degree (per source)")):
        mean, std = _series(history, f"mean_{key}_degree"), _series(history, f"{key}_degree_std")
        line, = ax.plot(t, mean, marker=marker, ls=ls, label=f"{label}: mean ± 1 s.d.")
        ax.fill_between(t, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_ylabel("synapses per neuron")
    ax.set_title("degrees")
    ax.legend()
    ax = axes[2]
    ax.plot(t, _series(history, "formed"), marker=marker, color="tab:green", label="formed")
    ax.plot(t, _series(history, "eliminated"), marker=marker, color="tab:red", label="eliminated")
    ax.set_ylabel("synapses per interval")
    ax.set_xlabel("time (s)")
    ax.set_title("structural plasticity events")
    ax.set_ylim(bottom=0)
    ax.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_formation_elimination(hist_formed, hist_eliminated, bins, path, *, t_s=None,
                               title: str | None = None) -> str:
    """Formation and elimination events vs distance (target-grid units).

    1-D histograms (counts per bin, ``bins`` = edges, e.g. from
    :func:`plastix.topomap.analysis.formation_elimination`): one step plot of both.  2-D histograms
    ``(n_intervals, n_bins)`` (one row per recording interval): two heatmaps over time and distance
    (``t_s``: end time of each interval in s, default interval index) plus the totals over time.
    """
    edges = np.asarray(bins, dtype=np.float64)
    hf = np.asarray(hist_formed, dtype=np.float64)
    he = np.asarray(hist_eliminated, dtype=np.float64)
    if hf.shape != he.shape or hf.shape[-1] != edges.size - 1:
        raise ValueError(f"histograms must have matching shapes with {edges.size - 1} bins, "
                         f"got {hf.shape} and {he.shape}")

    def totals(ax, f, e):
        ax.stairs(f, edges, color="tab:green", lw=2, label=f"formed ({int(f.sum())})")
        ax.stairs(e, edges, color="tab:red", lw=2, ls="--", label=f"eliminated ({int(e.sum())})")
        ax.set_xlabel("distance (target grid units)")
        ax.set_ylabel("synapses")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()

    if hf.ndim == 1:
        fig, axes = _figure(1, 1, (7.0, 4.5), dict(left=0.11, right=0.97, bottom=0.12, top=0.91))
        ax = axes[0, 0]
        totals(ax, hf, he)
        ax.set_title(title or "synapses formed / eliminated vs distance")
        return _save(fig, path)
    if hf.ndim != 2:
        raise ValueError("histograms must be 1-D (bins) or 2-D (intervals x bins)")
    n = hf.shape[0]
    t = np.arange(1, n + 1, dtype=np.float64) if t_s is None else np.asarray(t_s, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"t_s must have one entry per interval ({n})")
    # time edges: midpoints between interval end times
    if n > 1:
        mid = 0.5 * (t[1:] + t[:-1])
        t_edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    else:
        t_edges = np.array([t[0] - 0.5, t[0] + 0.5])
    fig, axes = _figure(1, 3, (15.0, 4.5), dict(left=0.045, right=0.99, bottom=0.12,
                                                  top=0.84 if title else 0.91, wspace=0.3))
    axes = axes[0]
    vmax = _nanmax(hf, he)
    for ax, data, name in ((axes[0], hf, "formed"), (axes[1], he, "eliminated")):
        mesh = ax.pcolormesh(edges, t_edges, data, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xlabel("distance (target grid units)")
        ax.set_ylabel("time (s)" if t_s is not None else "interval")
        ax.set_title(f"synapses {name} per interval")
        fig.colorbar(mesh, ax=ax, label="synapses per interval")
    totals(axes[2], hf.sum(axis=0), he.sum(axis=0))
    axes[2].set_title("total over all intervals")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_rf_map(centres, shape_post, path, *, shape_pre=None, title: str | None = None,
                max_per_side: int = 32) -> str:
    """The map picture: receptive-field centres on the target grid (source-grid coordinates).

    ``centres``: ``(n_post, 2)`` from :func:`plastix.topomap.analysis.rf_centres`.  Every centre is drawn
    at its minimal-image offset from the target's ideal position
    (:func:`~plastix.topomap.analysis.ideal_rf_positions`), so wrap-around does not tear the picture.
    Left: the deformed grid mesh joining the RF centres of neighbouring targets over the ideal grid (grey),
    points coloured by deviation.  Right: a line from each target's ideal position (grey dot) to its RF
    centre (coloured dot), coloured by deviation.  Grids with more than ``max_per_side`` targets along an
    axis are subsampled (every k-th row / column) so the figure stays legible; the title's AD uses all
    targets.  Targets without a defined centre are marked with black crosses.
    """
    from matplotlib.collections import LineCollection

    qr, qc = analysis._shape("shape_post", shape_post)
    pre_shape = (qr, qc) if shape_pre is None else analysis._shape("shape_pre", shape_pre)
    centres = np.asarray(centres, dtype=np.float64)
    ideal = analysis.ideal_rf_positions((qr, qc), pre_shape)
    offset = analysis.periodic_displacement(ideal, centres, pre_shape)
    pos = ideal + offset  # (n, 2) row, col; NaN where undefined
    dev = np.hypot(offset[:, 0], offset[:, 1])
    ok_all = np.isfinite(dev)
    ad = float(np.mean(dev[ok_all])) if ok_all.any() else float("nan")
    vmax = max(_nanmax(dev, default=1.0), 1e-3)

    # subsample: every step-th row / column of the target grid
    step_r = max(1, math.ceil(qr / max_per_side))
    step_c = max(1, math.ceil(qc / max_per_side))
    rows_i = np.arange(0, qr, step_r)
    cols_i = np.arange(0, qc, step_c)
    sel = (rows_i[:, None] * qc + cols_i[None, :])  # (nr, nc) target indices
    grid = pos[sel]  # (nr, nc, 2)
    ideal_grid = ideal[sel]
    d_sel = dev[sel].ravel()
    ok = np.isfinite(d_sel)
    p_sel = grid.reshape(-1, 2)
    i_sel = ideal_grid.reshape(-1, 2)
    n_shown = sel.size
    size = float(np.clip(3000.0 / n_shown, 6.0, 40.0))

    fig, axes = _figure(1, 2, (13.0, 6.2), dict(left=0.055, right=0.99, bottom=0.09, top=0.9, wspace=0.18))
    axes = axes[0]
    pr, pc = pre_shape
    ax = axes[0]
    segs = [ideal_grid[r, :, ::-1] for r in range(len(rows_i))] + [ideal_grid[:, c, ::-1] for c in range(len(cols_i))]
    ax.add_collection(LineCollection(segs, colors="0.82", linewidths=0.8, zorder=1))
    links = []
    for a, b in ((grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])):
        a2, b2 = a.reshape(-1, 2), b.reshape(-1, 2)
        good = np.isfinite(a2).all(axis=1) & np.isfinite(b2).all(axis=1)
        links.append(np.stack([a2[good][:, ::-1], b2[good][:, ::-1]], axis=1))
    ax.add_collection(LineCollection(np.concatenate(links), colors="tab:blue", linewidths=0.9, zorder=2))
    sc = ax.scatter(p_sel[ok, 1], p_sel[ok, 0], c=d_sel[ok], cmap="plasma", vmin=0, vmax=vmax, s=size, zorder=3)
    missing = ""
    if (~ok).any():
        ax.scatter(i_sel[~ok, 1], i_sel[~ok, 0], marker="x", color="k", s=max(size * 1.5, 20), zorder=4)
        missing = f"; ×: no RF centre ({int((~ok).sum())})"
    ax.set_title(f"deformed mesh of RF centres (grey: ideal grid{missing})", fontsize="medium")

    ax = axes[1]
    seg = np.stack([i_sel[ok][:, ::-1], p_sel[ok][:, ::-1]], axis=1)
    ax.add_collection(LineCollection(seg, array=d_sel[ok], cmap="plasma", clim=(0, vmax), linewidths=1.5, zorder=2))
    ax.scatter(i_sel[:, 1], i_sel[:, 0], s=size * 0.35, color="0.55", zorder=1)
    ax.scatter(p_sel[ok, 1], p_sel[ok, 0], c=d_sel[ok], cmap="plasma", vmin=0, vmax=vmax, s=size * 0.6, zorder=3)
    ax.set_title("ideal position (grey dot) → RF centre (coloured dot)", fontsize="medium")
    fig.colorbar(sc, ax=axes, label="deviation from ideal position (source grid units)", shrink=0.85)
    for ax in axes:
        ax.set_xlim(-1.5, pc + 0.5)
        ax.set_ylim(pr + 0.5, -1.5)  # row 0 at the top, as in the grid's row-major layout
        ax.set_aspect("equal")
        ax.set_xlabel("column (source grid units)")
        ax.set_ylabel("row (source grid units)")
    sub = "" if step_r == step_c == 1 else f"; every {step_r}th row / {step_c}th column of targets shown"
    fig.suptitle(title or f"receptive-field map, {qr}x{qc} targets: AD = {ad:.3g} source grid units{sub}")
    return _save(fig, path)
