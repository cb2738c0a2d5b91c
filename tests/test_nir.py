"""NIR export and import: round trips of e-prop classifiers (dense and DEEP R) and engine networks against
an independent numpy forward pass and the original simulation, the node-only reading, and bad input."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import plastix as px
from plastix.learning.eprop import EPropConfig, EPropNetwork

nir = pytest.importorskip("nir")
import plastix.nir as pn  # noqa: E402


def test_plastix_imports_without_nir_and_says_how_to_install():
    code = ("import sys; sys.modules['nir'] = None\n"
            "import plastix, plastix.nir\n"
            "try:\n    plastix.nir.load('x.nir')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 'pip install "plastix[nir]"' in out


# -- e-prop ----------------------------------------------------------------------------------------------
def eprop_forward(net: EPropNetwork, x, reset=None):
    """Hidden spikes z [B, T, H] and readout y [B, T, K] of an e-prop LIF network, in float64 numpy, from
    its weights (the recurrence of docs/eprop.md, refractory period and either reset included); ``reset``
    overrides the network's."""
    c = net.config
    reset_kind = reset or c.reset
    H, N, K = c.hidden_total, c.num_inputs, c.num_outputs
    offset = np.concatenate([[0], np.cumsum(c.layers)])
    layer = {("input" if l < 0 else px.learning.eprop.population_name(l)): l for l in range(-1, len(c.layers))}
    w_in, w_hh = np.zeros((N, H)), np.zeros((H, H))
    for proj in net.projections:
        q = net.network.projections[proj]
        pre, post = net.sim.connectivity(proj)
        w = net.sim.get(proj, "w").astype(np.float64)
        lo = offset[layer[q.post.name]]
        if q.pre.name == "input":
            np.add.at(w_in, (pre, post + lo), w)
        else:
            np.add.at(w_hh, (pre + offset[layer[q.pre.name]], post + lo), w)
    alpha, kappa = math.exp(-c.dt / c.tau_mem), math.exp(-c.dt / c.tau_out)
    n_ref = int(round(c.tau_refrac / c.dt))
    B, T, _ = x.shape
    v, z, y, refrac = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, c.num_outputs)), np.zeros((B, H), int)
    Z, Y = np.zeros((B, T, H)), np.zeros((B, T, K))
    for t in range(T):
        reset = c.v_thresh * z if reset_kind == "subtract" else alpha * v * z   # v(t-1) before its reset
        v = alpha * v + x[:, t] @ w_in + z @ w_hh - reset
        ref = refrac > 0
        refrac = np.where(ref, refrac - 1, refrac)
        z = np.where(~ref & (v >= c.v_thresh), 1.0, 0.0)
        refrac = np.where(z > 0, n_ref, refrac)
        y = kappa * y + z @ net.w_out.T.astype(np.float64) + net.b_out
        Z[:, t], Y[:, t] = z, y
    return Z, Y


def _trained(rng, **kw):
    cfg = dict(num_inputs=6, num_outputs=3, num_hidden=10, neuron="lif", v_thresh=0.3, tau_refrac=2.0, lr=0.02,
               seed=3, dtype="float64")
    cfg.update(kw)
    net = EPropNetwork(EPropConfig(**cfg))
    x = (rng.random((4, 30, cfg["num_inputs"])) < 0.25).astype(np.uint8)
    labels = rng.integers(0, cfg["num_outputs"], 4)
    for _ in range(3):
        r = net.train_batch(x, labels)
    return net, x, r


def _hidden(model, out, net):
    return np.concatenate([out[px.learning.eprop.population_name(l)] for l in range(len(net.config.layers))], axis=2)


def _pi_sum(y):
    p = np.exp(y - y.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)).sum(axis=-2)


def test_eprop_lif_classifier_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    net, x, _ = _trained(rng)
    res = pn.export(net, tmp_path / "eprop.nir")
    assert res.source == "eprop" and any("refractory" in d for d in res.differences)
    graph = nir.read(str(tmp_path / "eprop.nir"))
    lif = graph.nodes["hidden"].nodes["lif"]
    alpha = math.exp(-1.0 / 20.0)   # dt 1 ms, tau_mem 20 ms, written in seconds
    np.testing.assert_allclose(lif.tau, 0.020)
    np.testing.assert_allclose(lif.r, 1.0 / (1.0 - alpha))
    np.testing.assert_allclose(graph.nodes["readout_w"].bias, net.b_out)
    model = pn.load(tmp_path / "eprop.nir")
    pops = [p for p in model.network.populations if p != "input"]
    out = model.run(x, record=pops)
    z, y = eprop_forward(net, x)
    assert z.sum() > 20
    np.testing.assert_array_equal(_hidden(model, out, net), z)
    np.testing.assert_allclose(out["output"], y, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_pi_sum(out["output"]), net.predict_scores(x), rtol=1e-9)


def test_deep_r_network_keeps_its_ragged_synapses(tmp_path):
    rng = np.random.default_rng(2)
    net, x, r = _trained(rng, num_hidden=(10, 8), input_density=0.4, recurrent_density=0.3, rewiring="deep-r",
                         row_padding=1.5, lr=0.05)
    assert sum(s["removed"] for s in r["rewiring"].values()) > 0   # DEEP R has moved synapses
    path = tmp_path / "deep_r.nir"
    res = pn.export(net, path)
    assert "hid_hid2_delay" in res.nodes   # layer-to-layer: the previous step's spikes
    model = pn.load(path)
    sim = model.simulation
    for proj in net.projections:
        q = net.network.projections[proj]
        name = "w_rec" if q.pre is q.post else proj
        loaded = [p for p in model.network.projections if p.split(":")[0] == (f"{q.post.name}.w_rec"
                                                                            if q.pre is q.post else name)]
        assert len(loaded) == 1, (proj, list(model.network.projections))
        pre, post = net.sim.connectivity(proj)
        lpre, lpost = sim.connectivity(loaded[0])
        np.testing.assert_array_equal(lpre, pre)     # same synapses in the same row order
        np.testing.assert_array_equal(lpost, post)
        np.testing.assert_array_equal(sim.get(loaded[0], "w"), net.sim.get(proj, "w"))
        assert sim.ragged(loaded[0])["ind"].shape == net.sim.ragged(proj)["ind"].shape   # row capacity too
    dense_zeros = (nir.read(str(path)).nodes["in_hid"].weight == 0).mean()
    assert dense_zeros > 0.4                           # written densified
    out = model.run(x, record=["hidden", "hidden2"])
    z, y = eprop_forward(net, x)
    np.testing.assert_array_equal(_hidden(model, out, net), z)
    np.testing.assert_allclose(_pi_sum(out["output"]), net.predict_scores(x), rtol=1e-9)


def test_reset_to_zero_classifier_round_trip_and_its_metadata(tmp_path):
    rng = np.random.default_rng(5)
    net, x, _ = _trained(rng, reset="zero", recurrent_density=0.5)   # refractory period kept (2 steps)
    res = pn.export(net, tmp_path / "z.nir")
    assert not any(d.startswith("reset") for d in res.differences)   # NIR's own reset
    meta = json.loads(nir.read(str(tmp_path / "z.nir")).nodes["hidden"].nodes["lif"].metadata["plastix"])
    assert meta["reset"] == "zero" and meta["refrac_steps"] == 2
    model = pn.load(tmp_path / "z.nir")
    out = model.run(x, record=["hidden"])
    z, y = eprop_forward(net, x)
    assert z.sum() > 20
    np.testing.assert_array_equal(out["hidden"], z)
    assert not np.array_equal(eprop_forward(net, x, reset="subtract")[0], z)   # not the subtracting dynamics
    np.testing.assert_allclose(out["output"], y, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_pi_sum(out["output"]), net.predict_scores(x), rtol=1e-9)


def test_alif_is_refused_unless_asked_and_then_said(tmp_path):
    rng = np.random.default_rng(3)
    net = EPropNetwork(EPropConfig(num_inputs=4, num_outputs=2, num_hidden=5, seed=1))
    with pytest.raises(pn.NIRError, match="alif_as_lif=True"):
        pn.export(net, tmp_path / "a.nir")
    res = pn.export(net, tmp_path / "a.nir", alif_as_lif=True)
    assert any("adaptation dropped" in d for d in res.differences)
    assert pn.load(tmp_path / "a.nir").run((rng.random((5, 4)) < 0.5).astype(np.uint8))["output"].shape == (5, 2)


def test_euler_convention_for_other_tools_reloads_exactly(tmp_path):
    rng = np.random.default_rng(4)
    net, x, _ = _trained(rng, tau_refrac=0.0)
    pn.export(net, tmp_path / "e.nir", convention="euler", dt_s=1e-4)
    lif = nir.read(str(tmp_path / "e.nir")).nodes["hidden"].nodes["lif"]
    alpha = math.exp(-1.0 / 20.0)
    np.testing.assert_allclose(lif.tau, 1e-4 / (1.0 - alpha))    # forward Euler at 1e-4 s gives alpha back
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0)      # and an input gain of 1
    model = pn.load(tmp_path / "e.nir")
    assert model.dt == 1.0
    z, _ = eprop_forward(net, x)
    np.testing.assert_array_equal(model.run(x, record=["hidden"])["hidden"], z)
    # the nodes alone, read as a forward-Euler tool would at 1e-4 s: reset to 0 instead of subtracting
    plain = pn.load(tmp_path / "e.nir", metadata=False, dt=0.1, integration="euler", precision="float64")
    assert plain.network.populations["hidden"].model.name == "nir_lif"
    assert plain.run(x, record=["hidden"])["hidden"].sum() > 0


# -- engine networks -------------------------------------------------------------------------------------
def _engine(refrac=1.0, offset=0.3, reset="subtract"):
    net = px.Network(dt=0.5, seed=4)
    inp = net.add_population("inp", 8, px.neurons.spike_source_array())
    hid = net.add_population("hid", 12, px.neurons.lif(v_thresh=-60.0, tau_refrac=refrac), init={"i_offset": offset})
    out = net.add_population("out", 4, px.neurons.lif(reset=reset, v_thresh=-65.0, tau_refrac=0.0))
    ro = net.add_population("ro", 3, px.neurons.leaky_integrator(tau_m=10.0))
    normal = px.init.Normal
    net.add_projection("in_hid", inp, hid, connectivity=px.connect.FixedProbability(0.5), init={"w": normal(6.0, 3.0)})
    net.add_projection("hid_hid", hid, hid, connectivity=px.connect.FixedProbability(0.3),
                       init={"w": normal(0.0, 2.0)})
    net.add_projection("hid_out", hid, out, connectivity=px.connect.FixedProbability(0.6),
                       postsynaptic=px.postsynaptic.exp_curr(4.0), init={"w": normal(3.0, 1.0)})
    net.add_projection("in_out", inp, out, connectivity=px.connect.FixedProbability(0.5),
                       postsynaptic=px.postsynaptic.exp_curr(4.0), init={"w": normal(2.0, 1.0)}, delay=3)
    net.add_projection("hid_ro", hid, ro, connectivity=px.connect.AllToAll(), init={"w": normal(0.0, 1.0)})
    return net


def _run_engine(net, x, extra):
    sim = px.Simulation(net, backend="cpu", parallel=False)
    for p in ("hid", "out"):
        sim.record_spikes(p)
    sim.record("ro", "v")
    sim.build()
    sim.set_spike_times("inp", [np.nonzero(x[:, i])[0] * net.dt for i in range(x.shape[1])])
    sim.run(x.shape[0] + extra)
    dense = {}
    for p in ("hid", "out"):
        t, i = sim.spikes(p)
        d = np.zeros((x.shape[0] + extra, net.populations[p].size), np.uint8)
        d[np.rint(t / net.dt).astype(int), i] = 1
        dense[p] = d
    dense["ro"] = sim.recorded("ro", "v")
    return sim, dense


def test_engine_network_round_trip(tmp_path):
    net = _engine()
    rng = np.random.default_rng(0)
    x = (rng.random((40, 8)) < 0.3).astype(np.uint8)
    sim = px.Simulation(net, backend="cpu", parallel=False).build()
    res = pn.export(sim, tmp_path / "g.nir")
    assert {"in_out_delay", "hid_out_delay"} <= set(res.nodes)   # delay 3 and the skip path as Delay nodes
    assert any("subtraction" in d for d in res.differences) and any("refractory" in d for d in res.differences)
    g = nir.read(str(tmp_path / "g.nir"))
    assert type(g.nodes["out"]).__name__ == "CubaLIF" and type(g.nodes["hid"]).__name__ == "NIRGraph"
    np.testing.assert_allclose(g.nodes["hid"].nodes["lif"].r, 20.0)          # R = tau_m / C (MOhm)
    np.testing.assert_allclose(g.nodes["in_out_delay"].delay, 3 * 0.5e-3)   # seconds
    model = pn.load(tmp_path / "g.nir")
    extra = max(model.latency.values())
    _, ref = _run_engine(net, x, extra)
    out = model.run(x, record=["hid", "out", "ro"])
    assert ref["hid"].sum() > 10 and ref["out"].sum() > 10
    for p in ("hid", "out", "ro"):
        h = model.latency[p]
        np.testing.assert_array_equal(out[p], ref[p][h:h + x.shape[0]], err_msg=p)


def test_engine_network_read_from_its_nir_nodes_alone(tmp_path):
    """Without plastix's metadata the loader maps NIR's LIF / CubaLIF / LI onto its own models: for a
    network NIR can express (reset to v_reset, no refractory period, no constant input) the spikes match."""
    net = _engine(refrac=0.0, offset=0.0, reset="to_reset")
    rng = np.random.default_rng(5)
    x = (rng.random((40, 8)) < 0.3).astype(np.uint8)
    res = pn.export(px.Simulation(net, backend="cpu", parallel=False).build(), tmp_path / "g.nir")
    assert res.differences == ["the network's state is not exported: a loaded network starts at rest"]
    model = pn.load(tmp_path / "g.nir", metadata=False, dt=0.5, integration="exact")
    assert model.network.populations["out"].model.name == "nir_cuba_lif"
    _, ref = _run_engine(net, x, max(model.latency.values()))
    out = model.run(x, record=["hid", "out", "ro"])
    for p in ("hid", "out"):
        h = model.latency[p]
        np.testing.assert_array_equal(out[p], ref[p][h:h + x.shape[0]], err_msg=p)
    h = model.latency["ro"]
    np.testing.assert_allclose(out["ro"], ref["ro"][h:h + x.shape[0]], rtol=1e-5, atol=1e-5)


# -- CLI -------------------------------------------------------------------------------------------------
def test_cli_export_and_run(tmp_path):
    from plastix import datasets
    from plastix.cli.main import main
    from plastix.learning.trainer import Trainer

    rng = np.random.default_rng(6)
    spikes = (rng.random((24, 20, 5)) < 0.2).astype(np.uint8)
    ds = datasets.from_dense((spikes, np.arange(24) % 2))
    cfg = EPropConfig(num_inputs=5, num_outputs=2, num_hidden=6, neuron="lif", seed=2)
    Trainer(cfg, ds, batch_size=8, out_dir=tmp_path / "run", progress=False).fit(1)
    assert main(["export", "nir", str(tmp_path / "run"), str(tmp_path / "m.nir")]) == 0
    np.save(tmp_path / "x.npy", spikes[:3])
    assert main(["run", "nir", str(tmp_path / "m.nir"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "o.npz")]) == 0
    direct = pn.load(tmp_path / "m.nir").run(spikes[:3])["output"]
    with np.load(tmp_path / "o.npz") as saved:
        np.testing.assert_array_equal(saved["output"], direct)


# -- bad input -------------------------------------------------------------------------------------------
def _lif(n, **kw):
    p = dict(tau=np.full(n, 0.01), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


def _graph(nodes, edges, type_check=True):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=type_check)


def _io(n_in, n_out):
    return {"input": nir.Input(input_type=np.array([n_in])), "output": nir.Output(output_type=np.array([n_out]))}


def test_bad_graphs_are_clear_errors_naming_the_node(tmp_path):
    w = np.ones((3, 2))
    ok = _graph({**_io(2, 3), "fc": nir.Linear(weight=w), "lif": _lif(3)},
                [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(pn.NIRError, match="dt: .*not written by plastix"):
        pn.load(ok)
    assert pn.load(ok, dt=1.0).run(np.ones((4, 2), np.uint8))["output"].shape == (4, 3)
    conv = _graph({**_io(2, 3), "conv": nir.Conv1d(input_shape=2, weight=np.ones((1, 1, 1)), stride=1, padding=0,
                                                   dilation=1, groups=1, bias=np.zeros(1)), "lif": _lif(3)},
                  [("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(pn.NIRError, match="node 'conv': NIR Conv1d nodes are not supported"):
        pn.load(conv, dt=1.0)
    wrong = _graph({**_io(2, 3), "fc": nir.Linear(weight=np.ones((3, 4))), "lif": _lif(3)},
                   [("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(pn.NIRError, match=r"node 'fc': weight has shape \(3, 4\).*expected \(3, 2\)"):
        pn.load(wrong, dt=1.0)
    missing = _lif(3)
    missing.r = None
    with pytest.raises(pn.NIRError, match="node 'lif': parameter 'r' is missing"):
        pn.load(_graph({**_io(2, 3), "fc": nir.Linear(weight=w), "lif": missing},
                       [("input", "fc"), ("fc", "lif"), ("lif", "output")]), dt=1.0)
    with pytest.raises(pn.NIRError, match="node 'lif': forward Euler needs dt < tau"):
        pn.load(ok, dt=20.0)
    delay = _graph({**_io(2, 3), "d": nir.Delay(delay=np.full(2, 0.0015)), "fc": nir.Linear(weight=w), "lif": _lif(3)},
                   [("input", "d"), ("d", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(pn.NIRError, match="node 'd': delay 0.0015 s is not a whole number of steps"):
        pn.load(delay, dt=1.0)
    two = _graph({**_io(2, 3), "fc": nir.Linear(weight=w), "a": _lif(3), "ab": nir.Linear(weight=np.eye(3)),
                  "b": _lif(3), "ba": nir.Linear(weight=np.eye(3))},
                 [("input", "fc"), ("fc", "a"), ("a", "ab"), ("ab", "b"), ("b", "ba"), ("ba", "a"), ("b", "output")])
    with pytest.raises(pn.NIRError, match="cycle whose delay is shorter"):
        pn.load(two, dt=1.0)
    from_weight = _graph({**_io(2, 3), "fc": nir.Linear(weight=w)}, [("input", "fc"), ("fc", "output")])
    with pytest.raises(pn.NIRError, match="output 'output': must be fed by exactly one neuron node"):
        pn.load(from_weight, dt=1.0)
    model = pn.load(ok, dt=1.0)
    with pytest.raises(pn.NIRError, match="input 'input': plastix feeds inputs as spikes"):
        model.run(np.full((3, 2), 2, np.uint8))
    with pytest.raises(pn.NIRError, match=r"input 'input': expected \[steps, 2\]"):
        model.run(np.zeros((3, 5), np.uint8))
    with pytest.raises(FileNotFoundError):
        pn.load(tmp_path / "none.nir")
    (tmp_path / "junk.nir").write_text("not hdf5")
    with pytest.raises(pn.NIRError, match="not a readable NIR graph"):
        pn.load(tmp_path / "junk.nir")


def test_edited_weights_do_not_silently_lose_to_stale_metadata(tmp_path):
    net = _engine(refrac=0.0, offset=0.0, reset="to_reset")
    pn.export(px.Simulation(net, backend="cpu", parallel=False).build(), tmp_path / "g.nir")
    g = nir.read(str(tmp_path / "g.nir"))
    g.nodes["in_hid"].weight = g.nodes["in_hid"].weight * 2.0
    with pytest.raises(pn.NIRError, match="node 'in_hid': its weight matrix differs from the ragged form"):
        pn.load(g)
    model = pn.load(g, metadata=False, dt=0.5, integration="exact")   # the edited matrix, zeros dropped
    n = (g.nodes["in_hid"].weight != 0).sum()
    assert model.simulation.get("in_hid", "w").size == n


def test_export_refuses_what_nir_cannot_hold(tmp_path):
    net = px.Network()
    net.add_population("a", 3, px.neurons.poisson())
    net.add_population("b", 3, px.neurons.conductance_lif())
    net.add_projection("ab", "a", "b", connectivity=px.connect.OneToOne(), postsynaptic=px.postsynaptic.exp_cond())
    with pytest.raises(pn.NIRError, match="projection 'ab': postsynaptic model 'exp_cond' has no NIR counterpart"):
        pn.export(net, tmp_path / "x.nir")
    with pytest.raises(pn.NIRError, match="convention must be one of"):
        pn.export(net, tmp_path / "x.nir", convention="rk4")
    with pytest.raises(pn.NIRError, match="cannot export a dict"):
        pn.export({}, tmp_path / "x.nir")
    meta = json.loads(str(nir.read(str(tmp_path / "x.nir")).metadata["plastix"])) if (tmp_path / "x.nir").exists() \
        else None
    assert meta is None   # nothing written on refusal
