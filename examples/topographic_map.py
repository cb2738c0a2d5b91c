"""Topographic map refinement by rewiring (Bamford, Murray & Willshaw 2010) through the public API: build
the network, drive the moving stimulus, simulate with STDP and the distance-dependent rewiring rule inside
the compiled loop, and measure the receptive fields as the map refines.  Writes JSON and a figure
(receptive-field spread and centre deviation over time, correlated vs uncorrelated input).

    pip install -e . && python examples/topographic_map.py --seconds 20 --out out/topographic_map

``plastix topomap`` is the full runner (all analyses, time breakdown, scales 1-7); this is the short path
to the same model for your own variations (change TopomapParams, or the rule in plastix/topomap/model.py).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import plastix as px
from plastix.topomap import TopomapParams, analysis, build, stimulus_schedule


def receptive_fields(sim: px.Simulation, side: int) -> dict:
    """Spread (grid units) and mean absolute deviation of the receptive-field centres from the ideal map."""
    pre, post = sim.connectivity("ff")
    s = analysis.summarise(pre, post, sim.get("ff", "w").astype(float), (side, side), (side, side))
    return {"rf_spread": s["rf_spread"], "ad": s["ad"], "synapses": s["n_synapses"]}


def simulate(params: TopomapParams, seconds: float, record_every_s: float, backend: str = "auto") -> list[dict]:
    """Receptive-field measures every ``record_every_s`` of model time (s), starting at 0."""
    sim = px.Simulation(build(params), backend=backend)
    duration_ms = seconds * 1000.0
    if params.correlated:   # the stimulus schedule is an extra global array: it moves inside the compiled loop
        rows, cols = stimulus_schedule(params, duration_ms + 1.0)
        sim.set_egp("source", "stim_row", rows)
        sim.set_egp("source", "stim_col", cols)
    history = [{"t_s": 0.0, **receptive_fields(sim, params.side)}]
    every = int(round(record_every_s * 1000.0 / params.dt))
    sim.run(int(round(duration_ms / params.dt)), every=every, progress=True,
            callback=lambda s: history.append({"t_s": s.t / 1000.0, **receptive_fields(s, params.side)}))
    return history


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="model time per run (s)")
    ap.add_argument("--record-every", type=float, default=2.0, help="model seconds between measurements")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/topographic_map"))
    a = ap.parse_args(argv)
    runs = {name: simulate(TopomapParams(scale=1, correlated=name == "correlated", seed=a.seed), a.seconds,
                           a.record_every)
            for name in ("correlated", "uncorrelated")}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(runs, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, hist in runs.items():
        t = [h["t_s"] for h in hist]
        axes[0].plot(t, [h["rf_spread"] for h in hist], "o-", label=name)
        axes[1].plot(t, [h["ad"] for h in hist], "o-", label=name)
    for ax, label in zip(axes, ("receptive-field spread (grid units)", "mean |centre - ideal| (grid units)")):
        ax.set_xlabel("model time (s)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(a.out / "refinement.png", dpi=120)
    for name, hist in runs.items():
        print(f"{name}: spread {hist[0]['rf_spread']:.2f} -> {hist[-1]['rf_spread']:.2f}, "
              f"AD {hist[0]['ad']:.2f} -> {hist[-1]['ad']:.2f}, synapses {hist[0]['synapses']} -> "
              f"{hist[-1]['synapses']}")
    return runs


if __name__ == "__main__":
    main()
