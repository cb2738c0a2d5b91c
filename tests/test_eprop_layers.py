"""Several hidden layers (and recurrence): e-prop against BPTT computed independently in numpy.

e-prop's gradient is BPTT's with the backward path between hidden neurons cut: a hidden neuron's
learning signal is only its direct effect on the readout (through the fixed feedback matrix), while
its own state -- membrane and adaptation -- is followed exactly through the eligibility traces.  The
reference (tests/bptt_reference.py) builds the whole network as one hidden vector (layer after layer) with an
input matrix and one hidden-to-hidden matrix holding the recurrent blocks and the layer-to-layer blocks (all read
z(t - 1)), runs it forward in numpy, and backpropagates with that path cut (``cut=True``) or not.
"""
import numpy as np
import pytest

from bptt_reference import bptt as _bptt
from plastix.learning.eprop import EPropConfig, EPropNetwork, TrainingError


def _dense(net):
    """The network's weights as the reference's matrices (input [N, H], hidden [H, H])."""
    c = net.config
    H = c.hidden_total
    w_in, w_hh = np.zeros((c.num_inputs, H)), np.zeros((H, H))
    for p in net.projections:
        src, pre_off, post_off, _ = net.geometry[p]
        pre, post = net.sim.connectivity(p)
        w = net.sim.get(p, "w")
        if src == 0:
            w_in[pre, post_off + post] = w
        else:
            w_hh[pre_off + pre, post_off + post] = w
    return w_in, w_hh


def _net(layers, neuron="alif", recurrent=0.0, seed=3, **kw):
    c = EPropConfig(num_inputs=6, num_outputs=3, num_hidden=layers, neuron=neuron, input_density=0.8,
                    recurrent_density=recurrent, feedforward_density=0.7, dtype="float64", c_reg=0.0, seed=seed,
                    tau_refrac=2.0, beta=0.3 if neuron == "alif" else 0.0174, tau_adapt=50.0, **kw)
    net = EPropNetwork(c)
    for p in net.projections:   # enough drive for spikes in every layer
        net.sim.set(p, "w", net.sim.get(p, "w") * 3.0)
    return c, net


def _data(c, batch=3, steps=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, steps, c.num_inputs)) < 0.2).astype(np.uint8)
    return x, rng.integers(0, c.num_outputs, batch)


def _check(net, g, ref_in, ref_hh):
    for p in net.projections:
        src, pre_off, post_off, _ = net.geometry[p]
        pre, post = net.sim.connectivity(p)
        want = ref_in[pre, post_off + post] if src == 0 else ref_hh[pre_off + pre, post_off + post]
        np.testing.assert_allclose(g[p], want, rtol=1e-9, atol=1e-12, err_msg=p)
        if g[p].size >= 5:
            assert np.abs(g[p]).max() > 1e-6, f"{p}: the test needs non-zero gradients"


@pytest.mark.parametrize("layers, neuron, recurrent", [
    ((5, 4), "alif", 0.0), ((4, 4, 3), "lif", 0.0), ((5, 4), "alif", 0.5), (7, "alif", 0.5), (7, "lif", 0.6)])
def test_eprop_is_bptt_without_the_paths_between_hidden_neurons(layers, neuron, recurrent):
    c, net = _net(layers, neuron, recurrent)
    x, labels = _data(c)
    w_in, w_hh = _dense(net)
    ref_in, ref_hh, ref_out, ref_b, n_spikes = _bptt(x, labels, w_in, w_hh, net.w_out.astype(float),
                                                     net.b_out.astype(float), c)
    assert n_spikes > 40, "the test needs spiking hidden neurons"
    g = net.gradients(x, labels)
    _check(net, g, ref_in, ref_hh)
    np.testing.assert_allclose(g["w_out"], ref_out, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g["b_out"], ref_b, rtol=1e-9, atol=1e-12)
    # the projections into the last layer, when it has no recurrence, see no hidden path: exact BPTT there
    full_in, full_hh, _, _, _ = _bptt(x, labels, w_in, w_hh, net.w_out.astype(float), net.b_out.astype(float), c,
                                      cut=False)
    if recurrent == 0.0 and isinstance(layers, tuple):
        last = net.projections[-1]
        _, pre_off, post_off, _ = net.geometry[last]
        pre, post = net.sim.connectivity(last)
        np.testing.assert_allclose(g[last], full_hh[pre_off + pre, post_off + post], rtol=1e-9, atol=1e-12)
        pre, post = net.sim.connectivity("in_hid")   # ... while the first layer's differ: e-prop's truncation
        assert not np.allclose(g["in_hid"], full_in[pre, post], rtol=1e-3)


def test_readout_from_the_last_layer_with_random_feedback():
    c, net = _net((5, 4), feedback="random", readout="last")
    assert np.all(net.w_out[:, :5] == 0) and np.all(net.w_out[:, 5:] != 0)
    x, labels = _data(c, seed=1)
    w_in, w_hh = _dense(net)
    fb = net.feedback_random.copy()
    ref_in, ref_hh, ref_out, _, _ = _bptt(x, labels, w_in, w_hh, net.w_out.astype(float),
                                          net.b_out.astype(float), c, feedback=fb)
    g = net.gradients(x, labels)
    _check(net, g, ref_in, ref_hh)   # the first layer learns through its own feedback weights
    np.testing.assert_array_equal(g["w_out"][:, :5], 0.0)   # the readout does not read the first layer
    np.testing.assert_allclose(g["w_out"][:, 5:], ref_out[:, 5:], rtol=1e-9, atol=1e-12)
    for _ in range(3):
        net.train_batch(x, labels)
    assert np.all(net.w_out[:, :5] == 0)


def test_layer_names_geometry_and_deep_r_on_every_sparse_projection():
    c = EPropConfig(num_inputs=10, num_outputs=2, num_hidden=[8, 6, 4], input_density=0.5, recurrent_density=0.5,
                    feedforward_density=0.5, rewiring="deep-r", row_padding=2.0, seed=1, l1=0.5, lr=0.05)
    net = EPropNetwork(c)
    assert c.layers == (8, 6, 4) and c.hidden_total == 18
    assert net.projections == ("in_hid", "hid_hid", "hid_hid2", "hid2_hid2", "hid2_hid3", "hid3_hid3")
    assert net.geometry["hid2_hid3"] == (1, 8, 14, 4)
    assert set(net.rewired) == set(net.projections)
    assert [net.network.populations[n].size for n in ("hidden", "hidden2", "hidden3")] == [8, 6, 4]
    assert EPropConfig.from_dict(c.to_dict()) == c   # JSON-shaped round trip (lists)
    before = net.synapse_counts()
    x, labels = _data(c, batch=4, steps=30)
    removed = 0
    for _ in range(6):
        out = net.train_batch(x, labels)
        removed += sum(r["removed"] for r in out["rewiring"].values())
    assert removed > 0, "strong L1 should flip some signs"
    assert net.synapse_counts() == before


def test_layer_options_are_validated():
    kw = dict(num_inputs=4, num_outputs=2)
    for bad in ([], [3, 0], (2, -1), "8"):
        with pytest.raises(TrainingError, match="num_hidden"):
            EPropConfig(num_hidden=bad, **kw)
    with pytest.raises(TrainingError, match="feedforward_density"):
        EPropConfig(num_hidden=[3, 3], feedforward_density=0.0, **kw)
    with pytest.raises(TrainingError, match="readout"):
        EPropConfig(num_hidden=[3, 3], readout="first", **kw)
    with pytest.raises(TrainingError, match="feedback='random'"):
        EPropConfig(num_hidden=[3, 3], readout="last", **kw)
    assert EPropConfig(num_hidden=[5], **kw).num_hidden == 5
