"""``plastix bench sim``: event-driven simulation speed on the bench LIF network.

Started by an MPI launcher (``mpirun -n R plastix bench sim ...``) it simulates the network partitioned over the
R ranks (``Simulation(net, comm=...)``, docs/mpi.md); only rank 0 prints, and the summary reports ``ranks``,
rank 0's seconds in the engine and in spike exchanges, and the bytes each rank received per step."""
from __future__ import annotations

import time

from .arguments import MAX_NEURONS, UsageError, cpu_backend_options, integer, on_ranks, seed, threads
from ..compile_clock import Stopwatch

#: Largest ``--batch-size``: ``Simulation`` accepts up to 65535 elements (CUDA's grid z dimension).
MAX_BATCH = 65535


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
    p.add_argument("--batch-size", type=integer(1, MAX_BATCH), default=1,
                   help="independent copies of the network's dynamics run side by side, each with its own noise "
                        "stream; synaptic events/s are summed over the batch (default 1: the unbatched engine; "
                        "CPU: the elements run in parallel, so --parallel does not apply)")
    p.add_argument("--measure-wait", action="store_true",
                   help="under MPI: a barrier before each spike exchange, so that the summary splits exchange time "
                        "into waiting for the slowest rank and the transfer (one more collective per exchange)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> dict | None:
    return on_ranks(args, _bench)


def _bench(args, comm) -> dict:
    from ..bench import lif_network
    from ..runtime import Simulation

    kwargs = cpu_backend_options(args)
    batch = args.batch_size
    if batch > 1 and args.parallel != "auto":
        raise UsageError(f"--parallel {args.parallel} applies to --batch-size 1 only: a batch runs its elements in "
                         "parallel, each element's time loop on one thread (use --threads to set the threads)")
    if args.row_length > args.neurons:
        raise UsageError(f"--row-length ({args.row_length}) must not exceed --neurons ({args.neurons}): "
                         "each neuron targets distinct neurons")
    if comm is not None and batch > 1:
        raise UsageError(f"--batch-size {batch} under MPI: a partitioned simulation has batch size 1")
    if args.measure_wait and comm is None:
        raise UsageError("--measure-wait applies to runs under an MPI launcher only")
    whole = Stopwatch()  # the command's compilation, wherever it happens
    net, values = lif_network.build(args.neurons, args.row_length, args.seed, args.deterministic)
    mpi = {} if comm is None else {"comm": comm, "measure_wait": args.measure_wait}
    sim = Simulation(net, backend=args.backend, batch_size=batch, **kwargs, **mpi)
    setup = Stopwatch()
    sim.build()
    sim.run(1)  # compile (or load from the cache) outside the timed region
    warmup_s = setup.total_s
    best = best_split = None
    for _ in range(args.repeats):
        sim.reset()
        before = sim.timings() if comm is not None else None
        sw = Stopwatch()
        sim.run(args.steps)
        wall = sw.run_s  # without compilation (none is expected after the warm-up)
        if best is None or wall < best:
            best = wall
            if comm is not None:
                after = sim.timings()
                best_split = {k: after[k] - before[k] for k in ("compute_s", "exchange_s", "wait_s", "bytes_received")}
    per_element = sim.spike_count("lif")  # an int, or one count per batch element
    spikes = int(per_element.sum()) if batch > 1 else per_element
    n_syn = len(values["pre"])
    events = spikes * args.row_length
    out = {
        "neurons": args.neurons, "synapses": n_syn, "steps": args.steps, "backend": sim.backend.name,
        "ranks": 1 if comm is None else comm.Get_size(),
        "threads": sim.backend.thread_count, "parallel": bool(sim.backend.parallel),
        "deterministic": bool(args.deterministic), "wall_s": best, "steps_per_s": args.steps / best,
        "spikes": spikes, "firing_fraction_per_step": spikes / (args.neurons * args.steps * batch),
        "synaptic_events_per_s": events / best, "repeats": args.repeats,
        # compile_s: numba compiling or loading its cache; compile_or_cache_load_s: the wall time of
        # building the simulation (state, code generation) and its untimed first step, compile_s included
        "compile_s": whole.compile_s, "compile_or_cache_load_s": warmup_s, "batch_size": batch,
    }
    if comm is not None:   # rank 0's split of the best repeat; bytes: what each rank received per step
        out.update(compute_s=best_split["compute_s"], exchange_s=best_split["exchange_s"],
                   bytes_received_per_step=best_split["bytes_received"] / args.steps)
        if args.measure_wait:
            out["wait_s"] = best_split["wait_s"]
    if batch > 1:
        out.update(_batch_fields(sim, per_element))
        if args.reference == "numpy":
            out.update(_check_batch(sim, net, values, args, best, per_element))
        return out
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


def _batch_fields(sim, per_element) -> dict:
    """Spikes per element and the host state's memory: per batch element (neuron state, spike buffers)
    and shared (connectivity, weights, parameters)."""
    state, duplicated = sim.state, sim.plan.duplicated
    element_bytes = sum(a.nbytes for k, a in state.items() if k in duplicated) // sim.batch_size
    shared_bytes = sum(a.nbytes for k, a in state.items() if k not in duplicated and hasattr(a, "nbytes"))
    return {"spikes_per_element": [int(c) for c in per_element], "state_bytes_per_element": element_bytes,
            "state_bytes_shared": shared_bytes}


def _check_batch(sim, net, values, args, best: float, per_element) -> dict:
    """``--reference numpy`` with a batch: every element's spike train against plain numpy.  Deterministic:
    all elements are the one noiseless network, so one numpy run is every element's reference; with noise,
    element b's reference draws from the seed ``host_batch_seed(seed, b)``, as the kernels do."""
    import numpy as np

    from ..bench import lif_network, lif_numpy
    from ..kernels.rng import host_batch_seed

    batch = sim.batch_size
    runs = 1 if args.deterministic else batch
    stream = lif_network.noise_stream(net)
    refs, ref_spikes = [], 0
    t0 = time.perf_counter()
    for b in range(runs):
        noise = None if args.deterministic else lif_numpy.Noise(host_batch_seed(args.seed, b), stream)
        steps: list = []  # (step, spiking neurons)
        n, _ = lif_numpy.simulate(values, args.neurons, args.steps, noise=noise,
                                  on_spikes=lambda s, idx, acc=steps: acc.append((s, idx)))
        refs.append({(s, int(j)) for s, idx in steps for j in idx})
        ref_spikes += n
    numpy_wall_s = time.perf_counter() - t0
    sim.reset()
    # the replay repeats the timed run, whose counts size the buffer (with headroom: a replay that differed
    # is reported as a mismatch, not a capacity error); the default, every neuron every step, is GBs at B = 32
    sim.record_spikes("lif", max_spikes=2 * int(max(per_element)) + args.neurons)
    sim.run(args.steps)
    mismatched = []
    for b in range(batch):
        t, i = sim.spikes("lif", b)
        got = set(zip(np.rint(t / net.dt).astype(np.int64).tolist(), i.astype(np.int64).tolist()))
        if got != refs[0 if args.deterministic else b]:
            mismatched.append(b)
    return {
        "numpy_wall_s": numpy_wall_s, "numpy_runs": runs,
        "numpy_spikes": ref_spikes * (batch if args.deterministic else 1),
        # numpy's time per element times the batch, against the batch's time
        "speedup_vs_numpy": numpy_wall_s / runs * batch / best,
        "spikes_match": not mismatched, "mismatched_elements": mismatched,
    }
