"""Structural plasticity while simulating: an excitatory/inhibitory LIF network whose recurrent synapses
learn with STDP while a rewiring rule, written in Python, prunes weak synapses every 50 ms and regrows
them at random free targets; the column view STDP needs stays consistent throughout.  Writes JSON and a
figure (weight distribution before/after, synapses pruned and regrown over time).

    pip install -e . && python examples/rewiring.py --out out/rewiring
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import plastix as px


def prune_weak_regrow(row, p):
    """Remove synapses weaker than p.threshold; regrow as many at random unconnected targets."""
    removed = 0
    for s in row.synapses:
        if s.weight < p.threshold:
            s.remove()
            removed += 1
    for _ in range(removed):
        j = row.sample_free()
        if j >= 0:
            row.add(j, weight=p.w_new)


def build(n: int = 1000, seed: int = 2) -> px.Network:
    net = px.Network(dt=1.0, seed=seed)
    drive = net.add_population("drive", 200, px.neurons.poisson(), init={"rate": 15.0})  # Hz
    exc = net.add_population("exc", n, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=20.0),
                             init={"v": px.init.Uniform(0.0, 20.0), "i_offset": 0.3})  # mV, nA
    net.add_projection("drive_exc", drive, exc, connectivity=px.connect.FixedProbability(0.1), init={"w": 0.3},
                       postsynaptic=px.postsynaptic.exp_curr(5.0))
    stdp = px.weight_update.stdp_additive(tau_plus=20.0, tau_minus=20.0, a_plus=0.01, a_minus=0.0105,
                                          w_min=0.0, w_max=0.2)
    rec = net.add_projection("exc_exc", exc, exc, connectivity=px.connect.FixedNumberPost(50), weight_update=stdp,
                             init={"w": px.init.Uniform(0.0, 0.1)}, postsynaptic=px.postsynaptic.exp_curr(5.0),
                             delay=1, row_stride=80)
    rule = px.ConnectivityUpdateModel(name="prune_weak_regrow", params={"threshold": 0.005, "w_new": 0.05},
                                      var_refs=("weight",), row_update=prune_weak_regrow)
    net.add_connectivity_update("rewire", rec, rule, var_refs={"weight": "w"})
    return net


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="model time (s)")
    ap.add_argument("--rewire-every-ms", type=int, default=50)
    ap.add_argument("--backend", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", type=Path, default=Path("out/rewiring"))
    args = ap.parse_args(argv)
    net = build()
    sim = px.Simulation(net, backend=args.backend)
    w0 = sim.get("exc_exc", "w")
    history = []

    def rewire(s):
        r = s.custom_update("rewire")["rewire"]
        history.append({"t_ms": s.t, "removed": r["removed"], "added": r["added"], "row_ms": r["row_s"] * 1e3,
                        "columns_ms": r["columns_s"] * 1e3, "synapses": len(s.get("exc_exc", "w"))})

    steps = int(args.seconds * 1000 / net.dt)
    sim.run(steps, callback=rewire, every=args.rewire_every_ms, progress=True)
    w1 = sim.get("exc_exc", "w")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"backend": sim.backend.name, "seconds": args.seconds, "rewirings": len(history),
               "removed_total": int(sum(h["removed"] for h in history)),
               "rate_hz": sim.spike_count("exc") / 1000 / args.seconds,
               "synapses_initial": int(len(w0)), "synapses_final": int(len(w1)),
               "mean_weight_initial": float(w0.mean()), "mean_weight_final": float(w1.mean()), "history": history}
    (args.out / "rewiring.json").write_text(json.dumps(summary, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(0, 0.2, 41)
    a1.hist(w0, bins, alpha=0.6, label="initial")
    a1.hist(w1, bins, alpha=0.6, label=f"after {args.seconds:g} s")
    a1.set_xlabel("weight (nA)")
    a1.set_ylabel("synapses")
    a1.legend()
    t = [h["t_ms"] / 1000 for h in history]
    a2.plot(t, [h["removed"] for h in history], label="pruned = regrown per rewiring")
    a2.set_xlabel("time (s)")
    a2.set_ylabel("synapses")
    a2.legend()
    fig.suptitle(f"STDP + rewiring, {len(w1)} synapses kept constant")
    fig.tight_layout()
    fig.savefig(args.out / "rewiring.png", dpi=120)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}))


if __name__ == "__main__":
    main()
