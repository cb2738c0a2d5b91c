"""Bamford et al. (2010)'s qualitative result at scale 1: receptive fields refine with the correlated
stimulus and not with uncorrelated input.  Runs both for 60 model seconds (same seed), writes
``topomap_refinement.json`` and ``topomap_refinement.png`` (RF spread, AD and synapse count over time).

    python benchmarks/topomap_refinement.py --seconds 60 --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from plastix.topomap import model, run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--record-every", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    results = {}
    for label, correlated in (("correlated", True), ("uncorrelated", False)):
        params = model.TopomapParams(seed=args.seed, correlated=correlated)
        res = run.run(params, args.seconds, backend="cpu", record_every_s=args.record_every, progress=True,
                      breakdown_steps=None)
        results[label] = {k: res[k] for k in ("rf_spread_initial", "rf_spread_final", "ad_initial", "ad_final",
                                               "synapses_initial", "synapses_final", "realtime_factor", "compile_s",
                                               "history")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "topomap_refinement.json").write_text(json.dumps(results, indent=2))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    for label, colour in (("correlated", "tab:blue"), ("uncorrelated", "tab:orange")):
        h = results[label]["history"]
        t = [x["t_s"] for x in h]
        axes[0].plot(t, [x["rf_spread"] for x in h], "o-", color=colour, label=label)
        axes[1].plot(t, [x["ad"] for x in h], "o-", color=colour, label=label)
        axes[2].plot(t, [x["n_synapses"] for x in h], "o-", color=colour, label=label)
    for ax, title, unit in zip(axes, ("receptive-field spread", "AD (RF centre deviation)", "feedforward synapses"),
                               ("grid units", "grid units", "count")):
        ax.set_title(title)
        ax.set_xlabel("model time (s)")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Topographic map refinement, scale 1 (256 + 256 neurons), seed {args.seed}")
    fig.tight_layout()
    fig.savefig(args.out / "topomap_refinement.png", dpi=110)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in results.items()}))


if __name__ == "__main__":
    main()
