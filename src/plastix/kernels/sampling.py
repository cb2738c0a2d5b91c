"""Target sampling for structural plasticity: a uniform draw among the targets whose bit is clear in a
row's bitmask of connected targets (maintained by the row code), and magnitude selection.  Plain Python
over numpy scalars, copied into generated modules (like the RNG) and compiled there for the CPU or the
GPU."""
from __future__ import annotations

import numpy as np

#: Functions code generation copies into generated modules, in dependency order.
KERNEL_FUNCTIONS = ("_mask_bit", "_sample_free_exact", "_quickselect", "_select_range", "_kth_magnitude",
                    "_row_count_le", "_span_count_le", "_span_count_eq", "_next_guess", "_narrowed",
                    "_first_guess", "_weakest_slots",
                    "_col_remove", "_col_replace", "_col_add")
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


def _row_count_le(arr, i, rl, g):
    """Number of |arr[i, k]| <= g, k < rl (branch-free and vectorised: ~0.04 ns a value from L1)."""
    c = 0
    for k in range(rl):
        c += abs(arr[i, k]) <= g
    return c


def _span_count_le(a, start, stop, g):
    c = 0
    for q in range(start, stop):
        c += a[q] <= g
    return c


def _next_guess(lo, clo, hi, chi, target, bisect):
    """The next threshold to count inside the bracket (lo, hi] (count(<= lo) = clo, count(<= hi) =
    chi): interpolated toward rank ``target``, or the midpoint when ``bisect`` or when interpolation
    leaves the bracket.  The caller stops when even the midpoint is not strictly inside (lo, hi)."""
    base = max(lo, 0.0)  # no |value| is below 0
    g = 0.5 * (base + hi) if bisect else base + (hi - base) * (target - clo) / (chi - clo)
    if not (g > lo and g < hi):
        g = 0.5 * (base + hi)
    return g


def _narrowed(g, c, n, lo, clo, hi, chi):
    """The bracket after counting c values <= g: (lo, clo, hi, chi, bisect next, no progress)."""
    width = chi - clo
    if c >= n:
        hi = g
        chi = c
    else:
        lo = g
        clo = c
    return lo, clo, hi, chi, 2 * (chi - clo) > width, chi - clo == width


def _span_count_eq(a, start, stop, g):
    c = 0
    for q in range(start, stop):
        c += a[q] == g
    return c


def _first_guess(arr, i, rl, n, scratch):
    """A first threshold for the n-th smallest |arr[i, k]|: the previous row's threshold (scratch's last
    slot: > 0 the threshold, -1 a threshold of 0, anything else none yet), else the value of a strided
    sample of 16 just above the n-th's expected rank; +inf when that sample value is not finite."""
    ns = scratch.shape[0]
    hint = scratch[ns - 1] if ns > 1 else 0.0
    if hint > 0.0 and hint < np.inf:
        return hint
    if hint == -1.0:
        return 0.0
    g = np.inf
    ss = min(16, rl)
    step = rl // ss
    for q in range(ss):
        x = abs(arr[i, q * step])
        scratch[q] = x if x == x else np.inf
    r = min(ss - 1, (n * ss) // rl + 2)
    for q in range(ss):  # rank by counting (ties by position): no branches to mispredict
        v = scratch[q]
        c = 0
        for u in range(ss):
            c += (scratch[u] < v) | ((scratch[u] == v) & (u < q))
        g = v if c == r else g
    return g


def _weakest_slots(arr, i, rl, n, scratch):
    """Slots of the ``n`` smallest ``|arr[i, k]|``, k < rl (ties: lowest slots first; NaN counts as
    +inf), written in ascending order to ``scratch[:count]`` (as floats); returns count (n clipped to
    [0, rl]).

    Counting is the cheap primitive (a branch-free, vectorised pass; the row stays in L1), so the
    threshold is found by counting, not by moving values.  A bracket (lo, hi] with count(<= lo) < n <=
    count(<= hi), started from the previous row's threshold (kept in scratch's last slot) or a strided
    sample of 16, is narrowed over the row by interpolation (bisection when a step gains little) until
    hi keeps at most n + 16 values (exactly n: those are the answer); one branch-free pass compacts
    those candidates' slots into scratch, their values are gathered, the same narrowing on them leaves
    a band of a few values ranked by counting (quickselected when ties defeat the narrowing), which gives
    the exact threshold t and the number of values below it; a last pass keeps the candidates below t
    and the lowest-slot ties.  Rows with infinite or NaN values among the n, ties that defeat the
    narrowing, and scratch too short for the candidates take a whole-row quickselect instead."""
    if n <= 0:
        return 0
    if n >= rl:
        for k in range(rl):
            scratch[k] = k
        return rl
    ns = scratch.shape[0]
    found = False
    t = 0.0
    lt = 0
    m = 0
    off = -1
    g = _first_guess(arr, i, rl, n, scratch)  # 0.
    lo = -1.0
    clo = 0
    hi = g
    chi = 0
    if g < np.inf:
        chi = _row_count_le(arr, i, rl, g)
        grow = 1.25
        it = 0
        while chi < n and it < 64:  # too low: it becomes lo; grow until count(<= hi) >= n
            it += 1
            lo = hi
            clo = chi
            hi = grow * hi if hi > 0.0 else 1.0
            grow = 2.0
            if not hi < np.inf:
                break  # infinite or NaN values among the n: the quickselect below
            chi = _row_count_le(arr, i, rl, hi)
    if chi >= n:
        # 1. narrow over the row until hi keeps at most n + 16 values (aim for n + 8)
        bisect = False
        it = 0
        same = 0
        while chi - n > 16 and it < 16 and same < 3:
            it += 1
            g = _next_guess(lo, clo, hi, chi, n + 8, bisect)
            if not (g > lo and g < hi):
                break
            lo, clo, hi, chi, bisect, stuck = _narrowed(g, _row_count_le(arr, i, rl, g), n, lo, clo, hi, chi)
            same = same + 1 if stuck else 0
        if chi == n or 2 * chi + 2 < ns:
            # 2. compact the candidates: slots in scratch[:m] (one store a value: stores bound this
            # pass), then their values in scratch[off:e]
            for k in range(rl):
                scratch[m] = k  # always written, kept only when |value| <= hi (no branch)
                m += abs(arr[i, k]) <= hi
            if m == n:
                # exactly n values <= hi (e.g. a previous rewire's new synapses, all at 0): all of them
                # go, already in slot order
                if ns > 1:
                    scratch[ns - 1] = hi if hi > 0.0 else -1.0
                return m
            off = m + 1
            e = off + m
            for q in range(m):
                scratch[off + q] = abs(arr[i, int(scratch[q])])
            # 3. the exact threshold among the candidates (every value <= lo is one of them)
            if lo < 0.0:  # zeros (e.g. SET's new synapses) end it at once when there are n of them
                c = _span_count_le(scratch, off, e, 0.0)
                if c >= n:
                    t = 0.0
                    lt = 0
                    found = True
                else:
                    lo = 0.0
                    clo = c
            bisect = False
            it = 0
            same = 0
            while not found and chi - clo > 8 and it < 16 and same < 2:
                it += 1
                g = _next_guess(lo, clo, hi, chi, n - 0.5, bisect)
                if not (g > lo and g < hi):
                    break
                lo, clo, hi, chi, bisect, stuck = _narrowed(g, _span_count_le(scratch, off, e, g), n, lo, clo, hi, chi)
                same = same + 1 if stuck else 0
            if not found and e + chi - clo < ns - 1:
                # the few values in (lo, hi] (branchy, but rarely taken)
                b = e
                for q in range(off, e):
                    x = scratch[q]
                    if x > lo and x <= hi:
                        scratch[b] = x
                        b += 1
                want = n - clo  # 1-based rank of t inside the band
                if b - e <= 16:  # ranked by counting: no branches to mispredict
                    for q in range(e, b):
                        v = scratch[q]
                        c_lt = 0
                        c_le = 0
                        for u in range(e, b):
                            c_lt += scratch[u] < v
                            c_le += scratch[u] <= v
                        if c_lt < want and want <= c_le:
                            t = v
                            lt = clo + c_lt
                else:  # ties defeated the narrowing: quickselect the band
                    t = _select_range(scratch, e, b, e + want - 1)
                    lt = _span_count_le(scratch, off, e, t) - _span_count_eq(scratch, off, e, t)
                found = True
    h = 0
    if found:
        # 4. t is the largest value removed: every candidate below it goes, then the lowest slots
        # equal to it (candidates are in slot order)
        ties = n - lt
        for q in range(m):
            x = scratch[off + q]
            tie = x == t
            take = (x < t) | (tie & (ties > 0))
            ties -= tie & take
            scratch[h] = scratch[q]
            h += take
    else:
        for k in range(rl):
            x = abs(arr[i, k])
            scratch[k] = x if x == x else np.inf
        t = _select_range(scratch, 0, rl, n - 1)
        lt = 0
        for k in range(rl):
            x = abs(arr[i, k])
            lt += (x if x == x else np.inf) < t
        ties = n - lt
        for k in range(rl):
            x = abs(arr[i, k])
            x = x if x == x else np.inf
            tie = x == t
            take = (x < t) | (tie & (ties > 0))
            ties -= tie & take
            scratch[h] = k
            h += take
    if ns > 1:  # h < rl <= ns: the slot list never reaches the last slot
        scratch[ns - 1] = t if t > 0.0 else -1.0  # the next row's first guess
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
