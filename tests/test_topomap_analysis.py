"""plastix.topomap.analysis (map measures) and plastix.topomap.plots (figures)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from plastix.connect import AllToAll, GaussianGrid2D, OneToOne, grid_positions
from plastix.topomap import analysis as ta

L = 16
SHAPE = (L, L)
N = L * L


def idx(r, c, cols=L):
    return (r % L) * cols + (c % cols)


def shifted_one_to_one(dr, dc, shape=SHAPE):
    """Target (r, c) receives exactly one synapse, from source (r - dr, c - dc) (periodic)."""
    rows, cols = shape
    post = np.arange(rows * cols)
    r, c = np.divmod(post, cols)
    pre = ((r - dr) % rows) * cols + (c - dc) % cols
    return pre, post


# --------------------------------------------------------------------------------------------------
# displacements


def test_periodic_displacement_wraps():
    d = ta.periodic_displacement([0, 0], [0, 15], SHAPE)
    np.testing.assert_array_equal(d, [0, -1])
    d = ta.periodic_displacement([[0, 15], [15, 15], [3, 4]], [[0, 0], [0, 0], [5, 1]], SHAPE)
    np.testing.assert_array_equal(d, [[0, 1], [1, 1], [2, -3]])
    # half a grid is reported as -L/2; results always in [-L/2, L/2)
    np.testing.assert_array_equal(ta.periodic_displacement([0, 0], [8, 8], SHAPE), [-8, -8])
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, L, (100, 2)), rng.uniform(0, L, (100, 2))
    d = ta.periodic_displacement(a, b, SHAPE)
    assert np.all((d >= -L / 2) & (d < L / 2))
    np.testing.assert_allclose(np.mod(a + d - b + 0.5 * L, L) - 0.5 * L, 0, atol=1e-12)
    # non-square torus
    np.testing.assert_array_equal(ta.periodic_displacement([0, 0], [3, 9], (4, 10)), [-1, -1])


def test_synapse_displacements_and_mapping_for_unequal_grids():
    # source 8x8 onto target 16x16: source (r, c) sits at (2r, 2c)
    np.testing.assert_array_equal(ta.mapped_source_positions((8, 8), SHAPE)[idx(1, 3, 8)], [2, 6])
    d = ta.synapse_displacements([idx(1, 3, 8), 0], [idx(2, 7), idx(15, 0)], (8, 8), SHAPE)
    np.testing.assert_array_equal(d, [[0, 1], [-1, 0]])


# --------------------------------------------------------------------------------------------------
# receptive fields


def test_one_to_one_is_perfect_map():
    pre, post = OneToOne().build(N, N)
    w = np.full(pre.size, 0.2)
    centres = ta.rf_centres(pre, post, w, SHAPE, SHAPE)
    np.testing.assert_allclose(ta.periodic_displacement(grid_positions(SHAPE), centres, SHAPE), 0, atol=1e-9)
    assert ta.mean_absolute_deviation(centres, SHAPE) == pytest.approx(0, abs=1e-9)
    spread, mean = ta.rf_spread(pre, post, w, SHAPE, SHAPE)
    np.testing.assert_allclose(spread, 0, atol=1e-9)
    assert mean == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("target", [(5, 7), (0, 0), (0, 9), (15, 15), (15, 0)])
def test_four_neighbours_centre_and_spread(target):
    r, c = target
    pre = np.array([idx(r - 1, c), idx(r + 1, c), idx(r, c - 1), idx(r, c + 1)])
    post = np.full(4, idx(r, c))
    w = np.full(4, 0.1)
    centres = ta.rf_centres(pre, post, w, SHAPE, SHAPE)
    np.testing.assert_allclose(ta.periodic_displacement([r, c], centres[idx(r, c)], SHAPE), 0, atol=1e-9)
    others = np.ones(N, bool)
    others[idx(r, c)] = False
    assert np.isnan(centres[others]).all()  # targets without afferents
    spread, mean = ta.rf_spread(pre, post, w, SHAPE, SHAPE)
    assert spread[idx(r, c)] == pytest.approx(1.0)
    assert np.isnan(spread[others]).all()
    assert mean == pytest.approx(1.0)
    assert ta.mean_absolute_deviation(centres, SHAPE) == pytest.approx(0, abs=1e-9)


def test_weighted_centre_moves_towards_heavier_afferent():
    # two afferents at columns 14 and 1 (wrapping) of target (3, 15); 3:1 weights pull toward column 1
    pre = np.array([idx(3, 14), idx(3, 1)])
    post = np.full(2, idx(3, 15))
    centres = ta.rf_centres(pre, post, [1.0, 3.0], SHAPE, SHAPE)
    col = centres[idx(3, 15), 1]
    assert centres[idx(3, 15), 0] == pytest.approx(3.0)
    # circular mean of angles at 14 and 17 (== 1) with weights 1, 3: between them, closer to 17
    assert 15.5 < (col if col > 8 else col + L) < 17


def test_zero_weights_and_uniform_rf_have_no_centre():
    centres = ta.rf_centres([0, 1], [5, 5], [0.0, 0.0], SHAPE, SHAPE)
    assert np.isnan(centres).all()
    pre, post = AllToAll().build(N, N)
    centres = ta.rf_centres(pre, post, None, SHAPE, SHAPE)
    assert np.isnan(centres).all()
    assert math.isnan(ta.mean_absolute_deviation(centres, SHAPE))
    assert math.isnan(ta.rf_spread(pre, post, None, SHAPE, SHAPE)[1])


def test_shifted_map_ad_is_shift_length():
    pre, post = shifted_one_to_one(2, 3)
    centres = ta.rf_centres(pre, post, np.ones(pre.size), SHAPE, SHAPE)
    dev = ta.rf_deviation(centres, SHAPE)
    np.testing.assert_allclose(dev, math.sqrt(13))
    assert ta.mean_absolute_deviation(centres, SHAPE) == pytest.approx(math.sqrt(13))
    # the same with 3-neighbour blobs (spread > 0) around the shifted position
    pres, posts = [], []
    for dr, dc in ((0, 0), (0, 1), (0, -1)):
        p, q = shifted_one_to_one(2 + dr, 3 + dc)
        pres.append(p)
        posts.append(q)
    pre, post = np.concatenate(pres), np.concatenate(posts)
    centres = ta.rf_centres(pre, post, None, SHAPE, SHAPE)
    assert ta.mean_absolute_deviation(centres, SHAPE) == pytest.approx(math.sqrt(13))
    assert ta.rf_spread(pre, post, None, SHAPE, SHAPE)[1] == pytest.approx(math.sqrt(2 / 3))


def test_unequal_grids_ideal_position_in_source_coordinates():
    # target (r, c) on 16x16 receives from source (r // 2, c // 2) on 8x8: ideal position (r/2, c/2)
    post = np.arange(N)
    r, c = np.divmod(post, L)
    pre = (r // 2) * 8 + c // 2
    centres = ta.rf_centres(pre, post, None, (8, 8), SHAPE)
    ideal = ta.ideal_rf_positions(SHAPE, (8, 8))
    np.testing.assert_array_equal(ideal[idx(3, 5)], [1.5, 2.5])
    dev = ta.rf_deviation(centres, SHAPE, (8, 8))
    # deviation 0 for even (r, c), 0.5 along each odd axis
    expected = np.hypot(0.5 * (r % 2), 0.5 * (c % 2))
    np.testing.assert_allclose(dev, expected, atol=1e-9)
    assert ta.mean_absolute_deviation(centres, SHAPE, (8, 8)) == pytest.approx(expected.mean())


# --------------------------------------------------------------------------------------------------
# probability and weight maps


def test_all_to_all_probability_map_is_one():
    pre, post = AllToAll().build(N, N)
    prob, dr, dc = ta.connection_probability_map(pre, post, SHAPE, SHAPE, radius=5)
    np.testing.assert_array_equal(dr, np.arange(-5, 6))
    np.testing.assert_array_equal(dc, np.arange(-5, 6))
    np.testing.assert_array_equal(prob, 1.0)
    # the whole torus: +8 is never a minimal image (reported as -8), so that row / column is NaN
    prob, dr, dc = ta.connection_probability_map(pre, post, SHAPE, SHAPE, radius=8)
    assert np.isnan(prob[dr == 8]).all() and np.isnan(prob[:, dc == 8]).all()
    np.testing.assert_array_equal(prob[:-1, :-1], 1.0)
    centres, p = ta.connection_probability_by_distance(pre, post, SHAPE, SHAPE)
    assert np.all(p[np.isfinite(p)] == 1.0)
    # duplicated synapses do not push the probability above 1
    prob, _, _ = ta.connection_probability_map(np.tile(pre, 2), np.tile(post, 2), SHAPE, SHAPE, radius=3)
    np.testing.assert_array_equal(prob, 1.0)


def test_probability_and_weight_map_hand_case():
    # every target gets the source one row up (displacement (+1, 0)) with weight 0.1, and
    # targets in column 0 additionally the source two columns left (displacement (0, +2)) with weight 0.3
    post = np.arange(N)
    r, c = np.divmod(post, L)
    pre1 = idx(r - 1, c)
    col0 = post[c == 0]
    pre2 = idx(col0 // L, col0 % L - 2)
    pre = np.concatenate([pre1, pre2])
    posts = np.concatenate([post, col0])
    w = np.concatenate([np.full(N, 0.1), np.full(col0.size, 0.3)])
    prob, dr, dc = ta.connection_probability_map(pre, posts, SHAPE, SHAPE, radius=2.7)
    assert prob.shape == (5, 5)
    expected = np.zeros((5, 5))
    expected[1 + 2, 0 + 2] = 1.0
    expected[0 + 2, 2 + 2] = 1.0 / L
    np.testing.assert_allclose(prob, expected)
    mean, _, _ = ta.mean_weight_map(pre, posts, w, SHAPE, SHAPE, radius=2)
    assert mean[3, 2] == pytest.approx(0.1) and mean[2, 4] == pytest.approx(0.3)
    assert np.isnan(mean).sum() == 23
    maps = ta.displacement_maps(pre, posts, w, SHAPE, SHAPE, 2)
    np.testing.assert_array_equal(maps["probability"], prob)


def test_probability_map_unequal_grids_normalisation():
    # 8x8 source onto 16x16 target, all-to-all: still probability 1 at every displacement present
    pre, post = AllToAll().build(64, N)
    prob, _, _ = ta.connection_probability_map(pre, post, (8, 8), SHAPE, radius=4)
    np.testing.assert_array_equal(prob, 1.0)
    _, p = ta.connection_probability_by_distance(pre, post, (8, 8), SHAPE)
    assert np.all(p[np.isfinite(p)] == 1.0)


def test_gaussian_radial_profile_matches_formula():
    p_peak, sigma = 0.6, 2.5
    rule = GaussianGrid2D(p_peak, sigma)
    # edges between the distinct pair distances up to 6 (so each bin holds one distance value)
    d_all = np.sqrt(np.unique(np.add.outer(np.arange(9) ** 2, np.arange(9) ** 2)))
    d_all = d_all[d_all <= 6.0]
    edges = np.concatenate([[-0.5], 0.5 * (d_all[1:] + d_all[:-1]), [d_all[-1] + 0.01]])
    conn = np.zeros(edges.size - 1)
    pairs = None
    for seed in range(6):
        pre, post = rule.build(N, N, np.random.default_rng(seed))
        _, _, n_conn, n_pairs = ta.connection_probability_by_distance(
            pre, post, SHAPE, SHAPE, bins=edges, return_counts=True)
        conn += n_conn
        pairs = n_pairs if pairs is None else pairs + n_pairs
        # per-seed sanity against the pair-probability matrix of the rule
        prob = rule.connection_probability(N, N)
        expect_total = prob.sum()
        assert abs(pre.size - expect_total) < 5 * math.sqrt(expect_total)
    np.testing.assert_allclose(pairs / 6, [np.count_nonzero(np.isclose(
        np.sqrt(np.add.outer(np.minimum(np.arange(L), L - np.arange(L)) ** 2,
                             np.minimum(np.arange(L), L - np.arange(L)) ** 2)), d)) * N for d in d_all])
    expected = p_peak * np.exp(-d_all**2 / (2 * sigma**2))
    observed = conn / pairs
    se = np.sqrt(expected * (1 - expected) / pairs)
    assert np.all(np.abs(observed - expected) < 4.5 * se), (observed, expected, se)
    # the 2-D map agrees with the formula at every displacement too (pooled over seeds)
    maps = [ta.connection_probability_map(*rule.build(N, N, np.random.default_rng(s)), SHAPE, SHAPE, 4)[0]
            for s in range(6)]
    prob2d = np.mean(maps, axis=0)
    dd = np.add.outer(np.arange(-4, 5) ** 2, np.arange(-4, 5) ** 2)
    exp2d = p_peak * np.exp(-dd / (2 * sigma**2))
    se2d = np.sqrt(exp2d * (1 - exp2d) / (6 * N))
    assert np.all(np.abs(prob2d - exp2d) < 4.5 * se2d)


# --------------------------------------------------------------------------------------------------
# formation / elimination, degrees, summary


def test_formation_elimination_hand_case():
    # pairs as (pre, post); target positions on the 16x16 grid
    before = ([idx(0, 0), idx(0, 0), idx(5, 5), idx(1, 1)], [idx(0, 1), idx(0, 1), idx(5, 5), idx(4, 5)])
    after = ([idx(0, 0), idx(5, 5), idx(5, 5), idx(2, 2), idx(2, 2), idx(1, 1)],
             [idx(0, 1), idx(5, 5), idx(5, 5), idx(2, 0), idx(2, 0), idx(4, 5)])
    fe = ta.formation_elimination(before, after, SHAPE, SHAPE, bins=[0, 0.5, 1.5, 2.5, 6])
    # formed: (5,5)->(5,5) once more (distance 0); (2,2)->(2,0) twice (distance 2)
    assert fe.n_formed == 3 and fe.n_eliminated == 1
    assert sorted(zip(fe.formed_pre.tolist(), fe.formed_post.tolist())) == sorted(
        [(idx(5, 5), idx(5, 5)), (idx(2, 2), idx(2, 0)), (idx(2, 2), idx(2, 0))])
    # eliminated: one of the two (0,0)->(0,1) synapses (distance 1)
    assert list(zip(fe.eliminated_pre.tolist(), fe.eliminated_post.tolist())) == [(idx(0, 0), idx(0, 1))]
    np.testing.assert_array_equal(fe.formed_hist, [1, 0, 2, 0])
    np.testing.assert_array_equal(fe.eliminated_hist, [0, 1, 0, 0])
    np.testing.assert_allclose(np.sort(fe.formed_distance), [0, 2, 2])
    # identical snapshots: nothing; empty before: everything formed; wrap-around distance (0,15)->(0,0) = 1
    fe = ta.formation_elimination(after, after, SHAPE, SHAPE)
    assert fe.n_formed == fe.n_eliminated == 0
    fe = ta.formation_elimination(([], []), ([idx(0, 15)], [idx(0, 0)]), SHAPE, SHAPE)
    assert fe.n_formed == 1 and fe.formed_distance[0] == pytest.approx(1.0)
    assert fe.formed_hist.sum() == 1 and fe.formed_hist[1] == 1  # unit bins: [1, 2)
    fe = ta.formation_elimination(after, ([], []), SHAPE, SHAPE, bins=4)
    assert fe.n_eliminated == 6 and fe.eliminated_hist.sum() == 6


def test_degrees():
    pre = np.array([0, 0, 1, 3, 3, 3])
    post = np.array([1, 1, 2, 0, 1, 2])
    ind, outd = ta.degrees(pre, post, n_pre=5, n_post=3)
    np.testing.assert_array_equal(ind, [1, 3, 2])
    np.testing.assert_array_equal(outd, [2, 1, 0, 3, 0])
    s = ta.degree_summary(ind, outd)
    assert s["in_degree_mean"] == pytest.approx(2.0) and s["out_degree_mean"] == pytest.approx(1.2)
    assert s["out_degree_max"] == 3 and s["out_degree_min"] == 0
    json.dumps(s)
    with pytest.raises(ValueError):
        ta.degrees([5], [0], 5, 3)


def test_summarise_is_json_serialisable():
    rule = GaussianGrid2D(0.16, 2.5)
    pre, post = rule.build(N, N, np.random.default_rng(1))
    w = np.random.default_rng(2).uniform(0, 0.2, pre.size)
    s = ta.summarise(pre, post, w, SHAPE, SHAPE)
    assert set(s) == {"rf_spread", "ad", "mean_in_degree", "mean_out_degree", "n_synapses", "mean_weight",
                      "in_degree_std", "in_degree_max", "out_degree_std", "out_degree_max"}
    in_deg = np.bincount(post, minlength=N)
    assert s["in_degree_std"] == pytest.approx(in_deg.std()) and s["in_degree_max"] == in_deg.max()
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    assert s["n_synapses"] == pre.size
    assert s["mean_in_degree"] == pytest.approx(pre.size / N)
    assert s["mean_weight"] == pytest.approx(w.mean())
    assert 1.0 < s["rf_spread"] < 4.0 and 0.0 < s["ad"] < 2.0
    # empty projection: undefined measures become None
    s = ta.summarise([], [], [], SHAPE, SHAPE)
    assert s["rf_spread"] is None and s["ad"] is None and s["mean_weight"] is None and s["n_synapses"] == 0
    json.dumps(s, allow_nan=False)


def test_input_validation():
    with pytest.raises(ValueError):
        ta.rf_centres([0, 1], [0], None, SHAPE, SHAPE)
    with pytest.raises(ValueError):
        ta.connection_probability_map([N], [0], SHAPE, SHAPE, 2)
    with pytest.raises(ValueError):
        ta.mean_weight_map([0], [0], [0.1, 0.2], SHAPE, SHAPE, 2)
    with pytest.raises(ValueError):
        ta.periodic_displacement([0, 0, 0], [1, 1, 1], SHAPE)


# --------------------------------------------------------------------------------------------------
# plots


def _png_ok(path):
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5000


def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from plastix.topomap import plots

    rng = np.random.default_rng(3)
    rule = GaussianGrid2D(0.16, 2.5)
    pre0, post0 = rule.build(N, N, rng)
    w0 = np.full(pre0.size, 0.1)
    # a "final" state: sharper, with weights falling off with distance
    pre1, post1 = GaussianGrid2D(0.4, 1.2).build(N, N, rng)
    d = np.hypot(*ta.synapse_displacements(pre1, post1, SHAPE, SHAPE).T)
    w1 = 0.2 * np.exp(-d**2 / 4)
    m0 = ta.displacement_maps(pre0, post0, w0, SHAPE, SHAPE, 6)
    m1 = ta.displacement_maps(pre1, post1, w1, SHAPE, SHAPE, 6)
    out = plots.plot_maps(m0, m1, tmp_path / "maps.png", g_max=0.2)
    _png_ok(out)

    history = []
    for k in range(12):
        t = 5.0 * k
        history.append({"t_s": t, "rf_spread": 2.5 * math.exp(-k / 4) + 0.8, "ad": 1.0 * math.exp(-k / 3) + 0.2,
                        "mean_in_degree": 6.3 + 0.1 * k, "mean_out_degree": 6.3 + 0.1 * k,
                        "formed": None if k == 0 else 100 + 5 * k, "eliminated": None if k == 0 else 110 + 4 * k})
    _png_ok(plots.plot_time_series(history, tmp_path / "series.png"))

    fe = ta.formation_elimination((pre0, post0), (pre1, post1), SHAPE, SHAPE)
    _png_ok(plots.plot_formation_elimination(fe.formed_hist, fe.eliminated_hist, fe.bins, tmp_path / "fe.png"))
    hf = np.stack([fe.formed_hist * (k + 1) / 10 for k in range(8)])
    he = np.stack([fe.eliminated_hist * (k + 1) / 10 for k in range(8)])
    _png_ok(plots.plot_formation_elimination(hf, he, fe.bins, tmp_path / "fe_time.png",
                                             t_s=np.arange(1, 9) * 7.5))

    # a distorted map: each target's afferents are a Gaussian blob (sigma 1) around a smoothly displaced
    # position; one target has no afferents
    post = np.arange(N)
    r, c = np.divmod(post, L)
    centre_r = r + 1.5 * np.sin(2 * np.pi * c / L)
    centre_c = c + 1.0 * np.cos(2 * np.pi * r / L)
    pres, posts = [], []
    for k in range(12):
        pr_ = np.round(centre_r + rng.normal(0, 1, N)).astype(int)
        pc_ = np.round(centre_c + rng.normal(0, 1, N)).astype(int)
        pres.append(idx(pr_, pc_))
        posts.append(post)
    pre, post = np.concatenate(pres), np.concatenate(posts)
    keep = post != idx(4, 4)
    centres = ta.rf_centres(pre[keep], post[keep], None, SHAPE, SHAPE)
    _png_ok(plots.plot_rf_map(centres, SHAPE, tmp_path / "rf.png"))
