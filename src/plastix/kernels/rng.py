"""Counter-based random numbers (Philox-4x32-10).

Every draw is a pure function of (seed, element, step, draw number, stream), so results never depend on
thread count, kernel launch order or how a run is split into calls.  The functions are written once in
plain Python over ``np.uint64`` so that the same source runs

* vectorised over numpy arrays (plain-numpy references and tests),
* inside ``numba.njit`` code (CPU backend), and
* inside ``numba.cuda.jit(device=True)`` code (CUDA backend).

All 32-bit arithmetic is carried in uint64 with explicit masks: numba would otherwise promote mixed
signed/unsigned integer expressions to float64.
"""
from __future__ import annotations

import math

import numpy as np

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_SH5 = np.uint64(5)
_SH6 = np.uint64(6)
_TWO26 = 67108864.0
_TWO53 = 9007199254740992.0
_TWO_PI = 2.0 * math.pi

# Bound to numpy here (vectorised use); generated kernels rebind them to math.* for scalar code.
_sqrt = np.sqrt
_log = np.log
_cos = np.cos

#: Functions that code generation copies into generated modules, in dependency order.
KERNEL_FUNCTIONS = ("philox4x32", "_words_to_unit", "uniform", "_normal_words", "normal", "batch_seed")
KERNEL_CONSTANTS = ("_MASK32", "_SHIFT32", "_M0", "_M1", "_W0", "_W1", "_SH5", "_SH6", "_TWO26", "_TWO53", "_TWO_PI",
                    "_BATCH_MIX")
#: Odd 64-bit constant (2**64 / golden ratio) that spreads batch indices over the key space.
_BATCH_MIX = np.uint64(0x9E3779B97F4A7C15)


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox-4x32 with 10 rounds.  Inputs and outputs are uint64 holding 32-bit words."""
    c0 = np.uint64(c0) & _MASK32
    c1 = np.uint64(c1) & _MASK32
    c2 = np.uint64(c2) & _MASK32
    c3 = np.uint64(c3) & _MASK32
    k0 = np.uint64(k0) & _MASK32
    k1 = np.uint64(k1) & _MASK32
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _SHIFT32
        lo0 = p0 & _MASK32
        hi1 = p1 >> _SHIFT32
        lo1 = p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def batch_seed(seed, b):
    """The Philox key of batch element ``b`` of a run seeded ``seed``: ``seed xor (b * _BATCH_MIX) mod 2**64``.
    Element 0 keeps ``seed``, so a batch of one draws what an unbatched run draws.  (Kernel version: uint64
    arithmetic wraps; :func:`host_batch_seed` is the same on the host.)"""
    # the product in 32-bit halves (b < 2**32): no intermediate wraps, so numpy (the CUDA simulator)
    # does not warn and every backend gives the same bits
    bb = np.uint64(b) & _MASK32
    lo = bb * (_BATCH_MIX & _MASK32)
    hi = (bb * (_BATCH_MIX >> _SHIFT32) + (lo >> _SHIFT32)) & _MASK32
    return np.uint64(seed) ^ ((hi << _SHIFT32) | (lo & _MASK32))


def host_batch_seed(seed: int, b: int) -> int:
    """:func:`batch_seed` in Python integers (numpy scalars warn on the wrapping multiply)."""
    return (int(seed) ^ (int(b) * int(_BATCH_MIX))) & 0xFFFFFFFFFFFFFFFF


def _words_to_unit(a, b):
    """53-bit uniform double in [0, 1) from two 32-bit words."""
    return ((a >> _SH5) * _TWO26 + (b >> _SH6)) / _TWO53


def uniform(seed, element, step, draw, stream):
    """Uniform float64 in [0, 1) for (seed, element, step, draw, stream)."""
    s = np.uint64(seed)
    r0, r1, r2, r3 = philox4x32(element, step, draw, stream, s & _MASK32, s >> _SHIFT32)
    return _words_to_unit(r0, r1)


def _normal_words(r0, r1, r2, r3):
    """Standard normal float64 from one Philox block's four words (Box-Muller)."""
    u1 = 1.0 - _words_to_unit(r0, r1)  # in (0, 1]: log is finite
    u2 = _words_to_unit(r2, r3)
    return _sqrt(-2.0 * _log(u1)) * _cos(_TWO_PI * u2)


def normal(seed, element, step, draw, stream):
    """Standard normal float64 (Box-Muller on one Philox block)."""
    s = np.uint64(seed)
    r0, r1, r2, r3 = philox4x32(element, step, draw, stream, s & _MASK32, s >> _SHIFT32)
    return _normal_words(r0, r1, r2, r3)


def stream_id(*parts: str) -> int:
    """Stable 32-bit stream number for a named phase of a named group (FNV-1a of the parts)."""
    h = 0x811C9DC5
    for byte in "/".join(parts).encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h
