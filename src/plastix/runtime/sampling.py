"""Target sampling for structural plasticity: a uniform draw among the targets whose bit is clear in a
row's bitmask of connected targets (maintained by the row code), and magnitude selection.  Plain Python over numpy scalars, copied into generated modules (like the RNG) and
compiled there for the CPU or the GPU."""
from __future__ import annotations

import numpy as np

#: Functions code generation copies into generated modules, in dependency order.
KERNEL_FUNCTIONS = ("_mask_bit", "_sample_free_exact", "_quickselect", "_select_range", "_kth_magnitude",
                    "_weakest_slots", "_col_remove", "_col_replace", "_col_add")
_REJECTION_ATTEMPTS = 32


def _mask_bit(mask, j):
    return (mask[j >> 5] >> np.uint32(j & 31)) & np.uint32(1)


def _sample_free_exact(mask, n_post, seed, elem, step, draw, stream):
    """The r-th free target (bit clear) of the row, r uniform among them (one draw), or -1 when every
    target is taken.  The slow path of ``row.sample_free()``, taken after 32 rejected candidates (the row
    is nearly full): O(n_post)."""
    free = 0
    for j in range(n_post):
        if _mask_bit(mask, j) == 0:
            free += 1
    if free == 0:
        return -1
    r = int(uniform(seed, elem, step, draw, stream) * free)  # noqa: F821 (generated module)
    for j in range(n_post):
        if _mask_bit(mask, j) == 0:
            if r == 0:
                return j
            r -= 1
    return -1


def _quickselect(a, m, n):
    """The n-th smallest (0-based) of ``a[:m]``, reordering it in place."""
    return _select_range(a, 0, m, n)


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


def _select_range(a, lo, hi, n):
    """The value of rank ``n`` (an index in [lo, hi)) of ``a[lo:hi]``, reordering that range in place
    (Hoare partition, median-of-three pivot)."""
    hi -= 1
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


def _weakest_slots(arr, i, rl, n, scratch):
    """Slots of the ``n`` smallest ``|arr[i, k]|``, k < rl (ties: lowest slots first), written in
    ascending order to ``scratch[:count]`` (as floats); returns count (n clipped to [0, rl]).

    Long rows: a strided sample of 64 values, ranked by counting (branch-free), brackets the n-th
    smallest value; one branch-free pass over the row keeps the slots at or below the bracket's top
    (about n + 2 * 7 / 64 of the row: the only ones that can go).  The exact threshold is then found
    among the values inside the bracket by linear histograms of 64 bins (each level keeps one bin, a few
    levels leave a handful of values; quickselect is branch-mispredict bound at ~10 ns a value), and the
    removal set is read off the kept slots.  Short rows, too little scratch, or a bracket that misses
    (about 1 row in 1000): the whole row is quickselected."""
    if n <= 0:
        return 0
    if n >= rl:
        for k in range(rl):
            scratch[k] = k
        return rl
    ns = scratch.shape[0]
    t = 0.0
    m = 0
    lt = -1  # number of values < t, when known without a count
    tlt = 0
    found = False
    if rl >= 512:
        step = rl // 64
        for s in range(64):
            scratch[s] = abs(arr[i, s * step])
        r = ((n - 1) * 64) // rl  # the sample rank expected for the largest value removed
        lo = -1.0
        hi = np.inf
        for s in range(64):  # rank of each sample value (ties by position), by counting
            v = scratch[s]
            c = 0
            for q in range(64):
                c += scratch[q] < v
            for q in range(s):
                c += scratch[q] == v
            if c == r - 7:
                lo = v
            if c == r + 7:
                hi = v
        below = 0
        for k in range(rl):
            x = abs(arr[i, k])
            scratch[m] = k  # always written, kept only when x <= hi (no branch)
            m += x <= hi
            below += x < lo
        band = m - below
        if below < n <= m and m + band + 65 < ns:
            # the band's values after the kept slots, then 64 histogram bins
            b0 = m
            b1 = m
            for q in range(m):
                x = abs(arr[i, int(scratch[q])])
                scratch[b1] = x
                b1 += x >= lo
            want = n - 1 - below  # rank of the threshold inside the band
            lt = below  # band values in bins below the kept one are < t: counted as they are dropped
            while b1 - b0 > 16:
                vmin = scratch[b0]
                vmax = scratch[b0]
                for q in range(b0 + 1, b1):
                    vmin = min(vmin, scratch[q])
                    vmax = max(vmax, scratch[q])
                if not vmax > vmin:
                    break
                scale = 63.999 / (vmax - vmin)
                hb = b1
                for q in range(64):
                    scratch[hb + q] = 0.0
                for q in range(b0, b1):
                    scratch[hb + min(max(int((scratch[q] - vmin) * scale), 0), 63)] += 1.0
                tb = 0
                acc = 0
                while acc + scratch[hb + tb] <= want:
                    acc += int(scratch[hb + tb])
                    tb += 1
                cnt = int(scratch[hb + tb])
                if cnt == b1 - b0:  # no progress (infinite values)
                    break
                want -= acc
                lt += acc
                c = b0
                for q in range(b0, b1):
                    x = scratch[q]
                    scratch[c] = x
                    c += min(max(int((x - vmin) * scale), 0), 63) == tb
                b1 = b0 + cnt
            if b1 - b0 <= 16:  # rank by counting: no branches to mispredict
                for q in range(b0, b1):
                    v = scratch[q]
                    c_lt = 0
                    c_le = 0
                    for u in range(b0, b1):
                        c_lt += scratch[u] < v
                        c_le += scratch[u] <= v
                    if c_lt <= want < c_le:
                        t = v
                        tlt = c_lt
                lt += tlt
            else:  # all equal (or infinite values)
                t = _select_range(scratch, b0, b1, b0 + want)
                lt = -1
            found = True
    if not found:
        for k in range(rl):
            scratch[k] = abs(arr[i, k])
        t = _select_range(scratch, 0, rl, n - 1)
        m = 0
        for k in range(rl):
            x = abs(arr[i, k])
            scratch[m] = k
            m += x <= t
    # t is the largest value removed: every slot below it goes, then the lowest slots equal to it
    if lt < 0:
        lt = 0
        for q in range(m):
            lt += abs(arr[i, int(scratch[q])]) < t
    ties = n - lt
    h = 0
    for q in range(m):
        k = scratch[q]
        x = abs(arr[i, int(k)])
        tie = x == t
        take = (x < t) | (tie & (ties > 0))
        ties -= tie & take
        scratch[h] = k
        h += take
    return h


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
