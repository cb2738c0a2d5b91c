"""Shared fixtures: the CPU execution modes every backend-independent test runs under, and an adapter
that hands a built plastix simulation's initial state to the plain-numpy reference (tests/numpy_reference.py)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

# CUDA kernels are tested on numba-cuda's simulator unless a real GPU run is asked for
# (PLASTIX_TEST_REAL_CUDA=1).  Must be set before numba is first imported.
if os.environ.get("PLASTIX_TEST_REAL_CUDA") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import plastix as px  # noqa: E402

#: CPU modes: serial kernels, and parallel kernels with two fixed partitions (multi-partition code paths
#: run even on one core).
CPU_MODES = {"serial": {"parallel": False}, "parallel": {"parallel": True, "partitions": 2}}


@pytest.fixture(params=sorted(CPU_MODES))
def cpu_mode(request):
    return request.param


def make_sim(net, mode: str, **kw) -> px.Simulation:
    return px.Simulation(net, backend="cpu", **CPU_MODES[mode], **kw)


_MODEL_NAMES = {"lif_to_reset": "lif", "lif_subtract": "lif_subtract", "conductance_lif": "conductance_lif",
                "alif": "alif", "poisson": "poisson", "spike_source_array": "spike_source_array",
                "leaky_integrator": "leaky_integrator"}


def reference_inputs(sim: px.Simulation, spike_times: dict | None = None):
    """(populations, projections) in the numpy reference's format, from ``sim``'s current state."""
    sim.build()
    net = sim.network
    pops = {}
    for name, pop in net.populations.items():
        spec = {"model": _MODEL_NAMES[pop.model.name], "n": pop.size, "params": dict(pop.params),
                "vars": {v: sim.get(name, v) for v, var in pop.model.vars.items() if var.dtype == "scalar"}}
        if spike_times and name in spike_times:
            spec["spike_times"] = spike_times[name]
        pops[name] = spec
    projs = []
    for name, q in net.projections.items():
        wu, psm = q.weight_update, q.postsynaptic
        r = sim.ragged(name, "w")
        ind, rowlen = r["ind"], r["row_length"]
        if q.dense:
            ind = np.tile(np.arange(q.post.size, dtype=np.int32), (q.pre.size, 1))
        projs.append({
            "name": name, "pre": q.pre.name, "post": q.post.name, "ind": ind, "row_length": rowlen,
            "wu": wu.name, "wu_params": dict(q.wu_params), "syn_vars": {"w": r["w"]},
            "pre_vars": {v: sim.get(name, v) for v in wu.pre_vars},
            "post_vars": {v: sim.get(name, v) for v in wu.post_vars},
            "psm": psm.name, "psm_params": dict(q.psm_params), "delay": q.delay,
            "in_syn": sim.get(name, "in_syn"),
        })
    return pops, projs


def spike_pairs(times_ms, idx, dt):
    """Spikes as a sorted list of (step, neuron)."""
    steps = np.rint(np.asarray(times_ms) / dt).astype(np.int64)
    return sorted(zip(steps.tolist(), np.asarray(idx).tolist()))
