"""``plastix bench rewire``: structural-plasticity speed (SET-style rewire of a large projection)."""
from __future__ import annotations

import time

import numpy as np

from .arguments import MAX_NEURONS, UsageError, cpu_backend_options, integer, number, seed, threads
from ..compile_clock import Stopwatch


def add_arguments(p) -> None:
    p.add_argument("--pre", type=integer(1, MAX_NEURONS), default=10_000,
                   help="presynaptic (= postsynaptic) neurons (default 10000)")
    p.add_argument("--row-length", type=integer(1), default=1_000, help="synapses per row (default 1000)")
    p.add_argument("--fraction", type=number(0, 1, low_open=True), default=0.1,
                   help="fraction of each row replaced (default 0.1)")
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--parallel", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--threads", type=threads, default=None)
    p.add_argument("--reference", choices=("numpy",), default=None)
    p.add_argument("--repeats", type=integer(1), default=5, help="timed rewires (median reported)")
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--json", action="store_true")


def run(args) -> dict:
    from ..bench import rewire
    from ..runtime import Simulation

    kwargs = cpu_backend_options(args)
    if args.row_length > args.pre:
        raise UsageError(f"--row-length ({args.row_length}) must not exceed --pre ({args.pre}): "
                         "a row's targets are distinct postsynaptic neurons")
    whole = Stopwatch()  # the command's compilation, wherever it happens
    net = rewire.build(args.pre, args.row_length, args.fraction, args.seed)
    sim = Simulation(net, backend=args.backend, **kwargs)
    setup = Stopwatch()
    sim.build()
    sim.custom_update("set")  # compiles (or loads) the kernel; not timed
    warmup_s = setup.total_s
    sim.reset()  # the checked rewire starts from the initial state, whose trace encodes original slots
    before = sim.ragged("proj", "w")
    before["trace"] = sim.ragged("proj", "trace")["trace"]
    stats = sim.custom_update("set")
    after = sim.ragged("proj", "w")
    after["trace"] = sim.ragged("proj", "trace")["trace"]
    check = rewire.check_invariants(before, after, args.fraction, args.pre)
    times, cpu = [], []
    for _ in range(args.repeats):
        c0 = time.process_time()
        sw = Stopwatch()
        sim.custom_update("set")
        times.append(sw.run_s)  # without compilation (none is expected after the warm-up)
        cpu.append(time.process_time() - c0)
    wall = float(np.median(times))
    out = {"synapses": int(after["row_length"].sum()), "replaced": stats["set"]["removed"],
           "wall_ms_per_rewire": wall * 1e3, "wall_ms_min": min(times) * 1e3,
           # CPU time of all threads: on a shared machine it moves less with other load than wall time
           "cpu_ms_per_rewire": float(np.median(cpu)) * 1e3, "row_ms": stats["set"]["row_s"] * 1e3,
           "backend": sim.backend.name, "threads": sim.backend.thread_count, "parallel": bool(sim.backend.parallel),
           "invariants_ok": check["invariants_ok"], "problems": check["problems"], "repeats": args.repeats,
           # compile_s: numba compiling or loading its cache; compile_or_cache_load_s: the wall time of
           # building the simulation and its untimed first rewire, compile_s included
           "compile_s": whole.compile_s, "compile_or_cache_load_s": warmup_s}
    if args.reference == "numpy":
        rng = np.random.default_rng(args.seed)
        ref_times = []
        for _ in range(max(1, min(3, args.repeats))):
            t0 = time.perf_counter()
            ind2, w2, tr2 = rewire.numpy_rewire(before["ind"], before["w"], before["trace"], args.fraction, args.pre,
                                                rng)
            ref_times.append(time.perf_counter() - t0)
        out["numpy_wall_ms"] = float(np.median(ref_times)) * 1e3
        out["speedup_vs_numpy"] = out["numpy_wall_ms"] / out["wall_ms_per_rewire"]
    return out
