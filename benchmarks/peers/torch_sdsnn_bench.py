#!/usr/bin/env python3
"""Time torch_sdsnn.py (SD-SNN's network, PyTorch BPTT) per workload and thread setting, round-robin.

Each repeat runs every workload at every thread setting (``--variants``, ``THREADS[/passive]``; ``/passive``
sets ``OMP_WAIT_POLICY=PASSIVE``) one after the other, so on a shared machine every setting sees the same
minutes; each run's time is the median of its epochs' training passes (torch_sdsnn.py's
``train_wall_s_per_epoch``), and its ratio is taken against the fastest setting of the same workload and
repeat.  A run that passes ``--timeout`` is recorded as timed out, not dropped.

Workloads (``--workloads``): ``digits_3epochs`` (scikit-learn digits, 1,438 / 359, 3 epochs),
``digits_3epochs_batch25`` (the same at batch 25, ``plastix sdsnn``'s digits default) and
``fashion_mnist_6000_1epoch`` (Fashion-MNIST, the first 6,000 / 1,000, 1 epoch), all with the default
network ``conv15-pool2-conv40-pool2-fc300-fc10``, T = 20, seed 0, batch 100 unless named.

Writes ``--out-dir``/summary.json (every run: command, per-epoch times, accuracies, load averages; ratios)
and prints a markdown table; each run's results.json goes to ``--runs-dir``.

    python3 benchmarks/peers/torch_sdsnn_bench.py --repeats 2 --variants 1,2/passive,2
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

WORKLOADS = {
    "digits_3epochs": ["--dataset", "digits", "--epochs", "3"],
    "digits_3epochs_batch25": ["--dataset", "digits", "--epochs", "3", "--batch-size", "25"],
    "fashion_mnist_6000_1epoch": ["--dataset", "fashion_mnist", "--train-limit", "6000", "--test-limit", "1000",
                                  "--epochs", "1"],
}


def variant(text: str) -> dict:
    """``THREADS[/passive]``, e.g. ``2``, ``1``, ``2/passive``."""
    threads, _, policy = text.partition("/")
    if not threads.isdigit() or int(threads) < 1 or policy not in ("", "passive"):
        raise argparse.ArgumentTypeError(f"expected THREADS >= 1 with an optional /passive, like 2 or 2/passive; "
                                         f"got {text!r}")
    return {"name": text, "threads": int(threads), "passive": policy == "passive"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated, of {', '.join(WORKLOADS)} (default all)")
    p.add_argument("--variants", type=lambda s: [variant(v) for v in s.split(",")], default="1,2/passive,2",
                   help="thread settings, comma-separated THREADS[/passive] (default 1,2/passive,2)")
    p.add_argument("--repeats", type=int, default=2, help="round-robin repeats (default 2)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run (default 600)")
    p.add_argument("--torch-python", type=Path, default=HERE / ".venvs" / "torch" / "bin" / "python",
                   help="the torch venv's interpreter (install.sh torch)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "torch_sdsnn")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "out" / "torch_sdsnn_runs",
                   help="where each run's results.json goes (default out/torch_sdsnn_runs)")
    args = p.parse_args(argv)
    if isinstance(args.variants, str):
        args.variants = [variant(v) for v in args.variants.split(",")]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown or not args.workloads:
        p.error(f"--workloads: unknown {unknown}; known: {list(WORKLOADS)}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if not args.torch_python.is_file():
        p.error(f"{args.torch_python} missing: run benchmarks/peers/install.sh torch, or pass --torch-python")
    return args


def run_one(args, workload: str, var: dict, repeat: int) -> dict:
    out_dir = args.runs_dir / workload / var["name"].replace("/", "_") / f"repeat{repeat}"
    argv = [str(args.torch_python), str(HERE / "torch_sdsnn.py"), *WORKLOADS[workload], "--threads",
            str(var["threads"]), "--out-dir", str(out_dir)]
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if var["passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    row = {"workload": workload, "variant": var["name"], "repeat": repeat, "loadavg_1min_before": os.getloadavg()[0],
           "command": ("OMP_WAIT_POLICY=PASSIVE " if var["passive"] else "") + shlex.join(argv)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        row.update(timed_out=True, process_s=time.perf_counter() - t0)
        return row
    row["process_s"] = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"torch_sdsnn_bench.py: {row['command']} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads((out_dir / "results.json").read_text())
    times = res["train_wall_s_per_epoch"]
    row.update(timed_out=False, version=res["version"], threads=res["threads"], warmup_s=res["warmup_s"],
               epoch_train_s=times, median_epoch_s=statistics.median(times),
               test_accuracy=res["test_accuracy_per_epoch"], train_samples=res["train_samples"],
               test_samples=res["test_samples"], layers=res["layers"],
               loadavg_1min_per_epoch=[e["loadavg_1min_before"] for e in res["epochs"]])
    return row


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    runs = []
    for repeat in range(1, args.repeats + 1):
        for workload in args.workloads:
            for var in args.variants:
                row = run_one(args, workload, var, repeat)
                runs.append(row)
                done = "timed out" if row["timed_out"] else f"{row['median_epoch_s']:.2f} s/epoch"
                print(f"repeat {repeat} {workload} {var['name']}: {done} (load {row['loadavg_1min_before']:.2f})",
                      file=sys.stderr)
    for row in runs:   # ratio against the fastest setting of the same workload and repeat
        same = [r["median_epoch_s"] for r in runs if r["workload"] == row["workload"] and r["repeat"] == row["repeat"]
                and not r["timed_out"]]
        row["ratio_over_fastest"] = None if row["timed_out"] else row["median_epoch_s"] / min(same)
    summary = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_count": os.cpu_count(),
               "command": shlex.join([sys.executable, *sys.argv]), "runs": runs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("| workload | threads | repeat | s per epoch (median) | x fastest | test accuracy (last epoch) | load |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in runs:
        if r["timed_out"]:
            print(f"| {r['workload']} | {r['variant']} | {r['repeat']} | timed out | | | "
                  f"{r['loadavg_1min_before']:.2f} |")
            continue
        print(f"| {r['workload']} | {r['variant']} | {r['repeat']} | {r['median_epoch_s']:.2f} | "
              f"{r['ratio_over_fastest']:.2f} | {r['test_accuracy'][-1]:.3f} | {r['loadavg_1min_before']:.2f} |")


if __name__ == "__main__":
    main()
