"""Optimisers composed from pieces (plastix.learning.optimizers), compiled as custom updates, against a
numpy Adam with DEEP R's L1 / soft DEEP R written here from the formulas."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch
from plastix.learning import optimizers as ox

NONE, DEEP_R, SOFT_DEEP_R = "none", "deep-r", "soft-deep-r"


def _on_pre(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine


SYN = px.WeightUpdateModel(name="trainable", vars={"w": 0.0, "sign": 1.0, "theta": 0.0, "grad": 0.0}, on_pre=_on_pre)


def _net(model, refs, precision="float64"):
    net = px.Network(dt=1.0, seed=4, precision=precision)
    net.add_population("a", 9, neurons.poisson())
    net.add_population("b", 7, neurons.lif())
    net.add_projection("ab", "a", "b", connectivity=connect.FixedProbability(0.5), weight_update=SYN,
                       init={"w": px.init.Normal(0.0, 0.5)})
    opt = ox.attach(net, "opt", "ab", model, var_refs=refs)
    return net, opt


def _start(sim, rng):
    w = sim.get("ab", "w")
    sim.set("ab", "sign", np.where(w >= 0, 1.0, -1.0))
    sim.set("ab", "theta", np.abs(w))


def _reference(sim, mode, steps_grads, lr, l1, scale, theta_min=-1.0, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba's efficient form) on copies of the existing synapses' values, in numpy."""
    w, sign, theta = (sim.get("ab", v).astype(float) for v in ("w", "sign", "theta"))
    m, v = np.zeros_like(w), np.zeros_like(w)
    for step, g in enumerate(steps_grads, start=1):
        g = scale * np.asarray(g, float)
        if mode == SOFT_DEEP_R:
            g = np.where(theta > 0, g * sign + l1, 0.0)
        elif mode == DEEP_R:
            g = g + l1 * sign
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        d = lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step) * m / (np.sqrt(v) + eps)
        if mode == SOFT_DEEP_R:
            theta = np.maximum(theta - d, theta_min)
            w = sign * np.maximum(theta, 0.0)
        else:
            w = w - d
    return {"w": w, "sign": sign, "theta": theta}, m


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_adam_with_deep_r_l1_equals_numpy(backend, monkeypatch):
    if backend == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    model = ox.chain(ox.gradient(scale=0.25), ox.add_l1(0.01, fixed_sign=True), ox.scale_by_adam(),
                     ox.scale_by_learning_rate(1e-2), ox.apply_updates())
    net, opt = _net(model, {"grad": "grad", "w": "w", "sign": "sign"})
    sim = px.Simulation(net, backend=backend)
    rng = np.random.default_rng(0)
    _start(sim, rng)
    grads = [rng.normal(size=sim.get("ab", "w").size) for _ in range(3)]
    ref, m_ref = _reference(sim, DEEP_R, grads, 1e-2, 0.01, 0.25)
    for g in grads:
        sim.set("ab", "grad", g)
        opt.step(sim)
    tol = dict(rtol=1e-12, atol=1e-14) if backend == "cpu" else dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.get("ab", "w"), ref["w"], **tol)
    np.testing.assert_allclose(sim.get("opt", "m"), m_ref, **tol)
    assert np.all(sim.get("ab", "grad") == 0.0)  # consumed
    assert float(sim.get("opt", "count")) == 3.0


def test_soft_deep_r_equals_numpy():
    """Soft DEEP R: the gradient reaches theta through the sign of active synapses."""
    model = ox.chain(ox.gradient(), ox.theta_gradient(0.02), ox.scale_by_adam(), ox.scale_by_learning_rate(0.05),
                     ox.soft_deep_r(theta_min=-0.2))
    net, opt = _net(model, {"grad": "grad", "w": "w", "sign": "sign", "theta": "theta"})
    sim = px.Simulation(net, backend="cpu")
    rng = np.random.default_rng(1)
    _start(sim, rng)
    grads = [rng.normal(size=sim.get("ab", "w").size) for _ in range(4)]
    ref, _ = _reference(sim, SOFT_DEEP_R, grads, 0.05, 0.02, 1.0, theta_min=-0.2)
    for g in grads:
        sim.set("ab", "grad", g)
        opt.step(sim)
    np.testing.assert_allclose(sim.get("ab", "theta"), ref["theta"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sim.get("ab", "w"), ref["w"], rtol=1e-12, atol=1e-14)
    assert np.any(sim.get("ab", "theta") < 0)  # some synapses went dormant


def test_noise_is_gaussian_and_learning_rate_is_a_runtime_param():
    model = ox.chain(ox.gradient(), ox.scale_by_learning_rate(0.1), ox.add_noise(0.5), ox.apply_updates())
    net, opt = _net(model, {"grad": "grad", "w": "w"})
    sim = px.Simulation(net, backend="cpu")
    w0 = sim.get("ab", "w")
    opt.step(sim)
    d = sim.get("ab", "w") - w0  # grad 0: noise only
    assert abs(d.mean()) < 0.25 and 0.3 < d.std() < 0.7
    sim.set_param("opt", "noise_std", 0.0)
    sim.set_param("opt", "lr", 2.0)
    sim.set("ab", "grad", 1.0)
    w1 = sim.get("ab", "w")
    opt.step(sim)
    np.testing.assert_allclose(sim.get("ab", "w"), w1 - 2.0)


def test_chain_errors():
    with pytest.raises(ox.OptimizerError, match="pieces share params"):
        ox.chain(ox.scale_by_learning_rate(0.1), ox.scale_by_learning_rate(0.2))
    with pytest.raises(ox.OptimizerError, match="needs one or more"):
        ox.chain()
    with pytest.raises(ox.OptimizerError, match=r"b1 must be in \[0, 1\)"):
        ox.scale_by_adam(b1=1.0)
    with pytest.raises(ox.OptimizerError, match="lr must be a positive number"):
        ox.scale_by_learning_rate(-1.0)
