"""Encoders from analog features to spikes.  Each encodes one sample and returns ``(times_ms, units)``,
sorted by time then unit, ready for :meth:`plastix.datasets.SpikeSplit.from_samples`."""
from __future__ import annotations

import numpy as np

from .base import DatasetError, _check_dt

__all__ = ["threshold_crossings", "latency", "rate", "bernoulli"]


def _sorted(times: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((units, times))
    return times[order].astype(np.float64), units[order].astype(np.int64)


def _normalise(values, vmin: float, vmax: float) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if not vmax > vmin:
        raise DatasetError(f"vmax must be greater than vmin, got vmin={vmin}, vmax={vmax}")
    if not np.all(np.isfinite(x)):
        raise DatasetError("values must be finite (found NaN or inf)")
    return np.clip((x - vmin) / (vmax - vmin), 0.0, 1.0)


def threshold_crossings(series, levels, *, step_ms: float = 1.0, down: bool = False,
                        interpolate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Spikes where a sampled time series crosses levels.

    ``series`` is ``[T]`` or ``[T, channels]``, sampled every ``step_ms`` (sample ``k`` at ``k * step_ms``).
    Unit ``channel * len(levels) + j`` spikes each time the signal crosses ``levels[j]`` upward, i.e.
    ``x[k-1] < level <= x[k]``.  With ``down=True`` downward crossings (``x[k-1] >= level > x[k]``) spike on
    the separate units ``channels * len(levels) + channel * len(levels) + j``, so there are
    ``channels * len(levels) * (2 if down else 1)`` units.  The spike time is the linearly interpolated
    crossing time between samples ``k-1`` and ``k`` (``interpolate=False``: the time of sample ``k``).
    Nothing spikes at sample 0 (there is no crossing before it).
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DatasetError(f"series must be [T] or [T, channels], got shape {np.shape(series)}")
    if not np.all(np.isfinite(x)):
        raise DatasetError("series must be finite (found NaN or inf)")
    lv = np.asarray(levels, dtype=np.float64).ravel()
    if lv.size == 0 or not np.all(np.isfinite(lv)):
        raise DatasetError(f"levels must be one or more finite numbers, got {levels!r}")
    if not step_ms > 0:
        raise DatasetError(f"step_ms must be positive, got {step_ms}")
    channels, nl = x.shape[1], lv.size
    a, b = x[:-1, :, None], x[1:, :, None]                     # [T-1, channels, 1]
    times, units = [], []
    for direction, crossed in enumerate(((a < lv) & (b >= lv), (a >= lv) & (b < lv)) if down
                                        else ((a < lv) & (b >= lv),)):
        k, c, j = np.nonzero(crossed)
        if interpolate:
            x0, x1 = x[k, c], x[k + 1, c]
            t = k + (lv[j] - x0) / (x1 - x0)
        else:
            t = k + 1.0
        times.append(np.asarray(t, dtype=np.float64) * step_ms)
        units.append(direction * channels * nl + c * nl + j)
    return _sorted(np.concatenate(times), np.concatenate(units))


def latency(values, t_max: float, *, vmin: float = 0.0, vmax: float = 1.0,
            threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One spike per feature, stronger = earlier: feature ``i`` (value normalised to ``x`` in [0, 1] by
    ``(v - vmin) / (vmax - vmin)``, clipped) spikes at ``t_max * (1 - x)`` ms.  Features with
    ``x <= threshold`` stay silent (default ``None``: every feature spikes, the weakest at ``t_max``)."""
    if not t_max > 0:
        raise DatasetError(f"t_max must be positive, got {t_max}")
    x = _normalise(values, vmin, vmax)
    units = np.arange(x.size)
    if threshold is not None:
        units = units[x > threshold]
    return _sorted(t_max * (1.0 - x[units]), units)


def rate(values, steps: int, max_rate: float, seed=0, *, dt: float = 1.0, vmin: float = 0.0,
         vmax: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli rate code: in each of ``steps`` steps of ``dt`` ms, feature ``i`` (normalised to ``x`` in
    [0, 1] as in :func:`latency`) spikes with probability ``x * max_rate * dt / 1000`` (``max_rate`` in
    Hz); spike times are ``step * dt``.  ``seed`` is an int or a ``numpy.random.Generator`` (pass one
    generator through a loop over samples to give each sample its own draw, reproducibly)."""
    steps = int(steps)
    if steps < 1:
        raise DatasetError(f"steps must be >= 1, got {steps}")
    p = _normalise(values, vmin, vmax) * (max_rate * dt / 1000.0)
    if not 0.0 <= max_rate * dt / 1000.0 <= 1.0:
        raise DatasetError(f"max_rate * dt / 1000 must lie in [0, 1] (a probability per step); got max_rate="
                           f"{max_rate} Hz with dt={dt} ms")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    step, unit = np.nonzero(rng.random((steps, p.size)) < p)
    return step * float(dt), unit.astype(np.int64)


def bernoulli(values, steps: int, seed=0, *, dt: float = 1.0, vmin: float = 0.0,
              vmax: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli code with the intensity as the per-step probability: feature ``i`` (normalised to ``x`` in
    [0, 1] as in :func:`latency`) spikes in step ``k`` (at ``k * dt`` ms) exactly when ``u[k, i] < x``,
    with ``u = rng.random((steps, len(values)))``, uniform on [0, 1) and fresh for every step and feature.
    So ``x = 1`` spikes every step and ``x = 0`` never.  :func:`rate` draws the same way with the
    probability given in Hz (``max_rate=1000`` at ``dt = 1`` ms gives the same spikes).  This is SD-SNN's
    input coding (spike if pixel > U(0, 1), T = 20 steps).
    ``seed``: an int, a sequence of ints (as ``numpy.random.default_rng`` takes) or a Generator."""
    steps = int(steps)
    if steps < 1:
        raise DatasetError(f"steps must be >= 1, got {steps}")
    x = _normalise(values, vmin, vmax)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    step, unit = np.nonzero(rng.random((steps, x.size)) < x)
    return step * _check_dt(dt), unit.astype(np.int64)
