"""e-prop on the engine (plastix.learning.eprop.EPropNetwork: a batched forward run, gradients from custom
updates over its tape) against the forward-mode numpy reference of tests/eprop_reference.py: LIF and ALIF,
symmetric and random feedback, recurrence, the rate regulariser, input spike counts above one, a batch
padded to the simulation's size and one run in slices of it; CPU and CUDA (simulator)."""
from __future__ import annotations

import numpy as np
import pytest

from eprop_reference import eprop_forward
from plastix.kernels import launch
from plastix.learning.eprop import EPropConfig, EPropNetwork


def _config(neuron, feedback="symmetric", **kw):
    return EPropConfig(num_inputs=12, num_outputs=3, num_hidden=10, neuron=neuron, input_density=0.6,
                       recurrent_density=0.5, feedback=feedback, dtype="float64", seed=5, v_thresh=0.3,
                       tau_refrac=2.0, c_reg=0.05, beta=0.5 if neuron == "alif" else 0.0174,
                       tau_adapt=40.0, **kw)


def _dense(net, proj, n_pre, n_post):
    w = np.zeros((n_pre, n_post))
    pre, post = net.sim.connectivity(proj)
    w[pre, post] = net.sim.get(proj, "w")
    return w, pre, post


def _check(net, x, labels):
    c = net.config
    w_in, pin, qin = _dense(net, "in_hid", c.num_inputs, c.hidden_total)
    w_rec, prec, qrec = _dense(net, "hid_hid", c.hidden_total, c.hidden_total)
    fb = net.feedback_random if c.feedback == "random" else net.w_out.T
    rate0 = net.rate
    g_in, g_rec, g_out, g_b, rate, spikes = eprop_forward(x, labels, w_in, w_rec, net.w_out, net.b_out, fb, rate0, c)
    assert spikes.sum() > 30, "the test needs spiking hidden neurons"
    B = x.shape[0]
    got = net.gradients(x, labels)
    np.testing.assert_allclose(got["in_hid"], g_in[pin, qin] / B, rtol=1e-8, atol=1e-11, err_msg="in_hid")
    np.testing.assert_allclose(got["hid_hid"], g_rec[prec, qrec] / B, rtol=1e-8, atol=1e-11, err_msg="hid_hid")
    np.testing.assert_allclose(got["w_out"], g_out / B, rtol=1e-8, atol=1e-11, err_msg="w_out")
    np.testing.assert_allclose(got["b_out"], g_b / B, rtol=1e-8, atol=1e-11, err_msg="b_out")
    np.testing.assert_allclose(net.rate, rate, rtol=1e-10, err_msg="rate estimate")
    assert np.abs(got["hid_hid"]).max() > 1e-6
    return spikes


def _batch(B, T=30, seed=0, max_count=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((B, T, 12)) < 0.15) * rng.integers(1, max_count + 1, (B, T, 12))
    return x.astype(np.uint8), rng.integers(0, 3, B)


@pytest.mark.parametrize("neuron, feedback, batch, capacity", [
    ("lif", "symmetric", 3, 4),    # padded: one inactive element
    ("alif", "random", 5, 2),      # in slices of 2, 2 and 1 (padded)
    ("alif", "symmetric", 2, 2)])
def test_gradients_and_rate_equal_the_forward_reference(neuron, feedback, batch, capacity):
    net = EPropNetwork(_config(neuron, feedback), batch_size=capacity)
    net.w_out = net.w_out * 3.0   # a readout that matters
    x, labels = _batch(batch, max_count=2 if neuron == "alif" else 1)
    spikes = _check(net, x, labels)
    out = net.evaluate_batch(x, labels)   # the spike count behind rate_hz
    c = net.config
    np.testing.assert_allclose(out["rate_hz"] * x.shape[1] * c.dt * c.hidden_total / 1000.0 * batch, spikes.sum())


def test_cuda_gradients_equal_the_forward_reference(monkeypatch):
    pytest.importorskip("numba.cuda")
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    net = EPropNetwork(_config("alif", "symmetric", backend="cuda"), batch_size=2)
    net.w_out = net.w_out * 3.0
    x, labels = _batch(2, T=20, max_count=2)
    _check(net, x, labels)


def test_input_trains_from_counts_equal_a_numpy_construction():
    from plastix.kernels.spike_trains import trains_from_counts

    rng = np.random.default_rng(3)
    x = ((rng.random((3, 7, 5)) < 0.3) * rng.integers(1, 4, (3, 7, 5))).astype(np.uint8)
    times, counts = trains_from_counts(x, 10.0, 0.5, 4)   # one padded element
    per = x.transpose(0, 2, 1).astype(np.int64)
    b, i, t = np.nonzero(per)
    np.testing.assert_array_equal(times, np.repeat(10.0 + 0.5 * t, per[b, i, t]))
    want = np.zeros((4, 5), np.int64)
    want[:3] = per.sum(axis=2)
    np.testing.assert_array_equal(counts, want)
