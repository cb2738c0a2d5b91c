"""NIR against a second implementation: snnTorch.  Opt-in (heavy: torch): ``PLASTIX_PEERS=1`` with
``pip install torch==2.13.0 snntorch nirtorch`` (docs/nir.md).

Conventions: snnTorch writes and reads NIR for a forward-Euler step of dt = 1e-4 s, so plastix loads its
files with ``dt=0.1`` (ms), ``integration="euler"`` and exports for it with ``convention="euler",
dt_s=1e-4``.  NIR's LIF resets to v_reset at once, so the snnTorch networks use ``reset_mechanism="zero",
reset_delay=False`` (what snnTorch's importer builds).  Both run in float32 (snnTorch's spikes are float32).
"""
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
