"""DVS128 Gesture (Amir et al. 2017, IBM): 11 hand and arm gestures by 29 subjects under several
lighting conditions, recorded with a 128 x 128 DVS event camera (two polarities), loaded from the
original release as event-count frames (SD-SNN's input: 64 frames of 2 x 128 x 128, split by event
number).  Not downloaded by plastix.

Files.  A folder (the unpacked ``DvsGesture`` release) holds, for each recording (trial),
``userXX_<lighting>.aedat`` (AEDAT 3.1, see :mod:`plastix.datasets.aedat`) and
``userXX_<lighting>_labels.csv`` (a header line ``class,startTime_usec,endTime_usec``, then one line per
gesture: its class 1..11 and the microseconds of its start and end), and the split lists
``trials_to_train.txt`` and ``trials_to_test.txt`` (one ``.aedat`` name per line).  It is looked for in
``data_dir`` if given, else ``$PLASTIX_DATA_DIR``; each also in its subfolders ``DvsGesture/``,
``dvs_gesture/``, ``DVS128Gesture/``.  A listed trial whose ``.aedat`` or label file is missing, a
label file that is malformed, or a recording that breaks the format raises an error naming the file.

Samples.  Each line of a label file is one sample: the recording's polarity events with
``startTime_usec <= t < endTime_usec`` (as SpikingJelly cuts them; windows may overlap), label = class
- 1 (0..10).  Its events, in recording order, become ``frames`` frames of event counts
``[frames, 2, H, W]`` (:mod:`plastix.datasets.event_frames`; channel 0 = OFF, 1 = ON; ``split_by``
``"number"`` as SD-SNN's code, or ``"time"``).  ``downsample=k`` sums ``k x k`` pixel blocks (pixel
``(x // k, y // k)``; ``128 / k`` pixels a side); the authors use ``1``.  Samples are ordered by the
list's trial order, then by label-file line.  ``max_trials`` keeps the first that many listed trials of
each split (for quick runs).  Gestures with no events are kept as empty frames and counted in
``info["empty_gestures"]``.

Cache.  Parsing reads every recording (about 1 s per 100-300 MB here).  With ``cache_dir=`` the frames
are saved there (``.npy`` per split, keyed by the options and every file's name, size and modification
time) and later loads memory-map them: a changed file or option builds a new cache entry.

Classes (label: gesture): 0 hand clap, 1 right hand wave, 2 left hand wave, 3 right arm clockwise,
4 right arm counter-clockwise, 5 left arm clockwise, 6 left arm counter-clockwise, 7 arm roll,
8 air drums, 9 air guitar, 10 other gestures.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np

from .aedat import read_aedat
from .base import DatasetError, DatasetNotFoundError, _check_dt, data_dirs, not_found_message
from .event_frames import SPLIT_BY, CountStack, check_frames, integrate
from .frames import CountFrames, FrameDataset

SENSOR = 128
NUM_CLASSES = 11
LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
SUBDIRS = ("DvsGesture", "dvs_gesture", "DVS128Gesture")
CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
           "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise", "arm roll",
           "air drums", "air guitar", "other gestures")
LABEL_HEADER = ("class", "starttime_usec", "endtime_usec")
#: Bumped when the frames built from the same files would change.
CACHE_VERSION = 1


def find_root(data_dir=None) -> str:
    """The folder that holds ``trials_to_train.txt`` and ``trials_to_test.txt``."""
    looked = data_dirs(data_dir, SUBDIRS)
    for folder in looked:
        if all(os.path.isfile(os.path.join(folder, f)) for f in LISTS.values()):
            return folder
    raise DatasetNotFoundError(not_found_message(
        "dvs_gesture", "the unpacked DvsGesture release: trials_to_train.txt, trials_to_test.txt and "
        "userXX_<lighting>.aedat with userXX_<lighting>_labels.csv", looked))


def read_trial_list(path: str) -> list[str]:
    """The ``.aedat`` names of a split list, in order (blank lines skipped)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        names = [line.strip() for line in f]
    names = [n for n in names if n]
    bad = [n for n in names if not n.endswith(".aedat")]
    if bad:
        raise DatasetError(f"{path}: expected one .aedat file name per line, found {bad[0]!r}")
    if not names:
        raise DatasetError(f"{path}: lists no trials (expected one .aedat file name per line)")
    return names


def labels_path(aedat_path: str) -> str:
    """``userXX_<lighting>_labels.csv`` beside ``userXX_<lighting>.aedat``."""
    return aedat_path[:-len(".aedat")] + "_labels.csv"


def read_labels(path: str) -> np.ndarray:
    """The gestures of one label file: ``[n, 3]`` int64 rows ``(class 1..11, start_us, end_us)``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file (expected the label file of "
                                   f"{os.path.basename(path)[:-len('_labels.csv')]}.aedat: a header line "
                                   "'class,startTime_usec,endTime_usec' and one line per gesture)") from None
    header = tuple(c.strip().lower() for c in lines[0].split(",")) if lines else ()
    if header != LABEL_HEADER:
        raise DatasetError(f"{path}: expected the header line 'class,startTime_usec,endTime_usec', found "
                           f"{lines[0][:60] if lines else 'an empty file'!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            row = [int(c) for c in cells]
        except ValueError:
            row = []
        if len(row) != 3:
            raise DatasetError(f"{path}, line {number}: expected three integers class,startTime_usec,endTime_usec, "
                               f"found {line[:60]!r}")
        if not 1 <= row[0] <= NUM_CLASSES:
            raise DatasetError(f"{path}, line {number}: class must lie in 1..{NUM_CLASSES}, found {row[0]}")
        if not 0 <= row[1] < row[2]:
            raise DatasetError(f"{path}, line {number}: expected 0 <= startTime_usec < endTime_usec, found "
                               f"{row[1]}, {row[2]}")
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _trials(root: str, split: str, max_trials: int | None) -> list[tuple[str, str]]:
    list_path = os.path.join(root, LISTS[split])
    names = read_trial_list(list_path)
    if max_trials is not None:
        names = names[:max_trials]
    out = []
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise DatasetNotFoundError(f"{path}: no such file (listed in {list_path}; expected an AEDAT 3.1 "
                                       "recording)")
        out.append((path, labels_path(path)))
    return out


def _cut(t_us: np.ndarray, start: int, end: int, ordered: bool):
    """Events with start <= t < end: a slice when the times are in order, else an index array."""
    if ordered:
        return slice(int(np.searchsorted(t_us, start, "left")), int(np.searchsorted(t_us, end, "left")))
    return np.flatnonzero((t_us >= start) & (t_us < end))


def build_split(trials, *, frames: int, split_by: str, downsample: int, valid_only: bool) -> tuple:
    """``(frames [n, frames, 2, H, W], labels [n], sources, stats)`` of one split's trials."""
    side = SENSOR // downsample
    tables = [read_labels(csv) for _, csv in trials]
    total = sum(len(t) for t in tables)
    stack = CountStack(total, (frames, 2, side, side))
    labels = np.empty(total, np.int64)
    sources, stats = [], {"events": 0, "invalid_events": 0, "empty_gestures": 0}
    i = 0
    for (path, _), table in zip(trials, tables):
        ev = read_aedat(path, valid_only=valid_only)
        stats["events"] += int(ev.t_us.size)
        stats["invalid_events"] += ev.invalid
        if ev.t_us.size and (int(ev.x.max()) >= SENSOR or int(ev.y.max()) >= SENSOR):
            raise DatasetError(f"{path}: events reach x = {int(ev.x.max())}, y = {int(ev.y.max())}, outside the "
                               f"{SENSOR} x {SENSOR} DVS128 sensor")
        ordered = bool(np.all(ev.t_us[1:] >= ev.t_us[:-1]))
        x = ev.x // downsample if downsample > 1 else ev.x
        y = ev.y // downsample if downsample > 1 else ev.y
        for row, (cls, start, end) in enumerate(table):
            sel = _cut(ev.t_us, start, end, ordered)
            counts = integrate(x[sel], y[sel], ev.polarity[sel], frames=frames, width=side, height=side,
                               split_by=split_by, t_us=ev.t_us[sel], source=f"{path} gesture {row}")
            if not counts.any():
                stats["empty_gestures"] += 1
            stack.put(i, counts)
            labels[i] = cls - 1
            sources.append(f"{os.path.basename(path)}:{row}")
            i += 1
    return stack.array, labels, sources, stats


def _cache_key(root: str, trials: dict, options: dict) -> str:
    files = []
    for split in ("train", "test"):
        for pair in trials[split]:
            for f in pair:
                st = os.stat(f)
                files.append([split, os.path.relpath(f, root), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"version": CACHE_VERSION, "options": options, "files": files}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_cache(folder: str):
    try:
        with open(os.path.join(folder, "info.json"), encoding="utf-8") as f:
            meta = json.load(f)
        parts = {s: (np.load(os.path.join(folder, f"{s}_frames.npy"), mmap_mode="r"),
                     np.load(os.path.join(folder, f"{s}_labels.npy"))) for s in ("train", "test")}
    except (OSError, ValueError):
        return None
    return parts, meta


def _save_cache(folder: str, parts: dict, meta: dict) -> None:
    tmp = f"{folder}.tmp-{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    for split, (frames, labels) in parts.items():
        np.save(os.path.join(tmp, f"{split}_frames.npy"), frames)
        np.save(os.path.join(tmp, f"{split}_labels.npy"), labels)
    with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f)
    try:
        os.rename(tmp, folder)
    except OSError:            # another process cached the same entry first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def load_dvs_gesture(*, data_dir=None, dt: float = 1.0, frames: int = 64, split_by: str = "number",
                     downsample: int = 1, valid_only: bool = True, max_trials: int | None = None,
                     cache_dir=None) -> FrameDataset:
    """DVS128 Gesture as event-count frames ``[samples, frames, 2, 128 / downsample, 128 / downsample]``
    (see the module text), 11 classes, the release's train / test trial lists.  ``dt``: the ms per frame
    that :meth:`FrameDataset.to_spike_dataset` uses.  ``cache_dir``: where to keep the built frames."""
    dt = _check_dt(dt)
    frames = check_frames(frames)
    if split_by not in SPLIT_BY:
        raise DatasetError(f"split_by must be one of {', '.join(map(repr, SPLIT_BY))}, got {split_by!r}")
    if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1 \
            or SENSOR % downsample:
        raise DatasetError(f"downsample must be a divisor of {SENSOR} (1, 2, 4, 8, ...), got {downsample!r}")
    if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, (int, np.integer))
                                   or max_trials < 1):
        raise DatasetError(f"max_trials must be an integer >= 1 or None, got {max_trials!r}")
    root = find_root(data_dir)
    trials = {split: _trials(root, split, max_trials) for split in LISTS}
    options = {"frames": frames, "split_by": split_by, "downsample": int(downsample), "valid_only": bool(valid_only),
               "max_trials": max_trials}
    cached, folder = None, None
    if cache_dir is not None:
        folder = os.path.join(os.fspath(cache_dir), f"dvs_gesture-{_cache_key(root, trials, options)}")
        cached = _load_cache(folder) if os.path.isdir(folder) else None
    if cached is not None:
        parts, meta = cached
    else:
        parts, meta = {}, {"sources": {}, "stats": {}}
        for split in LISTS:
            x, labels, sources, stats = build_split(trials[split], frames=frames, split_by=split_by,
                                                    downsample=int(downsample), valid_only=bool(valid_only))
            parts[split] = (x, labels)
            meta["sources"][split], meta["stats"][split] = sources, stats
        if folder is not None:
            os.makedirs(os.fspath(cache_dir), exist_ok=True)
            if os.path.isdir(folder):          # an entry that did not load (damaged): replace it
                shutil.rmtree(folder, ignore_errors=True)
            _save_cache(folder, parts, meta)
    splits = {s: CountFrames(x, lab, num_classes=NUM_CLASSES) for s, (x, lab) in parts.items()}
    info = {"source": root, **options, "frame_shape": splits["train"].frame_shape, "classes": CLASSES,
            "trials": {s: len(t) for s, t in trials.items()}, "sample_sources": meta["sources"],
            "stats": meta["stats"], "cache": folder if cache_dir is not None else None,
            "from_cache": cached is not None,
            "empty_gestures": sum(st["empty_gestures"] for st in meta["stats"].values())}
    return FrameDataset("dvs_gesture", splits["train"], splits["test"], info, dt)
