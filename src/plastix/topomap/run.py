"""Running the topographic-map model: recording connectivity at intervals, the analyses over time,
a time breakdown, and the results as JSON and figures.

Wall times and the real-time factor exclude compilation (numba compiles the kernels during the first
steps, or loads them from its cache); ``compile_s`` reports it apart.

With ``comm`` (an mpi4py communicator; ``mpiexec -n R plastix topomap``) the network is partitioned over
the ranks (``Simulation(net, comm=comm)``, docs/mpi.md): every rank runs the same calls, the analyses see
the gathered connectivity (the same on every rank), and only rank 0 writes results and figures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..compile_clock import Stopwatch
from ..runtime import Simulation
from . import analysis, model


def _drive(sim: Simulation, params: model.TopomapParams, duration_ms: float) -> None:
    if params.correlated:
        rows, cols = model.stimulus_schedule(params, duration_ms)
        sim.set_egp("source", "stim_row", rows)
        sim.set_egp("source", "stim_col", cols)


def _snapshot(sim: Simulation) -> dict:
    pre, post = sim.connectivity("ff")
    lpre, lpost = sim.connectivity("lat")
    return {"pre": pre, "post": post, "w": sim.get("ff", "w").astype(np.float64), "lat": (lpre, lpost)}


def _simulation(net, backend: str, comm) -> Simulation:
    return Simulation(net, backend=backend, comm=comm)


def _ablation_sim(params, backend, steps, comm=None, **parts) -> Simulation:
    sim = _simulation(model.build(params, **parts), backend, comm)
    _drive(sim, params, steps * params.dt + 1.0)
    sim.run(1)  # compile / load from the cache
    return sim


def time_breakdown(params: model.TopomapParams, steps: int, backend: str, repeats: int = 3, comm=None) -> dict:
    """Shares of simulation time by ablation: the same network with everything, without rewiring, without
    STDP as well, and without projections; the differences are each part's cost.  Each variant runs
    ``steps`` steps ``repeats`` times, the variants interleaved (the machine's load drifts), and the median
    time of each is used; the variants compile before the timed runs."""
    variants = {"full": {}, "no_rewiring": {"rewiring": False},
                "static": {"rewiring": False, "plasticity": False}, "neurons_only": {"projections": False}}
    sims = {k: _ablation_sim(params, backend, steps * repeats, comm, **kw) for k, kw in variants.items()}
    times = {k: [] for k in sims}
    for _ in range(repeats):
        for k, sim in sims.items():
            sw = Stopwatch()
            sim.run(steps)
            times[k].append(sw.run_s)
    t = {k: float(np.median(v)) for k, v in times.items()}
    parts = {"neuron_update": t["neurons_only"], "propagation": max(0.0, t["static"] - t["neurons_only"]),
             "stdp": max(0.0, t["no_rewiring"] - t["static"]), "rewiring": max(0.0, t["full"] - t["no_rewiring"])}
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items()}


def run(params: model.TopomapParams, seconds: float, *, backend: str = "auto", record_every_s: float = 1.0,
        out: Path | None = None, progress: bool = True, breakdown_steps: int | None = None, comm=None) -> dict:
    """Simulate ``seconds`` of model time; returns the results dict (also written to ``out``, by rank 0
    under MPI).  ``breakdown_steps`` (default None: no breakdown) adds ``time_breakdown``, measured by
    ablation runs of that many steps (see :func:`time_breakdown`).  ``comm``: partition the network over
    its ranks (call on every rank); the result then also holds ``ranks`` > 1 and rank 0's ``compute_s``,
    ``exchange_s`` and ``bytes_received_per_step``."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if record_every_s <= 0:
        raise ValueError(f"record_every_s must be > 0, got {record_every_s}")
    whole = Stopwatch()
    side = params.side
    shape = (side, side)
    sim = _simulation(model.build(params), backend, comm)
    rank = 0 if comm is None else comm.Get_rank()
    steps = int(round(seconds * 1000.0 / params.dt))
    every = max(1, int(round(record_every_s * 1000.0 / params.dt)))
    _drive(sim, params, steps * params.dt + 1.0)
    sim.build()
    t_analysis = 0.0
    ta = Stopwatch()
    first = _snapshot(sim)
    initial = analysis.summarise(first["pre"], first["post"], first["w"], shape, shape)
    initial_maps = analysis.displacement_maps(first["pre"], first["post"], first["w"], shape, shape, radius=8)
    history = [{"t_s": 0.0, **initial, "formed": 0, "eliminated": 0}]
    state = {"prev": first, "formed_hist": [], "elim_hist": []}
    bins = analysis.distance_bins(shape, 1.0)
    t_analysis += ta.run_s

    def record(s: Simulation) -> None:
        nonlocal t_analysis
        ta = Stopwatch()
        snap = _snapshot(s)
        fe = analysis.formation_elimination((state["prev"]["pre"], state["prev"]["post"]), (snap["pre"], snap["post"]),
                                            shape, shape, bins)
        state["formed_hist"].append(fe.formed_hist)
        state["elim_hist"].append(fe.eliminated_hist)
        summary = analysis.summarise(snap["pre"], snap["post"], snap["w"], shape, shape)
        history.append({"t_s": s.t / 1000.0, **summary, "formed": int(fe.n_formed), "eliminated": int(fe.n_eliminated),
                        "lateral_synapses": int(len(snap["lat"][0]))})
        state["prev"] = snap
        t_analysis += ta.run_s

    t_before = t_analysis
    run_clock = Stopwatch()
    sim.run(steps, callback=record, every=every, progress=progress)
    wall = run_clock.run_s  # the first steps compile the kernels (or load them): not counted
    sim_wall = max(wall - (t_analysis - t_before), 1e-9)  # the run without the analyses done in between
    last = state["prev"]
    final = analysis.summarise(last["pre"], last["post"], last["w"], shape, shape)
    result = {
        "scale": params.scale, "neurons_per_layer": side * side, "model_seconds": seconds,
        "ranks": 1 if comm is None else comm.Get_size(),
        "input": "correlated" if params.correlated else "uncorrelated", "backend": sim.backend.name,
        "threads": sim.backend.thread_count, "wall_s": wall, "simulation_wall_s": sim_wall,
        "realtime_factor": seconds / sim_wall, "compile_s": None,  # set below: all of this call's compilation
        "run_compile_s": run_clock.compile_s,
        "synapses_initial": initial["n_synapses"], "synapses_final": final["n_synapses"],
        "rf_spread_initial": initial["rf_spread"], "rf_spread_final": final["rf_spread"],
        "ad_initial": initial["ad"], "ad_final": final["ad"],
        "rewiring": {u: sim.update_stats(u) for u in ("rewire_ff", "rewire_lat")},
        "spikes": {p: sim.spike_count(p) for p in ("source", "target")},
        "history": history, "params": params.to_dict(),
    }
    if comm is not None:   # rank 0's time in its engine and in the spike exchange; bytes it received per step
        tm = sim.timings()
        result.update(compute_s=tm["compute_s"], exchange_s=tm["exchange_s"],
                      bytes_received_per_step=tm["bytes_received_per_step"])
    if breakdown_steps:
        bd = Stopwatch()
        shares = time_breakdown(params, breakdown_steps, backend, comm=comm)
        breakdown_compile_s = bd.compile_s
        sim_share = sim_wall / wall
        result["time_breakdown"] = {**{k: v * sim_share for k, v in shares.items()}, "analysis": t_analysis / wall,
                                    "method": f"ablation, median of 3 runs of {breakdown_steps} steps each "
                                              "(shares of wall time)", "compile_s": breakdown_compile_s}
    result["compile_s"] = whole.compile_s  # the main run's and the ablation variants' compilation
    if out is not None and rank == 0:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=2, allow_nan=False, default=_jsonable))
        from . import plots

        final_maps = analysis.displacement_maps(last["pre"], last["post"], last["w"], shape, shape, radius=8)
        plots.plot_maps(initial_maps, final_maps, out / "maps.png", g_max=params.g_max)
        plots.plot_time_series(history, out / "time_series.png")
        if state["formed_hist"]:
            plots.plot_formation_elimination(np.array(state["formed_hist"]), np.array(state["elim_hist"]), bins,
                                             out / "formation_elimination.png",
                                             t_s=[h["t_s"] for h in history[1:]])
        centres = analysis.rf_centres(last["pre"], last["post"], last["w"], shape, shape)
        plots.plot_rf_map(centres, shape, out / "rf_map.png")
    return result


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
