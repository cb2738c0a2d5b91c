"""Every CUDA kernel the test suite launches compiles with the real CUDA compiler, no GPU needed.

The CUDA tests run on numba-cuda's simulator, which executes kernels as Python: typing errors, constructs
numba-cuda cannot compile, atomics on unsupported dtypes or clashing device-function signatures pass there
unseen.  tests/kernel_launches.py records every kernel launch of the simulator (kernel, Numba types of the
actual arguments); here each recorded (kernel, types) is compiled by numba-cuda to PTX for compute
capabilities 8.0 and 9.0 and the PTX assembled by ``ptxas`` (tests/ptx_compile.py, in processes with the
simulator off, since the simulator flag is fixed when numba.cuda is first imported).

Where the launches come from:

* a whole-suite run in one process (``pytest -n 0`` with no selection): this module runs last
  (tests/conftest.py orders it) and uses the session's own recordings -- no test runs twice;
* any other selection, and every run under pytest-xdist (the default, ``-n auto``: a worker sees only its
  share of the launches): the CUDA tests are run first in a subprocess, selected by ``-k cuda``.  For that
  to find every kernel, a test that launches kernels carries "cuda" in its node id (file, test or
  parameter name); whole-suite runs check that convention.

A kernel added later is covered as soon as a test launches it; a kernel family that is defined but that no
test launches (nothing records its argument types) fails here.

Skipped only when the compiler libraries (NVVM, NVRTC: ``nvidia-cuda-nvcc-cu12``, ``nvidia-cuda-nvrtc-cu12``,
in the test extra) are missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kernel_launches
import pytest
from conftest import whole_suite_collected
from ptx_compile import EXIT_NO_COMPILER, family

pytest.importorskip("numba.cuda")

HERE = Path(__file__).resolve().parent
#: Compute capabilities compiled for: Ampere (A100) and Hopper (H100 / H200).
TARGET_CCS = ("8.0", "9.0")
#: -k expression that selects the tests launching kernels (run in a subprocess when this session's own
#: recordings are incomplete).
CUDA_TESTS = "cuda and not ptx"


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.pop("PLASTIX_TEST_REAL_CUDA", None)
    env.pop(kernel_launches.RECORD_ENV, None)
    env.update(extra)
    return env


def _skip_without_compiler() -> None:
    p = subprocess.run([sys.executable, str(HERE / "ptx_compile.py"), "--probe"], cwd=HERE.parent,
                       env=_env(NUMBA_ENABLE_CUDASIM="0"), capture_output=True, text=True, timeout=300)
    if p.returncode == EXIT_NO_COMPILER:
        pytest.skip(p.stderr.strip())
    assert p.returncode == 0, p.stderr[-3000:]


def _recordings(config, tmp_path: Path) -> tuple[dict, bool]:
    """(recordings, from this session)."""
    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    if simulated and whole_suite_collected(config):
        return kernel_launches.snapshot(), True
    _skip_without_compiler()   # before the minutes of simulator tests
    out = tmp_path / "launches.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", CUDA_TESTS, str(HERE)]
    if config.pluginmanager.hasplugin("xdist"):   # one process, so that its recordings are the whole run's
        cmd[3:3] = ["-n", "0"]
    env = _env(NUMBA_ENABLE_CUDASIM="1", **{kernel_launches.RECORD_ENV: str(out)})
    p = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"recording run of the CUDA tests failed:\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}"
    return json.loads(out.read_text()), False


def _compile(records_path: Path, tmp_path: Path) -> dict[str, list[dict]]:
    """Per compute capability, the per-launch results of tests/ptx_compile.py (both run in parallel)."""
    procs = {}
    for cc in TARGET_CCS:
        out = tmp_path / f"ptx_{cc}.json"
        cmd = [sys.executable, str(HERE / "ptx_compile.py"), str(records_path), "--cc", cc, "--out", str(out),
               "--ptxas"]
        procs[cc] = (out, subprocess.Popen(cmd, cwd=HERE.parent, env=_env(NUMBA_ENABLE_CUDASIM="0"),
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results, missing = {}, None
    for cc, (out, p) in procs.items():
        stdout, stderr = p.communicate(timeout=900)
        if p.returncode == EXIT_NO_COMPILER:
            missing = stderr.strip()
            continue
        assert p.returncode == 0, f"ptx_compile.py --cc {cc} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        results[cc] = json.loads(out.read_text())
    if missing:
        pytest.skip(missing)
    return results


def test_every_launched_kernel_compiles_to_ptx_and_assembles(request, tmp_path):
    records, in_session = _recordings(request.config, tmp_path)
    launched = records["launched"]
    assert launched, "no CUDA kernel was launched: the CUDA simulator tests did not run"
    if in_session:  # keep the subprocess path (-k cuda) complete
        stray = [t for t in records["tests"] if "cuda" not in t.lower()]
        assert not stray, (f"tests launching CUDA kernels must carry 'cuda' in their node id (file, test or "
                           f"parameter name), so that `-k cuda` selects them; these do not: {stray}")
    # kernel families defined but never launched: nothing says what types they are launched with
    families = {family(m, q) for _, m, q in records["defined"]}
    unlaunched = sorted(families - {family(r["module"], r["qualname"]) for r in launched})
    assert not unlaunched, (f"kernel families defined but launched by no test (add a CUDA simulator test "
                            f"that runs them): {unlaunched}")
    path = tmp_path / "launches.json"
    path.write_text(json.dumps(records))
    results = _compile(path, tmp_path)
    failures = []
    for cc, res in results.items():
        assert len(res) == len(launched)
        for r in res:
            err = r.get("error") or r.get("ptxas_error")
            if err:
                failures.append(f"{r['module']}.{r['qualname']} (cc {cc}): {err[:1500]}")
            else:
                assert r["ptx_bytes"] > 0 and r["registers"] is not None, r
    assert not failures, "kernels that do not compile for a real GPU:\n" + "\n\n".join(failures)


_BAD_KERNEL = '''
import numpy as np
from numba import cuda


@cuda.jit
def scratch_in_kernel(out):
    # a per-thread scratch array: plain numpy under the simulator, no allocation on a GPU
    i = cuda.grid(1)
    if i < out.shape[0]:
        tmp = np.zeros(2)
        tmp[0] = i
        out[i] = tmp[0] + tmp[1]
'''


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="needs numba-cuda's simulator")
def test_a_kernel_the_simulator_runs_but_the_compiler_rejects_is_reported(tmp_path):
    """The whole path on a kernel with a mistake only the real compiler sees: the simulator runs it, the
    launch is recorded, and the compile reports it as failing."""
    import importlib.util

    import numpy as np
    from numba import cuda

    src = tmp_path / "plastix_test_bad_kernel.py"
    src.write_text(_BAD_KERNEL)
    spec = importlib.util.spec_from_file_location("plastix_test_bad_kernel", src)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        out = cuda.to_device(np.full(5, -1.0))
        mod.scratch_in_kernel[2, 4](out)
        np.testing.assert_array_equal(out.copy_to_host(), np.arange(5.0))
    finally:
        sys.modules.pop(spec.name)
    ours = [k for k in kernel_launches.LAUNCHED if k[0] == str(src)]
    records = {"defined": [list(d) for d in kernel_launches.DEFINED if d[0] == str(src)],
               "launched": [{"file": f, "module": m, "qualname": q, "types": json.loads(t), "count": n}
                            for (f, m, q, t) in ours for n in [kernel_launches.LAUNCHED[(f, m, q, t)]]]}
    for k in ours:  # not a plastix kernel: keep it out of the session's recordings
        del kernel_launches.LAUNCHED[k]
    kernel_launches.DEFINED.discard((str(src), spec.name, "scratch_in_kernel"))
    kernel_launches.LAUNCHING_TESTS.discard(kernel_launches.CURRENT_TEST[0])
    assert [r["types"] for r in records["launched"]] == [[["array", "float64", 1, "C", False]]]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    for res in _compile(path, tmp_path).values():
        assert len(res) == 1 and "error" in res[0], res
        assert "TypingError" in res[0]["error"] and "zeros" in res[0]["error"], res[0]["error"]
