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

:func:`~plastix.model.ragged.to_ragged` turns a synapse list into the ragged layout and
:func:`~plastix.model.ragged.row_stride_for` picks a row stride; row-length quantiles live in
:mod:`plastix.model.row_lengths`, grid geometry in :mod:`plastix.model.geometry` (all re-exported here).
"""


from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .checks import (as_index_array, as_rng, check_bool, check_probability, check_range, check_shape, check_size,
                     check_sizes, empty_synapses)
from .geometry import axis_factor, grid_positions, periodic_distance_sq
from .ragged import row_stride_for, to_ragged
from .row_lengths import OVERFLOW_PROBABILITY, binom_isf, max_candidates, overflow_alpha, poisson_binomial_isf

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

# Work arrays of dense (rows x num_post) blocks are kept below this many elements.
_BLOCK_ELEMENTS = 1 << 22


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
        object.__setattr__(self, "p", check_probability("p", self.p))
        object.__setattr__(self, "allow_self", check_bool("allow_self", self.allow_self))

    @property
    def exact_row_lengths(self) -> bool:
        return self.p in (0.0, 1.0)

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = check_sizes(num_pre, num_post)
        n = max_candidates(num_pre, num_post, self.allow_self)
        if n == 0:
            return 0
        return min(binom_isf(overflow_alpha(num_pre), n, self.p), n)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = check_sizes(num_pre, num_post)
        rng = as_rng(rng)
        total = num_pre * num_post
        if total == 0 or self.p == 0.0:
            return empty_synapses()
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
        object.__setattr__(self, "k", check_size("k", self.k))
        object.__setattr__(self, "replace", check_bool("replace", self.replace))
        object.__setattr__(self, "allow_self", check_bool("allow_self", self.allow_self))

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
        num_pre, num_post = check_sizes(num_pre, num_post)
        self._check_k(num_pre, num_post)
        return self.k if num_pre > 0 else 0

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = check_sizes(num_pre, num_post)
        self._check_k(num_pre, num_post)
        rng = as_rng(rng)
        k = self.k
        if num_pre == 0 or k == 0:
            return empty_synapses()
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
        num_pre, num_post = check_sizes(num_pre, num_post)
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
        object.__setattr__(self, "allow_self", check_bool("allow_self", self.allow_self))

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        num_pre, num_post = check_sizes(num_pre, num_post)
        return max_candidates(num_pre, num_post, self.allow_self)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = check_sizes(num_pre, num_post)
        pre = np.repeat(np.arange(num_pre, dtype=np.int64), num_post)
        post = np.tile(np.arange(num_post, dtype=np.int64), num_pre)
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post


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
        object.__setattr__(self, "p_peak", check_probability("p_peak", self.p_peak))
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
                object.__setattr__(self, name, check_shape(name, value))
        object.__setattr__(self, "periodic", check_bool("periodic", self.periodic))
        object.__setattr__(self, "allow_self", check_bool("allow_self", self.allow_self))

    @property
    def exact_row_lengths(self) -> bool:
        return self.p_peak == 0.0

    def shapes(self, num_pre: int, num_post: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (pre_shape, post_shape) used for these population sizes."""
        num_pre, num_post = check_sizes(num_pre, num_post)
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
        row_f = axis_factor(np.arange(pr) * (qr / pr), qr, self.sigma, self.periodic)  # (pr, qr)
        col_f = axis_factor(np.arange(pc) * (qc / pc), qc, self.sigma, self.periodic)  # (pc, qc)
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
        num_pre, num_post = check_sizes(num_pre, num_post)
        if num_pre == 0:
            return 0
        _, _, row_f, col_f = self._factors(num_pre, num_post)
        # Sorting each row's factors (descending) and taking the element-wise maximum over rows gives
        # probabilities p_peak * A_i * B_j that dominate every row's probabilities one by one, so their
        # Poisson-binomial quantile bounds every row's (exact when all rows are alike, e.g. equal shapes).
        a = np.max(-np.sort(-row_f, axis=1), axis=0)
        b = np.max(-np.sort(-col_f, axis=1), axis=0)
        probs = np.minimum(self.p_peak * np.outer(a, b).ravel(), 1.0)
        return min(poisson_binomial_isf(probs, overflow_alpha(num_pre)), num_post)

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        num_pre, num_post = check_sizes(num_pre, num_post)
        (pr, pc), (qr, qc), row_f, col_f = self._factors(num_pre, num_post)
        rng = as_rng(rng)
        if self.p_peak == 0.0:
            return empty_synapses()
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
        pre = as_index_array("pre", self.pre)
        post = as_index_array("post", self.post)
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
        num_pre, num_post = check_sizes(num_pre, num_post)
        check_range("pre", self.pre, num_pre, "num_pre")
        check_range("post", self.post, num_post, "num_post")
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
