"""Strong scaling of ``plastix train`` (spoken-digit defaults, one epoch) or ``plastix sdsnn`` (``--command
sdsnn``: digits, sparse mode, one epoch) from 1 to 2 MPI ranks, with each epoch's time split into
communication (gradient reductions and checks) and the rest.

Per repeat, in turn on the same machine (so each repeat's ratios compare runs under the same load):

* ``one``:  ``plastix train --epochs 1`` in one process with 2 Numba threads (the reference);
* ``mpi2``: ``mpiexec -n 2 plastix train --epochs 1``, one Numba thread per rank (plastix.parallel.share_cores);
* ``one1``: one process with 1 thread (what one rank's share of the cores does alone).

Then ``sum_to_all`` alone: the time of one reduction of the gradient buffer's size between 2 ranks,
without training (transfer only, no waiting for a slower rank).

    .venv/bin/python benchmarks/mpi_scaling.py --repeats 3 --out benchmarks/results/mpi_scaling_cpu2.json
    .venv/bin/python benchmarks/mpi_scaling.py --command sdsnn --repeats 3 \
        --out benchmarks/results/mpi_scaling_sdsnn_cpu2.json

``epoch_s`` is the summary's: for ``train`` the epoch without compilation, for ``sdsnn`` its training
batches without the structure steps and compilation (``epoch_wall_s``: the whole epoch, evaluation and
structure steps included, from results.json).
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

REDUCE = """
import sys, time
import numpy as np
from plastix.parallel import sum_to_all, world
comm = world()
grads = np.ones(int(sys.argv[1]) // 4, np.float32)
for _ in range(20):
    sum_to_all(comm, grads)
comm.Barrier()
t = time.perf_counter()
for _ in range(int(sys.argv[2])):
    sum_to_all(comm, grads)
dt = (time.perf_counter() - t) / int(sys.argv[2])
if comm.Get_rank() == 0:
    print(dt)
"""


#: The timed command's arguments after ``plastix``.
COMMANDS = {"train": ["train", "--epochs", "1"],
            "sdsnn": ["sdsnn", "--dataset", "digits", "--mode", "sparse", "--epochs", "1"]}


def _train(cmd, out: Path, threads: int | None, what: str = "train") -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_NUM_THREADS", None)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    res = subprocess.run(cmd + COMMANDS[what] + ["--json", "--out", str(out)], env=env, check=True,
                         capture_output=True, text=True)
    summary = json.loads(res.stdout)
    row = {"epoch_s": summary["epoch_s"][0], "test_accuracy": summary["test_accuracy"], "ranks": summary["ranks"],
           "load_before": load}
    if what == "sdsnn":
        row["epoch_wall_s"] = json.loads((out / "results.json").read_text())["epochs"][0]["wall_s"]
        row["compression"] = summary["compression"]
    if summary["ranks"] > 1:
        row.update(comm_s=summary["epoch_comm_s"][0], compute_s=summary["epoch_compute_s"][0],
                   reduce_bytes_per_batch=summary["reduce_bytes_per_batch"])
        if what == "sdsnn":
            row["probe_reduce_bytes_per_batch"] = summary["probe_reduce_bytes_per_batch"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--command", choices=sorted(COMMANDS), default="train")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    plastix, mpiexec = [str(BIN / "plastix")], [str(BIN / "mpiexec"), "-n", "2", str(BIN / "plastix")]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        what = args.command
        _train(plastix, tmp / "warm", None, what)   # compile once (the cache serves every later run)
        for r in range(args.repeats):
            rep = {"one": _train(plastix, tmp / f"one{r}", 2, what),
                   "mpi2": _train(mpiexec, tmp / f"mpi{r}", None, what),
                   "one1": _train(plastix, tmp / f"single{r}", 1, what)}
            rep["speedup_mpi2_vs_one"] = rep["one"]["epoch_s"] / rep["mpi2"]["epoch_s"]
            rep["comm_share_mpi2"] = rep["mpi2"]["comm_s"] / rep["mpi2"]["epoch_s"]
            m2 = rep["mpi2"]
            rep["comm_of_comm_compute_mpi2"] = m2["comm_s"] / (m2["comm_s"] + m2["compute_s"])
            runs.append(rep)
            print(json.dumps(rep), flush=True)
        nbytes = runs[0]["mpi2"]["reduce_bytes_per_batch"]
        (tmp / "reduce.py").write_text(REDUCE)
        out = subprocess.run([str(BIN / "mpiexec"), "-n", "2", sys.executable, str(tmp / "reduce.py"), str(nbytes),
                              "2000"], check=True, capture_output=True, text=True)
        reduce_s = float(out.stdout.strip())
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("speedup_mpi2_vs_one", "comm_share_mpi2", "comm_of_comm_compute_mpi2")}
    for name in ("one", "mpi2", "one1"):
        med[f"{name}_epoch_s"] = statistics.median(r[name]["epoch_s"] for r in runs)
        if what == "sdsnn":
            med[f"{name}_epoch_wall_s"] = statistics.median(r[name]["epoch_wall_s"] for r in runs)
    med["mpi2_comm_s"] = statistics.median(r["mpi2"]["comm_s"] for r in runs)
    summary = {"command": "plastix " + " ".join(COMMANDS[what]), "repeats": runs, "median": med,
               "reduce_bytes_per_batch": nbytes, "sum_to_all_s_per_batch_2_ranks": reduce_s,
               "cpu_count": os.cpu_count()}
    print(json.dumps({"median": med, "sum_to_all_s_per_batch_2_ranks": reduce_s}, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
