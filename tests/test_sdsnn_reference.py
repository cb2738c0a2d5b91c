"""The plain-numpy SD-SNN BPTT reference (tests/sdsnn_reference.py) against hand-computed cases, direct
formulas and exact invariants; no torch needed (the torch comparison is tests/tools/check_sdsnn_reference_torch.py)."""
import math

import numpy as np
import pytest

import sdsnn_reference as ref

DECAY = 0.2


def one_neuron(w, b, xs):
    layers = [{"kind": "fc", "n_in": 1, "n_out": 1, "recurrent": False}]
    params = [{"w": np.array([[w]]), "bias": np.array([b])}]
    return ref.forward_backward(np.array(xs, float).reshape(1, -1, 1), np.array([0]), layers, params, "mse_rate")


def test_one_neuron_by_hand_reset_path():
    # w 0.7, b 0.1, x = 1, 0.5, 1; rate target 1 (one class)
    # u0 = 0.8 -> s0 = 1;  u1 = 0.2*0.8*(1-1) + 0.35 + 0.1 = 0.45 -> s1 = 0;  u2 = 0.2*0.45*(1-0) + 0.8 = 0.89 -> s2 = 1
    out = one_neuron(0.7, 0.1, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(out["u"][0][0, :, 0], [0.8, 0.45, 0.89], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["spikes"][0][0, :, 0], [1, 0, 1])
    assert out["loss"] == pytest.approx((2 / 3 - 1) ** 2, abs=1e-15)
    # dL/ds_t = 2 (rate - 1) / T = -2/9; every u_t is in (0, 1): surrogate 1 at every step
    gs = -2 / 9
    gu2 = gs
    gu1 = (gs - DECAY * 0.45 * gu2) + DECAY * (1 - 0) * gu2     # s1 via the reset of u2; u1 via decay
    gu0 = (gs - DECAY * 0.8 * gu1) + DECAY * (1 - 1) * gu1      # s0 spiked: no decay path from u0 to u1
    g = out["grads"][0]
    assert g["w"][0, 0] == pytest.approx(1.0 * gu0 + 0.5 * gu1 + 1.0 * gu2, abs=1e-15)
    assert g["bias"][0] == pytest.approx(gu0 + gu1 + gu2, abs=1e-15)
    assert g["w"][0, 0] == pytest.approx(-2 / 9 * (0.8224 + 0.555 + 1.0), abs=1e-15)   # the numbers, once


def test_one_neuron_by_hand_surrogate_off():
    # w 1.1, b 0.1, x = 1, 0.2, 0.5:  u0 = 1.2 (|u - 0.5| = 0.7: surrogate 0) -> s0 = 1;
    # u1 = 0 + 0.22 + 0.1 = 0.32 -> s1 = 0;  u2 = 0.2*0.32 + 0.55 + 0.1 = 0.714 -> s2 = 1
    out = one_neuron(1.1, 0.1, [1.0, 0.2, 0.5])
    np.testing.assert_allclose(out["u"][0][0, :, 0], [1.2, 0.32, 0.714], rtol=0, atol=1e-15)
    gs = -2 / 9
    gu2 = gs
    gu1 = (gs - DECAY * 0.32 * gu2) + DECAY * gu2
    gu0 = 0.0                               # surrogate 0 at u0 and (1 - s0) = 0: nothing reaches u0
    g = out["grads"][0]
    assert g["w"][0, 0] == pytest.approx(1.0 * gu0 + 0.2 * gu1 + 0.5 * gu2, abs=1e-15)
    assert g["bias"][0] == pytest.approx(gu0 + gu1 + gu2, abs=1e-15)


def test_threshold_and_surrogate_edges_are_strict():
    # u = v_th exactly: no spike (s = H(u - v_th) needs u > v_th), surrogate 1 (|u - v_th| = 0)
    at_threshold = one_neuron(0.5, 0.0, [1.0])
    assert at_threshold["spikes"][0][0, 0, 0] == 0.0
    assert at_threshold["grads"][0]["bias"][0] == pytest.approx(2 * (0 - 1), abs=1e-15)
    # u0 = v_th + lens = 1 exactly: a spike, then u1 = 0.2*1*(1-1) + 0 = 0 = v_th - lens: no spike; both
    # surrogates 0 (|u - v_th| < lens is strict), so the gradient is 0 although the loss is not
    at_edges = one_neuron(1.0, 0.0, [1.0, 0.0])
    np.testing.assert_array_equal(at_edges["spikes"][0][0, :, 0], [1.0, 0.0])
    assert at_edges["loss"] == 0.25 and at_edges["grads"][0]["bias"][0] == 0.0
    assert one_neuron(0.25, 0.75, [1.0])["spikes"][0][0, 0, 0] == 1.0   # 0.25 + 0.75: u = 1 with the bias


def test_two_recurrent_neurons_by_hand():
    # fc2r over 2 steps, x = 1, 1; w = [0.6, 0.3], b = 0, w_rec[0, 1] = 0.4, w_rec[1, 0] = 0.5; ce_rate, label 0
    layers = [{"kind": "fc", "n_in": 1, "n_out": 2, "recurrent": True}]
    params = [{"w": np.array([[0.6, 0.3]]), "bias": np.zeros(2), "w_rec": np.array([[0.0, 0.4], [0.5, 0.0]])}]
    out = ref.forward_backward(np.ones((1, 2, 1)), np.array([0]), layers, params, "ce_rate")
    # t0: u = [0.6, 0.3] -> s = [1, 0]
    # t1: u = 0.2*[0.6*0, 0.3*1] + [0.6, 0.3] + s0 @ w_rec = [0.6, 0.76] -> s = [1, 1]
    np.testing.assert_allclose(out["u"][0][0], [[0.6, 0.3], [0.6, 0.76]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out["spikes"][0][0], [[1, 0], [1, 1]])
    # counts [2, 1]: L = log(e^2 + e) - 2; dL/ds_t = softmax - onehot = [-q, q], q = 1 / (1 + e)
    assert out["loss"] == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-15)
    q = 1 / (1 + math.e)
    gu1 = np.array([-q, q])                                        # all surrogates 1 (u in (0, 1))
    gs0 = np.array([-q, q]) - DECAY * np.array([0.6, 0.3]) * gu1 + np.array([0.4 * gu1[1], 0.5 * gu1[0]])
    gu0 = gs0 + DECAY * np.array([1 - 1, 1 - 0]) * gu1
    np.testing.assert_allclose(gu0, [-0.48 * q, 0.64 * q], rtol=1e-14)
    g = out["grads"][0]
    np.testing.assert_allclose(g["w"], [gu0 + gu1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(g["bias"], gu0 + gu1, rtol=0, atol=1e-15)
    # w_rec[i, j] gets s_{t-1, i} * gu_{t, j}: only s0 = [1, 0] at t1 -> row 0 = gu1, its diagonal entry dropped
    np.testing.assert_allclose(g["w_rec"], [[0.0, q], [0.0, 0.0]], rtol=0, atol=1e-15)


def random_net(spec, in_shape, loss, seed, b=3, t_steps=8, gain=2.5, graded=False):
    rng = np.random.default_rng(seed)
    layers = ref.layer_specs(spec, in_shape)
    params = [{k: gain * v for k, v in p.items()} for p in ref.init_params(layers, rng)]
    n = ref.in_size(layers[0])
    x = rng.uniform(0, 1.5, (b, t_steps, n)) if graded else (rng.random((b, t_steps, n)) < 0.5).astype(float)
    labels = rng.integers(0, layers[-1]["n_out"], b)
    return x, labels, layers, params, loss


def test_conv_forward_is_the_per_pixel_sum():
    layers = [{"kind": "conv", "in_shape": (2, 6, 5), "channels": 3, "kernel": (2, 3), "stride": (2, 1),
               "padding": (1, 0)}, {"kind": "fc", "n_in": 3 * 4 * 3, "n_out": 2, "recurrent": False}]
    rng = np.random.default_rng(3)
    params = ref.init_params(layers, rng)
    x = rng.uniform(0, 2, (2, 3, 2 * 6 * 5))
    out = ref.forward_backward(x, np.array([0, 1]), layers, params, "mse_rate")
    u, s = out["u"][0], out["spikes"][0]
    # the drive of step t, recovered from the membranes: I_t = u_t - decay u_{t-1} (1 - s_{t-1})
    u_prev = np.concatenate([np.zeros_like(u[:, :1]), u[:, :-1]], axis=1)
    s_prev = np.concatenate([np.zeros_like(s[:, :1]), s[:, :-1]], axis=1)
    drive = u - DECAY * u_prev * (1 - s_prev)
    k, bias = params[0]["kernel"], params[0]["bias"]
    for bb in range(2):
        for t in range(3):
            for o in range(3):
                for y in range(4):                  # (6 + 2*1 - 2) // 2 + 1
                    for xx in range(3):             # (5 + 0 - 3) // 1 + 1
                        total = bias[o]
                        for c in range(2):
                            for i in range(2):
                                for j in range(3):
                                    iy, ix = 2 * y + i - 1, xx + j
                                    if 0 <= iy < 6 and 0 <= ix < 5:
                                        total += k[o, c, i, j] * x[bb, t, (c * 6 + iy) * 5 + ix]
                        assert drive[bb, t, (o * 4 + y) * 3 + xx] == pytest.approx(total, abs=1e-13)


def test_pool_forward_is_block_means_floor_mode():
    x, labels, layers, params, loss = random_net("conv3-pool2-fc4", (1, 7, 7), "mse_rate", seed=5)
    out = ref.forward_backward(x, labels, layers, params, loss)
    s, pooled = out["spikes"][0], out["spikes"][1]
    assert pooled.shape == (3, 8, 3 * 3 * 3) and 0 < s.mean() < 1
    for c in range(3):
        for y in range(3):
            for xx in range(3):
                block = [s[:, :, (c * 7 + 2 * y + i) * 7 + 2 * xx + j] for i in range(2) for j in range(2)]
                np.testing.assert_allclose(pooled[:, :, (c * 3 + y) * 3 + xx], sum(block) / 4, rtol=0, atol=1e-15)


def test_conv_and_pool_backward_are_the_adjoints():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 2, 7, 6))
    kernel = rng.normal(size=(3, 2, 3, 2))
    for stride, padding in [((1, 1), (1, 1)), ((2, 1), (0, 2)), ((2, 3), (1, 0))]:
        out = ref.conv2d(a, kernel, stride, padding)
        g = rng.normal(size=out.shape)
        g_a, g_k = ref.conv2d_backward(g, a, kernel, stride, padding)
        # conv is linear in a and in the kernel: <conv(a, K), g> = <a, g_a> = <K, g_K>
        assert np.sum(out * g) == pytest.approx(np.sum(a * g_a), rel=1e-12)
        assert np.sum(out * g) == pytest.approx(np.sum(kernel * g_k), rel=1e-12)
    pooled = ref.avg_pool(a, 2)
    g = rng.normal(size=pooled.shape)
    assert pooled.shape == (4, 2, 3, 3)
    assert np.sum(pooled * g) == pytest.approx(np.sum(a * ref.avg_pool_backward(g, (7, 6), 2)), rel=1e-12)


@pytest.mark.parametrize("spec, in_shape", [("conv3-pool2-fc6r-li3", (2, 6, 6)), ("fc8r-li4", (10,))])
def test_readout_gradient_equals_finite_differences(spec, in_shape):
    # the li readout's parameters do not change any spike: the loss is smooth in them, so central
    # differences must match the backward pass
    x, labels, layers, params, loss = random_net(spec, in_shape, "ce_step", seed=11, graded=True)
    grads = ref.forward_backward(x, labels, layers, params, loss)["grads"][-1]
    eps = 1e-6
    for key in ("w", "bias"):
        fd = np.zeros_like(params[-1][key])
        for idx in np.ndindex(fd.shape):
            plus = [dict(p) for p in params]
            minus = [dict(p) for p in params]
            plus[-1][key] = params[-1][key].copy()
            minus[-1][key] = params[-1][key].copy()
            plus[-1][key][idx] += eps
            minus[-1][key][idx] -= eps
            fd[idx] = (ref.forward_backward(x, labels, layers, plus, loss)["loss"]
                       - ref.forward_backward(x, labels, layers, minus, loss)["loss"]) / (2 * eps)
        assert np.abs(grads[key]).max() > 1e-3
        np.testing.assert_allclose(grads[key], fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("spec, in_shape, loss", [("conv3-pool2-fc6r-li3", (2, 6, 6), "ce_step"),
                                                  ("conv3-pool2-fc6-fc3", (2, 6, 6), "mse_rate"),
                                                  ("fc8r-fc3", (10,), "ce_rate")])
def test_zero_surrogate_width_leaves_only_the_readout_gradient(spec, in_shape, loss):
    net = random_net(spec, in_shape, loss, seed=13)
    wide = ref.forward_backward(*net)
    none = ref.forward_backward(*net, lens=0.0)
    for a, b in zip(wide["spikes"], none["spikes"]):
        np.testing.assert_array_equal(a, b)                    # the width changes no forward value
    assert wide["loss"] == none["loss"]
    readout = net[2][-1]["kind"] == "li"
    for l, (gw, gn) in enumerate(zip(wide["grads"], none["grads"])):
        for key in gw:
            if readout and l == len(net[2]) - 1:              # the li layer: no surrogate on its path
                np.testing.assert_array_equal(gn[key], gw[key])
            else:
                assert np.abs(gw[key]).max() > 0, f"layer {l} {key}: no gradient even with lens 0.5"
                np.testing.assert_array_equal(gn[key], 0.0)


@pytest.mark.parametrize("loss, spec", [("mse_rate", "fc6r-fc4"), ("ce_rate", "fc6r-fc4"), ("ce_step", "fc6r-li4")])
def test_loss_values_and_batch_mean(loss, spec):
    x, labels, layers, params, loss = random_net(spec, (7,), loss, seed=17, b=4, graded=True)
    out = ref.forward_backward(x, labels, layers, params, loss)
    o = out["spikes"][-1]
    onehot = np.eye(4)[labels]
    if loss == "mse_rate":
        expected = np.mean((o.mean(axis=1) - onehot) ** 2)
    elif loss == "ce_rate":
        c = o.sum(axis=1)
        expected = np.mean(np.log(np.exp(c).sum(axis=1)) - c[np.arange(4), labels])
    else:
        expected = np.mean([sum(np.log(np.exp(o[b, t]).sum()) - o[b, t, labels[b]] for t in range(o.shape[1]))
                            for b in range(4)])
    assert out["loss"] == pytest.approx(expected, rel=1e-13)
    # the batch's loss and gradient are the means of the per-sample ones
    singles = [ref.forward_backward(x[b:b + 1], labels[b:b + 1], layers, params, loss) for b in range(4)]
    assert out["loss"] == pytest.approx(np.mean([s["loss"] for s in singles]), rel=1e-13)
    for l, g in enumerate(out["grads"]):
        for key in g:
            np.testing.assert_allclose(g[key], np.mean([s["grads"][l][key] for s in singles], axis=0),
                                       rtol=1e-12, atol=1e-15)


def test_forward_is_causal():
    x, labels, layers, params, loss = random_net("conv3-pool2-fc6r-fc3", (2, 6, 6), "mse_rate", seed=19)
    full = ref.forward_backward(x, labels, layers, params, loss)
    short = ref.forward_backward(x[:, :5], labels, layers, params, loss)
    for a, b in zip(full["spikes"], short["spikes"]):
        np.testing.assert_array_equal(a[:, :5], b)


def test_layer_specs_parses_the_grammar():
    layers = ref.layer_specs("conv4-pool2-fc8r-fc3", (2, 6, 6))
    assert layers == [
        {"kind": "conv", "in_shape": (2, 6, 6), "channels": 4, "kernel": (3, 3), "stride": (1, 1), "padding": (1, 1)},
        {"kind": "pool", "in_shape": (4, 6, 6), "pool": 2},
        {"kind": "fc", "n_in": 36, "n_out": 8, "recurrent": True},
        {"kind": "fc", "n_in": 8, "n_out": 3, "recurrent": False}]
    conv = ref.layer_specs("conv16k5s2p0-li3", (1, 28, 28))
    assert conv[0]["kernel"] == (5, 5) and conv[0]["stride"] == (2, 2) and conv[0]["padding"] == (0, 0)
    assert conv[1] == {"kind": "li", "n_in": 16 * 12 * 12, "n_out": 3, "kappa": 0.8}
    assert ref.layer_specs("conv15-pool2-conv40-pool2-fc300-fc10", (1, 28, 28))[4]["n_in"] == 40 * 7 * 7


@pytest.mark.parametrize("spec, in_shape, match", [
    ("conv4-foo-fc3", (1, 6, 6), "unknown token"), ("", (1, 6, 6), "non-empty"),
    ("conv4k3k5-fc3", (1, 6, 6), "twice"), ("conv0-fc3", (1, 6, 6), ">= 1"),
    ("pool0-fc3", (1, 6, 6), ">= 1"), ("fc4-conv3-fc2", (1, 6, 6), "flat"), ("conv3-fc3", (12,), "flat"),
    ("conv3k7p0-fc3", (1, 6, 6), "output"), ("pool7-fc3", (1, 6, 6), "larger"),
    ("li4-fc3", (5,), "last layer"), ("conv3-pool2", (1, 6, 6), "last layer"),
    ("fc3", (0,), "in_shape")])
def test_layer_specs_rejects_bad_specs(spec, in_shape, match):
    with pytest.raises(ValueError, match=match):
        ref.layer_specs(spec, in_shape)


def test_init_params_pytorch_bounds():
    layers = ref.layer_specs("conv6k3-pool2-fc50r-li4", (2, 8, 8))
    params = ref.init_params(layers, np.random.default_rng(23))
    bounds = {0: 1 / math.sqrt(2 * 9), 2: 1 / math.sqrt(6 * 4 * 4), 3: 1 / math.sqrt(50)}
    assert params[1] == {}
    assert params[0]["kernel"].shape == (6, 2, 3, 3) and params[2]["w"].shape == (96, 50)
    for l, bound in bounds.items():
        for v in params[l].values() if l != 2 else (params[2]["w"], params[2]["bias"]):
            assert np.abs(v).max() <= bound
            if v.size >= 50:                    # enough draws to come near the bound: not a narrower law
                assert np.abs(v).max() > 0.8 * bound and abs(v.mean()) < 0.2 * bound
    w_rec = params[2]["w_rec"]
    np.testing.assert_array_equal(np.diag(w_rec), 0.0)
    assert np.abs(w_rec).max() <= 1 / math.sqrt(50) and np.abs(w_rec).max() > 0.8 / math.sqrt(50)


def test_forward_backward_rejects_bad_input():
    x, labels, layers, params, loss = random_net("fc6r-fc3", (5,), "mse_rate", seed=29)
    with pytest.raises(ValueError, match="inputs per step"):
        ref.forward_backward(x[:, :, :4], labels, layers, params, loss)
    with pytest.raises(ValueError, match="T=3"):
        ref.forward_backward(x, labels, layers, params, loss, T=3)
    with pytest.raises(ValueError, match="ce_step needs an li readout"):
        ref.forward_backward(x, labels, layers, params, "ce_step")
    with pytest.raises(ValueError, match="labels"):
        ref.forward_backward(x, labels + 3, layers, params, loss)
    bad = [dict(p) for p in params]
    bad[0]["w_rec"] = np.ones((6, 6))
    with pytest.raises(ValueError, match="zero diagonal"):
        ref.forward_backward(x, labels, layers, bad, loss)
    bad[0] = {"w": params[0]["w"][:4]}
    with pytest.raises(ValueError, match=r"params\[0\]"):
        ref.forward_backward(x, labels, layers, bad, loss)
