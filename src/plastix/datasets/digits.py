"""Digits: scikit-learn's 8x8 handwritten digits (``sklearn.datasets.load_digits``, 1,797 images, 64
pixels with values 0..16, shipped in the scikit-learn wheel), latency- or rate-coded.  One unit per pixel.

Fixed split: of each digit, the last 20 % of its images in the file's order are the test set (1,438 train /
359 test).

``redraw=True`` (with ``encoding="rate"``): SD-SNN's input coding on the 8 x 8 images, a
:class:`~plastix.datasets.FrameDataset` of :class:`~plastix.datasets.frames.BernoulliFrames`: ``steps``
frames ``[1, 8, 8]`` drawn afresh at every presentation, pixel value ``v`` spiking with probability
``v / 16`` per step, from ``default_rng([seed, split, epoch, image])`` (split: train 0, test 1; image:
its index in scikit-learn's order); ``max_rate`` does not apply.
"""
from __future__ import annotations

import numpy as np

from .base import DatasetError, SpikeDataset, SpikeSplit, duration_covering, stratified_split
from .encoding import latency, rate
from .frames import BernoulliFrames, FrameDataset


def load_digits(*, dt: float = 1.0, encoding: str = "latency", t_max: float = 20.0, steps: int = 50,
                max_rate: float | None = None, seed: int = 0, test_fraction: float = 0.2,
                redraw: bool = False) -> SpikeDataset | FrameDataset:
    """``encoding="latency"``: each non-zero pixel spikes once at ``t_max * (1 - value / 16)`` ms (brightest
    first, blank pixels silent).  ``encoding="rate"``: ``steps`` steps of ``dt`` ms, pixel spike probability
    ``value / 16 * max_rate * dt / 1000`` per step (``max_rate`` default 200 Hz), drawn from one generator
    seeded with ``seed``; with ``redraw=True`` probability ``value / 16`` per step, redrawn at every
    presentation (see the module text)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as e:
        raise DatasetError("the 'digits' data set needs scikit-learn: pip install scikit-learn "
                           "(or pip install \"plastix[data]\")") from e
    bunch = sk_load_digits()
    X, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
    if redraw:
        if encoding != "rate":
            raise DatasetError(f"redraw=True redraws the rate code; encoding={encoding!r} has no randomness to redraw")
        if max_rate is not None:
            raise DatasetError("max_rate does not apply with redraw=True: the spike probability per step is value / 16")
        return _redrawn(X, y, steps=steps, seed=seed, test_fraction=test_fraction, dt=dt)
    max_rate = 200.0 if max_rate is None else max_rate
    if encoding == "latency":
        events = [latency(x, t_max, vmin=0.0, vmax=16.0, threshold=0.0) for x in X]
        duration_ms = duration_covering(t_max, dt)
        params = {"t_max": t_max}
    elif encoding == "rate":
        rng = np.random.default_rng(seed)
        events = [rate(x, steps, max_rate, rng, dt=dt, vmin=0.0, vmax=16.0) for x in X]
        duration_ms = steps * float(dt)
        params = {"steps": steps, "max_rate": max_rate, "seed": seed}
    else:
        raise DatasetError(f"encoding must be 'latency' or 'rate', got {encoding!r}")
    train_idx, test_idx = stratified_split(y, test_fraction)

    def split(indices):
        return SpikeSplit.from_samples([events[i][0] for i in indices], [events[i][1] for i in indices],
                                       y[indices], num_units=64, num_classes=10, duration_ms=duration_ms, dt=dt)

    info = {"source": "sklearn.datasets.load_digits", "encoding": encoding, **params,
            "split": f"last {test_fraction:g} of each digit in file order is test"}
    return SpikeDataset("digits", split(train_idx), split(test_idx), info)


def _redrawn(X, y, *, steps, seed, test_fraction, dt) -> FrameDataset:
    images = np.rint(X).astype(np.uint8).reshape(-1, 1, 8, 8)
    train_idx, test_idx = stratified_split(y, test_fraction)
    splits = [BernoulliFrames(images[idx], y[idx], steps=steps, vmax=16, seed=seed, split_key=key, num_classes=10,
                              sample_ids=idx) for key, idx in enumerate((train_idx, test_idx))]
    info = {"source": "sklearn.datasets.load_digits", "encoding": "rate", "steps": steps, "seed": seed,
            "redraw": "per presentation: default_rng([seed, split, epoch, image])",
            "split": f"last {test_fraction:g} of each digit in file order is test"}
    return FrameDataset("digits", splits[0], splits[1], info, dt)
