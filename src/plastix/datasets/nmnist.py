"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an event camera (34 x 34 pixels, two
polarities).  Not downloaded by plastix: unpack the dataset so that a folder holds ``Train/<digit>/*.bin``
and ``Test/<digit>/*.bin`` (digit 0..9) and pass ``data_dir=`` or set ``$PLASTIX_DATA_DIR`` (the folder
itself or its ``nmnist/`` or ``N-MNIST/`` subfolder is searched).

Each ``.bin`` file is a sequence of 5-byte events ``b0..b4``: ``x = b0``, ``y = b1``, ``polarity = b2 >> 7``,
``t_us = ((b2 & 127) << 16) | (b3 << 8) | b4`` (a 23-bit timestamp in microseconds).  Event -> unit
``polarity * width * height + y * width + x`` (2,312 units), time ``t_us / 1000`` ms.  Files are read in
sorted name order (numeric when the names are numbers); ``limit_per_class`` keeps the first that many of
each digit and split.

Frames (``frames=T``): instead of spike events, each sample's events become ``T`` frames of event counts
``[T, 2, height, width]`` (:mod:`plastix.datasets.event_frames`; channel = polarity; ``split_by="number"``
gives equal event counts per frame, as SpikingJelly's frames that SD-SNN's code uses), and ``crop=c``
then drops ``c`` pixels on every border (SD-SNN: ``frames=20, crop=1``, 34 x 34 -> 2 x 32 x 32; events on
the dropped border are not counted).  The result is a :class:`~plastix.datasets.FrameDataset` of
:class:`~plastix.datasets.frames.CountFrames`.
"""
from __future__ import annotations

import os

import numpy as np

from .base import (DatasetError, DatasetNotFoundError, SpikeDataset, SpikeSplit, _check_dt, data_dirs,
                   duration_covering, not_found_message)
from .event_frames import SPLIT_BY, CountStack, check_frames, integrate
from .frames import CountFrames, FrameDataset

SPLITS = {"train": "Train", "test": "Test"}


def decode_events(raw: bytes | np.ndarray, source: str = "data") -> dict[str, np.ndarray]:
    """Decode N-MNIST 5-byte events into ``x``, ``y``, ``polarity`` (uint8) and ``t_us`` (int64)."""
    b = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else np.asarray(raw, np.uint8)
    if b.size % 5:
        raise DatasetError(f"{source}: {b.size} bytes is not a whole number of 5-byte N-MNIST events "
                           "(truncated or not an N-MNIST .bin file)")
    b = b.reshape(-1, 5)
    t_us = ((b[:, 2].astype(np.int64) & 127) << 16) | (b[:, 3].astype(np.int64) << 8) | b[:, 4].astype(np.int64)
    return {"x": b[:, 0].copy(), "y": b[:, 1].copy(), "polarity": b[:, 2] >> 7, "t_us": t_us}


def read_bin(path) -> dict[str, np.ndarray]:
    """The events of one N-MNIST ``.bin`` file (see :func:`decode_events`)."""
    with open(path, "rb") as f:
        return decode_events(f.read(), os.fspath(path))


def _sort_key(name: str):
    stem = os.path.splitext(name)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def find_root(data_dir=None) -> str:
    """The folder that holds ``Train/`` and ``Test/``."""
    looked = data_dirs(data_dir, ["nmnist", "N-MNIST", "NMNIST"])
    for folder in looked:
        if all(os.path.isdir(os.path.join(folder, s)) for s in SPLITS.values()):
            return folder
    raise DatasetNotFoundError(not_found_message("nmnist", "folders Train/<digit>/*.bin and Test/<digit>/*.bin",
                                                 looked))


def list_files(root: str, split: str, limit_per_class: int | None = None) -> list[tuple[str, int]]:
    """``(path, digit)`` of the ``.bin`` files of one split, digit by digit, in sorted name order."""
    folder = os.path.join(root, SPLITS[split])
    files = []
    for digit in range(10):
        sub = os.path.join(folder, str(digit))
        if not os.path.isdir(sub):
            continue
        names = sorted((n for n in os.listdir(sub) if n.endswith(".bin")), key=_sort_key)
        if limit_per_class is not None:
            names = names[:int(limit_per_class)]
        files += [(os.path.join(sub, n), digit) for n in names]
    if not files:
        raise DatasetNotFoundError(f"nmnist: no .bin files in {folder}/<digit>/ (digit 0..9); expected "
                                   f"{SPLITS[split]}/<digit>/*.bin")
    return files


def _check_events(ev: dict, path: str, width: int, height: int) -> None:
    if ev["x"].size and (ev["x"].max() >= width or ev["y"].max() >= height):
        raise DatasetError(f"{path}: event at x={ev['x'].max()}, y={ev['y'].max()} outside the sensor "
                           f"size {width} x {height} (pass sensor_size=(width, height))")


def _frame_split(files, *, frames: int, split_by: str, crop: int, width: int, height: int) -> CountFrames:
    stack = CountStack(len(files), (frames, 2, height - 2 * crop, width - 2 * crop))
    for i, (path, _) in enumerate(files):
        ev = read_bin(path)
        _check_events(ev, path, width, height)
        counts = integrate(ev["x"], ev["y"], ev["polarity"], frames=frames, width=width, height=height,
                           split_by=split_by, t_us=ev["t_us"], source=path)
        stack.put(i, counts[:, :, crop:height - crop, crop:width - crop])
    return CountFrames(stack.array, [digit for _, digit in files], num_classes=10)


def load_nmnist(*, data_dir=None, dt: float = 1.0, limit_per_class: int | None = None,
                sensor_size: tuple[int, int] = (34, 34), duration_ms: float | None = None,
                frames: int | None = None, split_by: str = "number", crop: int = 0) -> SpikeDataset | FrameDataset:
    """N-MNIST from ``data_dir`` or ``$PLASTIX_DATA_DIR`` (see the module text).  ``sensor_size`` is
    (width, height); events outside it raise an error naming the file.  ``frames=T`` (with ``split_by``,
    ``crop``) gives a :class:`~plastix.datasets.FrameDataset` of event-count frames instead of spike
    events (``dt``: its ms per frame for ``to_spike_dataset``; ``duration_ms`` must then stay None)."""
    width, height = (int(v) for v in sensor_size)
    if frames is None:
        if crop != 0 or split_by != "number":
            raise DatasetError("crop and split_by apply to frames: pass frames=T (e.g. frames=20, crop=1) or leave "
                               "them at their defaults")
        return _load_events(data_dir, dt, limit_per_class, width, height, duration_ms)
    dt = _check_dt(dt)
    frames = check_frames(frames)
    if split_by not in SPLIT_BY:
        raise DatasetError(f"split_by must be one of {', '.join(map(repr, SPLIT_BY))}, got {split_by!r}")
    if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or not 0 <= 2 * crop < min(width, height):
        raise DatasetError(f"crop must be an integer >= 0 that leaves pixels of the {width} x {height} sensor "
                           f"(2 * crop < {min(width, height)}), got {crop!r}")
    if duration_ms is not None:
        raise DatasetError("duration_ms applies to spike events; with frames=T each sample is T frames")
    root = find_root(data_dir)
    splits = {split: _frame_split(list_files(root, split, limit_per_class), frames=frames, split_by=split_by,
                                  crop=int(crop), width=width, height=height) for split in SPLITS}
    info = {"source": root, "sensor_size": (width, height), "frames": frames, "split_by": split_by,
            "crop": int(crop), "frame_shape": splits["train"].frame_shape}
    return FrameDataset("nmnist", splits["train"], splits["test"], info, dt)


def _load_events(data_dir, dt, limit_per_class, width, height, duration_ms) -> SpikeDataset:
    root = find_root(data_dir)
    parts = {}
    for split in SPLITS:
        times, units, counts, labels = [], [], [], []
        for path, digit in list_files(root, split, limit_per_class):
            ev = read_bin(path)
            _check_events(ev, path, width, height)
            times.append(ev["t_us"] / 1000.0)
            units.append(ev["polarity"].astype(np.int64) * (width * height) + ev["y"].astype(np.int64) * width
                         + ev["x"])
            counts.append(ev["t_us"].size)
            labels.append(digit)
        parts[split] = (np.concatenate(times), np.concatenate(units),
                        np.concatenate([[0], np.cumsum(counts)]), np.array(labels, np.int64))
    if duration_ms is None:
        last = max((p[0].max() for p in parts.values() if p[0].size), default=0.0)
        duration_ms = duration_covering(last, dt)
    splits = {k: SpikeSplit(*p, num_units=2 * width * height, num_classes=10, duration_ms=duration_ms, dt=dt)
              for k, p in parts.items()}
    return SpikeDataset("nmnist", splits["train"], splits["test"], {"source": root, "sensor_size": (width, height)})
