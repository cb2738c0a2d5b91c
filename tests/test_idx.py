"""IDX files and the MNIST-format image data sets: small files written by the tests (with struct, not the
reader) round-trip exactly, the encodings match plain-numpy computations of their documented rules, every
malformed file gives a clear error, and the real Fashion-MNIST loads when Debian's package is installed."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

import plastix.datasets as pxd
from plastix.datasets import DatasetError, DatasetNotFoundError, idx

# type code -> big-endian dtype, written out here independently of plastix.datasets.idx.IDX_TYPES
CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


# ---------------------------------------------------------------------------------------------- helpers
def idx_bytes(array, code: int) -> bytes:
    a = np.asarray(array)
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(CODES[code]).tobytes(order="C")


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_folder(folder, train, test, *, gz=(False, True, True, False), image_code=0x08, label_code=0x08):
    """The four standard files; ``gz`` says which are compressed (name + .gz), in train-images,
    train-labels, test-images, test-labels order."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [train[0], train[1], test[0], test[1]]
    names = [*NAMES["train"], *NAMES["test"]]
    codes = [image_code, label_code, image_code, label_code]
    for name, a, code, z in zip(names, arrays, codes, gz):
        write(folder / (name + (".gz" if z else "")), idx_bytes(a, code), z)
    return folder


def small_images(n, rows=4, cols=3, seed=0):
    """``n`` images of ``rows x cols`` pixels (a quarter of them blank) and labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    img[rng.random(img.shape) < 0.25] = 0
    img[0, 0, 0], img[0, 0, 1] = 255, 1                     # the extremes occur
    return img, np.arange(n) % 10


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    train, test = small_images(23), small_images(7, seed=1)
    return write_folder(tmp_path / "imgs", train, test), train, test


# ---------------------------------------------------------------------------------------------- IDX files
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("code", sorted(CODES))
def test_idx_round_trip(tmp_path, code, gz):
    rng = np.random.default_rng(code)
    dtype = np.dtype(CODES[code]).newbyteorder("=")
    if dtype.kind == "f":
        a = rng.normal(0, 1e3, size=(3, 5, 2)).astype(dtype)
        a.flat[:3] = [np.finfo(dtype).max, np.finfo(dtype).tiny, -0.0]
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, int(info.max) + 1, size=(3, 5, 2)).astype(dtype)
        a.flat[:2] = [info.min, info.max]
    for array in (a, a[:, 0, 0], a.reshape(2, 3, 1, 5)):      # 3, 1 and 4 dimensions
        path = write(tmp_path / f"x{array.ndim}", idx_bytes(array, code), gz)   # no .gz: told by content
        got = pxd.read_idx(path)
        assert got.dtype == dtype and got.dtype.isnative and got.shape == array.shape
        np.testing.assert_array_equal(got, array)
        assert got.tobytes() == np.ascontiguousarray(array).tobytes()   # bit-exact, -0.0 included


def test_idx_empty_and_scalar(tmp_path):
    got = pxd.read_idx(write(tmp_path / "e", idx_bytes(np.zeros((0, 28, 28), np.uint8), 0x08)))
    assert got.shape == (0, 28, 28)
    assert pxd.read_idx(write(tmp_path / "s", idx_bytes(np.int32(-7), 0x0C))) == -7


def test_idx_errors(tmp_path):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)
    with pytest.raises(DatasetNotFoundError, match="nothere.idx: no such file"):
        pxd.read_idx(tmp_path / "nothere.idx")
    cases = {
        "short": (b"\0\0", r"2 bytes is too short for an IDX header"),
        "magic": (b"\x01" + good[1:], r"bad IDX magic number 0x01000802"),
        "type": (b"\0\0\x0a\x02" + good[4:], r"bad IDX magic number 0x00000A02.*0x08, 0x09, 0x0B"),
        "header": (good[:10], r"truncated: the header announces 2 dimensions \(12 header bytes\) but the file "
                              r"has 10 bytes"),
        "data": (good[:-1], r"truncated: .*3 x 4 uint8 array \(12 data bytes\) but only 11 follow"),
        "trailing": (good + b"\0\0", r"2 bytes follow the 12 data bytes"),
    }
    for name, (data, message) in cases.items():
        path = write(tmp_path / name, data)
        with pytest.raises(DatasetError, match=message) as e:
            pxd.read_idx(path)
        assert str(path) in str(e.value)
    with pytest.raises(DatasetError, match=r"data: truncated"):
        idx.decode_idx(idx_bytes(np.zeros((2, 2), np.float64), 0x0E)[:-8])
    z = gzip.compress(good)
    with pytest.raises(DatasetError, match="truncated gzip file"):
        pxd.read_idx(write(tmp_path / "cut.gz", z[:len(z) // 2]))
    damaged = bytearray(z)
    damaged[-8] ^= 0xFF                                       # the CRC no longer matches
    with pytest.raises(DatasetError, match="damaged gzip file"):
        pxd.read_idx(write(tmp_path / "crc.gz", bytes(damaged)))


# ---------------------------------------------------------------------------------------------- encodings
def test_latency_times_are_exact(folder):
    path, (img, lab), (timg, tlab) = folder
    ds = pxd.load("mnist", data_dir=path, encoding="latency", t_max=10.0)
    assert ds.num_units == 12 and ds.num_classes == 10 and ds.duration_ms == 10.0
    assert (len(ds.train), len(ds.test)) == (23, 7)
    for split, images, labels in ((ds.train, img, lab), (ds.test, timg, tlab)):
        for j in range(len(images)):
            r, c = np.nonzero(images[j])                       # every non-zero pixel once
            v = images[j][r, c].astype(np.float64)
            t_ref, u_ref = 10.0 * (1.0 - v / 255.0), r * 3 + c
            order = np.lexsort((u_ref, t_ref))
            t, u, label = split.sample(j)
            np.testing.assert_array_equal(u, u_ref[order])
            np.testing.assert_allclose(t, t_ref[order], rtol=0, atol=1e-12)
            assert label == labels[j]
    t, u, _ = ds.train.sample(0)
    assert t[0] == 0.0 and u[0] == 0                           # pixel 255 at once


def test_rate_matches_numpy_and_is_seeded_per_sample(folder):
    path, (img, lab), (timg, tlab) = folder
    ds = pxd.load("mnist", data_dir=path, steps=7, seed=5, dt=0.5)
    assert ds.duration_ms == 3.5 and ds.train.default_steps() == 7
    for key, split, images in ((0, ds.train, img), (1, ds.test, timg)):
        dense = split.to_dense()
        for j in range(len(images)):
            u = np.random.default_rng([5, key, j]).random((7, 12))
            np.testing.assert_array_equal(dense[j], u < images[j].reshape(-1) / 255.0)
        t, _, _ = split.sample(1)
        np.testing.assert_array_equal(np.mod(t, 0.5), 0)   # spikes on step starts, k * dt ms
    again = pxd.load("mnist", data_dir=path, steps=7, seed=5, dt=0.5)
    np.testing.assert_array_equal(again.train.times_ms, ds.train.times_ms)
    np.testing.assert_array_equal(again.train.units, ds.train.units)
    other = pxd.load("mnist", data_dir=path, steps=7, seed=6, dt=0.5)
    assert not np.array_equal(other.train.to_dense(), ds.train.to_dense())
    # a subset encodes each of its samples exactly as the full load does
    sub = pxd.load("mnist", data_dir=path, steps=7, seed=5, dt=0.5, max_train=10, max_test=3)
    kept = idx.stratified_head(lab, 10)
    np.testing.assert_array_equal(sub.train.to_dense(), ds.train.to_dense()[kept])
    np.testing.assert_array_equal(sub.train.labels, lab[kept])


def test_rate_statistics():
    """Per-step probability pixel / 255, independent across steps."""
    values = np.arange(256)
    t, u = pxd.bernoulli(values, 4000, seed=11, vmin=0, vmax=255)
    counts = np.bincount(u, minlength=256)
    p = values / 255.0
    sigma = np.sqrt(4000 * p * (1 - p))
    assert counts[0] == 0 and counts[255] == 4000
    assert np.all(np.abs(counts - 4000 * p) <= 5 * sigma + 1e-9)
    z = (counts - 4000 * p)[1:-1] / sigma[1:-1]                 # standardised: mean 0, sd 1 over 254 pixels
    assert abs(z.mean()) < 0.35 and 0.8 < z.std() < 1.2
    dense = np.zeros((4000, 256), bool)
    dense[(t / 1.0).astype(int), u] = True
    both = (dense[1:] & dense[:-1]).mean(axis=0)              # consecutive steps: p**2 if redrawn every step
    var = (p ** 2 * (1 - p ** 2) + 2 * p ** 3 * (1 - p)) / 3999  # overlapping pairs share a step
    assert np.all(np.abs(both - p ** 2) <= 5 * np.sqrt(var) + 1e-9)
    # the documented identity with rate(): max_rate = 1000 / dt Hz
    t2, u2 = pxd.rate(values, 50, 1000.0, seed=3, vmin=0, vmax=255)
    t3, u3 = pxd.bernoulli(values, 50, seed=3, vmin=0, vmax=255)
    np.testing.assert_array_equal(t2, t3)
    np.testing.assert_array_equal(u2, u3)
    with pytest.raises(DatasetError, match="steps must be >= 1"):
        pxd.bernoulli(values, 0)
    with pytest.raises(DatasetError, match="dt must be a positive"):
        pxd.bernoulli(values, 3, dt=0.0)


# ---------------------------------------------------------------------------------------------- subsets
def test_stratified_head_by_hand():
    labels = np.array([0, 0, 1, 0, 1, 2, 0, 1])                 # sizes 4, 3, 1
    # count 4: exact shares 2, 1.5, 0.5 -> floors 2, 1, 0; one left, remainders tie -> class 1
    np.testing.assert_array_equal(idx.stratified_head(labels, 4), [0, 1, 2, 4])
    # count 3: shares 1.5, 1.125, 0.375 -> 1, 1, 0; one left -> class 0 (remainder .5)
    np.testing.assert_array_equal(idx.stratified_head(labels, 3), [0, 1, 2])
    np.testing.assert_array_equal(idx.stratified_head(labels, 8), np.arange(8))
    np.testing.assert_array_equal(idx.stratified_head(labels, None), np.arange(8))
    for bad in (0, 9, 2.5, True, "3"):
        with pytest.raises(DatasetError, match=r"max_train must be an integer in 1\.\.8"):
            idx.stratified_head(labels, bad, name="max_train")


def test_subsets_and_validation_split(folder):
    path, (img, lab), _ = folder
    ds = pxd.load("mnist", data_dir=path, encoding="latency", max_train=20, max_test=5)
    assert (len(ds.train), len(ds.test)) == (20, 5)
    assert np.bincount(ds.train.labels, minlength=10).tolist() == [2] * 10   # 23 = 3+3+3 + 7*2 -> 2 each
    assert ds.info["samples"] == {"train": "20 of 23", "test": "5 of 7"}
    v = ds.validation_split(0.5)
    assert len(v.train) == 10 and len(v.test) == 10 and v.info["validation_fraction"] == 0.5
    with pytest.raises(DatasetError, match=r"max_test must be an integer in 1\.\.7"):
        pxd.load("mnist", data_dir=path, max_test=8)


# ---------------------------------------------------------------------------------------------- finding files
def test_search_order(tmp_path, monkeypatch):
    train, test = small_images(10), small_images(10, seed=2)
    env = write_folder(tmp_path / "env" / "FashionMNIST" / "raw", train, test, gz=(True,) * 4)
    system = write_folder(tmp_path / "debian", test, train, gz=(False,) * 4)   # train and test swapped
    monkeypatch.setattr(idx, "SYSTEM_DIRS", {"fashion_mnist": (str(system),), "mnist": ()})
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    sys_ds = pxd.load("fashion_mnist", encoding="latency")                  # nothing else set: the system folder
    assert sys_ds.info["source"]["train"][0] == str(system / "train-images-idx3-ubyte")
    assert sys_ds.info["classes"][9] == "Ankle boot"
    monkeypatch.setenv("PLASTIX_DATA_DIR", str(tmp_path / "env"))
    env_ds = pxd.load("fashion_mnist", encoding="latency")                   # $PLASTIX_DATA_DIR before it
    assert env_ds.info["source"]["test"][1] == str(env / "t10k-labels-idx1-ubyte.gz")
    assert not np.array_equal(env_ds.train.to_dense(), sys_ds.train.to_dense())
    with pytest.raises(DatasetNotFoundError) as e:                        # a given data_dir is the only place
        pxd.load("fashion_mnist", data_dir=tmp_path / "empty")
    msg = str(e.value)
    assert str(tmp_path / "empty") in msg and "train-images-idx3-ubyte[.gz]" in msg
    assert str(system) not in msg and "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(DatasetNotFoundError, match="mnist: expected"):       # mnist has no system folder
        pxd.load("mnist")


def test_missing_and_partial_folders(folder, tmp_path):
    path, _, _ = folder
    (path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"has only some of them; missing: t10k-labels-idx1-ubyte") as e:
        pxd.load("mnist", data_dir=path)
    assert isinstance(e.value, FileNotFoundError)


def test_bad_files_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    img, lab = small_images(6)
    cases = [
        ((img, lab[:5]), r"train-images-idx3-ubyte has 6 images but .*train-labels-idx1-ubyte.* has 5 labels"),
        ((img, np.r_[lab[:5], 10]), r"labels must lie in 0\.\.9; image 5 has label 10"),
        ((img, np.r_[lab[:5], -1]), r"labels must lie in 0\.\.9; image 5 has label -1"),
        ((img[:, :, 0], lab), r"holds \[n, rows, cols\] unsigned bytes .* 2 dimensions"),
        ((img, lab.reshape(2, 3)), r"one integer per image .* 2 dimensions"),
    ]
    for k, (train, message) in enumerate(cases):
        write_folder(tmp_path / str(k), train, (img, lab), label_code=0x09)
        with pytest.raises(DatasetError, match=message):
            pxd.load("mnist", data_dir=tmp_path / str(k))
    write_folder(tmp_path / "i16", (img, lab), (img, lab), image_code=0x0B)
    with pytest.raises(DatasetError, match=r"unsigned bytes .* of int16"):
        pxd.load("mnist", data_dir=tmp_path / "i16")
    write_folder(tmp_path / "f", (img, lab), (img, lab), label_code=0x0D)
    with pytest.raises(DatasetError, match=r"one integer per image .* of float32"):
        pxd.load("mnist", data_dir=tmp_path / "f")
    write_folder(tmp_path / "shape", (img, lab), (img[:, :3, :2].copy(), lab))
    with pytest.raises(DatasetError, match=r"train images are \(4, 3\) pixels but test images \(3, 2\)"):
        pxd.load("mnist", data_dir=tmp_path / "shape")


def test_bad_options(folder):
    path, _, _ = folder
    for opts, message in (({"encoding": "poisson"}, r"encoding must be one of 'rate', 'latency'"),
                          ({"steps": 0}, r"steps must be an integer >= 1"),
                          ({"seed": -1}, r"seed must be an integer >= 0"),
                          ({"encoding": "latency", "t_max": 0}, r"t_max must be a positive number of ms"),
                          ({"dt": -1.0}, r"dt must be a positive number of ms"),
                          ({"max_rate": 5}, r"'mnist' has no option max_rate")):
        with pytest.raises(DatasetError, match=message):
            pxd.load("mnist", data_dir=path, **opts)


# ---------------------------------------------------------------------------------------------- the real files
def _debian_files():
    names = [n + ".gz" for pair in NAMES.values() for n in pair]
    return all(os.path.isfile(os.path.join(idx.DEBIAN_FASHION_MNIST, n)) for n in names)


@pytest.mark.skipif(not _debian_files(), reason=f"Fashion-MNIST is not in {idx.DEBIAN_FASHION_MNIST} "
                                                "(apt-get install dataset-fashion-mnist installs it)")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("PLASTIX_DATA_DIR", raising=False)
    raw = idx.load_images("fashion_mnist")
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = raw[split]
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [n // 10] * 10
    ds = pxd.load("fashion_mnist", max_train=200, max_test=50)
    assert ds.num_units == 784 and ds.num_classes == 10 and ds.train.default_steps() == 20
    assert np.bincount(ds.train.labels).tolist() == [20] * 10
    # mean spikes per image: 20 steps * the images' summed intensity
    x = raw["train"][0][idx.stratified_head(raw["train"][1], 200)].reshape(200, -1) / 255.0
    expected = 20 * x.sum()
    assert abs(len(ds.train.times_ms) - expected) < 5 * np.sqrt(expected)


# ---------------------------------------------------------------------------------------------- plastix train
def _cli_error(capsys, argv) -> str:
    from plastix.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_train_cli_loads_image_sets(folder, capsys):
    from plastix.cli.main import _parser
    from plastix.cli.train import load_dataset

    path, (img, lab), _ = folder
    args = _parser().parse_args(["train", "--dataset", "mnist", "--data-dir", str(path), "--encoding", "latency",
                                 "--max-train", "10", "--max-test", "3", "--dt", "0.5"])
    ds = load_dataset(args)
    assert (len(ds.train), len(ds.test), ds.dt) == (10, 3, 0.5) and ds.info["encoding"] == "latency"
    np.testing.assert_array_equal(ds.train.labels, lab[idx.stratified_head(lab, 10)])
    assert _cli_error(capsys, ["train", "--dataset", "randman", "--max-train", "10"]).endswith(
        "--max-train applies to --dataset fashion_mnist or mnist only")
    assert _cli_error(capsys, ["train", "--dataset", "shd", "--encoding", "rate"]).endswith(
        "--encoding applies to --dataset digits, fashion_mnist or mnist only")
    assert "argument --max-test: must be an integer >= 1, got '0'" in _cli_error(
        capsys, ["train", "--dataset", "mnist", "--max-test", "0"])
    assert _cli_error(capsys, ["train", "--dataset", "mnist", "--data-dir", str(path), "--max-train", "24"]).endswith(
        "max_train must be an integer in 1..23 (the samples in the file), got 24")


def test_absurd_header_sizes_are_truncation(tmp_path):
    header = bytes([0, 0, 0x08, 4]) + struct.pack(">4I", *[2**32 - 1] * 4)
    with pytest.raises(DatasetError, match=r"truncated: .*4294967295 x 4294967295"):
        pxd.read_idx(write(tmp_path / "big", header + b"\0" * 8))
