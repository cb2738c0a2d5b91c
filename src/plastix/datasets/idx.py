"""IDX files (the MNIST file format) and the image data sets stored in it, encoded to spikes:
``fashion_mnist`` (Xiao, Rasul & Vollgraf 2017, Zalando; MIT licence) and ``mnist`` (LeCun et al.), 28 x 28
grey images of 10 classes, 60,000 train / 10,000 test (the published split).  Any images in MNIST format
load with :func:`load_mnist` and ``data_dir=`` pointing at them.

Files.  A folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte``, each gzip-compressed (name + ``.gz``) or not.  They are looked for in
``data_dir`` if given, else in ``$PLASTIX_DATA_DIR``, each also in its subfolders ``fashion_mnist/``,
``fashion-mnist/``, ``FashionMNIST/raw/`` (``mnist``: ``mnist/``, ``MNIST/raw/``, the torchvision layout),
and without ``data_dir`` lastly where Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST
(``apt-get install dataset-fashion-mnist`` -> ``/usr/share/datasets/fashion-mnist/``, the four ``.gz``
files).  plastix downloads nothing.

IDX format (all integers big-endian): a magic number of two zero bytes, a type code (0x08 uint8, 0x09
int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and a dimension count ``d``; then ``d`` uint32
sizes; then the data in C order.  Image files are ``[n, rows, cols]`` uint8 (0 = background), label files
``[n]`` integers in ``0..9``; a file that breaks this raises :class:`DatasetError` naming it.

Encodings (one unit per pixel, ``unit = row * cols + col``; ``x = pixel / 255``):

* ``"rate"`` (default): ``steps`` steps of ``dt`` ms; pixel ``i`` spikes in step ``k`` (at ``k * dt`` ms)
  exactly when ``u[k, i] < x_i`` with ``u = rng.random((steps, rows * cols))``, i.e. with probability
  ``x`` per step, drawn afresh at every step (:func:`~plastix.datasets.encoding.bernoulli`; SD-SNN's input
  coding with T = 20).  Sample ``j`` of the file (0-based, in file order) of split ``s`` (train 0, test 1)
  draws from ``numpy.random.default_rng([seed, s, j])``: a sample encodes the same for the same seed
  whatever subset is loaded, and differently in each split.  The draw is fixed once loaded: every epoch
  sees the same spikes.
* ``"rate"`` with ``redraw=True`` (as SD-SNN's code: its ``pixel > U(0, 1)`` code is drawn afresh at
  every presentation, train and test): a :class:`~plastix.datasets.FrameDataset` of
  :class:`~plastix.datasets.frames.BernoulliFrames` that keeps the images ``[n, 1, rows, cols]`` and
  draws ``[batch, steps, 1, rows, cols]`` 0/1 frames per batch, pixel ``v`` spiking with probability
  ``v / 255`` per step, from ``default_rng([seed, s, epoch, j])``: the same for the same (seed, split,
  epoch, image) whatever the batch, so a resumed run draws what an uninterrupted one would.  It holds
  784 bytes an image (not 12 a spike) and encodes nothing at loading.
* ``"latency"``: each non-zero pixel spikes once at ``t_max * (1 - x)`` ms (brightest first, blank pixels
  silent; :func:`~plastix.datasets.encoding.latency`); no randomness.

Subsets.  ``max_train`` / ``max_test`` keep that many samples of a split: of each class its first ones in
file order, the count shared among classes in proportion to their sizes (largest remainder; ties go to the
lower class).  Only the kept samples are encoded.

Memory.  A :class:`~plastix.datasets.SpikeSplit` stores 12 bytes a spike (float64 time, int32 unit).  Rate
coding with T = 20 gives 20 * 784 * mean(x) spikes an image: Fashion-MNIST (mean x = 0.286) 4,485, so the
full 60,000-image training split holds 269 M spikes = 3.2 GB (MNIST, mean x = 0.13: about half), and
loading it peaks at 28 bytes a spike of the training split, 8 GiB in all (measured: BENCHMARKS.md).
Latency coding: 0.5 spikes per pixel on Fashion-MNIST, 0.28 GB.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from .base import (DatasetError, DatasetNotFoundError, SpikeDataset, SpikeSplit, _check_dt, data_dirs,
                   not_found_message)
from .encoding import latency
from .frames import BernoulliFrames, FrameDataset

#: NumPy dtype of each IDX type code (big-endian, as stored).
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: Standard file names (each also found with ``.gz``): (images, labels) of each split.
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

#: Where Debian's ``dataset-fashion-mnist`` package installs the Fashion-MNIST files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

#: Subfolders of ``data_dir`` / ``$PLASTIX_DATA_DIR`` searched, and folders searched last without
#: ``data_dir``, per data set.
SUBDIRS = {"fashion_mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST", os.path.join("FashionMNIST", "raw")),
           "mnist": ("mnist", "MNIST", os.path.join("MNIST", "raw"))}
SYSTEM_DIRS = {"fashion_mnist": (DEBIAN_FASHION_MNIST,), "mnist": ()}

#: Fashion-MNIST's class names, by label.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")

NUM_CLASSES = 10
ENCODINGS = ("rate", "latency")
#: Second entry of the per-sample rate-coding seed ``[seed, split, index]``.
SPLIT_KEYS = {"train": 0, "test": 1}

_GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------------------------- IDX files
def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip file ({e})") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DatasetError(f"{path}: damaged gzip file ({e})") from e


def decode_idx(raw: bytes, source: str = "data") -> np.ndarray:
    """The array an IDX byte string holds, in native byte order (``source`` names it in errors)."""
    if len(raw) < 4:
        raise DatasetError(f"{source}: {len(raw)} bytes is too short for an IDX header (truncated or not IDX)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\0\0" or code not in IDX_TYPES:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DatasetError(f"{source}: bad IDX magic number 0x{raw[:4].hex().upper()}: expected two zero bytes, a "
                           f"type code ({codes}) and a dimension count (not an IDX file, or still compressed?)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{source}: truncated: the header announces {ndim} dimensions ({header} header bytes) "
                           f"but the file has {len(raw)} bytes")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize                # Python ints: no overflow on absurd sizes
    got = len(raw) - header
    if got < expected:
        raise DatasetError(f"{source}: truncated: the header describes a {' x '.join(map(str, shape)) or 'scalar'} "
                           f"{dtype.name} array ({expected} data bytes) but only {got} follow")
    if got > expected:
        raise DatasetError(f"{source}: {got - expected} bytes follow the {expected} data bytes that the header "
                           f"describes ({' x '.join(map(str, shape))} {dtype.name}); the file is damaged")
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path) -> np.ndarray:
    """The array in IDX file ``path`` (gzip-compressed or not; told apart by the content, not the name)."""
    path = os.fspath(path)
    return decode_idx(_read_bytes(path), path)


# ---------------------------------------------------------------------------------------------- finding files
def _install_hint(name: str) -> str:
    if name == "fashion_mnist":
        return (f"  Offline: apt-get install dataset-fashion-mnist (Debian) puts them in {DEBIAN_FASHION_MNIST}, "
                "found without data_dir; or pass data_dir= a folder with any MNIST-format files.")
    return "  Pass data_dir= a folder with the four MNIST-format files (gzipped or not)."


def find_files(name: str, data_dir=None) -> dict[str, tuple[str, str]]:
    """``{"train": (images, labels), "test": (images, labels)}``: paths of the four files, all from the
    first folder (see the module text) that holds them all."""
    if name not in SUBDIRS:
        raise DatasetError(f"no IDX data set {name!r}; choose one of {', '.join(SUBDIRS)}")
    looked = data_dirs(data_dir, SUBDIRS[name])
    if data_dir is None:
        looked += list(SYSTEM_DIRS[name])
    partial = ""
    for folder in looked:
        found = {}
        for f in (f for pair in FILES.values() for f in pair):
            found[f] = next((p for p in (os.path.join(folder, f), os.path.join(folder, f + ".gz"))
                             if os.path.isfile(p)), None)
        if all(found.values()):
            return {split: (found[i], found[lab]) for split, (i, lab) in FILES.items()}
        if any(found.values()) and not partial:
            partial = (f"  {folder} has only some of them; missing: "
                       f"{', '.join(f for f, p in found.items() if p is None)}.")
    expected = ", ".join(f"{f}[.gz]" for pair in FILES.values() for f in pair)
    raise DatasetNotFoundError(not_found_message(name, expected, looked) + partial + _install_hint(name))


def read_images(images_path, labels_path, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of one split: ``[n, rows, cols]`` uint8 and ``[n]`` int64, checked for shape,
    type, agreeing counts and labels in ``0..num_classes - 1``."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: an MNIST-format image file holds [n, rows, cols] unsigned bytes "
                           f"(IDX type 0x08, 3 dimensions); this one holds {images.ndim} dimensions "
                           f"{images.shape} of {images.dtype}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{labels_path}: a label file holds one integer per image (1 dimension); this one "
                           f"holds {labels.ndim} dimensions {labels.shape} of {labels.dtype}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
                           "they must match one to one")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(np.argmax((labels < 0) | (labels >= num_classes)))
        raise DatasetError(f"{labels_path}: labels must lie in 0..{num_classes - 1}; image {bad} has label "
                           f"{labels[bad]}")
    return images, labels.astype(np.int64)


def load_images(name: str, data_dir=None) -> dict:
    """The raw images of data set ``name`` (``"fashion_mnist"`` or ``"mnist"``): ``{"train": (images,
    labels), "test": (images, labels), "source": paths}`` with images ``[n, 28, 28]`` uint8."""
    paths = find_files(name, data_dir)
    out = {split: read_images(*p) for split, p in paths.items()}
    if out["train"][0].shape[1:] != out["test"][0].shape[1:]:
        raise DatasetError(f"{name}: train images are {out['train'][0].shape[1:]} pixels but test images "
                           f"{out['test'][0].shape[1:]}; both splits must have one image size")
    out["source"] = paths
    return out


# ---------------------------------------------------------------------------------------------- subsets
def stratified_head(labels, count: int | None, *, name: str = "count") -> np.ndarray:
    """Sorted indices of ``count`` samples: of each class its first ones, the count shared in proportion
    to the class sizes by largest remainder (ties to the lower class).  ``None``: every sample."""
    labels = np.asarray(labels).ravel()
    n = len(labels)
    if count is None:
        return np.arange(n)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= n:
        raise DatasetError(f"{name} must be an integer in 1..{n} (the samples in the file), got {count!r}")
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * (int(count) / n)
    quota = np.floor(exact).astype(np.int64)
    extra = int(count) - int(quota.sum())
    quota[np.argsort(-(exact - quota), kind="stable")[:extra]] += 1
    keep = [np.flatnonzero(labels == c)[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(keep))


# ---------------------------------------------------------------------------------------------- encodings
def _rate_split(pixels: np.ndarray, index: np.ndarray, labels: np.ndarray, split_key: int, *, seed: int,
                steps: int, dt: float) -> SpikeSplit:
    """Rate-code images ``pixels`` [n, units] (file indices ``index``) into one split, storing each sample's
    steps and units in the smallest integer types until the end so that the peak stays near the result."""
    units = pixels.shape[1]
    step_type, unit_type = np.min_scalar_type(steps - 1), np.min_scalar_type(units - 1)
    step_parts, unit_parts = [], []
    counts = np.empty(len(index), np.int64)
    for j, (row, i) in enumerate(zip(pixels, index)):
        rng = np.random.default_rng([seed, split_key, int(i)])
        k, u = np.nonzero(rng.random((steps, units)) < row / 255.0)
        step_parts.append(k.astype(step_type))
        unit_parts.append(u.astype(unit_type))
        counts[j] = k.size
    times = np.concatenate(step_parts).astype(np.float64) if step_parts else np.zeros(0)
    del step_parts
    times *= dt
    unit = np.concatenate(unit_parts).astype(np.int32) if unit_parts else np.zeros(0, np.int32)
    del unit_parts
    return SpikeSplit(times, unit, np.concatenate([[0], np.cumsum(counts)]), labels, num_units=units,
                      num_classes=NUM_CLASSES, duration_ms=steps * dt, dt=dt)


def _latency_split(pixels: np.ndarray, labels: np.ndarray, *, t_max: float, dt: float) -> SpikeSplit:
    events = [latency(row, t_max, vmin=0.0, vmax=255.0, threshold=0.0) for row in pixels]
    return SpikeSplit.from_samples([e[0] for e in events], [e[1] for e in events], labels, num_units=pixels.shape[1],
                                   num_classes=NUM_CLASSES, duration_ms=t_max, dt=dt)


def load_idx_images(name: str, *, data_dir=None, dt: float = 1.0, encoding: str = "rate", steps: int = 20,
                    t_max: float = 20.0, seed: int = 0, max_train: int | None = None,
                    max_test: int | None = None, redraw: bool = False) -> SpikeDataset | FrameDataset:
    """Data set ``name`` (``"fashion_mnist"`` or ``"mnist"``) encoded to spikes; see the module text for
    the files, the encodings and the subsets.  ``steps``: rate-coding steps (of ``dt`` ms); ``t_max``:
    latency of the faintest pixel (ms); ``seed``: the rate code's seed (an integer >= 0); ``redraw``:
    redraw the rate code at every presentation (a :class:`~plastix.datasets.FrameDataset`)."""
    dt = _check_dt(dt)
    if encoding not in ENCODINGS:
        raise DatasetError(f"encoding must be one of {', '.join(map(repr, ENCODINGS))}, got {encoding!r}")
    if redraw and encoding != "rate":
        raise DatasetError(f"redraw=True redraws the rate code; encoding={encoding!r} has no randomness to redraw")
    if encoding == "rate":
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise DatasetError(f"steps must be an integer >= 1, got {steps!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DatasetError(f"seed must be an integer >= 0, got {seed!r}")
        params = {"steps": int(steps), "seed": int(seed)}
    else:
        t_max = float(t_max)
        if not (np.isfinite(t_max) and t_max > 0):
            raise DatasetError(f"t_max must be a positive number of ms, got {t_max}")
        params = {"t_max": t_max}
    raw = load_images(name, data_dir)
    splits, kept = {}, {}
    for split, limit in (("train", max_train), ("test", max_test)):
        images, labels = raw[split]
        index = stratified_head(labels, limit, name=f"max_{split}")
        if redraw:
            splits[split] = BernoulliFrames(images[index][:, None], labels[index], steps=int(steps), vmax=255,
                                            seed=int(seed), split_key=SPLIT_KEYS[split], num_classes=NUM_CLASSES,
                                            sample_ids=index)
            kept[split] = f"{len(index)} of {len(labels)}"
            continue
        pixels = images[index].reshape(len(index), -1)
        if encoding == "rate":
            splits[split] = _rate_split(pixels, index, labels[index], SPLIT_KEYS[split], seed=int(seed),
                                        steps=int(steps), dt=dt)
        else:
            splits[split] = _latency_split(pixels, labels[index], t_max=t_max, dt=dt)
        kept[split] = f"{len(index)} of {len(labels)}"
    info = {"source": raw["source"], "encoding": encoding, **params, "image_shape": raw["train"][0].shape[1:],
            "samples": kept, "subset": "first of each class in file order, in proportion to class sizes"}
    if name == "fashion_mnist":
        info["classes"] = FASHION_MNIST_CLASSES
    if redraw:
        info["redraw"] = "per presentation: default_rng([seed, split, epoch, image])"
        return FrameDataset(name, splits["train"], splits["test"], info, dt)
    return SpikeDataset(name, splits["train"], splits["test"], info)


def load_fashion_mnist(*, data_dir=None, dt: float = 1.0, encoding: str = "rate", steps: int = 20,
                       t_max: float = 20.0, seed: int = 0, max_train: int | None = None,
                       max_test: int | None = None, redraw: bool = False) -> SpikeDataset | FrameDataset:
    """Fashion-MNIST (784 units, 10 classes, 60,000 / 10,000) from ``data_dir``, ``$PLASTIX_DATA_DIR`` or
    Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).  ``encoding="rate"``:
    ``steps`` Bernoulli steps of ``dt`` ms, spike probability pixel / 255 per step, seeded per sample;
    ``"latency"``: one spike per non-zero pixel at ``t_max * (1 - pixel / 255)`` ms.  ``max_train`` /
    ``max_test``: keep that many samples per split, stratified.  ``redraw=True``: the rate code drawn afresh
    at every presentation (SD-SNN), as a :class:`~plastix.datasets.FrameDataset`.  Details:
    :mod:`plastix.datasets.idx`."""
    return load_idx_images("fashion_mnist", data_dir=data_dir, dt=dt, encoding=encoding, steps=steps, t_max=t_max,
                           seed=seed, max_train=max_train, max_test=max_test, redraw=redraw)


def load_mnist(*, data_dir=None, dt: float = 1.0, encoding: str = "rate", steps: int = 20, t_max: float = 20.0,
               seed: int = 0, max_train: int | None = None, max_test: int | None = None,
               redraw: bool = False) -> SpikeDataset | FrameDataset:
    """MNIST, or any images in MNIST format with the standard file names and labels 0..9, from
    ``data_dir`` or ``$PLASTIX_DATA_DIR``; options as in :func:`load_fashion_mnist`."""
    return load_idx_images("mnist", data_dir=data_dir, dt=dt, encoding=encoding, steps=steps, t_max=t_max,
                           seed=seed, max_train=max_train, max_test=max_test, redraw=redraw)
