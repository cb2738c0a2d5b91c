"""Connectivity initialisers for sparse ("ragged") projections.

A projection from ``num_pre`` to ``num_post`` neurons is stored row by row: ``row_length[num_pre]``
(int32), ``ind[num_pre, row_stride]`` (int32 postsynaptic indices, only the first ``row_length[i]``
entries of row ``i`` are valid, padding is 0) and per-synapse variables in the same
``[num_pre, row_stride]`` layout.  ``row_stride`` is fixed when the projection is built.

Every initialiser is a frozen dataclass with two methods:

``max_row_length(num_pre, num_post) -> int``
    An upper bound for the longest row.  Exact for deterministic rules.  For random rules it is the
    per-row quantile ``q = 0.9999 ** (1 / num_pre)`` of the row-length distribution (binomial, or
    Poisson-binomial for :class:`GaussianGrid2D`), so that the chance that *any* row is longer is about
    1e-4.  Rules that cannot create duplicate synapses never report more than ``num_post``.

``build(num_pre, num_post, rng) -> (pre, post)``
    The synapses as two int64 arrays, sorted by ``pre`` (row order); within a row ascending ``post``
    (except :class:`FromArrays`, which keeps the given order within a row).  ``rng`` is a
    :class:`numpy.random.Generator` (anything :func:`numpy.random.default_rng` accepts also works);
    deterministic rules ignore it.

"Self" connections are the pairs with ``pre == post`` index (meaningful when a population projects onto
itself); ``allow_self=False`` removes them.

:func:`to_ragged` turns a synapse list into the ragged layout and :func:`row_stride_for` picks a row stride.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

__all__ = [
    "OVERFLOW_PROBABILITY",
    "Connectivity",
    "FixedProbability",
    "FixedNumberPost",
    "OneToOne",
    "AllToAll",
    "GaussianGrid2D",
    "FromArrays",
    "grid_positions",
    "periodic_distance_sq",
    "to_ragged",
    "row_stride_for",
]

#: Target probability that at least one row of a random projection is longer than ``max_row_length``.
OVERFLOW_PROBABILITY = 1e-4

# Work arrays of dense (rows x num_post) blocks are kept below this many elements.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------------
# validation helpers


def _check_size(name: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0), got {v}")
    return int(v)


def _check_sizes(num_pre, num_post) -> tuple[int, int]:
    return _check_size("num_pre", num_pre), _check_size("num_post", num_post)


def _check_probability(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def _max_candidates(num_pre: int, num_post: int, allow_self: bool) -> int:
    """Largest number of possible targets of any row (0 when there are no rows)."""
    if num_pre == 0:
        return 0
    if allow_self or num_pre > num_post:
        # some row (i >= num_post) has no self pair
        return num_post
    return max(num_post - 1, 0)


def _overflow_alpha(num_pre: int) -> float:
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


def _binom_isf(alpha: float, n: int, p: float) -> int:
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


def _poisson_binomial_isf(probs, alpha: float) -> int:
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
    m_cap = max(_binom_isf(alpha, n, min(mean / n, 1.0)), math.ceil(mean)) + 2
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


# --------------------------------------------------------------------------------------------------
# base class


@dataclass(frozen=True)
class Connectivity:
    """Base class of connectivity initialisers."""

    #: True when ``build`` draws from the random generator.
    is_random: ClassVar[bool] = False

    @property
    def allows_duplicates(self) -> bool:
        """True when a (pre, post) pair may occur more than once (rows may exceed ``num_post``)."""
        return False

    @property
    def exact_row_lengths(self) -> bool:
        """True when ``max_row_length`` is the exact longest row (not a quantile of a random length)."""
        return True

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        raise NotImplementedError

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# FixedProbability


@dataclass(frozen=True)
class FixedProbability(Connectivity):
    """Every (pre, post) pair is connected independently with probability ``p``."""

    p: float
    allow_self: bool = True

    is_random: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "p", _check_probability("p", self.p))
        object.__setattr__(self, "allow_self", _check_bool("allow_self", self.allow_self))

    @property
    def exact_row_lengths(self) -> bool:
        return self.p in (0.0, 1.0)

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        n = _max_candidates(num_pre, num_post, self.allow_self)
        if n == 0:
            return 0
        return min(_binom_isf(_overflow_alpha(num_pre), n, self.p), n)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        rng = _as_rng(rng)
        total = num_pre * num_post
        if total == 0 or self.p == 0.0:
            return _empty()
        if self.p == 1.0:
            flat = np.arange(total, dtype=np.int64)
        else:
            flat = _bernoulli_positions(total, self.p, rng)
        pre, post = np.divmod(flat, num_post)
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post


def _bernoulli_positions(total: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions in [0, total) of independent Bernoulli(p) successes (geometric skipping)."""
    lam = -math.log1p(-p)  # gaps - 1 ~ floor(Exp(1) / lam) is geometric: P(gap - 1 >= m) = (1-p)^m
    expected = total * p
    chunk = int(min(max(expected + 6.0 * math.sqrt(expected) + 16.0, 16.0), 1 << 22))
    pieces = []
    last = -1
    while True:
        gaps = np.floor(rng.standard_exponential(chunk) / lam)
        np.minimum(gaps, float(total), out=gaps)
        gaps = gaps.astype(np.int64)
        gaps += 1
        pos = np.cumsum(gaps)
        pos += last
        m = int(np.searchsorted(pos, total))
        pieces.append(pos[:m])
        if m < chunk:
            break
        last = int(pos[-1])
    return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]


# --------------------------------------------------------------------------------------------------
# FixedNumberPost


@dataclass(frozen=True)
class FixedNumberPost(Connectivity):
    """Every row gets exactly ``k`` targets, drawn uniformly (distinct unless ``replace=True``)."""

    k: int
    replace: bool = False
    allow_self: bool = True

    is_random: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "k", _check_size("k", self.k))
        object.__setattr__(self, "replace", _check_bool("replace", self.replace))
        object.__setattr__(self, "allow_self", _check_bool("allow_self", self.allow_self))

    @property
    def allows_duplicates(self) -> bool:
        return self.replace

    def _check_k(self, num_pre: int, num_post: int) -> None:
        if num_pre == 0 or self.k == 0:
            return
        if self.allow_self:
            limit, what = num_post, f"num_post ({num_post})"
        else:
            # rows i < num_post lose their self pair
            limit, what = num_post - 1, f"num_post - 1 ({num_post - 1})"
        if self.replace:
            if limit < 1:
                cond = "replace=True" + ("" if self.allow_self else " and allow_self=False")
                raise ValueError(f"k > 0 needs {what} >= 1 possible targets per row for {cond}, got k={self.k}")
        elif self.k > limit:
            cond = "replace=False" + ("" if self.allow_self else " and allow_self=False")
            raise ValueError(f"k must be <= {what} for {cond}, got {self.k}")

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        self._check_k(num_pre, num_post)
        return self.k if num_pre > 0 else 0

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        self._check_k(num_pre, num_post)
        rng = _as_rng(rng)
        k = self.k
        if num_pre == 0 or k == 0:
            return _empty()
        # rows [0, n_self) have a self pair to exclude, rows [n_self, num_pre) do not
        n_self = 0 if self.allow_self else min(num_pre, num_post)
        posts = []
        for start, stop, cand in ((0, n_self, num_post - 1), (n_self, num_pre, num_post)):
            if stop <= start:
                continue
            dense = not self.replace and k < cand and 4 * k > cand
            block = max(1, (_BLOCK_ELEMENTS // 2) // cand if dense else _BLOCK_ELEMENTS // k)
            for b0 in range(start, stop, block):
                b1 = min(b0 + block, stop)
                rows = b1 - b0
                if self.replace:
                    sample = rng.integers(0, cand, size=(rows, k))
                    sample.sort(axis=1)
                elif k == cand:
                    sample = np.broadcast_to(np.arange(cand, dtype=np.int64), (rows, k)).copy()
                elif dense:
                    sample = _sample_dense(rows, k, cand, rng)
                else:
                    sample = _sample_sparse(rows, k, cand, rng)
                if cand < num_post:  # skip the self index: j >= i -> j + 1 (keeps rows sorted)
                    self_idx = np.arange(b0, b1, dtype=np.int64)[:, None]
                    sample += sample >= self_idx
                posts.append(sample.reshape(-1))
        post = np.concatenate(posts).astype(np.int64, copy=False)
        pre = np.repeat(np.arange(num_pre, dtype=np.int64), k)
        return pre, post


def _sample_sparse(rows: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, k) array; each row k distinct sorted values drawn uniformly from [0, n).

    Draw with replacement, then redraw duplicates until none remain.  The procedure treats all labels
    alike, so the resulting k-subsets are uniformly distributed.  Efficient for k << n.
    """
    dtype = np.int32 if n < 2**31 else np.int64
    a = rng.integers(0, n, size=(rows, k), dtype=dtype)
    a.sort(axis=1)
    work = a
    idx = None  # rows of `a` that `work` holds (None: all)
    while True:
        dup = work[:, 1:] == work[:, :-1]
        bad = np.nonzero(dup.any(axis=1))[0]
        if bad.size == 0:
            break
        sub = work[bad]
        d = dup[bad]
        tail = sub[:, 1:]
        tail[d] = rng.integers(0, n, size=int(d.sum()), dtype=dtype)
        sub.sort(axis=1)
        idx = bad if idx is None else idx[bad]
        a[idx] = sub
        work = sub
    return a.astype(np.int64)


def _sample_dense(rows: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, k) array; each row k distinct sorted values drawn uniformly from [0, n).

    Every candidate gets a uniform random key and the k smallest keys of each row win (found with a
    partial sort).  Efficient when k is a sizeable fraction of n.
    """
    keys = rng.random((rows, n))
    kth = np.partition(keys, k - 1, axis=1)[:, k - 1 : k]
    chosen = keys <= kth  # float64 keys: ties have probability ~ n^2 / 2^54 per row
    counts = chosen.sum(axis=1)
    if np.any(counts != k):  # pragma: no cover - astronomically unlikely tie; redraw those rows
        bad = np.nonzero(counts != k)[0]
        chosen[bad] = False
        redo = _sample_dense(bad.size, k, n, rng)
        chosen[bad[:, None], redo] = True
    return np.nonzero(chosen)[1].reshape(rows, k).astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------------------
# deterministic rules


@dataclass(frozen=True)
class OneToOne(Connectivity):
    """Neuron i connects to neuron i; requires ``num_pre == num_post``."""

    def _check(self, num_pre, num_post) -> int:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        if num_pre != num_post:
            raise ValueError(
                f"OneToOne requires num_pre == num_post, got num_pre={num_pre} and num_post={num_post}"
            )
        return num_pre

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        return 1 if self._check(num_pre, num_post) > 0 else 0

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        n = self._check(num_pre, num_post)
        idx = np.arange(n, dtype=np.int64)
        return idx, idx.copy()


@dataclass(frozen=True)
class AllToAll(Connectivity):
    """Every pre neuron connects to every post neuron (except itself when ``allow_self=False``)."""

    allow_self: bool = True

    def __post_init__(self):
        object.__setattr__(self, "allow_self", _check_bool("allow_self", self.allow_self))

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        return _max_candidates(num_pre, num_post, self.allow_self)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        pre = np.repeat(np.arange(num_pre, dtype=np.int64), num_post)
        post = np.tile(np.arange(num_post, dtype=np.int64), num_pre)
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post


# --------------------------------------------------------------------------------------------------
# 2-D grids


def _check_shape(name: str, shape) -> tuple[int, int]:
    try:
        rows, cols = shape
        rows, cols = operator.index(rows), operator.index(cols)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}")
    return int(rows), int(cols)


def grid_positions(shape) -> np.ndarray:
    """Positions of the neurons of a ``(rows, cols)`` grid, row-major: an ``(rows * cols, 2)`` float
    array whose row ``i`` is ``(i // cols, i % cols)``."""
    rows, cols = _check_shape("shape", shape)
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    return np.stack([r, c], axis=1).astype(np.float64)


def periodic_distance_sq(a, b, shape) -> np.ndarray:
    """Squared Euclidean distance between positions ``a`` and ``b`` (arrays ``(..., 2)`` of
    (row, col), broadcast against each other) on a torus of size ``shape = (rows, cols)``: each
    coordinate difference wraps around, e.g. on a 16x16 grid (0, 0) and (0, 15) are 1 apart."""
    rows, cols = _check_shape("shape", shape)
    period = np.array([rows, cols], dtype=np.float64)
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    if d.shape[-1:] != (2,):
        raise ValueError(f"positions must have a last axis of length 2, got shape {d.shape}")
    d = np.mod(d, period)
    d = np.minimum(d, period - d)
    return np.sum(d * d, axis=-1)


def _axis_factor(x_pre: np.ndarray, length: int, sigma: float, periodic: bool) -> np.ndarray:
    """exp(-dx^2 / (2 sigma^2)) between coordinates ``x_pre`` and post coordinates 0 .. length-1."""
    d = np.abs(x_pre[:, None] - np.arange(length, dtype=np.float64)[None, :])
    if periodic:
        d = np.mod(d, float(length))
        d = np.minimum(d, length - d)
    return np.exp(-(d * d) / (2.0 * sigma * sigma))


@dataclass(frozen=True)
class GaussianGrid2D(Connectivity):
    """Neurons on 2-D grids; pair probability ``p_peak * exp(-d^2 / (2 sigma^2))``.

    ``pre_shape`` / ``post_shape`` are ``(rows, cols)`` (row-major numbering); by default square grids
    are inferred from the population sizes.  Pre neuron ``(r, c)`` sits at
    ``(r * post_rows / pre_rows, c * post_cols / pre_cols)`` in post grid coordinates and ``d`` is the
    Euclidean distance there, wrapping around the post grid when ``periodic``.
    """

    p_peak: float
    sigma: float
    pre_shape: tuple[int, int] | None = None
    post_shape: tuple[int, int] | None = None
    periodic: bool = True
    allow_self: bool = True

    is_random: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "p_peak", _check_probability("p_peak", self.p_peak))
        try:
            sigma = float(self.sigma)
        except (TypeError, ValueError):
            raise ValueError(f"sigma must be a positive finite number, got {self.sigma!r}") from None
        if not (0.0 < sigma < math.inf):
            raise ValueError(f"sigma must be in (0, inf), got {self.sigma!r}")
        object.__setattr__(self, "sigma", sigma)
        for name in ("pre_shape", "post_shape"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _check_shape(name, value))
        object.__setattr__(self, "periodic", _check_bool("periodic", self.periodic))
        object.__setattr__(self, "allow_self", _check_bool("allow_self", self.allow_self))

    @property
    def exact_row_lengths(self) -> bool:
        return self.p_peak == 0.0

    def shapes(self, num_pre: int, num_post: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (pre_shape, post_shape) used for these population sizes."""
        num_pre, num_post = _check_sizes(num_pre, num_post)
        return (
            self._shape("pre_shape", "num_pre", self.pre_shape, num_pre),
            self._shape("post_shape", "num_post", self.post_shape, num_post),
        )

    @staticmethod
    def _shape(name, size_name, shape, size) -> tuple[int, int]:
        if shape is None:
            side = math.isqrt(size)
            if side * side != size or size == 0:
                raise ValueError(
                    f"cannot infer a square grid: {size_name} ({size}) is not a positive perfect square; "
                    f"pass {name}=(rows, cols)"
                )
            return side, side
        if shape[0] * shape[1] != size:
            raise ValueError(f"{name} {shape} holds {shape[0] * shape[1]} neurons but {size_name} is {size}")
        return shape

    def _factors(self, num_pre, num_post):
        (pr, pc), (qr, qc) = self.shapes(num_pre, num_post)
        row_f = _axis_factor(np.arange(pr) * (qr / pr), qr, self.sigma, self.periodic)  # (pr, qr)
        col_f = _axis_factor(np.arange(pc) * (qc / pc), qc, self.sigma, self.periodic)  # (pc, qc)
        return (pr, pc), (qr, qc), row_f, col_f

    def connection_probability(self, num_pre: int, num_post: int) -> np.ndarray:
        """The ``(num_pre, num_post)`` matrix of pair probabilities (for inspection and tests)."""
        (pr, pc), (qr, qc), row_f, col_f = self._factors(num_pre, num_post)
        r, c = np.divmod(np.arange(pr * pc), pc)
        prob = self.p_peak * (row_f[r][:, :, None] * col_f[c][:, None, :]).reshape(pr * pc, qr * qc)
        if not self.allow_self:
            n = min(pr * pc, qr * qc)
            prob[np.arange(n), np.arange(n)] = 0.0
        return prob

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        if num_pre == 0:
            return 0
        _, _, row_f, col_f = self._factors(num_pre, num_post)
        # Sorting each row's factors (descending) and taking the element-wise maximum over rows gives
        # probabilities p_peak * A_i * B_j that dominate every row's probabilities one by one, so their
        # Poisson-binomial quantile bounds every row's (exact when all rows are alike, e.g. equal shapes).
        a = np.max(-np.sort(-row_f, axis=1), axis=0)
        b = np.max(-np.sort(-col_f, axis=1), axis=0)
        probs = np.minimum(self.p_peak * np.outer(a, b).ravel(), 1.0)
        return min(_poisson_binomial_isf(probs, _overflow_alpha(num_pre)), num_post)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        (pr, pc), (qr, qc), row_f, col_f = self._factors(num_pre, num_post)
        rng = _as_rng(rng)
        if self.p_peak == 0.0:
            return _empty()
        block = max(1, _BLOCK_ELEMENTS // num_post)
        pres, posts = [], []
        for b0 in range(0, num_pre, block):
            b1 = min(b0 + block, num_pre)
            r, c = np.divmod(np.arange(b0, b1), pc)
            prob = (self.p_peak * row_f[r])[:, :, None] * col_f[c][:, None, :]
            hit = rng.random((b1 - b0, num_post)) < prob.reshape(b1 - b0, num_post)
            i, j = np.nonzero(hit)
            pres.append(i + b0)
            posts.append(j)
        pre = np.concatenate(pres).astype(np.int64, copy=False)
        post = np.concatenate(posts).astype(np.int64, copy=False)
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post


# --------------------------------------------------------------------------------------------------
# explicit lists


def _as_index_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = np.nonzero(~np.isfinite(arr) | (arr != np.round(arr)))[0]
        if bad.size:
            raise ValueError(f"{name} must hold integer indices, but {name}[{bad[0]}] = {arr[bad[0]]!r}")
    elif arr.dtype == np.uint64 and arr.max() > np.iinfo(np.int64).max:
        bad = int(np.argmax(arr > np.iinfo(np.int64).max))
        raise ValueError(f"{name}[{bad}] = {arr[bad]} is too large")
    return arr.astype(np.int64)


def _check_range(name: str, arr: np.ndarray, limit: int, limit_name: str | None) -> None:
    bad = np.nonzero((arr < 0) | (arr >= limit))[0]
    if bad.size:
        i = int(bad[0])
        where = f"[0, {limit})" if limit_name is None else f"[0, {limit_name}) with {limit_name} = {limit}"
        raise ValueError(f"{name}[{i}] = {int(arr[i])} is out of range {where} ({bad.size} out-of-range entries)")


@dataclass(frozen=True, eq=False)
class FromArrays(Connectivity):
    """An explicit synapse list ``(pre[s], post[s])``; duplicates are allowed.

    ``build`` sorts it stably by ``pre`` (the given order is kept within a row);
    ``build_with_order`` also returns the permutation so that per-synapse values given alongside can be
    reordered the same way (``values[order]``).
    """

    pre: np.ndarray
    post: np.ndarray
    _order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        pre = _as_index_array("pre", self.pre)
        post = _as_index_array("post", self.post)
        if pre.shape != post.shape:
            raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
        if pre.size:
            neg = np.nonzero(pre < 0)[0]
            if neg.size:
                raise ValueError(f"pre[{neg[0]}] = {pre[neg[0]]} is negative; indices must be >= 0")
            neg = np.nonzero(post < 0)[0]
            if neg.size:
                raise ValueError(f"post[{neg[0]}] = {post[neg[0]]} is negative; indices must be >= 0")
        order = np.argsort(pre, kind="stable")
        for name, arr in (("pre", pre), ("post", post), ("_order", order)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def allows_duplicates(self) -> bool:
        return True

    @property
    def num_synapses(self) -> int:
        return int(self.pre.size)

    def _check(self, num_pre, num_post) -> tuple[int, int]:
        num_pre, num_post = _check_sizes(num_pre, num_post)
        _check_range("pre", self.pre, num_pre, "num_pre")
        _check_range("post", self.post, num_post, "num_post")
        return num_pre, num_post

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = self._check(num_pre, num_post)
        if self.pre.size == 0:
            return 0
        return int(np.bincount(self.pre, minlength=num_pre).max())

    def build_with_order(self, num_pre: int, num_post: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pre[order], post[order], order)`` with ``order`` the stable sort permutation by ``pre``."""
        self._check(num_pre, num_post)
        order = self._order.copy()
        return self.pre[order], self.post[order], order

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        pre, post, _ = self.build_with_order(num_pre, num_post)
        return pre, post


# --------------------------------------------------------------------------------------------------
# ragged layout


def to_ragged(pre, post, num_pre: int, row_stride: int, *, num_post: int | None = None, name: str | None = None):
    """Lay out a synapse list as a ragged matrix.

    Returns ``(ind, row_length, slot)``: ``ind`` is ``(num_pre, row_stride)`` int32 with
    ``ind[pre[s], slot[s]] == post[s]`` (padding 0), ``row_length`` is ``(num_pre,)`` int32 and ``slot``
    (int64, one per input synapse) is the column of each synapse, so per-synapse values given in input
    order scatter with ``values_2d[pre, slot] = values``.  Within a row synapses keep their input order.
    ``pre`` need not be sorted.  ``num_post`` (optional) enables a range check of ``post``; ``name``
    (optional) names the projection in error messages.

    Raises ``ValueError`` when a row has more than ``row_stride`` synapses, naming the first such row.
    """
    num_pre = _check_size("num_pre", num_pre)
    row_stride = _check_size("row_stride", row_stride)
    pre = _as_index_array("pre", pre)
    post = _as_index_array("post", post)
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
    _check_range("pre", pre, num_pre, "num_pre")
    if num_post is not None:
        num_post = _check_size("num_post", num_post)
        _check_range("post", post, num_post, "num_post")
    else:
        _check_range("post", post, 2**31 - 1, None)  # must fit the int32 index array
    counts = np.bincount(pre, minlength=num_pre)
    over = np.nonzero(counts > row_stride)[0]
    if over.size:
        row = int(over[0])
        what = "projection" if name is None else f"projection {name!r}"
        extra = ""
        if over.size > 1:
            extra = f" ({over.size} rows overflow, the longest has {int(counts.max())} synapses)"
        raise ValueError(
            f"row {row} of {what} needs {int(counts[row])} synapses but row_stride is {row_stride}{extra}; "
            "pass a larger row_stride"
        )
    n = pre.size
    starts = np.zeros(num_pre, dtype=np.int64)
    if num_pre > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    if n and np.all(pre[1:] >= pre[:-1]):
        slot = np.arange(n, dtype=np.int64) - starts[pre]
    else:
        order = np.argsort(pre, kind="stable")
        slot = np.empty(n, dtype=np.int64)
        slot[order] = np.arange(n, dtype=np.int64) - starts[pre[order]]
    ind = np.zeros((num_pre, row_stride), dtype=np.int32)
    ind[pre, slot] = post
    return ind, counts.astype(np.int32), slot


def row_stride_for(init: Connectivity, num_pre: int, num_post: int, row_stride: int | None = None,
                   headroom: float = 1.0) -> int:
    """The row stride for a projection built with ``init``.

    With ``row_stride`` given it is validated and returned: it must be >= 1, at most ``num_post`` for
    rules that cannot create duplicate synapses, and, where row lengths are not random
    (``init.exact_row_lengths``), at least the longest row.  Otherwise ``ceil(init.max_row_length(num_pre, num_post) * headroom)`` (at least 1;
    capped at ``num_post`` for rules without duplicates).
    """
    num_pre, num_post = _check_sizes(num_pre, num_post)
    try:
        headroom = float(headroom)
    except (TypeError, ValueError):
        raise ValueError(f"headroom must be a number >= 1, got {headroom!r}") from None
    if not (1.0 <= headroom < math.inf):
        raise ValueError(f"headroom must be in [1, inf), got {headroom!r}")
    cap = math.inf if init.allows_duplicates else max(num_post, 1)
    rule = type(init).__name__
    if row_stride is not None:
        try:
            stride = operator.index(row_stride)
        except TypeError:
            raise ValueError(f"row_stride must be a positive integer, got {row_stride!r}") from None
        if stride < 1 or stride > cap:
            upper = "" if cap == math.inf else f", num_post ({cap})"
            why = "" if cap == math.inf else f" ({rule} creates no duplicate synapses)"
            raise ValueError(f"row_stride must be in [1{upper}]{why}, got {stride}")
        if init.exact_row_lengths:
            need = init.max_row_length(num_pre, num_post)
            if stride < need:
                raise ValueError(
                    f"row_stride is {stride} but {rule} has rows of {need} synapses; pass row_stride >= {need}"
                )
        return int(stride)
    base = init.max_row_length(num_pre, num_post)
    stride = math.ceil(round(base * headroom, 9))
    return int(min(max(stride, 1), cap))
