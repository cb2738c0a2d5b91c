#!/usr/bin/env python3
"""BPTT's transposed projections: the per-synapse scan over whole series (neuron-major tape copies,
contiguous views: ``codegen.custom._transposed_scan``) against the step-by-step scan (the same update
with that path switched off), two networks in one process, timed alternately (median of --repeats).
Also each of the backward pass's updates for one digits-sized batch of the authors' network.

    python benchmarks/bptt_backward_ab.py --input 1,8,8 --batch 100 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import plastix.codegen.custom as cc  # noqa: E402
from plastix.learning.bptt import BPTTConfig, BPTTNetwork, bernoulli_counts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default="1,8,8", help="C,H,W (default 1,8,8: digits)")
    ap.add_argument("--layers", default="conv15-pool2-conv40-pool2-fc300-fc10")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.input.split(","))
    cfg = BPTTConfig(input_shape=shape, layers=args.layers, steps=20)
    nets = {"whole-series": BPTTNetwork(cfg, batch_size=args.batch)}
    orig = cc._transposable
    cc._transposable = lambda *a: False
    nets["step-by-step"] = BPTTNetwork(cfg, batch_size=args.batch)
    cc._transposable = orig
    rng = np.random.default_rng(0)
    x = bernoulli_counts(rng.random((args.batch, int(np.prod(shape)))) * 0.6, 20, rng)
    y = rng.integers(0, cfg.num_classes, args.batch)
    for n in nets.values():   # compile, warm up
        n.train_batch(x, y)
    times = {name: {} for name in nets}
    for _ in range(args.repeats):
        for name, n in nets.items():
            n._trial(x, y, train=True)
            for update in n._backward_order:   # the engine's updates (conv layers' host paths aside)
                for k, v in n.sim.custom_update(update).items():
                    times[name].setdefault(k, []).append(v["update_s"])
    med = {name: {k: float(np.median(v)) for k, v in d.items()} for name, d in times.items()}
    back = [k for k in med["whole-series"] if k.endswith("_back")]
    out = {"input": shape, "layers": args.layers, "batch": args.batch, "repeats": args.repeats, "median_s": med,
           "speedup": {k: med["step-by-step"][k] / med["whole-series"][k] for k in back},
           "grad_total_s": {name: sum(d.values()) for name, d in med.items()}}
    a_gw, b_gw = (n.sim.get("fc1_syn_gw", "gw") for n in nets.values())
    same = np.array_equal(a_gw, b_gw)
    out["gradients_bitwise_equal"] = bool(same)
    print("| update | step-by-step ms | whole-series ms | speed-up |\n|---|---:|---:|---:|")
    for k in med["whole-series"]:
        a, b = med["step-by-step"][k] * 1e3, med["whole-series"][k] * 1e3
        print(f"| {k} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    print(json.dumps({k: out[k] for k in ("speedup", "grad_total_s", "gradients_bitwise_equal")}))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
