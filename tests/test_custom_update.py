"""Custom updates: per-neuron and per-synapse Python functions run by group, with variable references,
stages, batch reductions and build-time checks.  References: numpy formulas on the values read back; CPU
(serial, parallel, batched) and CUDA (simulator) from the same functions."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch

VA = px.VarAccess
B = 4


def _on_pre(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine
    s.g += s.w * s.w


#: per-element "gradient" g accumulated by spikes; shared weights w
GRAD_SYNAPSE = px.WeightUpdateModel(name="grad_synapse", vars={"w": 0.0, "g": px.Var(0.0, access=VA.READ_WRITE)},
                                    on_pre=_on_pre)


def _reduce(u):
    u.total = u.g
    u.mean = u.g
    u.peak = u.g


REDUCE = px.CustomUpdateModel(
    name="reduce", var_refs={"g": VA.READ_ONLY},
    vars={"total": px.Var(0.0, access=VA.REDUCE_SUM), "mean": px.Var(0.0, access=VA.REDUCE_MEAN),
          "peak": px.Var(0.0, access=VA.REDUCE_MAX)}, update=_reduce)


def _momentum(u, p):
    u.step = p.beta * u.m + (1.0 - p.beta) * u.grad
    u.m = u.step


def _scale(u, p):
    u.step = u.step * p.lr


def _apply(u):
    u.w -= u.step


#: three stages sharing a temporary: momentum, scale by the learning rate, apply
MOMENTUM_SGD = px.CustomUpdateModel(
    name="momentum_sgd", params={"beta": 0.5, "lr": 0.1}, vars={"m": 0.0}, temps=("step",),
    var_refs={"grad": VA.READ_ONLY, "w": VA.READ_WRITE}, update=(_momentum, _scale, _apply))


def _v_stats(u):
    u.vsum = u.v
    u.vmax = u.v


V_STATS = px.CustomUpdateModel(name="v_stats", var_refs={"v": VA.READ_ONLY},
                               vars={"vsum": px.Var(0.0, access=VA.REDUCE_SUM),
                                     "vmax": px.Var(0.0, access=VA.REDUCE_MAX)}, update=_v_stats)


def _network():
    net = px.Network(dt=1.0, seed=5)
    net.add_population("inp", 12, neurons.poisson(), init={"rate": 200.0})
    net.add_population("hid", 10, neurons.lif())
    net.add_projection("ih", "inp", "hid", connectivity=connect.FixedProbability(0.5), weight_update=GRAD_SYNAPSE,
                       init={"w": px.init.Uniform(0.1, 1.0)})
    net.add_custom_update("reduce", "ih", REDUCE, group="grads")
    net.add_custom_update("opt", "ih", MOMENTUM_SGD, var_refs={"grad": "reduce.total"}, group="opt")
    net.add_custom_update("vs", "hid", V_STATS, group="grads")
    return net


MODES = {"cpu-serial": dict(backend="cpu", parallel=False), "cpu-parallel": dict(backend="cpu", parallel=True),
         "cuda": dict(backend="cuda")}


@pytest.fixture(params=sorted(MODES))
def mode(request, monkeypatch):
    if request.param == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
        monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    return MODES[request.param]


@pytest.mark.parametrize("batch", [1, B])
def test_batch_reductions_and_stages_equal_numpy(mode, batch):
    if mode.get("parallel") and batch > 1:
        pytest.skip("a batch always runs its elements in parallel")
    sim = px.Simulation(_network(), batch_size=batch, **mode)
    sim.run(20)
    g = sim.get("ih", "g").reshape(batch, -1)
    v = sim.get("hid", "v").reshape(batch, -1)
    assert g.sum() > 0 and np.ptp(g) > 0
    w0 = sim.get("ih", "w")
    sim.custom_update("grads")
    np.testing.assert_allclose(sim.get("reduce", "total"), g.sum(0), rtol=1e-6)
    np.testing.assert_allclose(sim.get("reduce", "mean"), g.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(sim.get("reduce", "peak"), g.max(0))
    np.testing.assert_allclose(sim.get("vs", "vsum"), v.sum(0), rtol=1e-5)
    np.testing.assert_array_equal(sim.get("vs", "vmax"), v.max(0))
    m = np.zeros_like(w0)
    w = w0.astype(np.float64)
    for _ in range(2):  # the moment persists between calls
        sim.custom_update("opt")
        m = 0.5 * m + 0.5 * g.sum(0)
        w = w - 0.1 * m
    np.testing.assert_allclose(sim.get("opt", "m"), m, rtol=1e-5)
    np.testing.assert_allclose(sim.get("ih", "w"), w, rtol=1e-5)


def test_per_element_custom_update_writes_each_batch_element():
    def decay_g(u, p):
        u.g = u.g * p.f

    net = _network()
    net.add_custom_update("decay", "ih", px.CustomUpdateModel(name="decay", params={"f": 0.25},
                                                              var_refs={"g": VA.READ_WRITE}, update=decay_g))
    sim = px.Simulation(net, backend="cpu", batch_size=B)
    sim.run(10)
    g = sim.get("ih", "g")
    sim.custom_update("decay")
    np.testing.assert_allclose(sim.get("ih", "g"), g * 0.25, rtol=1e-6)


def _noise(u, rng):
    u.x = u.x + rng.normal()


def test_random_draws_do_not_depend_on_threads():
    def make():
        net = px.Network(dt=1.0, seed=9)
        net.add_population("p", 64, neurons.lif())
        net.add_custom_update("noise", "p", px.CustomUpdateModel(name="noise", vars={"x": 0.0}, update=_noise))
        return net
    a = px.Simulation(make(), backend="cpu", parallel=False)
    b = px.Simulation(make(), backend="cpu", parallel=True, threads=2)
    for s in (a, b):
        s.custom_update("noise")
        s.step = 1  # the step keys the draws
        s.custom_update("noise")
    x = a.get("noise", "x")
    np.testing.assert_array_equal(x, b.get("noise", "x"))
    assert abs(x.mean()) < 0.5 and 0.8 < x.std() < 2.0  # sums of two standard normals


def test_own_synapse_vars_move_with_their_synapse():
    def tag(u):
        u.mark = u.w

    net = px.Network(dt=1.0, seed=2)
    net.add_population("a", 6, neurons.poisson())
    net.add_population("b", 8, neurons.lif())
    net.add_projection("ab", "a", "b", connectivity=connect.FixedProbability(0.6),
                       init={"w": px.init.Uniform(-1.0, 1.0)})
    net.add_custom_update("tag", "ab", px.CustomUpdateModel(name="tag", vars={"mark": 0.0},
                                                            var_refs={"w": VA.READ_ONLY}, update=tag))
    net.add_connectivity_update("prune", "ab", px.structural.magnitude_prune(0.5), var_refs={"weight": "w"})
    sim = px.Simulation(net, backend="cpu", parallel=False)
    sim.custom_update("tag")
    res = sim.custom_update("prune")
    assert res["prune"]["removed"] > 0
    np.testing.assert_array_equal(sim.get("tag", "mark"), sim.get("ab", "w"))  # moved with the swap-removes


def test_scheduled_custom_update_equals_manual_calls():
    def count(u):
        u.n = u.n + 1.0
        u.vsum = u.vsum + u.v

    model = px.CustomUpdateModel(name="count", vars={"n": 0.0, "vsum": 0.0}, var_refs={"v": VA.READ_ONLY},
                                 update=count)

    def make(every):
        net = px.Network(dt=1.0, seed=1)
        net.add_population("inp", 10, neurons.poisson(), init={"rate": 300.0})
        net.add_population("hid", 5, neurons.lif())
        net.add_projection("ih", "inp", "hid", connectivity=connect.AllToAll(), init={"w": 1.0})
        net.add_custom_update("count", "hid", model, every=every)
        return net
    auto = px.Simulation(make(4), backend="cpu", parallel=False)
    auto.run(12)
    manual = px.Simulation(make(None), backend="cpu", parallel=False)
    for _ in range(3):
        manual.run(4)
        manual.custom_update("count")
    assert np.all(auto.get("count", "n") == 3.0)
    np.testing.assert_array_equal(auto.get("count", "vsum"), manual.get("count", "vsum"))


def test_scheduled_custom_update_cuda(monkeypatch):
    pytest.importorskip("numba.cuda")
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)

    def bump(u):
        u.k = u.k + 1.0

    net = px.Network(dt=1.0)
    net.add_population("p", 20, neurons.lif())
    net.add_custom_update("bump", "p", px.CustomUpdateModel(name="bump", vars={"k": 0.0}, update=bump), every=3)
    sim = px.Simulation(net, backend="cuda")
    sim.run(10)
    assert np.all(sim.get("bump", "k") == 3.0)


def _noop(u):
    u.x = u.x


def test_build_time_errors():
    net = _network()
    with pytest.raises(px.NetworkError, match=r"var_ref 'g' -> 'hid.v' has 10 neurons but the update runs over one "
                                              r"value per synapse of 'ih'"):
        net.add_custom_update("bad1", "ih", REDUCE, var_refs={"g": "hid.v"})
    with pytest.raises(px.NetworkError, match="'ih' has no variable 'nope'"):
        net.add_custom_update("bad2", "ih", REDUCE, var_refs={"g": "nope"})
    with pytest.raises(px.NetworkError, match="var_refs \\['q'\\] are not declared"):
        net.add_custom_update("bad3", "ih", REDUCE, var_refs={"q": "w"})
    with pytest.raises(px.NetworkError, match="names unknown group 'ghost'"):
        net.add_custom_update("bad4", "ih", REDUCE, var_refs={"g": "ghost.w"})
    with pytest.raises(px.NetworkError, match="target 'ghost' is not a population or projection"):
        net.add_custom_update("bad5", "ghost", REDUCE)
    with pytest.raises(px.ModelError, match="needs an update function"):
        px.CustomUpdateModel(name="m")
    with pytest.raises(px.ModelError, match="access must be one of"):
        px.CustomUpdateModel(name="m", var_refs={"x": "sometimes"}, update=_noop)

    def write_ro(u):
        u.x = 1.0

    ro = px.Network(dt=1.0)
    ro.add_population("p", 3, neurons.lif())
    ro.add_custom_update("c", "p", px.CustomUpdateModel(name="ro", var_refs={"x": VA.READ_ONLY}, update=write_ro),
                         var_refs={"x": "v"})
    with pytest.raises(px.ModelError, match="writes 'x', a var_ref declared read_only"):
        px.Simulation(ro, backend="cpu").build()

    def write_shared(u):
        u.w = u.g

    shared = _network()
    shared.add_custom_update("c", "ih", px.CustomUpdateModel(
        name="ws", var_refs={"w": VA.READ_WRITE, "g": VA.READ_ONLY}, update=write_shared))
    with pytest.raises(px.NetworkError, match="writes 'w', which is shared by the batch, while the update runs "
                                              "once per batch element"):
        px.Simulation(shared, backend="cpu", batch_size=2).build()
    px.Simulation(shared, backend="cpu", batch_size=1).build()  # one element: no race

    def reduce_into_g(u):
        u.r = u.g

    into = _network()
    into.add_custom_update("c", "ih", px.CustomUpdateModel(name="ri", var_refs={"r": VA.REDUCE_SUM, "g": VA.READ_ONLY},
                                                           update=reduce_into_g), var_refs={"r": "g"})
    with pytest.raises(px.NetworkError, match="reduces over the batch .* one copy per batch element"):
        px.Simulation(into, backend="cpu", batch_size=2).build()
    with pytest.raises(px.StateError, match="no connectivity or custom updates in group 'nothing'"):
        px.Simulation(_network(), backend="cpu").custom_update("nothing")
