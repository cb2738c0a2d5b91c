"""Run by tests/test_topomap_mpi.py under ``mpiexec -n R``, and imported by it for the one-process reference.

``python mpi_topomap.py run OUT``: the topographic-map network of :func:`params` (Poisson stimulus, STDP with
presynaptic traces, distance-dependent rewiring scheduled every 1 ms) partitioned over ``MPI.COMM_WORLD``;
every rank writes what it gathered, and its own part's rows (``local.*``), to ``OUT/rank<r>.npz``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import plastix as px
from plastix.codegen.names import NAMES
from plastix.topomap import model
from plastix.topomap.run import _drive

STEPS = 1500


def params() -> model.TopomapParams:
    """The 16 x 16 map with elimination made likely (weak and strong synapses alike), so that 150 ms see
    eliminations as well as formations, and a fan-in cap (the in-degree of a rank's own targets)."""
    return model.TopomapParams(p_elim_dep=0.3, p_elim_pot=0.3, fan_in_cap=12)


def run(sim) -> dict:
    p = params()
    _drive(sim, p, STEPS * p.dt + 1.0)
    sim.record_spikes("source")
    sim.record_spikes("target")
    sim.run(STEPS // 2)
    sim.run(STEPS - STEPS // 2)
    out = {}
    for q in ("ff", "lat"):
        pre, post = sim.connectivity(q)
        w = sim.get(q, "w")
        order = np.lexsort((post, pre))   # one process and a partition list a row's synapses differently
        out[f"{q}.pre"], out[f"{q}.post"], out[f"{q}.w"] = pre[order], post[order], w[order]
        out[f"{q}.x"] = sim.get(q, "x")   # presynaptic traces (every rank: the whole source population)
    for pop in ("source", "target"):
        out[f"{pop}.t"], out[f"{pop}.i"] = sim.spikes(pop)
    out["target.v"] = sim.get("target", "v")
    for u in ("rewire_ff", "rewire_lat"):
        out[u] = np.array(list(sim.update_stats(u).values()))
    return out


def main(out: Path) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    sim = px.Simulation(model.build(params()), comm=comm, parallel=False)
    res = run(sim)
    local = sim.local
    for q in ("ff", "lat"):
        keys = NAMES.proj(local.network.projections[q])
        res[f"local.{q}.ind"] = local.state[keys.ind].copy()
        res[f"local.{q}.rowlen"] = local.state[keys.rowlen].copy()
        lo, hi = sim._span("target")
        res[f"local.{q}.lo"], res[f"local.{q}.hi"] = lo, hi
    np.savez(out / f"rank{comm.Get_rank()}.npz", **res)


if __name__ == "__main__":
    main(Path(sys.argv[2]))
