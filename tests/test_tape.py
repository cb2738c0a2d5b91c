"""Custom updates over the tape of the last run: per-neuron scans (forward and backward), per-synapse
scans and per-synapse sums over presynaptic spike events (a synapse sees presynaptic values and spikes
when they reach it: 1 + delay steps after they were recorded).  Reference: numpy loops over what the run
recorded (spikes and variables, via Simulation.spikes / recorded), CPU serial, CPU batched and CUDA
(simulator)."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch

VA = px.VarAccess
T = 25
KAPPA = 0.8
RHO = 0.7


def _backfilter(u, p):
    u.acc = p.kappa * u.acc + u.v
    u.v = u.acc            # the tape is filtered in place
    u.total = u.acc


BACKWARD = px.CustomUpdateModel(name="backfilter", params={"kappa": KAPPA}, temps=("acc",),
                                tape_refs={"v": VA.READ_WRITE}, vars={"total": px.Var(0.0, access=VA.REDUCE_SUM)},
                                scan="backward", update=_backfilter)


def _syn_scan(u, p):
    u.e = p.rho * u.e + u.x_pre
    u.g = u.e * u.v_post


SYN_SCAN = px.CustomUpdateModel(name="syn_scan", params={"rho": RHO}, temps=("e",),
                                tape_refs={"x_pre": VA.READ_ONLY, "v_post": VA.READ_ONLY},
                                vars={"g": px.Var(0.0, access=VA.REDUCE_SUM)}, scan="forward", update=_syn_scan)


def _at_pre_spikes(u):
    u.h = u.v_post


EVENTS = px.CustomUpdateModel(name="events", tape_refs={"v_post": VA.READ_ONLY},
                              vars={"h": px.Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes",
                              update=_at_pre_spikes)


def _network():
    net = px.Network(dt=1.0, seed=7, precision="float64")
    net.add_population("inp", 12, neurons.lif(v_thresh=-60.0, tau_refrac=1.0),
                       init={"i_offset": px.init.Uniform(0.0, 3.0)})
    net.add_population("hid", 9, neurons.lif())
    net.add_projection("ih", "inp", "hid", connectivity=connect.FixedProbability(0.5),
                       init={"w": px.init.Uniform(0.0, 4.0)})
    net.add_custom_update("scan", "ih", SYN_SCAN, tape_refs={"x_pre": "pre.v", "v_post": "post.v"}, group="tape")
    net.add_custom_update("events", "ih", EVENTS, tape_refs={"v_post": "post.v"}, group="tape")
    net.add_custom_update("back", "hid", BACKWARD, group="tape")  # last: it filters the tape in place
    return net


MODES = {"cpu-serial": dict(backend="cpu", parallel=False, batch_size=1),
         "cpu-batched": dict(backend="cpu", batch_size=3),
         "cuda-batched": dict(backend="cuda", batch_size=2)}


@pytest.fixture(params=sorted(MODES))
def mode(request, monkeypatch):
    if request.param.startswith("cuda"):
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
        monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    return MODES[request.param]


def test_tape_updates_equal_numpy(mode):
    B = mode["batch_size"]
    sim = px.Simulation(_network(), **mode)
    sim.record("hid", "v")
    sim.record("inp", "v")
    sim.record_spikes("inp")
    sim.run(5)            # an earlier run: the tape holds the last run call only
    if B > 1:             # the batch elements differ
        sim.set("inp", "i_offset", np.random.default_rng(1).uniform(0.0, 3.0, (B, 12)))
    sim.run(T)
    vh = sim.recorded("hid", "v").reshape(B, -1, 9)[:, -T:]
    vi = sim.recorded("inp", "v").reshape(B, -1, 12)[:, -T:]
    pre, post = sim.connectivity("ih")
    np.testing.assert_array_equal(sim.tape("hid", "v").reshape(B, T, 9), vh)
    sim.custom_update("tape")
    # per-synapse forward scan: e(t) = rho e(t - 1) + x_pre(t - 1), g = sum_b sum_t e(t) v_post(t): the
    # presynaptic value reaches the synapse one step after it was recorded (delay 0)
    e = np.zeros((B, pre.size))
    g = np.zeros(pre.size)
    for t in range(T):
        e = RHO * e + (vi[:, t - 1, pre] if t > 0 else 0.0)
        g += (e * vh[:, t, post]).sum(0)
    np.testing.assert_allclose(sim.get("scan", "g"), g, rtol=1e-9)
    # per-synapse sum over presynaptic spikes of the post neuron's value when the spike arrives (the next
    # step; spikes of the last step arrive after the tape and are not counted)
    h = np.zeros(pre.size)
    spikes = 0
    for b in range(B):
        ts, ids = sim.spikes("inp", b) if B > 1 else sim.spikes("inp")
        keep = (ts >= 5.0) & (ts < 5.0 + T - 1)
        for ts_, i in zip(ts[keep], ids[keep]):
            row = pre == i
            h[row] += vh[b, int(round(ts_)) - 5 + 1, post[row]]
            spikes += 1
    assert spikes > 20
    np.testing.assert_allclose(sim.get("events", "h"), h, rtol=1e-9)
    # per-neuron backward scan, in place: acc(t) = kappa acc(t + 1) + v(t)
    acc = np.zeros((B, 9))
    filtered = np.zeros_like(vh)
    for t in range(T - 1, -1, -1):
        acc = KAPPA * acc + vh[:, t]
        filtered[:, t] = acc
    np.testing.assert_allclose(sim.tape("hid", "v").reshape(B, T, 9), filtered, rtol=1e-12)
    np.testing.assert_allclose(sim.get("back", "total"), filtered.sum((0, 1)), rtol=1e-12)


def test_tape_errors():
    with pytest.raises(px.ModelError, match="tape_refs need scan"):
        px.CustomUpdateModel(name="x", tape_refs={"v": VA.READ_ONLY}, update=_at_pre_spikes)
    with pytest.raises(px.ModelError, match="scan must be"):
        px.CustomUpdateModel(name="x", tape_refs={"v": VA.READ_ONLY}, scan="sideways", update=_at_pre_spikes)
    net = _network()
    with pytest.raises(px.NetworkError, match="on a projection write 'pre.<var>' or 'post.<var>'"):
        net.add_custom_update("bad", "ih", EVENTS, tape_refs={"v_post": "hid.v"})
    with pytest.raises(px.NetworkError, match="events='pre_spikes' runs per synapse"):
        net.add_custom_update("bad2", "hid", EVENTS, tape_refs={"v_post": "v"})

    def write(u):
        u.h = u.v_post
        u.w = 1.0

    bad = px.CustomUpdateModel(name="w", tape_refs={"v_post": VA.READ_ONLY}, var_refs={"w": VA.READ_WRITE},
                               vars={"h": px.Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes", update=write)
    net.add_custom_update("bad3", "ih", bad, tape_refs={"v_post": "post.v"})
    with pytest.raises(px.ModelError, match=r"may assign only reduce_sum variables and temporaries, but "
                                            r"writes \['w'\]"):
        px.Simulation(net, backend="cpu").build()
    sim = px.Simulation(_network(), backend="cpu")
    sim.run(3)
    with pytest.raises(px.StateError, match="on a custom update's tape only: Simulation.tape reads it"):
        sim.recorded("hid", "v")  # recorded for the tape, never copied out: an error, not an empty array
    assert sim.tape("hid", "v").shape == (3, 9)
    with pytest.raises(ValueError, match="read the last run call whole"):
        sim.run(4, callback=lambda s: None, every=2)
