"""Compilation is counted apart: the compile clock, and the CLI's summaries on an empty kernel cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numba
import pytest

from plastix.compile_clock import Stopwatch, compile_seconds, counting


def _fresh_function():
    # a new function object each time: numba has never compiled it in this process, and no disk cache
    def add_one(x):
        return x + 1

    return numba.njit(add_one)


def test_first_call_counts_compilation_and_later_calls_do_not():
    f = _fresh_function()
    sw = Stopwatch()
    assert f(1) == 2
    first = sw.compile_s
    assert first > 0.0
    before = compile_seconds()
    for i in range(100):
        f(i)
    assert compile_seconds() == before   # compiled code runs without the compiler
    assert sw.compile_s == first
    assert sw.run_s <= sw.total_s


def test_counted_block_and_compilation_inside_it_count_once():
    f = _fresh_function()
    sw = Stopwatch()
    with counting():
        time.sleep(0.01)
        f(1)   # compiles inside the counted block: the block's time holds it already
    # counted twice, the compile seconds would exceed the wall time of the whole interval
    assert 0.01 <= sw.compile_s <= sw.total_s


def _cold_cli(tmp_path, *args):
    """The ``plastix`` command in a fresh process whose generated-code cache is empty."""
    env = dict(os.environ, PLASTIX_CACHE_DIR=str(tmp_path / "cache"))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "plastix.cli.main", *args], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


@pytest.mark.slow
def test_cold_training_reports_compilation_apart_from_epoch_times(tmp_path):
    out = tmp_path / "run"
    summary, _ = _cold_cli(tmp_path, "train", "--dataset", "digits", "--hidden", "8", "--epochs", "2",
                           "--batch-size", "256", "--out", str(out), "--json")
    res = json.loads((out / "results.json").read_text())
    first, second = res["epochs"]
    assert first["compile_s"] > 0.0           # the kernels compile during the first epoch
    assert second["compile_s"] == 0.0          # and never again
    assert 0.0 < first["train_compile_s"] <= first["compile_s"]
    # epoch times exclude compilation: counted in both, the parts would add up to more than the whole
    assert sum(e["wall_s"] + e["compile_s"] for e in res["epochs"]) <= res["wall_s"]
    assert res["compile_s"] >= first["compile_s"]
    assert summary["compile_s"] == res["compile_s"]
    assert summary["epoch_s"] == [first["wall_s"], second["wall_s"]]


@pytest.mark.slow
def test_cold_topomap_excludes_compilation_from_wall_time_and_realtime_factor(tmp_path):
    out, elapsed = _cold_cli(tmp_path, "topomap", "--seconds", "0.2", "--record-every", "0.1", "--no-breakdown",
                             "--backend", "cpu", "--out", str(tmp_path / "t"), "--json")
    assert out["run_compile_s"] > 0.0          # the kernels compile during the first steps
    assert out["compile_s"] >= out["run_compile_s"]
    # counted in both, the run's wall time and its compilation would add up to more than the command took
    assert out["wall_s"] + out["run_compile_s"] <= elapsed
    assert out["simulation_wall_s"] <= out["wall_s"]
    assert out["realtime_factor"] == pytest.approx(out["model_seconds"] / out["simulation_wall_s"])


def test_bench_rewire_reports_compilation_apart():
    out = subprocess.run([sys.executable, "-m", "plastix.cli.main", "bench", "rewire", "--pre", "300", "--row-length",
                          "30", "--repeats", "2", "--json"], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["invariants_ok"]
    # a fresh process compiles the rewire kernel or loads it from the cache: either holds numba's compiler
    assert 0.0 < res["compile_s"] <= res["compile_or_cache_load_s"]
