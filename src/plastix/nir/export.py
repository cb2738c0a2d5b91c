"""Write a trained e-prop classifier or an engine network of built-in models as a NIR graph.

What is written, the node mapping, the time-step conventions and what other tools do not see are in
docs/nir.md.  An exporter is a function ``(model, convention, dt_s, alif_as_lif) -> (graph, result)``
chosen by :data:`EXPORTERS` from the model's type, so further network kinds (SD-SNN's ``Conv2d`` /
``AvgPool2d`` / ``Flatten`` layers) are one more entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._version import __version__
from ..model import neurons, postsynaptic, weight_update
from ..model.network import Network
from ..runtime import Simulation
from . import timing
from .units import (GRAPH_KEY, METADATA_FORMAT, MS_PER_S, NODE_KEY, RAGGED_KEYS, NIRError, check_convention,
                    continuous, to_json)


def require_nir():
    """The ``nir`` package, or a clear error saying how to install it."""
    try:
        import nir
    except ImportError:
        raise ImportError('plastix.nir needs the "nir" package: pip install "plastix[nir]"') from None
    return nir


@dataclass
class ExportResult:
    """What :func:`export` wrote.

    ``differences`` lists what a tool that reads only the NIR nodes (not plastix's metadata) will not
    reproduce; plastix itself re-imports all of it from the metadata.  ``latency`` gives, per neuron
    node, how many plastix steps its spikes come after NIR time (docs/nir.md, "Timing").
    """

    path: Path
    source: str
    convention: str
    dt_s: float
    nodes: list[str]
    differences: list[str] = field(default_factory=list)
    latency: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"path": str(self.path), "source": self.source, "convention": self.convention, "dt_s": self.dt_s,
                "nodes": self.nodes, "differences": self.differences}


def export(model, path, *, convention: str = "exact", dt_s: float | None = None,
           alif_as_lif: bool = False) -> ExportResult:
    """Write ``model`` to ``path`` as a NIR graph (HDF5).

    Parameters
    ----------
    model : EPropNetwork, str or Path, Simulation or Network
        A trained e-prop classifier (or a training ``out_dir`` / checkpoint folder, read with
        :func:`plastix.learning.trainer.load_model`), or an engine network of built-in models: a
        :class:`~plastix.Simulation` (its current weights are written) or a :class:`~plastix.Network`
        (built on the CPU to draw its initial weights).
    path : str or Path
        The ``.nir`` file to write.
    convention : {"exact", "euler"}
        How time constants are written (:mod:`plastix.nir.units`): ``"exact"`` writes the physical
        ``tau`` (exact integration at the model's dt); ``"euler"`` writes ``tau = dt_s / (1 - alpha)`` so
        that a forward-Euler tool stepping at ``dt_s`` reproduces the plastix step.
    dt_s : float, optional
        Step (seconds) the reading tool integrates at; only with ``convention="euler"`` (default: the
        model's dt).  snnTorch assumes 1e-4.
    alif_as_lif : bool
        NIR has no adaptive-threshold neuron: ALIF networks are refused unless this is True, in which
        case their neurons are written as LIF without adaptation (listed in ``differences``).
    """
    nir = require_nir()
    check_convention(convention)
    for accepts, write in EXPORTERS:
        if accepts(model):
            graph, result = write(_resolve(model), convention, dt_s, bool(alif_as_lif))
            break
    else:
        raise NIRError(f"model: cannot export a {type(model).__name__}; give an EPropNetwork, a training "
                       "out_dir / checkpoint folder, a Simulation or a Network")
    result.path = Path(path)
    nir.write(str(path), graph)
    return result


def _resolve(model):
    if isinstance(model, (str, Path)):
        from ..learning.trainer import load_model

        return load_model(model)
    if isinstance(model, Network):
        return Simulation(model, backend="cpu", parallel=False).build()
    return model


def _is_eprop(model) -> bool:
    from ..learning.eprop import EPropNetwork

    return isinstance(model, (EPropNetwork, str, Path))


def _step_seconds(model_dt_ms: float, convention: str, dt_s: float | None) -> float:
    own = model_dt_ms / MS_PER_S
    if dt_s is None:
        return own
    if not (isinstance(dt_s, (int, float)) and dt_s > 0 and math.isfinite(dt_s)):
        raise NIRError(f"dt_s must be a positive number of seconds, got {dt_s!r}")
    if convention == "exact" and not math.isclose(dt_s, own, rel_tol=1e-12):
        raise NIRError(f"dt_s = {dt_s:g} s: convention 'exact' writes the model's own step ({own:g} s); "
                       "use convention='euler' to write for a tool that steps at another dt")
    return float(dt_s)


# -- node builders ---------------------------------------------------------------------------------------
def _full(value, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64), (n,)).astype(np.float64)


def _neuron_node(nir, kind: str, n: int, alpha, gain, dt_s: float, convention: str, what: str, meta: dict, *,
                 v_leak=0.0, v_thresh=None, v_reset=None, syn=None):
    """A NIR neuron node of ``kind`` (LIF, CubaLIF, LI, CubaLI) for the plastix step (alpha, gain);
    ``syn = (alpha_syn, gain_syn)`` for the Cuba kinds."""
    tau, r = continuous(_full(alpha, n), _full(gain, n), dt_s, convention, what)
    md = {NODE_KEY: to_json(meta)}
    spiking = dict(v_threshold=_full(v_thresh, n), v_reset=_full(v_reset, n)) if v_thresh is not None else {}
    if syn is None:
        if kind == "LIF":
            return nir.LIF(tau=tau, r=r, v_leak=_full(v_leak, n), metadata=md, **spiking)
        return nir.LI(tau=tau, r=r, v_leak=_full(v_leak, n), metadata=md)
    tau_syn, w_in = continuous(_full(syn[0], n), _full(syn[1], n), dt_s, convention, what + " (synaptic current)")
    cls = nir.CubaLIF if kind == "CubaLIF" else nir.CubaLI
    return cls(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=_full(v_leak, n), w_in=w_in, metadata=md, **spiking)


def _weight_node(nir, pre, post, w, n_pre: int, n_post: int, meta: dict, bias=None):
    """Linear (or Affine with ``bias``) node of the synapses (pre[s], post[s], w[s]) in row order: the
    dense matrix [n_post, n_pre] (zeros where no synapse; duplicates summed) and the ragged form in the
    metadata (row lengths, targets and weights in row order), which plastix re-imports exactly."""
    order = np.argsort(np.asarray(pre, np.int64), kind="stable")   # row order, kept within a row
    pre = np.asarray(pre, np.int64)[order]
    post = np.asarray(post, np.int64)[order]
    w = np.asarray(w, np.float64)[order]
    dense = np.zeros((n_post, n_pre), np.float64)
    np.add.at(dense, (post, pre), w)
    md = {NODE_KEY: to_json(meta),
          RAGGED_KEYS[0]: np.bincount(pre, minlength=n_pre).astype(np.int32),
          RAGGED_KEYS[1]: post.astype(np.int32),
          RAGGED_KEYS[2]: w}
    if bias is None:
        return nir.Linear(weight=dense, metadata=md)
    return nir.Affine(weight=dense, bias=np.asarray(bias, np.float64), metadata=md)


def _ragged_list(ind, rowlen, w):
    """(pre, post, w) in row order from padded ragged arrays."""
    mask = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
    return np.nonzero(mask)[0], ind[mask].astype(np.int64), np.asarray(w)[mask]


def _graph_meta(source: str, dt_ms: float, dt_s: float, convention: str, precision: str, differences, **extra):
    doc = {"format": METADATA_FORMAT, "source": source, "plastix_version": __version__, "time_unit": "s",
           "dt_ms": dt_ms, "dt_s": dt_s, "convention": convention, "precision": precision,
           "spike_convention": "a spike is an input of 1 lasting one step",
           "differences": list(differences), **extra}
    return {GRAPH_KEY: to_json(doc)}


def _subgraph(nir, neuron_name: str, neuron, n: int, recurrent: dict):
    """NIR's recurrent pattern: a graph with Input -> neuron -> Output and neuron -> weight -> neuron."""
    nodes = {"input": nir.Input(input_type=np.array([n])), neuron_name: neuron, **recurrent,
             "output": nir.Output(output_type=np.array([n]))}
    edges = [("input", neuron_name), (neuron_name, "output")]
    for name in recurrent:
        edges += [(neuron_name, name), (name, neuron_name)]
    return nir.NIRGraph(nodes=nodes, edges=edges)


# -- e-prop classifiers ----------------------------------------------------------------------------------
def _export_eprop(net, convention: str, dt_s: float | None, alif_as_lif: bool):
    from ..learning.eprop import population_name

    nir = require_nir()
    c = net.config
    if c.adaptive and not alif_as_lif:
        raise NIRError("model: this e-prop network has ALIF neurons (beta > 0), and NIR has no adaptive-threshold "
                       "neuron; pass alif_as_lif=True (CLI: --alif-as-lif) to write them as LIF without adaptation "
                       "(their spikes will then differ)")
    dt_s = _step_seconds(c.dt, convention, dt_s)
    alpha = math.exp(-c.dt / c.tau_mem)
    kappa = math.exp(-c.dt / c.tau_out)
    n_ref = int(round(c.tau_refrac / c.dt))
    differences = ["threshold: plastix spikes at v >= v_thresh, NIR at v > v_thresh"]
    if c.reset == "subtract":
        differences.insert(0, f"reset: e-prop subtracts v_thresh ({c.v_thresh:g}) in the step after a spike; NIR's "
                           "LIF resets to v_reset = 0 at once (plastix re-imports the subtraction from the metadata; "
                           "train with reset='zero' for NIR's reset)")
    if n_ref:
        differences.append(f"refractory period of {n_ref} steps ({c.tau_refrac:g} ms) in the metadata only: "
                           "NIR neurons have none")
    if c.adaptive:
        differences.append(f"ALIF adaptation dropped (alif_as_lif=True): beta {c.beta:g} and tau_adapt "
                           f"{c.tau_adapt:g} ms are in the metadata, but plastix too re-imports LIF neurons")
    layers = c.layers
    pops = [population_name(l) for l in range(len(layers))]
    offset = np.concatenate([[0], np.cumsum(layers)])
    lif_meta = {"model": "eprop_lif", "reset": "subtract_next" if c.reset == "subtract" else "zero",
                "refrac_steps": n_ref, "alpha": alpha,
                "gain": 1.0, "threshold": ">="}
    lifs = {pop: _neuron_node(nir, "LIF", n, alpha, 1.0, dt_s, convention, f"population {pop!r}",
                              {**lif_meta, "population": pop}, v_thresh=c.v_thresh, v_reset=0.0)
            for pop, n in zip(pops, layers)}
    weights, recurrent, edges_in = {}, {pop: {} for pop in pops}, []
    size = {"input": c.num_inputs, **dict(zip(pops, layers))}
    for proj in net.projections:
        q = net.network.projections[proj]
        a = net.arrays(proj)
        pre, post, w = _ragged_list(a["ind"], a["rowlen"], a["w"])
        meta = {"projection": proj, "row_stride": int(a["ind"].shape[1])}
        node = _weight_node(nir, pre, post, w, size[q.pre.name], size[q.post.name], meta)
        if q.pre is q.post:
            recurrent[q.post.name]["w_rec"] = node
        else:
            weights[proj] = node
            edges_in.append((q.pre.name, proj, q.post.name))
    nodes = {"input": nir.Input(input_type=np.array([c.num_inputs]))}
    for pop, n in zip(pops, layers):
        nodes[pop] = _subgraph(nir, "lif", lifs[pop], n, recurrent[pop]) if recurrent[pop] else lifs[pop]
    edges = []
    for src, proj, dst in edges_in:
        nodes[proj] = weights[proj]
        if src == "input":
            edges += [(src, proj), (proj, dst)]
        else:   # layer-to-layer projections read the previous step's spikes: a one-step delay
            delay = f"{proj}_delay"
            nodes[delay] = nir.Delay(delay=np.full(size[src], dt_s))
            edges += [(src, delay), (delay, proj), (proj, dst)]
    read = range(len(layers)) if c.readout == "all" else [len(layers) - 1]
    for i, l in enumerate(read):
        name = "readout_w" if i == 0 else f"readout_w{i + 1}"
        w_out = np.asarray(net.w_out, np.float64)[:, offset[l]:offset[l + 1]]
        post, pre = np.nonzero(np.ones_like(w_out, bool))
        meta = {"projection": name, "dense": True}
        nodes[name] = _weight_node(nir, pre, post, w_out[post, pre], layers[l], c.num_outputs, meta,
                                   bias=np.asarray(net.b_out, np.float64) if i == 0 else None)
        edges += [(pops[l], name), (name, "readout")]
    nodes["readout"] = _neuron_node(nir, "LI", c.num_outputs, kappa, 1.0, dt_s, convention, "readout",
                                    {"model": "eprop_readout", "alpha": kappa, "gain": 1.0, "population": "readout"})
    nodes["output"] = nir.Output(output_type=np.array([c.num_outputs]))
    edges.append(("readout", "output"))
    meta = _graph_meta("eprop", c.dt, dt_s, convention, c.dtype, differences, eprop_config=c.to_dict())
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
    latency = {pop: 1 for pop in pops} | {"readout": 2}
    return graph, ExportResult(Path(), "eprop", convention, dt_s, list(nodes), differences, latency)


# -- engine networks of built-in models ------------------------------------------------------------------
def _reference_models() -> dict:
    return {"lif_to_reset": neurons.lif(reset="to_reset"), "lif_subtract": neurons.lif(reset="subtract"),
            "alif": neurons.alif(), "leaky_integrator": neurons.leaky_integrator(),
            "spike_source_array": neurons.spike_source_array(), "poisson": neurons.poisson()}


def _kind(model, refs: dict) -> str | None:
    for kind, ref in refs.items():
        if (model.sim is ref.sim and model.threshold is ref.threshold and model.reset is ref.reset
                and set(model.vars) == set(ref.vars)):
            return kind
    return None


def _psm_kind(psm) -> str | None:
    if psm.apply is postsynaptic.delta().apply:
        return "delta"
    if psm.apply is postsynaptic.exp_curr().apply:
        return "exp_curr"
    return None


def _export_engine(sim: Simulation, convention: str, dt_s: float | None, alif_as_lif: bool):
    nir = require_nir()
    net = sim.network
    dt_s = _step_seconds(net.dt, convention, dt_s)
    refs = _reference_models()
    kinds = {}
    for pop in net.populations.values():
        kind = _kind(pop.model, refs)
        if kind is None:
            raise NIRError(f"population {pop.name!r}: model {pop.model.name!r} has no NIR counterpart; exportable: "
                           "built-in lif, alif (with alif_as_lif=True), leaky_integrator, spike_source_array and "
                           "poisson populations")
        if kind == "alif" and not alif_as_lif:
            raise NIRError(f"population {pop.name!r}: ALIF neurons have no NIR counterpart (NIR has no adaptive "
                           "threshold); pass alif_as_lif=True to write them as LIF without adaptation")
        kinds[pop.name] = kind
    differences = ["the network's state is not exported: a loaded network starts at rest"]
    incoming = {name: [] for name in net.populations}
    static = weight_update.static()
    for q in net.projections.values():
        if kinds[q.pre.name] in ("leaky_integrator",):
            raise NIRError(f"projection {q.name!r}: its source {q.pre.name!r} does not spike")
        if kinds[q.post.name] in ("spike_source_array", "poisson"):
            raise NIRError(f"projection {q.name!r}: its target {q.post.name!r} is a spike source")
        psm = _psm_kind(q.postsynaptic)
        if psm is None:
            raise NIRError(f"projection {q.name!r}: postsynaptic model {q.postsynaptic.name!r} has no NIR counterpart; "
                           "exportable: delta (-> LIF / LI) and exp_curr (-> CubaLIF / CubaLI)")
        if "w" not in q.weight_update.vars:
            raise NIRError(f"projection {q.name!r}: weight-update model {q.weight_update.name!r} has no weight 'w'")
        if q.weight_update.on_pre is not static.on_pre or q.weight_update.vars.keys() != {"w"}:
            differences.append(f"projection {q.name!r}: plasticity ({q.weight_update.name}) not exported; its "
                               "current weights are")
        incoming[q.post.name].append((q, psm))
    for u in net.connectivity_updates.values():
        differences.append(f"connectivity update {u.name!r} ({u.model.name}) not exported; the current synapses are")
    synaptic = {}
    for name, qs in incoming.items():
        taus = {(psm, q.psm_params.get("tau")) for q, psm in qs}
        if len(taus) > 1:
            raise NIRError(f"population {name!r}: its incoming projections {[q.name for q, _ in qs]} use different "
                           f"postsynaptic models {sorted(map(str, taus))}; a NIR neuron node has one input current")
        synaptic[name] = next(iter(taus)) if taus else ("delta", None)
    delays = [(q.pre.name, q.post.name, 1 + q.delay, q.name) for q in net.projections.values()]
    sources = [n for n, k in kinds.items() if k in ("spike_source_array", "poisson")]
    plan = timing.export_plan(list(net.populations), sources, delays)

    nodes, edges = {}, []
    neuron_nodes, recurrent = {}, {n: {} for n in net.populations}
    for pop in net.populations.values():
        kind, n = kinds[pop.name], pop.size
        if kind in ("spike_source_array", "poisson"):
            nodes[pop.name] = nir.Input(input_type=np.array([n]), metadata={NODE_KEY: to_json(
                {"model": kind, "population": pop.name, "latency": 0})})
            if kind == "poisson":
                differences.append(f"population {pop.name!r}: a Poisson source becomes an input; its rate is not "
                                   "exported")
            continue
        d = pop.model.derive(pop.params, net.dt)
        psm, tau_syn = synaptic[pop.name]
        syn = (math.exp(-net.dt / tau_syn), 1.0) if psm == "exp_curr" else None
        meta = {"model": kind, "params": dict(pop.params), "population": pop.name, "latency": plan.latency[pop.name],
                "psm": psm, "psm_tau": tau_syn}
        what = f"population {pop.name!r}"
        if kind == "leaky_integrator":
            node = _neuron_node(nir, "CubaLI" if syn else "LI", n, d["alpha"], 1.0, dt_s, convention, what, meta,
                                syn=syn)
        else:
            if kind == "alif":
                alpha, gain, v_leak, v_reset = d["alpha"], 1.0, 0.0, 0.0
                differences.append(f"{what}: ALIF adaptation dropped (alif_as_lif=True); other tools reset it "
                                   "to 0 instead of subtracting v_thresh")
            else:
                alpha, gain, v_leak, v_reset = d["alpha"], d["gain"], pop.params["v_rest"], pop.params["v_reset"]
                if kind == "lif_subtract":
                    differences.append(f"{what}: reset by subtraction (v -= v_thresh - v_reset) in the metadata "
                                       "only; NIR's LIF resets to v_reset")
            if pop.params.get("tau_refrac", 0.0) > 0.0:
                differences.append(f"{what}: refractory period of {pop.params['tau_refrac']:g} ms in the metadata "
                                   "only (NIR neurons have none)")
            node = _neuron_node(nir, "CubaLIF" if syn else "LIF", n, alpha, gain, dt_s, convention, what, meta,
                                v_leak=v_leak, v_thresh=pop.params["v_thresh"], v_reset=v_reset, syn=syn)
        neuron_nodes[pop.name] = node
    biases = {}
    for pop in net.populations.values():
        if kinds[pop.name] in ("lif_to_reset", "lif_subtract"):
            b = sim.get(pop.name, "i_offset")
        elif kinds[pop.name] == "leaky_integrator":
            b = sim.get(pop.name, "bias")
        else:
            continue
        if np.any(b != 0):
            if not incoming[pop.name]:
                raise NIRError(f"population {pop.name!r}: its constant input (i_offset / bias) needs an incoming "
                               "projection to travel as an Affine bias")
            biases[pop.name] = np.asarray(b, np.float64)
            differences.append(f"population {pop.name!r}: its constant input acts from step 0 in plastix, from "
                               "NIR time 0 (when its first input can arrive) in other tools")
    for q in net.projections.values():
        pre, post = sim.connectivity(q.name)
        w = sim.get(q.name, "w")
        bias = biases.pop(q.post.name, None)
        meta = {"projection": q.name, "row_stride": int(sim.ragged(q.name)["ind"].shape[1]),
                "delay_steps": 1 + q.delay, "dense": bool(q.dense)}
        node = _weight_node(nir, pre, post, w, q.pre.size, q.post.size, meta, bias=bias)
        k = plan.extra[q.name]
        if q.pre is q.post and k == 0 and plan.back[q.name] and not recurrent[q.post.name]:
            recurrent[q.post.name][q.name] = node
            continue
        nodes[q.name] = node
        src = q.pre.name
        if k:
            nodes[f"{q.name}_delay"] = nir.Delay(delay=np.full(q.pre.size, k * dt_s))
            edges.append((src, f"{q.name}_delay"))
            src = f"{q.name}_delay"
        edges += [(src, q.name), (q.name, q.post.name)]
    for name, node in neuron_nodes.items():
        inner = "li" if kinds[name] == "leaky_integrator" else "lif"
        size = net.populations[name].size
        nodes[name] = _subgraph(nir, inner, node, size, recurrent[name]) if recurrent[name] else node
    outputs = [n for n in net.populations if kinds[n] not in ("spike_source_array", "poisson")
               and not any(q.pre.name == n and q.post.name != n for q in net.projections.values())]
    for name in outputs:
        out = f"{name}_output" if len(outputs) > 1 else "output"
        nodes[out] = nir.Output(output_type=np.array([net.populations[name].size]))
        edges.append((name, out))
    ordered = {k: nodes[k] for k in list(net.populations) + [k for k in nodes if k not in net.populations]
               if k in nodes}
    meta = _graph_meta("engine", net.dt, dt_s, convention, net.precision, differences, seed=int(net.seed))
    graph = nir.NIRGraph(nodes=ordered, edges=edges, metadata=meta)
    return graph, ExportResult(Path(), "engine", convention, dt_s, list(ordered), differences,
                               {n: plan.latency[n] for n in neuron_nodes})


#: (accepts(model), exporter) pairs, tried in order.
EXPORTERS = [
    (_is_eprop, _export_eprop),
    (lambda m: isinstance(m, (Simulation, Network)), _export_engine),
]
