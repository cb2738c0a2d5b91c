"""Augmentation of frame batches ``[samples, T, C, H, W]``: random shifts (a random crop of the frames
padded with zeros) and random rotations, the same for every frame and channel of a sample and drawn
afresh for each sample.  SD-SNN's code trains on DVS128 Gesture with torchvision's ``RandomCrop(128,
padding=16)`` then ``RandomRotation(5)`` on the whole ``T x 2 x 128 x 128`` tensor; here
``chain(random_shift(16), random_rotation(5))``.

Each transform is called as ``transform(frames, rng)`` with a ``numpy.random.Generator`` and returns a
new array of the same shape and dtype (the input is not modified), as the transforms of
:mod:`plastix.datasets.augment`, and composes with its :func:`~plastix.datasets.augment.chain`.  Apply
them to training batches only, with a generator keyed by (seed, epoch, batch) so that a resumed run
augments as an uninterrupted one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import DatasetError


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 5:
        raise DatasetError(f"frame augmentation takes a batch [samples, T, C, H, W], got shape {frames.shape}")
    return frames


@dataclass(frozen=True)
class RandomShift:
    """Shift each sample by ``(dy, dx)``, each uniform on the integers ``-max_pixels..max_pixels``:
    ``out[..., y, x] = in[..., y + dy, x + dx]``, zero where that falls outside.  This is a random crop
    of the frames padded by ``max_pixels`` zeros on every side (torchvision's ``RandomCrop(size,
    padding=max_pixels)``); what is shifted out is lost."""

    max_pixels: int

    def __call__(self, frames, rng: np.random.Generator) -> np.ndarray:
        frames = _check_frames(frames)
        h, w = frames.shape[-2:]
        shifts = rng.integers(-self.max_pixels, self.max_pixels + 1, size=(frames.shape[0], 2))
        out = np.zeros_like(frames)
        for b, (dy, dx) in enumerate(shifts):
            if abs(dy) >= h or abs(dx) >= w:
                continue
            out[b, ..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
                frames[b, ..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
        return out

    def to_dict(self) -> dict:
        return {"random_shift": {"max_pixels": self.max_pixels}}


@dataclass(frozen=True)
class RandomRotation:
    """Rotate each sample by an angle uniform on ``[-max_degrees, max_degrees]`` about the frame centre
    (``((H - 1) / 2, (W - 1) / 2)`` in pixel indices), nearest-pixel, zero where the rotated frame
    uncovers area (as torchvision's ``RandomRotation(max_degrees)`` with its defaults).  Output pixel
    ``(y, x)`` takes input pixel ``round(R(-a) ((y, x) - centre) + centre)``."""

    max_degrees: float

    def __call__(self, frames, rng: np.random.Generator) -> np.ndarray:
        frames = _check_frames(frames)
        h, w = frames.shape[-2:]
        angles = rng.uniform(-self.max_degrees, self.max_degrees, size=frames.shape[0])
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
        out = np.zeros_like(frames)
        for b, a in enumerate(angles):
            c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
            sy = np.rint(c * yy + s * xx + cy).astype(np.int64)   # inverse map: rotate back by -a
            sx = np.rint(-s * yy + c * xx + cx).astype(np.int64)
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            out[b][..., inside] = frames[b][..., sy[inside], sx[inside]]
        return out

    def to_dict(self) -> dict:
        return {"random_rotation": {"max_degrees": self.max_degrees}}


def random_shift(max_pixels: int) -> RandomShift:
    """Shift samples by up to ``max_pixels`` pixels in each direction (integer >= 0)."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 0:
        raise DatasetError(f"random_shift: max_pixels must be an integer >= 0, got {max_pixels!r}")
    return RandomShift(int(max_pixels))


def random_rotation(max_degrees: float) -> RandomRotation:
    """Rotate samples by up to ``max_degrees`` degrees either way (in [0, 180])."""
    d = float(max_degrees)
    if not 0.0 <= d <= 180.0:
        raise DatasetError(f"random_rotation: max_degrees must lie in [0, 180], got {max_degrees!r}")
    return RandomRotation(d)
