"""SHD: the Spiking Heidelberg Digits (Cramer et al. 2020; CC BY 4.0), 700 input units, 20 classes,
8,156 train / 2,264 test recordings (the published split).  Not downloaded by plastix: put
``shd_train.h5`` and ``shd_test.h5`` (gunzipped) in a folder and pass ``data_dir=`` or set
``$PLASTIX_DATA_DIR`` (the folder itself or its ``shd/`` subfolder is searched).

Each file holds ``spikes/times`` (ragged: one float array per recording, seconds), ``spikes/units``
(ragged, 0..699) and ``labels`` (0..19); ``extra/...`` is not read.  Times are converted to ms, kept
exact, and binned to ``dt`` by :meth:`~plastix.datasets.SpikeSplit.to_dense`.  ``duration_ms`` defaults
to the smallest multiple of ``dt`` after the last spike of either file.  Needs ``h5py``.
"""
from __future__ import annotations

import os

import numpy as np

from .base import (DatasetError, DatasetNotFoundError, SpikeDataset, SpikeSplit, data_dirs, duration_covering,
                   not_found_message)

FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
NUM_UNITS, NUM_CLASSES = 700, 20


def find_files(data_dir=None) -> dict[str, str]:
    """Paths of ``shd_train.h5`` and ``shd_test.h5`` (both from the same folder)."""
    looked = data_dirs(data_dir, ["shd", "SHD"])
    for folder in looked:
        paths = {k: os.path.join(folder, f) for k, f in FILES.items()}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths
    hint = ""
    for folder in looked:
        if any(os.path.isfile(os.path.join(folder, f + ".gz")) for f in FILES.values()):
            hint = f"  Found compressed files in {folder}: decompress them with gunzip first."
    raise DatasetNotFoundError(not_found_message("shd", "shd_train.h5 and shd_test.h5", looked) + hint)


def read_file(path, num_units: int = NUM_UNITS, num_classes: int = NUM_CLASSES):
    """``(times_ms, units, offsets, labels)`` of one SHD file, checked for consistency."""
    try:
        import h5py
    except ImportError as e:
        raise DatasetError("the 'shd' data set needs h5py: pip install h5py (or pip install \"plastix[data]\")") from e
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file ({e})") from e
    with f:
        missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
        if missing:
            raise DatasetError(f"{path}: missing {', '.join(missing)} (an SHD file holds spikes/times, "
                               "spikes/units and labels)")
        try:
            times, units, labels = f["spikes/times"][:], f["spikes/units"][:], f["labels"][:]
        except Exception as e:  # truncated or damaged data
            raise DatasetError(f"{path}: cannot read spikes/times, spikes/units or labels ({e})") from e
    labels = np.asarray(labels).ravel()
    if not (len(times) == len(units) == len(labels)):
        raise DatasetError(f"{path}: spikes/times ({len(times)} recordings), spikes/units ({len(units)}) and "
                           f"labels ({len(labels)}) must have the same length")
    counts = np.fromiter((len(t) for t in times), dtype=np.int64, count=len(times))
    ucounts = np.fromiter((len(u) for u in units), dtype=np.int64, count=len(units))
    if np.any(counts != ucounts):
        i = int(np.argmax(counts != ucounts))
        raise DatasetError(f"{path}: recording {i} has {counts[i]} spike times but {ucounts[i]} units")
    flat_t = (np.concatenate([np.asarray(t, dtype=np.float64) for t in times]) * 1000.0 if len(times)
              else np.zeros(0))
    flat_u = np.concatenate([np.asarray(u) for u in units]) if len(units) else np.zeros(0, np.int64)
    if flat_u.size and (flat_u.min() < 0 or flat_u.max() >= num_units):
        raise DatasetError(f"{path}: spikes/units must lie in 0..{num_units - 1}, found "
                           f"{flat_u.min()}..{flat_u.max()}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    if flat_t.size and not (np.all(np.isfinite(flat_t)) and flat_t.min() >= 0):
        raise DatasetError(f"{path}: spikes/times must be finite and >= 0")
    return flat_t, flat_u.astype(np.int64), np.concatenate([[0], np.cumsum(counts)]), labels.astype(np.int64)


def load_shd(*, data_dir=None, dt: float = 1.0, duration_ms: float | None = None) -> SpikeDataset:
    """SHD from ``data_dir`` or ``$PLASTIX_DATA_DIR`` (see the module text)."""
    paths = find_files(data_dir)
    parts = {k: read_file(p) for k, p in paths.items()}
    if duration_ms is None:
        last = max((p[0].max() for p in parts.values() if p[0].size), default=0.0)
        duration_ms = duration_covering(last, dt)
    splits = {k: SpikeSplit(*p, num_units=NUM_UNITS, num_classes=NUM_CLASSES, duration_ms=duration_ms, dt=dt)
              for k, p in parts.items()}
    return SpikeDataset("shd", splits["train"], splits["test"], {"source": paths})
