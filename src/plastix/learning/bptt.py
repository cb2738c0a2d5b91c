"""Surrogate-gradient BPTT classifiers of SD-SNN's kind, trained on the engine.

A stack of layers (:mod:`.bptt_layers`: convolutions with shared kernels, average pooling, fully connected
and recurrent LIF layers, an optional leaky readout) is one plastix :class:`~plastix.Network` run by one
batched :class:`~plastix.Simulation`.  A trial is a forward run; the backward pass is the custom updates
of :mod:`.bptt_models` over its tape, top layer first: the loss writes ``dL/ds`` of the output layer, each
layer's adjoint scan turns ``dL/ds`` into ``du`` (time-reversed), the transposed projection accumulates
``sum_j w_ij du_j`` into the layer below at the step its spikes arrived, and each projection's weight
gradient is a sum over presynaptic events.  Adam is an optimiser chain (:mod:`.optimizers`) per
projection and per bias; a convolution's kernel and channel biases live in a parameter population
(``<layer>_param``: kernel entries in C order, then the channel biases) with its own chain, and the host
ties the kernel into the synapses (``plastix.conv.tie``) after every step.  On the CPU a conv layer's kernel
gradient and its (and a pooling layer's) transposed projection run from the geometry
(:mod:`plastix.conv.gradients`); the per-synapse updates do that work on CUDA (:meth:`BPTTNetwork.backward`).

Timing: a layer at depth ``D`` (input 0) runs trial step ``t`` at engine step ``D + t`` (a spike reaches
the next layer one step later); a trial of ``T`` steps runs ``T + D_out`` engine steps.  Everything else
is the no-delay network of the SD-SNN authors: the gradients equal BPTT through it
(tests/test_bptt_network.py against tests/sdsnn_reference.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields

import numpy as np

from ..conv import kernel_event_sum, kernel_sum, kernel_transpose_add, pool_transpose_add, tie, whole_entries
from ..errors import PlastixError
from ..kernels.spike_trains import trains_from_counts
from ..model import connectivity as connect
from ..model import init as init_
from ..model.network import Dense, Network
from . import bptt_models as bm
from . import eprop_models as em
from . import optimizers as ox
from .batches import (batched_simulation, check_count_batch, gradient_vector, set_gradient_vector,
                      simulation_batch)
from .bptt_layers import Layer, LayerSpecError, parse_layers

LOSSES = ("mse_rate", "ce_rate", "ce_step")


class BPTTError(PlastixError, ValueError):
    """Invalid BPTT configuration or data."""


@dataclass
class BPTTConfig:
    """Network and learning settings; defaults are the SD-SNN authors' (SDSNN.md 1a).

    ``input_shape``: (C, H, W) images or (N,) vectors; ``layers``: a spec string (:mod:`.bptt_layers`);
    ``steps``: time steps per sample (1 ms each); LIF ``decay``, ``v_thresh`` and the rectangular surrogate's
    half width ``surrogate_width``; ``kappa``: the li readout's leak; ``loss``: ``mse_rate`` (output LIF
    rates against one-hot, ``nn.MSELoss``), ``ce_rate`` (cross-entropy of output spike counts) or
    ``ce_step`` (li readout: per-step cross-entropy summed over steps); Adam; the learning rate times
    ``lr_decay_factor`` after every epoch ``e > 1`` with ``e % lr_decay_every == 0``; ``fc_density``:
    the fc layers' initial connection probability (1: all to all)."""

    input_shape: tuple
    layers: str = "conv15-pool2-conv40-pool2-fc300-fc10"
    steps: int = 20
    loss: str = "mse_rate"
    decay: float = 0.2
    v_thresh: float = 0.5
    surrogate_width: float = 0.5
    kappa: float = 0.8
    lr: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    lr_decay_every: int = 40
    lr_decay_factor: float = 0.1
    fc_density: float = 1.0
    seed: int = 0
    dtype: str = "float32"
    backend: str = "cpu"

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in np.atleast_1d(self.input_shape))
        try:
            self.stack = parse_layers(self.layers, self.input_shape)
        except LayerSpecError as e:
            raise BPTTError(str(e)) from None
        out = self.stack[-1]
        if self.loss not in LOSSES:
            raise BPTTError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if (self.loss == "ce_step") != (out.kind == "li"):
            raise BPTTError(f"loss {self.loss!r} does not fit output layer {out.name!r} ({out.kind}): ce_step "
                            "needs an li readout, mse_rate and ce_rate an fc (LIF) output")
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise BPTTError(f"steps must be a positive integer, got {self.steps!r}")
        for name in ("v_thresh", "lr", "adam_eps", "surrogate_width"):
            if not getattr(self, name) > 0:
                raise BPTTError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("decay", "kappa"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BPTTError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BPTTError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 < self.fc_density <= 1.0:
            raise BPTTError(f"fc_density must be in (0, 1], got {self.fc_density!r}")
        if not isinstance(self.lr_decay_every, (int, np.integer)) or self.lr_decay_every < 1:
            raise BPTTError(f"lr_decay_every must be a positive integer, got {self.lr_decay_every!r}")
        if not 0.0 < self.lr_decay_factor <= 1.0:
            raise BPTTError(f"lr_decay_factor must be in (0, 1], got {self.lr_decay_factor!r}")
        if self.dtype not in ("float32", "float64"):
            raise BPTTError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.backend not in ("cpu", "cuda"):
            raise BPTTError(f"backend must be 'cpu' or 'cuda', got {self.backend!r}")

    @property
    def num_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def num_classes(self) -> int:
        return self.stack[-1].size

    def lr_at(self, epoch: int) -> float:
        """The authors' step schedule: ``lr * factor ** (number of epochs e in 2..epoch with e % every == 0)``."""
        k = sum(1 for e in range(2, epoch + 1) if e % self.lr_decay_every == 0)
        return self.lr * self.lr_decay_factor ** k

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BPTTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise BPTTError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def _uniform(rng, bound: float, shape) -> np.ndarray:
    return rng.uniform(-bound, bound, shape)


class BPTTNetwork:
    """The trainable stack and its state in one batched :class:`Simulation` (:attr:`sim`).

    Populations: ``input`` (a spike-count source), one per layer (named as in :mod:`.bptt_layers`), and a
    parameter population ``<conv>_param`` per convolution.  Projections into layer ``L``: ``L_syn`` (and
    ``L_rec`` for a recurrent fc).  ``batch_size`` elements run side by side; a call with fewer samples pads
    the batch with inactive elements, one with more runs in slices whose gradients add up.

    ``loss_batch``: the batch whose mean loss the raw gradients are scaled for (default ``batch_size``).
    Data-parallel training gives every rank the global batch here, so that each sample's gradient carries
    the same bits as in one process running the whole batch."""

    def __init__(self, config: BPTTConfig, *, batch_size: int = 32, headroom: float = 1.0,
                 attach=None, loss_batch: int | None = None):
        self.config = c = config
        self.layers: list[Layer] = c.stack
        self.batch_size = simulation_batch(batch_size, BPTTError)
        self.depth_out = len(self.layers)
        #: the backward pass visits only the tape rows of each layer's trial steps (:meth:`backward`)
        self.tape_windows = True
        self._rng = np.random.default_rng([c.seed, 11])
        self.network = self._describe(headroom)
        if attach is not None:   # e.g. SD-SNN's connectivity updates, added before the build
            attach(self.network)
        self.sim = batched_simulation(self.network, c.backend, self.batch_size, BPTTError)
        for L in self.layers:
            if L.kind == "conv":
                self._push_conv(L, self._initial_conv.pop(L.name))
            elif L.kind in ("fc", "li"):
                self.sim.set(L.name, "bias", self._initial_bias.pop(L.name))
        self.opt_step = 0
        self.lr = c.lr
        self.held_zero: dict = {}   # layer -> (kernel entries, units) kept at 0 (hold_zero)
        full = self.batch_size if loss_batch is None else simulation_batch(loss_batch, BPTTError)
        scale = 2.0 / (full * c.num_classes) if c.loss == "mse_rate" else 1.0 / full
        self.sim.set_param("loss", "scale", scale)   # sums over the batch; apply_gradients divides by the samples
        self._grad_scale = full                     # ... so the chain multiplies back by batch / samples

    # -- description -----------------------------------------------------------------------------------
    def _describe(self, headroom: float) -> Network:
        c = self.config
        net = Network(dt=1.0, seed=c.seed, precision=c.dtype)
        net.add_population("input", c.num_inputs, em.input_model(0.0))
        self._initial_conv, self._initial_bias = {}, {}
        self.projections: dict[str, tuple[str, str, bool]] = {}   # name -> (pre, post, graded pre)
        self._conv_backs: dict[str, tuple[Layer, str]] = {}   # conv / pool transposes: name -> (layer, var below)
        prev, graded = "input", True
        for depth, L in enumerate(self.layers, start=1):
            if L.kind == "conv":
                net.add_population(L.name, L.size, bm.sdsnn_lif(depth, c.decay, c.v_thresh))
                geo = L.geometry
                fan_in = geo.kernel_shape[1] * geo.kernel_shape[2] * geo.kernel_shape[3]
                kernel = _uniform(self._rng, 1.0 / math.sqrt(fan_in), geo.kernel_shape)
                bias = _uniform(self._rng, 1.0 / math.sqrt(fan_in), geo.channels)
                self._initial_conv[L.name] = (kernel, bias)
                net.add_projection(f"{L.name}_syn", prev, L.name, connectivity=geo,
                                   weight_update=bm.synapse(graded, conv=True), init=geo.synapse_init(kernel))
                net.add_population(f"{L.name}_param", kernel.size + bias.size, bm.parameters())
            elif L.kind == "pool":
                net.add_population(L.name, L.size, bm.pool_model())
                net.add_projection(f"{L.name}_syn", prev, L.name, connectivity=L.geometry,
                                   weight_update=bm.synapse(graded, conv=False), init={"w": L.geometry.weight})
            else:
                model = (bm.sdsnn_lif(depth, c.decay, c.v_thresh) if L.kind == "fc"
                         else bm.li_readout(depth, c.kappa))
                net.add_population(L.name, L.size, model)
                bound = 1.0 / math.sqrt(L.in_size)
                self._initial_bias[L.name] = _uniform(self._rng, bound, L.size)
                if c.fc_density >= 1.0 or L.kind == "li":
                    w = _uniform(self._rng, bound, (L.in_size, L.size)).ravel()
                    conn = connect.AllToAll()
                else:
                    w = None
                    conn = connect.FixedProbability(c.fc_density)
                init = {"w": w} if w is not None else {"w": init_.Uniform(-bound, bound)}
                net.add_projection(f"{L.name}_syn", prev, L.name, connectivity=conn,
                                   weight_update=bm.synapse(graded, conv=False), init=init,
                                   headroom=headroom if L.kind == "fc" else 1.0)
                if L.recurrent:
                    w = _uniform(self._rng, 1.0 / math.sqrt(L.size), (L.size, L.size))
                    np.fill_diagonal(w, 0.0)
                    net.add_projection(f"{L.name}_rec", L.name, L.name, connectivity=Dense(),
                                       weight_update=bm.synapse(False, conv=False), init={"w": w.ravel()})
                    self.projections[f"{L.name}_rec"] = (L.name, L.name, False)
            self.projections[f"{L.name}_syn"] = (prev, L.name, graded)
            prev, graded = L.name, L.kind == "pool"
        self._backward(net)
        self._optimisers(net)
        return net

    def _backward(self, net: Network) -> None:
        """The gradient updates, each in its own group, listed in :attr:`_backward_order` in the order they
        must run (:meth:`backward`): the loss, then per layer from the top its adjoint, the transposed
        projection into the layer below, and its weight gradients.  A conv layer's weight gradient is not in
        the list: :meth:`_collect_conv_gradients` sums it by kernel entry after the pass."""
        c, out = self.config, self.layers[-1]
        order: list[str] = []
        self._rows: dict[str, tuple[int, int]] = {}   # update -> the tape rows it needs (see backward)

        def add(name, target, model, rows=None, **kw):
            net.add_custom_update(name, target, model, group=name, **kw)
            order.append(name)
            if rows is not None:
                self._rows[name] = rows

        loss = {"mse_rate": bm.rate_mse, "ce_rate": bm.ce_rate, "ce_step": bm.ce_step}[c.loss](c.steps)
        add("loss", out.name, loss)
        for depth in range(len(self.layers), 0, -1):
            L = self.layers[depth - 1]
            trial = (depth, depth + c.steps)   # the layer's trial steps: its only tape rows with a gradient
            if L.kind == "li":
                add(f"{L.name}_adj", L.name, bm.li_adjoint(depth, c.kappa), rows=trial)
            elif L.recurrent:
                add(f"{L.name}_adj", L.name, bm.recurrent_adjoint(depth, c.decay, c.v_thresh, c.surrogate_width),
                    var_refs={"W": f"{L.name}_rec.w"})
                add(f"{L.name}_bias_grad", L.name, bm.tape_sum(), rows=trial)
            elif L.spiking:
                # the adjoint recomputes s from u; its tape is kept where a layer above that is not a
                # pooling reads it (SD-SNN's gradient probe); the loss tapes the output's itself
                above = self.layers[depth] if depth < len(self.layers) else None
                taped = above is not None and above.kind != "pool"
                add(f"{L.name}_adj", L.name, bm.adjoint(depth, c.decay, c.v_thresh, c.surrogate_width,
                                                        spikes_on_tape=taped), rows=trial)
            proj = f"{L.name}_syn"
            pre, _, graded = self.projections[proj]
            if pre != "input":   # the input needs no gradient
                below = self.layers[depth - 2]
                into = "pre.du" if below.kind == "pool" else "pre.g"
                add(f"{proj}_back", proj, bm.transpose(), rows=trial, var_refs={"w": "w"},
                    tape_refs={"du": "post.du", "gz": into})
                if L.kind in ("conv", "pool"):
                    self._conv_backs[f"{proj}_back"] = (L, into.split(".")[1])
            if L.trainable:
                refs = {"du": "post.du", "x": "pre.cnt"} if graded else {"du": "post.du"}
                if L.kind == "conv":   # the per-synapse way, for CUDA (see _collect_conv_gradients)
                    net.add_custom_update(f"{proj}_gw", proj, bm.weight_gradient(graded), tape_refs=refs,
                                          group=f"{proj}_gw")
                    self._rows[f"{proj}_gw"] = trial
                else:
                    add(f"{proj}_gw", proj, bm.weight_gradient(graded), rows=trial, tape_refs=refs)
                if L.recurrent:
                    add(f"{L.name}_rec_gw", f"{L.name}_rec", bm.weight_gradient(False), rows=trial,
                        tape_refs={"du": "post.du"})
        self._backward_order = order

    def _by_entry(self, proj: str) -> bool:
        """Whether conv projection ``proj``'s backward work runs per kernel entry on the host
        (:mod:`plastix.conv.gradients`): on the CPU backend, with every kernel entry whole or absent."""
        return self.config.backend == "cpu" and whole_entries(self.sim, proj)

    def backward(self) -> dict[str, float]:
        """The backward pass over the last forward run's tape (the loss's labels set): every gradient update
        in order, then the conv layers' kernel gradients (:meth:`_collect_conv_gradients`).  A conv layer's
        transposed projection runs from its geometry on the CPU (:func:`~plastix.conv.kernel_transpose_add`,
        the same sums as its per-synapse update in another order), and so does a pooling layer's
        (:func:`~plastix.conv.pool_transpose_add`).  Returns seconds per update (conv
        kernel gradients as ``<conv>_syn_gw``)."""
        seconds = {}
        by_entry = {f"{L.name}_syn": self._by_entry(f"{L.name}_syn") for L in self.layers if L.kind == "conv"}
        for name in self._backward_order:
            t0 = time.perf_counter()
            L, into = self._conv_backs.get(name, (None, None))
            rows = self._window(name)
            if L is not None and L.kind == "pool" and self.config.backend == "cpu":
                pool_transpose_add(self.sim, f"{L.name}_syn", "du", into, rows=rows)
            elif L is not None and L.kind == "conv" and by_entry[f"{L.name}_syn"]:
                kernel_transpose_add(self.sim, f"{L.name}_syn", "du", into, self.conv_parameters(L.name)[0],
                                     rows=rows)
            else:
                self.sim.custom_update(name, rows=rows)
            seconds[name] = time.perf_counter() - t0
        seconds.update(self._collect_conv_gradients(by_entry))
        return seconds

    def _window(self, update: str) -> tuple[int, int] | None:
        """The tape rows gradient update ``update`` visits: a layer at depth ``D`` has a gradient only at its
        trial's steps, rows ``D .. D + T - 1`` (``dL/ds`` and the adjoint are exactly 0 before, where the
        layer has no input yet, and after, where its spikes would reach the output after the tape ends), so
        its adjoint, the transposed projection below it and its weight gradient skip the other
        ``depth_out`` rows: the same gradients for ``T / (T + depth_out)`` of the work (None: every row,
        with :attr:`tape_windows` off)."""
        return self._rows.get(update) if self.tape_windows else None

    def bias_gradient_update(self, L: Layer) -> str:
        return f"{L.name}_bias_grad" if L.recurrent else f"{L.name}_adj"

    def _chain(self):
        c = self.config
        return ox.chain(ox.gradient(zero=False), ox.scale_by_adam(c.adam_beta1, c.adam_beta2, c.adam_eps),
                        ox.scale_by_learning_rate(c.lr), ox.apply_updates(), name="adam")

    def _optimisers(self, net: Network) -> None:
        """Adam per trainable projection (fc, li, recurrent), per fc / li bias and per conv parameter
        population (group ``adam``)."""
        self.optimisers = []
        self._trained: list[tuple[str, str]] = []   # (group, variable) of every trained parameter
        self._gradient_vars: list[tuple[str, str]] = []   # (group, variable) of its gradient, the same order
        for L in self.layers:
            if L.kind == "conv":
                pairs = [(f"{L.name}_param", {"grad": "grad", "w": "w"})]
            elif L.kind in ("fc", "li"):
                pairs = [(f"{L.name}_syn", {"grad": f"{L.name}_syn_gw.gw", "w": "w"}),
                         (L.name, {"grad": f"{self.bias_gradient_update(L)}.gb", "w": "bias"})]
                if L.recurrent:
                    pairs.append((f"{L.name}_rec", {"grad": f"{L.name}_rec_gw.gw", "w": "w"}))
            else:
                continue
            for target, refs in pairs:
                name = f"{target}_adam" if target != L.name else f"{L.name}_bias_adam"
                net.add_custom_update(name, target, self._chain(), var_refs=refs, group="adam")
                self.optimisers.append(name)
                self._trained.append((target, refs["w"]))
                group, _, var = refs["grad"].rpartition(".")
                self._gradient_vars.append((group or target, var))

    # -- parameters --------------------------------------------------------------------------------------
    def _push_conv(self, L: Layer, params) -> None:
        kernel, bias = params
        kernel = np.asarray(kernel, np.float64)
        bias = np.asarray(bias, np.float64)
        self.sim.set(f"{L.name}_param", "w", np.concatenate([kernel.ravel(), bias]))
        tie(self.sim, f"{L.name}_syn", kernel)
        self.sim.set(L.name, "bias", L.geometry.bias_per_neuron(bias))

    def conv_parameters(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(kernel [C_out, C_in, kh, kw], bias [C_out]) of conv layer ``name`` (copies)."""
        L = self.layer(name)
        if L.kind != "conv":
            raise BPTTError(f"layer {name!r} is not a conv layer")
        p = np.asarray(self.sim.get(f"{name}_param", "w"), np.float64)
        nk = int(np.prod(L.geometry.kernel_shape))
        return p[:nk].reshape(L.geometry.kernel_shape), p[nk:].copy()

    def set_conv_parameters(self, name: str, kernel, bias=None) -> None:
        """Set conv layer ``name``'s kernel (and channel biases) and tie them into its synapses / neurons."""
        L = self.layer(name)
        k0, b0 = self.conv_parameters(name)
        kernel = np.asarray(kernel, np.float64)
        if kernel.shape != k0.shape:
            raise BPTTError(f"kernel of {name!r} must have shape {k0.shape}, got {kernel.shape}")
        bias = b0 if bias is None else np.asarray(bias, np.float64)
        if bias.shape != b0.shape:
            raise BPTTError(f"bias of {name!r} must have shape {b0.shape}, got {bias.shape}")
        self._push_conv(L, (kernel, bias))

    def layer(self, name: str) -> Layer:
        for L in self.layers:
            if L.name == name:
                return L
        raise BPTTError(f"unknown layer {name!r}; layers: {[L.name for L in self.layers]}")

    def dense_weights(self, name: str, recurrent: bool = False) -> np.ndarray:
        """fc / li layer ``name``'s weights as a dense [inputs, neurons] matrix (absent synapses 0)."""
        L = self.layer(name)
        if L.kind not in ("fc", "li"):
            raise BPTTError(f"layer {name!r} is not an fc / li layer")
        proj = f"{name}_rec" if recurrent else f"{name}_syn"
        pre, post = self.sim.connectivity(proj)
        w = np.zeros((L.size if recurrent else L.in_size, L.size))
        w[pre, post] = self.sim.get(proj, "w")
        return w

    def set_dense_weights(self, name: str, w=None, bias=None, w_rec=None) -> None:
        """Set fc / li layer ``name``'s existing synapses from a dense ``w`` [inputs, neurons] (absent pairs'
        entries are ignored), its ``bias`` [neurons] and, recurrent, ``w_rec`` [neurons, neurons] (pre, post;
        the diagonal must be 0: no self-connections)."""
        L = self.layer(name)
        if L.kind not in ("fc", "li"):
            raise BPTTError(f"layer {name!r} is not an fc / li layer")
        for what, value, shape, proj in (("w", w, (L.in_size, L.size), f"{name}_syn"),
                                         ("w_rec", w_rec, (L.size, L.size), f"{name}_rec")):
            if value is None:
                continue
            if what == "w_rec" and not L.recurrent:
                raise BPTTError(f"layer {name!r} is not recurrent: it has no w_rec")
            value = np.asarray(value, np.float64)
            if value.shape != shape:
                raise BPTTError(f"{what} of {name!r} must have shape {shape}, got {value.shape}")
            if what == "w_rec" and np.any(np.diag(value) != 0):
                raise BPTTError(f"w_rec of {name!r} must have a zero diagonal (no self-connections)")
            pre, post = self.sim.connectivity(proj)
            self.sim.set(proj, "w", value[pre, post])
        if bias is not None:
            bias = np.asarray(bias, np.float64)
            if bias.shape != (L.size,):
                raise BPTTError(f"bias of {name!r} must have shape ({L.size},), got {bias.shape}")
            self.sim.set(name, "bias", bias)

    def synapse_counts(self) -> dict[str, int]:
        """Existing synapses per trainable projection (conv: synapses, not kernel entries)."""
        return {p: int(self.sim.ragged(p)["row_length"].sum()) for p in self.projections
                if self.layer(self.projections[p][1]).trainable and not p.endswith("_rec")}

    # -- one trial -------------------------------------------------------------------------------------
    def _check_batch(self, x, labels):
        c = self.config
        return check_count_batch(x, labels, num_inputs=c.num_inputs, num_classes=c.num_classes, error=BPTTError,
                                 steps=c.steps, hint=" (encode images first, e.g. bernoulli_counts)")

    def _run_chunk(self, x, labels, train: bool) -> dict:
        sim, B, c = self.sim, self.batch_size, self.config
        n = x.shape[0]
        sim.reset_trial()
        times, counts = trains_from_counts(np.ascontiguousarray(x, np.uint8), float(sim.t), 1.0, B)
        sim.set_spike_times_flat("input", times, counts)
        sim.run(c.steps + self.depth_out)
        out = self.layers[-1]
        var = "y" if out.kind == "li" else "s"
        y = sim.tape(out.name, var)[:n, self.depth_out:].astype(np.float64)   # [n, steps, classes]
        if train:
            sim.set("loss", "label", np.concatenate([labels, np.zeros(B - n, np.int64)]))
            sim.set("loss", "active", (np.arange(B) < n).astype(np.float64))
            self.backward()
        return {"out": y}

    def _collect_conv_gradients(self, by_entry: dict[str, bool]) -> dict[str, float]:
        """Each conv layer's kernel gradient and channel bias gradient, added into its parameter
        population's ``grad``; returns the seconds each kernel gradient took (as ``<conv>_syn_gw``).

        ``by_entry[proj]`` (:meth:`_by_entry`): the kernel gradient is the sum over presynaptic events by
        kernel entry (:func:`~plastix.conv.kernel_event_sum`: each event visits its taps, one accumulator
        per entry); else (CUDA, or a kernel entry that lost only some of its synapses) the per-synapse
        update ``<conv>_syn_gw`` runs on the backend and its sums are added by entry
        (:func:`~plastix.conv.kernel_sum`).  Both are the same sum in another order."""
        seconds = {}
        for L in self.layers:
            if L.kind != "conv":
                continue
            proj = f"{L.name}_syn"
            t0 = time.perf_counter()
            rows = self._window(f"{proj}_gw")
            if by_entry[proj]:
                gk = kernel_event_sum(self.sim, proj, "du", "cnt" if self.projections[proj][2] else None, rows=rows)
            else:
                self.sim.custom_update(f"{proj}_gw", rows=rows)
                gk = kernel_sum(self.sim, proj, self.sim.get(f"{proj}_gw", "gw"))
            seconds[f"{proj}_gw"] = time.perf_counter() - t0
            gb = L.geometry.sum_per_channel(self.sim.get(f"{L.name}_adj", "gb"))
            q = f"{L.name}_param"
            self.sim.set(q, "grad", self.sim.get(q, "grad") + np.concatenate([gk.ravel(), gb]))
        return seconds

    def _losses(self, y, labels) -> np.ndarray:
        """Per-sample loss as the config defines it (mean over classes for mse_rate)."""
        c = self.config
        if c.loss == "mse_rate":
            rate = y.sum(axis=1) / c.steps
            return ((rate - np.eye(c.num_classes)[labels]) ** 2).mean(axis=1)
        logits = y.sum(axis=1) if c.loss == "ce_rate" else y
        top = logits.max(axis=-1, keepdims=True)
        lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
        if c.loss == "ce_rate":
            return lse - np.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
        return (lse - np.take_along_axis(logits, labels[:, None, None], axis=2)[..., 0]).sum(axis=1)

    def _trial(self, x, labels, train: bool) -> dict:
        x, labels = self._check_batch(x, labels)
        if train:
            if x.shape[0] > self.batch_size:   # a trial's gradients are the reductions of one run
                raise BPTTError(f"a training batch holds at most batch_size={self.batch_size} samples, "
                                f"got {x.shape[0]}")
            self._zero_gradients()
        ys = [self._run_chunk(x[i:i + self.batch_size], labels[i:i + self.batch_size], train)["out"]
              for i in range(0, x.shape[0], self.batch_size)]
        y = np.concatenate(ys)
        scores = y.sum(axis=1)
        return {"loss": self._losses(y, labels), "scores": scores}

    def _zero_gradients(self) -> None:
        for L in self.layers:
            if L.kind == "conv":
                self.sim.set(f"{L.name}_param", "grad", 0.0)

    def gradients(self, x, labels) -> dict[str, dict[str, np.ndarray]]:
        """Gradients of the batch-mean loss for one batch, without applying them, per layer: conv
        ``{"kernel", "bias"}``, fc / li ``{"w": [inputs, neurons] dense, "bias"}`` (+ ``"w_rec"``).  Runs the
        batch as one chunk (len(x) <= batch_size)."""
        x, labels = self._check_batch(x, labels)
        if x.shape[0] > self.batch_size:
            raise BPTTError(f"gradients() takes at most batch_size={self.batch_size} samples")
        self._zero_gradients()
        self._run_chunk(x, labels, train=True)
        # the loss updates' scale is for a full batch: rescale to this batch's mean
        f = self._grad_scale / x.shape[0]
        out = {}
        for L in self.layers:
            if L.kind == "conv":
                p = np.asarray(self.sim.get(f"{L.name}_param", "grad"), np.float64) * f
                nk = int(np.prod(L.geometry.kernel_shape))
                out[L.name] = {"kernel": p[:nk].reshape(L.geometry.kernel_shape), "bias": p[nk:]}
            elif L.kind in ("fc", "li"):
                pre, post = self.sim.connectivity(f"{L.name}_syn")
                g = np.zeros((L.in_size, L.size))
                g[pre, post] = self.sim.get(f"{L.name}_syn_gw", "gw")
                d = {"w": g * f, "bias": np.asarray(self.sim.get(self.bias_gradient_update(L), "gb")) * f}
                if L.recurrent:
                    g = np.asarray(self.sim.get(f"{L.name}_rec_gw", "gw"), np.float64).reshape(L.size, L.size) * f
                    np.fill_diagonal(g, 0.0)
                    d["w_rec"] = g
                out[L.name] = d
        self._zero_gradients()
        return out

    def accumulate_gradients(self, x, labels) -> dict:
        """Forward and backward on a batch (at most ``batch_size`` samples), leaving its raw gradients
        (:meth:`gradient_vector`) for :meth:`apply_gradients`; returns the per-sample ``loss`` and class
        ``scores``."""
        return self._trial(x, labels, train=True)

    def gradient_parts(self) -> list[tuple[str, str]]:
        """(group, variable) of each part of :meth:`gradient_vector`, in order."""
        return list(self._gradient_vars)

    def gradient_vector(self) -> np.ndarray:
        """The last training trial's raw gradients (sums over its samples, scaled for ``loss_batch``), every
        trained parameter's in the optimisers' order: a conv layer's kernel and channel biases, an fc / li
        layer's existing synapses in :meth:`Simulation.get` order and its biases (and recurrent weights)."""
        return gradient_vector(self.sim, self.gradient_parts())

    def set_gradient_vector(self, vec) -> None:
        """Replace the raw gradients by ``vec`` (laid out as :meth:`gradient_vector`), e.g. summed over ranks."""
        set_gradient_vector(self.sim, self.gradient_parts(), vec, BPTTError)

    def train_batch(self, x, labels) -> dict:
        """Forward, backward and one Adam step on a batch; returns loss (batch mean), correct, samples."""
        out = self.accumulate_gradients(x, labels)
        self.apply_gradients(out["loss"].size)
        pred = np.argmax(out["scores"], axis=1)
        return {"loss": float(out["loss"].mean()), "correct": int((pred == np.asarray(labels)).sum()),
                "samples": int(out["loss"].size)}

    def apply_gradients(self, samples: int) -> None:
        """One Adam step with the gradients of the last training trial(s) (batch mean over ``samples``)."""
        sim = self.sim
        self.opt_step += 1
        for L in self.layers:   # no self-connections: the recurrent matrix's diagonal stays 0
            if L.recurrent:
                g = np.asarray(sim.get(f"{L.name}_rec_gw", "gw")).reshape(L.size, L.size).copy()
                np.fill_diagonal(g, 0.0)
                sim.set(f"{L.name}_rec_gw", "gw", g.ravel())
        for name in self.optimisers:
            sim.set(name, "count", float(self.opt_step))
            sim.set_param(name, "grad_scale", self._grad_scale / samples)
            sim.set_param(name, "lr", self.lr)
        sim.custom_update("adam")
        for L in self.layers:   # what a structural rule removed stays removed (hold_zero), kernels tied
            entries, units = self.held_zero.get(L.name, (None, None))
            if L.kind == "conv":
                k, b = self.conv_parameters(L.name)
                if entries is not None or units is not None:
                    k.reshape(-1)[entries if entries is not None else []] = 0.0
                    b[units if units is not None else []] = 0.0
                    sim.set(f"{L.name}_param", "w", np.concatenate([k.ravel(), b]))
                tie(sim, f"{L.name}_syn", k)
                sim.set(L.name, "bias", L.geometry.bias_per_neuron(b))
            elif units is not None:
                bias = sim.get(L.name, "bias")
                bias[units] = 0.0
                sim.set(L.name, "bias", bias)
        self._check_finite()

    def hold_zero(self, name: str, entries=None, units=None) -> None:
        """Keep parameters of layer ``name`` at 0 after every optimiser step (Adam's moments would move
        them): ``entries`` (bool per kernel entry, conv) and ``units`` (bool per neuron, fc / li, or per
        output channel, conv: their bias).  Applied now and after each step until called again."""
        L = self.layer(name)
        n_units = L.out_shape[0] if L.kind == "conv" else L.size
        if entries is not None:
            entries = np.asarray(entries, bool).reshape(-1)
            if L.kind != "conv" or entries.size != int(np.prod(L.geometry.kernel_shape)):
                raise BPTTError(f"entries must be one bool per kernel entry of conv layer {name!r}")
        if units is not None:
            units = np.asarray(units, bool).reshape(-1)
            if units.size != n_units:
                raise BPTTError(f"units must be {n_units} bools for layer {name!r}, got {units.size}")
        self.held_zero[name] = (entries, units)
        if L.kind == "conv":
            k, b = self.conv_parameters(name)
            if entries is not None:
                k.reshape(-1)[entries] = 0.0
            if units is not None:
                b[units] = 0.0
            self.set_conv_parameters(name, k, b)
        elif units is not None:
            bias = self.sim.get(name, "bias")
            bias[units] = 0.0
            self.sim.set(name, "bias", bias)

    def _check_finite(self) -> None:
        for group, var in self._trained:
            if not np.all(np.isfinite(self.sim.get(group, var))):
                raise BPTTError(f"{group}.{var} became NaN/inf (learning rate {self.lr} too high?)")

    def predict_scores(self, x) -> np.ndarray:
        """Per-class scores [batch, classes]: output spike counts (LIF) or summed readout (li)."""
        x = np.asarray(x)
        return self._trial(x, np.zeros(x.shape[0], np.int64), train=False)["scores"]

    def evaluate_batch(self, x, labels) -> dict:
        out = self._trial(x, labels, train=False)
        pred = np.argmax(out["scores"], axis=1)
        return {"loss": float(out["loss"].mean()), "correct": int((pred == np.asarray(labels)).sum()),
                "samples": int(out["loss"].size)}


def bernoulli_counts(images, steps: int, rng) -> np.ndarray:
    """The SD-SNN authors' rate code: a spike where ``pixel > U(0, 1)``, drawn afresh at every step.
    ``images`` [n, inputs] in [0, 1] -> uint8 [n, steps, inputs]."""
    images = np.asarray(images, np.float64)
    if images.ndim != 2:
        raise BPTTError(f"images must be [samples, inputs], got shape {images.shape}")
    if images.size and (np.nanmin(images) < 0.0 or np.nanmax(images) > 1.0 or np.isnan(images).any()):
        raise BPTTError("images must hold intensities in [0, 1] for the Bernoulli rate code")
    u = rng.random((images.shape[0], steps, images.shape[1]))
    return (images[:, None, :] > u).astype(np.uint8)


__all__ = ["BPTTConfig", "BPTTNetwork", "BPTTError", "bernoulli_counts", "LOSSES"]
