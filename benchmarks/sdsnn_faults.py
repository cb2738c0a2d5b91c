#!/usr/bin/env python3
"""Page faults and seconds per warm BPTT training batch (SD-SNN's network on Fashion-MNIST by default,
batch 100, compilation excluded): fresh memory touched by every batch shows up as minor page faults
(``getrusage``), each a page the kernel zeroes first.  Compare trees by running this from each, in
alternation:

    python benchmarks/sdsnn_faults.py --threads 2 --batches 10
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdsnn_profile import first_images  # noqa: E402

from plastix.learning.bptt import BPTTConfig, BPTTNetwork, bernoulli_counts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="conv15-pool2-conv40-pool2-fc300-fc10", help="layer spec")
    ap.add_argument("--dataset", choices=("digits", "fashion_mnist", "mnist"), default="fashion_mnist")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--batches", type=int, default=10, help="timed batches after two warm-up batches")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    numba.set_num_threads(a.threads)
    images, labels, side = first_images(a.dataset, a.batch_size)
    c = BPTTConfig(input_shape=(1, side, side), layers=a.spec, seed=0)
    x = bernoulli_counts(images, c.steps, np.random.default_rng(0))
    net = BPTTNetwork(c, batch_size=a.batch_size)
    for _ in range(2):
        net.train_batch(x, labels)
    faults, seconds = [], []
    for _ in range(a.batches):
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        net.train_batch(x, labels)
        seconds.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print(json.dumps({"spec": a.spec, "dataset": a.dataset, "batch": a.batch_size, "threads": a.threads,
                      "page_faults_per_batch": float(np.median(faults)),
                      "batch_s_median": round(float(np.median(seconds)), 4)}))


if __name__ == "__main__":
    main()
