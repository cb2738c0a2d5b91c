"""Runtime behaviour: recording, delays, split runs, save/load continuation, get/set, reset, callbacks and
reproducibility across runs and thread counts."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import make_sim, spike_pairs

import plastix as px


def _net(seed=4, noisy=True, delay=1):
    """Recurrent LIF with Poisson drive: exercises RNG, delays and propagation."""
    net = px.Network(dt=1.0, seed=seed)
    drive = net.add_population("drive", 50, px.neurons.poisson(), init={"rate": 40.0})
    a = net.add_population("a", 80, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                           init={"i_offset": px.init.Uniform(0.2, 0.6), "v": px.init.Uniform(0, 9)})
    net.add_projection("da", drive, a, connectivity=px.connect.FixedProbability(0.2), init={"w": 1.0})
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(12), init={"w": px.init.Normal(0, 0.4)},
                       delay=delay, postsynaptic=px.postsynaptic.exp_curr(4.0))
    return net


def _run(sim, steps):
    sim.record_spikes("a")
    sim.run(steps)
    return spike_pairs(*sim.spikes("a"), 1.0)


def test_split_runs_equal_one_run(cpu_mode):
    one = _run(make_sim(_net(), cpu_mode), 120)
    sim = make_sim(_net(), cpu_mode)
    sim.record_spikes("a")
    for n in (1, 30, 0, 89):
        sim.run(n)
    assert spike_pairs(*sim.spikes("a"), 1.0) == one
    assert sim.step == 120 and sim.t == 120.0
    assert len(one) > 100


def test_same_seed_same_spikes_any_thread_count():
    runs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        sim = px.Simulation(_net(), backend="cpu", parallel=True, partitions=2, threads=threads)
        runs.append(_run(sim, 100))
    runs.append(_run(px.Simulation(_net(), backend="cpu", parallel=True, partitions=2), 100))
    assert runs[0] == runs[1] == runs[2]
    other_seed = _run(px.Simulation(_net(seed=5), backend="cpu", parallel=True, partitions=2), 100)
    assert other_seed != runs[0]


def test_delay_shifts_delivery_by_whole_steps():
    """One source spike at step 3 reaches the target's in_syn at step 3 + 1 + delay: delays 0, 1 and 4 as
    three projections onto three targets of one network (one compiled model)."""
    delays = (0, 1, 4)
    net = px.Network(dt=1.0, seed=1)
    src = net.add_population("src", 1, px.neurons.spike_source_array())
    tgt = net.add_population("tgt", len(delays), px.neurons.leaky_integrator(tau_m=1e9))
    for k, delay in enumerate(delays):
        net.add_projection(f"st{delay}", src, tgt, connectivity=px.connect.FromArrays([0], [k]), init={"w": 2.0},
                           delay=delay)
    sim = px.Simulation(net, backend="cpu")
    sim.set_spike_times("src", [np.array([3.0])])
    sim.record("tgt", "v")
    sim.run(12)
    for k, delay in enumerate(delays):
        v = sim.recorded("tgt", "v")[:, k]
        first = int(np.flatnonzero(v > 0)[0])
        assert first == 3 + 1 + delay
        assert v[first] == pytest.approx(2.0)


def test_variable_recording_every_n_steps():
    net = px.Network(dt=1.0, seed=1)
    net.add_population("li", 3, px.neurons.leaky_integrator(tau_m=10.0), init={"bias": [1.0, 2.0, 3.0]})
    sim = px.Simulation(net, backend="cpu")
    sim.record("li", "v", every=5)
    sim.run(20)
    sim.run(7)
    rec = sim.recorded("li", "v")
    alpha = np.float32(np.exp(-0.1))
    v = np.zeros(3, np.float32)
    want = []
    for s in range(27):
        v = alpha * v + np.float32(0) + np.array([1, 2, 3], np.float32)
        if (s < 20 and s % 5 == 0) or (s >= 20 and (s - 20) % 5 == 0):
            want.append(v.copy())
    np.testing.assert_allclose(rec, np.array(want), rtol=1e-6)


def test_save_load_continues_exactly(tmp_path, cpu_mode):
    ref = make_sim(_net(), cpu_mode)
    ref.record_spikes("a")
    ref.run(150)
    want = [p for p in spike_pairs(*ref.spikes("a"), 1.0) if p[0] >= 70]

    first = make_sim(_net(), cpu_mode)
    first.run(70)
    first.save(tmp_path / "state.npz")
    # a fresh simulation of the same network, loaded, continues as if it had never stopped
    second = make_sim(_net(), cpu_mode)
    second.load(tmp_path / "state.npz")
    assert second.step == 70
    second.record_spikes("a")
    second.run(80)
    assert spike_pairs(*second.spikes("a"), 1.0) == want
    np.testing.assert_array_equal(second.get("a", "v"), ref.get("a", "v"))
    np.testing.assert_array_equal(second.get("aa", "in_syn"), ref.get("aa", "in_syn"))


def test_load_rejects_other_network(tmp_path):
    sim = px.Simulation(_net(), backend="cpu")
    sim.save(tmp_path / "s.npz")
    other = px.Simulation(_net(delay=2), backend="cpu")
    with pytest.raises(px.StateError, match="different network"):
        other.load(tmp_path / "s.npz")
    with pytest.raises(FileNotFoundError, match="no saved state"):
        other.load(tmp_path / "missing.npz")


def test_get_set_round_trips_and_connectivity():
    sim = px.Simulation(_net(), backend="cpu")
    v = np.linspace(0, 5, 80)
    sim.set("a", "v", v)
    np.testing.assert_array_equal(sim.get("a", "v"), v.astype(np.float32))
    pre, post = sim.connectivity("aa")
    assert len(pre) == 80 * 12 and np.all(np.diff(pre) >= 0)
    assert all(len(set(post[pre == i])) == 12 for i in range(80))
    w = np.arange(len(pre), dtype=np.float32) / 1000  # value encodes its position
    sim.set("aa", "w", w)
    np.testing.assert_array_equal(sim.get("aa", "w"), w)
    r = sim.ragged("aa", "w")
    np.testing.assert_array_equal(r["w"][pre, np.concatenate([np.arange(12)] * 80)], w)
    sim.set("a", "i_offset", 0.5)  # scalars broadcast
    assert np.all(sim.get("a", "i_offset") == 0.5)
    sim.set_param("aa", "tau", 8.0)  # derived decay follows
    assert sim.state["q1_pp_decay"] == np.float32(np.exp(-1 / 8))


def test_reset_restores_initial_state():
    sim = px.Simulation(_net(), backend="cpu")
    a = _run(sim, 60)
    v0 = sim.get("a", "v")
    sim.reset()
    assert sim.step == 0 and sim.spike_count("a") == 0
    assert _run(sim, 60) == a
    np.testing.assert_array_equal(sim.get("a", "v"), v0)


def test_callback_and_progress(capsys):
    sim = px.Simulation(_net(), backend="cpu")
    seen = []
    sim.run(50, callback=lambda s: seen.append(s.step), every=20)
    assert seen == [20, 40, 50]
    sim.run(30, progress=True)
    assert sim.step == 80


def test_spike_recording_overflow_is_an_error():
    sim = px.Simulation(_net(), backend="cpu")
    sim.record_spikes("a", max_spikes=5)
    with pytest.raises(px.CapacityError, match="max_spikes is 5"):
        sim.run(100)


def test_dense_projection_equals_all_to_all_sparse():
    outs = []
    for conn in (px.connect.Dense(), px.connect.AllToAll()):
        net = px.Network(dt=1.0, seed=9)
        a = net.add_population("a", 20, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=5.0),
                               init={"i_offset": px.init.Uniform(0.1, 0.5)})
        b = net.add_population("b", 7, px.neurons.leaky_integrator())
        w = np.random.default_rng(0).normal(0, 1, 20 * 7)
        net.add_projection("ab", a, b, connectivity=conn, init={"w": w})
        sim = px.Simulation(net, backend="cpu")
        sim.record("b", "v")
        sim.run(60)
        outs.append(sim.recorded("b", "v"))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).max() > 0


def test_set_connectivity_rebuilds_rows_and_column_view(cpu_mode):
    """Edited connectivity transmits and learns along exactly the new synapses (STDP uses the column view)."""
    from conftest import reference_inputs
    from numpy_reference import simulate

    net = px.Network(dt=1.0, seed=2, precision="float32" if cpu_mode == "serial" else "float64")
    a = net.add_population("a", 30, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                           init={"i_offset": 0.0})  # silent for the first 20 steps: nothing in flight at the edit
    stdp = px.weight_update.stdp_additive(tau_plus=10.0, tau_minus=10.0, a_plus=0.05, a_minus=0.05, w_max=2.0)
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(4), weight_update=stdp,
                       init={"w": 0.5}, row_stride=8)
    sim = make_sim(net, cpu_mode)
    sim.run(20)
    sim.set("a", "i_offset", np.random.default_rng(1).uniform(0.4, 0.9, 30))
    rng = np.random.default_rng(3)
    pre = np.repeat(np.arange(30), 6)
    post = np.concatenate([rng.choice(30, 6, replace=False) for _ in range(30)])
    w = rng.uniform(0, 1, pre.size)
    sim.set_connectivity("aa", pre, post, w=w)
    got_pre, got_post = sim.connectivity("aa")
    np.testing.assert_array_equal(got_pre, pre)
    np.testing.assert_array_equal(got_post, post)
    np.testing.assert_allclose(sim.get("aa", "w"), w, rtol=1e-6)
    # from here the compiled run must equal the reference run on the new connectivity
    pops, projs = reference_inputs(sim)
    sim.record_spikes("a")
    sim.run(60)
    ref = simulate(pops, projs, 60, 1.0, precision=net.precision, start_step=20)
    rs, ri = ref["spikes"]["a"]
    assert spike_pairs(*sim.spikes("a"), 1.0) == sorted(zip(np.asarray(rs).tolist(), np.asarray(ri).tolist()))
    np.testing.assert_allclose(sim.get("aa", "w"), ref["syn_vars"]["aa"]["w"][:, :6].ravel(),
                               rtol=1e-6)
    with pytest.raises(px.CapacityError, match="row_stride is 8"):
        sim.set_connectivity("aa", np.zeros(9, int), np.arange(9))
