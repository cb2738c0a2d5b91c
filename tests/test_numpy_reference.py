"""Hand-computed checks proving ``tests/numpy_reference.py`` implements docs/semantics.md."""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from numpy_reference import simulate  # noqa: E402


# ----------------------------------------------------------------------------------------
# small builders
# ----------------------------------------------------------------------------------------
def ssa(times_per_neuron):
    return {"model": "spike_source_array", "n": len(times_per_neuron),
            "spike_times": [np.asarray(t, float) for t in times_per_neuron]}


def dense(name, pre, post, n_pre, n_post, w, **kw):
    proj = {"name": name, "pre": pre, "post": post,
            "ind": np.tile(np.arange(n_post), (n_pre, 1)),
            "row_length": np.full(n_pre, n_post),
            "syn_vars": {"w": np.broadcast_to(np.asarray(w, float), (n_pre, n_post)).copy()},
            "wu": "static", "psm": "delta", "delay": 0}
    proj.update(kw)
    return proj


def spike_steps(result, pop, neuron=None):
    steps, neurons = result["spikes"][pop]
    if neuron is None:
        return steps.tolist()
    return steps[neurons == neuron].tolist()


# ----------------------------------------------------------------------------------------
# LIF
# ----------------------------------------------------------------------------------------
# dt = 1, tau_m = 20, C = 1 -> R = 20 MOhm; i_offset = 1.5 nA -> R I = 30 mV.
# Starting at v0 = v_rest = -70: after n updates v_n = -70 + 30 (1 - alpha^n).
# v_n >= -50  <=>  alpha^n <= 1/3  <=>  n >= 20 ln 3 = 21.97  ->  n = 22 updates.
# Step s performs update number s + 1, so the first spike is at step 21.
LIF_I = 1.5
FIRST_SPIKE_STEP = 21


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-12), ("float32", 2e-6)])
def test_lif_membrane_matches_closed_form(precision, rtol):
    v0 = -60.0
    pops = {"n": {"model": "lif", "n": 1, "params": {"v_thresh": 1e9},
                  "vars": {"v": v0, "i_offset": LIF_I}}}
    r = simulate(pops, [], 100, 1.0, precision=precision, record=[("n", "v")])
    v = r["var_trace"]["n"]["v"][:, 0]
    assert v.dtype == np.dtype(precision)
    alpha = math.exp(-1.0 / 20.0)
    n = np.arange(1, 101)
    expected = -70.0 + (v0 + 70.0) * alpha ** n + (1 - alpha ** n) * 20.0 * LIF_I
    np.testing.assert_allclose(v, expected, rtol=rtol)
    assert spike_steps(r, "n") == []


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_lif_first_spike_step(precision):
    pops = {"n": {"model": "lif", "n": 1, "vars": {"i_offset": LIF_I}}}
    r = simulate(pops, [], FIRST_SPIKE_STEP + 2, 1.0, precision=precision)
    assert spike_steps(r, "n") == [FIRST_SPIKE_STEP]
    assert math.ceil(20 * math.log(3)) - 1 == FIRST_SPIKE_STEP


@pytest.mark.parametrize("dt,tau_refrac", [(1.0, 2.0), (0.5, 2.0), (1.0, 0.0), (0.25, 3.0)])
def test_lif_refractory_period(dt, tau_refrac):
    # After a spike at step s the neuron holds v = v_reset for tau_refrac/dt steps
    # (refrac counts down from tau_refrac in steps of dt and v is frozen while refrac > 0),
    # then integrates again.  With v_reset = v_rest the next ISI is therefore
    # tau_refrac/dt + (number of updates needed from rest).
    i_offset = 1.5
    pops = {"n": {"model": "lif", "n": 1, "params": {"tau_refrac": tau_refrac},
                  "vars": {"i_offset": i_offset}}}
    steps = 400
    r = simulate(pops, [], steps, dt, precision="float64", record=[("n", "v"), ("n", "refrac")])
    updates_to_spike = math.ceil(20 * math.log(3) / dt)  # alpha^n <= 1/3, alpha = e^(-dt/20)
    frozen = round(tau_refrac / dt)
    s = spike_steps(r, "n")
    assert s[0] == updates_to_spike - 1
    assert np.all(np.diff(s) == frozen + updates_to_spike)
    v = r["var_trace"]["n"]["v"][:, 0]
    first = s[0]
    # frozen at v_reset for exactly `frozen` steps after the spike step, then moving
    np.testing.assert_array_equal(v[first:first + frozen + 1], -70.0)
    assert v[first + frozen + 1] > -70.0
    refrac = r["var_trace"]["n"]["refrac"][:, 0]
    assert refrac[first] == tau_refrac


def test_lif_subtract_vs_to_reset():
    alpha = math.exp(-1 / 20)
    v_at_spike = -70 + 30 * (1 - alpha ** 22)  # -49.986..., just above threshold
    results = {}
    for model in ["lif", "lif_subtract"]:
        pops = {"n": {"model": model, "n": 1, "params": {"tau_refrac": 0.0},
                      "vars": {"i_offset": LIF_I}}}
        results[model] = simulate(pops, [], 40, 1.0, precision="float64", record=[("n", "v")])
    v_reset = results["lif"]["var_trace"]["n"]["v"][:, 0]
    v_sub = results["lif_subtract"]["var_trace"]["n"]["v"][:, 0]
    assert spike_steps(results["lif"], "n")[0] == FIRST_SPIKE_STEP
    assert spike_steps(results["lif_subtract"], "n")[0] == FIRST_SPIKE_STEP
    np.testing.assert_array_equal(v_reset[:FIRST_SPIKE_STEP], v_sub[:FIRST_SPIKE_STEP])
    assert v_reset[FIRST_SPIKE_STEP] == -70.0
    # subtract: v -= v_thresh - v_reset = 20
    assert v_sub[FIRST_SPIKE_STEP] == pytest.approx(v_at_spike - 20.0, abs=1e-12)
    assert v_sub[FIRST_SPIKE_STEP] > -70.0
    # "lif" with params reset="subtract" is the same model
    pops = {"n": {"model": "lif", "n": 1, "params": {"tau_refrac": 0.0, "reset": "subtract"},
                  "vars": {"i_offset": LIF_I}}}
    r = simulate(pops, [], 40, 1.0, precision="float64", record=[("n", "v")])
    np.testing.assert_array_equal(r["var_trace"]["n"]["v"][:, 0], v_sub)


# ----------------------------------------------------------------------------------------
# delays and delivery
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [0, 3])
@pytest.mark.parametrize("source", ["ssa", "lif"])
def test_chain_delay(delay, source):
    # Source spikes at step s_spk; the target's in_syn and v change at step s_spk + 1 + delay.
    if source == "ssa":
        s_spk = 5
        pre = ssa([[5.0]])
    else:
        s_spk = FIRST_SPIKE_STEP
        pre = {"model": "lif", "n": 1, "params": {"tau_refrac": 100.0}, "vars": {"i_offset": LIF_I}}
    w = 2.0
    tau_syn = 5.0
    pops = {"pre": pre, "post": {"model": "lif", "n": 1}}
    projs = [dense("p", "pre", "post", 1, 1, w, delay=delay, psm="exp_curr",
                   psm_params={"tau": tau_syn})]
    steps = 40
    r = simulate(pops, projs, steps, 1.0, precision="float64",
                 record=[("post", "v"), ("p", "in_syn")])
    assert spike_steps(r, "pre") == [s_spk]
    arrive = s_spk + 1 + delay
    v = r["var_trace"]["post"]["v"][:, 0]
    in_syn = r["var_trace"]["p"]["in_syn"][:, 0]
    np.testing.assert_array_equal(v[:arrive], -70.0)
    np.testing.assert_array_equal(in_syn[:arrive], 0.0)
    alpha = math.exp(-1 / 20)
    d = math.exp(-1 / tau_syn)
    # step `arrive`: i_syn = w, then in_syn decays once
    assert in_syn[arrive] == pytest.approx(w * d, rel=1e-14)
    assert v[arrive] == pytest.approx(-70 + (1 - alpha) * 20 * w, rel=1e-14)


def test_delta_psm_delivers_once_and_zeroes():
    pops = {"pre": ssa([[2.0]]), "post": {"model": "leaky_integrator", "n": 1,
                                          "params": {"tau_m": 1e30}}}
    projs = [dense("p", "pre", "post", 1, 1, 0.75)]
    r = simulate(pops, projs, 10, 1.0, precision="float64",
                 record=[("post", "v"), ("p", "in_syn")])
    v = r["var_trace"]["post"]["v"][:, 0]
    np.testing.assert_array_equal(v, [0, 0, 0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75])
    np.testing.assert_array_equal(r["var_trace"]["p"]["in_syn"][:, 0], 0.0)


def test_sparse_rows_duplicates_and_order():
    # 3 presynaptic sources all spiking at step 0; row_stride 4 with padding slots that
    # must be ignored; row 1 targets neuron 0 twice (both synapses count).
    pops = {"pre": ssa([[0.0], [0.0], [0.0]]),
            "post": {"model": "leaky_integrator", "n": 3, "params": {"tau_m": 1e30}}}
    ind = np.array([[2, 0, 99, 99], [0, 0, 1, 99], [1, 99, 99, 99]])
    w = np.array([[1.0, 2.0, 100, 100], [4.0, 8.0, 16.0, 100], [32.0, 100, 100, 100]])
    projs = [{"name": "p", "pre": "pre", "post": "post", "ind": ind,
              "row_length": np.array([2, 3, 1]), "syn_vars": {"w": w}, "psm": "delta"}]
    r = simulate(pops, projs, 2, 1.0, precision="float64")
    np.testing.assert_array_equal(r["vars"]["post"]["v"], [2 + 4 + 8, 16 + 32, 1])


def test_float32_accumulation_order_is_serial():
    # Many rows add into one target; the reference must add in row order in float32.
    n = 200
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (n, 1))
    pops = {"pre": ssa([[0.0]] * n), "post": {"model": "leaky_integrator", "n": 1}}
    projs = [dense("p", "pre", "post", n, 1, w, psm="exp_curr", psm_params={"tau": 1e30})]
    r = simulate(pops, projs, 1 + 1, 1.0, precision="float32")
    acc = np.float32(0)
    for i in range(n):
        acc = np.float32(acc + np.float32(w[i, 0]))
    assert r["in_syn"]["p"][0] == acc


# ----------------------------------------------------------------------------------------
# postsynaptic models
# ----------------------------------------------------------------------------------------
def test_exp_curr_decay_and_membrane():
    # one input of weight w at step 1 (source spike at step 0, delay 0)
    tau_syn, w = 5.0, 3.0
    pops = {"pre": ssa([[0.0]]), "post": {"model": "lif", "n": 1, "params": {"v_thresh": 1e9}}}
    projs = [dense("p", "pre", "post", 1, 1, w, psm="exp_curr", psm_params={"tau": tau_syn})]
    steps = 30
    r = simulate(pops, projs, steps, 1.0, precision="float64",
                 record=[("post", "v"), ("p", "in_syn")])
    d = math.exp(-1 / tau_syn)
    a = math.exp(-1 / 20)
    s = np.arange(steps)
    in_syn = r["var_trace"]["p"]["in_syn"][:, 0]
    np.testing.assert_allclose(in_syn, np.where(s >= 1, w * d ** s, 0.0), rtol=1e-13)
    # i_syn at step k >= 1 is w d^(k-1); v - v_rest after step s is
    # (1-a) R w sum_{k=1..s} a^(s-k) d^(k-1) = (1-a) R w (a^s - d^s) / (a - d)
    expected = -70 + (1 - a) * 20 * w * (a ** s - d ** s) / (a - d)
    np.testing.assert_allclose(r["var_trace"]["post"]["v"][:, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("e_rev", [0.0, -80.0])
def test_exp_cond_current_depends_on_target_voltage(e_rev):
    # conductance_lif defaults: C = 20, tau_m = 20 -> R = 1.  Two targets with different v0.
    g, tau_syn = 0.5, 4.0
    v0 = np.array([-70.0, -60.0])
    pops = {"pre": ssa([[0.0]]), "post": {"model": "conductance_lif", "n": 2, "vars": {"v": v0}},
            "ctrl": {"model": "conductance_lif", "n": 2, "vars": {"v": v0}}}
    projs = [dense("p", "pre", "post", 1, 2, g, psm="exp_cond",
                   psm_params={"tau": tau_syn, "e_rev": e_rev})]
    r = simulate(pops, projs, 3, 1.0, precision="float64",
                 record=[("post", "v"), ("ctrl", "v")])
    a = math.exp(-1 / 20)
    d = math.exp(-1 / tau_syn)
    v_step0 = -70 + a * (v0 + 70)                     # no input at step 0
    np.testing.assert_allclose(r["var_trace"]["post"]["v"][0], v_step0, rtol=1e-14)
    i_syn1 = g * (e_rev - v_step0)                     # v before step 1's sim
    v_step1 = -70 + a * (v_step0 + 70) + (1 - a) * 1.0 * i_syn1
    np.testing.assert_allclose(r["var_trace"]["post"]["v"][1], v_step1, rtol=1e-14)
    i_syn2 = g * d * (e_rev - v_step1)
    v_step2 = -70 + a * (v_step1 + 70) + (1 - a) * 1.0 * i_syn2
    np.testing.assert_allclose(r["var_trace"]["post"]["v"][2], v_step2, rtol=1e-14)
    diff = r["var_trace"]["post"]["v"][1] - r["var_trace"]["ctrl"]["v"][1]
    np.testing.assert_allclose(diff, (1 - a) * g * (e_rev - v_step0), rtol=1e-10)
    assert diff[0] != pytest.approx(diff[1])
    # delivered at step 1, decayed at steps 1 and 2
    np.testing.assert_allclose(r["in_syn"]["p"], g * d ** 2, rtol=1e-14)


def test_conductance_lif_defaults():
    # C = 20, tau_m = 20 -> R = 1; v_thresh = -54, tau_refrac = 5.
    # I = 20 nA -> R I = 20 mV; v_n = -70 + 20 (1 - a^n) >= -54 <=> a^n <= 0.2
    # <=> n >= 20 ln 5 = 32.19 -> 33 updates -> spike at step 32; then 5 frozen steps.
    pops = {"n": {"model": "conductance_lif", "n": 1, "vars": {"i_offset": 20.0}}}
    r = simulate(pops, [], 80, 1.0, precision="float64")
    assert spike_steps(r, "n") == [32, 32 + 5 + 33]


# ----------------------------------------------------------------------------------------
# ALIF, sources, leaky integrator
# ----------------------------------------------------------------------------------------
def test_alif_threshold_grows_with_spikes():
    # No leak (tau_m, tau_adapt huge -> alpha = rho = 1), v_thresh 0.5, beta 1, no refractory.
    # Input 0.375 per step from step 1 (source spikes every step, delta psm, delay 0).
    # Threshold after k spikes is 0.5 + k; reset subtracts 0.5.  By hand (all dyadic):
    #   s1 .375  s2 .75 spike -> v .25 a 1 (thr 1.5)
    #   s3 .625  s4 1.0  s5 1.375  s6 1.75 spike -> v 1.25 a 2 (thr 2.5)
    #   s7 1.625 s8 2.0  s9 2.375 s10 2.75 spike -> v 2.25 a 3 (thr 3.5) ...
    params = {"tau_m": 1e30, "tau_adapt": 1e30, "v_thresh": 0.5, "beta": 1.0, "tau_refrac": 0.0}
    pops = {"src": ssa([np.arange(30.0)]), "alif": {"model": "alif", "n": 1, "params": params}}
    projs = [dense("p", "src", "alif", 1, 1, 0.375)]
    r = simulate(pops, projs, 19, 1.0, precision="float32", record=[("alif", "v"), ("alif", "a")])
    assert spike_steps(r, "alif") == [2, 6, 10, 14, 18]
    np.testing.assert_array_equal(r["var_trace"]["alif"]["v"][:11, 0],
                                  [0, .375, .25, .625, 1.0, 1.375, 1.25, 1.625, 2.0, 2.375, 2.25])
    np.testing.assert_array_equal(r["var_trace"]["alif"]["a"][:11, 0],
                                  [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3])
    # without adaptation the same input fires far more often: .375 .75* .625* .5* .375 .75* ...
    params0 = dict(params, beta=0.0)
    pops["alif"]["params"] = params0
    r0 = simulate(pops, projs, 19, 1.0, precision="float32")
    assert spike_steps(r0, "alif")[:4] == [2, 3, 4, 6]


def test_alif_adaptation_decay_and_refractory():
    # a decays by rho = exp(-dt/tau_adapt) every step, +1 at each spike;
    # refractory: after a spike at s, refrac = 2 -> s+1: 1, s+2: 0 -> can spike at s+2.
    params = {"tau_m": 1e30, "tau_adapt": 10.0, "v_thresh": 0.5, "beta": 0.0, "tau_refrac": 2.0}
    pops = {"src": ssa([np.arange(30.0)]), "alif": {"model": "alif", "n": 1, "params": params}}
    projs = [dense("p", "src", "alif", 1, 1, 1.0)]
    r = simulate(pops, projs, 12, 1.0, precision="float64", record=[("alif", "a")])
    # input 1 per step from step 1: v >= .5 every step, but refractory allows every 2nd step
    assert spike_steps(r, "alif") == [1, 3, 5, 7, 9, 11]
    rho = math.exp(-1 / 10)
    a, expected = 0.0, []
    for s in range(12):
        a = rho * a + (1.0 if s % 2 == 1 else 0.0)
        expected.append(a)
    np.testing.assert_allclose(r["var_trace"]["alif"]["a"][:, 0], expected, rtol=1e-14)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_spike_source_array(precision):
    # dt = 1: a time tau fires at the step s with s - 0.5 <= tau < s + 0.5
    # (the first step whose t + dt/2 exceeds it).
    times = [[-1.0, 0.0, 3.2, 3.4, 7.0], [], [2.4, 2.6], [9.6]]
    r = simulate({"src": ssa(times)}, [], 10, 1.0, precision=precision)
    steps, neurons = r["spikes"]["src"]
    assert list(zip(steps.tolist(), neurons.tolist())) == [(0, 0), (2, 2), (3, 0), (3, 2), (7, 0)]
    np.testing.assert_array_equal(r["vars"]["src"]["start_spike"], [5, 5, 7, 7])
    np.testing.assert_array_equal(r["vars"]["src"]["end_spike"], [5, 5, 7, 8])
    # start_step shifts t; dt = 0.1
    r = simulate({"src": ssa([[1.0, 1.5]])}, [], 20, 0.1, precision=precision, start_step=5)
    assert spike_steps(r, "src") == [10, 15]


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_leaky_integrator_closed_form(precision, rtol):
    tau, b, v0 = 10.0, 0.3, np.array([0.0, 2.0])
    pops = {"li": {"model": "leaky_integrator", "n": 2, "params": {"tau_m": tau},
                   "vars": {"v": v0, "bias": b}}}
    r = simulate(pops, [], 50, 1.0, precision=precision, record=[("li", "v")])
    a = math.exp(-1 / tau)
    n = np.arange(1, 51)[:, None]
    expected = a ** n * v0 + b * (1 - a ** n) / (1 - a)
    np.testing.assert_allclose(r["var_trace"]["li"]["v"], expected, rtol=rtol)
    assert len(r["spikes"]["li"][0]) == 0


def test_poisson_mean_rate():
    n, steps, dt, rate = 1000, 500, 1.0, 20.0
    pops = {"p": {"model": "poisson", "n": n, "vars": {"rate": rate}}}
    r = simulate(pops, [], steps, dt, rng=np.random.default_rng(12345))
    p = rate * dt / 1000
    count = len(r["spikes"]["p"][0])
    mean = n * steps * p
    se = math.sqrt(n * steps * p * (1 - p))
    assert abs(count - mean) < 4 * se
    # zero rate never fires
    r = simulate({"p": {"model": "poisson", "n": 10}}, [], 100, dt)
    assert len(r["spikes"]["p"][0]) == 0


# ----------------------------------------------------------------------------------------
# STDP
# ----------------------------------------------------------------------------------------
STDP = {"tau_plus": 20.0, "tau_minus": 30.0, "a_plus": 0.01, "a_minus": 0.012,
        "w_min": 0.0, "w_max": 1.0}


def stdp_net(pre_time, post_time, delay=0, w0=0.5, params=STDP):
    pops = {"pre": ssa([[pre_time]]), "post": ssa([[post_time]])}
    projs = [dense("syn", "pre", "post", 1, 1, w0, wu="stdp_additive", wu_params=dict(params),
                   delay=delay)]
    return pops, projs


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-14), ("float32", 1e-6)])
def test_stdp_potentiation_pre_before_post(precision, rtol):
    # Pre spikes at step 10, post at step 15, delay 0, dt = 1.
    # * step 10, phase 4: pre_dynamics decays x (still 0), then the spike: x = 1.
    # * step 11, phase 2: on_pre (pre spiked at 11-1-0 = 10): add_to_post(w), then
    #   w -= a_minus * y with y = 0 (post has not spiked)  -> w unchanged.
    # * steps 11..15, phase 4: x *= exp(-dt/tau_plus) each step -> x = e^(-1/20)^5
    #   at the end of step 15 (post_spike at step 15 sets y = 1).
    # * step 16, phase 3: on_post (post spiked at 16-1 = 15): w += a_plus * x with
    #   x = exp(-dt/tau_plus)^k, k = 15 - 10 = 5 (one decay per step strictly after the
    #   pre spike step up to and including the post spike step).
    pops, projs = stdp_net(10.0, 15.0)
    r = simulate(pops, projs, 30, 1.0, precision=precision)
    w = r["syn_vars"]["syn"]["w"][0, 0]
    expected = 0.5 + 0.01 * math.exp(-1 / 20) ** 5
    assert w == pytest.approx(expected, rel=rtol)
    # Delay 3: on_pre at step 14 (y still 0), on_post at 16 uses the undelayed x -> same.
    pops, projs = stdp_net(10.0, 15.0, delay=3)
    r = simulate(pops, projs, 30, 1.0, precision=precision)
    assert r["syn_vars"]["syn"]["w"][0, 0] == pytest.approx(expected, rel=rtol)


def test_stdp_on_pre_adds_weight_before_depressing_it():
    # Post at step 5, pre at step 10: on_pre at step 11 first does add_to_post(w = 0.5),
    # then w -= a_minus * y with y = e^(-(10-5)/30).  A non-decaying exp_curr keeps in_syn.
    pops, projs = stdp_net(10.0, 5.0)
    projs[0].update(psm="exp_curr", psm_params={"tau": 1e30})
    r = simulate(pops, projs, 13, 1.0, precision="float64")
    assert r["in_syn"]["syn"][0] == 0.5
    expected = 0.5 - 0.012 * math.exp(-1 / 30) ** 5
    assert r["syn_vars"]["syn"]["w"][0, 0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-14), ("float32", 1e-6)])
def test_stdp_depression_post_before_pre(precision, rtol):
    # Post at step 10 (y = 1 at end of step 10), pre at step 15, delay 0.
    # step 11 on_post: w += a_plus * x with x = 0 -> unchanged.
    # step 16 on_pre: w -= a_minus * y, y = exp(-dt/tau_minus)^(15-10) = e^(-5/30).
    pops, projs = stdp_net(15.0, 10.0)
    r = simulate(pops, projs, 30, 1.0, precision=precision)
    expected = 0.5 - 0.012 * math.exp(-1 / 30) ** 5
    assert r["syn_vars"]["syn"]["w"][0, 0] == pytest.approx(expected, rel=rtol)
    # traces at the end: x = e^(-(29-15)/20), y = e^(-(29-10)/30)
    assert r["pre_vars"]["syn"]["x"][0] == pytest.approx(math.exp(-1 / 20) ** 14, rel=rtol)
    assert r["post_vars"]["syn"]["y"][0] == pytest.approx(math.exp(-1 / 30) ** 19, rel=rtol)


def test_stdp_delay_longer_than_gap():
    # Pre at 10, post at 15, delay 6: on_post at step 16 potentiates with x = e^(-5/20);
    # on_pre runs at step 10+1+6 = 17 and sees y at the end of step 16 = e^(-1/30)
    # (traces are not delayed) -> depression a_minus e^(-1/30) after the potentiation.
    pops, projs = stdp_net(10.0, 15.0, delay=6)
    r = simulate(pops, projs, 30, 1.0, precision="float64")
    expected = 0.5 + 0.01 * math.exp(-1 / 20) ** 5 - 0.012 * math.exp(-1 / 30)
    assert r["syn_vars"]["syn"]["w"][0, 0] == pytest.approx(expected, rel=1e-14)


def test_stdp_clipping_and_same_step():
    # Pre at 10 with delay 4 and post at 14: step 15 runs on_pre (phase 2, y = 1 from the post
    # spike at step 14 -> depression by a_minus, clipped at w_min) and then on_post (phase 3,
    # x = e^(-4/20), potentiation).
    params = dict(STDP, a_minus=0.7)
    pops, projs = stdp_net(10.0, 14.0, delay=4, w0=0.5, params=params)
    r = simulate(pops, projs, 20, 1.0, precision="float64")
    expected = max(0.5 - 0.7, 0.0) + 0.01 * math.exp(-1 / 20) ** 4
    assert r["syn_vars"]["syn"]["w"][0, 0] == pytest.approx(expected, rel=1e-14)
    # clip at w_max
    pops, projs = stdp_net(10.0, 15.0, w0=0.995)
    r = simulate(pops, projs, 20, 1.0, precision="float64")
    assert r["syn_vars"]["syn"]["w"][0, 0] == 1.0


def test_stdp_only_synapses_onto_spiking_targets():
    # One pre neuron, three targets; only target 1 spikes -> only slot 1 potentiated.
    pops = {"pre": ssa([[2.0]]), "post": ssa([[], [4.0], []])}
    projs = [dense("syn", "pre", "post", 1, 3, 0.5, wu="stdp_additive", wu_params=STDP)]
    r = simulate(pops, projs, 10, 1.0, precision="float64")
    w = r["syn_vars"]["syn"]["w"][0]
    np.testing.assert_allclose(w, [0.5, 0.5 + 0.01 * math.exp(-2 / 20), 0.5], rtol=1e-14)


# ----------------------------------------------------------------------------------------
# misc
# ----------------------------------------------------------------------------------------
def test_multiple_incoming_projections_sum_and_dtype():
    pops = {"a": ssa([[0.0]]), "b": ssa([[0.0]]),
            "li": {"model": "leaky_integrator", "n": 1, "params": {"tau_m": 1e30}}}
    projs = [dense("pa", "a", "li", 1, 1, 1.25), dense("pb", "b", "li", 1, 1, -0.5, delay=1)]
    r = simulate(pops, projs, 4, 1.0, record=[("li", "v")])
    np.testing.assert_array_equal(r["var_trace"]["li"]["v"][:, 0], [0, 1.25, 0.75, 0.75])
    assert r["vars"]["li"]["v"].dtype == np.float32
    assert r["syn_vars"]["pa"]["w"].dtype == np.float32


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_every_model_keeps_the_dtype(precision):
    rng = np.random.default_rng(0)
    models = ["lif", "lif_subtract", "conductance_lif", "alif", "poisson", "leaky_integrator"]
    pops = {m: {"model": m, "n": 4} for m in models}
    pops["poisson"]["vars"] = {"rate": 300.0}
    pops["lif"]["vars"] = {"i_offset": 2.0}
    pops["src"] = ssa([np.arange(0, 50, 3.0)] * 4)
    projs = []
    for m in models:
        if m == "poisson":
            continue
        psm, pp = (("exp_cond", {"tau": 5.0, "e_rev": 0.0}) if m == "conductance_lif"
                   else ("exp_curr", {"tau": 5.0}))
        projs.append(dense("s_" + m, "src", m, 4, 4, 0.3, psm=psm, psm_params=pp, delay=2,
                           wu="stdp_additive", wu_params=STDP))
        projs.append(dense("p_" + m, "poisson", m, 4, 4, 0.1))
    r = simulate(pops, projs, 50, 0.5, precision=precision, rng=rng,
                 record=[(m, "v") for m in models if m != "poisson"] + [("s_lif", "in_syn")])
    dt = np.dtype(precision)
    for group in ("vars", "syn_vars", "pre_vars", "post_vars", "var_trace"):
        for name, vs in r[group].items():
            for var, arr in vs.items():
                if var not in ("start_spike", "end_spike"):
                    assert arr.dtype == dt, (group, name, var)
    for arr in r["in_syn"].values():
        assert arr.dtype == dt
    assert len(r["spikes"]["lif"][0]) > 0


def test_missing_synapse_params_are_rejected():
    pops, projs = stdp_net(1.0, 2.0)
    del projs[0]["wu_params"]["a_plus"]
    with pytest.raises(ValueError, match="a_plus"):
        simulate(pops, projs, 3, 1.0)


def test_medium_network_runs_quickly():
    import time
    rng = np.random.default_rng(1)
    n, k = 1000, 100
    ind = np.argsort(rng.random((n, n)), axis=1)[:, :k]
    pops = {"e": {"model": "lif", "n": n,
                  "params": {"v_rest": 0.0, "v_reset": 0.0, "v_thresh": 20.0},
                  "vars": {"i_offset": rng.uniform(1.0, 2.0, n), "v": rng.uniform(0, 20, n)}}}
    projs = [{"name": "rec", "pre": "e", "post": "e", "ind": ind, "row_length": np.full(n, k),
              "syn_vars": {"w": np.full((n, k), 0.01)}, "psm": "exp_curr",
              "psm_params": {"tau": 5.0}, "delay": 1}]
    t0 = time.perf_counter()
    r = simulate(pops, projs, 1000, 1.0)
    elapsed = time.perf_counter() - t0
    assert len(r["spikes"]["e"][0]) > 1000
    assert elapsed < 10.0
