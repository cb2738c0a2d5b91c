"""The models and rules plastix ships that no other CUDA test runs -- the subtractive-reset LIF, the
structural rules magnitude_prune, random_prune, random_regrow and the DEEP R pair (on e-prop's synapse
model), the topographic-map model and the ``plastix bench-sim`` network -- on the CUDA backend (numba-cuda's
simulator in CI) against the CPU backend.

Random numbers are counter-based, so both backends must rewire identically and spike identically (float64).
Running them here also records their kernels' launches, which tests/test_ptx.py compiles with the real CUDA
compiler."""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest
from conftest import spike_pairs

import plastix as px

pytest.importorskip("numba.cuda")
from plastix.backends import cuda_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not cuda_available(), reason="needs numba-cuda (simulator or GPU)"),
              pytest.mark.usefixtures("small_cuda_blocks")]



@pytest.fixture(autouse=True, scope="module")
def _fast_simulator():
    # the simulator runs each block's threads as Python threads polled by a busy loop: a short GIL switch
    # interval makes it several times faster
    old = sys.getswitchinterval()
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(old)


RULES = ("prune_small", "rprune", "regrow", "deep_r_prune", "deep_r_regrow")


#: a signed synapse as DEEP R needs (no transmission), with per-synapse state that must move with it
SIGNED_SYNAPSE = px.WeightUpdateModel(name="signed", vars={"w": 0.0, "sign": 1.0, "m": 0.0, "v": 0.0, "grad": 0.0})


def _rules_net():
    net = px.Network(dt=1.0, seed=11, precision="float64")
    a = net.add_population("a", 16, px.neurons.lif(reset="subtract", v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                           init={"v": px.init.Uniform(0.0, 9.0), "i_offset": px.init.Uniform(0.5, 1.2)})
    sparse = px.connect.FixedNumberPost(5)
    net.add_projection("mp", a, a, connectivity=sparse, init={"w": px.init.Uniform(0.0, 1.0)}, row_stride=8)
    net.add_connectivity_update("prune_small", "mp", px.structural.magnitude_prune(0.4), var_refs={"weight": "w"})
    net.add_projection("rr", a, a, connectivity=sparse, init={"w": px.init.Uniform(0.0, 0.5)}, row_stride=8)
    net.add_connectivity_update("rprune", "rr", px.structural.random_prune(0.3))
    net.add_connectivity_update("regrow", "rr", px.structural.random_regrow(7, w_init=0.2),
                                var_refs={"weight": "w"})
    # DEEP R as e-prop attaches it: every synapse starts with sign +1, so the negative weights are dormant
    net.add_projection("dr", a, a, connectivity=sparse, weight_update=SIGNED_SYNAPSE,
                       init={"w": px.init.Uniform(-1.0, 1.0)}, row_stride=8)
    refs = {"weight": "w", "sign": "sign"}
    net.add_connectivity_update("deep_r_prune", "dr", px.structural.deep_r_prune(), var_refs=refs)
    net.add_connectivity_update("deep_r_regrow", "dr", px.structural.deep_r_regrow(), var_refs=refs,
                                row_var_refs={"removed": "deep_r_prune.removed"})
    return net


def _run_rules(backend):
    sim = px.Simulation(_rules_net(), backend=backend)
    sim.record_spikes("a")
    sim.run(6)
    stats = {}
    for group in RULES:
        stats.update({k: {c: v[c] for c in ("removed", "added", "failed_adds")}
                      for k, v in sim.custom_update(group).items()})
    sim.run(6)
    return sim, stats


def test_shipped_structural_rules_and_subtractive_lif_match_cpu():
    (cpu, cpu_stats), (gpu, gpu_stats) = _run_rules("cpu"), _run_rules("cuda")
    assert gpu_stats == cpu_stats
    assert cpu_stats["prune_small"]["removed"] > 0 and cpu_stats["rprune"]["removed"] > 0
    assert cpu_stats["regrow"]["added"] > 0
    # DEEP R conserves the number of synapses: every pruned one regrows (the rows have room)
    assert cpu_stats["deep_r_regrow"]["added"] == cpu_stats["deep_r_prune"]["removed"] > 0
    for proj in ("mp", "rr", "dr"):
        for k in range(2):
            np.testing.assert_array_equal(cpu.connectivity(proj)[k], gpu.connectivity(proj)[k])
        np.testing.assert_array_equal(cpu.get(proj, "w"), gpu.get(proj, "w"))
    np.testing.assert_array_equal(cpu.get("dr", "sign"), gpu.get("dr", "sign"))
    assert spike_pairs(*cpu.spikes("a"), 1.0) == spike_pairs(*gpu.spikes("a"), 1.0)
    assert len(cpu.spikes("a")[0]) > 10


def _topomap_net(params, side=4):
    """model.build's network on a side x side grid (the model's own is 16 x 16, slow on the simulator):
    stimulus source, conductance LIF targets, STDP, and Bamford rewiring of both projections (the lateral
    one with a fan-in cap: the rule's row.in_degree path) every 3 steps."""
    from plastix.topomap import model

    n = side * side
    net = px.Network(dt=params.dt, seed=params.seed)
    pos = px.connect.grid_positions((side, side))
    src = net.add_population("source", n, model.stimulus_poisson(params),
                             init={"row": pos[:, 0], "col": pos[:, 1]})
    tgt = net.add_population("target", n, px.neurons.conductance_lif(
        C=params.c, tau_m=params.tau_m, v_rest=params.v_rest, v_reset=params.v_rest, v_thresh=params.v_thresh,
        tau_refrac=params.tau_refrac), init={"v": px.init.Uniform(-60.0, -54.5)})
    for name, pre, cap in (("ff", src, 0), ("lat", tgt, 4)):
        stdp = px.weight_update.stdp_additive(tau_plus=params.tau_plus, tau_minus=params.tau_minus,
                                              a_plus=0.02, a_minus=0.03, w_min=0.0, w_max=params.g_max)
        proj = net.add_projection(name, pre, tgt, connectivity=px.connect.GaussianGrid2D(0.5, 1.5),
                                  weight_update=stdp, postsynaptic=px.postsynaptic.exp_cond(tau=5.0, e_rev=0.0),
                                  init={"w": px.init.Uniform(0.0, params.g_max)}, row_stride=16)
        rule = model.bamford_rewiring(dataclasses.replace(params, fan_in_cap=cap), 0.8, 1.5, side, side,
                                      attempts=12.0, n_pre=n)
        net.add_connectivity_update(f"rewire_{name}", proj, rule, var_refs={"weight": "w"}, every=3)
    return net


def test_topomap_model_matches_cpu():
    from plastix.topomap import model

    params = dataclasses.replace(model.TopomapParams(seed=2), base_rate=300.0, peak_rate=3000.0,
                                 p_elim_dep=0.5, p_elim_pot=0.2, s_max=8)
    sims = {}
    for backend in ("cpu", "cuda"):
        sim = px.Simulation(_topomap_net(params), backend=backend)
        row, col = model.stimulus_schedule(params, 2.0)
        sim.set_egp("source", "stim_row", row)
        sim.set_egp("source", "stim_col", col)
        sim.record_spikes("source")
        sim.record_spikes("target")
        sim.run(10)
        sims[backend] = sim
    cpu, gpu = sims["cpu"], sims["cuda"]
    assert len(cpu.spikes("source")[0]) > 0
    for pop in ("source", "target"):
        assert spike_pairs(*cpu.spikes(pop), 0.1) == spike_pairs(*gpu.spikes(pop), 0.1)
    for proj in ("ff", "lat"):
        for k in range(2):
            np.testing.assert_array_equal(cpu.connectivity(proj)[k], gpu.connectivity(proj)[k])
        assert cpu.update_stats(f"rewire_{proj}") == gpu.update_stats(f"rewire_{proj}")
        assert cpu.update_stats(f"rewire_{proj}")["removed"] + cpu.update_stats(f"rewire_{proj}")["added"] > 0
        np.testing.assert_allclose(gpu.get(proj, "w"), cpu.get(proj, "w"), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gpu.get("target", "v"), cpu.get("target", "v"), rtol=1e-5, atol=1e-4)


def test_bench_sim_network_matches_cpu():
    """The network ``plastix bench-sim --backend cuda`` times (noisy LIF, delayed recurrent synapses)."""
    from plastix.bench import lif_network

    sims = {}
    for backend in ("cpu", "cuda"):
        net, _ = lif_network.build(24, 6, seed=3)
        sim = px.Simulation(net, backend=backend)
        sim.record_spikes("lif")
        sim.run(30)
        sims[backend] = sim
    cpu, gpu = sims["cpu"], sims["cuda"]
    assert len(cpu.spikes("lif")[0]) > 0
    assert spike_pairs(*cpu.spikes("lif"), 0.1) == spike_pairs(*gpu.spikes("lif"), 0.1)
