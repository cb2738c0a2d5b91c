"""Strong scaling of ``plastix bench sim`` (the 10k x 1k LIF network, 1,000 steps) from 1 to 2 MPI ranks with the
partitioned simulation, with each run's time split into the engine (compute) and the spike exchange.

Per repeat, in turn on the same machine (so each repeat's ratios compare runs under the same load):

* ``one``:  ``plastix bench sim`` in one process with 2 Numba threads (the reference);
* ``one1``: one process with 1 thread (what one rank's share of the cores does alone);
* ``mpi2``: ``mpiexec -n 2 plastix bench sim --measure-wait``, one Numba thread per rank
  (plastix.parallel.share_cores): rank 0's seconds in its engine, waiting for the other rank before each
  exchange, and in the exchange itself;
* ``mpi2_nowait``: the same without the barrier (what a user runs).

Then the exchange alone: one ``SpikeExchange`` of the measured spikes per step between 2 ranks, repeated,
without simulation (transfer only).

    .venv/bin/python benchmarks/partition_scaling.py --repeats 3 --out benchmarks/results/partition_scaling_cpu2.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent

EXCHANGE = """
import sys, time
import numpy as np
from plastix.parallel import world
from plastix.parallel.exchange import SpikeExchange
comm = world()
per_rank = int(sys.argv[1]) // comm.Get_size()
lo = comm.Get_rank() * 5000
ex = SpikeExchange(comm, 1)
spikes = [(np.zeros(per_rank, np.int64), lo + np.arange(per_rank))]
for _ in range(50):
    ex.exchange(spikes, 1)
comm.Barrier()
t = time.perf_counter()
for _ in range(int(sys.argv[2])):
    ex.exchange(spikes, 1)
dt = (time.perf_counter() - t) / int(sys.argv[2])
if comm.Get_rank() == 0:
    print(dt)
"""


def _bench(cmd, args, threads: int | None) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_NUM_THREADS", None)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    res = subprocess.run(cmd + ["bench", "sim", "--json", *args], env=env, check=True, capture_output=True, text=True)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, res.stdout   # under MPI rank 0 alone prints
    out = json.loads(lines[0])
    row = {k: out[k] for k in ("wall_s", "spikes", "ranks", "threads", "parallel")}
    row["load_before"] = load
    for k in ("compute_s", "exchange_s", "wait_s", "bytes_received_per_step"):
        if k in out:
            row[k] = out[k]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--deterministic", action="store_true", help="no current noise (spike counts then equal)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    plastix = [str(BIN / "plastix")]
    mpiexec = [str(BIN / "mpiexec"), "-n", "2", str(BIN / "plastix")]
    common = ["--steps", str(args.steps), "--repeats", "3"] + (["--deterministic"] if args.deterministic else [])
    _bench(plastix, common, None)          # compile once (the cache serves every later run)
    _bench(mpiexec, common, None)
    runs = []
    for _ in range(args.repeats):
        rep = {"one": _bench(plastix, common, 2), "one1": _bench(plastix, common, 1),
               "mpi2": _bench(mpiexec, common + ["--measure-wait"], None),
               "mpi2_nowait": _bench(mpiexec, common, None)}
        rep["speedup_mpi2_vs_one"] = rep["one"]["wall_s"] / rep["mpi2_nowait"]["wall_s"]
        rep["speedup_mpi2_vs_one1"] = rep["one1"]["wall_s"] / rep["mpi2_nowait"]["wall_s"]
        m = rep["mpi2"]
        rep["exchange_share_mpi2"] = (m["exchange_s"] + m["wait_s"]) / m["wall_s"]
        runs.append(rep)
        print(json.dumps(rep), flush=True)
    spikes_per_step = runs[0]["one"]["spikes"] / args.steps
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "exchange.py"
        script.write_text(EXCHANGE)
        out = subprocess.run([str(BIN / "mpiexec"), "-n", "2", sys.executable, str(script),
                              str(int(round(spikes_per_step))), "5000"], check=True, capture_output=True, text=True)
        exchange_alone_s = float(out.stdout.strip())
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("speedup_mpi2_vs_one", "speedup_mpi2_vs_one1", "exchange_share_mpi2")}
    for name in ("one", "one1", "mpi2", "mpi2_nowait"):
        med[f"{name}_wall_s"] = statistics.median(r[name]["wall_s"] for r in runs)
    for k in ("compute_s", "wait_s", "exchange_s", "bytes_received_per_step"):
        med[f"mpi2_{k}"] = statistics.median(r["mpi2"][k] for r in runs)
    summary = {"command": f"plastix bench sim --steps {args.steps} --repeats 3"
                          + (" --deterministic" if args.deterministic else ""),
               "repeats": runs, "median": med, "spikes_per_step": spikes_per_step,
               "exchange_alone_s_per_step_2_ranks": exchange_alone_s, "cpu_count": os.cpu_count()}
    print(json.dumps({"median": med, "exchange_alone_s_per_step_2_ranks": exchange_alone_s}, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
