#!/usr/bin/env python3
"""NEST 3.10 run of the network that `plastix bench sim` simulates.

The network (benchmarks/peers/network.json) is a recurrent current-based LIF
network with delta synapses and a fixed out-degree. In NEST it maps onto
`iaf_psc_delta`, which integrates exactly like plastix's LIF:

    V <- E_L + exp(-dt/tau_m) (V - E_L) + (1 - exp(-dt/tau_m)) (tau_m/C_m) I_e + sum(J)

so a plastix weight w (nA, a current that lasts one step) becomes an
instantaneous voltage jump J = (1 - alpha) R w (mV). A plastix spike emitted in
step s reaches its targets' membrane in step s + 1 + delay_steps; in NEST that is
a connection delay of (1 + delay_steps) * dt. iaf_psc_delta's refractory counter
(t_ref / dt steps clamped at V_reset, input arriving meanwhile dropped, since
refractory_input is False by default) is the same as plastix's.

Run with the interpreter of the NEST venv made by install.sh, e.g.
    .venvs/nest/bin/python nest_sim.py --neurons 10000 --row-length 1000 --json

wall_s is the wall-clock time of nest.Simulate() alone; setup_s covers kernel
reset, node creation, connection and parameter setup.
"""

import math
import os
import sys
import time

import common  # noqa: E402  (sibling module: the scripts run from this folder)


def parse_args():
    p = common.parser(__doc__.splitlines()[0], 'NEST local_num_threads', 'NEST rng_seed')
    args = p.parse_args()
    common.check(p, args)
    return args


def main():
    args = parse_args()
    net = common.load_network(args)

    # The banner and the kernel's messages go to stdout; keep stdout for the result.
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR

    n = args.neurons
    dt = net["dt_ms"]
    tau_m = net["tau_m_ms"]
    c_pf = net["c_nf"] * 1000.0  # NEST uses pF and pA
    alpha = math.exp(-dt / tau_m)
    r_mohm = tau_m / net["c_nf"]  # ms / nF = MOhm, so MOhm * nA = mV
    jump_exc = (1.0 - alpha) * r_mohm * net["w_exc_na"]
    jump_inh = (1.0 - alpha) * r_mohm * net["w_inh_na"]
    delay = (1 + net["delay_steps"]) * dt
    n_exc = int(round(net["excitatory_fraction"] * n))

    t_setup = time.perf_counter()
    nest.ResetKernel()
    nest.SetKernelStatus({
        "resolution": dt,
        "local_num_threads": args.threads,
        "rng_seed": args.seed,
        "print_time": False,
    })
    neurons = nest.Create("iaf_psc_delta", n, params={
        "E_L": net["v_rest_mv"],
        "V_reset": net["v_reset_mv"],
        "V_th": net["v_thresh_mv"],
        "V_m": net["v_rest_mv"],
        "C_m": c_pf,
        "tau_m": tau_m,
        "t_ref": net["tau_refrac_ms"],
    })
    # Constant heterogeneous drive, drawn by NEST's own RNG (pA).
    neurons.I_e = nest.random.uniform(net["i_offset_low_na"] * 1000.0,
                                      net["i_offset_high_na"] * 1000.0)

    # Fixed out-degree without replacement over all N targets (self included),
    # one Connect per sign so each source row has one weight.
    conn = {"rule": "fixed_outdegree", "outdegree": args.row_length,
            "allow_autapses": True, "allow_multapses": False}
    for sources, jump in ((neurons[:n_exc], jump_exc), (neurons[n_exc:], jump_inh)):
        if len(sources):
            nest.Connect(sources, neurons, conn,
                         {"synapse_model": "static_synapse", "weight": jump, "delay": delay})
    setup_s = time.perf_counter() - t_setup

    # local_spike_counter counts spikes emitted by this process's neurons, so no
    # recorder device (and its per-spike bookkeeping) is needed.
    spikes_before = nest.GetKernelStatus("local_spike_counter")
    t0 = time.perf_counter()
    nest.Simulate(args.steps * dt)
    wall_s = time.perf_counter() - t0
    spikes = nest.GetKernelStatus("local_spike_counter") - spikes_before

    synapses = nest.GetKernelStatus("num_connections")
    result = {
        "simulator": "nest",
        "version": nest.__version__,
        "neurons": n,
        "synapses": synapses,
        "steps": args.steps,
        "threads": nest.GetKernelStatus("local_num_threads"),
        "wall_s": wall_s,
        "setup_s": setup_s,
        "spikes": spikes,
        "total_s": setup_s + wall_s,
        "nest_time_simulate_s": nest.GetKernelStatus("time_simulate"),
        "steps_per_s": args.steps / wall_s,
        "synaptic_events_per_s": spikes * args.row_length / wall_s,
        "firing_fraction_per_step": spikes / (n * args.steps),
        "wall_s_measures": "wall-clock time of nest.Simulate() only",
    }
    common.emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
