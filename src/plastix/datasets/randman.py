"""Randman: spike-timing classification on random smooth manifolds (after the description in Zenke &
Vogels 2021, "The remarkable robustness of surrogate gradient learning for instilling complex function in
spiking neural networks", Neural Computation 33(4)).

Each class ``c`` gets its own random smooth map from a ``manifold_dim``-dimensional latent cube
``[0, 1)^D`` to ``[0, 1]^num_units``.  Coordinate ``u`` of the map is a product over latent dimensions
``d`` of a random Fourier series with decaying amplitudes::

    f_u(z) = prod_d  sum_{k=1..num_freqs}  a_udk / k**alpha * sin(2 pi (k * b_udk * z_d + c_udk))

with ``a, b, c`` drawn uniformly from [0, 1) per class; ``alpha`` sets the smoothness.  Each coordinate is
then rescaled to [0, 1] by its minimum and maximum over all samples drawn from that class.  A sample is a
point ``z`` drawn uniformly from the latent cube; input unit ``u`` fires exactly one spike, at time
``f_u(z) * (duration_ms - dt)`` ms.  Train and test samples are drawn from the same manifolds, balanced
over classes, in an order shuffled with the same seed.  Everything is determined by ``seed``.
"""
from __future__ import annotations

import numpy as np

from .base import DatasetError, SpikeDataset, SpikeSplit


def randman_times(num_classes: int, num_units: int, samples_per_class: int, *, manifold_dim: int = 1,
                  alpha: float = 2.0, num_freqs: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised spike times in [0, 1]: ``[num_classes * samples_per_class, num_units]``, and labels
    (class-major order)."""
    if min(num_classes, num_units, samples_per_class, manifold_dim, num_freqs) < 1:
        raise DatasetError("num_classes, num_units, samples per class, manifold_dim and num_freqs must all be "
                           ">= 1")
    rng = np.random.default_rng(seed)
    k = np.arange(1, num_freqs + 1, dtype=np.float64)
    out = np.empty((num_classes, samples_per_class, num_units))
    for c in range(num_classes):
        a, b, ph = rng.random((3, num_units, manifold_dim, num_freqs))
        z = rng.random((samples_per_class, manifold_dim))
        arg = 2.0 * np.pi * (k * b * z[:, None, :, None] + ph)          # [samples, units, dims, freqs]
        f = (a / k ** alpha * np.sin(arg)).sum(axis=-1).prod(axis=-1)    # [samples, units]
        lo, hi = f.min(axis=0), f.max(axis=0)
        out[c] = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
    labels = np.repeat(np.arange(num_classes), samples_per_class)
    return out.reshape(-1, num_units), labels


def load_randman(*, dt: float = 1.0, num_classes: int = 10, num_units: int = 50, train_per_class: int = 100,
                 test_per_class: int = 50, manifold_dim: int = 1, alpha: float = 2.0, num_freqs: int = 3,
                 duration_ms: float = 50.0, seed: int = 0) -> SpikeDataset:
    """A randman data set (see the module text): ``train_per_class`` / ``test_per_class`` samples of each
    class, one spike per unit in [0, duration_ms - dt]."""
    if not duration_ms > dt:
        raise DatasetError(f"duration_ms must exceed dt, got duration_ms={duration_ms}, dt={dt}")
    per_class = int(train_per_class) + int(test_per_class)
    x, labels = randman_times(num_classes, num_units, per_class, manifold_dim=manifold_dim, alpha=alpha,
                              num_freqs=num_freqs, seed=seed)
    times = x * (duration_ms - dt)
    is_test = np.tile(np.arange(per_class) >= int(train_per_class), num_classes)
    order_rng = np.random.default_rng([seed, 1])

    def split(mask):
        idx = np.flatnonzero(mask)
        idx = idx[order_rng.permutation(len(idx))]
        n = len(idx)
        t = times[idx]
        order = np.argsort(t, axis=1, kind="stable")
        return SpikeSplit(np.take_along_axis(t, order, axis=1).ravel(), order.ravel(),
                          np.arange(n + 1) * num_units, labels[idx], num_units=num_units,
                          num_classes=num_classes, duration_ms=duration_ms, dt=dt)

    info = {"manifold_dim": manifold_dim, "alpha": alpha, "num_freqs": num_freqs, "seed": seed}
    return SpikeDataset("randman", split(~is_test), split(is_test), info)
