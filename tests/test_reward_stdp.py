"""The reward-modulated STDP example (examples/reward_stdp.py) against a plain-numpy reimplementation of
the same dynamics, step by step in the order docs/semantics.md fixes (synapse dynamics, presynaptic
spikes, postsynaptic spikes, neuron update), driven by the same input spikes: spikes, eligibility traces,
the batch-reduced weight change and the clipped weights after every trial; CPU unbatched and batched, and
the CUDA kernels on numba-cuda's simulator.  float64 networks: 1e-10."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import plastix as px
from plastix.kernels import launch

EXAMPLE = Path(__file__).parents[1] / "examples" / "reward_stdp.py"
N_IN, N_OUT, TRIAL_MS = 12, 3, 50
#: small and busy, so that a few short trials pair many spikes and move the weights into both bounds
NET = dict(n_in=N_IN, n_out=N_OUT, lr=0.25, w_init=(0.3, 1.2), w_max=1.4, tau_c=60.0, seed=4)
STDP = dict(tau_plus=20.0, tau_minus=20.0, a_plus=1.0, a_minus=1.0)  # the example's defaults
LIF = dict(C=1.0, tau_m=20.0, v_rest=-70.0, v_reset=-70.0, v_thresh=-50.0, tau_refrac=2.0)  # plastix's lif()
TAU_SYN = 5.0  # ms, exp_curr
TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("example_reward_stdp", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Reference:
    """R-STDP on all-to-all dense matrices [pre, post], B trials side by side sharing the weights ``w``.

    Per step: ``c *= exp(-dt/tau_c)``; presynaptic neurons that spiked last step add their row of ``w``
    to ``in_syn`` and depress ``c`` by ``a_minus * y``; postsynaptic neurons that spiked last step
    potentiate their column of ``c`` by ``a_plus * x``; then the neurons: inputs decay ``x`` and spike
    from their trains (``x += 1``), outputs take ``i_syn = in_syn`` (then ``in_syn`` decays), decay ``y``,
    integrate (LIF, exact step), spike, reset, ``y += 1``.  After a trial: ``dw = sum_b r_b c_b``,
    ``w = clip(w + lr dw, 0, w_max)``."""

    def __init__(self, w, batch, dt=1.0):
        self.w = np.array(w, np.float64)
        self.B, self.dt = batch, dt
        self.decay_plus = math.exp(-dt / STDP["tau_plus"])
        self.decay_minus = math.exp(-dt / STDP["tau_minus"])
        self.decay_c = math.exp(-dt / NET["tau_c"])
        self.decay_syn = math.exp(-dt / TAU_SYN)
        self.alpha = math.exp(-dt / LIF["tau_m"])
        self.gain = (1.0 - self.alpha) * LIF["tau_m"] / LIF["C"]
        self.pre_spiked = np.zeros((batch, N_IN), bool)  # spikes of the last step, still to be delivered
        self.post_spiked = np.zeros((batch, N_OUT), bool)
        self.start_trial()

    def start_trial(self):
        B = self.B
        self.v = np.full((B, N_OUT), LIF["v_rest"])
        self.refrac = np.zeros((B, N_OUT))
        self.in_syn = np.zeros((B, N_OUT))
        self.x = np.zeros((B, N_IN))
        self.y = np.zeros((B, N_OUT))
        self.c = np.zeros((B, N_IN, N_OUT))

    def trial(self, trains, steps):
        """Run one trial; ``trains[b][i]``: spike times of input i (ms from the trial start, whole ms).
        Returns the output spikes per element as a list of (step in trial, neuron) pairs."""
        inputs = np.zeros((self.B, steps, N_IN), bool)
        for b, elem in enumerate(trains):
            for i, times in enumerate(elem):
                inputs[b, np.round(np.asarray(times) / self.dt).astype(int), i] = True
        spikes = [[] for _ in range(self.B)]
        for k in range(steps):
            for b in range(self.B):
                self._step(b, inputs[b, k])
                spikes[b] += [(k, j) for j in np.flatnonzero(self.post_spiked[b])]
        return spikes

    def _step(self, b, input_spikes):
        c = self.c[b]
        c *= self.decay_c                                     # 1. synapse dynamics
        for i in np.flatnonzero(self.pre_spiked[b]):          # 2. presynaptic spikes (row order)
            self.in_syn[b] += self.w[i]
            c[i] -= STDP["a_minus"] * self.y[b]
        for j in np.flatnonzero(self.post_spiked[b]):         # 3. postsynaptic spikes
            c[:, j] += STDP["a_plus"] * self.x[b]
        self.x[b] *= self.decay_plus                          # 4. neurons: inputs
        self.x[b, input_spikes] += 1.0
        self.pre_spiked[b] = input_spikes
        i_syn = self.in_syn[b].copy()                         # outputs
        self.in_syn[b] *= self.decay_syn
        self.y[b] *= self.decay_minus
        v, refrac = self.v[b], self.refrac[b]
        active = ~(refrac > 0.0)
        refrac[~active] -= self.dt
        v[active] = LIF["v_rest"] + self.alpha * (v[active] - LIF["v_rest"]) + self.gain * (i_syn[active] + 0.0)
        fired = (refrac <= 0.0) & (v >= LIF["v_thresh"])
        v[fired] = LIF["v_reset"]
        refrac[fired] = LIF["tau_refrac"]
        self.y[b, fired] += 1.0
        self.post_spiked[b] = fired

    def reward(self, rewards):
        dw = np.zeros_like(self.w)
        for b in range(self.B):  # in element order, as the engine's reduction
            dw += rewards[b] * self.c[b]
        self.w = np.minimum(np.maximum(self.w + NET["lr"] * dw, 0.0), NET["w_max"])
        return dw


def _dense(values, pre, post):
    """Per-synapse values (leading batch axis optional) -> [..., pre, post]."""
    out = np.full(values.shape[:-1] + (N_IN, N_OUT), np.nan)
    out[..., pre, post] = values
    return out


def _engine_spikes(sim, b, t0):
    t, i = sim.spikes("out", b) if sim.batch_size > 1 else sim.spikes("out")
    keep = t >= t0
    return sorted(zip(np.round((t[keep] - t0) / sim.dt).astype(int).tolist(), i[keep].tolist()))


def _compare_trials(ex, sim, trials=3):
    """Run ``trials`` trials with random rewards on the engine and the reference; compare after each."""
    B = sim.batch_size
    pre, post = sim.connectivity("in_out")
    assert len(pre) == N_IN * N_OUT
    ref = Reference(_dense(sim.get("in_out", "w"), pre, post), B)
    rng = np.random.default_rng(7)
    sim.record_spikes("out")
    low, high = [], []  # weights clipped to each bound
    for _ in range(trials):
        trains = ex.poisson_trains(rng, B, N_IN, 90.0, TRIAL_MS)
        t0 = ex.start_trial(sim, trains)
        sim.run(TRIAL_MS)
        ref.start_trial()
        ref_spikes = ref.trial(trains, TRIAL_MS)
        for b in range(B):
            assert _engine_spikes(sim, b, t0) == sorted(ref_spikes[b])
        c = sim.get("in_out", "c").reshape(B, -1)
        np.testing.assert_allclose(_dense(c, pre, post), ref.c, **TOL)
        np.testing.assert_allclose(sim.get("in_out", "x").reshape(B, N_IN), ref.x, **TOL)
        np.testing.assert_allclose(sim.get("out", "v").reshape(B, N_OUT), ref.v, **TOL)
        rewards = rng.normal(size=B)
        ex.reward(sim, rewards if B > 1 else rewards[0])
        dw = ref.reward(rewards)
        np.testing.assert_allclose(_dense(sim.get("gate", "dw"), pre, post), dw, **TOL)
        w = _dense(sim.get("in_out", "w"), pre, post)
        np.testing.assert_allclose(w, ref.w, **TOL)
        low.append(np.count_nonzero(ref.w == 0.0))
        high.append(np.count_nonzero(ref.w == NET["w_max"]))
    assert sum(len(s) for s in ref_spikes) >= 5 * B  # outputs fire: pairings to compare
    assert np.count_nonzero(ref.c) > ref.c.size // 2
    assert max(low) > 0 and max(high) > 0  # the clipping was exercised at both bounds


MODES = {"cpu-serial-b1": dict(backend="cpu", parallel=False, batch_size=1),
         "cpu-parallel-b1": dict(backend="cpu", parallel=True, partitions=2, batch_size=1),
         "cpu-batched-b3": dict(backend="cpu", batch_size=3),
         "cpu-batched-b2-one-thread": dict(backend="cpu", batch_size=2, threads=1)}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_reward_stdp_equals_numpy_reference(ex, mode):
    sim = px.Simulation(ex.build(**NET), **MODES[mode])
    _compare_trials(ex, sim)


@pytest.mark.parametrize("batch", [1, 3])
def test_reward_stdp_equals_numpy_reference_cuda(ex, batch, monkeypatch):
    pytest.importorskip("numba.cuda")
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)  # several blocks even for 36 synapses
    monkeypatch.setattr(launch, "MAX_SPIKE_BLOCKS", 4)
    sim = px.Simulation(ex.build(**NET), backend="cuda", batch_size=batch)
    _compare_trials(ex, sim, trials=2)


def test_training_loop_rewards_by_the_batch_mean(ex):
    """The example's train(): rewards are each trial's (target - mean of others) minus the batch mean;
    its history equals the reference run on the same input trains."""
    B, updates, rate, target = 3, 3, 90.0, 1
    sim = px.Simulation(ex.build(**NET), backend="cpu", batch_size=B)
    pre, post = sim.connectivity("in_out")
    ref = Reference(_dense(sim.get("in_out", "w"), pre, post), B)
    hist = ex.train(sim, updates, target=target, rate_hz=rate, trial_ms=TRIAL_MS, seed=5)
    rng = np.random.default_rng(5)  # train()'s input stream
    others = [k for k in range(N_OUT) if k != target]
    for u in range(updates):
        ref.start_trial()
        spikes = ref.trial(ex.poisson_trains(rng, B, N_IN, rate, TRIAL_MS), TRIAL_MS)
        counts = np.array([np.bincount([j for _, j in s], minlength=N_OUT) for s in spikes], float)
        perf = counts[:, target] - counts[:, others].mean(axis=1)
        ref.reward(perf - perf.mean())
        np.testing.assert_array_equal(hist["counts"][u], counts.mean(axis=0))
        np.testing.assert_allclose(hist["performance"][u], perf.mean(), **TOL)
        np.testing.assert_allclose(hist["mean_w"][u], ref.w.mean(axis=0), **TOL)
    assert np.ptp(hist["counts"]) > 0
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        ex.train(px.Simulation(ex.build(**NET), backend="cpu"), 1)
