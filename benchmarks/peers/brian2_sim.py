#!/usr/bin/env python3
"""Brian2 (C++ standalone) run of the network that `plastix bench sim` simulates.

The network (benchmarks/peers/network.json) is a recurrent current-based LIF
network with delta synapses and a fixed out-degree. The Brian2 version is
written the way a Brian2 user would: a linear membrane equation integrated
with method='exact' (the same update as plastix's LIF), and synapses that make
the postsynaptic voltage jump.

Two details keep the dynamics equal to plastix's (see README.md):
* Brian2 applies a spike's jump in the step it was emitted, after that step's
  membrane update, so the next update decays it once by alpha before the
  threshold sees it. plastix adds (1 - alpha) R w undecayed in the next step,
  so the jump here is (1 - alpha) R w / alpha.
* plastix clamps a neuron for tau_refrac/dt steps *after* its spike step;
  Brian2's `refractory` counts from the spike step itself, hence tau_refrac + dt.

Run with the interpreter of the Brian2 venv made by install.sh, e.g.
    .venvs/brian2/bin/python brian2_sim.py --neurons 10000 --row-length 1000 --json

wall_s is Brian2's own wall-clock timer around the simulation loop in the
generated C++ (Network::run; stored in device._last_run_time). It excludes code
generation, compilation, building the connectivity and writing results. Without
OpenMP (one thread) that timer is std::clock() CPU time, which for a serial
program is the wall time. setup_s is everything else of total_s.
"""

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: E402  (sibling module: the scripts run from this folder)


def parse_args():
    p = common.parser(__doc__.splitlines()[0], 'OpenMP threads (1 builds the serial code, without OpenMP)',
                      'Brian2 seed()')
    p.add_argument("--build-dir", type=Path, default=None,
                   help="keep the generated project here (default: a temporary dir, removed)")
    args = p.parse_args()
    common.check(p, args)
    return args


def build_and_run(b2, args, net, threads, directory):
    """Describe the network, generate, compile and run it; return the raw figures."""
    b2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    # 0 means "no OpenMP at all", which is Brian2's plain serial code.
    b2.prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
    b2.seed(args.seed)

    ms, mV, nA, nF = b2.ms, b2.mV, b2.nA, b2.nF
    n = args.neurons
    dt = net["dt_ms"] * ms
    tau_m = net["tau_m_ms"] * ms
    c_m = net["c_nf"] * nF
    alpha = math.exp(-float(dt / tau_m))
    r_m = tau_m / c_m
    b2.defaultclock.dt = dt

    namespace = {
        "tau_m": tau_m,
        "R": r_m,
        "v_rest": net["v_rest_mv"] * mV,
        "v_reset": net["v_reset_mv"] * mV,
        "v_thresh": net["v_thresh_mv"] * mV,
        "i_low": net["i_offset_low_na"] * nA,
        "i_high": net["i_offset_high_na"] * nA,
        "n_exc": int(round(net["excitatory_fraction"] * n)),
        "row_length": args.row_length,
        # Jump sizes, see the module docstring for the 1/alpha.
        "jump_exc": (1 - alpha) * r_m * net["w_exc_na"] * nA / alpha,
        "jump_inh": (1 - alpha) * r_m * net["w_inh_na"] * nA / alpha,
    }

    neurons = b2.NeuronGroup(
        n,
        """
        dv/dt = (v_rest - v + R * i_offset) / tau_m : volt (unless refractory)
        i_offset : amp (constant)
        """,
        threshold="v >= v_thresh",
        reset="v = v_reset",
        refractory=net["tau_refrac_ms"] * ms + dt,
        method="exact",
        namespace=namespace,
    )
    neurons.v = "v_rest"
    neurons.i_offset = "i_low + (i_high - i_low) * rand()"

    synapses = b2.Synapses(neurons, neurons, "w : volt (constant)", on_pre="v_post += w",
                           delay=net["delay_steps"] * dt, namespace=namespace)
    # K distinct targets per source drawn from all N neurons (self included).
    synapses.connect(j="k for k in sample(N_post, size=row_length)")
    synapses.w = "jump_exc * int(i < n_exc) + jump_inh * int(i >= n_exc)"

    # record=False keeps only the spike count, no per-spike storage.
    spike_count = b2.SpikeMonitor(neurons, record=False)

    b2.run(args.steps * dt)
    b2.device.build(directory=str(directory), compile=True, run=True, with_output=False)

    timers = b2.device.timers
    return {
        "wall_s": float(b2.device._last_run_time),
        "synapses": int(synapses.N[:]),
        "spikes": int(spike_count.num_spikes),
        "compile_s": sum(v for v in timers["compile"].values() if v is not None),
        "binary_s": timers["run_binary"],
    }


def main():
    args = parse_args()
    net = common.load_network(args)
    import brian2 as b2

    directory = args.build_dir or Path(tempfile.mkdtemp(prefix="plastix-brian2-"))
    threads = args.threads
    openmp_note = None
    t0 = time.perf_counter()
    try:
        try:
            raw = build_and_run(b2, args, net, threads, directory)
        except Exception as exc:  # noqa: BLE001 - any build failure: retry serially
            if threads == 1:
                raise
            # An OpenMP build can fail where the compiler lacks -fopenmp; fall back
            # to the serial build and say so in the result.
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            openmp_note = f"OpenMP build with {threads} threads failed ({first_line}); ran serial"
            print(f"brian2_sim.py: {openmp_note}", file=sys.stderr)
            threads = 1
            b2.device.reinit()
            b2.device.activate()
            t0 = time.perf_counter()
            raw = build_and_run(b2, args, net, threads, directory)
        total_s = time.perf_counter() - t0
    finally:
        if args.build_dir is None:
            shutil.rmtree(directory, ignore_errors=True)

    wall_s = raw["wall_s"]
    result = {
        "simulator": "brian2",
        "version": b2.__version__,
        "neurons": args.neurons,
        "synapses": raw["synapses"],
        "steps": args.steps,
        "threads": threads,
        "wall_s": wall_s,
        "setup_s": total_s - wall_s,
        "spikes": raw["spikes"],
        "total_s": total_s,
        "compile_s": raw["compile_s"],
        "binary_s": raw["binary_s"],
        "openmp": threads > 1,
        "steps_per_s": args.steps / wall_s,
        "synaptic_events_per_s": raw["spikes"] * args.row_length / wall_s,
        "firing_fraction_per_step": raw["spikes"] / (args.neurons * args.steps),
        "wall_s_measures": "Brian2's timer around the generated C++ simulation loop "
                           "(Network::run), excluding code generation, compilation "
                           "and connectivity construction",
    }
    if openmp_note:
        result["note"] = openmp_note
    common.emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
