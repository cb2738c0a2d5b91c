"""e-prop gradients from engine models (plastix.learning.eprop_engine) equal those of the trial kernel
(EPropNetwork.gradients, itself checked against an independent BPTT reference in
tests/test_eprop_gradients.py), float64, LIF and ALIF, symmetric and random feedback, batched."""
from __future__ import annotations

import numpy as np
import pytest

from plastix.kernels import launch
from plastix.learning.eprop import EPropConfig, EPropNetwork
from plastix.learning.eprop_engine import EPropEngine


def _config(neuron, feedback="symmetric", **kw):
    return EPropConfig(num_inputs=12, num_outputs=3, num_hidden=10, neuron=neuron, input_density=0.6,
                       recurrent_density=0.5, feedback=feedback, dtype="float64", seed=5, v_thresh=0.3,
                       tau_refrac=2.0, c_reg=0.05, beta=0.5 if neuron == "alif" else 0.0174,
                       tau_adapt=40.0, **kw)


def _batch(B, T=30, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((B, T, 12)) < 0.15).astype(np.uint8), rng.integers(0, 3, B)


# (ALIF with symmetric feedback on the CPU differs from the random case only in the matrix read)
@pytest.mark.parametrize("neuron,feedback,backend", [("lif", "symmetric", "cpu"), ("alif", "random", "cpu"),
                                                     ("alif", "symmetric", "cuda")])
def test_engine_gradients_equal_trial_kernel(neuron, feedback, backend, monkeypatch):
    if backend == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
        monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    B = 3
    enet = EPropNetwork(_config(neuron, feedback))
    enet.w_out *= 3.0  # a readout that matters
    eng = EPropEngine.from_network(enet, B, backend=backend)
    x, labels = _batch(B)
    rate0 = enet.rate.copy()
    ref = enet.gradients(x, labels)
    got = eng.gradients(x, labels)
    assert np.abs(ref["in_hid"]).max() > 1e-4 and np.abs(ref["hid_hid"]).max() > 1e-6
    for key in ("in_hid", "hid_hid", "w_out", "b_out"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # the rate estimate moved the same way
    assert not np.allclose(enet.rate, rate0)
    np.testing.assert_allclose(eng.sim.get("rate_start", "rate"), enet.rate, rtol=1e-12)
