"""e-prop gradients against an independent BPTT computation (adjoint recursion written here in numpy).

For a network without recurrent connections and symmetric feedback, e-prop is exact: with the reset
treated as non-differentiable and the same pseudo-derivative, its gradient equals BPTT's.
"""
import math

import numpy as np
import pytest

from plastix.learning.eprop import EPropConfig, EPropNetwork


def _bptt(x, labels, w_in, w_out, b_out, c: EPropConfig, feedback=None):
    """Loss gradients by backpropagation through time.  x [B, T, N]; w_in [N, H]; w_out [K, H].
    ``feedback`` [H, K] replaces w_out.T on the path from the output error back to the hidden spikes
    (random feedback alignment); the readout's own gradients are unchanged."""
    back = w_out if feedback is None else feedback.T
    B, T, N = x.shape
    K, H = w_out.shape
    alpha, rho, kappa = (math.exp(-c.dt / tau) for tau in (c.tau_mem, c.tau_adapt, c.tau_out))
    beta = c.beta if c.neuron == "alif" else 0.0
    n_ref = int(round(c.tau_refrac / c.dt))
    v = np.zeros((B, H)); a = np.zeros((B, H)); z = np.zeros((B, H)); y = np.zeros((B, K))
    refrac = np.zeros((B, H), int)
    Z, PSI, GY = np.zeros((T, B, H)), np.zeros((T, B, H)), np.zeros((T, B, K))
    onehot = np.eye(K)[labels]
    for t in range(T):
        a = rho * a + z if beta > 0 else a
        v = alpha * v + x[:, t, :] @ w_in - c.v_thresh * z
        thr = c.v_thresh + beta * a
        ref = refrac > 0
        refrac = np.where(ref, refrac - 1, refrac)
        psi = np.where(ref, 0.0, 0.3 / c.v_thresh * np.maximum(0.0, 1.0 - np.abs(v - thr) / c.v_thresh))
        z = np.where(~ref & (v >= thr), 1.0, 0.0)
        refrac = np.where(z > 0, n_ref, refrac)
        y = kappa * y + z @ w_out.T + b_out
        p = np.exp(y - y.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        Z[t], PSI[t], GY[t] = z, psi, (p - onehot) / B   # d(loss)/dy(t), direct part; loss = sum_t mean_b CE
    g_w_in = np.zeros_like(w_in); g_w_out = np.zeros_like(w_out); g_b = np.zeros_like(b_out)
    gy_next = np.zeros((B, K)); gv_next = np.zeros((B, H)); ga_next = np.zeros((B, H))
    for t in reversed(range(T)):
        gy = GY[t] + kappa * gy_next                    # y(t+1) = kappa y(t) + ...
        gz = gy @ back + (ga_next if beta > 0 else 0)  # z(t) feeds y(t) and a(t+1); its reset is stopped
        gv = PSI[t] * gz + alpha * gv_next
        ga = -beta * PSI[t] * gz + rho * ga_next
        g_w_in += x[:, t, :].T @ gv
        g_w_out += gy.T @ Z[t]
        g_b += gy.sum(axis=0)
        gy_next, gv_next, ga_next = gy, gv, ga
    return g_w_in, g_w_out, g_b, Z.sum()


def _net(neuron, density=1.0, seed=3, **kw):
    c = EPropConfig(num_inputs=6, num_outputs=3, num_hidden=5, neuron=neuron, input_density=density,
                    recurrent_density=0.0, dtype="float64", c_reg=0.0, seed=seed, tau_refrac=2.0,
                    beta=0.3 if neuron == "alif" else 0.0174, tau_adapt=50.0, **kw)
    return c, EPropNetwork(c)


def _data(c, batch=3, steps=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, steps, c.num_inputs)) < 0.15).astype(np.uint8)
    labels = rng.integers(0, c.num_outputs, batch)
    return x, labels


def _dense_weights(net):
    a = net.arrays("in_hid")
    w = np.zeros((net.config.num_inputs, net.config.num_hidden))
    for i in range(w.shape[0]):
        w[i, a["ind"][i, :a["rowlen"][i]]] = a["w"][i, :a["rowlen"][i]]
    return w


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_eprop_equals_bptt_without_recurrence(neuron):
    c, net = _net(neuron)
    net.sim.set("in_hid", "w", net.sim.get("in_hid", "w") * 3.0)   # enough drive for spikes and adaptation
    x, labels = _data(c)
    w_in = _dense_weights(net)
    ref_in, ref_out, ref_b, n_spikes = _bptt(x, labels, w_in, net.w_out.astype(float), net.b_out.astype(float), c)
    assert n_spikes > 20, "the test needs spiking hidden neurons"
    g = net.gradients(x, labels)
    pre, post = net.sim.connectivity("in_hid")
    np.testing.assert_allclose(g["in_hid"], ref_in[pre, post], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g["w_out"], ref_out, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g["b_out"], ref_b, rtol=1e-9, atol=1e-12)
    assert np.abs(g["in_hid"]).max() > 1e-4


def test_random_feedback_is_bptt_with_the_feedback_matrix_in_the_backward_path():
    c, net = _net("alif", feedback="random")
    net.sim.set("in_hid", "w", net.sim.get("in_hid", "w") * 3.0)
    x, labels = _data(c, seed=2)
    fb = net.feedback_random.copy()
    assert not np.allclose(fb, net.w_out.T)
    ref_in, ref_out, _, _ = _bptt(x, labels, _dense_weights(net), net.w_out.astype(float),
                                  net.b_out.astype(float), c, feedback=fb)
    g = net.gradients(x, labels)
    pre, post = net.sim.connectivity("in_hid")
    np.testing.assert_allclose(g["in_hid"], ref_in[pre, post], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g["w_out"], ref_out, rtol=1e-9, atol=1e-12)
    net.train_batch(x, labels)
    np.testing.assert_array_equal(net.feedback_random, fb)   # fixed: it never learns


def test_sparse_and_dense_give_the_same_gradients_on_shared_synapses():
    c, dense = _net("alif", density=1.0)
    cs, sparse = _net("alif", density=0.5, seed=4)
    pre, post = sparse.sim.connectivity("in_hid")
    w = sparse.sim.get("in_hid", "w") * 3.0
    sparse.sim.set("in_hid", "w", w)
    w_full = np.zeros((c.num_inputs, c.num_hidden))
    w_full[pre, post] = w
    dpre, dpost = dense.sim.connectivity("in_hid")
    dense.sim.set("in_hid", "w", w_full[dpre, dpost])   # absent synapses have weight 0
    dense.w_out[...] = sparse.w_out
    x, labels = _data(c, seed=1)
    gs, gd = sparse.gradients(x, labels), dense.gradients(x, labels)
    g_full = np.zeros_like(w_full)
    g_full[dpre, dpost] = gd["in_hid"]
    np.testing.assert_allclose(gs["in_hid"], g_full[pre, post], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gs["w_out"], gd["w_out"], rtol=1e-10, atol=1e-14)


def test_recurrent_gradients_are_finite_and_rows_own_their_gradients():
    c = EPropConfig(num_inputs=6, num_outputs=3, num_hidden=8, recurrent_density=0.5, dtype="float64", seed=2,
                    c_reg=0.0)   # the rate regulariser's running estimate is state that a trial advances
    net = EPropNetwork(c)
    x, labels = _data(c, steps=30)
    g = net.gradients(x, labels)
    assert g["hid_hid"].shape == net.sim.get("hid_hid", "w").shape
    assert np.all(np.isfinite(g["hid_hid"]))
    # without the regulariser a trial starts from rest: a second call gives the same result
    g2 = net.gradients(x, labels)
    np.testing.assert_array_equal(g["hid_hid"], g2["hid_hid"])
