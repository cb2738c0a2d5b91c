"""Host-side costs of convolution layers as sparse projections (plastix.conv) at SD-SNN's shapes, each
against a reference measured in the same run:

* enumerating the synapses (``Conv2D.synapses``) -- reference: ``AllToAll().build`` of as many synapses;
* ``tie`` (w = K.flat[kidx] over the ragged rows) -- reference: ``np.take`` over a flat kidx array;
* ``kernel_sum`` of a per-synapse array (a weight gradient) into the kernel -- reference: ``np.bincount``
  by a flat kidx array; for context, the dense numpy gradient from the layer's input and output
  gradient (sliding windows + einsum, a BLAS matrix product);
* ``kernel_sum_outer`` of (output gradient) x (a spike frame, 20 % of inputs active) -- reference: the
  dense numpy gradient from the same arrays;
* ``prune_channel`` (one output channel) and ``regrow_slice`` (that channel back) -- reference:
  ``Simulation.set_connectivity`` to the same synapse lists (which also resets update-owned state).

    python benchmarks/conv_layers.py --layers mnist-conv2 dvs-conv1 --repeat 3 --json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import plastix as px
import plastix.conv as pc
from plastix.model.specs import NeuronModel

#: SD-SNN section 1a: conv1 Cin -> 15 and conv2 15 -> 40, 3x3, stride 1, padding 1
LAYERS = {
    "mnist-conv1": ((1, 28, 28), 15), "mnist-conv2": ((15, 14, 14), 40),
    "nmnist-conv1": ((2, 32, 32), 15), "nmnist-conv2": ((15, 16, 16), 40),
    "dvs-conv1": ((2, 128, 128), 15), "dvs-conv2": ((15, 64, 64), 40),
}


def _accumulate(n, i_syn):
    n.v += i_syn


ACCUMULATE = NeuronModel(name="accumulate", vars={"v": 0.0}, sim=_accumulate)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def dense_kernel_grad(x, g, kernel_shape, padding):
    """dL/dK of a stride-1 cross-correlation from input x [C_in, H, W] and output gradient g."""
    _, _, kh, kw = kernel_shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # [C_in, Ho, Wo, kh, kw]
    return np.einsum("oyx,iyxab->oiab", g, win, optimize=True)


def run_layer(name: str, repeat: int) -> dict:
    in_shape, channels = LAYERS[name]
    conv = pc.Conv2D(in_shape, channels, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(0)
    n_syn = conv.num_synapses
    row = {"layer": name, "in_shape": in_shape, "channels": channels, "synapses": n_syn}
    row["enumerate_s"] = best(conv.synapses, repeat)
    rows_all = max(1, n_syn // conv.num_post)
    row["ref_alltoall_s"] = best(lambda: px.connect.AllToAll().build(rows_all, conv.num_post), repeat)

    k = rng.normal(size=conv.kernel_shape).astype(np.float32)
    net = px.Network(dt=1.0, precision="float32")
    net.add_population("inp", conv.num_pre, px.neurons.spike_source_array())
    net.add_population("out", conv.num_post, ACCUMULATE)
    pc.add_conv2d(net, "conv", "inp", "out", conv, k)
    sim = px.Simulation(net, backend="cpu", parallel=False)
    t0 = time.perf_counter()
    sim.build()
    row["sim_build_s"] = time.perf_counter() - t0

    row["tie_s"] = best(lambda: pc.tie(sim, "conv", k), repeat)
    kidx_flat = conv.kernel_index()
    kflat = k.ravel()
    row["ref_take_s"] = best(lambda: np.take(kflat, kidx_flat), repeat)

    x = rng.random(in_shape)
    g = rng.normal(size=conv.out_shape)
    pre, post = sim.connectivity("conv")
    xf, gf = x.ravel(), g.ravel()
    per_synapse = gf[post] * xf[pre]
    row["kernel_sum_s"] = best(lambda: pc.kernel_sum(sim, "conv", per_synapse), repeat)
    size = int(np.prod(conv.kernel_shape))
    row["ref_bincount_s"] = best(lambda: np.bincount(kidx_flat, weights=per_synapse, minlength=size), repeat)
    row["dense_grad_s"] = best(lambda: dense_kernel_grad(x, g, conv.kernel_shape, 1), repeat)
    spikes = (rng.random(in_shape) < 0.2).astype(np.float64)  # a spike frame, 20 % of inputs active
    row["kernel_sum_outer_spikes_s"] = best(lambda: pc.kernel_sum_outer(sim, "conv", gf, spikes.ravel()), repeat)
    row["dense_grad_spikes_s"] = best(lambda: dense_kernel_grad(spikes, g, conv.kernel_shape, 1), repeat)
    np.testing.assert_allclose(pc.kernel_sum_outer(sim, "conv", gf, spikes.ravel()),
                               dense_kernel_grad(spikes, g, conv.kernel_shape, 1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pc.kernel_sum(sim, "conv", per_synapse),
                               dense_kernel_grad(x, g, conv.kernel_shape, 1), rtol=1e-9, atol=1e-9)

    prune, regrow, ref_prune, ref_regrow = [], [], [], []
    w_all, kidx_all = sim.get("conv", "w"), sim.get("conv", "kidx")
    for _ in range(repeat):
        t0 = time.perf_counter()
        pc.prune_channel(sim, "conv", 0)
        prune.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pc.regrow_slice(sim, "conv", k, 0)
        regrow.append(time.perf_counter() - t0)
        keep = post // (conv.num_post // channels) != 0
        t0 = time.perf_counter()
        sim.set_connectivity("conv", pre[keep], post[keep], w=w_all[keep], kidx=kidx_all[keep])
        ref_prune.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sim.set_connectivity("conv", pre, post, w=w_all, kidx=kidx_all)
        ref_regrow.append(time.perf_counter() - t0)
    row.update(prune_s=min(prune), regrow_s=min(regrow), ref_set_pruned_s=min(ref_prune),
               ref_set_full_s=min(ref_regrow))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", nargs="+", choices=sorted(LAYERS), default=sorted(LAYERS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [run_layer(name, args.repeat) for name in args.layers]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        print(f"{r['layer']:13s} {r['synapses']:>10,d} syn  enumerate {r['enumerate_s'] * 1e3:8.1f} ms "
              f"(AllToAll {r['ref_alltoall_s'] * 1e3:.1f})  tie {r['tie_s'] * 1e3:7.2f} ms "
              f"(take {r['ref_take_s'] * 1e3:.2f})  kernel_sum {r['kernel_sum_s'] * 1e3:7.2f} ms "
              f"(bincount {r['ref_bincount_s'] * 1e3:.2f}, dense {r['dense_grad_s'] * 1e3:.2f})  "
              f"outer {r['kernel_sum_outer_spikes_s'] * 1e3:.2f} ms (dense {r['dense_grad_spikes_s'] * 1e3:.2f})  "
              f"prune {r['prune_s'] * 1e3:7.2f} ms "
              f"regrow {r['regrow_s'] * 1e3:7.2f} ms (set_connectivity {r['ref_set_pruned_s'] * 1e3:.2f} / "
              f"{r['ref_set_full_s'] * 1e3:.2f})  build {r['sim_build_s']:.2f} s")


if __name__ == "__main__":
    main()
