"""Per-synapse scans that accumulate into the presynaptic neurons' tape (``VarAccess.ACCUMULATE``): the
transposed propagation BPTT's adjoint needs, ``dz_i(t) = sum_j W_ij delta_j(t + 1 + delay)``, against a
dense numpy product; unbatched and batched on the CPU, and on CUDA (simulator); and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect
from plastix.kernels import launch

VA = px.VarAccess
T = 14


def _signal_sim(n, p, t):
    n.delta = tanh(0.37 * t - n.phase)  # noqa: F821 - engine math: a varied per-step series


def _never(n):
    return n.dz > 1e300   # a presynaptic population must be able to spike; this one never does


SOURCE = px.NeuronModel(name="slot", vars={"dz": 0.0}, threshold=_never)
TARGET = px.NeuronModel(name="signal", vars={"delta": 0.0, "phase": 0.0}, sim=_signal_sim)


def _back(u):
    u.gz = u.w * u.delta


BACK = px.CustomUpdateModel(name="transpose", var_refs={"w": VA.READ_ONLY},
                            tape_refs={"delta": VA.READ_ONLY, "gz": VA.ACCUMULATE}, scan="backward", update=_back)


def _net(delay):
    net = px.Network(dt=1.0, seed=3, precision="float64")
    net.add_population("a", 7, SOURCE)
    net.add_population("b", 5, TARGET, init={"phase": px.init.Uniform(0.0, 6.0)})
    net.add_projection("ab", "a", "b", connectivity=connect.FixedProbability(0.6), delay=delay,
                       init={"w": px.init.Normal(0.0, 1.0)})
    net.add_custom_update("back", "ab", BACK, tape_refs={"delta": "post.delta", "gz": "pre.dz"})
    return net


def _reference(sim, delta, delay):
    pre, post = sim.connectivity("ab")
    W = np.zeros((7, 5))
    W[pre, post] = sim.get("ab", "w")
    want = np.zeros((delta.shape[0], 7))
    lag = 1 + delay
    want[:T - lag] = delta[lag:] @ W.T
    return want


@pytest.mark.parametrize("delay", [0, 2])
def test_accumulated_tape_is_the_transposed_product(delay):
    sim = px.Simulation(_net(delay), backend="cpu")
    sim.run(T)
    delta = sim.tape("b", "delta")
    assert np.abs(delta).max() > 0.5
    sim.custom_update("back")
    np.testing.assert_allclose(sim.tape("a", "dz"), _reference(sim, delta, delay), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_batched_and_cuda_accumulate_per_element(backend, monkeypatch):
    if backend == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    net = _net(1)
    sim = px.Simulation(net, backend=backend, batch_size=2)
    sim.set("b", "phase", np.stack([np.linspace(0, 3, 5), np.linspace(1, 5, 5)]))
    sim.run(T)
    delta = sim.tape("b", "delta")
    sim.custom_update("back")
    got = sim.tape("a", "dz")
    for b in range(2):
        np.testing.assert_allclose(got[b], _reference(sim, delta[b], 1), rtol=1e-10, atol=1e-12)
    assert not np.allclose(got[0], got[1])


def test_accumulate_needs_a_presynaptic_tape_of_a_per_synapse_scan():
    with pytest.raises(px.ModelError, match="per-synapse scan"):
        px.CustomUpdateModel(name="bad", tape_refs={"x": VA.ACCUMULATE}, update=_back)
    net = _net(0)
    net.add_custom_update("wrong_side", "ab", BACK, tape_refs={"delta": "post.delta", "gz": "post.delta"})
    with pytest.raises(px.ModelError, match="pre.<var>"):
        px.Simulation(net, backend="cpu").build()
