"""SD-SNN's data: AEDAT 3.1 recordings and DVS128 Gesture, event-count frames (N-MNIST, DVS Gesture) and
the Bernoulli rate code redrawn at every presentation.

AEDAT files, label files, N-MNIST files and IDX files are written here with struct, event by event,
independently of the readers; expected frames come from plain-Python loops over the events that follow
the documented rules (SpikingJelly's split by event number)."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import plastix.datasets as pxd
from plastix.datasets import DatasetError, DatasetNotFoundError, aedat, event_frames
from plastix.datasets.frames import BernoulliFrames, CountFrames, FrameDataset

HEADER = ["#!AER-DAT3.1", "#Format: RAW", "#Source 1: DVS128", "#Start-Time: 2017-01-01 00:00:00", "#!END-HEADER"]


# ---------------------------------------------------------------------------------------------- writers
def packet(events, *, etype=1, size=8, capacity=None, overflow=0, pad=b""):
    """One AEDAT 3.1 packet: header + events (x, y, p, ts, valid) as 8-byte polarity events, then
    ``capacity - len(events)`` unused slots of zero bytes."""
    capacity = len(events) if capacity is None else capacity
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | int(v), ts) for x, y, p, ts, v in events)
    body += bytes((capacity - len(events)) * size) + pad
    head = struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, capacity, len(events), sum(e[4] for e in events))
    return head + body


def aedat_file(packets, header=HEADER) -> bytes:
    return b"".join(line.encode() + b"\r\n" for line in header) + b"".join(packets)


def events_file(events, per_packet=5) -> bytes:
    """Events (x, y, p, t_us) in packets of ``per_packet``, a new packet at every overflow epoch, with a
    special-event packet (type 0) after the first."""
    packets, i = [], 0
    while i < len(events):
        epoch = events[i][3] >> 31
        chunk = []
        while i < len(events) and len(chunk) < per_packet and events[i][3] >> 31 == epoch:
            x, y, p, t = events[i]
            chunk.append((x, y, p, t & 0x7FFFFFFF, True))
            i += 1
        packets.append(packet(chunk, overflow=epoch))
        if len(packets) == 1:
            packets.append(struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2) + bytes(range(16)))
    return aedat_file(packets)


def reference_frames(events, frames, side, downsample=1):
    """[frames, 2, side, side] counts: SpikingJelly's split by number, by plain loops."""
    out = np.zeros((frames, 2, side, side), np.int64)
    n = len(events)
    d = n // frames
    for i, (x, y, p, _t) in enumerate(events):
        k = frames - 1 if d == 0 else min(i // d, frames - 1)
        out[k, p, y // downsample, x // downsample] += 1
    return out


def random_events(rng, n, t0, t1, side=128):
    t = np.sort(rng.integers(t0, t1, n))
    return [(int(rng.integers(side)), int(rng.integers(side)), int(rng.integers(2)), int(ti)) for ti in t]


def write_gesture_folder(root, trials, train, test):
    """``trials``: name -> (events, label rows); ``train`` / ``test``: lists of names."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (events, rows) in trials.items():
        (root / f"{name}.aedat").write_bytes(events_file(events, per_packet=37))
        (root / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n"
                                                 + "".join(f"{c},{a},{b}\n" for c, a, b in rows))
    (root / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in train) + "\n")
    (root / "trials_to_test.txt").write_text("".join(f"{n}.aedat\n" for n in test))
    return root


@pytest.fixture
def gestures(tmp_path, monkeypatch):
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    rng = np.random.default_rng(7)
    trials = {
        "user01_fluorescent": (random_events(rng, 900, 1_000, 2_000_000),
                               [(3, 100_000, 600_000), (11, 500_000, 1_300_000), (1, 1_300_000, 1_999_000)]),
        "user02_led": (random_events(rng, 500, 10, 900_000), [(5, 0, 450_000), (2, 450_000, 900_000)]),
        # crosses the 32-bit overflow; one gesture without events
        "user24_natural": (random_events(rng, 400, 2**31 - 200_000, 2**31 + 200_000),
                           [(7, 2**31 - 150_000, 2**31 + 150_000), (9, 10, 20)]),
    }
    root = write_gesture_folder(tmp_path / "DvsGesture", trials, ["user01_fluorescent", "user02_led"],
                                ["user24_natural"])
    return root, trials


def expected_split(trials, names, frames, downsample=1):
    xs, labels = [], []
    for name in names:
        events, rows = trials[name]
        for c, a, b in rows:
            sel = [e for e in events if a <= e[3] < b]
            xs.append(reference_frames(sel, frames, 128 // downsample, downsample))
            labels.append(c - 1)
    return np.array(xs), np.array(labels)


# ---------------------------------------------------------------------------------------------- AEDAT 3.1
def test_aedat_decodes_known_events():
    a = [(127, 0, 1, 5, True), (0, 127, 0, 6, True), (64, 3, 1, 7, False), (1, 2, 0, 9, True)]
    b = [(5, 6, 1, 3, True)]                                     # overflow 1: t = 2**31 + 3
    special = packet([(9, 9, 1, 1, True)], etype=0)              # not polarity: skipped
    raw = aedat_file([packet(a, capacity=6), special, packet(b, overflow=1)])
    ev = aedat.decode_aedat(raw, "f.aedat")
    assert ev.x.tolist() == [127, 0, 1, 5] and ev.y.tolist() == [0, 127, 2, 6]
    assert ev.polarity.tolist() == [1, 0, 0, 1]
    assert ev.t_us.tolist() == [5, 6, 9, 2**31 + 3]
    assert ev.invalid == 1 and ev.packets == 2
    assert ev.header[0] == "!AER-DAT3.1" and ev.header[-1] == "!END-HEADER"
    kept = aedat.decode_aedat(raw, valid_only=False)             # as SpikingJelly: invalid events kept
    assert kept.x.tolist() == [127, 0, 64, 1, 5] and kept.invalid == 0


def test_aedat_round_trip_and_file(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
    t = np.sort(rng.integers(2**31 - 10_000, 2**32 + 10_000, n))
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    path = tmp_path / "r.aedat"
    path.write_bytes(aedat.encode_aedat(x, y, p, t, packet_events=333))
    ev = pxd.read_aedat(path)
    assert np.array_equal(ev.x, x) and np.array_equal(ev.y, y) and np.array_equal(ev.polarity, p)
    assert np.array_equal(ev.t_us, t)
    # the writer's packets read back with the test's own packet parser
    raw = path.read_bytes()
    pos = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    total = 0
    while pos < len(raw):
        _, _, size, _, _, cap, num, _ = struct.unpack_from("<hhiiiiii", raw, pos)
        total += num
        pos += 28 + cap * size
    assert total == n


@pytest.mark.parametrize("raw, message", [
    (b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "version 2.0 is not supported"),
    (b"hello\r\n", "not an AEDAT file"),
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "no '#!END-HEADER'"),
    (b"#!AER-DAT3.1\r\nstray\r\n#!END-HEADER\r\n", "does not start with '#'"),
    (aedat_file([packet([(1, 1, 1, 1, True)])])[:-4], "truncated packet at byte .* 4 follow"),
    (aedat_file([packet([(1, 1, 1, 1, True)])]) + bytes(10), "truncated packet header at byte"),
    (aedat_file([packet([(1, 1, 1, 1, True)], size=16, pad=bytes(8))]), "eventSize 16"),
    (aedat_file([struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 2, 2) + bytes(8)]), "corrupt packet header"),
])
def test_aedat_corrupt_files_name_file_and_place(tmp_path, raw, message):
    path = tmp_path / "bad.aedat"
    path.write_bytes(raw)
    with pytest.raises(DatasetError, match=message) as err:
        pxd.read_aedat(path)
    assert str(path) in str(err.value)


def test_aedat_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        pxd.read_aedat(tmp_path / "none.aedat")


# ---------------------------------------------------------------------------------------------- frames from events
@pytest.mark.parametrize("n, frames", [(103, 7), (5, 7), (0, 3), (64, 64)])
def test_integrate_by_number_matches_loop(n, frames):
    rng = np.random.default_rng(n)
    ev = random_events(rng, n, 0, 10_000, side=6)
    x, y, p, t = (np.array([e[i] for e in ev], np.int64) for i in range(4))
    got = event_frames.integrate(x, y, p, frames=frames, width=6, height=6, t_us=t)
    assert np.array_equal(got, reference_frames(ev, frames, 6))
    assert got.sum() == n


def test_integrate_by_time_matches_loop():
    t = np.array([100, 101, 150, 160, 199, 250, 400], np.int64)
    x, y, p = np.arange(7) % 3, np.zeros(7, np.int64), np.arange(7) % 2
    got = event_frames.integrate(x, y, p, frames=3, width=3, height=1, split_by="time", t_us=t)
    dt = (400 - 100) // 3
    want = np.zeros((3, 2, 1, 3), np.int64)
    for i in range(7):
        want[min((t[i] - 100) // dt, 2), p[i], 0, x[i]] += 1
    assert np.array_equal(got, want)
    with pytest.raises(DatasetError, match="outside the 2 x 1 sensor"):
        event_frames.integrate(x, y, p, frames=3, width=2, height=1, t_us=t)
    with pytest.raises(DatasetError, match="split_by"):
        event_frames.integrate(x, y, p, frames=3, width=3, height=1, split_by="count")


def test_count_stack_widens_instead_of_clipping():
    stack = event_frames.CountStack(2, (1, 2))
    stack.put(0, np.array([[3, 255]]))
    assert stack.array.dtype == np.uint8
    stack.put(1, np.array([[256, 70_000]]))
    assert stack.array.dtype == np.uint32 and stack.array.tolist() == [[[3, 255]], [[256, 70_000]]]


# ---------------------------------------------------------------------------------------------- DVS128 Gesture
def test_dvs_gesture_frames_match_reference(gestures):
    root, trials = gestures
    ds = pxd.load("dvs_gesture", data_dir=root.parent, frames=5)       # found in the DvsGesture/ subfolder
    assert isinstance(ds, FrameDataset) and ds.frame_shape == (2, 128, 128) and ds.steps == 5
    assert ds.num_classes == 11
    for split, names in (("train", ["user01_fluorescent", "user02_led"]), ("test", ["user24_natural"])):
        want, labels = expected_split(trials, names, 5)
        got = getattr(ds, split).frames()
        assert got.dtype == np.uint8 and np.array_equal(got, want)
        assert getattr(ds, split).labels.tolist() == labels.tolist()
    assert ds.info["sample_sources"]["train"][3] == "user02_led.aedat:0"
    assert ds.info["empty_gestures"] == 1 and ds.info["stats"]["test"]["events"] == 400
    batch = next(ds.train.batches(2, shuffle=False))
    assert batch.spikes.shape == (2, 5, 2, 128, 128) and batch.labels.tolist() == [2, 10]


def test_dvs_gesture_downsample_and_cache(gestures, tmp_path):
    root, trials = gestures
    cache = tmp_path / "cache"
    first = pxd.load("dvs_gesture", data_dir=root, frames=3, downsample=4, cache_dir=cache)
    want, _ = expected_split(trials, ["user01_fluorescent", "user02_led"], 3, downsample=4)
    assert first.frame_shape == (2, 32, 32) and np.array_equal(first.train.frames(), want)
    assert not first.info["from_cache"]
    again = pxd.load("dvs_gesture", data_dir=root, frames=3, downsample=4, cache_dir=cache)
    assert again.info["from_cache"] and np.array_equal(again.train.frames(), want)
    assert np.array_equal(again.test.frames(), first.test.frames())
    assert again.info["sample_sources"] == first.info["sample_sources"]
    entry = cache / os.listdir(cache)[0]
    (entry / "train_frames.npy").write_bytes(b"damaged")               # a damaged entry is rebuilt
    rebuilt = pxd.load("dvs_gesture", data_dir=root, frames=3, downsample=4, cache_dir=cache)
    assert not rebuilt.info["from_cache"] and np.array_equal(rebuilt.train.frames(), want)
    assert pxd.load("dvs_gesture", data_dir=root, frames=3, downsample=4, cache_dir=cache).info["from_cache"]
    # a changed label file is a new cache entry, built afresh
    (root / "user02_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n4,0,900000\n")
    changed = pxd.load("dvs_gesture", data_dir=root, frames=3, downsample=4, cache_dir=cache)
    assert not changed.info["from_cache"] and len(changed.train) == 4 and changed.train.labels[-1] == 3
    assert len(os.listdir(cache)) == 2


def test_dvs_gesture_errors(gestures, monkeypatch):
    root, _ = gestures
    with pytest.raises(DatasetNotFoundError, match="trials_to_train.txt"):
        pxd.load("dvs_gesture")                                          # no data_dir, no $PLASTIX_DATA_DIR
    with pytest.raises(DatasetError, match="downsample must be a divisor of 128"):
        pxd.load("dvs_gesture", data_dir=root, downsample=3)
    with pytest.raises(DatasetError, match="has no option"):
        pxd.load("dvs_gesture", data_dir=root, crop=1)
    csv = root / "user02_led_labels.csv"
    good = csv.read_text()
    for text, message in [("class,start,end\n1,0,5\n", "expected the header line"),
                          ("class,startTime_usec,endTime_usec\n12,0,5\n", "line 2: class must lie in 1..11"),
                          ("class,startTime_usec,endTime_usec\n1,0,x\n", "line 2: expected three integers"),
                          ("class,startTime_usec,endTime_usec\n1,9,5\n", "line 2: expected 0 <= startTime_usec")]:
        csv.write_text(text)
        with pytest.raises(DatasetError, match=message) as err:
            pxd.load("dvs_gesture", data_dir=root)
        assert str(csv) in str(err.value)
    csv.unlink()
    with pytest.raises(DatasetNotFoundError, match="user02_led_labels.csv: no such file"):
        pxd.load("dvs_gesture", data_dir=root)
    csv.write_text(good)
    (root / "user24_natural.aedat").unlink()
    with pytest.raises(DatasetNotFoundError, match="user24_natural.aedat: no such file .*trials_to_test.txt"):
        pxd.load("dvs_gesture", data_dir=root)
    (root / "user24_natural.aedat").write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + bytes(27))
    with pytest.raises(DatasetError, match="user24_natural.aedat: truncated packet header at byte 28"):
        pxd.load("dvs_gesture", data_dir=root)


def test_dvs_gesture_max_trials_and_to_spikes(gestures):
    root, trials = gestures
    ds = pxd.load("dvs_gesture", data_dir=root, frames=2, downsample=8, max_trials=1, dt=2.0)
    assert len(ds.train) == 3 and ds.info["trials"] == {"train": 1, "test": 1}
    spikes = ds.to_spike_dataset()
    dense = spikes.train.to_dense(dt=2.0)
    assert dense.shape == (3, 2, 2 * 16 * 16)
    assert np.array_equal(dense, ds.train.frames().reshape(3, 2, -1))


# ---------------------------------------------------------------------------------------------- N-MNIST frames
def nmnist_bytes(events) -> bytes:
    return b"".join(bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 255, t & 255]) for x, y, p, t in events)


def test_nmnist_frames_cropped_to_32(tmp_path):
    rng = np.random.default_rng(3)
    files = {}
    for split in ("Train", "Test"):
        for digit in (0, 4):
            ev = random_events(rng, 61, 0, 300_000, side=34)
            files[(split, digit)] = ev
            d = tmp_path / split / str(digit)
            d.mkdir(parents=True)
            (d / "00001.bin").write_bytes(nmnist_bytes(ev))
    ds = pxd.load("nmnist", data_dir=tmp_path, frames=20, crop=1)
    assert ds.frame_shape == (2, 32, 32) and ds.steps == 20
    for split, key in (("train", "Train"), ("test", "Test")):
        got = getattr(ds, split).frames()
        for row, digit in enumerate((0, 4)):
            want = reference_frames(files[(key, digit)], 20, 34)[:, :, 1:-1, 1:-1]
            assert np.array_equal(got[row], want)
        assert getattr(ds, split).labels.tolist() == [0, 4]
    assert isinstance(pxd.load("nmnist", data_dir=tmp_path), pxd.SpikeDataset)  # events without frames=
    with pytest.raises(DatasetError, match="crop and split_by apply to frames"):
        pxd.load("nmnist", data_dir=tmp_path, crop=1)
    with pytest.raises(DatasetError, match="crop must be"):
        pxd.load("nmnist", data_dir=tmp_path, frames=20, crop=17)


# ---------------------------------------------------------------------------------------------- Bernoulli, redrawn
def test_bernoulli_rates_follow_pixel_values():
    values = np.array([0, 1, 64, 128, 254, 255], np.uint8)
    img = np.tile(values, (1, 1, 50, 1))                       # [1 image, 1 channel, 50 rows, 6 columns]
    split = BernoulliFrames(img, [0], steps=20, seed=5, num_classes=1)
    draws = np.concatenate([split.frames([0], epoch=e) for e in range(40)])   # 40 presentations
    rate = draws.mean(axis=(0, 1, 2, 3))                        # per column: 40 * 20 * 50 = 40,000 draws
    p = values / 255.0
    assert rate[0] == 0.0 and rate[-1] == 1.0
    assert np.all(np.abs(rate - p) <= 5 * np.sqrt(p * (1 - p) / 40_000) + 1e-12)
    # steps are independent: the spike count of a pixel over 20 steps is binomial(20, p)
    counts = draws[:, :, 0, :, 3].sum(axis=1).ravel()           # p = 128 / 255
    assert abs(counts.var() - 20 * p[3] * (1 - p[3])) < 0.15 * 20 * p[3] * (1 - p[3])


def test_bernoulli_redraw_is_keyed_by_seed_split_epoch_sample():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (6, 1, 5, 5)).astype(np.uint8)
    split = BernoulliFrames(img, np.arange(6) % 3, steps=4, seed=9, num_classes=3)
    whole = split.frames(epoch=2)
    assert np.array_equal(split.frames([4, 1], epoch=2), whole[[4, 1]])            # batch does not matter
    batches = list(split.batches(4, seed=11, epoch=2))
    for b in batches:
        assert np.array_equal(b.spikes, whole[b.indices])
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == list(range(6))
    assert not np.array_equal(split.frames(epoch=3), whole)                       # a new presentation
    sub = split.subset([5, 2])
    assert np.array_equal(sub.frames(epoch=2), whole[[5, 2]])                     # ids travel with a subset
    other = BernoulliFrames(img, np.arange(6) % 3, steps=4, seed=9, split_key=1, num_classes=3)
    assert not np.array_equal(other.frames(epoch=2), whole)
    # the documented key
    want = np.random.default_rng([9, 0, 2, 4]).integers(0, 255, (4, 1, 5, 5), dtype=np.uint8) < img[4]
    assert np.array_equal(whole[4], want)
    with pytest.raises(DatasetError, match="epoch must be an integer >= 0"):
        split.frames(epoch=-1)
    with pytest.raises(DatasetError, match="image values must lie in 0..16"):
        BernoulliFrames(img, np.zeros(6, int), vmax=16, num_classes=1)


def idx_bytes(a, code=0x08):
    a = np.asarray(a)
    return bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(">u1").tobytes()


def test_mnist_redraw_gives_frames_per_presentation(tmp_path):
    rng = np.random.default_rng(2)
    images = {"train": rng.integers(0, 256, (20, 6, 5)), "test": rng.integers(0, 256, (10, 6, 5))}
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    for split, (im, lab) in names.items():
        (tmp_path / im).write_bytes(idx_bytes(images[split]))
        (tmp_path / lab).write_bytes(idx_bytes(np.arange(len(images[split])) % 10))
    ds = pxd.load("mnist", data_dir=tmp_path, redraw=True, seed=4, max_train=10)
    assert isinstance(ds, FrameDataset) and ds.steps == 20 and ds.frame_shape == (1, 6, 5)
    kept = ds.train.sample_ids                                  # file indices of the stratified subset
    assert len(kept) == 10
    batch = next(ds.train.batches(3, seed=1, epoch=7))
    j = int(kept[batch.indices[0]])
    want = np.random.default_rng([4, 0, 7, j]).integers(0, 255, (20, 1, 6, 5), dtype=np.uint8) < images["train"][j]
    assert np.array_equal(batch.spikes[0], want)
    test_frames = ds.test.frames(epoch=7)
    assert test_frames.shape == (10, 20, 1, 6, 5) and set(np.unique(test_frames)) <= {0, 1}
    with pytest.raises(DatasetError, match="redraw=True redraws the rate code"):
        pxd.load("mnist", data_dir=tmp_path, redraw=True, encoding="latency")


def test_digits_redraw():
    ds = pxd.load("digits", encoding="rate", redraw=True, steps=20, seed=1)
    assert ds.frame_shape == (1, 8, 8) and ds.steps == 20 and (len(ds.train), len(ds.test)) == (1438, 359)
    img = ds.train.images
    assert img.max() == 16
    x = ds.train.frames(np.arange(200), epoch=0).mean(axis=1)   # per-pixel rate over 20 steps
    assert abs(x.mean() - img[:200].mean() / 16) < 0.01
    with pytest.raises(DatasetError, match="max_rate does not apply"):
        pxd.load("digits", encoding="rate", redraw=True, max_rate=100.0)


# ---------------------------------------------------------------------------------------------- containers
def test_frame_dataset_validation_and_checks():
    frames = np.arange(10 * 2 * 1 * 2 * 2, dtype=np.uint8).reshape(10, 2, 1, 2, 2)
    labels = np.arange(10) % 2
    ds = FrameDataset("t", CountFrames(frames, labels, num_classes=2), CountFrames(frames[:2], labels[:2],
                                                                                    num_classes=2))
    val = ds.validation_split(0.2)
    assert (len(val.train), len(val.test)) == (8, 2)
    assert np.array_equal(val.test.frames(), frames[[8, 9]])
    assert np.array_equal(val.test.subset([1]).frames(), frames[[9]])
    assert ds.summary()["train"]["class_counts"] == [5, 5]
    with pytest.raises(DatasetError, match=r"\[samples, T, C, H, W\]"):
        CountFrames(frames[0], labels, num_classes=2)
    with pytest.raises(DatasetError, match="unsigned integer counts"):
        CountFrames(frames.astype(np.float32), labels, num_classes=2)
    with pytest.raises(DatasetError, match="labels must lie in 0..1"):
        CountFrames(frames, labels + 1, num_classes=2)
    with pytest.raises(DatasetError, match="disagree on steps"):
        FrameDataset("t", CountFrames(frames, labels, num_classes=2),
                     CountFrames(frames[:, :1], labels, num_classes=2))


# ---------------------------------------------------------------------------------------------- frame augmentation
def test_random_shift_is_a_padded_crop():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 200, (12, 3, 2, 9, 8)).astype(np.uint8)
    out = pxd.frame_augment.random_shift(3)(x, np.random.default_rng(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (0, 0), (3, 3), (3, 3)))
    seen = set()
    for b in range(12):
        matches = [(i, j) for i in range(7) for j in range(7)
                   if np.array_equal(out[b], padded[b, ..., i:i + 9, j:j + 8])]
        assert len(matches) == 1                       # exactly one crop of the padded frames, same for all T, C
        seen.add(matches[0])
    assert len(seen) > 3
    assert np.array_equal(pxd.frame_augment.random_shift(0)(x, rng), x)


def test_random_rotation_moves_pixels_along_circles():
    n, side = 40, 41
    x = np.zeros((n, 2, 1, side, side), np.uint8)
    x[:, :, 0, 20, 35] = 1                             # 15 px right of the centre (20, 20)
    x[:, :, 0, 20, 20] = 2                             # the centre stays
    out = pxd.frame_augment.random_rotation(10)(x, np.random.default_rng(3))
    angles = []
    for b in range(n):
        assert np.array_equal(out[b, 0], out[b, 1]) and out[b, 0, 0, 20, 20] == 2
        ys, xs = np.nonzero(out[b, 0, 0] == 1)        # nearest-pixel sampling may copy it to a neighbour
        assert 1 <= len(ys) <= 2
        dy, dx = ys - 20, xs - 20
        assert np.all(np.abs(np.hypot(dy, dx) - 15) <= 1.0)
        angles.extend(np.degrees(np.arctan2(dy, dx)))
    angles = np.array(angles)
    assert np.all(np.abs(angles) <= 10 + 4)            # within the range, up to one pixel of rounding
    assert angles.min() < -3 and angles.max() > 3      # both ways
    assert np.array_equal(pxd.frame_augment.random_rotation(0)(x, np.random.default_rng(1)), x)
    with pytest.raises(DatasetError, match="max_degrees must lie in"):
        pxd.frame_augment.random_rotation(-1)
    with pytest.raises(DatasetError, match=r"\[samples, T, C, H, W\]"):
        pxd.frame_augment.random_rotation(5)(x[0], np.random.default_rng(1))
    chained = pxd.augment.chain(pxd.frame_augment.random_shift(16), pxd.frame_augment.random_rotation(5))
    assert chained.to_dict() == {"chain": [{"random_shift": {"max_pixels": 16}},
                                           {"random_rotation": {"max_degrees": 5.0}}]}
