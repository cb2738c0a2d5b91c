#!/usr/bin/env python3
"""Where an SD-SNN / BPTT training batch spends its time: forward pass, gradient updates (each update's own
seconds) and Adam, per layer spec, on scikit-learn digits (batch 25, T = 20, compilation excluded: medians
over ``--repeats`` after one warm-up batch).  Dropping layers from the spec shows what each costs:

    python benchmarks/sdsnn_profile.py --threads 1 conv15-pool2-conv40-pool2-fc300-fc10 \\
        conv15-pool2-fc300-fc10 conv15-pool2-conv40-pool2-fc10 fc300-fc10 fc10

``--epoch-run OUT_DIR`` instead restores a finished ``plastix sdsnn`` run and prints a cProfile of one
training epoch at its final structure (structure steps off).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numba
import numpy as np
from sklearn.datasets import load_digits

from plastix.kernels.spike_trains import trains_from_counts
from plastix.learning.bptt import BPTTConfig, BPTTNetwork, bernoulli_counts


def profile_spec(spec: str, repeats: int, batch: int = 25) -> dict:
    d = load_digits()
    images, labels = d.images[:batch].reshape(batch, 64) / 16.0, d.target[:batch]
    c = BPTTConfig(input_shape=(1, 8, 8), layers=spec, seed=0)
    net = BPTTNetwork(c, batch_size=batch)
    x = bernoulli_counts(images, c.steps, np.random.default_rng(0))
    net.train_batch(x, labels)   # compile and warm up
    sim, parts = net.sim, {"forward": [], "grad": [], "adam": []}
    updates: dict[str, list] = {}
    for _ in range(repeats):   # the phases of BPTTNetwork.train_batch, timed one by one
        t0 = time.perf_counter()
        net._zero_gradients()
        sim.reset_trial()
        times, counts = trains_from_counts(np.ascontiguousarray(x, np.uint8), float(sim.t), 1.0, batch)
        sim.set_spike_times_flat("input", times, counts)
        sim.run(c.steps + net.depth_out)
        t1 = time.perf_counter()
        sim.set("loss", "label", labels)
        sim.set("loss", "active", np.ones(batch))
        for name, timing in sim.custom_update("grad").items():
            updates.setdefault(name, []).append(timing["update_s"])
        net._collect_conv_gradients()
        t2 = time.perf_counter()
        net.apply_gradients(batch)
        t3 = time.perf_counter()
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[k].append(v)
    ms = lambda v: round(1e3 * float(np.median(v)), 2)   # noqa: E731
    return {"spec": spec, **{f"{k}_ms": ms(v) for k, v in parts.items()},
            "grad_updates_ms": {k: ms(v) for k, v in updates.items()}}


def profile_epoch(out_dir: str, lines: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sdsnn_speed import restore

    tr = restore(out_dir)
    tr.train_epoch(len(tr.results["epochs"]))   # warm up
    prof = cProfile.Profile()
    prof.runcall(tr.train_epoch, len(tr.results["epochs"]) + 1)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", default=["conv15-pool2-conv40-pool2-fc300-fc10"], help="layer specs")
    ap.add_argument("--threads", type=int, default=1, help="numba threads (default 1)")
    ap.add_argument("--repeats", type=int, default=15, help="timed batches per spec (default 15)")
    ap.add_argument("--epoch-run", default=None, help="cProfile one epoch of this finished plastix sdsnn run")
    ap.add_argument("--lines", type=int, default=35, help="cProfile lines to print (default 35)")
    a = ap.parse_args()
    numba.set_num_threads(a.threads)
    if a.epoch_run:
        profile_epoch(a.epoch_run, a.lines)
        return
    import json

    for spec in a.specs:
        print(json.dumps(profile_spec(spec, a.repeats)))


if __name__ == "__main__":
    main()
