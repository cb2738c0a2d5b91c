"""Frame data sets: inputs given as ``T`` frames of ``C x H x W`` per sample, for convolutional spiking
networks trained step by step (SD-SNN's inputs).

A :class:`FrameDataset` is a named pair of splits (``train``, ``test``) with a fixed split, like
:class:`~plastix.datasets.SpikeDataset`.  Each split is a :class:`FrameSplit`, which hands out frames
``[samples, T, C, H, W]`` (unsigned integer counts per pixel and step: 0/1 for Bernoulli-coded images,
event counts for event-camera recordings) by sample index and *presentation* (``epoch``):

* :class:`CountFrames` holds its frames (e.g. event counts of N-MNIST or DVS128 Gesture); every
  presentation gives the same frames.  The array may be a read-only memory map of a cache file.
* :class:`BernoulliFrames` holds images ``[samples, C, H, W]`` (integers ``0..vmax``) and draws their
  spikes afresh at every presentation: pixel value ``v`` spikes in a step with probability ``v / vmax``
  (``u < v`` with ``u`` uniform on the integers ``0..vmax-1``: exact, no rounding), independently per
  step and pixel, from ``numpy.random.default_rng([seed, split_key, epoch, sample_id])``.  So a sample's
  spikes depend only on (seed, split, epoch, sample) — not on the batch it is in, the batch size or the
  order — and a resumed run draws exactly what an uninterrupted one would.  SD-SNN's code redraws its
  ``pixel > U(0, 1)`` code at every presentation, train and test; ``epoch`` is the presentation counter
  (pass the training epoch when training, and the epoch after which you test when testing).

Flattening a frame ``[C, H, W]`` in C order gives unit ``c * H * W + y * W + x``, the unit numbering of
the event loaders (N-MNIST: ``polarity * 34 * 34 + y * 34 + x``).  :meth:`FrameDataset.to_spike_dataset`
turns frames into a :class:`~plastix.datasets.SpikeDataset` (frame ``k`` at ``k * dt`` ms) for trainers
that take spike events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .base import Batch, DatasetError, SpikeDataset, SpikeSplit, stratified_split


def _labels(labels, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels).ravel()
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size != n:
        raise DatasetError(f"{n} samples but {labels.size} labels; they must match one to one")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    out = labels.astype(np.int64)
    out.flags.writeable = False
    return out


class FrameSplit:
    """Common interface of a split of frame samples: ``labels`` (int64), ``num_classes``, ``steps`` (T),
    ``frame_shape`` ``(C, H, W)``.  Subclasses implement :meth:`frames` and :meth:`subset`."""

    labels: np.ndarray
    num_classes: int
    steps: int
    frame_shape: tuple

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_units(self) -> int:
        """Units of one flattened frame, ``C * H * W``."""
        c, h, w = self.frame_shape
        return c * h * w

    def _indices(self, indices) -> np.ndarray:
        n = len(self)
        if indices is None:
            return np.arange(n)
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise DatasetError(f"a boolean mask of indices must have shape ({n},), got {idx.shape}")
            return np.flatnonzero(idx)
        idx = idx.ravel()
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise DatasetError(f"indices must be integers or a boolean mask, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise DatasetError(f"indices must lie in [-{n}, {n}), got {idx.min()}..{idx.max()}")
        return idx % max(n, 1)

    def frames(self, indices=None, *, epoch: int = 0) -> np.ndarray:
        """Frames ``[len(indices), T, C, H, W]`` of samples ``indices`` (default all) at presentation
        ``epoch``."""
        raise NotImplementedError

    def subset(self, indices) -> "FrameSplit":
        """A split of samples ``indices`` (integers in the given order, or a boolean mask)."""
        raise NotImplementedError

    def batches(self, batch_size: int, *, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                epoch: int = 0) -> Iterator[Batch]:
        """Mini-batches covering every sample once: :class:`~plastix.datasets.Batch` ``(indices, labels,
        spikes)`` with ``spikes`` the :meth:`frames` ``[batch, T, C, H, W]`` at presentation ``epoch``.
        The order is ``default_rng(seed).permutation`` when ``shuffle`` (pass a different seed per epoch);
        ``drop_last=True`` leaves out a final batch smaller than ``batch_size``."""
        for idx in self.batch_indices(batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last):
            yield Batch(idx, self.labels[idx], self.frames(idx, epoch=epoch))

    def batch_indices(self, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                      drop_last: bool = False) -> Iterator[np.ndarray]:
        """The sample indices of each of :meth:`batches`' mini-batches, without drawing their frames (a
        data-parallel rank draws only its shard's)."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            yield idx

    def to_spike_split(self, *, dt: float = 1.0, epoch: int = 0) -> SpikeSplit:
        """The frames of presentation ``epoch`` as spike events: frame ``k`` at ``k * dt`` ms, unit
        ``c * H * W + y * W + x``, a count of ``n`` as ``n`` spikes at the same time."""
        counts = self.frames(epoch=epoch).reshape(len(self), self.steps, self.num_units).astype(np.int64)
        s, k, u = np.nonzero(counts)
        reps = counts[s, k, u]
        s, k, u = np.repeat(s, reps), np.repeat(k, reps), np.repeat(u, reps)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=len(self)))])
        return SpikeSplit(k * float(dt), u, offsets, self.labels, num_units=self.num_units,
                          num_classes=self.num_classes, duration_ms=self.steps * float(dt), dt=dt)

    def summary(self) -> dict:
        """Samples, classes, class counts, steps and frame shape, as a plain dict."""
        return {"samples": len(self), "num_classes": self.num_classes, "steps": self.steps,
                "frame_shape": list(self.frame_shape),
                "class_counts": np.bincount(self.labels, minlength=self.num_classes).tolist()}


class CountFrames(FrameSplit):
    """Stored frames ``[samples, T, C, H, W]`` of unsigned integer counts (read-only; a memory map is
    kept as it is, never read whole) and one label per sample.  ``rows`` (default all, in order): which
    rows of ``frames`` make up this split, so that a subset shares the array instead of copying it."""

    def __init__(self, frames, labels, *, num_classes: int, rows=None):
        x = frames if isinstance(frames, np.ndarray) else np.asarray(frames)
        if x.ndim != 5:
            raise DatasetError(f"frames must be [samples, T, C, H, W], got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.unsignedinteger) or x.dtype == bool):
            raise DatasetError(f"frames must hold unsigned integer counts (or bool), got dtype {x.dtype}")
        if int(num_classes) < 1:
            raise DatasetError(f"num_classes must be >= 1, got {num_classes}")
        rows = np.arange(x.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= x.shape[0]):
            raise DatasetError(f"rows must lie in 0..{x.shape[0] - 1}, got {rows.min()}..{rows.max()}")
        rows.flags.writeable = False
        self.num_classes = int(num_classes)
        self.labels = _labels(labels, rows.size, self.num_classes)
        if x.flags.writeable:
            x = x.view()
            x.flags.writeable = False
        self._frames, self._rows = x, rows
        self.steps = int(x.shape[1])
        self.frame_shape = tuple(int(v) for v in x.shape[2:])

    def __repr__(self) -> str:
        return (f"CountFrames({len(self)} samples, T={self.steps}, frame_shape={self.frame_shape}, "
                f"dtype={self.dtype}, num_classes={self.num_classes})")

    @property
    def dtype(self) -> np.dtype:
        """dtype of the counts."""
        return self._frames.dtype

    def frames(self, indices=None, *, epoch: int = 0) -> np.ndarray:
        """Frames of samples ``indices`` (a new array); stored frames are the same at every presentation
        ``epoch``."""
        return np.asarray(self._frames[self._rows[self._indices(indices)]])

    def subset(self, indices) -> "CountFrames":
        idx = self._indices(indices)
        return CountFrames(self._frames, self.labels[idx], num_classes=self.num_classes, rows=self._rows[idx])

    def summary(self) -> dict:
        return {**super().summary(), "encoding": "event counts", "dtype": str(self.dtype)}


class BernoulliFrames(FrameSplit):
    """Images ``[samples, C, H, W]`` (integers ``0..vmax``) coded at every presentation as ``steps``
    Bernoulli frames (see the module text).  ``sample_ids`` (default ``0..n-1``): each sample's key in the
    draw, its index in the source file, so that a subset draws as the whole set does; ``split_key``
    distinguishes the splits (train 0, test 1)."""

    def __init__(self, images, labels, *, steps: int = 20, vmax: int = 255, seed: int = 0, split_key: int = 0,
                 num_classes: int, sample_ids=None):
        x = np.asarray(images)
        if x.ndim != 4:
            raise DatasetError(f"images must be [samples, C, H, W], got shape {x.shape}")
        if isinstance(vmax, bool) or not isinstance(vmax, (int, np.integer)) or not 1 <= vmax <= 255:
            raise DatasetError(f"vmax must be an integer in 1..255 (the brightest pixel value), got {vmax!r}")
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise DatasetError(f"images must hold integers 0..vmax, got dtype {x.dtype}")
        if x.size and (int(x.min()) < 0 or int(x.max()) > vmax):
            raise DatasetError(f"image values must lie in 0..{vmax} (vmax), found {int(x.min())}..{int(x.max())}")
        for name, v in (("steps", steps), ("seed", seed), ("split_key", split_key)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "steps" else 0):
                raise DatasetError(f"{name} must be an integer >= {1 if name == 'steps' else 0}, got {v!r}")
        if int(num_classes) < 1:
            raise DatasetError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.labels = _labels(labels, x.shape[0], self.num_classes)
        ids = np.arange(x.shape[0], dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64).ravel()
        if ids.shape != (x.shape[0],) or (ids.size and ids.min() < 0):
            raise DatasetError(f"sample_ids must be {x.shape[0]} integers >= 0, got shape {ids.shape}")
        self.images = x.astype(np.uint8)
        self.images.flags.writeable = False
        ids.flags.writeable = False
        self.sample_ids = ids
        self.steps, self.vmax, self.seed, self.split_key = int(steps), int(vmax), int(seed), int(split_key)
        self.frame_shape = tuple(int(v) for v in x.shape[1:])

    def __repr__(self) -> str:
        return (f"BernoulliFrames({len(self)} images, T={self.steps}, frame_shape={self.frame_shape}, "
                f"vmax={self.vmax}, seed={self.seed}, num_classes={self.num_classes})")

    def frames(self, indices=None, *, epoch: int = 0) -> np.ndarray:
        """Bernoulli frames ``[len(indices), T, C, H, W]`` (uint8 0/1) of samples ``indices`` at
        presentation ``epoch`` (an integer >= 0)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise DatasetError(f"epoch must be an integer >= 0, got {epoch!r}")
        idx = self._indices(indices)
        out = np.empty((idx.size, self.steps) + self.frame_shape, np.uint8)
        for row, i in enumerate(idx):
            rng = np.random.default_rng([self.seed, self.split_key, int(epoch), int(self.sample_ids[i])])
            u = rng.integers(0, self.vmax, size=(self.steps,) + self.frame_shape, dtype=np.uint8)
            np.less(u, self.images[i], out=out[row], casting="unsafe")
        return out

    def subset(self, indices) -> "BernoulliFrames":
        idx = self._indices(indices)
        return BernoulliFrames(self.images[idx], self.labels[idx], steps=self.steps, vmax=self.vmax, seed=self.seed,
                               split_key=self.split_key, num_classes=self.num_classes,
                               sample_ids=self.sample_ids[idx])

    def summary(self) -> dict:
        return {**super().summary(), "encoding": "bernoulli, redrawn per presentation", "vmax": self.vmax,
                "seed": self.seed}


@dataclass(frozen=True, eq=False)
class FrameDataset:
    """A named data set of frame samples with a fixed ``train`` / ``test`` split (two :class:`FrameSplit`
    with the same steps, frame shape and classes).  ``info`` records the source and the encoding;
    ``dt`` (ms) is the step length that :meth:`to_spike_dataset` uses by default."""

    name: str
    train: FrameSplit
    test: FrameSplit
    info: dict = field(default_factory=dict)
    dt: float = 1.0

    def __post_init__(self):
        for attr in ("steps", "frame_shape", "num_classes"):
            a, b = getattr(self.train, attr), getattr(self.test, attr)
            if a != b:
                raise DatasetError(f"train and test splits disagree on {attr}: {a} vs {b}")

    steps = property(lambda self: self.train.steps, doc="Frames per sample (T).")
    frame_shape = property(lambda self: self.train.frame_shape, doc="(C, H, W) of one frame.")
    num_classes = property(lambda self: self.train.num_classes, doc="Number of classes.")
    num_units = property(lambda self: self.train.num_units, doc="C * H * W.")

    def __len__(self) -> int:
        return len(self.train) + len(self.test)

    def __repr__(self) -> str:
        return (f"FrameDataset({self.name!r}: {len(self.train)} train / {len(self.test)} test, T={self.steps}, "
                f"frame_shape={self.frame_shape}, num_classes={self.num_classes})")

    def validation_split(self, fraction: float) -> "FrameDataset":
        """Train on the training split less the last ``fraction`` of each class, and evaluate ("test") on
        that held-out part (no randomness), as :meth:`SpikeDataset.validation_split`."""
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise DatasetError(f"validation fraction must lie strictly between 0 and 1, got {fraction}")
        train_idx, val_idx = stratified_split(self.train.labels, fraction)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise DatasetError(f"validation fraction {fraction} of {len(self.train)} training samples leaves an "
                               "empty split; choose a fraction that keeps samples on both sides")
        return FrameDataset(f"{self.name} (validation)", self.train.subset(train_idx), self.train.subset(val_idx),
                            {**self.info, "validation_fraction": fraction}, self.dt)

    def to_spike_dataset(self, *, dt: float | None = None, epoch: int = 0) -> SpikeDataset:
        """Both splits as spike events (presentation ``epoch``; see :meth:`FrameSplit.to_spike_split`)."""
        dt = self.dt if dt is None else dt
        return SpikeDataset(self.name, self.train.to_spike_split(dt=dt, epoch=epoch),
                            self.test.to_spike_split(dt=dt, epoch=epoch),
                            {**self.info, "frames_as_spikes": {"dt": dt, "epoch": epoch}})

    def summary(self) -> dict:
        """Name, steps, frame shape, classes and each split's :meth:`FrameSplit.summary`."""
        out = {"name": self.name, "steps": self.steps, "frame_shape": list(self.frame_shape),
               "num_classes": self.num_classes, "train": self.train.summary(), "test": self.test.summary()}
        if "validation_fraction" in self.info:
            out["validation_fraction"] = self.info["validation_fraction"]
        return out
