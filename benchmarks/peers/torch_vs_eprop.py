#!/usr/bin/env python3
"""plastix e-prop (dense, DEEP R 10 %, DEEP R 1 %) against PyTorch surrogate-gradient BPTT, in one run.

Every configuration trains the same network on the same spoken-digit data for the same epochs: 182 spike
inputs -> 256 recurrent LIF -> 10 leaky readouts, 92 steps, batch 32, Adam, per-step softmax
cross-entropy.  plastix runs through its CLI (`plastix train --neuron lif ... --json --out DIR`, per-epoch
figures read from DIR/results.json), PyTorch through torch_bptt.py with the interpreter of the torch venv
(`install.sh torch`).  The repeats run round-robin (PyTorch, plastix dense, PyTorch, ...), so every
configuration sees the same minutes of a shared machine, and each repeat's ratios are taken against the
PyTorch runs of the same repeat.

Time per epoch of a run is the mean over its epochs after the first of the training pass alone (batch
assembly, forward/backward or e-prop trial, Adam, DEEP R rewiring), without evaluation: the numba cache
is warmed before the first run, but plastix's first epoch still loads the cached kernels (~2 s), and
PyTorch's first epoch follows an untimed warm-up batch.  Accuracy is the test accuracy after the
last epoch.

Writes summary.json (all runs, ratios) and time_per_epoch.png to --out-dir and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TORCH_PYTHON = HERE / ".venvs" / "torch" / "bin" / "python"

#: plastix configurations: name -> `plastix train` arguments.  Learning rates and L1 are the best measured
#: settings of BENCHMARKS.md ("sixth protocol": dense lr 0.012; sparse lr 0.024, L1 0.001 at 10 %, 0.03 at 1 %).
PLASTIX_CONFIGS = {
    "e-prop dense": ["--dense", "--lr", "0.012"],
    "e-prop DEEP R 10%": ["--input-density", "0.1", "--recurrent-density", "0.1", "--rewiring", "deep-r",
                          "--lr", "0.024", "--l1", "0.001"],
    "e-prop DEEP R 1%": ["--input-density", "0.01", "--recurrent-density", "0.01", "--rewiring", "deep-r",
                         "--lr", "0.024", "--l1", "0.03"],
}


def torch_variant(text: str) -> dict:
    """``THREADS[/passive][@DENSITY]``, e.g. ``2``, ``1``, ``2/passive``, ``1@0.1``."""
    spec, _, density = text.partition("@")
    threads, _, policy = spec.partition("/")
    try:
        out = {"threads": int(threads), "passive": policy == "passive", "density": float(density or 1.0)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected THREADS[/passive][@DENSITY] like 2, 1/passive or 1@0.1; "
                                         f"got {text!r}") from None
    if policy not in ("", "passive") or out["threads"] < 1 or not 0 < out["density"] <= 1:
        raise argparse.ArgumentTypeError(f"expected THREADS >= 1, optional /passive and @DENSITY in (0, 1]; "
                                         f"got {text!r}")
    kind = "dense" if out["density"] == 1 else f"masked {out['density']:g}"
    name = f"PyTorch BPTT {kind}, {out['threads']} thr"
    out["name"] = name + (", passive" if out["passive"] else "")
    return out


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    p.add_argument("--repeats", type=int, default=2, help="round-robin repeats (default 2)")
    p.add_argument("--seeds", type=lambda t: [int(v) for v in t.split(",")], default=[1],
                   help="seed per repeat, comma-separated; the last one repeats (default 1: every run seed 1). "
                        "Different seeds give an accuracy spread; the time ratios stay within a repeat")
    p.add_argument("--torch-lr", type=float, default=3e-3,
                   help="PyTorch's Adam learning rate (default 3e-3: best of 1e-3, 3e-3, 1e-2 on a validation split)")
    p.add_argument("--torch", type=lambda s: [torch_variant(v) for v in s.split(",")], default="2,1",
                   help="PyTorch runs, comma-separated THREADS[/passive][@DENSITY]: '/passive' sets "
                        "OMP_WAIT_POLICY=PASSIVE, '@D' masks W_in and W_rec to density D (default 2,1)")
    p.add_argument("--configs", default=",".join(PLASTIX_CONFIGS),
                   help="plastix configurations, comma-separated, each optionally @THREADS for its numba threads "
                        "(default --threads): e.g. 'e-prop DEEP R 1%%@1' (default all: "
                        + ", ".join(PLASTIX_CONFIGS).replace("%", "%%") + ")")
    p.add_argument("--neuron", choices=("lif", "alif"), default="lif",
                   help="plastix's hidden neuron (default lif: the PyTorch network; alif: plastix's default)")
    p.add_argument("--threads", type=int, default=2,
                   help="plastix's numba threads (NUMBA_NUM_THREADS) where a configuration names none (default 2)")
    p.add_argument("--plastix-cmd", default=str(ROOT / ".venv" / "bin" / "plastix"),
                   help="how to start the plastix CLI (shell-split; default the worktree's .venv)")
    p.add_argument("--torch-python", type=Path, default=TORCH_PYTHON)
    p.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "torch_baseline")
    p.add_argument("--plot-only", type=Path, default=None, metavar="SUMMARY_JSON",
                   help="only recompute the summary and ratios of a summary.json from its runs (rewritten in place), "
                        "redraw time_per_epoch.png beside it and print the table")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run (default 1800)")
    args = p.parse_args()
    if isinstance(args.torch, str):
        args.torch = [torch_variant(v) for v in args.torch.split(",")]
    args.plastix = {}   # run name -> (configuration, threads)
    for item in (c.strip() for c in args.configs.split(",")):
        if not item:
            continue
        config, _, threads = item.partition("@")
        if config not in PLASTIX_CONFIGS:
            p.error(f"--configs: unknown {config!r}; known: {list(PLASTIX_CONFIGS)}")
        if threads and not (threads.isdigit() and int(threads) >= 1):
            p.error(f"--configs: threads after @ must be an integer >= 1, got {item!r}")
        threads = int(threads) if threads else args.threads
        args.plastix[f"{config}, {threads} thr"] = (config, threads)
    if args.repeats < 1 or args.epochs < 1:
        p.error("--repeats and --epochs must be >= 1")
    if args.plot_only is None and not args.torch_python.is_file():
        p.error(f"{args.torch_python} missing: run benchmarks/peers/install.sh torch")
    return args


def run(argv, env, timeout):
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        sys.exit(f"torch_vs_eprop.py: {shlex.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, time.perf_counter() - t0


def run_torch(args, variant, env, seed):
    env = dict(env)
    if variant["passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    argv = [str(args.torch_python), str(HERE / "torch_bptt.py"), "--epochs", str(args.epochs), "--lr",
            str(args.torch_lr), "--seed", str(seed), "--threads", str(variant["threads"]),
            "--density", str(variant["density"]), "--json"]
    proc, wall = run(argv, env, args.timeout)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"command": shlex.join(argv), "epoch_train_s": res["train_wall_s_per_epoch"],
            "test_accuracy": [e["test_accuracy"] for e in res["epochs"]], "process_s": wall,
            "warmup_s": res["warmup_s"], "version": res["version"], "threads": res["threads"]}


def run_plastix(args, name, env, out, seed):
    config, threads = args.plastix[name]
    env = dict(env, NUMBA_NUM_THREADS=str(threads))
    argv = [*shlex.split(args.plastix_cmd), "train", "--dataset", "spoken_digits", "--neuron", args.neuron,
            "--batch-size", "32", "--epochs", str(args.epochs), "--seed", str(seed), *PLASTIX_CONFIGS[config],
            "--out", str(out), "--json"]
    proc, wall = run(argv, env, args.timeout)
    res = json.loads((out / "results.json").read_text())
    epochs = res["epochs"]
    return {"command": shlex.join(argv).replace(str(out), "OUT"), "epoch_train_s": [e["train_wall_s"] for e in epochs],
            "test_accuracy": [e["test_accuracy"] for e in epochs], "process_s": wall,
            "synapses": sum(epochs[-1]["synapses"].values())}


def seed_of(args, repeat: int) -> int:
    return args.seeds[min(repeat, len(args.seeds) - 1)]


def warm_cache(args, env):
    """Compile (or load) every kernel once so that no run's epochs include numba compilation."""
    argv = [*shlex.split(args.plastix_cmd), "bench", "train", "--dataset", "spoken_digits", "--neuron", args.neuron,
            "--densities", "1.0,0.1,0.01", "--max-batches", "1", "--json"]
    print(f"torch_vs_eprop.py: warming the numba cache: {shlex.join(argv)}", file=sys.stderr)
    run(argv, env, args.timeout)


def per_epoch(r):
    """Steady-state seconds per epoch of a run: the mean over its epochs after the first (plastix's first
    epoch loads the cached kernels, ~2 s; one epoch alone counts as it is)."""
    times = r["epoch_train_s"]
    return statistics.fmean(times[1:] if len(times) > 1 else times)


def fastest_epoch(r):
    """The run's fastest epoch after the first: the figure least disturbed by other work on the machine."""
    times = r["epoch_train_s"]
    return min(times[1:] if len(times) > 1 else times)


def summarise(runs):
    """Per configuration: median time per epoch and accuracy over repeats; ratios against the dense PyTorch
    runs (names starting "PyTorch BPTT dense") repeat by repeat, and of the fastest epochs over all repeats."""
    torch_dense = [n for n in runs if n.startswith("PyTorch BPTT dense")]
    fastest_torch = min(fastest_epoch(r) for ref in torch_dense for r in runs[ref])
    out = {}
    for name, reps in runs.items():
        times = [per_epoch(r) for r in reps]
        row = {"s_per_epoch_median": statistics.median(times), "s_per_epoch_runs": times,
               "fastest_epoch_s": min(fastest_epoch(r) for r in reps),
               "final_test_accuracy_runs": [r["test_accuracy"][-1] for r in reps],
               "test_accuracy_by_epoch_runs": [r["test_accuracy"] for r in reps]}
        ratios = {}
        for ref in torch_dense:
            # time ratio name / reference, repeat by repeat (same minutes of the machine)
            ratios[ref] = [per_epoch(a) / per_epoch(b) for a, b in zip(reps, runs[ref])]
        best = [min(per_epoch(runs[ref][i]) for ref in torch_dense) for i in range(len(reps))]
        ratios["fastest PyTorch dense of the repeat"] = [per_epoch(a) / b for a, b in zip(reps, best)]
        row["time_ratio_over"] = ratios
        row["fastest_epoch_ratio_over_fastest_pytorch_dense"] = row["fastest_epoch_s"] / fastest_torch
        out[name] = row
    return out


def rng(values, spec):
    lo, hi = min(values), max(values)
    return format(lo, spec) if format(lo, spec) == format(hi, spec) else f"{format(lo, spec)}-{format(hi, spec)}"


def markdown(summary):
    lines = ["| run | s per epoch, median (range) | test accuracy after last epoch | time / fastest PyTorch "
             "dense of the repeat | speedup over it | fastest epoch (s) | speedup, fastest epochs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in summary.items():
        r = row["time_ratio_over"]["fastest PyTorch dense of the repeat"]
        acc = [100 * a for a in row["final_test_accuracy_runs"]]
        lines.append(f"| {name} | {row['s_per_epoch_median']:.2f} ({rng(row['s_per_epoch_runs'], '.2f')}) "
                     f"| {rng(acc, '.1f')} % | {rng(r, '.2f')} | {rng([1 / x for x in r], '.2f')}x "
                     f"| {row['fastest_epoch_s']:.2f} "
                     f"| {1 / row['fastest_epoch_ratio_over_fastest_pytorch_dense']:.2f}x |")
    return "\n".join(lines)


def plot(summary, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)

    names = sorted(summary, key=lambda n: not n.startswith("PyTorch"))   # PyTorch first, then plastix
    med = [summary[n]["s_per_epoch_median"] for n in names]
    lo = [m - min(summary[n]["s_per_epoch_runs"]) for m, n in zip(med, names)]
    hi = [max(summary[n]["s_per_epoch_runs"]) - m for m, n in zip(med, names)]
    colors = ["tab:orange" if n.startswith("PyTorch") else "tab:blue" for n in names]
    fig, ax = plt.subplots(figsize=(9, 4.6))
    ax.bar(range(len(names)), med, yerr=[lo, hi], color=colors, capsize=4)
    ax.set_yscale("log")
    ax.set_ylim(min(m - l for m, l in zip(med, lo)) / 3, max(m + h for m, h in zip(med, hi)) * 2.5)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    labels = [n.replace(", ", "\n").replace("BPTT ", "BPTT\n").replace("e-prop ", "e-prop\n") for n in names]
    ax.set_xticks(range(len(names)), labels, fontsize=8)
    ax.set_ylabel("training time per epoch (s, log)\nmedian, bars: range over repeats")
    for i, n in enumerate(names):
        acc = summary[n]["final_test_accuracy_runs"]
        ax.annotate(f"{100 * statistics.median(acc):.0f} %", (i, med[i] + hi[i]), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_title(result) -> str:
    return (f"spoken digits, 182-256 LIF-10, batch 32, {result['epochs']} epochs, 2 cores (shared), "
            f"{result['repeats']} repeats; labels: final test accuracy (median)")


def main():
    args = parse_args()
    if args.plot_only is not None:
        result = json.loads(args.plot_only.read_text())
        result["summary"] = summarise(result["runs"])
        args.plot_only.write_text(json.dumps(result, indent=1) + "\n")
        plot(result["summary"], args.plot_only.with_name("time_per_epoch.png"), plot_title(result))
        print(markdown(result["summary"]))
        return
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads))   # the torch runs set their own threads
    env.setdefault("PLASTIX_CACHE_DIR", str(ROOT / ".plastix-cache"))
    warm_cache(args, env)
    torch_names = [v["name"] for v in args.torch]
    order = []   # PyTorch, plastix, PyTorch, plastix, ... while both last
    plastix_names = list(args.plastix)
    for i in range(max(len(torch_names), len(plastix_names))):
        order += torch_names[i:i + 1] + plastix_names[i:i + 1]
    runs = {name: [] for name in order}
    loads = []
    started = time.strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name in order:
                load = os.getloadavg()[0]
                print(f"torch_vs_eprop.py: repeat {rep + 1}/{args.repeats}: {name} (load {load:.1f})", file=sys.stderr)
                variant = next((v for v in args.torch if v["name"] == name), None)
                seed = seed_of(args, rep)
                r = (run_torch(args, variant, env, seed) if variant is not None
                     else run_plastix(args, name, env, Path(tmp) / f"{rep}_{len(loads)}", seed))
                r["seed"] = seed
                r["loadavg_1min_before"] = load
                loads.append(load)
                runs[name].append(r)
                print(f"  s per epoch {r['epoch_train_s']}, test accuracy {r['test_accuracy']}", file=sys.stderr)
    summary = summarise(runs)
    result = {"started": started, "finished": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename,
              "cpus": os.cpu_count(), "epochs": args.epochs, "repeats": args.repeats,
              "seeds": [seed_of(args, r) for r in range(args.repeats)],
              "neuron": args.neuron, "plastix_threads": {n: t for n, (_, t) in args.plastix.items()},
              "torch_lr": args.torch_lr,
              "loadavg_1min_before_runs": loads, "summary": summary, "runs": runs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(summary, args.out_dir / "time_per_epoch.png", plot_title(result))
    print(markdown(summary))


if __name__ == "__main__":
    main()
