"""Neurons on 2-D grids with periodic boundaries (a torus): positions and wrapped distances."""
from __future__ import annotations

import numpy as np

from .checks import check_shape


def grid_positions(shape) -> np.ndarray:
    """Positions of the neurons of a ``(rows, cols)`` grid, row-major: an ``(rows * cols, 2)`` float
    array whose row ``i`` is ``(i // cols, i % cols)``."""
    rows, cols = check_shape("shape", shape)
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    return np.stack([r, c], axis=1).astype(np.float64)


def periodic_distance_sq(a, b, shape) -> np.ndarray:
    """Squared Euclidean distance between positions ``a`` and ``b`` (arrays ``(..., 2)`` of
    (row, col), broadcast against each other) on a torus of size ``shape = (rows, cols)``: each
    coordinate difference wraps around, e.g. on a 16x16 grid (0, 0) and (0, 15) are 1 apart."""
    rows, cols = check_shape("shape", shape)
    period = np.array([rows, cols], dtype=np.float64)
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    if d.shape[-1:] != (2,):
        raise ValueError(f"positions must have a last axis of length 2, got shape {d.shape}")
    d = np.mod(d, period)
    d = np.minimum(d, period - d)
    return np.sum(d * d, axis=-1)


def axis_factor(x_pre: np.ndarray, length: int, sigma: float, periodic: bool) -> np.ndarray:
    """exp(-dx^2 / (2 sigma^2)) between coordinates ``x_pre`` and post coordinates 0 .. length-1."""
    d = np.abs(x_pre[:, None] - np.arange(length, dtype=np.float64)[None, :])
    if periodic:
        d = np.mod(d, float(length))
        d = np.minimum(d, length - d)
    return np.exp(-(d * d) / (2.0 * sigma * sigma))
