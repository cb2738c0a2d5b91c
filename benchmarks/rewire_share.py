"""Share of run time spent rewiring when the 10k x 1k bench network rewires 0.1 % of its synapses every
step (one random synapse per row replaced by a new random one, inside the compiled time loop).

    python benchmarks/rewire_share.py --neurons 10000 --row-length 1000 --steps 1000 --json

Runs the same network with and without the scheduled rule in one process; the difference of the two
run times is the rewiring cost."""
from __future__ import annotations

import argparse
import json
import time

import plastix as px
from plastix.bench import lif_network


def timed_run(net, steps, repeats, parallel):
    sim = px.Simulation(net, backend="cpu", parallel=parallel)
    sim.run(1)  # compile / load from cache
    best = None
    for _ in range(repeats):
        sim.reset()
        t0 = time.perf_counter()
        sim.run(steps)
        wall = time.perf_counter() - t0
        best = wall if best is None else min(best, wall)
    return best, sim


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=10_000)
    ap.add_argument("--row-length", type=int, default=1_000)
    ap.add_argument("--steps", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parallel", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    parallel = {"auto": "auto", "on": True, "off": False}[args.parallel]
    static, _ = lif_network.build(args.neurons, args.row_length, deterministic=True)
    plain_s, _ = timed_run(static, args.steps, args.repeats, parallel)
    rewired, _ = lif_network.build(args.neurons, args.row_length, deterministic=True)
    n_per_row = max(1, round(0.001 * args.row_length))
    rewired.add_connectivity_update("turnover", "recurrent", px.structural.random_replace(n_per_row),
                                    var_refs={"weight": "w"}, every=1)
    rewire_s, sim = timed_run(rewired, args.steps, args.repeats, parallel)
    stats = sim.update_stats("turnover")
    out = {"neurons": args.neurons, "synapses": args.neurons * args.row_length, "steps": args.steps,
           "replaced_per_step": n_per_row * args.neurons, "threads": sim.backend.thread_count,
           "wall_s_without_rewiring": plain_s, "wall_s_with_rewiring": rewire_s,
           "rewiring_share": max(0.0, rewire_s - plain_s) / rewire_s,
           "replaced_total_last_run": stats["removed"] // (args.repeats + 1),
           "spikes": sim.spike_count("lif")}
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
