"""Run by tests/test_partition.py under ``mpiexec -n R``, and imported by it for the one-process references.

``python mpi_partition.py static OUT``: the static network of :func:`static_network` partitioned over
``MPI.COMM_WORLD``; every rank writes what it gathered to ``OUT/rank<r>.npz``.
``python mpi_partition.py rewire OUT``: the same for :func:`rewiring_network` with its updates run between
runs; every rank also writes its own part's rows (``local.*``) for the invariant checks.
``python mpi_partition.py noisy OUT``: :func:`noisy_network` (Poisson input), as ``static``.
``python mpi_partition.py grid OUT``: :func:`grid_network` (scheduled DEEP R, a rule on target ids).
``python mpi_partition.py offblock OUT``: a rule adding a target rank 1 does not own; each rank's error.
``python mpi_partition.py save OUT``: run, save (one file per rank), run on, load, run again.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import plastix as px
from plastix.model.network import Dense
from plastix.model.specs import WeightUpdateModel
from plastix.structural import deep_r_prune, deep_r_regrow, magnitude_prune

STEPS = 60
N_IN, N_EXC, N_INH = 13, 31, 9


def _stimulus(n: int, steps: int, seed: int) -> list[np.ndarray]:
    """Fixed spike times: each input neuron fires on ~15 % of the steps (whole-ms times)."""
    rng = np.random.default_rng(seed)
    return [np.flatnonzero(rng.random(steps) < 0.15).astype(np.float64) for _ in range(n)]


def static_network(precision: str = "float64", delay: int = 0) -> px.Network:
    """Spike-source array -> LIF excitatory / inhibitory populations, recurrent, sparse and dense, with
    delays ``delay`` + (0, 1, 3, 0) and exponential synapses: deterministic, every rank boundary crossed.
    With ``delay`` 2 the ranks exchange every 3 steps."""
    net = px.Network(dt=1.0, seed=11, precision=precision)
    net.add_population("input", N_IN, px.neurons.spike_source_array())
    lif = px.neurons.lif(v_thresh=-55.0, tau_m=10.0)
    net.add_population("exc", N_EXC, lif, init={"v": px.init.Uniform(-70.0, -56.0),
                                               "i_offset": px.init.Uniform(0.0, 0.4)})
    net.add_population("inh", N_INH, lif, init={"v": px.init.Uniform(-70.0, -60.0)})
    net.add_projection("in_exc", "input", "exc", connectivity=px.connect.FixedProbability(0.4),
                       init={"w": px.init.Uniform(1.0, 6.0)}, delay=delay)
    net.add_projection("exc_exc", "exc", "exc", connectivity=px.connect.FixedNumberPost(6),
                       init={"w": px.init.Normal(1.5, 0.5)}, delay=delay + 1,
                       postsynaptic=px.postsynaptic.exp_curr(tau=5.0))
    net.add_projection("exc_inh", "exc", "inh", connectivity=px.connect.FixedProbability(0.3),
                       init={"w": 2.0}, delay=delay + 3)
    net.add_projection("inh_exc", "inh", "exc", connectivity=Dense(),
                       init={"w": px.init.Uniform(-2.0, -0.5)}, delay=delay)
    return net


def _signed_on_pre(s):
    add_to_post(s.w)  # noqa: F821  (provided by code generation)


def _signed_dynamics(s, p):
    s.w = s.w - p.drift * s.sign   # every synapse drifts towards zero and past it: DEEP R prunes it


def signed_static() -> WeightUpdateModel:
    return WeightUpdateModel(name="signed_drift", params={"drift": 0.04}, vars={"w": 0.0, "sign": 1.0},
                             on_pre=_signed_on_pre, dynamics=_signed_dynamics)


def rewiring_network() -> px.Network:
    """The static network plus a DEEP R projection (prune: per synapse; regrow: a global phase spreading the
    removed count over the rows) and a magnitude-pruned one."""
    net = static_network()
    sign = np.where(np.arange(N_IN * 12) % 3 == 0, -1.0, 1.0)
    pre = np.repeat(np.arange(N_IN), 12)
    post = np.concatenate([np.random.default_rng(i).choice(N_EXC, 12, replace=False) for i in range(N_IN)])
    w = sign * np.random.default_rng(5).uniform(0.1, 2.0, pre.size)
    net.add_projection("deep", "input", "exc", connectivity=px.connect.FromArrays(pre, post),
                       weight_update=signed_static(), init={"w": w, "sign": sign}, row_stride=16)
    net.add_connectivity_update("prune", "deep", deep_r_prune(), var_refs={"weight": "w", "sign": "sign"},
                                group="prune")
    net.add_connectivity_update("regrow", "deep", deep_r_regrow(), var_refs={"weight": "w", "sign": "sign"},
                                row_var_refs={"removed": "prune.removed"}, group="regrow")
    net.add_connectivity_update("mag", "exc_exc", magnitude_prune(1.2), var_refs={"weight": "w"}, group="mag")
    return net


def _far_prune(row):
    for s in row.synapses:
        if abs(s.j - row.index) > row.num_post // 2:   # global target ids and population size on every rank
            s.remove()


def grid_network() -> px.Network:
    """:func:`rewiring_network` with DEEP R scheduled inside the time loop (prune and regrow every 5 steps)
    and a rule computing with target ids on the recurrent projection."""
    net = rewiring_network()
    for name in ("prune", "regrow"):
        net.connectivity_updates[name].every = 5
    net.add_connectivity_update("far", "exc_exc", px.ConnectivityUpdateModel(name="far_prune", row_update=_far_prune),
                                group="far")
    return net


def grid_run(sim) -> dict:
    drive(sim)
    sim.run(30)
    out = {"far.removed": np.array(sim.custom_update("far")["far"]["removed"])}
    out.update(synapses(sim, "exc_exc"))
    out["deep.count"] = np.array(sim.connectivity("deep")[0].size)
    out["regrow.calls"] = np.array(sim.update_stats("regrow")["added"])
    return out


def _to_neuron_zero(row):
    # neuron 0 of exc is rank 0's: on rank 1, an add only another rank can make (rank 0: rows already
    # reaching it fail quietly)
    ok = row.add(0, weight=1.0)  # noqa: F841


def offblock_network() -> px.Network:
    """:func:`rewiring_network` with a rule adding target 0 to every row of ``deep``, owns(0) untested."""
    net = rewiring_network()
    net.add_connectivity_update("zero", "deep", px.ConnectivityUpdateModel(
        name="to_zero", var_refs=("weight",), row_update=_to_neuron_zero), var_refs={"weight": "w"}, group="zero")
    return net


def drive(sim) -> None:
    sim.set_spike_times("input", _stimulus(N_IN, STEPS, 3))


def static_run(sim) -> dict:
    """Run the static network in three calls (30, 1, 29 steps: exchanges cut across calls) and collect."""
    drive(sim)
    for pop in ("input", "exc", "inh"):
        sim.record_spikes(pop)
    sim.record("exc", "v", every=2)
    for n in (30, 1, 29):
        sim.run(n)
    out = {}
    for pop in ("input", "exc", "inh"):
        t, i = sim.spikes(pop)
        out[f"{pop}.t"], out[f"{pop}.i"] = t, i
        out[f"{pop}.count"] = np.array(sim.spike_count(pop))
    out["exc.v.rec"] = sim.recorded("exc", "v")
    for pop, var in (("exc", "v"), ("exc", "refrac"), ("inh", "v")):
        out[f"{pop}.{var}"] = sim.get(pop, var)
    out["exc_exc.in_syn"] = sim.get("exc_exc", "in_syn")
    for proj in ("in_exc", "exc_exc", "exc_inh", "inh_exc"):
        out.update(synapses(sim, proj))
    return out


def noisy_network() -> px.Network:
    """The static network with a Poisson population driving the excitatory one: random numbers during the run."""
    net = static_network()
    net.add_population("noise", 17, px.neurons.poisson(), init={"rate": 150.0})
    net.add_projection("noise_exc", "noise", "exc", connectivity=px.connect.FixedProbability(0.5), init={"w": 3.0})
    return net


def noisy_run(sim) -> dict:
    sim.record_spikes("noise")
    return dict(static_run(sim), noise=sim.spikes("noise")[1])


def synapses(sim, proj: str, var: str = "w") -> dict:
    """(pre, post, value) of every synapse, sorted by (pre, post, value): the order within rows is the one
    thing a partition may change."""
    pre, post = sim.connectivity(proj)
    val = sim.get(proj, var)
    order = np.lexsort((val, post, pre))
    return {f"{proj}.pre": pre[order], f"{proj}.post": post[order], f"{proj}.{var}": val[order]}


def rewire_run(sim) -> dict:
    """Three rounds of 20 steps, DEEP R (prune, then regrow) and magnitude pruning; ``first.*`` is the
    projection after the first prune, before anything regrew."""
    drive(sim)
    sim.record_spikes("exc")
    out, counts = {}, []
    for k in range(3):
        sim.run(20)
        pruned = sim.custom_update("prune")["prune"]
        if k == 0:
            out.update({f"first.{key}": v for key, v in synapses(sim, "deep").items()})
        grown = sim.custom_update("regrow")["regrow"]
        mag = sim.custom_update("mag")["mag"]
        counts.append([pruned["removed"], grown["added"], grown["failed_adds"], mag["removed"],
                       int(sim.get("regrow", "total")[0]), int(sim.get("regrow", "unplaced")[0]),
                       sim.connectivity("deep")[0].size])
    out["counts"] = np.array(counts)
    out.update(synapses(sim, "exc_exc"))
    pre, post = sim.connectivity("deep")
    out.update({"deep.pre": pre, "deep.post": post, "deep.w": sim.get("deep", "w"),
                "deep.sign": sim.get("deep", "sign")})
    t, i = sim.spikes("exc")
    out["exc.t"], out["exc.i"] = t, i
    return out


def local_rows(sim, proj: str) -> dict:
    """This rank's part of ``proj``: its ragged rows (local target ids), its block and, for a projection
    whose rules sample free targets, whether the target bitmask matches the rows."""
    from plastix.codegen.names import NAMES
    from plastix.runtime.state import target_bits

    r = sim.local.ragged(proj, "w")
    lo, hi = sim.bounds["exc"][sim.rank], sim.bounds["exc"][sim.rank + 1]
    out = {f"local.{proj}.ind": r["ind"], f"local.{proj}.rowlen": r["row_length"], f"local.{proj}.w": r["w"],
           f"local.{proj}.lo": np.array(lo), f"local.{proj}.hi": np.array(hi)}
    if proj == "deep":
        out[f"local.{proj}.sign"] = sim.local.ragged(proj, "sign")["sign"]
        keys = NAMES.proj(sim.local.network.projections[proj])
        bits = target_bits(r["ind"], r["row_length"], int(hi - lo))
        out[f"local.{proj}.bits_ok"] = np.array(np.array_equal(bits, sim.local.state[keys.bits]))
    return out


def save_run(sim, folder: Path) -> dict:
    """Run, save, run on, load and run the same steps again; then an error on one rank alone: rank 1's
    targets of ``exc_inh`` get more synapses per row than its rows hold (``set_connectivity``)."""
    drive(sim)
    sim.record_spikes("exc")
    sim.run(25)
    sim.save(folder / "state.npz")
    sim.run(20)
    first = sim.get("exc", "v")
    sim.load(folder / "state.npz")
    sim.run(20)
    out = {"first.v": first, "again.v": sim.get("exc", "v"), "step": np.array(sim.step)}
    lo = int(sim.bounds["inh"][1])   # rank 1's first target
    pre, post = np.repeat(np.arange(N_EXC), 3 * N_INH), np.tile(np.arange(N_INH), 3 * N_EXC)   # duplicates too
    keep = post >= lo
    try:
        sim.set_connectivity("exc_inh", pre[keep], post[keep])
        out["error"] = np.array("none")
    except Exception as e:  # noqa: BLE001 -- the test reads what each rank got
        out["error"] = np.array(f"{type(e).__name__}: {e}")
    return out


def main(mode: str, out: Path) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    net = {"rewire": rewiring_network, "noisy": noisy_network, "grid": grid_network,
           "offblock": offblock_network}.get(mode, static_network)()
    sim = px.Simulation(net, comm=comm, parallel=False)
    if mode == "static":
        res = static_run(sim)
        delayed = px.Simulation(static_network(delay=2), comm=comm, parallel=False)
        res.update({f"d2.{k}": v for k, v in static_run(delayed).items()})
        res["d2.exchanges"] = np.array(delayed.timings()["exchanges"])
    elif mode == "noisy":
        res = noisy_run(sim)
    elif mode == "grid":
        res = grid_run(sim)
    elif mode == "offblock":
        try:
            sim.custom_update("zero")
            res = {"error": "none"}
        except Exception as e:   # noqa: BLE001 -- the test reads which error each rank raised
            res = {"error": f"{type(e).__name__}: {e}"}
    elif mode == "rewire":
        res = rewire_run(sim)
        res.update(local_rows(sim, "deep"))
        res.update(local_rows(sim, "exc_exc"))
    else:
        res = save_run(sim, out)
    res["timings.bytes"] = np.array(sim.timings()["bytes_received"])
    np.savez(out / f"rank{comm.Get_rank()}.npz", ranks=comm.Get_size(), **res)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
