"""backends.cpu_compile: a cold generated CPU module's kernels compiled by this process and a helper
process side by side, with the same results as compiling them all here."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import plastix as px
from plastix.backends import cpu_compile
from plastix.topomap import model as topomap
from test_global_phase import _net as rewiring_network

SOURCE = '''
from numba import njit

@njit(cache=True)
def small(a, b):
    a[0] += b

@njit(cache=True)
def helper(a):
    a[1] += 1.0

@njit(cache=True)
def big(a, b, c):
    helper(a)
    for i in range(a.shape[0]):
        a[i] += b * c

small_again = small  # the same code

def plain(a):
    return a

@njit(cache=True)
def run(step0, n_steps, a, b, c):
    for step in range(step0, step0 + n_steps):
        small(a, b)
        small_again(a, b)
        big(a, b, c)
        big(a, b, c)
        small(a, a[0])
        plain(a)
    return
'''


def test_kernel_calls_lists_each_call_once_with_its_callees_lines():
    calls = cpu_compile.kernel_calls(SOURCE)
    names = [(n, a) for n, a, _ in calls]
    # the alias resolves to the function compiled; a call with an expression argument is left out;
    # the decorator's njit(...) call and range() are not kernels
    assert names == [("small", ["a", "b"]), ("big", ["a", "b", "c"]), ("plain", ["a"])]
    lines = {n: k for n, _, k in calls}
    assert lines["small"] == 2 and lines["big"] == 4 + 2  # big's own lines and helper's
    assert cpu_compile.kernel_calls(SOURCE, entry="missing") == []


@pytest.mark.parametrize("value, allowed", [("0", False), ("1", True)])
def test_helper_setting(monkeypatch, value, allowed):
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", value)
    assert cpu_compile.helper_allowed() is allowed


def test_bad_helper_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", "4")
    with pytest.raises(ValueError, match="PLASTIX_COMPILE_WORKERS must be 'auto', '0' or '1', got '4'"):
        cpu_compile.helper_allowed()


def _topomap_run(cache_dir, monkeypatch, workers: str):
    """The topographic-map network (16 x 16, scheduled rewiring, STDP) built cold in ``cache_dir`` and run
    for 60 steps; returns the simulation and what it produced."""
    monkeypatch.setenv("PLASTIX_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", workers)
    params = topomap.TopomapParams()
    sim = px.Simulation(topomap.build(params), backend="cpu", parallel=False)
    rows, cols = topomap.stimulus_schedule(params, 61.0)
    sim.set_egp("source", "stim_row", rows)
    sim.set_egp("source", "stim_col", cols)
    sim.record_spikes("target")
    sim.run(60, progress=False)
    out = {"spikes": sim.spikes("target"), "ff": sim.connectivity("ff"), "w": sim.get("ff", "w"),
           "stats": sim.update_stats("rewire_ff")}
    sys.modules.pop(sim.backend.module.__name__)  # the next build imports its own copy, cold
    return sim, out


def _assert_same(a, b):
    for x, y in zip(a["spikes"], b["spikes"]):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a["ff"], b["ff"]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["w"], b["w"])
    assert a["stats"] == b["stats"]


def test_helper_fills_numbas_cache_for_this_process(tmp_path, monkeypatch):
    """The helper alone (this process claims nothing): what it compiled is loaded here from the cache."""
    monkeypatch.setenv("PLASTIX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", "0")  # build without sharing: nothing compiled yet
    sim = px.Simulation(topomap.build(topomap.TopomapParams()), backend="cpu", parallel=False).build()
    backend, module = sim.backend, sim.backend.module
    values = cpu_compile.loop_scalars(backend.precision)
    values.update((a, sim.state[a]) for a in backend.run_args if a in sim.state)
    calls = [(n, [values[a] for a in args]) for n, args, _ in cpu_compile.kernel_calls(backend.source)]
    jobs = cpu_compile.jobs_for(module, backend.source, calls, min_lines=0)
    assert {n for n, _ in jobs} >= {"p0_neuron_update", "p1_neuron_update", "q0_propagate", "cu0_row"}
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", "1")
    claims = tmp_path / "claims"
    claims.mkdir()
    helper = cpu_compile.Helper.start()
    assert helper.give(module, jobs, str(claims)) and helper.wait()
    assert sorted(p.name for p in claims.iterdir()) == sorted(str(i) for i in range(len(jobs)))  # it took all
    for name, sig in jobs:
        dispatcher = getattr(module, name)
        dispatcher.compile(sig)
        assert dispatcher.stats.cache_hits[sig] == 1 and dispatcher.stats.cache_misses[sig] == 0, name
    sys.modules.pop(module.__name__)


def test_helper_compiles_part_of_a_cold_module_with_the_same_results(tmp_path, monkeypatch):
    _, alone = _topomap_run(tmp_path / "alone", monkeypatch, "0")
    sim, shared = _topomap_run(tmp_path / "shared", monkeypatch, "1")
    apart = sim.backend.compiled_apart
    # how the kernels were split depends on how fast the helper started; every kernel was compiled once
    assert apart["here"] and apart["helper_ok"] in (True, None)
    assert (apart["helper_ok"] is None) == (apart["helper"] == [])
    module = sim.backend.module
    for name in apart["helper"]:  # what the helper compiled was loaded from numba's cache, not compiled here
        assert sum(getattr(module, name).stats.cache_hits.values()) >= 1, name
    _assert_same(alone, shared)
    assert len(alone["spikes"][0]) > 0 and alone["stats"]["added"] > 0  # the run did something

    # the same module again from the same cache: warm, nothing handed out
    warm, again = _topomap_run(tmp_path / "shared", monkeypatch, "1")
    assert warm.backend.compiled_apart == {}
    _assert_same(alone, again)


def test_a_failing_helper_leaves_the_work_to_this_process(tmp_path, monkeypatch):
    _, alone = _topomap_run(tmp_path / "alone", monkeypatch, "0")
    monkeypatch.setattr(cpu_compile, "HELPER_COMMAND", [sys.executable, "-c", "import sys; sys.exit(3)"])
    sim, failed = _topomap_run(tmp_path / "failed", monkeypatch, "1")
    apart = sim.backend.compiled_apart
    assert apart["helper"] == [] and apart["helper_ok"] is not True  # it compiled nothing
    _assert_same(alone, failed)


def test_cuda_probe_without_device_nodes(monkeypatch):
    import numba

    from plastix.kernels import cuda_device

    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", False)
    monkeypatch.setattr(cuda_device, "_DEVICE_NODES", ("/nonexistent/nvidiactl",))
    monkeypatch.setattr(cuda_device.sys, "platform", "linux")
    ok, why = cuda_device.probe()
    assert not ok and "/nonexistent/nvidiactl" in why


def _rewiring_run(cache_dir, monkeypatch, workers: str):
    """Rewiring rules called from Python (row phases, a compiled global phase) after a first run: the
    kernels shared out at that run."""
    monkeypatch.setenv("PLASTIX_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("PLASTIX_COMPILE_WORKERS", workers)
    net = rewiring_network("compiled")  # prune negative weights, regrow them elsewhere (compiled global)
    sim = px.Simulation(net, backend="cpu", parallel=False)
    sim.run(5, progress=False)
    removed = sim.custom_update("prune")["prune"]["removed"]
    added = sim.custom_update("regrow")["regrow"]["added"]
    out = {"ff": sim.connectivity("aa"), "w": sim.get("aa", "w"), "counts": (removed, added)}
    sys.modules.pop(sim.backend.module.__name__)
    return sim, out


def test_kernels_called_from_python_are_shared_out_at_the_first_run(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_compile, "MIN_SHARED_LINES", 0)  # a small network: share it all the same
    _, alone = _rewiring_run(tmp_path / "alone", monkeypatch, "0")
    sim, shared = _rewiring_run(tmp_path / "shared", monkeypatch, "1")
    later = sim.backend.compiled_apart_later
    assert later["helper_ok"] in (True, None)
    assert sorted(later["here"] + later["helper"]) == ["cu0_row", "cu1_global", "cu1_row"]
    for x, y in zip(alone["ff"], shared["ff"]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(alone["w"], shared["w"])
    assert alone["counts"] == shared["counts"] and alone["counts"][0] > 0
