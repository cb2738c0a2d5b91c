"""Row-length bounds of random connectivity: per-row quantiles of binomial and Poisson-binomial row
lengths, chosen so that the chance that *any* of ``num_pre`` rows is longer than the bound is about
:data:`OVERFLOW_PROBABILITY`."""
from __future__ import annotations

import math

import numpy as np

#: Target probability that at least one row of a random projection is longer than ``max_row_length``.
OVERFLOW_PROBABILITY = 1e-4


def max_candidates(num_pre: int, num_post: int, allow_self: bool) -> int:
    """Largest number of possible targets of any row (0 when there are no rows)."""
    if num_pre == 0:
        return 0
    if allow_self or num_pre > num_post:
        # some row (i >= num_post) has no self pair
        return num_post
    return max(num_post - 1, 0)


def overflow_alpha(num_pre: int) -> float:
    """Per-row tail probability: 1 - (1 - OVERFLOW_PROBABILITY) ** (1 / num_pre)."""
    return -math.expm1(math.log1p(-OVERFLOW_PROBABILITY) / num_pre)


# --------------------------------------------------------------------------------------------------
# quantiles


def _binom_upper_cut(n: int, p: float) -> int:
    """A count above which Binomial(n, p) has no mass representable in float64 (Bernstein bound:
    P(X >= mean + t) <= exp(-t^2 / (2 (var + t / 3))) < exp(-750))."""
    mean, var = n * p, n * p * (1.0 - p)
    t = 250.0 + math.sqrt(250.0**2 + 1500.0 * var)
    return int(min(n, math.ceil(mean + t)))


def _binom_pmf_range(n: int, p: float, k0: int, k1: int) -> np.ndarray:
    """P(Binomial(n, p) = k) for k = k0 .. k1 (0 <= k0 <= k1 <= n, 0 < p < 1), in log space."""
    log_c0 = math.lgamma(n + 1.0) - math.lgamma(k0 + 1.0) - math.lgamma(n - k0 + 1.0)
    k = np.arange(k0 + 1, k1 + 1, dtype=np.float64)
    log_c = np.empty(k1 - k0 + 1)
    log_c[0] = log_c0
    # log C(n, k) - log C(n, k - 1) = log(n - k + 1) - log(k)
    np.cumsum(np.log(n - k + 1.0) - np.log(k), out=log_c[1:])
    log_c[1:] += log_c0
    kk = np.arange(k0, k1 + 1, dtype=np.float64)
    return np.exp(log_c + kk * math.log(p) + (n - kk) * math.log1p(-p))


def binom_isf(alpha: float, n: int, p: float) -> int:
    """Smallest c with P(Binomial(n, p) > c) <= alpha."""
    if n == 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    # for alpha < 1/2 the answer is at least the median >= floor(mean)
    start = min(int(math.floor(n * p)), n) if alpha < 0.5 else 0
    top = max(_binom_upper_cut(n, p), start)
    pmf = _binom_pmf_range(n, p, start, top)
    # tail[i] = P(X > start + i) (mass above `top` is below float64 resolution)
    tail = np.append(np.cumsum(pmf[::-1])[::-1][1:], 0.0)
    return start + int(np.argmax(tail <= alpha))


def _binom_pmf_head(m: int, v: float, length: int) -> tuple[np.ndarray, float]:
    """(P(X = k) for k = 0 .. length - 1, P(X >= length)) for X ~ Binomial(m, v), 1 <= length <= m + 1."""
    head = _binom_pmf_range(m, v, 0, length - 1)
    if length > m:
        return head, 0.0
    top = _binom_upper_cut(m, v)
    tail = float(_binom_pmf_range(m, v, length, top).sum()) if top >= length else 0.0
    return head, tail


def _group_probabilities(p: np.ndarray, rel_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Round ``p`` *up* onto a geometric grid of relative spacing ``rel_step`` and group equal values.

    Rounding up only makes the Poisson-binomial sum stochastically larger, so quantiles stay bounds.
    """
    step = math.log1p(rel_step)
    q = np.exp(np.ceil(np.log(p) / step) * step)
    q = np.maximum(q, p)  # guard against exp/log rounding downwards
    values, counts = np.unique(q, return_counts=True)
    return np.minimum(values, 1.0), counts


def poisson_binomial_isf(probs, alpha: float) -> int:
    """Smallest c with P(S > c) <= alpha (up to a negligible conservative rounding), where S is a sum
    of independent Bernoulli(probs[i]) variables."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size and (np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("probabilities must be in [0, 1]")
    p = p[p > 0.0]
    n_sure = int(np.count_nonzero(p >= 1.0))
    p = p[p < 1.0]
    n = p.size
    if n == 0:
        return n_sure
    values, counts = _group_probabilities(p, 1e-9)
    for rel_step in (1e-4, 1e-3, 1e-2):
        if values.size <= 4096:
            break
        values, counts = _group_probabilities(p, rel_step)
    sure = values >= 1.0
    n_sure += int(counts[sure].sum())
    values, counts = values[~sure], counts[~sure]
    if values.size == 0:
        return n_sure
    n = int(counts.sum())
    mean = float(np.dot(values, counts))
    # Starting truncation point from the binomial with the same mean (Hoeffding); verified below.
    m_cap = max(binom_isf(alpha, n, min(mean / n, 1.0)), math.ceil(mean)) + 2
    while True:
        m_cap = min(m_cap, n)
        # pmf[0 .. m_cap]; pmf[m_cap + 1] collects every count > m_cap ("overflow" bin)
        pmf = np.zeros(m_cap + 2)
        pmf[0] = 1.0
        for v, m in zip(values.tolist(), counts.tolist()):
            length = min(m, m_cap + 1) + 1
            g, g_tail = _binom_pmf_head(m, v, length)
            total = pmf.sum()
            new = np.convolve(pmf, g)
            over = new[m_cap + 1 :].sum() + total * g_tail
            pmf = new[: m_cap + 2]
            pmf[m_cap + 1] = over
        # sf[c] = P(S > c) for c = 0 .. m_cap
        sf = np.cumsum(pmf[::-1])[::-1][1:]
        ok = np.nonzero(sf <= alpha)[0]
        if ok.size:
            return n_sure + int(ok[0])
        if m_cap >= n:  # cannot happen (P(S > n) == 0) except through rounding; be safe
            return n_sure + n
        m_cap *= 2
