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

A run given as ``name=OUT_DIR:rows`` is timed with its convolutions' forward pass through the rows instead of
the kernel taps, ``name=OUT_DIR:alltape`` with its backward pass over the whole tape instead of each layer's
trial rows (the same run twice: an A/B of that change; options combine, ``OUT_DIR:rows:alltape``).

``--threads 1,2`` times every run at each plastix thread count; ``--torch-python`` (the interpreter of a
venv with ``torch==2.13.0+cpu``, e.g. ``benchmarks/peers/.venvs/torch/bin/python``) adds PyTorch's BPTT of
the same network (``benchmarks/peers/torch_sdsnn.py``, same data set and batch size, one run of 2 epochs per
repeat and ``--torch-threads`` setting, its second epoch timed) in the same round-robin, and the summary
gives plastix's speed relative to PyTorch at the same thread count, repeat by repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from plastix.learning.sdsnn import SDSNNSettings, SDSNNTrainer  # noqa: E402


def restore(out_dir: str) -> SDSNNTrainer:
    """The trainer of a finished run; ``OUT_DIR:rows`` also propagates its convolutions through the rows
    instead of the kernel taps (the CPU backend's ``conv_taps = False``: an A/B of the same structure),
    ``OUT_DIR:alltape`` runs its backward pass over the whole tape (``BPTTNetwork.tape_windows = False``)."""
    options = set()
    while out_dir.endswith((":rows", ":alltape")):
        out_dir, _, option = out_dir.rpartition(":")
        options.add(option)
    rows = "rows" in options
    res = json.loads(Path(out_dir, "results.json").read_text())
    settings = SDSNNSettings(**res["settings"])
    tr = SDSNNTrainer(settings, out_dir=out_dir, progress=False)
    tr.load_checkpoint()
    tr.structure_enabled = False   # time training alone: no structure steps
    if rows:
        tr.net.sim.backend.conv_taps = False
    if "alltape" in options:
        tr.net.tape_windows = False
    return tr


def torch_epoch(python: str, dataset: str, batch: int, threads: int, train_limit: int | None = None) -> float:
    """Seconds of PyTorch's second training epoch (the first warms its allocator up), on the first
    ``train_limit`` training images when the plastix run used that many."""
    script = Path(__file__).resolve().parent / "peers" / "torch_sdsnn.py"
    limit = [] if train_limit is None else ["--train-limit", str(train_limit), "--test-limit", "100"]
    out = subprocess.run([python, str(script), "--dataset", dataset, "--epochs", "2", "--batch-size", str(batch),
                          "--threads", str(threads), "--out-dir", "/tmp/sdsnn_speed_torch", *limit],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["train_wall_s_per_epoch"][-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="name=OUT_DIR of finished plastix sdsnn runs")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration (default 3)")
    ap.add_argument("--threads", default=None, help="plastix thread counts to time, e.g. 1,2 (default: the "
                    "process default)")
    ap.add_argument("--torch-python", default=None, help="interpreter with torch: time PyTorch beside")
    ap.add_argument("--torch-threads", default="1", help="PyTorch thread counts (default 1)")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args()
    runs = dict(r.split("=", 1) for r in args.runs)
    trainers = {name: restore(d) for name, d in runs.items()}
    threads = [int(x) for x in args.threads.split(",")] if args.threads else [None]
    for tr in trainers.values():   # compile and warm up: one batch each
        ds = tr.dataset.train
        batch = next(ds.batches(tr.settings.batch_size, seed=1, epoch=0))
        tr.net.train_batch(batch.spikes.reshape(len(batch.labels), tr.config.steps, -1), batch.labels)
    configs = [(name, th) for name in trainers for th in threads]
    label = {(n, th): n if th is None else f"{n} {th}t" for n, th in configs}
    times = {label[k]: [] for k in configs}
    first = next(iter(trainers.values()))
    torch_threads = [int(x) for x in args.torch_threads.split(",")] if args.torch_python else []
    torch_times = {th: [] for th in torch_threads}
    epoch0 = {name: len(tr.results["epochs"]) for name, tr in trainers.items()}
    for rep in range(args.repeats):
        for name, th in configs:
            tr = trainers[name]
            tr.net.sim.backend.threads = th
            t0 = time.perf_counter()
            row = tr.train_epoch(epoch0[name] + rep * len(threads) + threads.index(th))
            times[label[name, th]].append(row["train_s"])
            print(f"repeat {rep + 1} {label[name, th]}: {row['train_s']:.2f} s (wall {time.perf_counter() - t0:.2f} s)",
                  file=sys.stderr)
        for th in torch_threads:
            s = first.settings
            torch_times[th].append(torch_epoch(args.torch_python, s.dataset, s.batch_size, th, s.train_limit))
            print(f"repeat {rep + 1} torch {th}t: {torch_times[th][-1]:.2f} s", file=sys.stderr)
    trainers = {label[k]: trainers[k[0]] for k in configs}
    summary = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "repeats": args.repeats,
               "load_average": os.getloadavg(), "runs": {}}
    base_name = "none" if "none" in runs else next(iter(runs))
    base = "none"
    thread_of = {label[k]: k[1] for k in configs}
    run_of = {label[k]: k[0] for k in configs}
    summary["plastix_threads"] = threads
    for th, ts in torch_times.items():
        summary.setdefault("torch", {})[f"{th}t"] = {"epoch_s": ts, "median_epoch_s": statistics.median(ts)}
    for name, tr in trainers.items():
        res = tr.results
        th = thread_of[name]
        ratios = [b / t for b, t in zip(times[label[base_name, th]], times[name])]   # same thread count
        vs_torch = {}
        for tth, ts in torch_times.items():
            if th is None or th == tth:   # plastix's speed relative to PyTorch, repeat by repeat
                vs_torch[f"{tth}t"] = [a / b for a, b in zip(ts, times[name])]
        summary["runs"][name] = {
            "out": runs[run_of[name]], "threads": th, "mode": tr.settings.mode, "epoch_s": times[name],
            "median_epoch_s": statistics.median(times[name]),
            "speedup_vs_" + base: statistics.median(ratios), "speedups": ratios,
            "compression": res["epochs"][-1]["compression"]["total"],
            "synapses": tr.net.synapse_counts(), "test_accuracy": res["epochs"][-1]["test_accuracy"],
            "speed_vs_torch": vs_torch}
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
    print("| run | mode | compression | synapses | s / epoch (median) | speed-up vs " + base + " | test acc | "
          "speed vs PyTorch (per repeat) |")
    print("|---|---|---|---|---|---|---|---|")
    for n, r in summary["runs"].items():
        syn = sum(r["synapses"].values())
        vt = "; ".join(f"{k}: " + ", ".join(f"{x:.2f}x" for x in v) for k, v in r["speed_vs_torch"].items())
        print(f"| {n} | {r['mode']} | {100 * r['compression']:.1f} % | {syn} | {r['median_epoch_s']:.2f} | "
              f"{r['speedup_vs_' + base]:.2f}x | {100 * r['test_accuracy']:.1f} % | {vt} |")
    for k, v in summary.get("torch", {}).items():
        print(f"| PyTorch {k} | dense BPTT | | | {v['median_epoch_s']:.2f} | | | 1 |")


if __name__ == "__main__":
    main()
