"""The CPU's blocked paths over the tape, checked to the bit against numpy loops that add in the documented
order: per-synapse sums over presynaptic events (codegen/custom.py ``_event_blocks``: over event lists,
several events per pass over a row, or over whole series, several synapses per pass, both forced here) and
transposed scans (several synapses of a row per pass over the whole series,
``_transposed_scan``).  Rows are long enough (and of lengths that are not multiples of the block) that
both the blocks and their remainders run; the batch elements differ."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons

VA = px.VarAccess
T = 30
B = 4
N_IN, N_HID = 10, 23


def _graded(u):
    u.h = u.v_post * u.x_pre


GRADED_EVENTS = px.CustomUpdateModel(name="graded_events", tape_refs={"v_post": VA.READ_ONLY, "x_pre": VA.READ_ONLY},
                                     vars={"h": px.Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes",
                                     update=_graded)


def _transpose(u):
    u.gz = u.w * u.du


TRANSPOSE = px.CustomUpdateModel(name="transpose", var_refs={"w": VA.READ_ONLY},
                                 tape_refs={"du": VA.READ_ONLY, "gz": VA.ACCUMULATE}, scan="backward",
                                 update=_transpose)


def _network(delay: int):
    net = px.Network(dt=1.0, seed=11, precision="float64")
    # inputs that spike most steps: rows see many events, so the event blocks and their remainders run
    net.add_population("inp", N_IN, neurons.lif(v_thresh=-64.0, tau_refrac=0.0),
                       init={"i_offset": px.init.Uniform(2.0, 6.0)})
    net.add_population("hid", N_HID, neurons.lif())
    net.add_projection("ih", "inp", "hid", connectivity=connect.FixedProbability(0.8), delay=delay,
                       init={"w": px.init.Uniform(-1.0, 2.0)})
    net.add_custom_update("events", "ih", GRADED_EVENTS, tape_refs={"v_post": "post.v", "x_pre": "pre.v"},
                          group="tape")
    net.add_custom_update("back", "ih", TRANSPOSE, var_refs={"w": "w"},
                          tape_refs={"du": "post.v", "gz": "pre.v"}, group="tape")
    return net


#: ``codegen.custom._LIST_COST`` (and ``_LIST_COST_CACHED``) forcing each way of summing over presynaptic events
EVENT_PATHS = {"series": 10**9, "lists": 0}


@pytest.mark.parametrize("path", sorted(EVENT_PATHS))
@pytest.mark.parametrize("delay", [0, 2])
def test_blocked_tape_paths_are_bitwise_the_numpy_order(delay, path, monkeypatch):
    from plastix.codegen import custom

    monkeypatch.setattr(custom, "_LIST_COST", EVENT_PATHS[path])
    monkeypatch.setattr(custom, "_LIST_COST_CACHED", EVENT_PATHS[path])
    sim = px.Simulation(_network(delay), backend="cpu", batch_size=B)
    sim.record("hid", "v")
    sim.record("inp", "v")
    sim.record_spikes("inp")
    sim.set("inp", "i_offset", np.random.default_rng(3).uniform(2.0, 6.0, (B, N_IN)))
    sim.run(T)
    vh = sim.recorded("hid", "v").reshape(B, T, N_HID)
    vi = sim.recorded("inp", "v").reshape(B, T, N_IN)
    pre, post = sim.connectivity("ih")
    w = sim.get("ih", "w")
    lengths = np.bincount(pre, minlength=N_IN)
    assert (lengths > 8).any() and (lengths % 8 != 0).any()
    sim.custom_update("tape")
    arrive = 1 + delay
    # events: per synapse, over the batch elements in order and each element's spikes in time order, the
    # post value where the spike arrives times the value the presynaptic neuron sent
    h = np.zeros(pre.size)
    per_row = np.zeros(N_IN, int)
    for b in range(B):
        ts, ids = sim.spikes("inp", b)
        for ts_, i in zip(ts, ids):
            t = int(round(ts_)) + arrive
            if t < T:
                row = pre == i
                h[row] += vh[b, t, post[row]] * vi[b, t - arrive, i]
                per_row[i] += 1
    assert per_row.max() > 8
    np.testing.assert_array_equal(sim.get("events", "h"), h)
    # transposed scan: each presynaptic tape entry gains its row's sum, synapses in row order, of
    # w * du where the spike of that step arrives
    gz = vi.copy()
    order = np.argsort(pre, kind="stable")   # connectivity lists synapses row by row, in row order
    for i in range(N_IN):
        syn = order[pre[order] == i]
        for t in range(T - arrive):
            acc = np.zeros(B)
            for s in syn:
                acc = acc + w[s] * vh[:, t + arrive, post[s]]
            gz[:, t, i] += acc
    np.testing.assert_array_equal(sim.tape("inp", "v").reshape(B, T, N_IN), gz)
