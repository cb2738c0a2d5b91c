"""Surrogate-gradient BPTT of SD-SNN's LIF on the engine (plastix.learning.bptt_models): a two-layer network
(spike input -> sparse -> LIF -> dense -> LIF, MSE on output rates) whose gradients come from custom
updates over the tape, against BPTT written here in numpy over the unrolled network (matrices per step)."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch
from plastix.learning import bptt_models as bm

N, H, K, T, B = 8, 6, 3, 12, 2
DECAY, TH, LENS = 0.2, 0.5, 0.5


def _network():
    net = px.Network(dt=1.0, seed=5, precision="float64")
    net.add_population("inp", N, neurons.spike_source_array())
    net.add_population("hid", H, bm.sdsnn_lif(1), init={"bias": px.init.Uniform(-0.1, 0.3)})
    net.add_population("out", K, bm.sdsnn_lif(2), init={"bias": px.init.Uniform(-0.1, 0.2)})
    net.add_projection("ih", "inp", "hid", connectivity=connect.FixedProbability(0.6), weight_update=bm.SYNAPSE,
                       init={"w": px.init.Normal(0.3, 0.4)})
    net.add_projection("ho", "hid", "out", connectivity=connect.AllToAll(), weight_update=bm.SYNAPSE,
                       init={"w": px.init.Normal(0.25, 0.4)})
    net.add_custom_update("loss", "out", bm.rate_mse(T), group="grad")
    net.add_custom_update("adj_out", "out", bm.adjoint(2), group="grad")
    net.add_custom_update("back_ho", "ho", bm.transpose(), var_refs={"w": "w"},
                          tape_refs={"du": "post.du", "gz": "pre.g"}, group="grad")
    net.add_custom_update("adj_hid", "hid", bm.adjoint(1), group="grad")
    net.add_custom_update("gw_ho", "ho", bm.weight_gradient(), tape_refs={"du": "post.du"}, group="grad")
    net.add_custom_update("gw_ih", "ih", bm.weight_gradient(), tape_refs={"du": "post.du"}, group="grad")
    return net


def _dense(sim, proj, n_pre, n_post):
    pre, post = sim.connectivity(proj)
    w = np.zeros((n_pre, n_post))
    w[pre, post] = sim.get(proj, "w")
    return w, pre, post


def _bptt(x, labels, W1, b1, W2, b2, scale):
    """Gradients summed over the batch: BPTT through the unrolled steps, reset path included."""
    g = {"W1": np.zeros_like(W1), "W2": np.zeros_like(W2), "b1": np.zeros_like(b1), "b2": np.zeros_like(b2)}
    spikes = 0
    for b in range(x.shape[0]):
        u1, s1, u2, s2 = np.zeros((T, H)), np.zeros((T, H)), np.zeros((T, K)), np.zeros((T, K))
        pu1, ps1, pu2, ps2 = np.zeros(H), np.zeros(H), np.zeros(K), np.zeros(K)
        for t in range(T):
            u1[t] = DECAY * pu1 * (1 - ps1) + x[b, t] @ W1 + b1
            s1[t] = u1[t] > TH
            u2[t] = DECAY * pu2 * (1 - ps2) + s1[t] @ W2 + b2
            s2[t] = u2[t] > TH
            pu1, ps1, pu2, ps2 = u1[t], s1[t], u2[t], s2[t]
        spikes += s1.sum() + s2.sum()
        gs2 = np.tile(scale * (s2.mean(axis=0) - np.eye(K)[labels[b]]) / T, (T, 1))   # dL/ds2_t from the loss
        du2, du1 = np.zeros((T, K)), np.zeros((T, H))
        nxt2, nxt1 = np.zeros(K), np.zeros(H)
        for t in range(T - 1, -1, -1):
            ds2 = gs2[t] - DECAY * u2[t] * nxt2
            du2[t] = ds2 * (np.abs(u2[t] - TH) < LENS) + DECAY * (1 - s2[t]) * nxt2
            nxt2 = du2[t]
            ds1 = W2 @ du2[t] - DECAY * u1[t] * nxt1
            du1[t] = ds1 * (np.abs(u1[t] - TH) < LENS) + DECAY * (1 - s1[t]) * nxt1
            nxt1 = du1[t]
        g["W2"] += s1.T @ du2
        g["W1"] += x[b].T @ du1
        g["b2"] += du2.sum(axis=0)
        g["b1"] += du1.sum(axis=0)
    return g, spikes


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_engine_bptt_equals_numpy_bptt(backend, monkeypatch):
    if backend == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    sim = px.Simulation(_network(), backend=backend, batch_size=B)
    rng = np.random.default_rng(1)
    x = (rng.random((B, T, N)) < 0.4).astype(float)
    labels = np.array([0, 2])
    trains = [[np.nonzero(x[b, :, i])[0] * 1.0 for i in range(N)] for b in range(B)]
    sim.set_spike_times("inp", trains)
    sim.set("loss", "label", labels)
    scale = 2.0 / (B * K)   # nn.MSELoss: the mean over the batch and the classes
    sim.set_param("loss", "scale", scale)
    sim.run(T + 2)
    sim.custom_update("grad")
    W1, pre1, post1 = _dense(sim, "ih", N, H)
    W2, pre2, post2 = _dense(sim, "ho", H, K)
    ref, spikes = _bptt(x, labels, W1, sim.get("hid", "bias"), W2, sim.get("out", "bias"), scale)
    assert spikes > 20, "the test needs spikes in both layers"
    assert np.abs(ref["W1"]).max() > 1e-3
    np.testing.assert_allclose(sim.get("gw_ho", "gw"), ref["W2"][pre2, post2], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.get("adj_out", "gb"), ref["b2"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.get("adj_hid", "gb"), ref["b1"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.get("gw_ih", "gw"), ref["W1"][pre1, post1], rtol=1e-9, atol=1e-12)
