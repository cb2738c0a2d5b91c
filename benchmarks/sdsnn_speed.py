#!/usr/bin/env python3
"""Time per training epoch of an SD-SNN network at its final structure against the same network unpruned,
measured side by side (issue 15: sparse mode >= 1.7x faster at ~50 % compression; masked training 1.0x).

Takes the output folders of finished ``plastix sdsnn`` runs (their checkpoints hold the final structure:
``--mode sparse`` and ``--mode none``, optionally ``--mode faithful``), restores each and times further
training epochs round-robin (none, sparse, faithful, none, ...), so every configuration sees the same
minutes of a shared machine.  Structure steps are switched off while timing (their cost is in the runs'
results as ``structure_s``); compilation happens before the first timed epoch.  Writes summary.json and
epoch_time.png to --out-dir and prints a markdown table.

    python benchmarks/sdsnn_speed.py --runs none=RUN_NONE sparse=RUN_SPARSE faithful=RUN_FAITHFUL \\
        --repeats 3 --out-dir benchmarks/results/sdsnn_speed
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from plastix.learning.sdsnn import SDSNNSettings, SDSNNTrainer  # noqa: E402


def restore(out_dir: str) -> SDSNNTrainer:
    res = json.loads(Path(out_dir, "results.json").read_text())
    settings = SDSNNSettings(**res["settings"])
    tr = SDSNNTrainer(settings, out_dir=out_dir, progress=False)
    tr.load_checkpoint()
    tr.structure_enabled = False   # time training alone: no structure steps
    return tr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="name=OUT_DIR of finished plastix sdsnn runs")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration (default 3)")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args()
    runs = dict(r.split("=", 1) for r in args.runs)
    trainers = {name: restore(d) for name, d in runs.items()}
    for tr in trainers.values():   # compile and warm up: one batch each
        ds = tr.dataset.train
        batch = next(ds.batches(tr.settings.batch_size, seed=1, epoch=0))
        tr.net.train_batch(batch.spikes.reshape(len(batch.labels), tr.config.steps, -1), batch.labels)
    times = {name: [] for name in trainers}
    epoch0 = {name: len(tr.results["epochs"]) for name, tr in trainers.items()}
    for rep in range(args.repeats):
        for name, tr in trainers.items():
            t0 = time.perf_counter()
            row = tr.train_epoch(epoch0[name] + rep)
            times[name].append(row["train_s"])
            print(f"repeat {rep + 1} {name}: {row['train_s']:.2f} s (wall {time.perf_counter() - t0:.2f} s)",
                  file=sys.stderr)
    base = "none" if "none" in times else next(iter(times))
    summary = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "repeats": args.repeats,
               "runs": {}}
    for name, tr in trainers.items():
        res = tr.results
        ratios = [b / t for b, t in zip(times[base], times[name])]
        summary["runs"][name] = {
            "out": runs[name], "mode": tr.settings.mode, "epoch_s": times[name],
            "median_epoch_s": statistics.median(times[name]),
            "speedup_vs_" + base: statistics.median(ratios), "speedups": ratios,
            "compression": res["epochs"][-1]["compression"]["total"],
            "synapses": tr.net.synapse_counts(), "test_accuracy": res["epochs"][-1]["test_accuracy"]}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(times)
    ax.bar(names, [statistics.median(times[n]) for n in names], color="C0")
    for i, n in enumerate(names):
        ax.plot([i] * len(times[n]), times[n], "k.", ms=6)
        r = summary["runs"][n]
        ax.text(i, statistics.median(times[n]), f"{100 * r['compression']:.0f} % pruned\n"
                f"{r['speedup_vs_' + base]:.2f}x", ha="center", va="bottom")
    ax.set_ylabel("s per training epoch (compilation excluded)")
    ax.set_title("SD-SNN: time per epoch at the final structure")
    fig.tight_layout()
    fig.savefig(args.out_dir / "epoch_time.png", dpi=110)
    print("| run | mode | compression | synapses | s / epoch (median) | speed-up vs " + base + " | test acc |")
    print("|---|---|---|---|---|---|---|")
    for n, r in summary["runs"].items():
        syn = sum(r["synapses"].values())
        print(f"| {n} | {r['mode']} | {100 * r['compression']:.1f} % | {syn} | {r['median_epoch_s']:.2f} | "
              f"{r['speedup_vs_' + base]:.2f}x | {100 * r['test_accuracy']:.1f} % |")


if __name__ == "__main__":
    main()
