"""Tests for plastix.model.connectivity (connectivity initialisers and the ragged layout)."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from plastix.model import connectivity as conn
from plastix.model import row_lengths
from plastix.model.connectivity import (
    AllToAll,
    FixedNumberPost,
    FixedProbability,
    FromArrays,
    GaussianGrid2D,
    OneToOne,
    grid_positions,
    periodic_distance_sq,
    row_stride_for,
    to_ragged,
)


def alpha_for(num_pre):
    return 1.0 - 0.9999 ** (1.0 / num_pre)


def assert_row_order(pre, post, strict=True):
    """pre non-decreasing; within a row post ascending (strictly unless duplicates are allowed)."""
    assert pre.dtype == np.int64 and post.dtype == np.int64
    assert np.all(np.diff(pre) >= 0)
    same_row = pre[1:] == pre[:-1]
    step = np.diff(post)
    assert np.all((step > 0) | ~same_row) if strict else np.all((step >= 0) | ~same_row)


def exact_poisson_binomial_sf(probs):
    """P(S > c) for c = 0 .. n by brute-force convolution."""
    pmf = np.array([1.0])
    for p in probs:
        pmf = np.convolve(pmf, [1.0 - p, p])
    return np.append(np.cumsum(pmf[::-1])[::-1][1:], 0.0)


# --------------------------------------------------------------------------------------------------
# FixedProbability


def test_fixed_probability_mean_degree_and_uniformity():
    num_pre, num_post, p = 2000, 1500, 0.05
    pre, post = FixedProbability(p).build(num_pre, num_post, np.random.default_rng(1))
    assert_row_order(pre, post)
    n_pairs = num_pre * num_post
    sd = math.sqrt(n_pairs * p * (1 - p))
    assert abs(pre.size - n_pairs * p) < 4 * sd
    # row lengths are Binomial(num_post, p): check mean and variance
    rl = np.bincount(pre, minlength=num_pre)
    assert abs(rl.mean() - num_post * p) < 4 * math.sqrt(num_post * p * (1 - p) / num_pre)
    assert abs(rl.var() / (num_post * p * (1 - p)) - 1) < 0.15
    # every target equally likely: column counts ~ Binomial(num_pre, p)
    cl = np.bincount(post, minlength=num_post)
    chi2 = np.sum((cl - num_pre * p) ** 2) / (num_pre * p * (1 - p))
    assert stats.chi2.sf(chi2, num_post) > 1e-4


def test_fixed_probability_no_self_and_edge_probabilities():
    rng = np.random.default_rng(2)
    pre, post = FixedProbability(0.3, allow_self=False).build(300, 200, rng)
    assert not np.any(pre == post)
    assert_row_order(pre, post)
    # self pairs are removed, the others keep probability p
    n_pairs = 300 * 200 - 200
    assert abs(pre.size - 0.3 * n_pairs) < 4 * math.sqrt(n_pairs * 0.21)

    pre, post = FixedProbability(0.0).build(50, 40, rng)
    assert pre.size == 0 and post.size == 0
    pre, post = FixedProbability(1.0).build(5, 4, rng)
    assert np.array_equal(pre, np.repeat(np.arange(5), 4))
    assert np.array_equal(post, np.tile(np.arange(4), 5))
    pre, post = FixedProbability(1.0, allow_self=False).build(3, 3, rng)
    assert list(zip(pre, post)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    for n_pre, n_post in [(0, 10), (10, 0), (0, 0)]:
        pre, post = FixedProbability(0.5).build(n_pre, n_post, rng)
        assert pre.size == 0 and pre.dtype == np.int64


def test_fixed_probability_tiny_p_and_reproducible():
    pre, post = FixedProbability(1e-9).build(1000, 1000, np.random.default_rng(3))
    assert pre.size <= 3
    a = FixedProbability(0.2).build(100, 100, np.random.default_rng(7))
    b = FixedProbability(0.2).build(100, 100, np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_fixed_probability_large_build():
    pre, post = FixedProbability(0.1).build(10_000, 10_000, np.random.default_rng(4))
    assert abs(pre.size - 1e7) < 5 * math.sqrt(1e7 * 0.9)
    assert post.min() >= 0 and post.max() < 10_000
    assert np.bincount(pre).max() <= FixedProbability(0.1).max_row_length(10_000, 10_000)


def test_fixed_probability_max_row_length_is_binomial_quantile():
    for num_pre, num_post, p in [(1000, 1000, 0.1), (10, 50, 0.5), (100_000, 200, 0.01), (1, 30, 0.3)]:
        m = FixedProbability(p).max_row_length(num_pre, num_post)
        a = alpha_for(num_pre)
        assert stats.binom.sf(m, num_post, p) <= a < stats.binom.sf(m - 1, num_post, p)
    # never above num_post; deterministic cases
    assert FixedProbability(0.999).max_row_length(1000, 10) == 10
    assert FixedProbability(1.0).max_row_length(5, 7) == 7
    assert FixedProbability(1.0, allow_self=False).max_row_length(5, 7) == 6
    assert FixedProbability(1.0, allow_self=False).max_row_length(8, 7) == 7
    assert FixedProbability(0.0).max_row_length(5, 7) == 0
    assert FixedProbability(0.5).max_row_length(0, 7) == 0


def test_fixed_probability_max_row_length_holds_over_seeds():
    init = FixedProbability(0.1)
    bound = init.max_row_length(500, 400)
    worst = 0
    for seed in range(100):
        pre, _ = init.build(500, 400, np.random.default_rng(seed))
        worst = max(worst, np.bincount(pre, minlength=500).max())
    assert worst <= bound
    # and the bound is not absurdly loose: about 6 standard deviations above the mean
    assert bound <= 40 + 7 * math.sqrt(36)


# --------------------------------------------------------------------------------------------------
# FixedNumberPost


@pytest.mark.parametrize("k", [1, 7, 30, 60, 99, 100])
@pytest.mark.parametrize("allow_self", [True, False])
def test_fixed_number_post_exact(k, allow_self):
    num_pre, num_post = 150, 100
    if not allow_self and k == 100:
        k = 99
    init = FixedNumberPost(k, allow_self=allow_self)
    pre, post = init.build(num_pre, num_post, np.random.default_rng(k))
    assert_row_order(pre, post)
    assert np.array_equal(pre, np.repeat(np.arange(num_pre), k))
    rows = post.reshape(num_pre, k)
    assert np.all(np.diff(rows, axis=1) > 0)  # distinct
    assert rows.min() >= 0 and rows.max() < num_post
    if not allow_self:
        assert not np.any(pre == post)
    assert init.max_row_length(num_pre, num_post) == k


@pytest.mark.parametrize("sampler", [conn._sample_sparse, conn._sample_dense])
@pytest.mark.parametrize("n,k", [(5, 2), (6, 3), (6, 5)])
def test_fixed_number_post_samplers_uniform_over_subsets(sampler, n, k):
    rows = 30_000
    sample = sampler(rows, k, n, np.random.default_rng(n * 10 + k))
    assert sample.shape == (rows, k)
    assert np.all(np.diff(sample, axis=1) > 0)
    subsets = {s: i for i, s in enumerate(itertools.combinations(range(n), k))}
    idx = np.array([subsets[tuple(r)] for r in sample.tolist()])
    counts = np.bincount(idx, minlength=len(subsets))
    expected = rows / len(subsets)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, len(subsets) - 1) > 1e-4


@pytest.mark.parametrize("k", [20, 700])  # sparse and dense sampling paths
def test_fixed_number_post_targets_uniform_without_self(k):
    num_pre, num_post = 1000, 1000
    pre, post = FixedNumberPost(k, allow_self=False).build(num_pre, num_post, np.random.default_rng(5))
    assert not np.any(pre == post)
    # offset of each target relative to its row (1 .. num_post - 1) is uniform
    offset = (post - pre) % num_post
    counts = np.bincount(offset, minlength=num_post)
    assert counts[0] == 0
    p = k / (num_post - 1)
    chi2 = np.sum((counts[1:] - num_pre * p) ** 2) / (num_pre * p * (1 - p))
    assert stats.chi2.sf(chi2, num_post - 1) > 1e-4


def test_fixed_number_post_more_pre_than_post_without_self():
    # rows i >= num_post have no self pair and may use every target
    pre, post = FixedNumberPost(4, allow_self=False).build(8, 5, np.random.default_rng(0))
    rows = post.reshape(8, 4)
    for i in range(5):
        assert i not in rows[i]
        assert sorted(rows[i]) == [j for j in range(5) if j != i]
    assert FixedNumberPost(5).build(8, 5, np.random.default_rng(0))[1].reshape(8, 5).tolist() == [list(range(5))] * 8


def test_fixed_number_post_replace():
    init = FixedNumberPost(30, replace=True)
    assert init.allows_duplicates
    pre, post = init.build(200, 10, np.random.default_rng(6))
    assert_row_order(pre, post, strict=False)
    assert np.array_equal(np.bincount(pre), np.full(200, 30))
    assert post.max() < 10
    counts = np.bincount(post, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-4
    pre, post = FixedNumberPost(5, replace=True, allow_self=False).build(50, 3, np.random.default_rng(6))
    assert not np.any(pre == post)
    assert init.max_row_length(200, 10) == 30
    assert row_stride_for(init, 200, 10) == 30


def test_fixed_number_post_large_build():
    pre, post = FixedNumberPost(1000).build(10_000, 10_000, np.random.default_rng(8))
    rows = post.reshape(10_000, 1000)
    assert np.all(np.diff(rows, axis=1) > 0)
    assert abs(post.mean() - 4999.5) < 10


# --------------------------------------------------------------------------------------------------
# deterministic rules


def test_one_to_one():
    pre, post = OneToOne().build(7, 7, None)
    assert np.array_equal(pre, np.arange(7)) and np.array_equal(post, np.arange(7))
    assert OneToOne().max_row_length(7, 7) == 1
    with pytest.raises(ValueError, match=r"OneToOne requires num_pre == num_post, got num_pre=3 and num_post=4"):
        OneToOne().build(3, 4)
    with pytest.raises(ValueError, match="num_pre == num_post"):
        OneToOne().max_row_length(3, 4)


def test_all_to_all():
    pre, post = AllToAll().build(4, 3)
    assert pre.size == 12
    assert_row_order(pre, post)
    assert AllToAll().max_row_length(4, 3) == 3
    pre, post = AllToAll(allow_self=False).build(4, 3)
    assert pre.size == 4 * 3 - 3 and not np.any(pre == post)
    assert np.bincount(pre).tolist() == [2, 2, 2, 3]
    assert AllToAll(allow_self=False).max_row_length(4, 3) == 3
    assert AllToAll(allow_self=False).max_row_length(3, 3) == 2
    assert AllToAll(allow_self=False).max_row_length(2, 3) == 2


def test_from_arrays_order_and_values():
    pre = [2, 0, 2, 1, 0, 2]
    post = [5, 1, 3, 1, 1, 0]
    values = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    init = FromArrays(pre, post)
    assert init.allows_duplicates and init.num_synapses == 6
    p, q, order = init.build_with_order(3, 6)
    assert p.tolist() == [0, 0, 1, 2, 2, 2]
    assert q.tolist() == [1, 1, 1, 5, 3, 0]  # given order kept within a row; duplicates kept
    assert values[order].tolist() == [11.0, 14.0, 13.0, 10.0, 12.0, 15.0]
    p2, q2 = init.build(3, 6, np.random.default_rng(0))
    assert np.array_equal(p, p2) and np.array_equal(q, q2)
    assert init.max_row_length(3, 6) == 3
    # row_stride may exceed num_post for explicit lists (duplicates)
    dup = FromArrays([0, 0, 0], [0, 0, 0])
    assert row_stride_for(dup, 1, 1) == 3
    assert row_stride_for(dup, 1, 1, row_stride=5) == 5
    # scatter values through to_ragged
    ind, rl, slot = to_ragged(p, q, 3, 4)
    w = np.zeros((3, 4))
    w[p, slot] = values[order]
    assert w[2, :3].tolist() == [10.0, 12.0, 15.0] and ind[2, :3].tolist() == [5, 3, 0]
    empty = FromArrays([], [])
    assert empty.build(0, 0)[0].size == 0 and empty.max_row_length(3, 3) == 0


def test_from_arrays_errors():
    with pytest.raises(ValueError, match=r"pre and post must have the same length, got 3 and 2"):
        FromArrays([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"pre\[1\] = -1 is negative"):
        FromArrays([0, -1], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        FromArrays([0.5], [0])
    init = FromArrays([0, 1, 2, 9], [0, 12, 3, 13])
    with pytest.raises(ValueError, match=r"post\[1\] = 12 is out of range \[0, num_post\) with num_post = 10"):
        init.build(10, 10)
    with pytest.raises(ValueError, match=r"pre\[3\] = 9 is out of range \[0, num_pre\) with num_pre = 5"):
        init.build_with_order(5, 20)


# --------------------------------------------------------------------------------------------------
# grids


def test_grid_positions():
    pos = grid_positions((2, 3))
    assert pos.dtype == np.float64
    assert pos.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert grid_positions((16, 16)).shape == (256, 2)


def test_periodic_distance_hand_cases():
    s = (16, 16)
    assert periodic_distance_sq([0, 0], [0, 15], s) == 1.0
    assert periodic_distance_sq([0, 0], [15, 0], s) == 1.0
    assert periodic_distance_sq([0, 0], [15, 15], s) == 2.0
    assert periodic_distance_sq([0, 0], [8, 8], s) == 128.0
    assert periodic_distance_sq([0, 0], [9, 0], s) == 49.0
    assert periodic_distance_sq([3, 4], [3, 4], s) == 0.0
    assert periodic_distance_sq([0.5, 0], [15.5, 0], s) == 1.0
    assert periodic_distance_sq([0, 0], [3, 9], (4, 10)) == 2.0
    assert periodic_distance_sq([0, 0], [2, 5], (4, 10)) == 4.0 + 25.0
    # broadcasting: (n, 1, 2) against (1, m, 2)
    a = grid_positions((4, 4))
    d = periodic_distance_sq(a[:, None, :], a[None, :, :], (4, 4))
    assert d.shape == (16, 16)
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
    assert d.max() == 8.0


def test_gaussian_grid_probability_vs_distance():
    p_peak, sigma, side = 0.8, 2.5, 16
    init = GaussianGrid2D(p_peak, sigma)
    n = side * side
    pos = grid_positions((side, side))
    d2 = periodic_distance_sq(pos[:, None, :], pos[None, :, :], (side, side))
    expected_p = p_peak * np.exp(-d2 / (2 * sigma**2))
    assert np.allclose(init.connection_probability(n, n), expected_p)
    hits = np.zeros((n, n))
    n_builds = 20
    rng = np.random.default_rng(11)
    for _ in range(n_builds):
        pre, post = init.build(n, n, rng)
        assert_row_order(pre, post)
        np.add.at(hits, (pre, post), 1)
    assert hits.max() <= n_builds
    # aggregate over distance bins (distinct distances up to 8)
    d = np.sqrt(d2)
    edges = np.arange(0, 9.0, 0.5)
    which = np.digitize(d, edges)
    tested = 0
    for b in np.unique(which):
        sel = which == b
        trials_p = np.repeat(expected_p[sel], 1)
        mean = n_builds * trials_p.sum()
        sd = math.sqrt(n_builds * np.sum(trials_p * (1 - trials_p)))
        obs = hits[sel].sum()
        if mean > 25:
            tested += 1
            assert abs(obs - mean) < 4.5 * sd, (b, obs, mean, sd)
            emp = obs / (n_builds * sel.sum())
            assert abs(emp - trials_p.mean()) < 4.5 * sd / (n_builds * sel.sum())
        else:
            assert obs < mean + 6 * math.sqrt(mean) + 6
    assert tested >= 10


def test_gaussian_grid_scaled_shapes_and_non_periodic():
    init = GaussianGrid2D(1.0, 1.5, pre_shape=(4, 8), post_shape=(8, 16))
    prob = init.connection_probability(32, 128)
    pre_pos = grid_positions((4, 8)) * np.array([2.0, 2.0])
    d2 = periodic_distance_sq(pre_pos[:, None, :], grid_positions((8, 16))[None, :, :], (8, 16))
    assert np.allclose(prob, np.exp(-d2 / (2 * 1.5**2)))
    # pre (1, 3) sits at post (2, 6): probability 1 there
    assert prob[1 * 8 + 3, 2 * 16 + 6] == 1.0
    flat = GaussianGrid2D(1.0, 1.5, periodic=False)
    prob = flat.connection_probability(16, 16)
    assert math.isclose(prob[0, 3], math.exp(-9 / 4.5))  # no wrap: (0,0)-(0,3) distance 3
    pre, post = flat.build(16, 16, np.random.default_rng(0))
    assert_row_order(pre, post)
    no_self = GaussianGrid2D(1.0, 3.0, allow_self=False)
    pre, post = no_self.build(64, 64, np.random.default_rng(0))
    assert pre.size > 0 and not np.any(pre == post)


def test_gaussian_grid_shape_errors():
    with pytest.raises(ValueError, match=r"num_pre \(10\) is not a positive perfect square; pass pre_shape"):
        GaussianGrid2D(0.5, 1.0).build(10, 16)
    with pytest.raises(ValueError, match=r"num_post \(15\) is not a positive perfect square; pass post_shape"):
        GaussianGrid2D(0.5, 1.0).max_row_length(16, 15)
    with pytest.raises(ValueError, match=r"pre_shape \(4, 5\) holds 20 neurons but num_pre is 16"):
        GaussianGrid2D(0.5, 1.0, pre_shape=(4, 5)).build(16, 16)
    with pytest.raises(ValueError, match=r"sigma must be in \(0, inf\), got 0"):
        GaussianGrid2D(0.5, 0)
    with pytest.raises(ValueError, match=r"p_peak must be in \[0, 1\], got 2"):
        GaussianGrid2D(2, 1.0)
    with pytest.raises(ValueError, match="post_shape must be a pair of positive integers"):
        GaussianGrid2D(0.5, 1.0, post_shape=(0, 4))


@pytest.mark.parametrize(
    "init,num_pre,num_post",
    [
        (GaussianGrid2D(0.8, 2.5), 256, 256),
        (GaussianGrid2D(0.3, 1.2, pre_shape=(10, 10), post_shape=(16, 16)), 100, 256),
        (GaussianGrid2D(1.0, 1.0, periodic=False), 144, 144),
    ],
)
def test_gaussian_grid_max_row_length(init, num_pre, num_post):
    bound = init.max_row_length(num_pre, num_post)
    a = alpha_for(num_pre)
    prob = init.connection_probability(num_pre, num_post)
    # bound >= every row's own Poisson-binomial quantile
    row_q = [int(np.argmax(exact_poisson_binomial_sf(row) <= a)) for row in prob[:: max(1, num_pre // 12)]]
    assert bound >= max(row_q)
    if init.pre_shape is None and init.periodic:
        assert bound == max(row_q)  # all rows alike: exact
    rng = np.random.default_rng(123)
    for _ in range(40):
        pre, _ = init.build(num_pre, num_post, rng)
        assert np.bincount(pre, minlength=num_pre).max() <= bound


def test_poisson_binomial_isf_matches_brute_force():
    rng = np.random.default_rng(9)
    for trial in range(30):
        n = int(rng.integers(1, 60))
        probs = rng.random(n) ** rng.uniform(0.5, 4)
        probs[rng.random(n) < 0.1] = 0.0
        probs[rng.random(n) < 0.05] = 1.0
        for a in (0.3, 1e-2, 1e-5, 1e-9):
            sf = exact_poisson_binomial_sf(probs)
            expected = int(np.argmax(sf <= a))
            assert row_lengths.poisson_binomial_isf(probs, a) == expected, (trial, a)
    # equal probabilities: the binomial quantile
    for n, p, a in [(500, 0.1, 1e-6), (2000, 0.003, 1e-8), (50, 0.9, 1e-3)]:
        assert row_lengths.poisson_binomial_isf(np.full(n, p), a) == row_lengths.binom_isf(a, n, p)
        m = row_lengths.binom_isf(a, n, p)
        assert stats.binom.sf(m, n, p) <= a < stats.binom.sf(m - 1, n, p)
    assert row_lengths.poisson_binomial_isf([], 0.1) == 0
    assert row_lengths.poisson_binomial_isf([1.0, 1.0, 0.0], 0.1) == 2


# --------------------------------------------------------------------------------------------------
# to_ragged


@st.composite
def synapse_lists(draw):
    num_pre = draw(st.integers(1, 12))
    num_post = draw(st.integers(1, 40))
    n = draw(st.integers(0, 60))
    pre = draw(st.lists(st.integers(0, num_pre - 1), min_size=n, max_size=n))
    post = draw(st.lists(st.integers(0, num_post - 1), min_size=n, max_size=n))
    return num_pre, num_post, np.array(pre, dtype=np.int64), np.array(post, dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(data=synapse_lists(), extra=st.integers(0, 3))
def test_to_ragged_round_trip(data, extra):
    num_pre, num_post, pre, post = data
    counts = np.bincount(pre, minlength=num_pre)
    stride = max(int(counts.max(initial=0)) + extra, 1)
    ind, row_length, slot = to_ragged(pre, post, num_pre, stride, num_post=num_post)
    assert ind.shape == (num_pre, stride) and ind.dtype == np.int32
    assert row_length.dtype == np.int32 and np.array_equal(row_length, counts)
    assert slot.shape == pre.shape
    assert np.array_equal(ind[pre, slot], post)
    # the ragged matrix holds exactly the input multiset
    got = sorted((i, int(ind[i, j])) for i in range(num_pre) for j in range(row_length[i]))
    assert got == sorted(zip(pre.tolist(), post.tolist()))
    for i in range(num_pre):
        # slots of a row are 0 .. len-1 in input order; padding is 0
        assert slot[pre == i].tolist() == list(range(counts[i]))
        assert np.all(ind[i, counts[i]:] == 0)
    # scattering per-synapse values
    values = np.arange(pre.size, dtype=np.float64) + 1
    v2 = np.zeros((num_pre, stride))
    v2[pre, slot] = values
    assert np.array_equal(v2[pre, slot], values)

    if counts.max(initial=0) >= 1:
        small = int(counts.max()) - 1
        row = int(np.argmax(counts > small))
        msg = rf"row {row} of projection needs {counts[row]} synapses but row_stride is {small}"
        with pytest.raises(ValueError, match=msg):
            to_ragged(pre, post, num_pre, small)


def test_to_ragged_overflow_message():
    pre = np.repeat(np.arange(20), 40)
    pre = np.concatenate([pre, np.full(5, 17), np.full(12, 19)])
    post = np.zeros_like(pre)
    with pytest.raises(
        ValueError,
        match=r"row 17 of projection 'exc' needs 45 synapses but row_stride is 40 \(2 rows overflow, the longest "
        r"has 52 synapses\); pass a larger row_stride",
    ):
        to_ragged(pre, post, 20, 40, name="exc")


def test_to_ragged_errors():
    with pytest.raises(ValueError, match="same length"):
        to_ragged([0, 1], [0], 2, 2)
    with pytest.raises(ValueError, match=r"pre\[1\] = 5 is out of range \[0, num_pre\) with num_pre = 3"):
        to_ragged([0, 5], [0, 0], 3, 2)
    with pytest.raises(ValueError, match=r"post\[0\] = 7 is out of range \[0, num_post\)"):
        to_ragged([0, 1], [7, 0], 3, 2, num_post=4)
    with pytest.raises(ValueError, match=r"post\[0\] = -1 is out of range"):
        to_ragged([0], [-1], 3, 2)
    with pytest.raises(ValueError, match="row_stride must be a non-negative integer"):
        to_ragged([0], [0], 3, -1)
    ind, rl, slot = to_ragged([], [], 3, 2)
    assert ind.shape == (3, 2) and rl.tolist() == [0, 0, 0] and slot.size == 0


def test_build_then_ragged_all_rules():
    rng = np.random.default_rng(21)
    cases = [
        (FixedProbability(0.2), 64, 64),
        (FixedNumberPost(9, allow_self=False), 64, 30),
        (OneToOne(), 64, 64),
        (AllToAll(), 10, 12),
        (GaussianGrid2D(0.7, 1.5), 64, 64),
    ]
    for init, num_pre, num_post in cases:
        stride = row_stride_for(init, num_pre, num_post)
        pre, post = init.build(num_pre, num_post, rng)
        ind, rl, slot = to_ragged(pre, post, num_pre, stride, num_post=num_post)
        assert rl.sum() == pre.size
        assert np.array_equal(slot, np.arange(pre.size) - np.concatenate([[0], np.cumsum(rl)[:-1]])[pre])


# --------------------------------------------------------------------------------------------------
# row_stride_for


def test_row_stride_for():
    assert row_stride_for(FixedNumberPost(10), 100, 50) == 10
    assert row_stride_for(FixedNumberPost(10), 100, 50, headroom=1.1) == 11
    assert row_stride_for(FixedNumberPost(10), 100, 50, headroom=1.5) == 15
    assert row_stride_for(FixedNumberPost(40), 100, 50, headroom=2.0) == 50  # capped at num_post
    assert row_stride_for(FixedNumberPost(40, replace=True), 100, 50, headroom=2.0) == 80
    fp = FixedProbability(0.1)
    assert row_stride_for(fp, 1000, 1000) == fp.max_row_length(1000, 1000)
    assert row_stride_for(fp, 1000, 1000, headroom=1.25) == math.ceil(fp.max_row_length(1000, 1000) * 1.25)
    assert row_stride_for(FixedProbability(0.0), 10, 10) == 1  # at least 1
    assert row_stride_for(OneToOne(), 0, 0) == 1
    assert row_stride_for(fp, 100, 100, row_stride=7) == 7  # random rules: caller's choice
    assert row_stride_for(fp, 100, 100, row_stride=100) == 100


def test_row_stride_for_errors():
    with pytest.raises(ValueError, match=r"row_stride must be in \[1, num_post \(100\)\]"):
        row_stride_for(FixedProbability(0.1), 100, 100, row_stride=150)
    with pytest.raises(ValueError, match=r"row_stride must be in \[1"):
        row_stride_for(FixedProbability(0.1), 100, 100, row_stride=0)
    with pytest.raises(ValueError, match=r"row_stride is 5 but FixedNumberPost has rows of 10 synapses"):
        row_stride_for(FixedNumberPost(10), 100, 100, row_stride=5)
    with pytest.raises(ValueError, match=r"headroom must be in \[1, inf\), got 0.5"):
        row_stride_for(FixedNumberPost(10), 100, 100, headroom=0.5)
    with pytest.raises(ValueError, match="num_post must be a non-negative integer"):
        row_stride_for(FixedNumberPost(10), 100, -3)


# --------------------------------------------------------------------------------------------------
# parameter validation


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        FixedProbability(1.5)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got -0.1"):
        FixedProbability(-0.1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        FixedProbability(float("nan"))
    with pytest.raises(ValueError, match=r"k must be <= num_post \(100\) for replace=False, got 150"):
        FixedNumberPost(150).build(10, 100, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"k must be <= num_post \(100\) for replace=False, got 150"):
        FixedNumberPost(150).max_row_length(10, 100)
    with pytest.raises(
        ValueError, match=r"k must be <= num_post - 1 \(99\) for replace=False and allow_self=False, got 100"
    ):
        FixedNumberPost(100, allow_self=False).build(10, 100, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"k must be a non-negative integer"):
        FixedNumberPost(-1)
    with pytest.raises(ValueError, match=r"k must be a non-negative integer"):
        FixedNumberPost(2.5)
    with pytest.raises(ValueError, match="allow_self must be True or False"):
        FixedProbability(0.1, allow_self="no")
    with pytest.raises(ValueError, match=r"num_pre must be a non-negative integer \(>= 0\), got -1"):
        FixedProbability(0.1).build(-1, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"num_post must be a non-negative integer \(>= 0\), got -5"):
        AllToAll().max_row_length(3, -5)
    with pytest.raises(ValueError, match="num_pre must be a non-negative integer"):
        OneToOne().build(2.5, 2.5)
    with pytest.raises(ValueError, match=r"k > 0 needs num_post - 1 \(0\) >= 1 possible targets per row"):
        FixedNumberPost(3, replace=True, allow_self=False).build(4, 1, np.random.default_rng(0))
    # k = 150 is fine with replacement
    assert FixedNumberPost(150, replace=True).max_row_length(10, 100) == 150


def test_initialisers_are_frozen_and_hashable():
    init = FixedProbability(0.1)
    with pytest.raises(AttributeError):
        init.p = 0.2
    assert init == FixedProbability(0.1) and hash(init) == hash(FixedProbability(0.1))
    assert GaussianGrid2D(0.5, 2, pre_shape=[4, 4]).pre_shape == (4, 4)
    assert hash(GaussianGrid2D(0.5, 2, pre_shape=[4, 4])) == hash(GaussianGrid2D(0.5, 2.0, pre_shape=(4, 4)))
    fa = FromArrays([0], [0])
    with pytest.raises(ValueError):
        fa.pre[0] = 3  # read-only
