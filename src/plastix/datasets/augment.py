"""Spike-train augmentation of training batches: small transforms of a dense batch ``[samples, steps,
units]`` of spike counts, composable with :func:`chain`.

Each transform is called as ``transform(spikes, rng)`` with a ``numpy.random.Generator`` and returns a
new array of the same shape and dtype (the input is not modified).  :class:`~plastix.learning.trainer.
Trainer` applies one to every training batch (never to evaluation), with a generator keyed by (seed,
epoch, batch), so a resumed run sees exactly the batches an uninterrupted one would.

    from plastix.datasets import augment
    aug = augment.chain(augment.time_shift(4), augment.drop_spikes(0.1))
    Trainer(config, data, augment=aug)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import DatasetError


def _check_batch(spikes) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise DatasetError(f"augmentation takes a dense batch [samples, steps, units], got shape {spikes.shape}")
    return spikes


@dataclass(frozen=True)
class TimeShift:
    """Shift each sample in time by its own whole number of steps, uniform in ``[-max_steps, max_steps]``;
    steps left empty are zero.  Spikes shifted past either end of the trial are lost by design: the
    sample becomes a recording that started earlier or later."""

    max_steps: int

    def __call__(self, spikes, rng: np.random.Generator) -> np.ndarray:
        spikes = _check_batch(spikes)
        shifts = rng.integers(-self.max_steps, self.max_steps + 1, size=spikes.shape[0])
        out = np.zeros_like(spikes)
        steps = spikes.shape[1]
        for b, s in enumerate(shifts):
            if abs(s) >= steps:
                continue  # shifted out entirely: an empty sample
            if s >= 0:
                out[b, s:] = spikes[b, :steps - s]
            else:
                out[b, :steps + s] = spikes[b, -s:]
        return out

    def to_dict(self) -> dict:
        return {"time_shift": {"max_steps": self.max_steps}}


@dataclass(frozen=True)
class DropSpikes:
    """Delete each spike independently with ``probability`` (a count of k spikes in one step keeps a
    binomial(k, 1 - probability) of them)."""

    probability: float

    def __call__(self, spikes, rng: np.random.Generator) -> np.ndarray:
        spikes = _check_batch(spikes)
        out = spikes.copy()
        nz = np.nonzero(spikes)  # only cells with spikes draw: batches are sparse
        out[nz] = rng.binomial(spikes[nz].astype(np.int64), 1.0 - self.probability).astype(spikes.dtype)
        return out

    def to_dict(self) -> dict:
        return {"drop_spikes": {"probability": self.probability}}


@dataclass(frozen=True)
class Chain:
    """Transforms applied in order, each with the same generator (so their draws never overlap)."""

    transforms: tuple

    def __call__(self, spikes, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            spikes = t(spikes, rng)
        return spikes

    def to_dict(self) -> dict:
        return {"chain": [t.to_dict() for t in self.transforms]}


def time_shift(max_steps: int) -> TimeShift:
    """Shift samples by up to ``max_steps`` steps (of the batch's dt) earlier or later."""
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
        raise DatasetError(f"time_shift: max_steps must be an integer >= 0, got {max_steps!r}")
    return TimeShift(int(max_steps))


def drop_spikes(probability: float) -> DropSpikes:
    """Delete each spike with ``probability`` in [0, 1)."""
    p = float(probability)
    if not 0.0 <= p < 1.0:
        raise DatasetError(f"drop_spikes: probability must be in [0, 1), got {probability!r}")
    return DropSpikes(p)


def chain(*transforms) -> Chain:
    """Apply ``transforms`` in order."""
    for t in transforms:
        if not callable(t) or not hasattr(t, "to_dict"):
            raise DatasetError(f"chain: {t!r} is not an augmentation (make one with time_shift or drop_spikes)")
    return Chain(tuple(transforms))
