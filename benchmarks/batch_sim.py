"""Batched simulation against B = 1: ``plastix bench sim`` on the 10k x 1k bench network as CPU serial,
CPU parallel (B = 1) and batches (B = 32 on 2 threads and on 1 thread), run side by side: the
configurations alternate within each round, so load from other work falls on all of them alike.

    NUMBA_NUM_THREADS=2 python benchmarks/batch_sim.py --rounds 3 --out benchmarks/results/batch_sim_cpu2.json

Each configuration is one ``plastix bench sim --json`` process (compilation excluded from its timings;
the kernel cache is warmed first); the process's peak resident memory comes from ``os.wait4``.  The
summary gives per configuration the median synaptic events/s over the rounds (summed over the batch) and
its ratio to CPU parallel B = 1 and to CPU serial B = 1 of the same rounds."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {  # name: extra flags of `plastix bench sim`
    "cpu serial B=1": ["--parallel", "off", "--repeats", "3"],
    "cpu parallel B=1": ["--parallel", "on", "--repeats", "3"],
    "batch B=32, 2 threads": ["--batch-size", "32"],
    "batch B=32, 1 thread": ["--batch-size", "32", "--threads", "1"],
}


def bench(flags: list[str]) -> dict:
    cmd = [sys.executable, "-m", "plastix.cli.main", "bench", "sim", "--json", *flags]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, for its resource usage
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()}")
    result = json.loads(out)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000, help="1 ms steps per run (every configuration)")
    ap.add_argument("--out", default=None, help="write the summary JSON here")
    args = ap.parse_args(argv)
    common = ["--steps", str(args.steps)]
    for flags in CONFIGS.values():  # warm the kernel cache (compilation is excluded anyway)
        bench([*flags, *common, "--steps", "2"])
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    loads = []
    t0 = time.time()
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        order = list(CONFIGS) if r % 2 == 0 else list(reversed(CONFIGS))
        for name in order:
            runs[name].append(bench([*CONFIGS[name], *common]))
            got = runs[name][-1]
            print(f"round {r} {name}: {got['synaptic_events_per_s']:.3g} events/s, wall {got['wall_s']:.3f} s, "
                  f"peak RSS {got['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    rows = {}
    for name, rs in runs.items():
        ev = [x["synaptic_events_per_s"] for x in rs]
        rows[name] = {"flags": CONFIGS[name], "events_per_s_median": statistics.median(ev), "events_per_s": ev,
                      "wall_s": [x["wall_s"] for x in rs], "spikes": [x["spikes"] for x in rs],
                      "threads": rs[0]["threads"], "batch_size": rs[0]["batch_size"],
                      "peak_rss_mib": max(x["peak_rss_mib"] for x in rs),
                      "state_bytes_per_element": rs[0].get("state_bytes_per_element"),
                      "state_bytes_shared": rs[0].get("state_bytes_shared")}
    for ref in ("cpu parallel B=1", "cpu serial B=1"):
        for row in rows.values():
            row[f"ratio_vs_{ref.replace(' ', '_').replace('=', '')}"] = \
                row["events_per_s_median"] / rows[ref]["events_per_s_median"]
    summary = {"command": f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '')} python benchmarks/batch_sim.py "
                          f"--rounds {args.rounds} --steps {args.steps}",
               "network": "plastix bench sim defaults: 10,000 LIF x 1,000 synapses/row, Gaussian current noise",
               "steps": args.steps, "rounds": args.rounds, "load_average_1min_per_round": loads,
               "minutes": (time.time() - t0) / 60, "configs": rows}
    text = json.dumps(summary, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
