"""Offline check (not in CI) of tests/sdsnn_reference.py against PyTorch autograd, float64.

Run with the torch venv (torch 2.13 CPU):

    benchmarks/peers/.venvs/torch/bin/python tests/tools/check_sdsnn_reference_torch.py

The PyTorch side is written the way the authors' ``SCNN`` is: the time loop outside, the layers inside,
state (membrane, spike) per layer, ``F.conv2d`` / ``F.avg_pool2d`` / ``F.linear``, a custom
``autograd.Function`` for the spike with the rectangular surrogate, the reset ``u * decay * (1 - s)``
left in the graph, and the recurrent matrix multiplied by ``1 - I`` (so autograd itself gives its
diagonal a zero gradient). Each configuration compares the loss, every layer's output, every LIF
membrane and every gradient; it also asserts that every LIF layer spikes and that the first layer's
gradient is non-zero, so the comparison is not vacuous. Prints the largest absolute differences.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sdsnn_reference as ref  # noqa: E402

TOL = 1e-10


class RectSpike(torch.autograd.Function):
    """H(u - v_th) forward (strict: u > v_th), 1{|u - v_th| < lens} backward."""

    @staticmethod
    def forward(ctx, u, v_th, lens):
        ctx.save_for_backward(u)
        ctx.v_th, ctx.lens = v_th, lens
        return (u > v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * ((u - ctx.v_th).abs() < ctx.lens).to(g.dtype), None, None


def torch_run(x, labels, layers, params, loss, decay, v_th, lens):
    b, t_steps, _ = x.shape
    xt = torch.tensor(x)
    tp = [{k: torch.tensor(v, requires_grad=True) for k, v in p.items()} for p in params]
    mem = [None] * len(layers)
    spk = [None] * len(layers)
    outs = [[] for _ in layers]
    mems = [[] for _ in layers]
    for t in range(t_steps):
        a = xt[:, t]
        for l, (layer, p) in enumerate(zip(layers, tp)):
            kind = layer["kind"]
            if kind in ("conv", "pool"):
                a = a.reshape((b,) + tuple(layer["in_shape"]))
            if kind == "pool":
                a = F.avg_pool2d(a, layer["pool"]).reshape(b, -1)
                outs[l].append(a)
                continue
            if kind == "conv":
                drive = F.conv2d(a, p["kernel"], p["bias"], stride=tuple(layer["stride"]),
                                 padding=tuple(layer["padding"])).reshape(b, -1)
            else:
                drive = F.linear(a.reshape(b, -1), p["w"].T, p["bias"])
            n = drive.shape[1]
            if mem[l] is None:
                mem[l] = torch.zeros(b, n, dtype=torch.float64)
                spk[l] = torch.zeros(b, n, dtype=torch.float64)
            if kind == "li":
                mem[l] = layer["kappa"] * mem[l] + drive
                a = mem[l]
                outs[l].append(a)
                continue
            if "w_rec" in p:
                drive = drive + spk[l] @ (p["w_rec"] * (1.0 - torch.eye(n, dtype=torch.float64)))
            mem[l] = mem[l] * decay * (1.0 - spk[l]) + drive
            spk[l] = RectSpike.apply(mem[l], v_th, lens)
            a = spk[l]
            outs[l].append(a)
            mems[l].append(mem[l])
    out = torch.stack(outs[-1], dim=1)
    lab = torch.tensor(labels)
    if loss == "mse_rate":
        onehot = F.one_hot(lab, out.shape[2]).to(torch.float64)
        value = F.mse_loss(out.sum(dim=1) / t_steps, onehot)
    elif loss == "ce_rate":
        value = F.cross_entropy(out.sum(dim=1), lab)
    else:
        value = sum(F.cross_entropy(out[:, t], lab) for t in range(t_steps))
    value.backward()
    grads = [{k: v.grad.numpy() for k, v in p.items()} for p in tp]
    spikes = [torch.stack(o, dim=1).detach().numpy() for o in outs]
    u = [torch.stack(m, dim=1).detach().numpy() for m, layer in zip(mems, layers) if layer["kind"] in ("conv", "fc")]
    return value.item(), grads, spikes, u


def make_input(kind, rng, b, t_steps, n):
    if kind == "bernoulli":                # rate code of a random image, redrawn every step
        return (rng.random((b, 1, n)) > rng.random((b, t_steps, n))).astype(float)
    if kind == "counts":                   # event counts, as N-MNIST / DVS frames
        return rng.poisson(0.8, (b, t_steps, n)).astype(float)
    return rng.uniform(0.0, 1.5, (b, t_steps, n))   # continuous graded values


def tune_activity(x, labels, layers, params, loss, consts, low=0.05):
    """Scale each LIF layer's parameters up (bottom to top) until it fires at a rate of at least ``low``."""
    for l, layer in enumerate(layers):
        if layer["kind"] not in ("conv", "fc"):
            continue
        for _ in range(40):
            if ref.forward_backward(x, labels, layers, params, loss, **consts)["spikes"][l].mean() >= low:
                break
            params[l] = {k: 1.2 * v for k, v in params[l].items()}


HAND = [  # non-square kernel, stride and padding (layer_specs only makes square ones)
    {"kind": "conv", "in_shape": (2, 7, 6), "channels": 3, "kernel": (2, 3), "stride": (1, 2), "padding": (0, 1)},
    {"kind": "pool", "in_shape": (3, 6, 3), "pool": 2},
    {"kind": "fc", "n_in": 9, "n_out": 7, "recurrent": True},
    {"kind": "fc", "n_in": 7, "n_out": 4, "recurrent": False},
]

# (name, layers or (spec, in_shape), loss, input, weight gain, T, B, LIF constants)
CONFIGS = [
    ("conv-pool-fc-fc mse", ("conv3-pool2-fc8-fc3", (2, 6, 6)), "mse_rate", "bernoulli", 2.5, 8, 3, {}),
    ("conv-pool-fc-fc ce_rate", ("conv3-pool2-fc8-fc3", (2, 6, 6)), "ce_rate", "bernoulli", 2.5, 8, 3, {}),
    ("conv-pool-fc-li ce_step", ("conv3-pool2-fc8-li3", (2, 6, 6)), "ce_step", "counts", 2.0, 8, 3, {}),
    ("authors' shape, small", ("conv4-pool2-conv5-pool2-fc12-fc4", (1, 8, 8)), "mse_rate", "bernoulli", 3.0, 10, 4, {}),
    ("strided conv k5s2p0", ("conv4k5s2p0-fc6-fc3", (2, 8, 8)), "ce_rate", "uniform", 2.0, 6, 3, {}),
    ("padded conv k3p2, pool3", ("conv3k3s1p2-pool3-fc5r-li3", (1, 7, 7)), "ce_step", "uniform", 2.5, 7, 2, {}),
    ("pool floor remainder", ("conv2-pool2-fc4", (1, 7, 7)), "mse_rate", "bernoulli", 3.0, 8, 3, {}),
    ("conv k2s1p0 stack", ("conv4k2s1p0-pool2-conv3k3s1p2-pool3-li3", (1, 7, 7)), "ce_step", "counts", 2.0, 6, 3, {}),
    ("fc recurrent mse", ("fc10r-fc3", (12,)), "mse_rate", "bernoulli", 2.5, 12, 4, {}),
    ("fc recurrent ce_rate", ("fc10r-fc6r-fc4r", (12,)), "ce_rate", "counts", 2.0, 10, 3, {}),
    ("fc recurrent li", ("fc10r-fc6r-li4", (12,)), "ce_step", "uniform", 2.0, 9, 3, {}),
    ("fc only li", ("fc8-li3", (5,)), "ce_step", "bernoulli", 2.0, 6, 2, {}),
    ("non-square conv, hand dicts", HAND, "ce_rate", "uniform", 2.5, 8, 3, {}),
    ("other constants", ("conv3-pool2-fc6r-fc3", (2, 6, 6)), "mse_rate", "uniform", 2.0, 8, 3,
     {"decay": 0.5, "v_th": 0.4, "lens": 0.3}),
    ("other constants li", ("fc9r-li3", (6,)), "ce_step", "counts", 1.5, 8, 3,
     {"decay": 0.7, "v_th": 1.0, "lens": 0.8}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="random draws per configuration (default 3)")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    worst = {"loss": 0.0, "spikes": 0.0, "u": 0.0, "grads": 0.0}
    runs = [(c, seed) for c in range(len(CONFIGS)) for seed in range(args.seeds)]
    for c, seed in runs:
        name, spec, loss, inp, gain, t_steps, b, consts = CONFIGS[c]
        layers = ref.layer_specs(*spec) if isinstance(spec, tuple) else spec
        rng = np.random.default_rng(1000 * c + seed)
        params = ref.init_params(layers, rng)
        for p in params:                      # a gain so that the network is active
            for k in p:
                p[k] = p[k] * gain
        x = make_input(inp, rng, b, t_steps, ref.in_size(layers[0]))
        labels = rng.integers(0, layers[-1]["n_out"], b)
        tune_activity(x, labels, layers, params, loss, consts)
        got = ref.forward_backward(x, labels, layers, params, loss, **consts)
        tv, tg, ts, tu = torch_run(x, labels, layers, params, loss, **{"decay": 0.2, "v_th": 0.5, "lens": 0.5,
                                                                      **consts})
        err = {"loss": abs(got["loss"] - tv),
               "spikes": max(np.abs(a - c).max() for a, c in zip(got["spikes"], ts)),
               "u": max(np.abs(a - c).max() for a, c in zip(got["u"], tu)),
               "grads": max((np.abs(got["grads"][l][k] - tg[l][k]).max() for l in range(len(layers))
                             for k in tg[l]), default=0.0)}
        rates = [float(s.mean()) for s, layer in zip(got["spikes"], layers) if layer["kind"] in ("conv", "fc")]
        first = next(l for l, layer in enumerate(layers) if layer["kind"] != "pool")
        g_first = max(np.abs(v).max() for v in got["grads"][first].values())
        scale = max(np.abs(v).max() for g in tg for v in g.values())
        print(f"{name:28s} #{seed} {loss:8s} loss {tv:.4f}  err loss {err['loss']:.1e} spikes {err['spikes']:.1e} "
              f"u {err['u']:.1e} grads {err['grads']:.1e} (max |grad| {scale:.2e}, first layer "
              f"{g_first:.2e})  LIF rates {', '.join(f'{r:.2f}' for r in rates)}")
        assert all(0.0 < r < 1.0 for r in rates), f"{name}: a LIF layer is silent or saturated: {rates}"
        assert g_first > 0, f"{name}: the first layer's gradient is zero (nothing compared)"
        for key, e in err.items():
            assert e < TOL, f"{name}: {key} differs by {e:.3e}"
            worst[key] = max(worst[key], e)
    print(f"{len(runs)} runs; largest abs difference:", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
