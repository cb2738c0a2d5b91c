"""The batch dimension: ``Simulation(net, batch_size=B)`` runs B independent copies of the dynamics that
share connectivity and shared synapse variables.  Reference: B separate unbatched simulations (which
tests/test_numpy_reference.py checks against plain numpy), spike for spike and state to the bit on the
CPU; the CUDA kernels run on numba-cuda's simulator."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons, postsynaptic
from plastix.kernels import launch
from plastix.kernels.rng import host_batch_seed

B = 3
T = 40


def _on_pre(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine
    s.e += s.w


def _pre_dyn(pre, p):
    pre.x *= p.decay


def _pre_spike(pre):
    pre.x += 1.0


#: weights shared by the batch; a per-element synaptic trace ``e`` and presynaptic trace ``x``
TRACE_SYNAPSE = px.WeightUpdateModel(
    name="trace_synapse", params={"decay": 0.9}, vars={"w": 0.0, "e": px.Var(0.0, access=px.VarAccess.READ_WRITE)},
    pre_vars={"x": 0.0}, on_pre=_on_pre, pre_dynamics=_pre_dyn, pre_spike=_pre_spike)


def _network(seed=3, connectivity=None):
    net = px.Network(dt=1.0, seed=seed)
    net.add_population("inp", 16, neurons.spike_source_array())
    net.add_population("hid", 24, neurons.lif())
    net.add_projection("ih", "inp", "hid", connectivity=connectivity or connect.FixedProbability(0.4),
                       weight_update=TRACE_SYNAPSE, init={"w": px.init.Uniform(0.5, 3.0)},
                       postsynaptic=postsynaptic.exp_curr(tau=5.0))
    net.add_projection("hh", "hid", "hid", connectivity=connect.FixedProbability(0.2),
                       init={"w": px.init.Normal(0.3, 0.2)}, delay=2)
    return net


def _trains(seed=0):
    rng = np.random.default_rng(seed)
    return [[np.sort(rng.uniform(0, T - 5, rng.integers(0, 7))) for _ in range(16)] for _ in range(B)]


def _run(sim, trains):
    sim.record_spikes("hid")
    sim.record("hid", "v")
    sim.set_spike_times("inp", trains)
    sim.run(T)
    return sim


def _separate(trains, **kw):
    return [_run(px.Simulation(_network(), backend="cpu", parallel=False, **kw), trains[b]) for b in range(B)]


def _assert_equals_separate(sim, refs, exact=True):
    same = np.testing.assert_array_equal if exact else (lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4))
    rec = sim.recorded("hid", "v")
    assert rec.shape == (B, T, 24)
    for b, ref in enumerate(refs):
        t, i = sim.spikes("hid", b)
        rt, ri = ref.spikes("hid")
        np.testing.assert_array_equal(t, rt)
        np.testing.assert_array_equal(i, ri)
        same(rec[b], ref.recorded("hid", "v"))
        for group, var in (("hid", "v"), ("hid", "refrac"), ("ih", "in_syn"), ("ih", "e"), ("ih", "x")):
            same(sim.get(group, var)[b], ref.get(group, var))
    np.testing.assert_array_equal(sim.get("ih", "w"), refs[0].get("ih", "w"))  # shared: one copy
    np.testing.assert_array_equal(sim.spike_count("hid"), [r.spike_count("hid") for r in refs])


@pytest.fixture(scope="module")
def separate():
    trains = _trains()
    return trains, _separate(trains)


def test_batched_cpu_equals_separate_runs(separate):
    trains, refs = separate
    sim = _run(px.Simulation(_network(), backend="cpu", batch_size=B), trains)
    assert sum(len(r.spikes("hid")[0]) for r in refs) > 20  # the comparison has spikes to compare
    _assert_equals_separate(sim, refs)
    t, i, elem = sim.spikes("hid")  # every element at once: ordered by element, time, neuron
    assert np.array_equal(np.bincount(elem, minlength=B), [len(r.spikes("hid")[0]) for r in refs])


def test_batched_results_do_not_depend_on_threads(separate):
    trains, _ = separate
    a = _run(px.Simulation(_network(), backend="cpu", batch_size=B, threads=1), trains)
    b = _run(px.Simulation(_network(), backend="cpu", batch_size=B), trains)
    np.testing.assert_array_equal(a.recorded("hid", "v"), b.recorded("hid", "v"))
    np.testing.assert_array_equal(a.get("ih", "e"), b.get("ih", "e"))


def test_batched_cuda_equals_separate_runs(separate, monkeypatch):
    pytest.importorskip("numba.cuda")
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)  # several blocks even for a tiny network
    monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    trains, refs = separate
    sim = _run(px.Simulation(_network(), backend="cuda", batch_size=B), trains)
    _assert_equals_separate(sim, refs, exact=False)


def test_batch_of_one_is_the_unbatched_engine(separate):
    trains, refs = separate
    sim = _run(px.Simulation(_network(), backend="cpu", parallel=False, batch_size=1), trains[0])
    np.testing.assert_array_equal(sim.recorded("hid", "v"), refs[0].recorded("hid", "v"))
    assert sim.get("hid", "v").shape == (24,)


def _poisson_net(seed):
    net = px.Network(dt=1.0, seed=seed)
    inp = net.add_population("inp", 30, neurons.poisson(), init={"rate": 80.0})
    net.add_population("out", 5, neurons.lif())
    net.add_projection("io", inp, "out", connectivity=connect.AllToAll(), init={"w": 1.5})
    return net


def test_batch_elements_draw_from_their_own_streams():
    """Element b draws what an unbatched run keyed by host_batch_seed(seed, b) draws (deterministic
    initialisation here, so only the streams differ); element 0 keeps the network's seed."""
    sim = px.Simulation(_poisson_net(11), backend="cpu", batch_size=B)
    sim.record_spikes("inp")
    sim.run(50)
    trains = []
    for b in range(B):
        ref = px.Simulation(_poisson_net(host_batch_seed(11, b)), backend="cpu", parallel=False)
        ref.record_spikes("inp")
        ref.run(50)
        t, i = sim.spikes("inp", b)
        np.testing.assert_array_equal(t, ref.spikes("inp")[0])
        np.testing.assert_array_equal(i, ref.spikes("inp")[1])
        trains.append(len(t))
    assert host_batch_seed(11, 0) == 11 and len(set(trains)) > 1


def test_get_set_with_batch_axis():
    sim = px.Simulation(_network(), backend="cpu", batch_size=B)
    v = sim.get("hid", "v")
    assert v.shape == (B, 24)
    sim.set("hid", "v", np.arange(24.0))  # one element's shape: every element
    assert np.all(sim.get("hid", "v") == np.arange(24.0))
    per = np.arange(B * 24.0).reshape(B, 24)
    sim.set("hid", "v", per)
    np.testing.assert_array_equal(sim.get("hid", "v"), per)
    n_syn = sim.get("ih", "w").shape[0]
    assert sim.get("ih", "e").shape == (B, n_syn) and sim.get("ih", "w").shape == (n_syn,)
    with pytest.raises(px.StateError, match=r"expected shape \(3, 24\).*or \(24,\)"):
        sim.set("hid", "v", np.zeros((2, 24)))
    with pytest.raises(px.StateError, match="expected 3 sequences"):
        sim.set_spike_times("inp", _trains()[0])


def test_checkpoint_round_trip_with_batch(tmp_path, separate):
    trains, _ = separate
    a = px.Simulation(_network(), backend="cpu", batch_size=B)
    a.set_spike_times("inp", trains)
    a.run(T // 2)
    a.save(tmp_path / "s.npz")
    a.run(T - T // 2)
    b = px.Simulation(_network(), backend="cpu", batch_size=B)
    b.load(tmp_path / "s.npz")
    b.run(T - T // 2)
    np.testing.assert_array_equal(a.get("hid", "v"), b.get("hid", "v"))
    np.testing.assert_array_equal(a.get("ih", "e"), b.get("ih", "e"))


def test_batched_errors():
    with pytest.raises(px.NetworkError, match="batch_size must be an integer"):
        px.Simulation(_network(), batch_size=0)
    stdp = px.Network(dt=1.0)
    stdp.add_population("a", 4, neurons.poisson(), init={"rate": 50.0})
    stdp.add_population("b", 4, neurons.lif())
    stdp.add_projection("ab", "a", "b", connectivity=connect.AllToAll(), weight_update=px.weight_update.stdp_additive())
    sim = px.Simulation(stdp, backend="cpu", batch_size=2)
    with pytest.raises(px.NetworkError, match=r"writes 'w', which is shared by the batch"):
        sim.run(1)
    px.Simulation(stdp, backend="cpu", batch_size=1).run(1)  # unbatched: allowed, as always
    ro = px.WeightUpdateModel(name="ro", vars={"w": px.Var(1.0, access=px.VarAccess.READ_ONLY)}, on_pre=_write_w)
    net = px.Network(dt=1.0)
    net.add_population("a", 2, neurons.poisson())
    net.add_population("b", 2, neurons.lif())
    net.add_projection("ab", "a", "b", connectivity=connect.AllToAll(), weight_update=ro)
    with pytest.raises(px.ModelError, match="writes 'w', declared read_only"):
        px.Simulation(net, backend="cpu").run(1)


def _write_w(s):
    s.w += 1.0


def test_scheduled_rewiring_needs_batch_of_one():
    net = _network()
    net.add_connectivity_update("prune", "hh", px.structural.random_prune(0.1), every=5)
    with pytest.raises(px.NetworkError, match="runs every 5 steps inside the time loop, but batch_size is 3"):
        px.Simulation(net, backend="cpu", batch_size=B).run(1)


def test_reset_trial_restores_per_element_state_and_keeps_shared(separate):
    trains, refs = separate
    sim = px.Simulation(_network(), backend="cpu", batch_size=B)
    sim.set_spike_times("inp", trains)
    sim.run(T)
    sim.set("ih", "w", 2.5)  # shared: kept
    sim.reset_trial()
    assert np.all(sim.get("hid", "v") == -70.0) and np.all(sim.get("ih", "e") == 0.0)
    assert np.all(sim.get("ih", "w") == 2.5)
    sim.set("ih", "w", refs[0].get("ih", "w"))  # the same trial again, from rest, gives the same spikes
    sim.record_spikes("hid")
    sim.set_spike_times("inp", [[t + sim.t for t in per] for per in [[np.asarray(x) for x in el] for el in trains]])
    sim.run(T)
    for b in range(B):
        t, i = sim.spikes("hid", b)
        np.testing.assert_array_equal(t - T, refs[b].spikes("hid")[0])
        np.testing.assert_array_equal(i, refs[b].spikes("hid")[1])
