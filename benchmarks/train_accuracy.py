"""Accuracy of dense, static sparse and DEEP R networks on spoken digits (issue 4's table) or another data set.

Runs every (configuration, seed) with the same budget in worker processes (one Numba thread each) and
writes a summary to ``--out`` (``summary.json``: settings, the command that reproduces it, per run the
final figures and per-epoch curves; ``summary.md``; ``accuracy.png``: mean and spread over seeds).  Each
run's own records (per-batch rewirings, plots, checkpoint) go to ``--runs-out``, by default under the
untracked ``out/``: they are reproduced by the command, not committed.

    python benchmarks/train_accuracy.py --epochs 15 --seeds 1,2,3 --workers 2
    python benchmarks/train_accuracy.py --dataset randman --load num_units=700 --epochs 10 --workers 1

``--dataset`` names any data set of ``plastix.datasets.load``; ``--load KEY=VALUE`` (repeatable) passes
loader options (``max_train=6000``, ``encoding=latency``, randman's ``num_units=700``).  Spoken digits
always load with ``plastix train``'s encoding (1 ms frames, 7 levels: 182 units).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CONFIGS = {
    "dense": dict(input_density=1.0, recurrent_density=1.0, rewiring="none"),
    "static 10%": dict(input_density=0.1, recurrent_density=0.1, rewiring="none"),
    "DEEP R 10%": dict(input_density=0.1, recurrent_density=0.1, rewiring="deep-r"),
    "static 1%": dict(input_density=0.01, recurrent_density=0.01, rewiring="none"),
    "DEEP R 1%": dict(input_density=0.01, recurrent_density=0.01, rewiring="deep-r"),
    "soft DEEP R 10%": dict(input_density=0.1, recurrent_density=0.1, rewiring="soft-deep-r"),
}


def hidden_layers(text):
    from plastix.cli.train import hidden_layers as parse

    return parse(text)


def load_option(text: str) -> str:
    """``--load KEY=VALUE``: checked here, parsed by :func:`loader_options`."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier() or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like num_units=700, got {text!r}")
    return text


def loader_options(pairs) -> dict:
    """``["num_units=700", "encoding=latency"]`` -> ``{"num_units": 700, "encoding": "latency"}`` (numbers
    become int or float)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        for kind in (int, float):
            try:
                out[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def load_dataset(args: dict):
    """The data set of a sweep's settings (``dataset``, ``load``; spoken digits with ``frame_ms``)."""
    from plastix import datasets

    from plastix.cli.train import SPOKEN_DIGITS_LEVELS

    name = args.get("dataset", "spoken_digits")
    opts = loader_options(args.get("load", []))
    if name == "spoken_digits":
        opts = {"frame_ms": args["frame_ms"], "levels": SPOKEN_DIGITS_LEVELS, **opts}
    return datasets.load(name, **opts)


def _run(job):
    name, seed, args = job
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from plastix.learning.eprop import EPropConfig
    from plastix.learning.trainer import Trainer

    from plastix.cli.train import training_augment

    ds = load_dataset(args)
    if args.get("validation"):
        ds = ds.validation_split(args["validation"])
    cfg = EPropConfig(num_inputs=ds.train.num_units, num_outputs=max(ds.train.num_classes, 2),
                      num_hidden=args["hidden"], lr=args["lr"],
                      lr_decay=args.get("lr_decay", 1.0),
                      l1=args["l1"], temperature=args.get("temperature", 0.0), row_padding=2.0, seed=seed,
                      init_fan_in=args.get("init_fan_in", "connected"),
                      **CONFIGS[name])
    out = Path(args["runs_out"]) / f"{name.replace(' ', '_').replace('%', 'pct')}_seed{seed}"
    t0 = time.perf_counter()
    aug = training_augment(args.get("augment_shift", 0), args.get("augment_drop", 0.0))
    res = Trainer(cfg, ds, batch_size=args["batch_size"], out_dir=out, progress=False,
                  augment=aug).fit(args["epochs"])
    return {"config": name, "seed": seed, "test_accuracy": res["final_test_accuracy"],
            "best_test_accuracy": max(e["test_accuracy"] for e in res["epochs"]),
            "train_accuracy": res["epochs"][-1]["train_accuracy"], "synapses": res["synapses_final"],
            "rewirings": {p: sum(e["rewirings"].get(p, 0) for e in res["epochs"]) for p in res["rewirings_per_batch"]},
            "failed": {p: sum(e["failed_rewirings"].get(p, 0) for e in res["epochs"])
                       for p in res["rewirings_per_batch"]},
            "epoch_s": [e["train_wall_s"] for e in res["epochs"]], "wall_s": time.perf_counter() - t0,
            "curves": curves(res)}


def curves(res: dict) -> dict:
    """Per-epoch test and training accuracy and rewirings per projection of a training's results."""
    ep = res["epochs"]
    return {"test_accuracy": [round(e["test_accuracy"], 4) for e in ep],
            "train_accuracy": [round(e["train_accuracy"], 4) for e in ep],
            "rewirings": {p: [e["rewirings"].get(p, 0) for e in ep] for p in res["rewirings_per_batch"]}}


#: the command line's defaults, left out of the recorded command
DEFAULTS = {"dataset": "spoken_digits", "load": [],
            "epochs": None, "hidden": 256, "lr": 3e-3, "lr_decay": 1.0, "l1": 0.01, "temperature": 0.0,
            "augment_shift": 0, "augment_drop": 0.0, "batch_size": 32, "frame_ms": 1.0, "validation": 0.0,
            "init_fan_in": "connected"}


def command_line(settings: dict, configs, seeds, out) -> str:
    """The command that reruns a summary's runs (``settings``: the summary's settings)."""
    argv = ["python", "benchmarks/train_accuracy.py"]
    for key, default in DEFAULTS.items():
        value = settings.get(key, default)
        if value != default:
            if key == "load":
                for pair in value:
                    argv += ["--load", pair]
                continue
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            argv += [f"--{key.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    argv += ["--configs", ",".join(configs), "--seeds", ",".join(str(s) for s in seeds), "--out", str(out)]
    return shlex.join(argv)


def resummarise(out: Path):
    """Redraw the summary of finished runs from ``out/summary.json``."""
    data = json.loads((out / "summary.json").read_text())
    summarise(data["runs"], data["settings"], out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="spoken_digits", help="a plastix.datasets.load name (default spoken_digits)")
    ap.add_argument("--load", type=load_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a loader option, e.g. num_units=700 or max_train=6000 (repeatable)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--configs", default=",".join(c for c in CONFIGS if not c.startswith("soft")),
                    help="comma-separated, of " + ", ".join(CONFIGS).replace("%", "%%")
                    + " (default: all but soft DEEP R)")
    ap.add_argument("--hidden", type=hidden_layers, default=256, help="neurons, or per layer: 256,128")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch")
    ap.add_argument("--l1", type=float, default=0.01)
    ap.add_argument("--temperature", type=float, default=0.0, help="DEEP R's noise temperature (Bellec; 0: none)")
    ap.add_argument("--augment-shift", type=int, default=0, help="training batches: time shift up to this many steps")
    ap.add_argument("--augment-drop", type=float, default=0.0, help="training batches: spike deletion probability")
    # plastix.learning.eprop.INIT_FAN_IN, spelled out: importing plastix here would load numba before the
    # workers fork and set their thread count
    ap.add_argument("--init-fan-in", choices=("connected", "all"), default="connected",
                    help="initial weights N(0, 1/sqrt(fan_in)) with fan_in the connected inputs or all possible ones")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--frame-ms", type=float, default=1.0)
    ap.add_argument("--validation", type=float, default=0.0,
                    help="evaluate on this fraction of the training split instead of the test split (for "
                         "choosing settings; 0: use the test split)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/train_accuracy", help="the summary goes here")
    ap.add_argument("--runs-out", default=None,
                    help="each run's results.json, plots and checkpoint "
                         "(default: out/train_accuracy_runs/<--out's name>, "
                         "untracked)")
    ap.add_argument("--summary-only", action="store_true", help="redraw the summary of finished runs")
    a = ap.parse_args()
    if not 0.0 <= a.validation < 1.0:
        raise SystemExit(f"--validation must lie in [0, 1), got {a.validation}")
    if a.summary_only:
        return resummarise(Path(a.out))
    names = [n.strip() for n in a.configs.split(",")]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; known: {list(CONFIGS)}")
    args = {k: getattr(a, k) for k in ("dataset", "load", "epochs", "hidden", "lr", "lr_decay", "l1", "temperature",
                                     "augment_shift", "augment_drop", "batch_size", "frame_ms", "validation",
                                     "init_fan_in", "out")}
    args["runs_out"] = a.runs_out or str(Path("out") / "train_accuracy_runs" / Path(a.out).name)
    jobs = [(n, int(s), args) for n in names for s in a.seeds.split(",")]
    Path(a.out).mkdir(parents=True, exist_ok=True)
    runs = []
    with ProcessPoolExecutor(a.workers) as pool:
        for r in pool.map(_run, jobs):
            runs.append(r)
            print(json.dumps({k: r[k] for k in ("config", "seed", "test_accuracy", "wall_s")}), flush=True)
            summarise(runs, args, Path(a.out), quiet=True)   # finished runs survive a later failure
    summarise(runs, args, Path(a.out))


def summarise(runs, args, out: Path, quiet: bool = False):
    import numpy as np

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = {}
    for name in dict.fromkeys(r["config"] for r in runs):
        accs = [r["test_accuracy"] for r in runs if r["config"] == name]
        table[name] = {"mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs)),
                       "seeds": len(accs),
                       "epoch_s": float(np.median([s for r in runs if r["config"] == name for s in r["epoch_s"]]))}
    command = command_line(args, list(table), list(dict.fromkeys(r["seed"] for r in runs)), out)
    (out / "summary.json").write_text(json.dumps({"settings": args, "command": command, "table": table, "runs": runs},
                                                 indent=1))
    split = f"validation ({args['validation']:g} of train)" if args.get("validation") else "test"
    lines = [f"| network | {split} accuracy, mean (min-max) | seeds | median epoch s (1 thread) |", "|---|---|---|---|"]
    for name, t in table.items():
        lines.append(f"| {name} | {100 * t['mean']:.1f} % ({100 * t['min']:.1f}-{100 * t['max']:.1f}) | {t['seeds']} "
                     f"| {t['epoch_s']:.1f} |")
    (out / "summary.md").write_text("\n".join(lines) + f"\n\nCommand: `{command}`\n")
    if not quiet:
        print("\n".join(lines))
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(table)
    ax.bar(names, [100 * table[n]["mean"] for n in names], color="0.7")
    for i, n in enumerate(names):
        ax.plot([i] * table[n]["seeds"], [100 * r["test_accuracy"] for r in runs if r["config"] == n], "k.")
    lo = min(100 * r["test_accuracy"] for r in runs)
    ax.set_ylim(max(0.0, 10 * (lo // 10) - 10), 100)   # differences of a few points must be visible
    ax.set_ylabel(("validation" if args.get("validation") else "test") + " accuracy (%)")
    decay = args.get("lr_decay", 1.0)
    data = args.get("dataset", "spoken_digits").replace("_", " ")
    if args.get("load"):
        data += " (" + ", ".join(args["load"]) + ")"
    ax.set_title(f"{data}, {args['hidden']} ALIF, {args['epochs']} epochs"
                 + (f", lr x{decay:g}/epoch" if decay != 1.0 else ""))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
