"""Target sampling for structural plasticity: a uniform draw among the targets whose bit is clear in a
row's bitmask of connected targets (maintained by the row code), and magnitude selection.  Plain Python over numpy scalars, copied into generated modules (like the RNG) and
compiled there for the CPU or the GPU."""
from __future__ import annotations

import numpy as np

#: Functions code generation copies into generated modules, in dependency order.
KERNEL_FUNCTIONS = ("_mask_bit", "_sample_free", "_quickselect", "_kth_magnitude", "_col_remove", "_col_replace",
                    "_col_add")
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


def _quickselect(a, m, n):
    """The n-th smallest (0-based) of ``a[:m]``, reordering it in place (Hoare partition, median-of-three)."""
    lo = 0
    hi = m - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        left = lo
        right = hi
        while left <= right:
            while a[left] < pivot:
                left += 1
            while a[right] > pivot:
                right -= 1
            if left <= right:
                tmp = a[left]
                a[left] = a[right]
                a[right] = tmp
                left += 1
                right -= 1
        if n <= right:
            hi = right
        elif n >= left:
            lo = left
        else:
            return a[n]
    return a[n]


def _kth_magnitude(arr, i, rl, n, scratch):
    """The n-th smallest (0-based) |value| among row ``i``'s first ``rl`` entries of ``arr``; +inf when
    ``n`` is out of range.  ``scratch`` needs ``rl`` slots.

    Long rows: the ranks around n in a strided sample of 64 values bracket the answer; one branch-free
    pass counts the values below the bracket and compacts those inside it, and a quickselect on that
    small band finishes (quickselect on the whole row is branch-mispredict bound).  If the bracket misses,
    the whole row is selected."""
    if n < 0 or n >= rl:
        return np.inf
    if rl > 512:
        step = rl // 64
        for s in range(64):
            scratch[s] = abs(arr[i, s * step])
        r = (n * 64) // rl
        lo = -1.0 if r < 5 else _quickselect(scratch, 64, r - 5)
        hi = np.inf if r + 5 > 63 else _quickselect(scratch, 64, r + 5)
        below = 0
        m = 0
        for k in range(rl):
            x = abs(arr[i, k])
            below += x < lo
            scratch[m] = x  # always written, kept only if inside the bracket (no branch)
            m += (x >= lo) & (x <= hi)
        if below <= n < below + m:
            return _quickselect(scratch, m, n - below)
    for k in range(rl):
        scratch[k] = abs(arr[i, k])
    return _quickselect(scratch, rl, n)


# Incremental column-view maintenance (serial row kernels): entries are flat slot ids i * row_stride + k.
def _col_remove(collen, colsyn, j, syn):
    """Drop entry ``syn`` from target ``j``'s column (swap with the column's last entry)."""
    n = collen[j]
    for c in range(n):
        if colsyn[j, c] == syn:
            colsyn[j, c] = colsyn[j, n - 1]
            collen[j] = n - 1
            return


def _col_replace(collen, colsyn, j, old, new):
    """A synapse moved slots within its row: rewrite its entry in target ``j``'s column."""
    for c in range(collen[j]):
        if colsyn[j, c] == old:
            colsyn[j, c] = new
            return


def _col_add(collen, colsyn, j, syn):
    """Append ``syn`` to target ``j``'s column; False when the column is full."""
    n = collen[j]
    if n < colsyn.shape[1]:
        colsyn[j, n] = syn
        collen[j] = n + 1
        return True
    return False
