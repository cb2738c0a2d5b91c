"""Time of one e-prop gradient batch: the engine path (plastix.learning.eprop_engine: a batched forward
run plus custom updates over its tape) against the hand-written trial kernel (EPropNetwork.gradients),
alternated in the same minutes, compilation excluded.  Writes a summary JSON.

    .venv/bin/python benchmarks/eprop_engine_speed.py --neuron alif --density 0.1 --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

from plastix.learning.eprop import EPropConfig, EPropNetwork
from plastix.learning.eprop_engine import EPropEngine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neuron", choices=("alif", "lif"), default="alif")
    ap.add_argument("--density", type=float, default=0.1, help="input and recurrent density (default 0.1)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=92, help="trial steps (spoken digits: 92)")
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/eprop_engine_speed.json"))
    a = ap.parse_args()
    cfg = EPropConfig(num_inputs=182, num_outputs=10, num_hidden=256, neuron=a.neuron, input_density=a.density,
                      recurrent_density=a.density, seed=1, dtype="float32")
    enet = EPropNetwork(cfg)
    eng = EPropEngine.from_network(enet, a.batch)
    rng = np.random.default_rng(0)
    x = (rng.random((a.batch, a.steps, 182)) < a.rate).astype(np.uint8)
    labels = rng.integers(0, 10, a.batch)
    t0 = time.perf_counter()
    enet.gradients(x, labels)
    t1 = time.perf_counter()
    eng.gradients(x, labels)
    t2 = time.perf_counter()
    kernel, engine = [], []
    for _ in range(a.rounds):
        s = time.perf_counter()
        enet.gradients(x, labels)
        kernel.append(time.perf_counter() - s)
        s = time.perf_counter()
        eng.gradients(x, labels)
        engine.append(time.perf_counter() - s)
    res = {"neuron": a.neuron, "density": a.density, "batch": a.batch, "steps": a.steps, "input_rate": a.rate,
           "synapses": {p: int(np.size(enet.sim.get(p, "w"))) for p in enet.projections},
           "kernel_s": float(np.median(kernel)), "engine_s": float(np.median(engine)),
           "engine_over_kernel": float(np.median(engine) / np.median(kernel)),
           "compile_s": {"kernel_first_call": t1 - t0, "engine_first_call": t2 - t1},
           "rounds": a.rounds, "threads": numba.config.NUMBA_NUM_THREADS, "cpus": os.cpu_count(),
           "machine": platform.processor() or platform.machine()}
    print(json.dumps(res, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(a.out.read_text()) if a.out.exists() else []
    runs = [r for r in runs if (r["neuron"], r["density"], r["batch"]) != (a.neuron, a.density, a.batch)] + [res]
    a.out.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
