"""Whole-population custom updates (per="population"): array code per batch element and tape step, e.g.
a per-step softmax error over a readout and a feedback matrix product -- against numpy on the recorded
tapes (CPU serial, CPU batched, CUDA: run on the host over copies)."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
from plastix import connect, neurons
from plastix.kernels import launch

VA = px.VarAccess
T = 15


def _li_sim(n, p, i_syn):
    n.v = p.kappa * n.v + i_syn + n.bias


READOUT = px.NeuronModel(name="readout", params={"kappa": 0.9}, vars={"v": 0.0, "bias": 0.0, "err": 0.0},
                         sim=_li_sim)
_LIF = neurons.lif()
#: LIF with a slot for a learning signal on its tape
HIDDEN = px.NeuronModel(name="lif_with_L", params=_LIF.params, vars={**_LIF.vars, "L": 0.0}, derived=_LIF.derived,
                        sim=_LIF.sim, threshold=_LIF.threshold, reset=_LIF.reset)


def _softmax_error(u):
    e = np.exp(u.y - u.y.max())
    u.err = e / e.sum()
    u.err[u.label] -= 1.0


SOFTMAX = px.CustomUpdateModel(name="softmax_error", per="population", scan="forward",
                               tape_refs={"y": VA.READ_ONLY, "err": VA.READ_WRITE},
                               global_vars={"label": px.Var(0, "int32", access=VA.READ_ONLY_DUPLICATE)},
                               update=_softmax_error)


def _feedback(u, p):
    u.L = p.gain * (u.W @ u.err)


FEEDBACK = px.CustomUpdateModel(name="feedback", per="population", scan="backward", params={"gain": 0.5},
                                var_refs={"W": VA.READ_ONLY}, tape_refs={"err": VA.READ_ONLY, "L": VA.READ_WRITE},
                                update=_feedback)


def _network():
    net = px.Network(dt=1.0, seed=3, precision="float64")
    net.add_population("inp", 10, neurons.poisson(), init={"rate": 300.0})
    net.add_population("hid", 6, HIDDEN)
    net.add_population("out", 4, READOUT)
    net.add_projection("ih", "inp", "hid", connectivity=connect.AllToAll(), init={"w": px.init.Uniform(0, 3.0)})
    net.add_projection("ho", "hid", "out", connectivity=px.model.network.Dense(),
                       init={"w": px.init.Normal(0.0, 1.0)})
    net.add_custom_update("softmax", "out", SOFTMAX, tape_refs={"y": "v", "err": "err"}, group="learn")
    net.add_custom_update("feedback", "hid", FEEDBACK, var_refs={"W": "ho.w"},
                          tape_refs={"err": "out.err", "L": "L"}, group="learn")
    return net


@pytest.mark.parametrize("mode", [dict(backend="cpu", parallel=False, batch_size=1),
                                  dict(backend="cpu", batch_size=3), dict(backend="cuda", batch_size=2)],
                         ids=["cpu-serial", "cpu-batched", "cuda-batched"])
def test_softmax_and_feedback_equal_numpy(mode, monkeypatch):
    if mode["backend"] == "cuda":
        pytest.importorskip("numba.cuda")
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    B = mode["batch_size"]
    sim = px.Simulation(_network(), **mode)
    labels = np.arange(B) % 4
    sim.set("softmax", "label", labels if B > 1 else labels[0])
    sim.run(T)
    y = sim.tape("out", "v").reshape(B, T, 4)
    assert np.ptp(y) > 0
    sim.custom_update("learn")
    p = np.exp(y - y.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    err = p - np.eye(4)[labels][:, None, :]
    np.testing.assert_allclose(sim.tape("out", "err").reshape(B, T, 4), err, rtol=1e-12, atol=1e-15)
    W = sim.ragged("ho", "w")["w"]  # dense: [pre, post]
    np.testing.assert_allclose(sim.tape("hid", "L").reshape(B, T, 6), 0.5 * err @ W.T, rtol=1e-12, atol=1e-15)


def _bad_write(u):
    u.label = 1


def test_population_errors():
    with pytest.raises(px.ModelError, match="no reductions or temps"):
        px.CustomUpdateModel(name="x", per="population", vars={"s": px.Var(0.0, access=VA.REDUCE_SUM)},
                             update=_bad_write)
    net = _network()
    with pytest.raises(px.NetworkError, match="target 'ih' is a projection"):
        net.add_custom_update("bad", "ih", FEEDBACK, var_refs={"W": "ho.w"})
    with pytest.raises(px.NetworkError, match="as a dense matrix, but 'sparse' is sparse"):
        net2 = _network()
        net2.add_projection("sparse", "inp", "hid", connectivity=connect.FixedProbability(0.5))
        net2.add_custom_update("bad2", "hid", FEEDBACK, var_refs={"W": "sparse.w"},
                               tape_refs={"err": "out.err", "L": "L"})
    bad = px.CustomUpdateModel(name="b", per="population", global_vars={"label": px.Var(0, "int32")},
                               update=_bad_write)
    net.add_custom_update("bad3", "out", bad)
    with pytest.raises(px.ModelError, match="u.label is a global var: read-only"):
        px.Simulation(net, backend="cpu").build()
