"""Event streams integrated into a fixed number of frames of event counts, as SpikingJelly's
``integrate_events_by_fixed_frames_number`` does (the frame method SD-SNN's code uses for N-MNIST and
DVS128 Gesture).

The ``N`` events of one sample, in recording order, are cut into ``frames`` segments and each segment is
counted per polarity and pixel: frame ``[k, c, y, x]`` = the number of events of segment ``k`` at pixel
``(x, y)`` with polarity ``c`` (channel 0 = OFF, 1 = ON).  Segments:

* ``split_by="number"``: equal event counts.  With ``d = N // frames``, segment ``k < frames - 1`` holds
  events ``k*d .. (k+1)*d - 1`` and the last segment holds the rest, ``(frames-1)*d .. N-1`` (so it takes
  the remainder; with ``N < frames`` every event lands in the last frame, as in SpikingJelly).
* ``split_by="time"``: equal durations.  With ``dt = (t[N-1] - t[0]) // frames`` (integer us), event
  ``i`` goes to segment ``min((t_i - t[0]) // dt, frames - 1)``; ``dt = 0`` puts everything in frame 0.
  (SpikingJelly's version fails when a segment is empty; this one leaves the frame empty.)

Counts are returned as ``int64``; :class:`CountStack` stores many samples' frames in the smallest
unsigned type that holds them without clipping.
"""
from __future__ import annotations

import numpy as np

from .base import DatasetError

SPLIT_BY = ("number", "time")


def check_frames(frames, name: str = "frames") -> int:
    """``frames`` as an int >= 1, or a :class:`DatasetError` naming it."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise DatasetError(f"{name} must be an integer >= 1, got {frames!r}")
    return int(frames)


def segment_of(num_events: int, frames: int, split_by: str = "number", t_us=None) -> np.ndarray:
    """Frame index (int64) of each of ``num_events`` events in recording order (see the module text);
    ``t_us`` (the events' times) is needed for ``split_by="time"``."""
    frames = check_frames(frames)
    if split_by not in SPLIT_BY:
        raise DatasetError(f"split_by must be one of {', '.join(map(repr, SPLIT_BY))}, got {split_by!r}")
    n = int(num_events)
    if split_by == "number":
        d = n // frames
        if d == 0:
            return np.full(n, frames - 1, np.int64)
        seg = np.repeat(np.arange(frames, dtype=np.int64), d)
        return np.concatenate([seg, np.full(n - seg.size, frames - 1, np.int64)])
    t = np.asarray(t_us, dtype=np.int64)
    if t.shape != (n,):
        raise DatasetError(f"split_by='time' needs one time per event: {n} events, t_us of shape {t.shape}")
    if n == 0:
        return np.zeros(0, np.int64)
    dt = (int(t[-1]) - int(t[0])) // frames
    if dt <= 0:
        return np.zeros(n, np.int64)
    return np.clip((t - t[0]) // dt, 0, frames - 1)


def integrate(x, y, polarity, *, frames: int, width: int, height: int, split_by: str = "number",
              t_us=None, source: str = "events") -> np.ndarray:
    """Event counts ``[frames, 2, height, width]`` (int64) of one sample's events (see the module text).
    Events outside ``width x height`` or with a polarity other than 0 / 1 raise, naming ``source``."""
    x, y, p = (np.asarray(a).ravel() for a in (x, y, polarity))
    if not (x.size == y.size == p.size):
        raise DatasetError(f"{source}: x ({x.size}), y ({y.size}) and polarity ({p.size}) must have one entry "
                           "per event")
    width, height = int(width), int(height)
    if x.size:
        if int(x.max()) >= width or int(y.max()) >= height or int(x.min()) < 0 or int(y.min()) < 0:
            raise DatasetError(f"{source}: events reach x = {int(x.min())}..{int(x.max())}, y = {int(y.min())}.."
                               f"{int(y.max())}, outside the {width} x {height} sensor")
        if int(p.max()) > 1 or int(p.min()) < 0:
            raise DatasetError(f"{source}: polarity must be 0 (OFF) or 1 (ON), found {int(p.min())}..{int(p.max())}")
    cells = frames * 2 * height * width
    # the flat cell index, built in place in the narrowest type that holds it (memory traffic dominates)
    cell = segment_of(x.size, frames, split_by, t_us).astype(np.int32 if cells < 2**31 else np.int64)
    cell *= 2
    cell += p
    cell *= height
    cell += y
    cell *= width
    cell += x
    counts = np.bincount(cell, minlength=cells)
    return counts.reshape(frames, 2, height, width)


def count_dtype_for(top: int) -> np.dtype:
    """The smallest of uint8, uint16, uint32 that holds ``top``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise DatasetError(f"an event count of {top} in one frame cell does not fit uint32")


class CountStack:
    """Frames of ``n`` samples, ``[n, *shape]``, filled one sample at a time: uint8 until a count needs a
    wider type, then widened (never clipped)."""

    def __init__(self, n: int, shape: tuple):
        self.array = np.zeros((int(n),) + tuple(shape), np.uint8)

    def put(self, i: int, counts: np.ndarray) -> None:
        top = int(counts.max()) if counts.size else 0
        if top > np.iinfo(self.array.dtype).max:
            self.array = self.array.astype(count_dtype_for(top))
        self.array[i] = counts
