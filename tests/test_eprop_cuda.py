"""e-prop CUDA trial kernels (plastix.learning.kernels_cuda) against the CPU kernels on tiny networks.

Runs under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``, set by tests/conftest.py unless
``PLASTIX_TEST_REAL_CUDA=1``) or on a real GPU; skipped when numba-cuda is not importable or neither is
available.  The simulator runs one Python thread per CUDA thread, so the networks are tiny and the blocks
shrunk (8 threads; the spike axis to one block, so propagation strides over the spikes).

Tolerances (float64): spikes and refractory counters must match exactly; everything else to
``rtol=1e-9, atol=1e-12``.  The GPU adds the synaptic current with atomics (any order) and sums each
synapse's gradient over the batch per step rather than per element over the whole trial, so results differ
from the CPU's by rounding only (~1e-16 relative here).
"""
from __future__ import annotations

import types
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

from plastix.learning import eprop  # noqa: E402
from plastix.kernels import launch  # noqa: E402
from plastix.learning import kernels_cpu as kc  # noqa: E402
from plastix.learning import kernels_cuda as kcu  # noqa: E402
from plastix.learning.eprop import EPropConfig, EPropNetwork, TrainingError  # noqa: E402

_OK, _WHY = kcu.available()
if not _OK:
    pytest.skip(f"e-prop CUDA kernels need a CUDA GPU or NUMBA_ENABLE_CUDASIM=1: {_WHY}", allow_module_level=True)

RTOL, ATOL = 1e-9, 1e-12
#: run_trial's integer / spike-count outputs: must match exactly
EXACT = {"z", "zprev", "refrac", "spikes", "x_now"}


@pytest.fixture(autouse=True)
def small_grids(monkeypatch):
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(kcu, "MIN_X_THREADS", 1)
    monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 1)
    monkeypatch.setattr(kcu, "SYN_TARGET_THREADS", 1)   # one batch chunk unless a test asks for more


def _config(neuron: str, recurrent: float, **kw) -> EPropConfig:
    opts = dict(num_inputs=6, num_outputs=3, num_hidden=6, neuron=neuron, recurrent_density=recurrent,
                input_density=0.7, row_padding=1.5, dtype="float64", seed=2, tau_refrac=2.0, beta=0.3,
                tau_adapt=50.0, c_reg=0.05)
    return EPropConfig(**{**opts, **kw})


def _boost(net: EPropNetwork) -> None:
    for p in net.projections:   # enough drive for spikes, adaptation and recurrent traffic
        net.sim.set(p, "w", net.sim.get(p, "w") * 3.0)


def _data(seed: int, batch=3, steps=16):
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, steps, 6)) < 0.25).astype(np.uint8)
    return x, rng.integers(0, 3, batch)


def _assert_close(name, got, want):
    if name in EXACT:
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


def _assert_same_state(gpu: EPropNetwork, cpu: EPropNetwork) -> None:
    for p in cpu.projections:
        for v, want in cpu.arrays(p).items():
            _assert_close(f"{p}.{v}", gpu.arrays(p)[v], want)
    for name, want in cpu.dense_state.items():
        _assert_close(name, gpu.dense_state[name], want)
    for name in ("w_out", "b_out", "rate"):
        _assert_close(name, getattr(gpu, name), getattr(cpu, name))
    for name in EPropNetwork.OUTPUTS:   # the GPU keeps the per-trial state on the device (copy_state=False)
        _assert_close(name, gpu._buffers[name], cpu._buffers[name])


@pytest.mark.parametrize("neuron, recurrent, layers, reset", [("alif", 0.5, 6, "subtract"), ("lif", 0.0, 6, "subtract"),
                                                              ("alif", 0.5, (4, 3), "subtract"),
                                                              ("lif", 0.0, (3, 3, 2), "subtract"),
                                                              ("lif", 0.5, (4, 3), "zero")])
def test_trials_match_cpu(neuron, recurrent, layers, reset):
    c = _config(neuron, recurrent, num_hidden=layers, feedforward_density=0.8, reset=reset)
    cpu, gpu = EPropNetwork(c), EPropNetwork(replace(c, backend="cuda"))
    assert gpu._kernels is kcu and cpu._kernels is kc
    _boost(cpu)
    _boost(gpu)
    x, labels = _data(0)
    out_c, out_g = cpu.train_batch(x, labels), gpu.train_batch(x, labels)   # trial + Adam step
    assert out_c["rate_hz"] > 20, "the test needs spiking hidden neurons"
    assert out_g["correct"] == out_c["correct"]
    np.testing.assert_allclose(out_g["loss"], out_c["loss"], rtol=RTOL)
    np.testing.assert_allclose(out_g["rate_hz"], out_c["rate_hz"], rtol=RTOL)
    assert np.abs(cpu.arrays("in_hid")["m"]).max() > 1e-6   # gradients reached the optimiser
    _assert_same_state(gpu, cpu)
    # a second batch on the changed weights (device buffers reused), then an evaluation trial
    x2, labels2 = _data(1)
    ev_c, ev_g = cpu.evaluate_batch(x2, labels2), gpu.evaluate_batch(x2, labels2)
    assert ev_g["correct"] == ev_c["correct"]
    np.testing.assert_allclose(ev_g["loss"], ev_c["loss"], rtol=RTOL)
    _assert_same_state(gpu, cpu)


def _captured_args(net: EPropNetwork, x, labels) -> list:
    """The arguments ``EPropNetwork._trial`` passes to run_trial (copies, taken before any kernel runs)."""
    calls = []
    real = net._kernels
    net._kernels = types.SimpleNamespace(
        run_trial=lambda *a, **kw: calls.append(_copy(a)))
    try:
        net._trial(x, labels, train=True)
    finally:
        net._kernels = real
    return calls[0]


def _copy(args):
    """Copies of the arrays (also inside the per-projection tuples)."""
    def one(v):
        if isinstance(v, np.ndarray):
            return np.array(v, copy=True)
        return tuple(one(e) for e in v) if isinstance(v, tuple) else v
    return [one(v) for v in args]


def _compare(name, got, want):
    if isinstance(want, tuple):
        for p, (g, w) in enumerate(zip(got, want)):
            _compare(f"{name}[{p}]", g, w)
    elif isinstance(want, np.ndarray):
        _assert_close(name, got, want)


def test_direct_call_batch_chunks_and_copy_state(monkeypatch):
    """run_trial on identical copies of every argument: CPU, GPU with the batch split into 2 chunks (atomic
    gradient accumulation) and GPU with ``copy_state=False`` (outputs only)."""
    net = EPropNetwork(_config("lif", 0.6, c_reg=0.1, num_hidden=(4, 3)))
    _boost(net)
    x, labels = _data(2)
    args = _captured_args(net, x, labels)
    names = kc.run_trial.py_func.__code__.co_varnames[:len(args)]
    at = {n: i for i, n in enumerate(names)}
    # non-zero incoming gradients and readout gradients: run_trial adds to them
    rng = np.random.default_rng(5)
    for g in args[at["proj_grad"]] + (args[at["g_out"]], args[at["g_bias"]]):
        g[...] = rng.normal(0.0, 0.1, g.shape)
    ref = _copy(args)
    kc.run_trial(*ref)
    assert ref[at["spikes"]].sum() > 20, "the test needs spiking hidden neurons"

    monkeypatch.setattr(kcu, "BATCH_CHUNKS", 2)
    got = _copy(args)
    kcu.run_trial(*got)
    for name, g, r in zip(names, got, ref):
        if name != "proj_gbuf":   # the CPU's per-element scratch
            _compare(name, g, r)

    monkeypatch.setattr(kcu, "BATCH_CHUNKS", None)
    lean = _copy(args)
    kcu.run_trial(*lean, copy_state=False)
    outputs = {"proj_grad", "loss", "pi_sum", "spikes", "g_out", "g_bias", "rate", "reg"}
    for name, g, r, a in zip(names, lean, ref, args):
        if name in outputs:
            _compare(name, g, r)
        elif name != "proj_gbuf":   # state: left as passed (zero)
            for gg, aa in (zip(g, a) if isinstance(a, tuple) else [(g, a)]):
                if isinstance(aa, np.ndarray):
                    np.testing.assert_array_equal(gg, aa, err_msg=name)


def test_backend_option_is_validated(monkeypatch):
    with pytest.raises(TrainingError, match="backend"):
        _config("lif", 0.0, backend="gpu")
    assert EPropConfig.from_dict(_config("lif", 0.0, backend="cuda").to_dict()).backend == "cuda"
    monkeypatch.setattr(kcu, "available", lambda: (False, "no CUDA GPU found"))
    with pytest.raises(TrainingError, match="no CUDA GPU found"):
        EPropNetwork(_config("lif", 0.0, backend="cuda"))
    assert eprop._trial_kernels("cpu") is kc


def test_float32_trials_match_cpu_to_float32_tolerance():
    """float32, e-prop's default precision: the kernels keep the float type (the simulator's float32
    arithmetic follows numpy's promotion rules, not Numba's, so results agree to float32 rounding)."""
    c = _config("alif", 0.5, dtype="float32")
    cpu, gpu = EPropNetwork(c), EPropNetwork(replace(c, backend="cuda"))
    _boost(cpu)
    _boost(gpu)
    x, labels = _data(0)
    out_c, out_g = cpu.train_batch(x, labels), gpu.train_batch(x, labels)
    assert out_c["rate_hz"] > 20, "the test needs spiking hidden neurons"
    assert out_g["correct"] == out_c["correct"]
    np.testing.assert_allclose(out_g["loss"], out_c["loss"], rtol=1e-5)
    np.testing.assert_allclose(out_g["rate_hz"], out_c["rate_hz"], rtol=1e-5)
    for p in cpu.projections:
        for v, want in cpu.arrays(p).items():
            got = gpu.arrays(p)[v]
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=f"{p}.{v}")
    np.testing.assert_allclose(gpu.w_out, cpu.w_out, rtol=1e-4, atol=1e-6)
    assert gpu.w_out.dtype == np.float32
