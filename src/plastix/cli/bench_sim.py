"""``plastix bench sim``: event-driven simulation speed on the bench LIF network."""
from __future__ import annotations

import time

from .arguments import MAX_NEURONS, UsageError, cpu_backend_options, integer, seed, threads
from ..compile_clock import Stopwatch


def add_arguments(p) -> None:
    p.add_argument("--neurons", type=integer(1, MAX_NEURONS), default=10_000,
                   help="number of LIF neurons (default 10000)")
    p.add_argument("--row-length", type=integer(1), default=1_000,
                   help="synapses per presynaptic neuron (default 1000)")
    p.add_argument("--steps", type=integer(1), default=1_000, help="1 ms time steps to simulate (default 1000)")
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--parallel", choices=("auto", "on", "off"), default="auto", help="CPU: multi-threaded kernels")
    p.add_argument("--threads", type=threads, default=None, help="CPU threads for parallel kernels")
    p.add_argument("--reference", choices=("numpy",), default=None,
                   help="also run a plain-numpy implementation in this process and compare")
    p.add_argument("--deterministic", action="store_true", help="no current noise (exact spike comparison)")
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--repeats", type=integer(1), default=1, help="timed runs (best is reported)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict:
    from ..bench import lif_network
    from ..runtime import Simulation

    kwargs = cpu_backend_options(args)
    if args.row_length > args.neurons:
        raise UsageError(f"--row-length ({args.row_length}) must not exceed --neurons ({args.neurons}): "
                         "each neuron targets distinct neurons")
    whole = Stopwatch()  # the command's compilation, wherever it happens
    net, values = lif_network.build(args.neurons, args.row_length, args.seed, args.deterministic)
    sim = Simulation(net, backend=args.backend, **kwargs)
    setup = Stopwatch()
    sim.build()
    sim.run(1)  # compile (or load from the cache) outside the timed region
    warmup_s = setup.total_s
    best = None
    for _ in range(args.repeats):
        sim.reset()
        sw = Stopwatch()
        sim.run(args.steps)
        wall = sw.run_s  # without compilation (none is expected after the warm-up)
        best = wall if best is None else min(best, wall)
    spikes = sim.spike_count("lif")
    n_syn = len(values["pre"])
    events = spikes * args.row_length
    out = {
        "neurons": args.neurons, "synapses": n_syn, "steps": args.steps, "backend": sim.backend.name,
        "threads": sim.backend.thread_count, "parallel": bool(sim.backend.parallel),
        "deterministic": bool(args.deterministic), "wall_s": best, "steps_per_s": args.steps / best,
        "spikes": spikes, "firing_fraction_per_step": spikes / (args.neurons * args.steps),
        "synaptic_events_per_s": events / best, "repeats": args.repeats,
        # compile_s: numba compiling or loading its cache; compile_or_cache_load_s: the wall time of
        # building the simulation (state, code generation) and its untimed first step, compile_s included
        "compile_s": whole.compile_s, "compile_or_cache_load_s": warmup_s,
    }
    if args.reference == "numpy":
        import numpy as np

        from ..bench import lif_numpy

        if not args.deterministic:
            out["reference_note"] = "spike equality is only asserted with --deterministic (noise differs)"
        ref_steps: list = []  # (step, spiking neurons) of the reference; appending costs next to nothing
        t0 = time.perf_counter()
        ref_spikes, _ = lif_numpy.simulate(values, args.neurons, args.steps,
                                           on_spikes=lambda s, idx: ref_steps.append((s, idx)))
        out["numpy_wall_s"] = time.perf_counter() - t0
        out["numpy_spikes"] = ref_spikes
        out["speedup_vs_numpy"] = out["numpy_wall_s"] / best
        if args.deterministic:
            sim.reset()
            sim.record_spikes("lif")
            sim.run(args.steps)
            t, i = sim.spikes("lif")
            got = set(zip(np.rint(t / net.dt).astype(np.int64).tolist(), i.astype(np.int64).tolist()))
            want = {(s, int(j)) for s, idx in ref_steps for j in idx}
            out["spikes_match"] = got == want
    return out
