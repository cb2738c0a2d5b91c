"""e-prop classifiers: spike input -> one or more recurrent (A)LIF layers -> leaky-integrator readout with bias,
trained on the engine.

The whole classifier is one plastix :class:`~plastix.Network` run by one batched
:class:`~plastix.Simulation` (``batch_size`` elements side by side): an input spike source, one hidden
population per layer, sparse input, recurrent and layer-to-layer projections whose synapses carry ``w``,
``sign``, ``theta`` and the accumulated gradient ``grad``, dense readout projections and a readout
population.  A trial is a forward run whose tape (the recorded per-step variables and spikes) the custom
updates of :mod:`.eprop_models` turn into gradients; Adam is a chain of optimiser pieces
(:mod:`.optimizers`) per projection, its moments custom-update state that moves with its synapse; DEEP R
is an ordinary connectivity update (:mod:`plastix.structural.deep_r`).  Each equation exists once and runs
on the CPU and on CUDA from the same description.

A dense projection (density 1) is the same ragged layout with full rows, so dense and sparse runs use
the same code and their cost differs only by the number of synapses.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import PlastixError
from ..kernels.spike_trains import trains_from_counts
from ..model import connectivity as connect
from ..model import init
from ..model.network import Dense, Network
from ..structural.deep_r import deep_r_prune, deep_r_regrow
from . import eprop_models as em
from .batches import (batched_simulation, check_count_batch, gradient_vector, set_gradient_vector,
                      simulation_batch)
from . import optimizers as ox

REWIRING = ("none", "deep-r", "soft-deep-r")
READOUT = ("all", "last")
INIT_FAN_IN = ("connected", "all")
RESETS = ("subtract", "zero")


def layer_name(layer: int) -> str:
    """Short name of hidden layer ``layer`` (0-based) in projection names: ``hid``, ``hid2``, ``hid3`` ..."""
    return "hid" if layer == 0 else f"hid{layer + 1}"


def population_name(layer: int) -> str:
    """Population of hidden layer ``layer`` (0-based): ``hidden``, ``hidden2``, ..."""
    return "hidden" if layer == 0 else f"hidden{layer + 1}"


class TrainingError(PlastixError, ValueError):
    """Invalid training configuration or data."""


@dataclass
class EPropConfig:
    """Network, learning and rewiring settings.  Times in ms, rates in Hz, thresholds in model units.

    Defaults follow the seed paper's scripts (REFERENCE section 2): ALIF with v_thresh 0.6, tau_mem 20,
    tau_adapt 2000, beta 0.0174, refractory 5, subtractive reset; readout tau 20; Adam lr 1e-3;
    rate regulariser c_reg 0.001 toward 10 Hz averaged over 500 ms.
    """

    num_inputs: int
    num_outputs: int
    num_hidden: int | tuple = 256      # neurons of the hidden layer, or one count per layer (from the input side)
    neuron: str = "alif"
    input_density: float = 1.0
    recurrent_density: float = 1.0     # within each hidden layer; 0: no recurrent projections
    feedforward_density: float | None = None   # layer l -> layer l + 1 (None: input_density)
    readout: str = "all"               # the readout reads every hidden layer ("all") or the last one ("last")
    row_padding: float = 1.0           # row capacity / expected row length (room for DEEP R to regrow)
    init_fan_in: str = "connected"     # weights start N(0, 1/sqrt(fan_in)): fan_in = expected connected inputs
                                       # (density x pre) or "all" possible inputs (pre, as if dense)
    feedback: str = "symmetric"        # or "random" (fixed random B)
    tau_mem: float = 20.0
    tau_adapt: float = 2000.0
    beta: float = 0.0174
    v_thresh: float = 0.6
    tau_refrac: float = 5.0            # 0: no refractory period
    reset: str = "subtract"            # after a spike: "subtract" v_thresh in the next step (the paper), or
                                       # set v to "zero" at once (NIR's LIF, e.g. to run in snnTorch)
    tau_out: float = 20.0
    c_reg: float = 0.001
    f_target: float = 10.0
    tau_rate: float = 500.0
    lr: float = 1e-3
    lr_decay: float = 1.0              # learning rate multiplied by this after every epoch (1: constant)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    rewiring: str = "none"
    l1: float = 0.01
    temperature: float = 0.0
    theta_min: float = -1.0
    dt: float = 1.0
    seed: int = 0
    dtype: str = "float32"
    backend: str = "cpu"               # the engine's backend: "cpu" (Numba) or "cuda" (numba-cuda)

    def __post_init__(self):
        def bad(name, allowed):
            raise TrainingError(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        for name in ("num_inputs", "num_outputs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                bad(name, "a positive integer")
        if isinstance(self.num_hidden, (list, tuple)):
            if len(self.num_hidden) == 0:
                bad("num_hidden", "a positive integer or a non-empty sequence of them (one per layer)")
            if len(self.num_hidden) == 1:
                self.num_hidden = self.num_hidden[0]
            else:
                self.num_hidden = tuple(self.num_hidden)
        for v in self.layers:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                bad("num_hidden", "a positive integer or a non-empty sequence of them (one per layer)")
        if self.feedforward_density is not None and not 0.0 < self.feedforward_density <= 1.0:
            bad("feedforward_density", "in (0, 1] or None (same as input_density)")
        if self.readout not in READOUT:
            bad("readout", f"one of {READOUT}")
        if self.readout == "last" and len(self.layers) > 1 and self.feedback == "symmetric":
            raise TrainingError("readout='last' with several hidden layers needs feedback='random': with "
                                "symmetric feedback (B = W_out^T) the layers the readout does not read get no "
                                "learning signal")
        if self.num_outputs < 2:
            bad("num_outputs", ">= 2 classes")
        if self.neuron not in ("alif", "lif"):
            bad("neuron", "'alif' or 'lif'")
        if not 0.0 < self.input_density <= 1.0:
            bad("input_density", "in (0, 1]")
        if not 0.0 <= self.recurrent_density <= 1.0:
            bad("recurrent_density", "in [0, 1] (0: no recurrent projection)")
        if not self.row_padding >= 1.0:
            bad("row_padding", ">= 1")
        if self.reset not in RESETS:
            bad("reset", f"one of {RESETS}")
        if self.init_fan_in not in INIT_FAN_IN:
            bad("init_fan_in", f"one of {INIT_FAN_IN}")
        if self.feedback not in ("symmetric", "random"):
            bad("feedback", "'symmetric' or 'random'")
        if self.rewiring not in REWIRING:
            bad("rewiring", f"one of {REWIRING}")
        for name in ("tau_mem", "tau_adapt", "v_thresh", "tau_out", "tau_rate", "lr", "dt", "adam_eps"):
            if not getattr(self, name) > 0:
                bad(name, "> 0")
        for name in ("beta", "tau_refrac", "c_reg", "f_target", "l1", "temperature"):
            if not getattr(self, name) >= 0:
                bad(name, ">= 0")
        if not 0.0 < self.lr_decay <= 1.0:
            bad("lr_decay", "in (0, 1]")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "in [0, 1)")
        if self.dtype not in ("float32", "float64"):
            bad("dtype", "'float32' or 'float64'")
        if self.backend not in ("cpu", "cuda"):
            bad("backend", "'cpu' or 'cuda'")

    @classmethod
    def from_dict(cls, d: dict) -> "EPropConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrainingError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["num_hidden"], tuple):
            d["num_hidden"] = list(d["num_hidden"])   # as JSON gives it back
        return d

    @property
    def layers(self) -> tuple[int, ...]:
        """Neurons per hidden layer."""
        return tuple(self.num_hidden) if isinstance(self.num_hidden, tuple) else (self.num_hidden,)

    @property
    def hidden_total(self) -> int:
        """Hidden neurons over all layers."""
        return int(sum(self.layers))

    @property
    def ff_density(self) -> float:
        return self.input_density if self.feedforward_density is None else self.feedforward_density

    @property
    def adaptive(self) -> bool:
        return self.neuron == "alif" and self.beta > 0.0


def _connectivity(density: float, recurrent: bool):
    if density >= 1.0:
        return connect.AllToAll(allow_self=not recurrent)
    return connect.FixedProbability(density, allow_self=not recurrent)


class EPropNetwork:
    """The trainable network and its state, all in one batched :class:`Simulation` (:attr:`sim`).

    ``batch_size``: the batch elements the simulation runs side by side (at least 2); a call with fewer
    samples pads the batch with inactive elements, one with more runs it in slices of ``batch_size`` (the
    gradients add up)."""

    def __init__(self, config: EPropConfig, *, batch_size: int = 32):
        self.config = c = config
        self.float = np.dtype(c.dtype)
        self.batch_size = simulation_batch(batch_size, TrainingError)
        self.network = self._describe()
        self.sim = batched_simulation(self.network, c.backend, self.batch_size, TrainingError)
        sim = self.sim
        for name in self.projections:  # sign and theta from the initial weights
            w = sim.get(name, "w")
            sim.set(name, "sign", np.where(w >= 0, 1.0, -1.0))
            sim.set(name, "theta", np.abs(w))
        H, K = c.hidden_total, c.num_outputs
        rng = np.random.default_rng([c.seed, 7])
        read = H - self.unread
        w_out = rng.normal(0.0, 1.0 / math.sqrt(read), (K, H))
        w_out[:, :self.unread] = 0.0
        self.w_out = w_out
        if c.feedback == "random":
            fb = rng.normal(0.0, 1.0 / math.sqrt(read), (H, K))
            for l, (lo, hi) in enumerate(self._spans):
                sim.set(f"{layer_name(l)}_fb", "w", fb[lo:hi].ravel())
        self.rate = np.full(H, c.f_target / 1000.0)   # 1/ms, running batch-mean firing rate
        self.opt_step = 0
        self.lr_scale = 1.0   # set per epoch by the trainer (config.lr_decay ** epoch)
        self._steps = -1      # the trial length the hidden neurons were last set up for

    # -- description -----------------------------------------------------------------------------------
    @property
    def unread(self) -> int:
        """Hidden neurons the readout does not read (readout='last': every layer but the last)."""
        c = self.config
        return c.hidden_total - c.layers[-1] if c.readout == "last" else 0

    @property
    def _spans(self) -> list[tuple[int, int]]:
        """(first, last + 1) of each layer in the concatenated hidden vector."""
        edges = np.concatenate([[0], np.cumsum(self.config.layers)]).astype(int)
        return [(int(edges[l]), int(edges[l + 1])) for l in range(len(self.config.layers))]

    @property
    def _read_layers(self) -> list[int]:
        n = len(self.config.layers)
        return list(range(n)) if self.config.readout == "all" else [n - 1]

    def _describe(self) -> Network:
        """Populations ``input``, ``hidden``, ``hidden2``, ..., ``out``; trainable projections ``in_hid`` (input
        to layer 1), ``hid_hid`` (recurrent, layer 1), then per further layer l the feed-forward projection
        from layer l - 1 (``hid_hid2``, ``hid2_hid3``, ...) and its recurrent one (``hid2_hid2``, ...); dense
        readout projections ``hid_out``, ... (random feedback: ``hid_fb``, ...); the gradient updates
        (groups ``trial_start``, ``grad``), the optimiser (group ``adam``) and DEEP R."""
        c = self.config
        net = Network(dt=c.dt, seed=c.seed, precision=c.dtype)
        alpha, kappa = math.exp(-c.dt / c.tau_mem), math.exp(-c.dt / c.tau_out)
        rho = math.exp(-c.dt / c.tau_adapt)
        inp = net.add_population("input", c.num_inputs, em.input_model(alpha))
        layers = c.layers
        hidden = em.hidden_model(alpha=alpha, rho=rho, beta=c.beta if c.adaptive else 0.0, v_thresh=c.v_thresh,
                                 n_ref=round(c.tau_refrac / c.dt), rate_decay=math.exp(-c.dt / c.tau_rate),
                                 c_reg=c.c_reg, f_target=c.f_target / 1000.0, dt=c.dt, reset_zero=c.reset == "zero")
        hid = [net.add_population(population_name(l), n, hidden) for l, n in enumerate(layers)]
        specs = [("in_hid", inp, hid[0], c.input_density, c.num_inputs, False)]
        for l in range(len(layers)):
            if l > 0:
                specs.append((f"{layer_name(l - 1)}_{layer_name(l)}", hid[l - 1], hid[l], c.ff_density, layers[l - 1],
                              False))
            if c.recurrent_density > 0:
                specs.append((f"{layer_name(l)}_{layer_name(l)}", hid[l], hid[l], c.recurrent_density, layers[l], True))
        self.projections = tuple(s[0] for s in specs)
        spans = self._spans
        #: per trainable projection: (source 0 input / 1 hidden, its first presynaptic neuron in the
        #: concatenated hidden vector, its first target there, number of targets)
        self.geometry = {name: (0 if pre is inp else 1, 0 if pre is inp else spans[hid.index(pre)][0],
                                spans[hid.index(post)][0], post.size) for name, pre, post, *_ in specs}
        for name, pre, post, density, n_pre, rec in specs:
            possible = n_pre - 1 if rec else n_pre
            fan_in = max(possible if c.init_fan_in == "all" else density * possible, 1.0)
            headroom = c.row_padding if density < 1.0 else 1.0
            net.add_projection(name, pre, post, connectivity=_connectivity(density, rec),
                               weight_update=em.INPUT_SYNAPSE if pre is inp else em.HIDDEN_SYNAPSE,
                               init={"w": init.Normal(0.0, 1.0 / math.sqrt(fan_in))}, headroom=headroom)
            if c.rewiring == "deep-r" and density < 1.0:
                refs = {"weight": "w", "sign": "sign"}
                net.add_connectivity_update(f"{name}_prune", name, deep_r_prune(), var_refs=refs,
                                            group="deep_r_prune")
                net.add_connectivity_update(f"{name}_regrow", name, deep_r_regrow(), var_refs=refs,
                                            row_var_refs={"removed": f"{name}_prune.removed"}, group="deep_r_regrow")
        out = net.add_population("out", c.num_outputs, em.readout_model(kappa))
        read = self._read_layers
        for l in read:
            net.add_projection(f"{layer_name(l)}_out", hid[l], out, connectivity=Dense(),
                               weight_update=em.READOUT_SYNAPSE)
        if c.feedback == "random":
            for l in range(len(layers)):
                net.add_projection(f"{layer_name(l)}_fb", hid[l], out, connectivity=Dense(),
                                   weight_update=em.FEEDBACK_SYNAPSE)
        # -- a trial's gradient, over its tape
        for l in range(len(layers)):
            net.add_custom_update(f"rate_start_{l}", hid[l].name, em.rate_start(), group="trial_start")
        net.add_custom_update("softmax_error", "out", em.softmax_error(), group="grad")
        net.add_custom_update("error_filter", "out", em.error_filter(kappa), group="grad")
        for l in range(len(layers)):
            fb = f"{layer_name(l)}_fb" if c.feedback == "random" else f"{layer_name(l)}_out"
            net.add_custom_update(f"signal_{l}", hid[l].name, em.learning_signal(alpha), var_refs={"B": f"{fb}.w"},
                                  tape_refs={"A": "A", "Ab": "Ab", "E": "out.err", "reg": "reg", "psi": "psi"},
                                  group="grad")
        for name, pre, *_ in specs:
            counts = pre is inp
            refs = {"Ab": "post.Ab", "cnt": "pre.cnt"} if counts else {"Ab": "post.Ab"}
            net.add_custom_update(f"{name}_arrivals", name, em.at_arrivals(counts), tape_refs=refs, group="grad")
            parts = {"g1": f"{name}_arrivals.g"}
            if c.adaptive:
                net.add_custom_update(f"{name}_adapt", name, em.adaptation(rho, c.beta),
                                      tape_refs={"psi": "post.psi", "A": "post.A", "xb": "pre.xbar"}, group="grad")
                parts["g2"] = f"{name}_adapt.g"
            net.add_custom_update(f"{name}_acc", name, em.accumulate(len(parts)), var_refs={"grad": "grad", **parts},
                                  group="grad")
        for l in read:
            q = f"{layer_name(l)}_out"
            net.add_custom_update(f"{q}_grad", q, em.at_readout(), tape_refs={"E": "post.err"}, group="grad")
            net.add_custom_update(f"{q}_acc", q, em.accumulate(1), var_refs={"grad": "grad", "g1": f"{q}_grad.g"},
                                  group="grad")
        net.add_custom_update("bias_acc", "out", em.accumulate(1), var_refs={"grad": "gbias", "g1": "error_filter.gb"},
                              group="grad")
        # -- the optimiser: Adam per projection, its moments own variables of the update
        self.optimisers = []
        for name, _, _, density, _, _ in specs:
            mode = c.rewiring if (c.rewiring == "soft-deep-r" or (c.rewiring == "deep-r" and density < 1.0)) else "none"
            model = self._chain(mode)
            net.add_custom_update(f"{name}_adam", name, model, group="adam", var_refs={r: r for r in model.var_refs})
            self.optimisers.append((f"{name}_adam", mode))
        for l in read:
            q = f"{layer_name(l)}_out"
            net.add_custom_update(f"{q}_adam", q, self._chain("none"), var_refs={"grad": "grad", "w": "w"},
                                  group="adam")
            self.optimisers.append((f"{q}_adam", "none"))
        net.add_custom_update("bias_adam", "out", self._chain("none"), var_refs={"grad": "gbias", "w": "bias"},
                              group="adam")
        self.optimisers.append(("bias_adam", "none"))
        return net

    def _chain(self, mode: str):
        c = self.config
        adam = (ox.scale_by_adam(c.adam_beta1, c.adam_beta2, c.adam_eps), ox.scale_by_learning_rate(c.lr))
        noise = (ox.add_noise(0.0),) if c.temperature > 0 and mode != "none" else ()
        if mode == "soft-deep-r":
            return ox.chain(ox.gradient(), ox.theta_gradient(c.l1), *adam, *noise, ox.soft_deep_r(c.theta_min),
                            name="adam_soft_deep_r")
        if mode == "deep-r":
            return ox.chain(ox.gradient(), ox.add_l1(c.l1, fixed_sign=True), *adam, *noise, ox.apply_updates(),
                            name="adam_deep_r")
        return ox.chain(ox.gradient(), *adam, ox.apply_updates(), name="adam")

    @property
    def rewired(self) -> tuple[str, ...]:
        """Projections that DEEP R rewires (sparse ones, with rewiring='deep-r')."""
        return tuple(p for p in self.projections if f"{p}_prune" in self.network.connectivity_updates)

    # -- parameters --------------------------------------------------------------------------------------
    @property
    def w_out(self) -> np.ndarray:
        """Readout weights [classes, hidden] (a copy; assign to change them); columns of unread layers are 0."""
        c = self.config
        w = np.zeros((c.num_outputs, c.hidden_total), self.float)
        for l in self._read_layers:
            lo, hi = self._spans[l]
            w[:, lo:hi] = self.sim.get(f"{layer_name(l)}_out", "w").reshape(hi - lo, -1).T
        return w

    @w_out.setter
    def w_out(self, value) -> None:
        c = self.config
        value = np.asarray(value, np.float64)
        if value.shape != (c.num_outputs, c.hidden_total):
            raise TrainingError(f"w_out must have shape {(c.num_outputs, c.hidden_total)}, got {value.shape}")
        for l in self._read_layers:
            lo, hi = self._spans[l]
            self.sim.set(f"{layer_name(l)}_out", "w", value[:, lo:hi].T.ravel())

    @property
    def b_out(self) -> np.ndarray:
        """Readout bias [classes] (a copy; assign to change it)."""
        return self.sim.get("out", "bias")

    @b_out.setter
    def b_out(self, value) -> None:
        self.sim.set("out", "bias", np.asarray(value, np.float64))

    @property
    def feedback_random(self) -> np.ndarray | None:
        """The fixed random feedback matrix B [hidden, classes] (feedback='random'), else None."""
        if self.config.feedback != "random":
            return None
        return np.concatenate([self.sim.get(f"{layer_name(l)}_fb", "w").reshape(hi - lo, -1)
                               for l, (lo, hi) in enumerate(self._spans)])

    @property
    def rate(self) -> np.ndarray:
        """The network's running firing-rate estimate per hidden neuron (1/ms; a copy; assign to change it)."""
        return np.concatenate([self.sim.get(f"rate_start_{l}", "rate") for l in range(len(self.config.layers))])

    @rate.setter
    def rate(self, value) -> None:
        value = np.asarray(value, np.float64).reshape(-1)
        for l, (lo, hi) in enumerate(self._spans):
            self.sim.set(f"rate_start_{l}", "rate", value[lo:hi])

    def arrays(self, proj: str) -> dict:
        """Copies of the ragged arrays of ``proj``: ``ind``, ``rowlen`` and the per-synapse ``w``, ``sign``,
        ``theta``, ``grad`` and Adam's ``m``, ``v`` [rows, row stride] (only the first ``rowlen[i]`` slots of
        row ``i`` exist)."""
        out = {}
        for v in ("w", "sign", "theta", "grad"):
            r = self.sim.ragged(proj, v)
            out[v] = r[v]
        for v in ("m", "v"):   # Adam's moments: the optimiser update's own per-synapse variables
            out[v] = self.sim.ragged(proj, v, of=f"{proj}_adam")[v]
        out["ind"], out["rowlen"] = r["ind"], r["row_length"]
        return out

    def synapse_counts(self) -> dict[str, int]:
        """Existing synapses per trainable projection."""
        return {p: int(self.sim.ragged(p)["row_length"].sum()) for p in self.projections}

    def capacity(self) -> dict[str, int]:
        """Slots per trainable projection (rows x row stride)."""
        return {p: int(self.sim.ragged(p)["ind"].size) for p in self.projections}

    # -- gradients as one vector (data-parallel training sums them over ranks) ---------------------------
    def gradient_parts(self) -> list[tuple[str, str]]:
        """(group, variable) of each part of :meth:`gradient_vector`, in order."""
        return [(p, "grad") for p in self.projections] + [
            (f"{layer_name(l)}_out", "grad") for l in self._read_layers] + [("out", "gbias")]

    def gradient_vector(self) -> np.ndarray:
        """The accumulated raw gradients (sums over the samples since the last optimiser step), every
        trainable projection's existing synapses in :meth:`Simulation.get` order, then the readout weights
        per read layer, then the bias."""
        return gradient_vector(self.sim, self.gradient_parts())

    def set_gradient_vector(self, vec) -> None:
        """Replace the accumulated gradients by ``vec`` (laid out as :meth:`gradient_vector`)."""
        set_gradient_vector(self.sim, self.gradient_parts(), vec, TrainingError)

    # -- one trial -------------------------------------------------------------------------------------
    def _check_batch(self, x, labels):
        c = self.config
        return check_count_batch(x, labels, num_inputs=c.num_inputs, num_classes=c.num_outputs, error=TrainingError)

    def _set_input(self, x: np.ndarray) -> None:
        """The input spike source's trains from ``x`` [n, steps, inputs] counts: a count of c at step t is c
        spikes at t0 + t dt (t0: now); elements beyond n (padding) get none."""
        sim = self.sim
        times, counts = trains_from_counts(np.ascontiguousarray(x, np.uint8), float(sim.t), float(self.config.dt),
                                           self.batch_size)
        sim.set_spike_times_flat("input", times, counts)

    def _run_chunk(self, x, labels, train: bool) -> dict:
        """One trial of up to ``batch_size`` samples (the rest of the batch padded, inactive)."""
        sim, B, c = self.sim, self.batch_size, self.config
        n, steps = x.shape[0], x.shape[1]
        sim.reset_trial()
        self._set_input(x)
        active = (np.arange(B) < n).astype(np.float64)
        layers = range(len(c.layers))
        if self._steps != steps:   # the hidden neurons count rates and spikes over the trial's steps only
            for l in layers:
                sim.set_param(population_name(l), "t_last", float(steps + 1))
            self._steps = steps
        sim.custom_update("trial_start")
        sim.run(steps + 2)
        if train:
            sim.set("softmax_error", "label", np.concatenate([labels, np.zeros(B - n, np.int64)]))
            sim.set("softmax_error", "active", active)
            for l in layers:
                sim.set(f"signal_{l}", "active", active)
            sim.custom_update("grad")
        y = sim.tape("out", "y")[:n, 2:steps + 2].astype(np.float64)   # [n, steps, classes]
        top = y.max(axis=2, keepdims=True)
        lse = top + np.log(np.exp(y - top).sum(axis=2, keepdims=True))
        loss = (lse[..., 0] - np.take_along_axis(y, labels[:, None, None], axis=2)[..., 0]).sum(axis=1)
        spikes = sum(sim.get(population_name(l), "nz")[:n].sum(axis=1) for l in layers)
        # the batch's running rates at the trial's last step, summed over its samples in element order
        totals = np.concatenate([sim.get(population_name(l), "f")[:n].astype(np.float64).sum(axis=0)
                                 for l in layers]) if train else None
        return {"loss": loss, "pi_sum": np.exp(y - lse).sum(axis=1), "spikes": spikes, "totals": totals}

    def _trial(self, x, labels, train: bool) -> dict:
        c = self.config
        x, labels = self._check_batch(x, labels)
        parts = [self._run_chunk(x[i:i + self.batch_size], labels[i:i + self.batch_size], train)
                 for i in range(0, x.shape[0], self.batch_size)]
        if train:   # the next trial's rate estimate: the mean over this batch's samples
            self.rate = sum(p["totals"] for p in parts) / x.shape[0]
        steps = x.shape[1]
        spikes = np.concatenate([p["spikes"] for p in parts])
        return {"loss": np.concatenate([p["loss"] for p in parts]) / steps,
                "pi_sum": np.concatenate([p["pi_sum"] for p in parts]), "steps": steps,
                "rate_hz": spikes / (steps * c.dt * c.hidden_total) * 1000.0}

    def gradients(self, x, labels) -> dict[str, np.ndarray]:
        """Gradients of the loss (per-step cross-entropy summed over steps, mean over the batch) for one batch,
        without applying them: ``{"in_hid": [synapses], "hid_hid": ..., "w_out": [K, H], "b_out": [K]}``
        (sparse ones in :meth:`Simulation.get` order).  Leaves the optimiser untouched (the accumulated
        gradients are read and cleared)."""
        out = self._trial(x, labels, train=True)
        scale = 1.0 / out["loss"].size
        c, sim = self.config, self.sim
        res = {p: sim.get(p, "grad") * scale for p in self.projections}
        g_out = np.zeros((c.num_outputs, c.hidden_total))
        for l in self._read_layers:
            lo, hi = self._spans[l]
            g_out[:, lo:hi] = sim.get(f"{layer_name(l)}_out", "grad").reshape(hi - lo, -1).T
        res["w_out"] = g_out * scale
        res["b_out"] = sim.get("out", "gbias") * scale
        self._zero_gradients()
        return res

    def _zero_gradients(self) -> None:
        for g, v in self.gradient_parts():
            self.sim.set(g, v, 0.0)

    def train_batch(self, x, labels) -> dict:
        """One e-prop trial, one Adam step and, with DEEP R, one rewiring.  Returns loss (mean per step),
        correct predictions, hidden rate (Hz) and rewiring counts per projection.

        The same as :meth:`accumulate_gradients` then :meth:`apply_gradients`; data-parallel training
        (:mod:`.distributed`) sums the accumulated gradients over ranks in between."""
        out = self.accumulate_gradients(x, labels)
        B = out["loss"].size
        rewiring = self.apply_gradients(B)
        pred = np.argmax(out["pi_sum"], axis=1)
        return {"loss": float(out["loss"].mean()), "correct": int((pred == np.asarray(labels)).sum()),
                "samples": B, "rate_hz": float(out["rate_hz"].mean()), "rewiring": rewiring}

    def accumulate_gradients(self, x, labels) -> dict:
        """Run one training trial on ``x`` / ``labels``, adding its raw gradients (sums over the batch, not
        yet divided by its size) to the accumulated gradients (:meth:`gradient_vector`) and setting
        :attr:`rate` to the batch's mean rate.  Returns the trial's per-sample ``loss`` (mean per step),
        ``pi_sum`` and ``rate_hz``."""
        return self._trial(x, labels, train=True)

    def apply_gradients(self, samples: int) -> dict:
        """One Adam step with the accumulated gradients divided by ``samples`` (the batch size: the loss
        is summed over a trial's steps, as mlGeNN, and averaged over the batch), clearing them, then DEEP
        R's rewiring; returns the rewiring counts per projection."""
        c, sim = self.config, self.sim
        self.opt_step += 1
        lr = c.lr * self.lr_scale
        noise = em.deep_r_noise_std(lr, c.temperature)
        for name, mode in self.optimisers:
            sim.set(name, "count", float(self.opt_step))
            sim.set_param(name, "grad_scale", 1.0 / samples)
            sim.set_param(name, "lr", lr)
            if c.temperature > 0 and mode != "none":
                sim.set_param(name, "noise_std", noise)
        sim.step = self.opt_step   # the optimiser's and the rewiring's random numbers are keyed by its step
        sim.custom_update("adam")
        rewiring = self.rewire()
        self._check_finite()
        return rewiring

    def rewire(self) -> dict:
        """DEEP R's rewiring step on every rewired projection: removed (sign flipped), added, failed."""
        if not self.rewired:
            return {}
        self.sim.step = self.opt_step   # the rewiring's random numbers are keyed by the optimiser step
        res = self.sim.custom_update("deep_r_prune")
        res.update(self.sim.custom_update("deep_r_regrow"))
        out = {}
        for p in self.rewired:
            pr, rg = res[f"{p}_prune"], res[f"{p}_regrow"]
            failed = rg["failed_adds"] + int(np.ravel(self.sim.get(f"{p}_regrow", "unplaced"))[0])
            out[p] = {"removed": pr["removed"], "added": rg["added"], "failed": failed}
        return out

    def _check_finite(self) -> None:
        for p in self.projections:
            if not np.all(np.isfinite(self.sim.get(p, "w"))):
                raise TrainingError(f"weights of {p!r} became NaN/inf (learning rate {self.config.lr} too high?)")
        if not (np.all(np.isfinite(self.w_out)) and np.all(np.isfinite(self.b_out))):
            raise TrainingError(f"readout weights became NaN/inf (learning rate {self.config.lr} too high?)")

    def predict_scores(self, x) -> np.ndarray:
        """Per-class scores (softmax summed over steps) [batch, classes] for spike counts ``x``."""
        x = np.asarray(x)
        labels = np.zeros(x.shape[0] if x.ndim == 3 else 0, np.int64)
        return self._trial(x, labels, train=False)["pi_sum"]

    def evaluate_batch(self, x, labels) -> dict:
        out = self._trial(x, labels, train=False)
        pred = np.argmax(out["pi_sum"], axis=1)
        return {"loss": float(out["loss"].mean()), "correct": int((pred == np.asarray(labels)).sum()),
                "samples": int(out["loss"].size), "rate_hz": float(out["rate_hz"].mean())}

    # -- persistence -----------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """What a checkpoint needs beyond the simulation state (weights, optimiser moments, rate estimate
        and connectivity live there)."""
        return {"opt_step": np.array(self.opt_step)}

    def load_state_arrays(self, data) -> None:
        self.opt_step = int(data["opt_step"])
