"""e-prop gradients against an independent BPTT computation (adjoint recursion written here in numpy).

For a network without recurrent connections and symmetric feedback, e-prop is exact: with the reset
treated as non-differentiable and the same pseudo-derivative, its gradient equals BPTT's.
"""
import numpy as np
import pytest

from bptt_reference import bptt
from plastix.learning.eprop import EPropConfig, EPropNetwork, TrainingError


def _bptt(x, labels, w_in, w_out, b_out, c: EPropConfig, feedback=None):
    """BPTT gradients (input, readout, bias) and the spike count of a network without hidden-to-hidden
    connections: x [B, T, N]; w_in [N, H]; w_out [K, H]; ``feedback`` [H, K] replaces w_out.T on the path
    back from the output error (random feedback alignment)."""
    H = w_out.shape[1]
    g_in, _, g_out, g_b, n = bptt(x, labels, w_in, np.zeros((H, H)), w_out, b_out, c, feedback=feedback, cut=False)
    return g_in, g_out, g_b, n


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


@pytest.mark.parametrize("neuron, reset", [("lif", "subtract"), ("alif", "subtract"), ("lif", "zero"),
                                           ("alif", "zero")])
def test_eprop_equals_bptt_without_recurrence(neuron, reset):
    c, net = _net(neuron, reset=reset)
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
    dense.w_out = sparse.w_out
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


def test_reset_option_is_validated_and_changes_the_dynamics():
    with pytest.raises(TrainingError, match="reset must be one of"):
        EPropConfig(num_inputs=2, num_outputs=2, reset="to_reset")
    spikes = {}
    for reset in ("subtract", "zero"):
        c, net = _net("lif", reset=reset)
        net.sim.set("in_hid", "w", net.sim.get("in_hid", "w") * 3.0)
        x, labels = _data(c)
        *_, spikes[reset] = _bptt(x, labels, _dense_weights(net), net.w_out.astype(float), net.b_out.astype(float), c)
        rate = net.evaluate_batch(x, labels)["rate_hz"]   # the kernels' count, as Hz
        assert rate * x.shape[0] * x.shape[1] * c.dt * c.num_hidden / 1000.0 == pytest.approx(spikes[reset])
    assert spikes["zero"] != spikes["subtract"]
