"""Read a NIR graph into a runnable plastix network (:class:`~plastix.nir.runner.NIRModel`).

Supported nodes: ``Input``, ``Output``, ``LIF``, ``CubaLIF``, ``LI``, ``CubaLI`` (neuron populations),
``Affine`` / ``Linear`` (the weights of a projection; an Affine's bias becomes a constant input of its
target), ``Delay`` (whole steps) and nested ``NIRGraph`` s (flattened).  Between two neuron nodes (or an
input and a neuron node) a path may hold one weight node and any number of Delay nodes.  Dense weights
become sparse projections without their zero entries, or the ragged form in the node's metadata when
plastix wrote it.  Anything else is an error that names the node.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import connectivity as connect
from ..model import neurons, postsynaptic
from ..model.network import Network
from . import models, timing
from .export import require_nir
from .runner import NIRModel
from .units import (CONVENTIONS, GRAPH_KEY, METADATA_FORMAT, MS_PER_S, NODE_KEY, RAGGED_KEYS, NIRError, continuous,
                    discrete, from_json, steps)

NEURON_TYPES = ("LIF", "CubaLIF", "LI", "CubaLI")
SUPPORTED = ("Input", "Output", "NIRGraph", "Affine", "Linear", "Delay") + NEURON_TYPES
_SPIKING = ("LIF", "CubaLIF")


@dataclass
class _Flat:
    nodes: dict            # full name -> NIR node
    kinds: dict            # full name -> "input" | "output" | "pass" | "weight" | "delay" | "neuron"
    edges: list            # (src, dst) full names
    population: dict       # neuron full name -> population name


def load(source, *, dt: float | None = None, integration: str | None = None, metadata: bool = True,
         precision: str | None = None) -> NIRModel:
    """A runnable plastix network from a NIR file (or a ``nir.NIRGraph``).

    Parameters
    ----------
    source : str, Path or nir.NIRGraph
    dt : float, optional
        plastix time step (ms).  Default: the step in the metadata of a file plastix wrote; required for
        other files (snnTorch writes for 1e-4 s: ``dt=0.1``).
    integration : {"exact", "euler"}, optional
        How NIR time constants become a step (:mod:`plastix.nir.units`).  Default: the convention in
        plastix's metadata, else ``"euler"`` (the discrete-time tools' reading).
    metadata : bool
        Use plastix's metadata (exact ragged synapses, e-prop's reset and refractory period, built-in
        engine models, latencies); ``False`` reads only the NIR nodes, as another tool would.
    precision : {"float32", "float64"}, optional
        Default: the metadata's, else float32.
    """
    nir = require_nir()
    what = str(source) if not isinstance(source, nir.NIRGraph) else "graph"
    graph = source if isinstance(source, nir.NIRGraph) else _read(nir, source)
    info = _graph_info(graph, what) if metadata else None
    if integration is None:
        integration = info["convention"] if info else "euler"
    if integration not in CONVENTIONS:
        raise NIRError(f"integration must be one of {CONVENTIONS}, got {integration!r}")
    if dt is None:
        if info is None:
            raise NIRError(f"dt: {what} was not written by plastix (or metadata=False), so its time step is unknown; "
                           "give dt in ms (snnTorch writes for 1e-4 s: dt=0.1)")
        dt_ms, dt_s = float(info["dt_ms"]), float(info["dt_s"])
    else:
        if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
            raise NIRError(f"dt must be a positive number of ms, got {dt!r}")
        dt_ms, dt_s = float(dt), float(dt) / MS_PER_S
    precision = precision or (info or {}).get("precision", "float32")
    flat = _flatten(nir, graph)
    return _build(nir, flat, info, dt_ms, dt_s, integration, precision, metadata)


def _read(nir, path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError, AssertionError, TypeError) as e:
        raise NIRError(f"{path}: not a readable NIR graph ({type(e).__name__}: {e})") from None


def _graph_info(graph, what: str) -> dict | None:
    md = graph.metadata if isinstance(graph.metadata, dict) else {}
    if GRAPH_KEY not in md:
        return None
    info = from_json(md[GRAPH_KEY], what)
    if info.get("format") != METADATA_FORMAT:
        raise NIRError(f"{what}: plastix metadata format {info.get('format')!r} is not supported ({METADATA_FORMAT}); "
                       "load(..., metadata=False) reads the NIR nodes alone")
    for key in ("dt_ms", "dt_s", "convention"):
        if key not in info:
            raise NIRError(f"{what}: plastix metadata lacks {key!r}")
    return info


# -- graph -----------------------------------------------------------------------------------------------
def _flatten(nir, graph) -> _Flat:
    flat = _Flat({}, {}, [], {})

    def walk(g, prefix: str, top: bool):
        io = {}
        for name, node in g.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                ins, outs, neurons_inside = walk(node, full + ".", False)
                if len(ins) != 1 or len(outs) != 1:
                    raise NIRError(f"node {full!r}: a nested graph needs exactly one Input and one Output node, "
                                   f"has {len(ins)} and {len(outs)}")
                io[full] = (ins[0], outs[0])
                if len(neurons_inside) == 1:
                    flat.population[neurons_inside[0]] = full
                continue
            kind = type(node).__name__
            if kind not in SUPPORTED:
                raise NIRError(f"node {full!r}: NIR {kind} nodes are not supported by plastix.nir.load; supported: "
                               f"{', '.join(SUPPORTED)}")
            flat.nodes[full] = node
            if kind == "Input":
                flat.kinds[full] = "input" if top else "pass"
            elif kind == "Output":
                flat.kinds[full] = "output" if top else "pass"
            elif kind in ("Affine", "Linear"):
                if np.ndim(node.weight) != 2:
                    raise NIRError(f"node {full!r}: {kind} weight must be a 2-D matrix, got shape "
                                   f"{np.shape(node.weight)}")
                flat.kinds[full] = "weight"
            elif kind == "Delay":
                flat.kinds[full] = "delay"
            else:
                flat.kinds[full] = "neuron"
                flat.population.setdefault(full, full)
        for a, b in g.edges:
            src, dst = prefix + a, prefix + b
            src = io[src][1] if src in io else src
            dst = io[dst][0] if dst in io else dst
            for end in (src, dst):
                if end not in flat.nodes:
                    raise NIRError(f"edge ({a!r}, {b!r}) of {prefix.rstrip('.') or 'the graph'} names no node")
            flat.edges.append((src, dst))
        ins = [prefix + n for n, x in g.nodes.items() if isinstance(x, nir.Input)]
        outs = [prefix + n for n, x in g.nodes.items() if isinstance(x, nir.Output)]
        inside = [prefix + n for n, x in g.nodes.items() if type(x).__name__ in NEURON_TYPES]
        return ins, outs, inside

    walk(graph, "", True)
    if not any(k == "input" for k in flat.kinds.values()):
        raise NIRError("the graph has no Input node")
    if not any(k == "output" for k in flat.kinds.values()):
        raise NIRError("the graph has no Output node")
    return flat


def _trace(flat: _Flat, target: str, back: set, dt_s: float):
    """Paths into ``target`` from input and neuron nodes: (source, cycle steps, Delay steps, weight node)."""
    into = {}
    for src, dst in flat.edges:
        into.setdefault(dst, []).append(src)
    found = []

    def walk(node, delta, k, weight, seen):
        for src in into.get(node, ()):
            d = delta + ((src, node) in back)
            kind = flat.kinds[src]
            if kind in ("input", "neuron"):
                found.append((src, d, k, weight))
                continue
            if src in seen:
                raise NIRError(f"node {src!r}: a cycle without a neuron node (an algebraic loop) cannot run")
            if kind == "output":
                raise NIRError(f"node {src!r}: an Output node cannot feed other nodes")
            if kind == "weight":
                if weight is not None:
                    raise NIRError(f"nodes {src!r} -> {weight!r}: two weight nodes in a row; a plastix projection "
                                   "holds one weight matrix (multiply them first)")
                walk(src, d, k, src, seen | {src})
            elif kind == "delay":
                delay = np.asarray(flat.nodes[src].delay, np.float64).ravel()
                if delay.size == 0 or not np.all(delay == delay[0]):
                    raise NIRError(f"node {src!r}: elementwise different delays are not supported (one delay per "
                                   "projection)")
                walk(src, d, k + steps(float(delay[0]), dt_s, f"node {src!r}"), weight, seen | {src})
            else:
                walk(src, d, k, weight, seen | {src})

    walk(target, 0, 0, None, frozenset())
    return found


def _size(node) -> int | None:
    shape = node.output_type.get("output") if isinstance(node.output_type, dict) else None
    if shape is None:
        return None
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    if len(shape) != 1:
        return None
    return shape[0]


# -- neuron nodes ----------------------------------------------------------------------------------------
def _param(node, name: str, n: int, what: str) -> np.ndarray:
    value = getattr(node, name, None)
    if value is None:
        raise NIRError(f"{what}: parameter {name!r} is missing")
    arr = np.asarray(value, np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.ravel()
    if arr.size != n:
        raise NIRError(f"{what}: parameter {name!r} has {arr.size} values for {n} neurons")
    if not np.all(np.isfinite(arr)):
        raise NIRError(f"{what}: parameter {name!r} must be finite")
    return arr


def _node_meta(node) -> dict | None:
    md = node.metadata if isinstance(node.metadata, dict) else {}
    return from_json(md[NODE_KEY], "node") if NODE_KEY in md else None


def _check_same(what: str, name: str, got, expected) -> None:
    if not np.allclose(got, expected, rtol=1e-6, atol=0.0):
        raise NIRError(f"{what}: {name} differs from plastix's metadata (was the file edited?); "
                       "load(..., metadata=False) reads the NIR nodes alone")


def _neuron(node, kind: str, n: int, meta: dict | None, info: dict | None, dt_s: float, integration: str,
            what: str):
    """(model, init arrays, psm) of a neuron node."""
    tau_name = "tau" if kind in ("LIF", "LI") else "tau_mem"
    tau, r = _param(node, tau_name, n, what), _param(node, "r", n, what)
    v_leak = _param(node, "v_leak", n, what)
    init = {"v_leak": v_leak}
    if kind in _SPIKING:
        init["v_thresh"] = _param(node, "v_threshold", n, what)
        init["v_reset"] = _param(node, "v_reset", n, what)
    if meta is not None and info is not None:
        file_dt, conv = float(info["dt_s"]), info["convention"]
        model_kind = meta.get("model")
        if model_kind in ("eprop_lif", "eprop_readout"):
            exp_tau, exp_r = continuous(np.full(n, meta["alpha"]), np.full(n, meta["gain"]), file_dt, conv, what)
            _check_same(what, tau_name, tau, exp_tau)
            _check_same(what, "r", r, exp_r)
            init.update(alpha=np.full(n, meta["alpha"]), gain=np.full(n, meta["gain"]), v=np.zeros(n))
            if model_kind == "eprop_readout":
                return models.li(), init, None
            reset = {"subtract_next": "subtract_next", "zero": "zero_ge"}.get(meta.get("reset", "subtract_next"))
            if reset is None:
                raise NIRError(f"{what}: unknown e-prop reset {meta['reset']!r} in the metadata")
            return models.lif(reset, refrac_steps=int(meta["refrac_steps"])), init, None
        if model_kind in ("lif_to_reset", "lif_subtract", "alif", "leaky_integrator"):
            params = meta["params"]
            if model_kind == "leaky_integrator":
                model = neurons.leaky_integrator(**params)
            elif model_kind == "alif":
                model = neurons.alif(**params)
            else:
                model = neurons.lif(reset=model_kind[4:], **params)
            psm = postsynaptic.exp_curr(meta["psm_tau"]) if meta.get("psm") == "exp_curr" else None
            return model, None, psm
        raise NIRError(f"{what}: unknown plastix model {model_kind!r} in the metadata")
    alpha, gain = discrete(tau, r, dt_s, integration, what)
    init.update(alpha=alpha, gain=gain, v=v_leak.copy())
    synaptic = kind.startswith("Cuba")
    if synaptic:
        a_syn, g_syn = discrete(_param(node, "tau_syn", n, what), _param(node, "w_in", n, what), dt_s, integration,
                                what + " (synaptic current)")
        init.update(alpha_syn=a_syn, gain_syn=g_syn)
    model = models.lif("zero", synaptic=synaptic) if kind in _SPIKING else models.li(synaptic=synaptic)
    return model, init, None


# -- building --------------------------------------------------------------------------------------------
def _synapses(node, meta_ok: bool, n_pre: int, n_post: int, what: str):
    """(pre, post, w, row_stride) in row order: the metadata's ragged form, else the non-zero entries."""
    w = np.asarray(node.weight, np.float64)
    if w.shape != (n_post, n_pre):
        raise NIRError(f"{what}: weight has shape {w.shape}, but its source gives {n_pre} values and its target "
                       f"has {n_post} neurons (expected ({n_post}, {n_pre}))")
    if not np.all(np.isfinite(w)):
        raise NIRError(f"{what}: weights must be finite")
    md = node.metadata if isinstance(node.metadata, dict) else {}
    if meta_ok and all(k in md for k in RAGGED_KEYS):
        rowlen = np.asarray(md[RAGGED_KEYS[0]], np.int64).ravel()
        post = np.asarray(md[RAGGED_KEYS[1]], np.int64).ravel()
        vals = np.asarray(md[RAGGED_KEYS[2]], np.float64).ravel()
        if rowlen.size != n_pre or rowlen.sum() != post.size or post.size != vals.size or \
                (post.size and (post.min() < 0 or post.max() >= n_post)):
            raise NIRError(f"{what}: its ragged metadata does not fit a {n_post} x {n_pre} matrix")
        pre = np.repeat(np.arange(n_pre), rowlen)
        dense = np.zeros_like(w)
        np.add.at(dense, (post, pre), vals)
        if not np.allclose(dense, w, rtol=1e-6, atol=1e-12):
            raise NIRError(f"{what}: its weight matrix differs from the ragged form in its metadata (edited after "
                           "export?); load(..., metadata=False) uses the matrix")
        meta = _node_meta(node) or {}
        stride = meta.get("row_stride")
        return pre, post, vals, (int(stride) if stride and stride >= rowlen.max(initial=0) and stride > 0 else None)
    pre, post = np.nonzero(w.T)
    return pre, post, w[post, pre], None


def _build(nir, flat: _Flat, info, dt_ms: float, dt_s: float, integration: str, precision: str,
           use_meta: bool) -> NIRModel:
    order = list(flat.nodes)
    out_edges = {}
    for src, dst in flat.edges:
        out_edges.setdefault(src, []).append(dst)
    inputs = [n for n in order if flat.kinds[n] == "input"]
    back = timing.back_edges(order, inputs, out_edges)
    neurons_ = [n for n in order if flat.kinds[n] == "neuron"]
    conns = []   # (source, target, delta, k, weight node, name)
    for target in neurons_:
        for src, delta, k, weight in _trace(flat, target, back, dt_s):
            conns.append((src, target, delta, k, weight))
    names = {}
    for src, dst, _, _, weight in conns:
        base = weight if weight is not None else f"{src}->{dst}"
        names[base] = names.get(base, 0) + 1
    named = []
    for src, dst, delta, k, weight in conns:
        base = weight if weight is not None else f"{src}->{dst}"
        name = base if names[base] == 1 else f"{base}:{src}->{dst}"
        named.append((src, dst, delta, k, weight, name))
    sizes = {}
    for n in inputs:
        size = _size(flat.nodes[n])
        if size is None:
            raise NIRError(f"node {n!r}: an input must be a vector of neurons, got shape "
                           f"{flat.nodes[n].output_type.get('output')}")
        sizes[n] = size
    for n in neurons_:
        size = _size(flat.nodes[n])
        if size is None or (np.ndim(getattr(flat.nodes[n], "tau", getattr(flat.nodes[n], "tau_mem", 0))) == 0):
            fed = [np.shape(flat.nodes[w].weight)[0] for _, d, _, _, w, _ in named if d == n and w is not None]
            if not fed:
                raise NIRError(f"node {n!r}: cannot tell its number of neurons (scalar parameters, no weight input)")
            size = int(fed[0])
        sizes[n] = size
    node_meta = {n: (_node_meta(flat.nodes[n]) if use_meta and info else None) for n in neurons_}
    plan = timing.load_plan(inputs + neurons_, inputs, [(s, d, de, k, nm) for s, d, de, k, _, nm in named])
    latency, extra = dict(plan.latency), dict(plan.extra)
    if info is not None and use_meta and info.get("source") == "engine":
        latency, extra = _engine_timing(flat, named, node_meta, latency, extra)
    net = Network(dt=dt_ms, seed=int((info or {}).get("seed", 0)), precision=precision)
    pop_of = {}
    psms = {}
    models_ = {}
    for n in order:
        if flat.kinds[n] == "input":
            pop_of[n] = net.add_population(n, sizes[n], neurons.spike_source_array()).name
        elif flat.kinds[n] == "neuron":
            what = f"node {n!r}"
            node = flat.nodes[n]
            model, init, psm = _neuron(node, type(node).__name__, sizes[n], node_meta[n], info, dt_s, integration,
                                       what)
            models_[n] = (model, init)
            psms[n] = psm
    bias = {n: np.zeros(sizes[n]) for n in neurons_}
    seen_bias = set()
    for src, dst, _, _, weight, _ in named:
        if weight is not None and type(flat.nodes[weight]).__name__ == "Affine" and (weight, dst) not in seen_bias:
            seen_bias.add((weight, dst))
            b = np.asarray(flat.nodes[weight].bias, np.float64).ravel()
            if b.size != sizes[dst]:
                raise NIRError(f"node {weight!r}: bias has {b.size} values for {sizes[dst]} target neurons")
            bias[dst] = bias[dst] + b
    for n in neurons_:
        model, init = models_[n]
        pop_name = flat.population[n]
        if init is None:   # a built-in engine model: its own initial state, the bias as its constant input
            var = "bias" if "bias" in model.vars else "i_offset"
            pop_of[n] = net.add_population(pop_name, sizes[n], model, init={var: bias[n]}).name
        else:
            init.update(bias=bias[n], t_on=np.full(sizes[n], latency[n] * dt_ms))
            pop_of[n] = net.add_population(pop_name, sizes[n], model, init=init).name
    skipped = []
    for src, dst, delta, k, weight, name in named:
        what = f"node {weight!r}" if weight is not None else f"edge {src!r} -> {dst!r}"
        if weight is None:
            if sizes[src] != sizes[dst]:
                raise NIRError(f"{what}: a direct edge needs equal sizes, got {sizes[src]} -> {sizes[dst]}")
            pre = post = np.arange(sizes[src])
            w, stride = np.ones(sizes[src]), None
        else:
            pre, post, w, stride = _synapses(flat.nodes[weight], use_meta and info is not None, sizes[src],
                                             sizes[dst], what)
        if pre.size == 0:
            skipped.append(name)
            continue
        net.add_projection(name, pop_of[src], pop_of[dst], connectivity=connect.FromArrays(pre, post),
                           postsynaptic=psms[dst], init={"w": w}, delay=int(extra[name]), row_stride=stride)
    outputs = {}
    into = {}
    for src, dst in flat.edges:
        into.setdefault(dst, []).append(src)
    for n in order:
        if flat.kinds[n] != "output":
            continue
        src = into.get(n, [])
        while len(src) == 1 and flat.kinds[src[0]] == "pass":
            src = into.get(src[0], [])
        if len(src) != 1 or flat.kinds[src[0]] != "neuron":
            raise NIRError(f"output {n!r}: must be fed by exactly one neuron node (plastix reports spikes or membrane "
                           f"potentials), is fed by {src}")
        kind = type(flat.nodes[src[0]]).__name__
        outputs[n] = (pop_of[src[0]], "spikes" if kind in _SPIKING else "v")
    pops_latency = {pop_of[n]: int(latency[n]) for n in inputs + neurons_}
    notes = [f"connection {s!r} has no synapses (all weights 0): not built" for s in skipped]
    return NIRModel(net, {n: pop_of[n] for n in inputs}, outputs, pops_latency, dt_ms, info, notes)


def _engine_timing(flat, named, node_meta, latency, extra):
    """Latencies and plastix delays exactly as the exporting engine network had them (metadata)."""
    lat = dict(latency)
    for n, meta in node_meta.items():
        if meta is None or "latency" not in meta:
            return latency, extra
        lat[n] = int(meta["latency"])
    ext = {}
    for src, dst, delta, k, weight, name in named:
        meta = _node_meta(flat.nodes[weight]) if weight is not None else None
        if meta is None or "delay_steps" not in meta:
            return latency, extra
        d = int(meta["delay_steps"])
        if d != lat[dst] - lat.get(src, 0) + delta + k:
            raise NIRError(f"node {weight!r}: its delay in plastix's metadata ({d} steps) does not match the graph's "
                           "timing (was the file edited?); load(..., metadata=False) reads the NIR nodes alone")
        ext[name] = d - 1
    return lat, ext
