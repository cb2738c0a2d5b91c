"""The BPTT trainer on the engine (plastix.learning.bptt) against the plain-numpy BPTT of
tests/sdsnn_reference.py: conv, pool, fc, recurrent fc and li layers, the three losses, a padded batch;
CPU and the CUDA simulator.  Plus bad configurations and inputs."""
from __future__ import annotations

import numpy as np
import pytest

from plastix.kernels import launch
from plastix.learning.bptt import BPTTConfig, BPTTError, BPTTNetwork, bernoulli_counts
from sdsnn_reference import forward_backward, init_params, layer_specs

CASES = {   # spec, input shape, loss, weight gain (so that every layer spikes)
    "conv_pool_fc_rec": ("conv3-pool2-fc10r-fc3", (2, 6, 6), "mse_rate", 3.0),
    "strided_conv_li": ("conv4k3s2p0-fc6-li3", (1, 7, 7), "ce_step", 3.0),
    "two_convs": ("conv3-conv2k2p0-pool2-fc3", (1, 6, 6), "ce_rate", 3.0),
    "fc_rec": ("fc9r-fc3", (12,), "ce_rate", 2.5),
    "tiny_conv_rec": ("conv2-pool2-fc4r-fc3", (1, 4, 4), "mse_rate", 3.0),
}
T, N_SAMPLES, BATCH = 7, 3, 4


def _setup(case, backend="cpu"):
    spec, shape, loss, gain = CASES[case]
    cfg = BPTTConfig(input_shape=shape, layers=spec, steps=T, loss=loss, dtype="float64", backend=backend, seed=3)
    net = BPTTNetwork(cfg, batch_size=BATCH)
    layers = layer_specs(spec, shape)
    rng = np.random.default_rng(7)
    params = init_params(layers, rng)
    for L, P in zip(net.layers, params):
        for k in P:
            if k != "bias":
                P[k] = P[k] * gain
        if L.kind == "conv":
            net.set_conv_parameters(L.name, P["kernel"], P["bias"])
        elif L.kind in ("fc", "li"):
            net.set_dense_weights(L.name, P["w"], P["bias"], P.get("w_rec"))
    x = bernoulli_counts(rng.uniform(0.2, 0.9, (N_SAMPLES, int(np.prod(shape)))), T, rng)
    labels = np.array([0, 2, 1])
    return net, layers, params, x, labels, loss


def _compare(net, layers, params, x, labels, loss):
    ref = forward_backward(x.astype(np.float64), labels, layers, params, loss)
    for L, spikes in zip(net.layers, ref["spikes"]):
        if L.spiking:
            assert spikes.mean() > 0.02, f"layer {L.name} is silent: the comparison would be vacuous"
    got = net.gradients(x, labels)
    for L, g in zip(net.layers, ref["grads"]):
        if L.kind == "conv":
            np.testing.assert_allclose(got[L.name]["kernel"], g["kernel"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got[L.name]["bias"], g["bias"], rtol=1e-9, atol=1e-12)
        elif L.kind in ("fc", "li"):
            np.testing.assert_allclose(got[L.name]["w"], g["w"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got[L.name]["bias"], g["bias"], rtol=1e-9, atol=1e-12)
            if L.recurrent:
                np.testing.assert_allclose(got[L.name]["w_rec"], g["w_rec"], rtol=1e-9, atol=1e-12)
    assert max(np.abs(g["w" if "w" in g else "kernel"]).max() for g in ref["grads"] if g) > 1e-4
    ev = net.evaluate_batch(x, labels)
    assert ev["loss"] == pytest.approx(ref["loss"], rel=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_equal_numpy_bptt(case):
    _compare(*_setup(case))


def test_gradients_equal_numpy_bptt_cuda(monkeypatch):
    pytest.importorskip("numba.cuda")
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    _compare(*_setup("tiny_conv_rec", backend="cuda"))


def test_training_lowers_the_loss_and_keeps_no_self_connections():
    net, layers, params, x, labels, loss = _setup("conv_pool_fc_rec")
    first = net.evaluate_batch(x, labels)["loss"]
    for _ in range(15):
        net.train_batch(x, labels)
    assert net.evaluate_batch(x, labels)["loss"] < first
    assert np.all(np.diag(net.dense_weights("fc1", recurrent=True)) == 0.0)
    k, b = net.conv_parameters("conv1")
    ragged = net.sim.ragged("conv1_syn", "w")   # every synapse carries its kernel entry
    kidx = net.sim.ragged("conv1_syn", "kidx")["kidx"]
    valid = np.arange(ragged["w"].shape[1])[None, :] < ragged["row_length"][:, None]
    np.testing.assert_array_equal(ragged["w"][valid], k.ravel()[kidx[valid]])


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": "conv3-fc"}, "not conv"),
    ({"layers": "conv3k9-fc3"}, "conv3k9"),
    ({"layers": "fc8-pool2-fc3"}, "image input"),
    ({"layers": "li4-fc3"}, "last layer"),
    ({"layers": "conv3-pool2"}, "output"),
    ({"layers": "fc8-fc3", "loss": "ce_step"}, "li readout"),
    ({"loss": "hinge"}, "loss must be one of"),
    ({"steps": 0}, "steps"),
    ({"decay": 1.5}, "decay"),
])
def test_bad_configurations_name_the_problem(kwargs, match):
    base = {"input_shape": (1, 6, 6), "layers": "conv3-pool2-fc3"}
    with pytest.raises(BPTTError, match=match):
        BPTTConfig(**{**base, **kwargs})


def test_bad_batches_name_the_problem():
    net, _, _, x, labels, _ = _setup("fc_rec")
    with pytest.raises(BPTTError, match="spike counts"):
        net.train_batch(x.astype(float) * 0.5, labels)
    with pytest.raises(BPTTError, match="labels must lie"):
        net.train_batch(x, np.array([0, 5, 1]))
    with pytest.raises(BPTTError, match="steps"):
        net.train_batch(x[:, :3], labels)
    with pytest.raises(BPTTError, match="at most batch_size"):
        net.train_batch(np.concatenate([x, x]), np.concatenate([labels, labels]))
    with pytest.raises(BPTTError, match=r"\[0, 1\]"):
        bernoulli_counts(np.full((2, 4), 1.5), 3, np.random.default_rng(0))
