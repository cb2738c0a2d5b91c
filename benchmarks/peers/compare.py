#!/usr/bin/env python3
"""Side-by-side wall time of plastix, Brian2 and NEST on the `bench sim` network.

Each simulator runs in its own process: plastix through its CLI
(`plastix bench sim ... --threads P --deterministic --json`), Brian2 and NEST through
brian2_sim.py / nest_sim.py with the interpreters of the venvs made by
install.sh. Every run prints one JSON object; this script repeats each run
`--repeats` times (round-robin, so slow drift of the machine hits every
simulator alike), takes the median wall_s, and prints a markdown table followed
by one JSON object with all figures and the ratios peer_wall_s / plastix_wall_s
(above 1: plastix is faster).

A simulator that cannot run (missing `plastix` command, venv not installed,
failing run) is reported and skipped; the others still run.
"""

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
PEERS = ("brian2", "nest")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=10_000)
    p.add_argument("--row-length", type=int, default=1_000, help="out-degree K")
    p.add_argument("--steps", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="runs per simulator; the median is kept")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON object here")
    p.add_argument("--only", default="plastix,brian2,nest",
                   help="comma-separated subset of plastix,brian2,nest to run")
    p.add_argument("--plastix-cmd", default="plastix",
                   help="how to invoke the plastix CLI (shell-split), "
                        "e.g. 'python -m plastix.cli.main'")
    p.add_argument("--plastix-args", default="",
                   help="extra arguments for 'plastix bench sim' (shell-split); write it with '=' "
                        "since the value starts with a dash: --plastix-args='--parallel on'")
    p.add_argument("--brian2-python", type=Path, default=VENVS / "brian2" / "bin" / "python")
    p.add_argument("--nest-python", type=Path, default=VENVS / "nest" / "bin" / "python")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run")
    args = p.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - {"plastix", *PEERS}
    if unknown:
        p.error(f"--only: unknown simulator(s) {sorted(unknown)}")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def commands(args):
    """Map simulator name -> argv, or -> error string when it cannot run."""
    size = ["--neurons", str(args.neurons), "--row-length", str(args.row_length),
            "--steps", str(args.steps)]
    out = {}
    if "plastix" in args.only:
        plastix = shlex.split(args.plastix_cmd)
        if plastix and shutil.which(plastix[0]):
            # --deterministic: no current noise, the same model as the peer scripts.
            out["plastix"] = plastix + ["bench", "sim", *size, "--threads", str(args.threads),
                                        "--deterministic", "--json",
                                        *shlex.split(args.plastix_args)]
        else:
            out["plastix"] = f"command {args.plastix_cmd!r} not found"
    for name, python in (("brian2", args.brian2_python), ("nest", args.nest_python)):
        if name not in args.only:
            continue
        if python.is_file():
            script = HERE / f"{name}_sim.py"
            out[name] = [str(python), str(script), *size, "--threads", str(args.threads),
                         "--json"]
        else:
            out[name] = f"{python} missing (run benchmarks/peers/install.sh)"
    return out


def plastix_version(plastix):
    """'plastix --version' prints 'plastix X.Y.Z'; None if that fails."""
    try:
        proc = subprocess.run(plastix + ["--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = proc.stdout.split()
    return words[-1] if proc.returncode == 0 and words else None


def run_once(argv, timeout):
    """Run one benchmark process; return its JSON object or raise RuntimeError."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no stderr)"]
        # Last line first: it usually names the error and is what the table shows.
        raise RuntimeError(f"exit status {proc.returncode}: {lines[-1]}\n" + "\n".join(lines[-15:]))
    # Take the last stdout line that is a JSON object, in case a library printed first.
    for line in reversed(proc.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise RuntimeError(f"no JSON object on stdout:\n{proc.stdout[-2000:]}")


def summarise(runs):
    """Median figures over the repeats of one simulator."""
    walls = [r["wall_s"] for r in runs]
    wall = statistics.median(walls)
    first = runs[0]
    spikes = [r.get("spikes") for r in runs]
    neurons, steps = first.get("neurons"), first.get("steps")
    summary = {
        "version": first.get("version"),
        "neurons": neurons,
        "synapses": first.get("synapses"),
        "steps": steps,
        "threads": first.get("threads"),
        "wall_s": wall,
        "wall_s_runs": walls,
        # The fastest run is the one least disturbed by other work on the machine.
        "wall_s_min": min(walls),
        "steps_per_s": steps / wall if steps else None,
        "spikes": statistics.median_low(spikes) if None not in spikes else None,
        "spikes_runs": spikes,
        "loadavg_1min_before_runs": [r.get("loadavg_1min_before") for r in runs],
    }
    if summary["spikes"] is not None and neurons and steps:
        summary["firing_fraction_per_step"] = summary["spikes"] / (neurons * steps)
        if summary["synapses"]:
            # spikes x out-degree = synaptic events delivered
            events = summary["spikes"] * summary["synapses"] / neurons
            summary["synaptic_events_per_s"] = events / wall
    setups = [r["setup_s"] for r in runs if r.get("setup_s") is not None]
    if setups:
        summary["setup_s"] = statistics.median(setups)
    for key in ("backend", "parallel", "compile_or_cache_load_s", "openmp", "wall_s_measures",
                "note"):
        if key in first:
            summary[key] = first[key]
    return summary


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def markdown_table(results, ratios):
    lines = [
        "| simulator | version | threads | wall_s (median) | wall_s (min) | steps/s "
        "| synaptic events/s | spikes | firing %/step | setup_s | wall_s / plastix |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        if "error" in res:
            lines.append(f"| {name} | not run: {res['error'].splitlines()[0]} "
                         "| | | | | | | | | |")
            continue
        ff = res.get("firing_fraction_per_step")
        lines.append(
            f"| {name} | {res.get('version') or '-'} | {res.get('threads') or '-'} "
            f"| {fmt(res['wall_s'], '.3f')} | {fmt(res['wall_s_min'], '.3f')} "
            f"| {fmt(res.get('steps_per_s'), '.1f')} "
            f"| {fmt(res.get('synaptic_events_per_s'), '.3g')} | {fmt(res.get('spikes'), '.0f')} "
            f"| {fmt(None if ff is None else 100 * ff, '.2f')} | {fmt(res.get('setup_s'), '.2f')} "
            f"| {fmt(ratios.get(name), '.2f')} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    cmds = commands(args)
    runs = {name: [] for name, cmd in cmds.items() if not isinstance(cmd, str)}
    errors = {name: cmd for name, cmd in cmds.items() if isinstance(cmd, str)}
    for name, err in errors.items():
        print(f"compare.py: skipping {name}: {err}", file=sys.stderr)

    for rep in range(args.repeats):
        for name in list(runs):
            argv = cmds[name]
            print(f"compare.py: {name} run {rep + 1}/{args.repeats}: {shlex.join(argv)}",
                  file=sys.stderr)
            # The 1-minute load average lets a reader spot runs slowed by other work.
            load = os.getloadavg()[0]
            try:
                res = run_once(argv, args.timeout)
            except RuntimeError as exc:
                print(f"compare.py: {name} failed: {exc}", file=sys.stderr)
                errors[name] = str(exc)
                del runs[name]  # a simulator that failed once is not retried
                continue
            print(f"compare.py:   wall_s={res.get('wall_s'):.3f} spikes={res.get('spikes')}",
                  file=sys.stderr)
            res["loadavg_1min_before"] = load
            runs[name].append(res)

    results = {name: summarise(r) for name, r in runs.items()}
    if results.get("plastix") and not results["plastix"].get("version"):
        # `bench sim` output carries no version; ask the CLI.
        results["plastix"]["version"] = plastix_version(shlex.split(args.plastix_cmd))
    for name, err in errors.items():
        results[name] = {"error": err}
    order = ["plastix", *PEERS]
    results = {name: results[name] for name in order if name in results}

    def ratios_of(key):
        base = results.get("plastix", {}).get(key)
        peers = {name: results.get(name, {}).get(key) for name in PEERS}
        return {name: peer / base for name, peer in peers.items() if base and peer}

    ratios = ratios_of("wall_s")

    report = {
        "config": {
            "neurons": args.neurons,
            "row_length": args.row_length,
            "steps": args.steps,
            "threads": args.threads,
            "repeats": args.repeats,
            "network": json.loads((HERE / "network.json").read_text()),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        },
        "results": results,
        "ratios_peer_wall_s_over_plastix_wall_s": ratios,
        "ratios_of_min_wall_s": ratios_of("wall_s_min"),
    }
    print(markdown_table(results, ratios))
    print()
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    # Non-zero only when nothing at all could be measured.
    return 0 if runs and any(runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
