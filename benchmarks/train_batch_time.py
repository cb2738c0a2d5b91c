"""Seconds per e-prop training batch (trial, Adam, DEEP R) of the spoken-digit network shape, compilation
excluded: median over ``--batches`` after one warm-up batch.  Prints one JSON line.  Run it alternately
under two source trees (``PYTHONPATH=<tree>/src``) to compare them in the same minutes:

    for tree in old new; do PYTHONPATH=/tmp/$tree/src python benchmarks/train_batch_time.py \\
        --neuron lif --density 0.1; done
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from plastix.learning.eprop import EPropConfig, EPropNetwork


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neuron", choices=("lif", "alif"), default="lif")
    ap.add_argument("--density", type=float, default=0.1, help="input and recurrent density; < 1: DEEP R on")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=92, help="trial steps (spoken digits: 92)")
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    ap.add_argument("--batches", type=int, default=6)
    a = ap.parse_args()
    c = EPropConfig(num_inputs=182, num_outputs=10, num_hidden=256, neuron=a.neuron, input_density=a.density,
                    recurrent_density=a.density, rewiring="deep-r" if a.density < 1 else "none", seed=1,
                    lr=0.024, l1=0.001)
    try:
        net = EPropNetwork(c, batch_size=a.batch)
    except TypeError:   # trees before the engine trainer size their buffers from the first batch
        net = EPropNetwork(c)
    rng = np.random.default_rng(0)
    x = (rng.random((a.batch, a.steps, 182)) < a.rate).astype(np.uint8)
    labels = rng.integers(0, 10, a.batch)
    t = time.perf_counter()
    net.train_batch(x, labels)
    first = time.perf_counter() - t
    times = []
    for _ in range(a.batches):
        t = time.perf_counter()
        net.train_batch(x, labels)
        times.append(time.perf_counter() - t)
    print(json.dumps({"neuron": a.neuron, "density": a.density, "batch": a.batch, "steps": a.steps,
                      "s_per_batch": float(np.median(times)), "first_batch_s": first,
                      "threads": os.environ.get("NUMBA_NUM_THREADS", "default"), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
