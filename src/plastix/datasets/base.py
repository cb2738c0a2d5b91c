"""Spike datasets in a compact ragged form, shared by every loader.

A :class:`SpikeSplit` holds the events of many samples as three concatenated arrays plus offsets:
sample ``i`` owns ``times_ms[offsets[i]:offsets[i + 1]]`` and ``units[offsets[i]:offsets[i + 1]]``, sorted
by time (then unit).  Times are in ms, exact (float64); they are binned to steps only by :meth:`to_dense`.
A :class:`SpikeDataset` is a named pair of splits (``train``, ``test``) with a fixed split.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from ..errors import PlastixError

#: Environment variable naming the folder that holds downloaded data sets (SHD, N-MNIST).
DATA_DIR_ENV = "PLASTIX_DATA_DIR"

# Relative tolerance when binning times to steps: a time within this of a step boundary counts as on it
# (so that 0.3 ms with dt = 0.1 ms lands in step 3, not 2, despite 0.3 / 0.1 = 2.9999999999999996).
_BIN_RTOL = 1e-9


class DatasetError(PlastixError, ValueError):
    """Data are invalid or inconsistent (bad times, units or labels; a corrupt file)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a data set are not where they were looked for."""


def _steps_of(times_ms: np.ndarray, dt: float) -> np.ndarray:
    """Step index of each time: floor(t / dt), with times within a relative 1e-9 of a boundary put on it."""
    q = np.asarray(times_ms, dtype=np.float64) / dt
    r = np.rint(q)
    near = np.abs(q - r) <= _BIN_RTOL * np.maximum(1.0, np.abs(q))
    return np.where(near, r, np.floor(q)).astype(np.int64)


def _check_dt(dt) -> float:
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0.0):
        raise DatasetError(f"dt must be a positive number of ms, got {dt}")
    return dt


def duration_covering(max_time_ms: float, dt: float) -> float:
    """The smallest whole number of steps of ``dt`` (in ms) that lies strictly after ``max_time_ms``."""
    return float((int(_steps_of(np.array([max(max_time_ms, 0.0)]), dt)[0]) + 1) * dt)


class Batch(NamedTuple):
    """One mini-batch: sample ``indices`` into the split, their ``labels``, and ``spikes`` [batch, steps,
    units] (uint8 counts) when dense batches were asked for, else ``None``."""

    indices: np.ndarray
    labels: np.ndarray
    spikes: np.ndarray | None


class SpikeSplit:
    """Events of ``len(labels)`` samples: concatenated ``times_ms`` (float64) and ``units`` (int32), and
    ``offsets`` (int64, one more than samples).  Arrays are read-only; every array is validated.

    ``dt`` is the default bin width (ms) of :meth:`to_dense` and :meth:`batches`.
    """

    def __init__(self, times_ms, units, offsets, labels, *, num_units: int, num_classes: int,
                 duration_ms: float, dt: float = 1.0):
        times = np.asarray(times_ms, dtype=np.float64).ravel()
        units_in = np.asarray(units).ravel()
        offsets = np.asarray(offsets).ravel()
        labels_in = np.asarray(labels).ravel()
        self.num_units = int(num_units)
        self.num_classes = int(num_classes)
        self.duration_ms = float(duration_ms)
        self.dt = _check_dt(dt)
        if self.num_units < 1:
            raise DatasetError(f"num_units must be >= 1, got {num_units}")
        if self.num_classes < 1:
            raise DatasetError(f"num_classes must be >= 1, got {num_classes}")
        if not (math.isfinite(self.duration_ms) and self.duration_ms > 0.0):
            raise DatasetError(f"duration_ms must be a positive number, got {duration_ms}")
        if units_in.size and not np.issubdtype(units_in.dtype, np.integer):
            if not np.all(np.mod(units_in, 1) == 0):
                raise DatasetError("units must be integers")
        if labels_in.size and not np.issubdtype(labels_in.dtype, np.integer):
            if not np.all(np.mod(labels_in, 1) == 0):
                raise DatasetError("labels must be integers")
        if offsets.size and not np.issubdtype(offsets.dtype, np.integer):
            raise DatasetError(f"offsets must be integers, got dtype {offsets.dtype}")
        if len(units_in) != len(times):
            raise DatasetError(f"units has {len(units_in)} entries but times_ms has {len(times)}; "
                               "they must match one to one")
        n = len(labels_in)
        if len(offsets) != n + 1:
            raise DatasetError(f"offsets must have len(labels) + 1 = {n + 1} entries, got {len(offsets)}")
        if offsets[0] != 0 or offsets[-1] != len(times) or np.any(np.diff(offsets) < 0):
            raise DatasetError(f"offsets must rise from 0 to len(times_ms) = {len(times)} without falling")
        if times.size:
            if not np.all(np.isfinite(times)):
                raise DatasetError("times_ms must be finite (found NaN or inf)")
            if times.min() < 0.0:
                bad = int(np.argmax(times < 0.0))
                raise DatasetError(f"times_ms must be >= 0; sample {self._sample_of(offsets, bad)} has a "
                                   f"spike at {times[bad]} ms")
            if times.max() >= self.duration_ms:
                bad = int(np.argmax(times >= self.duration_ms))
                raise DatasetError(f"times_ms must be < duration_ms = {self.duration_ms}; sample "
                                   f"{self._sample_of(offsets, bad)} has a spike at {times[bad]} ms")
            if units_in.min() < 0 or units_in.max() >= self.num_units:
                bad = int(np.argmax((units_in < 0) | (units_in >= self.num_units)))
                raise DatasetError(f"units must lie in [0, num_units) = [0, {self.num_units}); sample "
                                   f"{self._sample_of(offsets, bad)} has unit {units_in[bad]}")
        if n and (labels_in.min() < 0 or labels_in.max() >= self.num_classes):
            bad = int(np.argmax((labels_in < 0) | (labels_in >= self.num_classes)))
            raise DatasetError(f"labels must lie in [0, num_classes) = [0, {self.num_classes}); sample {bad} "
                               f"has label {labels_in[bad]}")
        units_arr = units_in.astype(np.int32)
        offsets = offsets.astype(np.int64)
        # Canonical order inside each sample: by time, then unit.
        if times.size > 1:
            starts = np.zeros(times.size - 1, dtype=bool)        # True where event k+1 opens a new sample
            inner = offsets[1:-1]
            starts[inner[(inner > 0) & (inner < times.size)] - 1] = True
            dt_ = np.diff(times)
            ordered = starts | (dt_ > 0) | ((dt_ == 0) & (units_arr[1:] >= units_arr[:-1]))
            if not np.all(ordered):
                sid = np.repeat(np.arange(n), np.diff(offsets))
                order = np.lexsort((units_arr, times, sid))
                times, units_arr = times[order], units_arr[order]
        self.times_ms = times
        self.units = units_arr
        self.offsets = offsets
        self.labels = labels_in.astype(np.int64)
        for a in (self.times_ms, self.units, self.offsets, self.labels):
            a.flags.writeable = False

    @staticmethod
    def _sample_of(offsets, event_index: int) -> int:
        return int(np.searchsorted(offsets, event_index, side="right") - 1)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_samples(cls, times_per_sample: Sequence, units_per_sample: Sequence, labels, *,
                     num_units: int, num_classes: int, duration_ms: float, dt: float = 1.0) -> "SpikeSplit":
        """Build from per-sample sequences: ``times_per_sample[i]`` (ms) and ``units_per_sample[i]``."""
        labels = np.asarray(labels).ravel()
        if len(times_per_sample) != len(labels) or len(units_per_sample) != len(labels):
            raise DatasetError(f"times ({len(times_per_sample)} samples), units ({len(units_per_sample)}) and "
                               f"labels ({len(labels)}) must have the same number of samples")
        t_list = [np.asarray(t, dtype=np.float64).ravel() for t in times_per_sample]
        u_list = [np.asarray(u).ravel() for u in units_per_sample]
        for i, (t, u) in enumerate(zip(t_list, u_list)):
            if len(t) != len(u):
                raise DatasetError(f"sample {i}: {len(t)} times but {len(u)} units; they must match one to one")
        counts = np.array([len(t) for t in t_list], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        times = np.concatenate(t_list) if t_list else np.zeros(0)
        units = np.concatenate(u_list).astype(np.int64) if u_list else np.zeros(0, np.int64)
        return cls(times, units, offsets, labels, num_units=num_units, num_classes=num_classes,
                   duration_ms=duration_ms, dt=dt)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"SpikeSplit({len(self)} samples, {len(self.times_ms)} spikes, num_units={self.num_units}, "
                f"num_classes={self.num_classes}, duration_ms={self.duration_ms})")

    def _index(self, i) -> int:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample index {i} out of range for {len(self)} samples")
        return i % len(self)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """``(times_ms, units, label)`` of sample ``i`` (read-only views)."""
        i = self._index(i)
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.times_ms[a:b], self.units[a:b], int(self.labels[i])

    def spike_counts(self) -> np.ndarray:
        """Number of spikes of each sample."""
        return np.diff(self.offsets)

    def sample_ids(self) -> np.ndarray:
        """Sample index of every event (same length as ``times_ms``)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.spike_counts())

    def _event_positions(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Event positions of samples ``idx`` in order, and each event's position within ``idx``."""
        starts = self.offsets[idx]
        counts = self.offsets[idx + 1] - starts
        total = int(counts.sum())
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(idx) else np.zeros(0, np.int64)
        local = np.repeat(np.arange(len(idx), dtype=np.int64), counts)
        pos = np.arange(total, dtype=np.int64) - np.repeat(first, counts) + np.repeat(starts, counts)
        return pos, local

    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise DatasetError(f"a boolean mask of indices must have shape ({len(self)},), got {idx.shape}")
            return np.flatnonzero(idx)
        idx = idx.ravel()
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise DatasetError(f"indices must be integers or a boolean mask, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DatasetError(f"indices must lie in [-{len(self)}, {len(self)}), got {idx.min()}..{idx.max()}")
        return idx % max(len(self), 1)

    def subset(self, indices) -> "SpikeSplit":
        """A new split with samples ``indices`` (integers, in the given order, or a boolean mask)."""
        idx = self._indices(indices)
        pos, _ = self._event_positions(idx)
        counts = self.offsets[idx + 1] - self.offsets[idx]
        return SpikeSplit(self.times_ms[pos], self.units[pos], np.concatenate([[0], np.cumsum(counts)]),
                          self.labels[idx], num_units=self.num_units, num_classes=self.num_classes,
                          duration_ms=self.duration_ms, dt=self.dt)

    # ------------------------------------------------------------------ dense views
    def default_steps(self, dt: float | None = None) -> int:
        """Steps of ``dt`` that cover ``duration_ms`` (the default length of :meth:`to_dense`)."""
        dt = self.dt if dt is None else _check_dt(dt)
        k = int(_steps_of(np.array([self.duration_ms]), dt)[0])
        return max(k if k * dt >= self.duration_ms * (1 - _BIN_RTOL) else k + 1, 1)

    def to_dense(self, dt: float | None = None, steps: int | None = None, *, clip: bool = False,
                 binary: bool = False, indices=None) -> np.ndarray:
        """Spikes binned to steps: ``[samples, steps, units]`` uint8 counts (``binary=True``: bool).

        A spike at ``t`` ms goes to step ``floor(t / dt)`` (times within 1e-9 relative of a step boundary
        count as on it).  ``steps`` defaults to :meth:`default_steps`.  Spikes in step ``>= steps`` raise
        :class:`DatasetError` unless ``clip=True`` is passed, which discards them.  More than 255 spikes
        of one unit in one step raise unless ``binary=True``.  ``indices`` selects samples (default all).
        """
        dt = self.dt if dt is None else _check_dt(dt)
        steps = self.default_steps(dt) if steps is None else int(steps)
        if steps < 1:
            raise DatasetError(f"steps must be >= 1, got {steps}")
        idx = np.arange(len(self)) if indices is None else self._indices(indices)
        pos, local = self._event_positions(idx)
        bins = _steps_of(self.times_ms[pos], dt)
        late = bins >= steps
        if np.any(late):
            if not clip:
                raise DatasetError(
                    f"{int(late.sum())} spikes lie at or after steps * dt = {steps * dt} ms (latest "
                    f"{self.times_ms[pos][late].max()} ms); pass a larger steps, or clip=True to discard them")
            keep = ~late
            pos, local, bins = pos[keep], local[keep], bins[keep]
        out = np.zeros((len(idx), steps, self.num_units), dtype=bool if binary else np.uint8)
        flat = (local * steps + bins) * self.num_units + self.units[pos]
        if binary:
            out.reshape(-1)[flat] = True
            return out
        cells, counts = np.unique(flat, return_counts=True)
        if counts.size and counts.max() > 255:
            raise DatasetError(f"up to {counts.max()} spikes of one unit fall in one step of dt = {dt} ms, more "
                               "than uint8 holds; use a smaller dt, or binary=True to merge them")
        out.reshape(-1)[cells] = counts
        return out

    def batches(self, batch_size: int, *, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                dense: bool = False, dt: float | None = None, steps: int | None = None,
                clip: bool = False) -> Iterator[Batch]:
        """Mini-batches covering every sample once (one epoch); pass a different ``seed`` per epoch.

        Yields :class:`Batch` ``(indices, labels, spikes)``; ``spikes`` is the :meth:`to_dense` array of
        the batch when ``dense=True`` (with ``dt``, ``steps``, ``clip`` as there), else ``None``.
        ``drop_last=True`` leaves out a final batch smaller than ``batch_size``.
        """
        batch_size = int(batch_size)
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        if dense:   # resolve steps once so that every batch has the same shape
            steps = self.default_steps(dt) if steps is None else steps
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            spikes = self.to_dense(dt, steps, clip=clip, indices=idx) if dense else None
            yield Batch(idx, self.labels[idx], spikes)

    def summary(self) -> dict:
        """Counts, classes, spikes per sample and duration, as a plain dict."""
        counts = self.spike_counts()
        return {
            "samples": len(self),
            "num_units": self.num_units,
            "num_classes": self.num_classes,
            "class_counts": np.bincount(self.labels, minlength=self.num_classes).tolist(),
            "spikes": int(len(self.times_ms)),
            "mean_spikes_per_sample": float(counts.mean()) if len(self) else 0.0,
            "duration_ms": self.duration_ms,
            "dt": self.dt,
        }


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    """A named data set with a fixed ``train`` / ``test`` split of the same shape of data.

    ``info`` records where the data came from and how they were encoded.  ``len(dataset)`` counts the
    samples of both splits.
    """

    name: str
    train: SpikeSplit
    test: SpikeSplit
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        for attr in ("num_units", "num_classes", "duration_ms", "dt"):
            a, b = getattr(self.train, attr), getattr(self.test, attr)
            if a != b:
                raise DatasetError(f"train and test splits disagree on {attr}: {a} vs {b}")

    num_units = property(lambda self: self.train.num_units, doc="Input channels (units).")
    num_classes = property(lambda self: self.train.num_classes, doc="Number of classes.")
    duration_ms = property(lambda self: self.train.duration_ms, doc="Every spike time is below this (ms).")
    dt = property(lambda self: self.train.dt, doc="Default bin width (ms) of to_dense and batches.")

    def __len__(self) -> int:
        return len(self.train) + len(self.test)

    def __repr__(self) -> str:
        return (f"SpikeDataset({self.name!r}: {len(self.train)} train / {len(self.test)} test, "
                f"num_units={self.num_units}, num_classes={self.num_classes}, duration_ms={self.duration_ms})")

    def validation_split(self, fraction: float) -> "SpikeDataset":
        """Hold out ``fraction`` of the training split (of each class, its last samples; no randomness)
        and return a data set that trains on the rest and evaluates ("test") on the held-out part: for
        choosing settings without looking at the test split.  ``info["validation_fraction"]`` records it."""
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise DatasetError(f"validation fraction must lie strictly between 0 and 1, got {fraction}")
        train_idx, val_idx = stratified_split(self.train.labels, fraction)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise DatasetError(f"validation fraction {fraction} of {len(self.train)} training samples leaves an "
                               "empty split; choose a fraction that keeps samples on both sides")
        return SpikeDataset(f"{self.name} (validation)", self.train.subset(train_idx), self.train.subset(val_idx),
                            {**self.info, "validation_fraction": fraction})

    def summary(self) -> dict:
        """A dict: name, units, classes, duration, and each split's :meth:`SpikeSplit.summary`."""
        out = {"name": self.name, "num_units": self.num_units, "num_classes": self.num_classes,
               "duration_ms": self.duration_ms, "dt": self.dt,
               "train": self.train.summary(), "test": self.test.summary()}
        if "validation_fraction" in self.info:  # "test" is then the held-out part of the training split
            out["validation_fraction"] = self.info["validation_fraction"]
        return out


# ---------------------------------------------------------------------- helpers for loaders
def stratified_split(labels, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixed split without randomness: of each class, the last ``round(n_class * test_fraction)``
    samples in the given order go to test.  Returns sorted (train_indices, test_indices)."""
    test_fraction = float(test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    labels = np.asarray(labels).ravel()
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(len(members) * test_fraction))
        if k:
            test.append(members[len(members) - k:])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_mask = np.ones(len(labels), bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx


def data_dirs(data_dir, subdirs: Sequence[str] = ()) -> list[str]:
    """Folders to look in: ``data_dir`` if given, else ``$PLASTIX_DATA_DIR``; each followed by the
    given subfolders of it.  Empty when neither is set."""
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not root:
        return []
    root = os.fspath(root)
    return [root] + [os.path.join(root, s) for s in subdirs]


def not_found_message(what: str, expected: str, looked_in: Sequence[str]) -> str:
    where = ", ".join(looked_in) if looked_in else f"nowhere (no data_dir given and ${DATA_DIR_ENV} is not set)"
    return (f"{what}: expected {expected}; looked in {where}.  Pass data_dir=... or set the {DATA_DIR_ENV} "
            "environment variable to the folder that holds them.")
