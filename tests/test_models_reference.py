"""Every built-in model against the independent plain-numpy reference (tests/numpy_reference.py).

Serial CPU kernels add inputs in the reference's order, so in float32 spikes and state must match bit for
bit.  Parallel kernels sum per-partition buffers (a different float order), so they are compared in
float64: spikes exactly, state to 1e-9 relative."""
from __future__ import annotations

import numpy as np
from conftest import make_sim, reference_inputs, spike_pairs
from numpy_reference import simulate

import plastix as px


def _precision(mode):
    return "float32" if mode == "serial" else "float64"


def _compare(sim, steps, spike_times=None, min_spikes=None):
    pops, projs = reference_inputs(sim, spike_times)
    net = sim.network
    for name, pop in net.populations.items():
        if pop.model.spikes:
            sim.record_spikes(name)
    sim.run(steps)
    ref = simulate(pops, projs, steps, net.dt, precision=net.precision)
    exact = net.precision == "float32"
    for name, pop in net.populations.items():
        if pop.model.spikes:
            got = spike_pairs(*sim.spikes(name), net.dt)
            rs, ri = ref["spikes"][name]
            want = sorted(zip(np.asarray(rs).tolist(), np.asarray(ri).tolist()))
            assert got == want, f"spikes of {name} differ"
            if min_spikes and name in min_spikes:
                assert len(got) >= min_spikes[name], f"{name}: too few spikes ({len(got)}) to be a meaningful test"
        for v, arr in ref["vars"][name].items():
            if v in ("start_spike", "end_spike"):
                continue
            _check(sim.get(name, v), arr, exact, f"{name}.{v}")
    for q in projs:
        w = sim.ragged(q["name"], "w")["w"]
        valid = np.arange(w.shape[1])[None, :] < q["row_length"][:, None]
        ref_w = ref["syn_vars"][q["name"]]["w"]
        _check(w[valid], ref_w[valid], exact, f"{q['name']}.w")
        _check(sim.get(q["name"], "in_syn"), ref["in_syn"][q["name"]], exact, f"{q['name']}.in_syn")
        for side in ("pre_vars", "post_vars"):
            for v, arr in ref[side][q["name"]].items():
                _check(sim.get(q["name"], v), arr, exact, f"{q['name']}.{v}")


def _check(got, want, exact, what):
    if exact:
        np.testing.assert_array_equal(got, np.asarray(want, dtype=got.dtype), err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=what)


def test_lif_delays_and_exp_current(cpu_mode):
    net = px.Network(dt=1.0, seed=11, precision=_precision(cpu_mode))
    lif = dict(v_rest=0.0, v_reset=0.0, v_thresh=20.0)
    a = net.add_population("a", 60, px.neurons.lif(**lif),
                           init={"v": px.init.Uniform(0.0, 19.0), "i_offset": px.init.Uniform(0.9, 1.6)})
    b = net.add_population("b", 40, px.neurons.lif(reset="subtract", **lif), init={"i_offset": 0.8, "v": 0.0})
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(10), init={"w": px.init.Normal(0.0, 0.3)},
                       delay=2)
    net.add_projection("ab", a, b, connectivity=px.connect.FixedProbability(0.2), init={"w": px.init.Uniform(0, 0.5)},
                       postsynaptic=px.postsynaptic.exp_curr(tau=5.0))
    _compare(make_sim(net, cpu_mode), 200, min_spikes={"a": 200, "b": 50})


def test_conductance_lif_stdp_from_spike_source_array(cpu_mode):
    rng = np.random.default_rng(5)
    times = [np.sort(rng.uniform(0, 60, rng.integers(3, 30))) for _ in range(30)]
    net = px.Network(dt=0.5, seed=3, precision=_precision(cpu_mode))
    src = net.add_population("src", 30, px.neurons.spike_source_array())
    tgt = net.add_population("tgt", 25, px.neurons.conductance_lif(C=1.0), init={"v": px.init.Normal(-60.0, 5.0)})
    stdp = px.weight_update.stdp_additive(tau_plus=20.0, tau_minus=64.0, a_plus=0.02, a_minus=0.03, w_max=0.5)
    net.add_projection("ff", src, tgt, connectivity=px.connect.FixedProbability(0.5), weight_update=stdp,
                       postsynaptic=px.postsynaptic.exp_cond(tau=5.0, e_rev=0.0), init={"w": px.init.Uniform(0, 0.5)})
    net.add_projection("lat", tgt, tgt, connectivity=px.connect.FixedNumberPost(5), init={"w": 0.05},
                       postsynaptic=px.postsynaptic.exp_cond(tau=5.0, e_rev=0.0), delay=1)
    sim = make_sim(net, cpu_mode)
    sim.set_spike_times("src", times)
    _compare(sim, 140, spike_times={"src": times}, min_spikes={"src": 100, "tgt": 20})


def test_alif_and_dense_leaky_integrator_readout(cpu_mode):
    rng = np.random.default_rng(8)
    times = [np.sort(rng.uniform(0, 80, 12)) for _ in range(20)]
    net = px.Network(dt=1.0, seed=5, precision=_precision(cpu_mode))
    inp = net.add_population("in", 20, px.neurons.spike_source_array())
    hid = net.add_population("h", 30, px.neurons.alif(tau_refrac=2.0))
    out = net.add_population("out", 5, px.neurons.leaky_integrator(), init={"bias": px.init.Normal(0, 0.01)})
    net.add_projection("ih", inp, hid, connectivity=px.connect.FixedProbability(0.5),
                       init={"w": px.init.Uniform(0, 0.6)})
    net.add_projection("hh", hid, hid, connectivity=px.connect.FixedProbability(0.3),
                       init={"w": px.init.Normal(0, 0.3)})
    net.add_projection("ho", hid, out, connectivity=px.connect.Dense(), init={"w": px.init.Normal(0, 0.5)},
                       postsynaptic=px.postsynaptic.exp_curr(tau=10.0))
    sim = make_sim(net, cpu_mode)
    sim.set_spike_times("in", times)
    _compare(sim, 100, spike_times={"in": times}, min_spikes={"in": 200, "h": 50})


def test_poisson_rate_and_reproducibility(cpu_mode):
    net = px.Network(dt=1.0, seed=21)
    net.add_population("p", 400, px.neurons.poisson(), init={"rate": np.linspace(10.0, 90.0, 400)})
    sim = make_sim(net, cpu_mode)
    sim.record_spikes("p")
    steps = 1000
    sim.run(steps)
    t, i = sim.spikes("p")
    expected = np.linspace(10.0, 90.0, 400).sum() * steps * 1e-3
    assert abs(len(t) - expected) < 4 * np.sqrt(expected)
    # per-neuron counts follow the rates (correlation of counts with rates)
    counts = np.bincount(i, minlength=400)
    assert np.corrcoef(counts, np.linspace(10, 90, 400))[0, 1] > 0.9
    # the same seed gives the same spikes in every mode (counter-based RNG), also the other CPU mode
    other = make_sim(net, "serial" if cpu_mode == "parallel" else "parallel")
    other.record_spikes("p")
    other.run(steps)
    assert spike_pairs(*other.spikes("p"), 1.0) == spike_pairs(t, i, 1.0)


def test_poisson_rate_change_during_run():
    net = px.Network(dt=1.0, seed=2)
    net.add_population("p", 500, px.neurons.poisson(), init={"rate": 0.0})
    sim = px.Simulation(net, backend="cpu")
    sim.record_spikes("p")
    sim.run(200)
    assert len(sim.spikes("p")[0]) == 0
    sim.set("p", "rate", 100.0)
    sim.run(200)
    n = len(sim.spikes("p")[0])
    assert abs(n - 10_000) < 4 * np.sqrt(10_000)
