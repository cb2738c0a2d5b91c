#!/usr/bin/env python3
"""Where an SD-SNN / BPTT training batch spends its time: forward pass, gradient updates (each update's own
seconds) and Adam, per layer spec, on scikit-learn digits (or ``--dataset fashion_mnist``; batch 25, T = 20,
compilation excluded: medians over ``--repeats`` after one warm-up batch).  Dropping layers from the spec
shows what each costs:

    python benchmarks/sdsnn_profile.py --threads 1 conv15-pool2-conv40-pool2-fc300-fc10 \\
        conv15-pool2-fc300-fc10 conv15-pool2-conv40-pool2-fc10 fc300-fc10 fc10

``--runs OUT_DIR ...`` gives the same split for finished ``plastix sdsnn`` runs at their final structure
(unpruned against sparse shows which updates shrink with compression).  ``--epoch-run OUT_DIR`` instead
restores a finished ``plastix sdsnn`` run and prints a cProfile of one training epoch at its final structure
(structure steps off).
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


def first_images(dataset: str, batch: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``batch`` images in [0, 1] (flattened), their labels and the side length."""
    if dataset == "digits":
        d = load_digits()
        return d.images[:batch].reshape(batch, 64) / 16.0, d.target[:batch], 8
    from plastix.datasets.idx import load_images

    images, labels = load_images(dataset)["train"]
    return images[:batch].reshape(batch, -1) / 255.0, labels[:batch], images.shape[1]


def profile_spec(spec: str, repeats: int, batch: int = 25, dataset: str = "digits",
                 conv_taps: tuple[bool, ...] = (True,), windows: tuple[bool, ...] = (True,)) -> dict:
    images, labels, side = first_images(dataset, batch)
    c = BPTTConfig(input_shape=(1, side, side), layers=spec, seed=0)
    net = BPTTNetwork(c, batch_size=batch)
    x = bernoulli_counts(images, c.steps, np.random.default_rng(0))
    return {"spec": spec, "dataset": dataset, "batch": batch,
            **profile_batches(net, x, labels, repeats, conv_taps, windows)}


def profile_run(out_dir: str, repeats: int, conv_taps: tuple[bool, ...] = (True,),
                windows: tuple[bool, ...] = (True,)) -> dict:
    """The same split for a finished ``plastix sdsnn`` run at its final structure, on its first training batch."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sdsnn_speed import restore

    tr = restore(out_dir)
    x, labels = next(tr._batches(tr.dataset.train, shuffle=True, seed=0, epoch=0))
    return {"run": out_dir, "mode": tr.settings.mode, "compression": tr.compression(),
            **profile_batches(tr.net, x, labels, repeats, conv_taps, windows)}


def profile_batches(net: BPTTNetwork, x: np.ndarray, labels: np.ndarray, repeats: int,
                    conv_taps: tuple[bool, ...] = (True,), windows: tuple[bool, ...] = (True,)) -> dict:
    """Medians of each phase; with ``conv_taps=(True, False)`` the repeats alternate the convolutions'
    forward propagation by kernel taps and through the rows (CPU), the second reported as ``*_rows``;
    with ``windows=(True, False)`` the backward pass over each layer's trial rows and over the whole tape
    (:attr:`BPTTNetwork.tape_windows`), the second as ``*_alltape``."""
    c, batch = net.config, len(labels)
    net.train_batch(x, labels)   # compile and warm up
    sim = net.sim
    parts: dict[str, list] = {}
    updates: dict[str, list] = {}
    configs = [(taps, win) for taps in conv_taps for win in windows]
    for _ in range(repeats):   # the phases of BPTTNetwork.train_batch, timed one by one
        for taps, win in configs:
            tag = ("" if taps else "_rows") + ("" if win else "_alltape")
            net.tape_windows = win
            if hasattr(sim.backend, "conv_taps"):
                sim.backend.conv_taps = taps
            t0 = time.perf_counter()
            net._zero_gradients()
            sim.reset_trial()
            times, counts = trains_from_counts(np.ascontiguousarray(x, np.uint8), float(sim.t), 1.0, batch)
            sim.set_spike_times_flat("input", times, counts)
            sim.run(c.steps + net.depth_out)
            t1 = time.perf_counter()
            sim.set("loss", "label", labels)
            sim.set("loss", "active", np.ones(batch))
            for name, seconds in net.backward().items():
                updates.setdefault(name + tag, []).append(seconds)
            t2 = time.perf_counter()
            net.apply_gradients(batch)
            t3 = time.perf_counter()
            for k, v in zip(("forward", "grad", "adam", "batch"), (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts.setdefault(k + tag, []).append(v)
    if hasattr(sim.backend, "conv_taps"):
        sim.backend.conv_taps = True
    net.tape_windows = True
    ms = lambda v: round(1e3 * float(np.median(v)), 2)   # noqa: E731
    return {**{f"{k}_ms": ms(v) for k, v in parts.items()},
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
    ap.add_argument("--dataset", choices=("digits", "fashion_mnist", "mnist"), default="digits",
                    help="images for the layer specs (default digits; the 28 x 28 sets from their IDX files)")
    ap.add_argument("--batch-size", type=int, default=25, help="samples per batch for the layer specs (default 25)")
    ap.add_argument("--epoch-run", default=None, help="cProfile one epoch of this finished plastix sdsnn run")
    ap.add_argument("--runs", nargs="*", default=[], help="finished plastix sdsnn runs: the per-phase split at "
                    "their final structure instead of layer specs")
    ap.add_argument("--lines", type=int, default=35, help="cProfile lines to print (default 35)")
    ap.add_argument("--conv-taps", choices=("on", "off", "both"), default="on",
                    help="forward propagation of the convolutions by kernel taps (on), through the rows (off), "
                    "or alternating batches of both, the rows' figures as *_rows (default on)")
    ap.add_argument("--tape-windows", choices=("on", "off", "both"), default="on",
                    help="the backward pass over each layer's trial rows of the tape (on), over the whole tape "
                    "(off), or alternating batches of both, the whole tape's figures as *_alltape (default on)")
    a = ap.parse_args()
    numba.set_num_threads(a.threads)
    if a.epoch_run:
        profile_epoch(a.epoch_run, a.lines)
        return
    import json

    choice = {"on": (True,), "off": (False,), "both": (True, False)}
    taps, windows = choice[a.conv_taps], choice[a.tape_windows]
    for run in a.runs:
        print(json.dumps(profile_run(run, a.repeats, taps, windows)))
    for spec in ([] if a.runs else a.specs):
        print(json.dumps(profile_spec(spec, a.repeats, a.batch_size, a.dataset, taps, windows)))


if __name__ == "__main__":
    main()
