"""Random numbers in connectivity-update row code: ``rng.uniform()`` / ``rng.normal()``,
``row.random_slot()`` and ``row.sample_free()`` against the counter-based definition computed here with
numpy (docs/semantics.md), on every CPU kernel variant and the CUDA backend (simulator in CI).

CPU kernels draw each row's first Philox block of each stream a few rows ahead of the row code (and
prefetch what it points at); these tests pin that the numbers are exactly the row's own draws, for rows
in every position of the pipeline's tiles and partitions, with rows the rule skips in between."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import CPU_MODES, make_sim, stdp_recurrent_net

import plastix as px
from plastix.kernels import rng as prng

SEED = 11
N_PRE, N_POST, STRIDE = 37, 50, 12  # 37 rows: several 8-row tiles, uneven partitions


def _draws(row, p, rng):
    row.first = rng.uniform()
    row.second = rng.normal()
    row.slot0 = row.random_slot()
    row.slot1 = row.random_slot()
    row.free0 = row.sample_free()


def _normal_first(row, p, rng):
    row.first = rng.normal()
    row.second = rng.uniform()


def _row_vars(names):
    return {n: px.Var(0.0) if n in ("first", "second") else px.Var(0, "int64") for n in names}


DRAWS = px.ConnectivityUpdateModel(name="draws", row_update=_draws,
                                   row_vars=_row_vars(("first", "second", "slot0", "slot1", "free0")))
NORMAL_FIRST = px.ConnectivityUpdateModel(name="normal_first", row_update=_normal_first,
                                          row_vars=_row_vars(("first", "second", "on")), active_if="on")


def _lengths():
    lengths = np.random.default_rng(5).integers(0, STRIDE + 1, N_PRE)
    lengths[[0, 9, 36]] = 0  # empty rows: random_slot() == -1
    return lengths


def _net(model):
    net = px.Network(dt=1.0, seed=SEED, precision="float64")
    a = net.add_population("a", N_PRE, px.neurons.lif())
    b = net.add_population("b", N_POST, px.neurons.lif())
    rng = np.random.default_rng(6)
    pre = np.repeat(np.arange(N_PRE), _lengths())
    post = np.concatenate([rng.choice(N_POST, k, replace=False) for k in _lengths()])
    proj = net.add_projection("ab", a, b, connectivity=px.connect.FromArrays(pre, post), row_stride=STRIDE)
    net.add_connectivity_update("u", proj, model)
    return net


def _words(step, stream, block=0):
    s = np.uint64(SEED)
    rows = np.arange(N_PRE, dtype=np.uint64)
    return prng.philox4x32(rows, np.uint64(step), np.uint64(block), np.uint64(stream), s & prng._MASK32,
                           s >> prng._SHIFT32)


def _expected_draws(step, connected):
    stream = prng.stream_id("cu0", "row_update")
    rows = np.arange(N_PRE, dtype=np.uint64)
    first = prng.uniform(SEED, rows, step, 0, stream)
    second = prng.normal(SEED, rows, step, 1, stream)
    # random_slot and sample_free take the words of one stream in turn: the two slots are words 0 and 1,
    # sample_free's candidates words 2, 3, 4, ... (blocks of 4)
    words = np.concatenate([np.stack(_words(step, stream ^ 0x80000000, b)) for b in range(3)])  # [12, rows]
    lengths = np.array([len(c) for c in connected], np.uint64)
    slots = [np.where(lengths > 0, (words[k] * lengths) >> np.uint64(32), -1).astype(np.int64) for k in (0, 1)]
    free0 = []  # the first candidate not yet connected
    for i in range(N_PRE):
        js = [int((int(words[k][i]) * N_POST) >> 32) for k in range(2, 12)]
        free0.append(next(j for j in js if j not in connected[i]))
    return {"first": first, "second": second, "slot0": slots[0], "slot1": slots[1], "free0": np.array(free0)}


def _connected(sim):
    r = sim.ragged("ab")
    return [set(r["ind"][i, :r["row_length"][i]].tolist()) for i in range(N_PRE)]


def _check_draws(sim):
    sim.run(3)  # the draws are keyed by the step
    expected = _expected_draws(sim.step, _connected(sim))
    sim.custom_update("u")
    for name, want in expected.items():
        got = sim.get("u", name)
        if name in ("first", "second"):
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("mode", sorted(CPU_MODES))
def test_row_draws_match_the_counter_based_definition(mode):
    _check_draws(make_sim(_net(DRAWS), mode))


@pytest.mark.parametrize("mode", sorted(CPU_MODES))
def test_normal_as_first_draw_and_skipped_rows(mode):
    sim = make_sim(_net(NORMAL_FIRST), mode)
    on = (np.arange(N_PRE) % 3 != 1).astype(np.int64)  # every third row is skipped (active_if)
    sim.set("u", "on", on)
    sim.run(2)
    stream = prng.stream_id("cu0", "row_update")
    rows = np.arange(N_PRE, dtype=np.uint64)
    sim.custom_update("u")
    first = np.where(on == 1, prng.normal(SEED, rows, sim.step, 0, stream), 0.0)
    second = np.where(on == 1, prng.uniform(SEED, rows, sim.step, 1, stream), 0.0)
    np.testing.assert_allclose(sim.get("u", "first"), first, rtol=1e-12)
    np.testing.assert_allclose(sim.get("u", "second"), second, rtol=1e-12)


def test_row_draws_on_cuda(small_cuda_blocks):
    pytest.importorskip("numba.cuda")
    from plastix.backends import cuda_available

    if not cuda_available():
        pytest.skip("needs numba-cuda (simulator or GPU)")
    _check_draws(px.Simulation(_net(DRAWS), backend="cuda"))


def _slot_only(row, p):
    row.slot0 = row.random_slot()


def test_random_slot_is_uniform_over_the_row():
    n_rows, length = 4000, 5
    net = px.Network(dt=1.0, seed=2)
    a = net.add_population("a", n_rows, px.neurons.lif())
    b = net.add_population("b", 10, px.neurons.lif())
    pre = np.repeat(np.arange(n_rows), length)
    post = np.tile(np.arange(length), n_rows)
    proj = net.add_projection("ab", a, b, connectivity=px.connect.FromArrays(pre, post), row_stride=length)
    net.add_connectivity_update("u", proj, px.ConnectivityUpdateModel(
        name="slot", row_update=_slot_only, row_vars={"slot0": px.Var(0, "int64")}))
    sim = px.Simulation(net, backend="cpu")
    sim.custom_update("u")
    counts = np.bincount(sim.get("u", "slot0"), minlength=length)
    assert counts.sum() == n_rows and len(counts) == length
    chi2 = ((counts - n_rows / length) ** 2 / (n_rows / length)).sum()
    assert chi2 < 18.5, f"random_slot not uniform: {counts}"  # p = 0.001, 4 dof


def _turnover_net(n_replace: int, seed: int) -> px.Network:
    """stdp_recurrent_net (40 neurons) with ``n_replace`` synapses of every row replaced at every step: the
    two random_replace tests share this structure, so it compiles once per CPU mode."""
    net, proj = stdp_recurrent_net(40, row_stride=10, seed=seed)
    net.add_connectivity_update("turnover", proj, px.structural.random_replace(n_replace), var_refs={"weight": "w"},
                                every=1)
    return net


def test_random_replace_keeps_rows_duplicate_free_and_full():
    n, k = 40, 8
    rng = np.random.default_rng(1)
    pre = np.repeat(np.arange(n), k)
    post = np.concatenate([rng.choice(n, k, replace=False) for _ in range(n)])
    w = rng.uniform(1.0, 2.0, pre.size)
    sims = {m: make_sim(_turnover_net(3, seed=4), m) for m in sorted(CPU_MODES)}
    for sim in sims.values():
        sim.set_connectivity("aa", pre, post, w=w)
        for amplitude in ("a_plus", "a_minus"):  # STDP off: every weight change is the rule's
            sim.set_param("aa", amplitude, 0.0)
        sim.run(20)
        r = sim.ragged("aa", "w")
        assert (r["row_length"] == k).all()
        for i in range(n):
            row = r["ind"][i, :k]
            assert len(set(row.tolist())) == k and row.min() >= 0 and row.max() < n
        stats = sim.update_stats("turnover")
        assert stats["removed"] == stats["added"] == 20 * n * 3
        # kept synapses keep their weight, new ones start at 0: the weights are the initial ones or 0
        vals = r["w"][:, :k]
        assert np.isin(vals[vals != 0], w).all() and (vals == 0).any()
    a_, b_ = (sims[m].ragged("aa", "w") for m in sorted(CPU_MODES))
    np.testing.assert_array_equal(a_["ind"], b_["ind"])
    np.testing.assert_array_equal(a_["w"], b_["w"])


def test_random_replace_with_stdp_keeps_the_column_view():
    """Serial kernels maintain the column view inside the (pipelined) row code, parallel ones rebuild it:
    both must give the same connectivity and a column view equal to one rebuilt from scratch."""
    from structural_reference import assert_column_view

    sims = {m: make_sim(_turnover_net(2, seed=9), m) for m in sorted(CPU_MODES)}
    for sim in sims.values():
        sim.run(25)
        assert_column_view(sim, "aa")
        assert sim.update_stats("turnover")["removed"] == 25 * 40 * 2
    a, b = (sims[m].ragged("aa", "w") for m in sorted(CPU_MODES))
    np.testing.assert_array_equal(a["ind"], b["ind"])
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-9)
