"""Issue 14's "1 % question on wider inputs": gather the sweeps of ``benchmarks/train_accuracy.py`` in one
folder into one summary.

Every subfolder of ``--out`` holding a ``summary.json`` written by ``train_accuracy.py`` is one sweep: those
run with ``--validation`` choose each network's learning rate (the best mean validation accuracy per data
set and network; on a tie the higher rate), the others are the test runs.  Writes ``summary.json``
(validation grid, chosen rates, per data set and network the test accuracies per seed, mean, sample
standard deviation, range and median time per epoch with its ratio to dense; every sweep's command) and
``accuracy.png`` (test accuracy per network, mean and seeds, one panel per data set), and prints the
tables in Markdown.  ``--chosen-lr`` prints only the chosen rates as JSON (for scripting the test runs).
``--timing DIR``: sweeps in DIR's subfolders that ran every network back to back, one seed, a few epochs
(the test runs' times are taken minutes apart under changing load); their median time per epoch and its
ratio to dense in the same sweep go to ``summary.json``'s ``timing``.

    python benchmarks/wide_inputs.py --out benchmarks/results/train_accuracy_wide
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = ("dense", "static 10%", "DEEP R 10%", "static 1%", "DEEP R 1%")


def data_name(settings: dict) -> str:
    """A data set's label: its name and loader options (``randman (num_units=700, ...)``)."""
    name = settings.get("dataset", "spoken_digits")
    return name + (" (" + ", ".join(settings["load"]) + ")" if settings.get("load") else "")


def read_sweeps(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/summary.json"))]


def gather(sweeps: list[dict]) -> dict:
    import numpy as np

    validation, test, commands = {}, {}, []
    for sw in sweeps:
        s = sw["settings"]
        commands.append(sw["command"])
        data = data_name(s)
        for r in sw["runs"]:
            if s.get("validation"):
                cell = validation.setdefault(data, {}).setdefault(r["config"], {}).setdefault(f"{s['lr']:g}", [])
                cell.append(r["test_accuracy"])
            else:
                test.setdefault(data, {}).setdefault(r["config"], []).append(
                    {"seed": r["seed"], "lr": s["lr"], "l1": s["l1"], "epochs": s["epochs"],
                     "test_accuracy": r["test_accuracy"], "train_accuracy": r["train_accuracy"],
                     "epoch_s": float(np.median(r["epoch_s"])), "synapses": r["synapses"],
                     "rewirings": r["rewirings"]})
    # the best mean validation accuracy; on a tie the higher rate
    chosen = {d: {c: max(lrs, key=lambda lr: (np.mean(lrs[lr]), float(lr))) for c, lrs in v.items()}
              for d, v in validation.items()}
    table = {}
    for data, nets in test.items():
        dense_s = float(np.median([r["epoch_s"] for r in nets["dense"]])) if "dense" in nets else None
        table[data] = {}
        for c in sorted(nets, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER)):
            runs = sorted(nets[c], key=lambda r: r["seed"])
            acc = np.array([r["test_accuracy"] for r in runs])
            epoch_s = float(np.median([r["epoch_s"] for r in runs]))
            table[data][c] = {"lr": runs[0]["lr"], "epochs": runs[0]["epochs"], "seeds": [r["seed"] for r in runs],
                              "test_accuracy": acc.tolist(), "mean": float(acc.mean()),
                              "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                              "min": float(acc.min()), "max": float(acc.max()), "epoch_s": epoch_s,
                              "dense_over_this": dense_s / epoch_s if dense_s else None, "runs": runs}
    validation = {d: {c: {lr: {"mean": float(np.mean(a)), "runs": a} for lr, a in lrs.items()}
                      for c, lrs in v.items()} for d, v in validation.items()}
    return {"validation": validation, "chosen_lr": chosen, "test": table, "commands": commands}


def timing(sweeps: list[dict]) -> dict:
    """Per data set, per network: median training s per epoch and dense's over it, within one sweep."""
    import numpy as np

    out = {}
    for sw in sweeps:
        per = {r["config"]: float(np.median(r["epoch_s"])) for r in sw["runs"]}
        out[data_name(sw["settings"])] = {
            "command": sw["command"], "epochs": sw["settings"]["epochs"],
            "networks": {c: {"epoch_s": t, "dense_over_this": per["dense"] / t if "dense" in per else None}
                         for c, t in per.items()}}
    return out


def markdown(summary: dict) -> str:
    lines = []
    for data, t in summary.get("timing", {}).items():
        lines += [f"Timing, {data} ({t['epochs']} epochs, one sweep):", "", "| network | s per epoch | dense / this |",
                  "|---|---:|---:|"]
        for c, n in t["networks"].items():
            lines.append(f"| {c} | {n['epoch_s']:.2f} | {n['dense_over_this']:.1f}x |")
        lines.append("")
    for data, v in summary["validation"].items():
        lrs = sorted({lr for c in v.values() for lr in c}, key=float)
        lines += [f"Validation, {data}:", "", "| network | " + " | ".join(f"lr {lr}" for lr in lrs) + " |",
                  "|---|" + "---:|" * len(lrs)]
        for c in sorted(v, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER)):
            cells = [f"{100 * v[c][lr]['mean']:.1f} %" if lr in v[c] else "" for lr in lrs]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
    for data, nets in summary["test"].items():
        lines += [f"Test, {data}:", "", "| network | lr | test accuracy, mean +- sd (min-max) | seeds | "
                  "s per epoch (median) | dense / this |", "|---|---:|---|---:|---:|---:|"]
        for c, t in nets.items():
            ratio = f"{t['dense_over_this']:.1f}x" if t["dense_over_this"] else ""
            lines.append(f"| {c} | {t['lr']:g} | {100 * t['mean']:.1f} +- {100 * t['std']:.1f} % "
                         f"({100 * t['min']:.1f}-{100 * t['max']:.1f}) | {len(t['seeds'])} | {t['epoch_s']:.2f} "
                         f"| {ratio} |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datas = list(summary["test"])
    fig, axes = plt.subplots(1, len(datas), figsize=(6 * len(datas), 4), squeeze=False)
    for ax, data in zip(axes[0], datas):
        nets = summary["test"][data]
        names = list(nets)
        ax.bar(names, [100 * nets[n]["mean"] for n in names], color="0.75")
        for i, n in enumerate(names):
            ax.plot([i] * len(nets[n]["test_accuracy"]), [100 * a for a in nets[n]["test_accuracy"]], "k.")
        lo = min(100 * a for n in names for a in nets[n]["test_accuracy"])
        ax.set_ylim(max(0.0, 10 * (lo // 10) - 10), 100)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(data if len(data) < 60 else data[:57] + "...", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/train_accuracy_wide")
    ap.add_argument("--chosen-lr", action="store_true", help="print the validation-chosen rates as JSON, write nothing")
    ap.add_argument("--timing", default=None, help="folder of back-to-back timing sweeps (see above)")
    a = ap.parse_args()
    out = Path(a.out)
    summary = gather(read_sweeps(out))
    if a.chosen_lr:
        return print(json.dumps(summary["chosen_lr"]))
    if a.timing:
        summary["timing"] = timing(read_sweeps(Path(a.timing)))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if summary["test"]:
        plot(summary, out / "accuracy.png")
    print(markdown(summary))


if __name__ == "__main__":
    main()
