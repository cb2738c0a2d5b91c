"""Counter-based Philox: known-answer vectors, identical results from numpy and compiled code, statistics."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from plastix.kernels import rng

# Philox-4x32-10 known-answer tests (published with the Random123 library): counter, key -> output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,out", KAT)
def test_philox_known_answers(ctr, key, out):
    got = rng.philox4x32(*ctr, *key)
    assert tuple(int(x) for x in got) == out
    jit = numba.njit(rng.philox4x32)
    assert tuple(int(x) for x in jit(*[np.uint64(c) for c in ctr], *[np.uint64(k) for k in key])) == out


def _compiled():
    """numba copies of the kernel functions, each seeing the compiled versions of the ones before it."""
    import math

    src_globals = dict(vars(rng), _sqrt=math.sqrt, _log=math.log, _cos=math.cos)
    for name in rng.KERNEL_FUNCTIONS:
        fn = getattr(rng, name)
        src_globals[name] = numba.njit(type(fn)(fn.__code__, src_globals, name))
    return src_globals["uniform"], src_globals["normal"]


def test_numpy_and_numba_agree_and_statistics():
    uni, nor = _compiled()
    elem = np.arange(20000, dtype=np.uint64)
    u = rng.uniform(np.uint64(12345), elem, np.uint64(7), np.uint64(0), np.uint64(3))
    z = rng.normal(np.uint64(12345), elem, np.uint64(7), np.uint64(0), np.uint64(3))
    for k in (0, 17, 19999):
        assert uni(np.uint64(12345), np.uint64(k), np.uint64(7), np.uint64(0), np.uint64(3)) == u[k]
        got = nor(np.uint64(12345), np.uint64(k), np.uint64(7), np.uint64(0), np.uint64(3))
        assert got == pytest.approx(z[k], rel=1e-14)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1) < 0.03
    # different counters give independent-looking streams
    u2 = rng.uniform(np.uint64(12345), elem, np.uint64(8), np.uint64(0), np.uint64(3))
    assert abs(np.corrcoef(u, u2)[0, 1]) < 0.05


def test_stream_ids_are_stable():
    assert rng.stream_id("p0", "threshold") == rng.stream_id("p0", "threshold")
    assert rng.stream_id("p0", "threshold") != rng.stream_id("p1", "threshold")
    assert 0 <= rng.stream_id("x") < 2**32


def test_kth_magnitude_selection_matches_numpy():
    """Row-code selection (sampled bracket + band quickselect, full quickselect fallback) against numpy."""
    import math

    import inspect

    from plastix.kernels import sampling

    ns = {"np": np}
    for name in ("_select_range", "_quickselect", "_kth_magnitude"):  # compiled as generated modules do
        exec(inspect.getsource(getattr(sampling, name)), ns)
        ns[name] = numba.njit(ns[name])
    kth = ns["_kth_magnitude"]
    rng = np.random.default_rng(4)
    for rl in (1, 7, 300, 513, 1000, 2048):
        for dist in ("normal", "ties", "skewed"):
            row = {"normal": rng.normal(size=rl), "ties": rng.integers(-3, 4, rl).astype(float),
                   "skewed": rng.exponential(size=rl) ** 4}[dist]
            arr = np.zeros((2, rl + 5))
            arr[1, :rl] = row
            want = np.sort(np.abs(row))
            for n in sorted({0, 1, rl // 10, rl // 2, rl - 2, rl - 1}):
                if not 0 <= n < rl:
                    continue
                got = kth(arr, 1, rl, n, np.zeros(rl + 5))
                assert got == want[n], (rl, dist, n)
            assert math.isinf(kth(arr, 1, rl, rl, np.zeros(rl + 5)))
