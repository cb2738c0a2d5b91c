"""NIR against other implementations: snnTorch (both directions; a DEEP R-trained e-prop classifier's hidden
layer) and Sinabs (that classifier's LI readout).  Opt-in (heavy: torch): ``PLASTIX_PEERS=1`` with
``pip install torch==2.13.0 snntorch nirtorch`` and ``pip install --no-deps sinabs==3.1.3 pbr`` (its
pinned nir / nirtorch are older than snnTorch's; ``benchmarks/peers/install.sh nir`` does both; docs/nir.md).
The Sinabs test is skipped without Sinabs.

Conventions: snnTorch writes and reads NIR for a forward-Euler step of dt = 1e-4 s, so plastix loads its
files with ``dt=0.1`` (ms), ``integration="euler"`` and exports for it with ``convention="euler",
dt_s=1e-4``.  NIR's LIF resets to v_reset at once, so the snnTorch networks use ``reset_mechanism="zero",
reset_delay=False`` (what snnTorch's importer builds), and the e-prop classifier is trained with
``EPropConfig(reset="zero", tau_refrac=0)``.  Both run in float32 (snnTorch's spikes are float32).  Sinabs
reads LI's ``tau`` in time steps and requires ``r = 1`` (``v <- exp(-1/tau) v + I``, one step per input row).
"""
import json
import math
import os

import numpy as np
import pytest

pytestmark = pytest.mark.peers
if os.environ.get("PLASTIX_PEERS") != "1":
    pytest.skip("peer comparisons are opt-in: PLASTIX_PEERS=1", allow_module_level=True)
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nir = pytest.importorskip("nir")

import plastix as px  # noqa: E402
import plastix.nir as pn  # noqa: E402

T, N, H, K = 60, 6, 12, 4


def _topological(graph):
    """The graph with its nodes in dependency order.  nir.read returns nodes alphabetically, and
    nirtorch 2.6 (snnTorch's importer) breaks on a nested graph it meets before its inputs -- snnTorch's
    own recurrent files included -- so the nodes are reordered before handing them over."""
    preds, done, order = {}, set(), []
    for a, b in graph.edges:
        preds.setdefault(b, []).append(a)

    def visit(n, path):
        if n in done or n in path:
            return
        for p in preds.get(n, []):
            visit(p, path | {n})
        done.add(n)
        order.append(n)

    for n in graph.nodes:
        visit(n, frozenset())
    return nir.NIRGraph(nodes={k: graph.nodes[k] for k in order}, edges=graph.edges, metadata=graph.metadata)


class _SnnNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(N, H)
        self.rlif = snn.RLeaky(beta=0.9, linear_features=H, init_hidden=True, reset_mechanism="zero",
                               reset_delay=False)
        self.fc2 = torch.nn.Linear(H, K)
        self.lif2 = snn.Leaky(beta=torch.full((K,), 0.8), threshold=torch.ones(K), init_hidden=True,
                              reset_mechanism="zero", reset_delay=False)

    def forward(self, x):
        return self.lif2(self.fc2(self.rlif(self.fc1(x))))


def _input(seed):
    return (np.random.default_rng(seed).random((T, N)) < 0.3).astype(np.float32)


def test_snntorch_file_runs_in_plastix_with_the_same_spikes(tmp_path):
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = _SnnNet()
    with torch.no_grad():
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(6.0)
    x = _input(0)
    out, hid = [], []
    with torch.no_grad():
        for t in range(T):
            out.append(net(torch.from_numpy(x[t:t + 1])).numpy()[0])
            hid.append(net.rlif.spk.numpy()[0])
    out, hid = np.array(out), np.array(hid)
    graph = export_to_nir(net, torch.zeros(1, N), ignore_dims=[0])
    nir.write(str(tmp_path / "snn.nir"), graph)
    model = pn.load(tmp_path / "snn.nir", dt=0.1, integration="euler")
    got = model.run(x.astype(np.uint8), record=["rlif.lif"])
    assert hid.sum() > 20 and out.sum() > 5
    np.testing.assert_array_equal(got["rlif.lif"], hid)
    np.testing.assert_array_equal(got["output"], out)


def test_plastix_export_runs_in_snntorch_with_the_same_spikes(tmp_path):
    from snntorch.import_nir import import_from_nir

    dt, tau = 0.1, 2.0
    alpha = math.exp(-dt / tau)
    lif = px.neurons.lif(tau_m=tau, C=(1 - alpha) * tau, v_rest=0.0, v_reset=0.0, v_thresh=1.0, tau_refrac=0.0)
    net = px.Network(dt=dt, seed=2)
    net.add_population("inp", N, px.neurons.spike_source_array())
    net.add_population("hid", H, lif, init={"v": 0.0})
    net.add_population("out", K, lif, init={"v": 0.0})
    normal = px.init.Normal
    net.add_projection("in_hid", "inp", "hid", connectivity=px.connect.FixedProbability(0.6),
                       init={"w": normal(0.8, 0.4)})
    net.add_projection("hid_hid", "hid", "hid", connectivity=px.connect.FixedProbability(0.3),   # sparse
                       init={"w": normal(0.0, 0.5)})
    net.add_projection("hid_out", "hid", "out", connectivity=px.connect.FixedProbability(0.5),
                       init={"w": normal(0.6, 0.3)})
    sim = px.Simulation(net, backend="cpu", parallel=False)
    sim.record_spikes("hid")
    sim.record_spikes("out")
    sim.build()
    x = _input(1)
    sim.set_spike_times("inp", [np.nonzero(x[:, i])[0] * dt for i in range(N)])
    res = pn.export(sim, tmp_path / "px.nir", convention="euler", dt_s=1e-4)
    h = res.latency["out"]
    sim.run(T + h)
    times, idx = sim.spikes("out")
    mine = np.zeros((T + h, K), np.float32)
    mine[np.rint(times / dt).astype(int), idx] = 1
    theirs = import_from_nir(_topological(nir.read(str(tmp_path / "px.nir"))))
    state, out = None, []
    with torch.no_grad():
        for t in range(T):
            o, state = theirs(torch.from_numpy(x[t:t + 1]), state)
            out.append(o.numpy()[0])
    out = np.array(out)
    assert out.sum() > 10
    np.testing.assert_array_equal(out, mine[h:h + T])


def _hidden_part(graph):
    """The e-prop graph up to its hidden layer: snnTorch 1.0 maps no ``LI`` node (nirtorch raises
    "Unknown node type LI"), so it is handed Input -> in_hid -> hidden -> Output."""
    n = graph.nodes["hidden"].nodes["lif"].tau.shape[0]
    nodes = {k: graph.nodes[k] for k in ("input", "in_hid", "hidden")}
    nodes["output"] = nir.Output(output_type=np.array([n]))
    return nir.NIRGraph(nodes=nodes, edges=[("input", "in_hid"), ("in_hid", "hidden"), ("hidden", "output")],
                        metadata=graph.metadata)


def _li_euler(graph, z, dt_s):
    """The readout as a forward-Euler NIR tool reads the file's Affine + LI nodes at ``dt_s`` (float64):
    ``v <- v + dt/tau (v_leak - v + r (W z + b))``."""
    aff, li = graph.nodes["readout_w"], graph.nodes["readout"]
    v, out = np.zeros(z.shape[:1] + li.tau.shape), []
    for t in range(z.shape[1]):
        v = v + dt_s / li.tau * (li.v_leak - v + li.r * (z[:, t] @ aff.weight.T + aff.bias))
        out.append(v)
    return np.stack(out, axis=1)


def _deep_r_in_snntorch(tmp_path):
    """A sparse recurrent e-prop LIF classifier trained 4 batches with DEEP R, with NIR's neuron
    (``reset="zero"``, no refractory period), written for snnTorch (``convention="euler", dt_s=1e-4``) and
    run there on a test batch: (net, graph, x_test, snnTorch's hidden spikes [B, T, H], plastix's run of the
    file)."""
    from snntorch.import_nir import import_from_nir

    from plastix.learning.eprop import EPropConfig, EPropNetwork

    c = EPropConfig(num_inputs=8, num_outputs=3, num_hidden=20, neuron="lif", reset="zero", tau_refrac=0.0,
                    v_thresh=0.3, input_density=0.5, recurrent_density=0.3, rewiring="deep-r", row_padding=1.5,
                    lr=0.05, seed=3)   # float32, e-prop's default: snnTorch runs float32 too
    net = EPropNetwork(c)
    rng = np.random.default_rng(0)
    x = (rng.random((4, 40, c.num_inputs)) < 0.25).astype(np.uint8)
    labels = rng.integers(0, c.num_outputs, 4)
    moved = 0
    for _ in range(4):
        moved += sum(r["removed"] for r in net.train_batch(x, labels)["rewiring"].values())
    assert moved > 0   # DEEP R has rewired the sparse projections
    path = tmp_path / "deep_r.nir"
    res = pn.export(net, path, convention="euler", dt_s=1e-4)
    assert not any(d.startswith(("reset", "refractory")) for d in res.differences)
    graph = nir.read(str(path))
    with pytest.raises(ValueError, match="LI"):   # the readout: not something snnTorch 1.0 runs
        import_from_nir(_topological(graph))
    theirs = import_from_nir(_topological(_hidden_part(graph)))
    x_test = (rng.random((3, 60, c.num_inputs)) < 0.25).astype(np.uint8)
    state, z = None, []
    with torch.no_grad():
        for t in range(x_test.shape[1]):
            o, state = theirs(torch.from_numpy(x_test[:, t].astype(np.float32)), state)
            z.append(o.numpy())
    ours = pn.load(path).run(x_test, record=["hidden"])   # plastix running the file (metadata: e-prop's step)
    return net, graph, x_test, np.stack(z, axis=1), ours


def _scores(y):
    p = np.exp(y - y.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)).sum(axis=1)


def test_deep_r_classifier_runs_in_snntorch_with_the_same_spikes(tmp_path):
    """snnTorch's hidden spikes equal plastix's, and the readout computed from the file's LI node on
    snnTorch's spikes gives e-prop's class scores."""
    net, graph, x_test, z, ours = _deep_r_in_snntorch(tmp_path)
    c = net.config
    assert z.sum() > 100 and 0 < z.mean() < 0.5
    np.testing.assert_array_equal(z, ours["hidden"])
    # e-prop's own trial kernels: the same spike count per sample (their spikes are not exposed) ...
    ev = net._trial(x_test, np.zeros(len(x_test), np.int64), train=False)
    np.testing.assert_allclose(ev["rate_hz"] * x_test.shape[1] * c.dt * c.hidden_total / 1000.0,
                               z.sum(axis=(1, 2)), rtol=1e-6)
    # ... and the readout on snnTorch's spikes, as the LI node says, gives e-prop's scores and plastix's output
    y = _li_euler(graph, z.astype(np.float64), 1e-4)
    np.testing.assert_allclose(y, ours["output"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scores(y), net.predict_scores(x_test), rtol=1e-5, atol=1e-5)


def test_deep_r_readout_runs_in_sinabs_on_snntorch_spikes(tmp_path):
    """Sinabs 3.1.3 maps NIR's LI (to ExpLeak: ``v <- exp(-1/tau) v + I``, tau in *steps*) only when
    ``r == 1``: the file's readout (its Affine node as written, the LI node rewritten in that convention
    from the metadata's per-step decay) runs in Sinabs on snnTorch's hidden spikes and gives plastix's
    readout and e-prop's class scores."""
    sinabs_from_nir = pytest.importorskip("sinabs").from_nir
    net, graph, x_test, z, ours = _deep_r_in_snntorch(tmp_path)
    kappa = json.loads(graph.nodes["readout"].metadata["plastix"])["alpha"]
    H, K = z.shape[2], net.config.num_outputs
    li = nir.LI(tau=np.full(K, -1.0 / math.log(kappa)), r=np.ones(K), v_leak=np.zeros(K))
    readout = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([H])), "readout_w": graph.nodes["readout_w"],
                                  "readout": li, "output": nir.Output(output_type=np.array([K]))},
                           edges=[("input", "readout_w"), ("readout_w", "readout"), ("readout", "output")])
    B, T = z.shape[:2]
    model = sinabs_from_nir(readout, batch_size=B)
    with torch.no_grad():
        out = model(torch.from_numpy(z.reshape(B * T, H)))   # Sinabs' squeezed layout: [batch * time, ...]
    y = (out[0] if isinstance(out, tuple) else out).numpy().reshape(B, T, K)
    np.testing.assert_allclose(y, ours["output"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_scores(y.astype(np.float64)), net.predict_scores(x_test), rtol=1e-5, atol=1e-5)
