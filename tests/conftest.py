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

# one pytest-xdist worker per core already keeps the cores busy: no compile helper processes beside them
# (tests/test_cpu_compile.py turns the helper on where it tests it)
os.environ.setdefault("PLASTIX_COMPILE_WORKERS", "0")

import plastix as px  # noqa: E402

import kernel_launches  # noqa: E402

# every kernel launch on the simulator is recorded (kernel, argument types) for tests/test_ptx.py, which
# compiles those kernels with the real CUDA compiler
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    try:
        kernel_launches.install()
    except ImportError:  # no numba-cuda: nothing is launched
        pass

#: CPU modes: serial kernels, and parallel kernels with two fixed partitions (multi-partition code paths
#: run even on one core).
CPU_MODES = {"serial": {"parallel": False}, "parallel": {"parallel": True, "partitions": 2}}


@pytest.fixture(params=sorted(CPU_MODES))
def cpu_mode(request):
    return request.param


@pytest.fixture(scope="module")
def small_cuda_blocks():
    """8-thread blocks on numba-cuda's simulator (a real GPU keeps the production geometry).

    The simulator runs every thread of a block as a Python thread, idle ones included: with the default
    128-thread blocks a tiny network's launches cost ~5x more than with 8-thread ones, and small blocks
    also take tiny inputs through the multi-block paths.  The launch geometry is a launch argument, not
    part of the generated source, so the kernels (and what tests/test_ptx.py compiles) are the same."""
    from plastix.kernels import launch

    old = launch.THREADS_PER_BLOCK
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        launch.THREADS_PER_BLOCK = 8
    yield
    launch.THREADS_PER_BLOCK = old


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


def stdp_recurrent_net(n: int, row_stride: int, seed: int) -> tuple[px.Network, str]:
    """A self-driven LIF population with a sparse recurrent STDP projection "aa" (6 synapses per row,
    room for ``row_stride``), float64: the network rewiring tests attach their rules to."""
    net = px.Network(dt=1.0, seed=seed, precision="float64")
    a = net.add_population("a", n, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                           init={"v": px.init.Uniform(0.0, 9.0), "i_offset": px.init.Uniform(0.5, 1.2)})
    stdp = px.weight_update.stdp_additive(tau_plus=10.0, tau_minus=10.0, a_plus=0.05, a_minus=0.05, w_max=2.0)
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(6), weight_update=stdp,
                       init={"w": px.init.Uniform(0, 1)}, row_stride=row_stride)
    return net, "aa"


# -- the real-compiler check of every kernel launched (tests/test_ptx.py) ---------------------------------
#: Test module that compiles the recorded kernels; it runs after everything else, so that in a whole-suite
#: run it sees every launch of the session.
PTX_TEST_MODULE = "test_ptx.py"


def pytest_collection_modifyitems(session, config, items):
    last = [it for it in items if it.path.name == PTX_TEST_MODULE]
    if last:
        items[:] = [it for it in items if it.path.name != PTX_TEST_MODULE] + last


def pytest_runtest_setup(item):
    kernel_launches.CURRENT_TEST[0] = item.nodeid


def pytest_deselected(items):
    _SESSION["deselected"] += len(items)


_SESSION = {"deselected": 0}


def whole_suite_collected(config) -> bool:
    """True when this session runs every test of the suite (no file, -k, -m or --lf selection): then its
    own recordings hold every kernel launch the suite makes.  Never under pytest-xdist: a worker runs only
    its share of the suite, so it sees only its share of the launches."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    root = (config.rootpath / "tests").resolve()
    args = [a for a in config.args if not a.startswith("-")]
    paths = {os.path.realpath(os.path.join(config.invocation_params.dir, a)) for a in args}
    whole = paths <= {str(root)} or paths == {str(config.rootpath.resolve())}
    return (whole and _SESSION["deselected"] == 0 and not config.getoption("keyword")
            and not config.getoption("markexpr") and not config.getoption("lf", False))


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get(kernel_launches.RECORD_ENV)
    if out:
        kernel_launches.dump(out)
