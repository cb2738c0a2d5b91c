"""Target sampling for structural plasticity: a uniform draw among the targets whose bit is clear in a
row's bitmask of connected targets (maintained by the row code), and magnitude selection.  Plain Python over numpy scalars, copied into generated modules (like the RNG) and
compiled there for the CPU or the GPU."""
from __future__ import annotations

import numpy as np

#: Functions code generation copies into generated modules, in dependency order.
KERNEL_FUNCTIONS = ("_mask_bit", "_sample_free", "_kth_magnitude")
_REJECTION_ATTEMPTS = 32


def _mask_bit(mask, j):
    return (mask[j >> 5] >> np.uint32(j & 31)) & np.uint32(1)


def _sample_free(mask, n_post, seed, elem, step, call, stream):
    """Uniformly random target in [0, n_post) whose bit is clear, or -1 when none is.  Draw ``a`` of call
    ``call`` uses Philox counter ``call * 256 + a``: rejection sampling first (cheap while rows are
    sparse), then an exact pick of the r-th free target."""
    base = call * 256
    for attempt in range(32):
        j = int(uniform(seed, elem, step, base + attempt, stream) * n_post)  # noqa: F821 (generated module)
        if j >= n_post:
            j = n_post - 1
        if _mask_bit(mask, j) == 0:
            return j
    free = 0
    for j in range(n_post):
        if _mask_bit(mask, j) == 0:
            free += 1
    if free == 0:
        return -1
    r = int(uniform(seed, elem, step, base + 255, stream) * free)  # noqa: F821
    for j in range(n_post):
        if _mask_bit(mask, j) == 0:
            if r == 0:
                return j
            r -= 1
    return -1


def _kth_magnitude(arr, i, rl, n, scratch):
    """The n-th smallest (0-based) |value| among row ``i``'s first ``rl`` entries of ``arr``; +inf when
    ``n`` is out of range.  In-place quickselect (median-of-three pivots) on ``scratch`` (no allocation)."""
    if n < 0 or n >= rl:
        return np.inf
    for k in range(rl):
        scratch[k] = abs(arr[i, k])
    lo = 0
    hi = rl - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        a, b, c = scratch[lo], scratch[mid], scratch[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        left = lo
        right = hi
        while left <= right:
            while scratch[left] < pivot:
                left += 1
            while scratch[right] > pivot:
                right -= 1
            if left <= right:
                tmp = scratch[left]
                scratch[left] = scratch[right]
                scratch[right] = tmp
                left += 1
                right -= 1
        if n <= right:
            hi = right
        elif n >= left:
            lo = left
        else:
            return scratch[n]
    return scratch[n]
