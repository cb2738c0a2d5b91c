"""Connectivity updates on the CUDA backend (numba-cuda simulator in CI) against the CPU backend.

Random numbers are counter-based, so the same seed gives the same rewiring on both backends: connectivity
must match exactly, through triggered and scheduled updates, with STDP learning on the rewired synapses
(its column view is rebuilt on the device inside the time loop)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import spike_pairs, stdp_recurrent_net

import plastix as px

pytest.importorskip("numba.cuda")
from plastix.backends import cuda_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not cuda_available(), reason="needs numba-cuda (simulator or GPU)"),
              pytest.mark.usefixtures("small_cuda_blocks")]


def _net():
    net, proj = stdp_recurrent_net(24, row_stride=10, seed=3)
    net.add_connectivity_update("set", proj, px.structural.set_rewire(0.3), var_refs={"weight": "w"})
    net.add_connectivity_update("turnover", proj, px.structural.random_replace(1), var_refs={"weight": "w"},
                                every=5)
    return net


def _run(backend):
    sim = px.Simulation(_net(), backend=backend)
    sim.record_spikes("a")
    sim.run(15)
    sim.custom_update("set")
    sim.run(15)
    return sim


def test_rewiring_on_cuda_matches_cpu():
    cpu, gpu = _run("cpu"), _run("cuda")
    for k in range(2):
        np.testing.assert_array_equal(cpu.connectivity("aa")[k], gpu.connectivity("aa")[k])
    np.testing.assert_allclose(gpu.get("aa", "w"), cpu.get("aa", "w"), rtol=1e-9, atol=1e-12)
    assert cpu.update_stats("turnover") == gpu.update_stats("turnover")
    assert cpu.update_stats("turnover")["removed"] == 24 * 6  # 6 scheduled calls x 24 rows
    assert spike_pairs(*cpu.spikes("a"), 1.0) == spike_pairs(*gpu.spikes("a"), 1.0)
    assert len(cpu.spikes("a")[0]) > 20
    # the device-built column view holds the same synapses (order within a column may differ on a GPU)
    gpu.backend.pull(gpu.state)
    for st in (cpu.state, gpu.state):
        st["_cols"] = [sorted(st["q0_colsyn"][j, :st["q0_collen"][j]].tolist()) for j in range(24)]
    assert cpu.state["_cols"] == gpu.state["_cols"]


def test_global_phase_on_cuda_matches_cpu():
    """The compiled global phase runs on the host for the CUDA backend (arrays copied both ways)."""
    from test_global_phase import _net as global_net

    sims = {}
    for backend in ("cpu", "cuda"):
        sim = px.Simulation(global_net("compiled"), backend=backend)
        sim.custom_update("prune")
        sim.custom_update("regrow")
        sims[backend] = sim
    for k in range(2):
        np.testing.assert_array_equal(sims["cpu"].connectivity("aa")[k], sims["cuda"].connectivity("aa")[k])
    assert sims["cpu"].get("regrow", "total")[0] == sims["cuda"].get("regrow", "total")[0] > 0


def test_scheduled_rule_with_global_phase_matches_cpu():
    """Scheduled updates whose global phase runs on the host: the CUDA run is split at their steps."""
    from test_global_phase import PRUNE

    def net():
        n = px.Network(dt=1.0, seed=4, precision="float64")
        a = n.add_population("a", 30, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                             init={"v": px.init.Uniform(0.0, 9.0), "i_offset": px.init.Uniform(0.5, 1.2)})
        stdp = px.weight_update.stdp_additive(tau_plus=10.0, tau_minus=10.0, a_plus=0.05, a_minus=0.06,
                                              w_min=-1.0, w_max=1.0)
        proj = n.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(5), weight_update=stdp,
                                init={"w": px.init.Uniform(-0.2, 1.0)}, row_stride=12)
        n.add_connectivity_update("prune", proj, PRUNE, var_refs={"weight": "w"}, every=4)
        n.add_connectivity_update("regrow", proj, px.structural.distributed_regrow(w_init=0.3),
                                  var_refs={"weight": "w"}, row_var_refs={"removed": "prune.removed"}, every=4,
                                  group="regrow")
        return n

    out = {}
    for backend in ("cpu", "cuda"):
        sim = px.Simulation(net(), backend=backend)
        sim.record_spikes("a")
        sim.record("a", "v")
        sim.run(13)
        sim.run(11)
        out[backend] = sim
    cpu, gpu = out["cpu"], out["cuda"]
    for k in range(2):
        np.testing.assert_array_equal(cpu.connectivity("aa")[k], gpu.connectivity("aa")[k])
    assert cpu.update_stats("regrow") == gpu.update_stats("regrow")
    assert cpu.update_stats("prune")["removed"] > 0
    assert spike_pairs(*cpu.spikes("a"), 1.0) == spike_pairs(*gpu.spikes("a"), 1.0)
    np.testing.assert_allclose(gpu.recorded("a", "v"), cpu.recorded("a", "v"), rtol=1e-9, atol=1e-9)
