"""``Simulation.custom_update(group, rows=(first, stop))``: updates over the tape visit only the window's rows.
Per-neuron scans (their ``row`` is the tape row), per-population scans, transposed per-synapse scans (a row
``t`` of the target's tape adds into the source's row ``t - 1 - delay``) and sums over presynaptic events
(events arriving inside the window), against numpy on the CPU (serial, batched by both event paths) and on
CUDA (simulator); rows outside keep their values.  And the errors."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch

VA = px.VarAccess
T = 30
N_IN, N_HID = 10, 13
DELAY = 1
WINDOW = (5, 22)


def _graded(u):
    u.h = u.v_post * u.x_pre


def _transpose(u):
    u.gz = u.w * u.du


def _row_sum(u, p, row):
    u.tot = p.gain * row * u.v


def _double(u):
    u.L = 2.0 * u.v


_LIF = neurons.lif()
HIDDEN = px.NeuronModel(name="lif_with_L", params=_LIF.params, vars={**_LIF.vars, "L": 0.0}, derived=_LIF.derived,
                        sim=_LIF.sim, threshold=_LIF.threshold, reset=_LIF.reset)


def _network():
    net = px.Network(dt=1.0, seed=11, precision="float64")
    net.add_population("inp", N_IN, neurons.lif(v_thresh=-64.0, tau_refrac=0.0),
                       init={"i_offset": px.init.Uniform(2.0, 6.0)})
    net.add_population("hid", N_HID, HIDDEN)
    net.add_projection("ih", "inp", "hid", connectivity=connect.FixedProbability(0.8), delay=DELAY,
                       init={"w": px.init.Uniform(-1.0, 2.0)})
    net.add_custom_update("events", "ih", px.CustomUpdateModel(
        name="graded_events", tape_refs={"v_post": VA.READ_ONLY, "x_pre": VA.READ_ONLY},
        vars={"h": px.Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes", update=_graded),
        tape_refs={"v_post": "post.v", "x_pre": "pre.v"}, group="tape")
    net.add_custom_update("back", "ih", px.CustomUpdateModel(
        name="transpose", var_refs={"w": VA.READ_ONLY}, tape_refs={"du": VA.READ_ONLY, "gz": VA.ACCUMULATE},
        scan="backward", update=_transpose), var_refs={"w": "w"}, tape_refs={"du": "post.v", "gz": "pre.v"},
        group="tape")
    net.add_custom_update("scan", "hid", px.CustomUpdateModel(
        name="row_sum", params={"gain": 0.5}, tape_refs={"v": VA.READ_ONLY},
        vars={"tot": px.Var(0.0, access=VA.REDUCE_SUM)}, scan="backward", update=_row_sum),
        tape_refs={"v": "v"}, group="tape")
    net.add_custom_update("double", "hid", px.CustomUpdateModel(
        name="double", per="population", scan="forward", tape_refs={"v": VA.READ_ONLY, "L": VA.READ_WRITE},
        update=_double), tape_refs={"v": "v", "L": "L"}, group="tape")
    net.add_custom_update("adam_like", "hid", px.CustomUpdateModel(
        name="plain", vars={"x": 0.0}, update=_plain), group="plain")
    return net


def _plain(u):
    u.x = u.x + 1.0


def _run(sim, B):
    sim.record("hid", "v")
    sim.record("inp", "v")
    sim.record_spikes("inp")
    i_off = np.random.default_rng(3).uniform(2.0, 6.0, (B, N_IN))
    sim.set("inp", "i_offset", i_off if B > 1 else i_off[0])
    sim.run(T)
    return sim.recorded("hid", "v").reshape(B, T, N_HID), sim.recorded("inp", "v").reshape(B, T, N_IN)


def _expected(sim, B, vh, vi, first, stop):
    """numpy over the window: the event sums, the transposed product, the row-weighted sums, the doubled tape."""
    stop = min(stop, T)
    arrive = 1 + DELAY
    pre, post = sim.connectivity("ih")
    w = sim.get("ih", "w")
    h = np.zeros(pre.size)
    for b in range(B):
        ts, ids = sim.spikes("inp", b) if B > 1 else sim.spikes("inp")
        for ts_, i in zip(ts, ids):
            t = int(round(ts_)) + arrive
            if first <= t < stop:
                row = pre == i
                h[row] += vh[b, t, post[row]] * vi[b, t - arrive, i]
    W = np.zeros((N_IN, N_HID))
    W[pre, post] = w
    gz = vi.copy()
    for t in range(max(first, arrive), stop):
        gz[:, t - arrive] += vh[:, t] @ W.T
    rows = np.arange(T)[None, :, None]
    inside = (rows >= first) & (rows < stop)
    tot = (0.5 * rows * vh * inside).sum(axis=(0, 1))
    L = np.where(inside, 2.0 * vh, 0.0)
    return h, gz, tot, L


MODES = {"cpu-serial": (dict(backend="cpu", parallel=False, batch_size=1), None),
         "cpu-batched-series": (dict(backend="cpu", batch_size=3), 10**9),
         "cpu-batched-lists": (dict(backend="cpu", batch_size=3), 0),
         "cuda-batched": (dict(backend="cuda", batch_size=2), None)}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_updates_visit_only_the_window(mode, monkeypatch):
    kw, list_cost = MODES[mode]
    if kw["backend"] == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    if list_cost is not None:   # force one way of summing over presynaptic events (codegen.custom)
        from plastix.codegen import custom
        monkeypatch.setattr(custom, "_LIST_COST", list_cost)
        monkeypatch.setattr(custom, "_LIST_COST_CACHED", list_cost)
    B = kw["batch_size"]
    sim = px.Simulation(_network(), **kw)
    vh, vi = _run(sim, B)
    assert len(sim.spikes("inp", 0)[0] if B > 1 else sim.spikes("inp")[0]) > 20
    sim.custom_update("tape", rows=WINDOW)
    h, gz, tot, L = _expected(sim, B, vh, vi, *WINDOW)
    np.testing.assert_allclose(sim.get("events", "h"), h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim.tape("inp", "v").reshape(B, T, N_IN), gz, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim.get("scan", "tot"), tot, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sim.tape("hid", "L").reshape(B, T, N_HID), L, rtol=1e-12, atol=1e-15)


def test_whole_window_is_the_default_and_the_window_is_per_call():
    """rows=None, rows covering the tape and rows past its end give the same bits; after a windowed call
    the next call without rows visits every row again."""
    results = []
    for rows in (None, (0, T), (0, 10**6), WINDOW, None):
        sim = px.Simulation(_network(), backend="cpu", batch_size=2)
        vh, vi = _run(sim, 2)
        if rows == WINDOW:
            sim.custom_update("tape", rows=rows)
            sim.run(T)   # a second trial: the next call (no rows) sees the whole tape
            vh = sim.tape("hid", "v").reshape(2, T, N_HID)
            vi = sim.tape("inp", "v").reshape(2, T, N_IN).copy()
            sim.set("scan", "tot", np.zeros(N_HID))
            sim.set("events", "h", np.zeros_like(sim.get("events", "h")))
            sim.custom_update("tape")
            h, gz, tot, L = _expected(sim, 2, vh, vi, 0, T)
            np.testing.assert_allclose(sim.get("scan", "tot"), tot, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(sim.tape("inp", "v").reshape(2, T, N_IN), gz, rtol=1e-12, atol=1e-12)
            continue
        sim.custom_update("tape", rows=rows)
        results.append([sim.get("events", "h"), sim.tape("inp", "v"), sim.get("scan", "tot"), sim.tape("hid", "L")])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_bad_rows_are_clear_errors():
    sim = px.Simulation(_network(), backend="cpu", batch_size=2)
    _run(sim, 2)
    for rows in ((3, 2), (-1, 4), (1.5, 4), 7, (1, 2, 3), (True, 4)):
        with pytest.raises(ValueError, match="rows must be"):
            sim.custom_update("tape", rows=rows)
    with pytest.raises(ValueError, match="'adam_like' is an update that does not read the tape"):
        sim.custom_update("plain", rows=(0, 4))
