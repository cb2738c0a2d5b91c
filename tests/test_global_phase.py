"""Global phase of connectivity updates: DEEP R-style redistribution of removed synapses over rows with
room (compiled multi-threaded array code, and the plain-Python mode), row_var_refs between updates."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px


def _prune_negative(row):
    row.removed = 0
    for s in row.synapses:
        if s.weight < 0.0:
            s.remove()
            row.removed += 1


def _add_budget(row):
    for _ in range(row.to_add):
        j = row.sample_free()
        if j >= 0:
            row.add(j, weight=0.0)


PRUNE = px.ConnectivityUpdateModel(name="prune_negative", row_vars={"removed": px.Var(0, "int32")},
                                   var_refs=("weight",), row_update=_prune_negative)


def _regrow(mode):
    """The library's DEEP R redistribution, its global phase compiled or run as plain Python."""
    import dataclasses

    return dataclasses.replace(px.structural.distributed_regrow(w_init=0.0), name=f"regrow_{mode}", global_mode=mode)


def _net(mode, stride=24):
    net = px.Network(dt=1.0, seed=7)
    a = net.add_population("a", 200, px.neurons.lif())
    proj = net.add_projection("aa", a, a, connectivity=px.connect.FixedProbability(0.04),
                              init={"w": px.init.Normal(0.0, 1.0)}, row_stride=stride)
    net.add_connectivity_update("prune", proj, PRUNE, var_refs={"weight": "w"})
    net.add_connectivity_update("regrow", proj, _regrow(mode), var_refs={"weight": "w"},
                                row_var_refs={"removed": "prune.removed"})
    return net


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_redistribution_conserves_synapse_count(mode, cpu_mode):
    from conftest import make_sim

    sim = make_sim(_net(mode), cpu_mode)
    n0 = len(sim.get("aa", "w"))
    removed = sim.custom_update("prune")["prune"]["removed"]
    assert removed > 0
    np.testing.assert_array_equal(sim.get("prune", "removed").sum(), removed)
    out = sim.custom_update("regrow")["regrow"]
    assert sim.get("regrow", "total")[0] == removed
    assert out["added"] == removed and sim.get("regrow", "unplaced")[0] == 0
    assert len(sim.get("aa", "w")) == n0
    assert sim.get("regrow", "to_add").sum() == removed
    assert out["global_s"] > 0
    pre, post = sim.connectivity("aa")
    assert len(set(zip(pre.tolist(), post.tolist()))) == len(pre)  # no duplicates
    assert (sim.ragged("aa")["row_length"] <= 24).all()


def test_library_distributed_regrow_conserves_count():
    net = px.Network(dt=1.0, seed=11)
    a = net.add_population("a", 300, px.neurons.lif())
    proj = net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(10),
                              init={"w": px.init.Normal(0.0, 1.0)}, row_stride=30)
    net.add_connectivity_update("prune", proj, PRUNE, var_refs={"weight": "w"})
    net.add_connectivity_update("regrow", proj, px.structural.distributed_regrow(w_init=0.0),
                                var_refs={"weight": "w"}, row_var_refs={"removed": "prune.removed"})
    sim = px.Simulation(net, backend="cpu")
    for _ in range(3):
        sim.set("aa", "w", np.random.default_rng(1).normal(size=3000))
        removed = sim.custom_update("prune")["prune"]["removed"]
        assert sim.custom_update("regrow")["regrow"]["added"] == removed
        assert sim.get("regrow", "total")[0] == removed and sim.get("regrow", "unplaced")[0] == 0
        assert len(sim.get("aa", "w")) == 3000
    rows = sim.ragged("aa")["row_length"]
    assert rows.max() <= 30 and rows.std() > 0  # redistributed across rows, not per row


def test_compiled_global_phase_is_reproducible_and_thread_independent():
    runs = []
    for threads in (1, 2):
        sim = px.Simulation(_net("compiled"), backend="cpu", parallel=True, partitions=2, threads=threads)
        sim.custom_update("prune")
        sim.custom_update("regrow")
        runs.append(sim.connectivity("aa"))
    for k in range(2):
        np.testing.assert_array_equal(runs[0][k], runs[1][k])


def test_budget_beyond_capacity_is_reported_not_dropped():
    sim = px.Simulation(_net("compiled"), backend="cpu")
    rng = np.random.default_rng(0)
    post = np.concatenate([rng.choice(200, 24, replace=False) for _ in range(200)])
    sim.set_connectivity("aa", np.repeat(np.arange(200), 24), post, w=1.0)  # every row full
    sim.set("prune", "removed", np.ones(200, np.int32))  # a budget of 200 with no room anywhere
    out = sim.custom_update("regrow")["regrow"]
    assert out["added"] == 0 and sim.get("regrow", "unplaced")[0] == 200
    assert len(sim.get("aa", "w")) == 200 * 24


def _bad_global(glob, rows):
    rows.length = 3


def test_global_phase_errors():
    m = px.ConnectivityUpdateModel(name="bad", row_update=_add_budget, row_vars={"to_add": px.Var(0, "int32")},
                                   var_refs=("weight",), global_update=_bad_global)
    net = px.Network()
    a = net.add_population("a", 5, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.AllToAll())
    net.add_connectivity_update("u", "aa", m, var_refs={"weight": "w"})
    with pytest.raises(px.ModelError, match="rows.length is read-only"):
        px.Simulation(net, backend="cpu").build()
    with pytest.raises(px.NetworkError, match="row_var_ref"):
        net.add_connectivity_update("v", "aa", _regrow("compiled"), row_var_refs={"removed": "nope.removed"},
                                    var_refs={"weight": "w"})
    with pytest.raises(px.NetworkError, match="Python-mode global phase"):
        import dataclasses

        net.add_connectivity_update("w", "aa", dataclasses.replace(m, global_mode="python"), every=3,
                                    var_refs={"weight": "w"})


def _count_visit(row):
    row.visits += 1


VISITS = px.ConnectivityUpdateModel(name="visits", row_vars={"go": px.Var(0, "int32"), "visits": px.Var(0, "int32")},
                                    row_update=_count_visit, active_if="go")


@pytest.mark.parametrize("backend", ["cpu", "cpu_parallel", "cuda"])
def test_active_if_skips_rows(backend, request):
    from plastix.backends import cuda_available

    if backend == "cuda" and not cuda_available():
        pytest.skip("needs numba-cuda")
    if backend == "cuda":
        request.getfixturevalue("small_cuda_blocks")
    net = px.Network(dt=1.0, seed=1)
    a = net.add_population("a", 40, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(3))
    net.add_connectivity_update("v", "aa", VISITS)
    kw = {"parallel": True, "partitions": 2} if backend == "cpu_parallel" else {}
    sim = px.Simulation(net, backend="cpu" if backend.startswith("cpu") else "cuda", **kw)
    go = (np.arange(40) % 3 == 0).astype(np.int32)
    sim.set("v", "go", go)
    sim.custom_update("v")
    sim.custom_update("v")
    np.testing.assert_array_equal(sim.get("v", "visits"), 2 * go)
    with pytest.raises(px.ModelError, match="active_if must name a row var"):
        px.ConnectivityUpdateModel(name="x", row_update=_count_visit, row_vars={"visits": 0.0}, active_if="nope")
