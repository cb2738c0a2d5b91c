"""e-prop classifiers: spike input -> one or more recurrent (A)LIF layers -> leaky-integrator readout with bias.

The network is described as a plastix :class:`~plastix.Network` (input spike source, one hidden population
per layer, sparse input, recurrent and layer-to-layer projections whose synapses carry ``w``, ``sign``,
``theta`` and the Adam moments ``m`` / ``v`` and gradient ``grad``); a :class:`~plastix.Simulation` holds that
state, so DEEP R is an ordinary connectivity update (:mod:`plastix.structural.deep_r`) and every per-synapse array moves
with its synapse when it rewires.  The e-prop kernels (:mod:`.kernels_cpu`, :mod:`.kernels_cuda`) run a
whole mini-batch trial on that state with a batch dimension in neuron state and per-synapse traces.

A dense projection (density 1) is the same ragged layout with full rows, so dense and sparse runs use
the same kernels and their cost differs only by the number of synapses.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..model import connectivity as connect
from ..model import init, neurons
from ..errors import PlastixError
from ..model.network import Network
from ..model.specs import WeightUpdateModel
from ..codegen.names import NAMES
from ..kernels.rng import stream_id
from ..runtime import Simulation
from ..structural.deep_r import deep_r_prune, deep_r_regrow
from . import kernels_cpu as kc
from . import optim

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


#: Per-synapse state of a trainable projection: signed weight (nA), fixed sign (DEEP R), soft-DEEP-R
#: parameter theta, Adam moments and the gradient accumulated over a trial.
EPROP_SYNAPSE = WeightUpdateModel(
    name="eprop_synapse",
    vars={"w": 0.0, "sign": 1.0, "theta": 0.0, "m": 0.0, "v": 0.0, "grad": 0.0},
    doc="Trainable synapse of an e-prop network; transmission and learning run in plastix.learning kernels.")


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
    backend: str = "cpu"               # trial kernels: "cpu" (Numba) or "cuda" (numba-cuda)

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


def _trial_kernels(backend: str):
    """The module whose ``run_trial`` runs a trial: :mod:`.kernels_cpu`, or :mod:`.kernels_cuda` (numba-cuda
    on a GPU, or its simulator with ``NUMBA_ENABLE_CUDASIM=1``)."""
    if backend == "cpu":
        return kc
    if backend != "cuda":
        raise TrainingError(f"backend must be 'cpu' or 'cuda', got {backend!r}")
    from . import kernels_cuda

    ok, why = kernels_cuda.available()
    if not ok:
        raise TrainingError(f"backend='cuda' is unavailable: {why}")
    return kernels_cuda


def _connectivity(density: float, recurrent: bool):
    if density >= 1.0:
        return connect.AllToAll(allow_self=not recurrent)
    return connect.FixedProbability(density, allow_self=not recurrent)


class EPropNetwork:
    """The trainable network and its state: sparse projections in a :class:`Simulation`, readout and
    optimiser state in numpy arrays, per-batch buffers allocated for the largest batch seen."""

    def __init__(self, config: EPropConfig):
        self.config = c = config
        self.float = np.dtype(c.dtype)
        self.network = self._describe()
        self.sim = Simulation(self.network, backend="cpu", parallel=False, check_finite=False)
        self.sim.build()
        self.projections = tuple(self._geometry)
        rng = np.random.default_rng([c.seed, 7])
        for name in self.projections:  # sign and theta from the initial weights
            w = self.sim.get(name, "w")
            self.sim.set(name, "sign", np.where(w >= 0, 1.0, -1.0))
            self.sim.set(name, "theta", np.abs(w))
        H, K = c.hidden_total, c.num_outputs
        f = self.float
        #: hidden neurons the readout does not read (readout='last': every layer but the last)
        self.unread = H - c.layers[-1] if c.readout == "last" else 0
        read = H - self.unread
        self.w_out = rng.normal(0.0, 1.0 / math.sqrt(read), (K, H)).astype(f)
        self.w_out[:, :self.unread] = 0.0   # stay 0: their gradients are dropped
        self.b_out = np.zeros(K, f)
        self.feedback_random = rng.normal(0.0, 1.0 / math.sqrt(read), (H, K)).astype(f) \
            if c.feedback == "random" else None
        self.dense_state = {n: np.zeros_like(a) for n, a in
                            (("m_w_out", self.w_out), ("v_w_out", self.w_out), ("g_w_out", self.w_out),
                             ("m_b_out", self.b_out), ("v_b_out", self.b_out), ("g_b_out", self.b_out))}
        self.rate = np.full(H, c.f_target / 1000.0, f)   # 1/ms, running batch-mean firing rate
        self.opt_step = 0
        self.lr_scale = 1.0   # set per epoch by the trainer (config.lr_decay ** epoch)
        self._buffers: dict = {}
        self._batch = 0
        self._kernels = _trial_kernels(config.backend)

    # -- description -----------------------------------------------------------------------------------
    def _describe(self) -> Network:
        """The network: populations ``input``, ``hidden``, ``hidden2``, ...; projections ``in_hid`` (input to
        layer 1), ``hid_hid`` (recurrent, layer 1), then per further layer l the feed-forward projection from
        layer l - 1 (``hid_hid2``, ``hid2_hid3``, ...) and its recurrent one (``hid2_hid2``, ...).  Also sets
        ``self._geometry``: per projection (source 0 input / 1 hidden, first presynaptic neuron in the
        concatenated hidden vector, first target, number of targets)."""
        c = self.config
        net = Network(dt=c.dt, seed=c.seed, precision=c.dtype)
        inp = net.add_population("input", c.num_inputs, neurons.spike_source_array())
        layers = c.layers
        offset = [int(sum(layers[:l])) for l in range(len(layers))]   # first neuron of each layer
        hid = [net.add_population(population_name(l), n,
                                  neurons.alif() if c.neuron == "alif" else neurons.lif(reset="subtract"))
               for l, n in enumerate(layers)]
        specs = [("in_hid", inp, hid[0], c.input_density, c.num_inputs, False, (0, 0, 0, layers[0]))]
        for l in range(len(layers)):
            here = (offset[l], layers[l])
            if l > 0:
                specs.append((f"{layer_name(l - 1)}_{layer_name(l)}", hid[l - 1], hid[l], c.ff_density,
                              layers[l - 1], False, (1, offset[l - 1]) + here))
            if c.recurrent_density > 0:
                specs.append((f"{layer_name(l)}_{layer_name(l)}", hid[l], hid[l], c.recurrent_density, layers[l],
                              True, (1, offset[l]) + here))
        self._geometry = {}
        for name, pre, post, density, n_pre, rec, geom in specs:
            self._geometry[name] = geom
            possible = n_pre - 1 if rec else n_pre
            fan_in = max(possible if c.init_fan_in == "all" else density * possible, 1.0)
            headroom = c.row_padding if density < 1.0 else 1.0
            net.add_projection(name, pre, post, connectivity=_connectivity(density, rec), weight_update=EPROP_SYNAPSE,
                               init={"w": init.Normal(0.0, 1.0 / math.sqrt(fan_in))}, headroom=headroom)
            if c.rewiring == "deep-r" and density < 1.0:
                refs = {"weight": "w", "sign": "sign"}
                net.add_connectivity_update(f"{name}_prune", name, deep_r_prune(), var_refs=refs,
                                            group="deep_r_prune")
                net.add_connectivity_update(f"{name}_regrow", name, deep_r_regrow(), var_refs=refs,
                                            row_var_refs={"removed": f"{name}_prune.removed"}, group="deep_r_regrow")
        return net

    @property
    def rewired(self) -> tuple[str, ...]:
        """Projections that DEEP R rewires (sparse ones, with rewiring='deep-r')."""
        return tuple(p for p in self.projections if f"{p}_prune" in self.network.connectivity_updates)

    def arrays(self, proj: str) -> dict:
        """Live ragged arrays of ``proj`` (views of the simulation's state; fetched anew after load)."""
        keys, s = NAMES.proj(self.network.projections[proj]), self.sim.state
        out = {"ind": s[keys.ind], "rowlen": s[keys.rowlen]}
        for v in EPROP_SYNAPSE.vars:
            out[v] = s[keys.syn(v)]
        return out

    def synapse_counts(self) -> dict[str, int]:
        """Existing synapses per trainable projection."""
        return {p: int(self.arrays(p)["rowlen"].sum()) for p in self.projections}

    def capacity(self) -> dict[str, int]:
        """Slots per trainable projection (rows x row stride)."""
        return {p: int(self.arrays(p)["ind"].size) for p in self.projections}

    # -- buffers ---------------------------------------------------------------------------------------
    def _buffers_for(self, batch: int) -> dict:
        if self._buffers.get("batch", 0) < batch:
            c, f = self.config, self.float
            H, K, N = c.hidden_total, c.num_outputs, c.num_inputs
            shapes = {n: ((batch, H), f) for n in ("v", "a", "z", "zprev", "psi", "psi_prev", "current",
                                                     "learn_signal", "rate_b")}
            shapes.update(refrac=((batch, H), np.int32), x_now=((batch, N), f), y=((batch, K), f),
                          err=((batch, K), f), pi_sum=((batch, K), f), loss=((batch,), np.float64),
                          spikes=((batch,), np.float64), reg=((H,), f))
            for p in self.projections:
                rows, stride = self.arrays(p)["ind"].shape
                shapes[f"{p}_bar"] = ((batch, rows), f)
                for n in ("eps", "ebar", "gbuf"):   # traces and the per-element gradient scratch
                    shapes[f"{p}_{n}"] = ((batch, rows, stride), f)
            on_gpu = self._kernels is not kc
            b = {"batch": batch}
            for n, (shape, dtype) in shapes.items():
                if on_gpu and n not in self.OUTPUTS:
                    # the GPU keeps the per-trial state on the device and reads only the host arrays'
                    # shapes: zero-strided stand-ins (the traces alone are [batch, rows, stride] each)
                    b[n] = np.broadcast_to(np.zeros((), dtype), shape)
                else:
                    b[n] = np.zeros(shape, dtype)
            self._buffers = b
        return self._buffers

    #: Buffers a trial accumulates into and returns (the rest is per-trial state and scratch).
    OUTPUTS = ("loss", "pi_sum", "spikes", "reg")

    def _view(self, batch: int, state: bool = True) -> dict:
        """Buffers cut to ``batch`` elements, zeroed: every trial starts from rest.  ``state=False``
        zeroes only :data:`OUTPUTS` (the GPU kernels zero their device copies of the state themselves)."""
        full = self._buffers_for(batch)
        out = {}
        for k, a in full.items():
            if k == "batch":
                continue
            v = a if k == "reg" else a[:batch]
            if state or k in self.OUTPUTS:
                v[...] = 0
            out[k] = v
        return out

    # -- one trial -------------------------------------------------------------------------------------
    def _check_batch(self, x, labels):
        c = self.config
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != c.num_inputs:
            raise TrainingError(f"x must be [batch, steps, {c.num_inputs}] spike counts, got shape {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise TrainingError(f"x needs at least one sample and one step, got shape {x.shape}")
        if x.dtype != np.uint8:
            if np.any(x < 0) or np.any(x > 255) or np.any(x != np.round(x)):
                raise TrainingError("x must hold spike counts 0..255")
            x = x.astype(np.uint8)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if labels.shape != (x.shape[0],):
            raise TrainingError(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= c.num_outputs):
            raise TrainingError(f"labels must lie in 0..{c.num_outputs - 1}, got {labels.min()}..{labels.max()}")
        return np.ascontiguousarray(x), labels

    def _trial(self, x, labels, train: bool) -> dict:
        c, f = self.config, self.float
        x, labels = self._check_batch(x, labels)
        B = x.shape[0]
        on_gpu = self._kernels is not kc
        # the GPU starts the per-trial state from zero on the device: neither uploaded nor copied back
        # (the traces alone are [batch, rows, row stride] per projection), so the host copies are not touched
        buf = self._view(B, state=not on_gpu)
        extra = {"copy_state": False} if on_gpu else {}
        arrs = [self.arrays(p) for p in self.projections]
        feedback = self.w_out.T if self.feedback_random is None else self.feedback_random
        alpha = math.exp(-c.dt / c.tau_mem)
        rho = math.exp(-c.dt / c.tau_adapt)
        kappa = math.exp(-c.dt / c.tau_out)
        beta = c.beta if c.adaptive else 0.0
        d = self.dense_state
        geometry = np.array([self._geometry[p] for p in self.projections], np.int64)
        self._kernels.run_trial(
            x, labels, train, c.adaptive,
            *(tuple(a[key] for a in arrs) for key in ("ind", "rowlen", "w", "grad")),
            *(tuple(buf[f"{p}_{key}"] for p in self.projections) for key in ("gbuf", "eps", "ebar", "bar")),
            geometry,
            buf["v"], buf["a"], buf["z"], buf["zprev"], buf["refrac"], buf["psi"], buf["psi_prev"], buf["current"],
            buf["x_now"], buf["y"], buf["err"], buf["learn_signal"], buf["rate_b"], buf["pi_sum"], buf["loss"],
            buf["spikes"], self.w_out, self.b_out, feedback, d["g_w_out"], d["g_b_out"], self.rate, buf["reg"],
            f.type(alpha), f.type(rho), f.type(beta), f.type(c.v_thresh), int(round(c.tau_refrac / c.dt)),
            f.type(kappa), f.type(math.exp(-c.dt / c.tau_rate)), f.type(c.dt), f.type(c.c_reg),
            f.type(c.f_target / 1000.0), c.reset == "zero", **extra)
        if train and self.unread:
            d["g_w_out"][:, :self.unread] = 0.0   # readout='last': the other layers' weights stay 0
        steps = x.shape[1]
        return {"loss": buf["loss"] / steps, "pi_sum": buf["pi_sum"].copy(), "steps": steps,
                "rate_hz": buf["spikes"] / (steps * c.dt * c.hidden_total) * 1000.0}

    def gradients(self, x, labels) -> dict[str, np.ndarray]:
        """Gradients of the loss (per-step cross-entropy summed over steps, mean over the batch) for one batch, without
        applying them: ``{"in_hid": [synapses], "hid_hid": ..., "w_out": [K, H], "b_out": [K]}`` (sparse
        ones in :meth:`Simulation.get` order).  Leaves the optimiser untouched."""
        out = self._trial(x, labels, train=True)
        scale = 1.0 / out["loss"].size
        res = {}
        for p in self.projections:
            a = self.arrays(p)
            mask = np.arange(a["ind"].shape[1])[None, :] < a["rowlen"][:, None]
            res[p] = a["grad"][mask] * scale
            a["grad"][...] = 0
        d = self.dense_state
        res["w_out"] = d["g_w_out"] * scale
        res["b_out"] = d["g_b_out"] * scale
        d["g_w_out"][...] = 0
        d["g_b_out"][...] = 0
        return res

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
        yet divided by its size) to the gradient arrays and setting :attr:`rate` to the batch's mean rate.
        Returns the trial's per-sample ``loss`` (mean per step), ``pi_sum`` and ``rate_hz``.

        The gradients wait in every projection's ``grad`` and in ``dense_state["g_w_out"]`` / ``["g_b_out"]``
        (further trials add to them) until :meth:`apply_gradients` uses and zeroes them."""
        return self._trial(x, labels, train=True)

    def regulariser(self) -> np.ndarray:
        """The rate regulariser ``c_reg (rate - f_target)`` of the last training trial's last step,
        averaged over its batch (per hidden neuron; the buffer the trial kernels fill)."""
        return self._buffers_for(1)["reg"]

    def apply_gradients(self, samples: int) -> dict:
        """One Adam step with the accumulated gradients divided by ``samples`` (the batch size: the loss
        is summed over a trial's steps, as mlGeNN, and averaged over the batch), zeroing them, then DEEP R's
        rewiring; returns the rewiring counts per projection."""
        c = self.config
        scale = 1.0 / samples
        self.opt_step += 1
        mode = optim.MODES[c.rewiring]
        lr = c.lr * self.lr_scale
        noise = optim.deep_r_noise_std(lr, c.temperature)
        f = self.float
        for p in self.projections:
            a = self.arrays(p)
            pmode = mode if (mode == optim.SOFT_DEEP_R or p in self.rewired) else optim.NONE
            optim.adam_sparse(a["rowlen"], a["w"], a["sign"], a["theta"], a["m"], a["v"], a["grad"], f.type(scale),
                              f.type(lr), f.type(c.adam_beta1), f.type(c.adam_beta2), f.type(c.adam_eps),
                              self.opt_step, pmode, f.type(c.l1), f.type(noise), f.type(c.theta_min),
                              np.uint64(c.seed), np.uint64(stream_id("deep_r_noise", p)))
        d = self.dense_state
        for name, w in (("w_out", self.w_out), ("b_out", self.b_out)):
            optim.adam_dense(w, d[f"m_{name}"], d[f"v_{name}"], d[f"g_{name}"], f.type(scale), f.type(lr),
                             f.type(c.adam_beta1), f.type(c.adam_beta2), f.type(c.adam_eps), self.opt_step)
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
            if not np.all(np.isfinite(self.arrays(p)["w"])):
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
        """Everything beyond the simulation state that a checkpoint needs."""
        out = {"w_out": self.w_out, "b_out": self.b_out, "rate": self.rate, "opt_step": np.array(self.opt_step)}
        out.update(self.dense_state)
        if self.feedback_random is not None:
            out["feedback_random"] = self.feedback_random
        return out

    def load_state_arrays(self, data) -> None:
        self.w_out[...] = data["w_out"]
        self.b_out[...] = data["b_out"]
        self.rate[...] = data["rate"]
        self.opt_step = int(data["opt_step"])
        for k in self.dense_state:
            self.dense_state[k][...] = data[k]
        if self.feedback_random is not None:
            self.feedback_random[...] = data["feedback_random"]
