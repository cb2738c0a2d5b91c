"""e-prop gradients as models on the engine: neuron models, a batched forward run, and custom updates
over its tape -- no hand-written trial kernel.

Work in progress toward issue 14's "e-prop rebuilt on the engine": this module computes the gradients
of :meth:`plastix.learning.eprop.EPropNetwork.gradients` (single hidden layer; LIF and ALIF; symmetric or
random feedback; the rate regulariser) and is tested against it; the trainer still runs
:mod:`.kernels_cpu` / :mod:`.kernels_cuda` until this path trains, checkpoints and measures faster.

How the equations of docs/eprop.md become engine pieces (trial step t runs as engine step t + 1 for the
hidden layer, so that input spikes of step t arrive at it in step t; the run has T + 2 steps):

* the hidden ALIF/LIF neuron model advances ``v``, ``a``, ``z``, the pseudo-derivative ``psi``, its
  filtered spike train ``xbar`` and the running rate ``f`` / regulariser ``reg`` exactly as the trial
  kernel does; the input is a spike source whose neurons keep their own ``xbar``;
* the leaky readout, its per-step softmax and error are a whole-population update over the tape
  (``per="population"``), at the step hidden spikes reach it;
* the backward-filtered error ``E(t) = err(t) + kappa E(t + 1)`` is a backward scan; it gives the bias
  gradient (a reduction) and, summed over the hidden spikes that reach the readout (presynaptic events),
  the readout gradient;
* the learning signal and the regulariser make ``A_j(t) = (sum_k B_jk E_k(t) + reg_j(t)) psi_j(t)``
  (population update), filtered backward by alpha (``Abar``);
* for every input and recurrent synapse, ``sum_t (L_j(t) ebar_ji(t) + reg_j(t) e_ji(t))`` equals the sum
  of ``Abar_j`` over the presynaptic spikes arriving at the synapse: work proportional to presynaptic
  events times row length, not synapses times steps.  ALIF adds ``-beta sum_t A_j(t) eps_ji(t)``, whose
  adaptation trace ``eps`` needs a per-synapse forward scan over the steps;
* the rate estimate is the batch mean of the running rates (a ``REDUCE_MEAN``).
"""
from __future__ import annotations

import math

import numpy as np

from ..model import connectivity as connect
from ..model.network import Dense, Network
from ..model.specs import CustomUpdateModel, NeuronModel, Var, VarAccess, WeightUpdateModel
from ..runtime import Simulation
from .eprop import EPropConfig, TrainingError

VA = VarAccess


# -- neuron models ---------------------------------------------------------------------------------------
def _hidden_sim(n, p, i_syn):
    zp = n.z
    n.age += 1.0
    n.a = p.rho * n.a + zp
    n.v = p.alpha * n.v + i_syn - p.v_th * zp
    thr = p.v_th + p.beta * n.a
    if n.refrac > 0.0:
        n.refrac -= 1.0
        n.z = 0.0
        n.psi = 0.0
    else:
        n.psi = p.gain * max(0.0, 1.0 - abs(n.v - thr) / p.v_th)
        if n.v >= thr:
            n.z = 1.0
            n.refrac = p.n_ref
        else:
            n.z = 0.0
    n.xbar = p.alpha * n.xbar + n.z
    if n.age > 1.0:  # engine step 0 of a trial is before its first input arrives
        n.f = p.rate_decay * n.f + (1.0 - p.rate_decay) * n.z / p.dt
        n.reg = p.c_reg * (n.f - p.f_target)


def _hidden_threshold(n):
    return n.z > 0.0


def hidden_model(c: EPropConfig) -> NeuronModel:
    """The e-prop ALIF (LIF with beta = 0) neuron with the trial kernel's discrete equations; ``A`` and
    ``Ab`` are tape slots the gradient updates fill."""
    beta = c.beta if c.adaptive else 0.0
    params = {"alpha": math.exp(-c.dt / c.tau_mem), "rho": math.exp(-c.dt / c.tau_adapt), "beta": beta,
              "v_th": c.v_thresh, "gain": 0.3 / c.v_thresh, "n_ref": float(round(c.tau_refrac / c.dt)),
              "rate_decay": math.exp(-c.dt / c.tau_rate), "c_reg": c.c_reg, "f_target": c.f_target / 1000.0,
              "dt": c.dt}
    vars_ = {v: 0.0 for v in ("v", "a", "z", "refrac", "psi", "xbar", "f", "reg", "age", "A", "Ab")}
    return NeuronModel(name="eprop_hidden", params=params, vars=vars_, sim=_hidden_sim,
                       threshold=_hidden_threshold)


def _input_sim(n, p):
    n.xbar = p.alpha * n.xbar


def _input_threshold(n, g, t, dt):
    return n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt


def _input_reset(n, g, t, dt):
    while n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt:
        n.start_spike += 1
    n.xbar += 1.0


def input_model(c: EPropConfig) -> NeuronModel:
    """A spike source array whose neurons keep their alpha-filtered spike train ``xbar``."""
    return NeuronModel(name="eprop_input", params={"alpha": math.exp(-c.dt / c.tau_mem)},
                       vars={"start_spike": Var(0, "int32"), "end_spike": Var(0, "int32"), "xbar": 0.0},
                       egps=("spike_times",), sim=_input_sim, threshold=_input_threshold, reset=_input_reset)


READOUT = NeuronModel(name="eprop_readout", vars={"y": 0.0, "err": 0.0, "bias": Var(0.0, access=VA.READ_ONLY)})


def _transmit(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine


SYNAPSE = WeightUpdateModel(name="eprop_synapse", vars={"w": 0.0}, on_pre=_transmit)
#: readout weights [hidden, classes]: read on the tape (no transmission during the run)
READOUT_SYNAPSE = WeightUpdateModel(name="eprop_readout_synapse", vars={"w": 0.0})


# -- updates over the tape ---------------------------------------------------------------------------------
def _readout(u, p, rows):
    y = u.bias * 0.0
    u.y[0] = 0.0
    u.err[0] = 0.0
    u.y[1] = 0.0
    u.err[1] = 0.0
    for r in range(2, rows):  # hidden spikes of trial step r - 2 reach the readout at step r
        y = p.kappa * y + u.z[r - 1] @ u.W + u.bias
        u.y[r] = y
        e = np.exp(y - y.max())
        u.err[r] = e / e.sum()
        u.err[r, u.label] -= 1.0


def _error_filter(u, p, row):
    if row >= 2:
        u.acc = p.kappa * u.acc + u.err
        u.err = u.acc
        u.gb = u.acc


def _signal(u, rows):
    u.A[0] = 0.0
    u.A[rows - 1] = 0.0  # the extra last step: its error would reach the readout after the run
    for r in range(1, rows - 1):
        u.A[r] = (u.B @ u.E[r + 1] + u.reg[r]) * u.psi[r]


def _alpha_filter(u, p):
    u.acc = p.alpha * u.acc + u.A
    u.Ab = u.acc


def _at_arrivals(u):
    u.g = u.Ab


def _adaptation(u, p):
    u.eps = u.psi_prev * u.xb_prev + (p.rho - p.beta * u.psi_prev) * u.eps
    u.g = -p.beta * u.A * u.eps
    u.psi_prev = u.psi
    u.xb_prev = u.xb


def _at_readout(u):
    u.g = u.E


def _rate_start(u):
    u.f = u.rate


def _rate_mean(u, row, rows):
    if row == rows - 2:  # the last trial step (the run has one more)
        u.rate = u.f


class EPropEngine:
    """A single-hidden-layer e-prop classifier whose gradients come from engine models (see module doc).

    ``EPropEngine(config, batch_size)`` draws its own connectivity and weights; :meth:`from_network`
    copies those of an :class:`~plastix.learning.eprop.EPropNetwork`.  ``gradients(x, labels)`` returns
    what ``EPropNetwork.gradients`` does."""

    def __init__(self, config: EPropConfig, batch_size: int, *, backend: str = "cpu", connectivity=None):
        c = self.config = config
        if len(c.layers) != 1:
            raise TrainingError("the engine e-prop path has one hidden layer so far; use EPropNetwork for more")
        if getattr(c, "reset", "subtract") != "subtract":
            raise TrainingError(f"the engine e-prop path resets by subtraction so far, got reset={c.reset!r}")
        self.batch_size = int(batch_size)
        H, K, N = c.hidden_total, c.num_outputs, c.num_inputs
        net = Network(dt=c.dt, seed=c.seed, precision=c.dtype)
        net.add_population("input", N, input_model(c))
        net.add_population("hidden", H, hidden_model(c))
        net.add_population("out", K, READOUT)
        conns = connectivity or {}
        self.projections = ["in_hid"] + (["hid_hid"] if c.recurrent_density > 0 else [])
        for name, pre in (("in_hid", "input"), ("hid_hid", "hidden")):
            if name not in self.projections:
                continue
            pre_idx, post_idx = conns.get(name, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            net.add_projection(name, pre, "hidden", connectivity=connect.FromArrays(pre_idx, post_idx),
                               weight_update=SYNAPSE)
        net.add_projection("hid_out", "hidden", "out", connectivity=Dense(), weight_update=READOUT_SYNAPSE)
        if c.feedback == "random":
            net.add_projection("feedback", "hidden", "out", connectivity=Dense(), weight_update=READOUT_SYNAPSE)
        kappa = math.exp(-c.dt / c.tau_out)
        alpha = math.exp(-c.dt / c.tau_mem)
        # trial start: the running rates start from the network's estimate
        net.add_custom_update("rate_start", "hidden", CustomUpdateModel(
            name="rate_start", vars={"rate": c.f_target / 1000.0}, var_refs={"f": VA.READ_WRITE},
            update=_rate_start), group="trial_start")
        net.add_custom_update("readout", "out", CustomUpdateModel(
            name="readout", per="population", params={"kappa": kappa},
            var_refs={"W": VA.READ_ONLY, "bias": VA.READ_ONLY},
            tape_refs={"y": VA.READ_WRITE, "err": VA.READ_WRITE, "z": VA.READ_ONLY},
            global_vars={"label": Var(0, "int32", access=VA.READ_ONLY_DUPLICATE)}, update=_readout),
            var_refs={"W": "hid_out.w", "bias": "bias"},
            tape_refs={"y": "y", "err": "err", "z": "hidden.z"}, group="grad")
        net.add_custom_update("error_filter", "out", CustomUpdateModel(
            name="error_filter", params={"kappa": kappa}, temps=("acc",), tape_refs={"err": VA.READ_WRITE},
            vars={"gb": Var(0.0, access=VA.REDUCE_SUM)}, scan="backward", update=_error_filter), group="grad")
        net.add_custom_update("signal", "hidden", CustomUpdateModel(
            name="signal", per="population", var_refs={"B": VA.READ_ONLY},
            tape_refs={"A": VA.READ_WRITE, "E": VA.READ_ONLY, "reg": VA.READ_ONLY, "psi": VA.READ_ONLY},
            update=_signal), var_refs={"B": "feedback.w" if c.feedback == "random" else "hid_out.w"},
            tape_refs={"A": "A", "E": "out.err", "reg": "reg", "psi": "psi"}, group="grad")
        net.add_custom_update("alpha_filter", "hidden", CustomUpdateModel(
            name="alpha_filter", params={"alpha": alpha}, temps=("acc",),
            tape_refs={"A": VA.READ_ONLY, "Ab": VA.READ_WRITE}, scan="backward", update=_alpha_filter),
            group="grad")
        # per-synapse gradient parts as the updates' own variables (they move with their synapses)
        summed = {"g": Var(0.0, access=VA.REDUCE_SUM)}
        arrivals = CustomUpdateModel(name="at_arrivals", tape_refs={"Ab": VA.READ_ONLY}, vars=summed,
                                     events="pre_spikes", update=_at_arrivals)
        adaptation = CustomUpdateModel(
            name="adaptation", params={"rho": math.exp(-c.dt / c.tau_adapt), "beta": c.beta},
            temps=("eps", "psi_prev", "xb_prev"), vars=summed,
            tape_refs={"psi": VA.READ_ONLY, "A": VA.READ_ONLY, "xb": VA.READ_ONLY}, scan="forward",
            update=_adaptation)
        for p in self.projections:
            net.add_custom_update(f"{p}_grad", p, arrivals, tape_refs={"Ab": "post.Ab"}, group="grad")
            if c.adaptive:
                net.add_custom_update(f"{p}_adapt", p, adaptation,
                                      tape_refs={"psi": "post.psi", "A": "post.A", "xb": "pre.xbar"}, group="grad")
        net.add_custom_update("readout_grad", "hid_out", CustomUpdateModel(
            name="at_readout", tape_refs={"E": VA.READ_ONLY}, vars=summed, events="pre_spikes",
            update=_at_readout), tape_refs={"E": "post.err"}, group="grad")
        net.add_custom_update("rate_mean", "hidden", CustomUpdateModel(
            name="rate_mean", tape_refs={"f": VA.READ_ONLY}, var_refs={"rate": VA.REDUCE_MEAN}, scan="forward",
            update=_rate_mean), var_refs={"rate": "rate_start.rate"}, tape_refs={"f": "f"}, group="grad")
        self.network = net
        self.sim = Simulation(net, backend=backend, batch_size=self.batch_size, check_finite=False)
        self.sim.build()

    @classmethod
    def from_network(cls, enet, batch_size: int, *, backend: str = "cpu") -> "EPropEngine":
        """The same classifier as ``enet`` (connectivity, weights, readout, feedback, rate estimate)."""
        conns = {p: enet.sim.connectivity(p) for p in enet.projections}
        eng = cls(enet.config, batch_size, backend=backend, connectivity=conns)
        for p in eng.projections:
            eng.sim.set(p, "w", enet.sim.get(p, "w"))
        eng.sim.set("hid_out", "w", enet.w_out.T.ravel())
        if enet.feedback_random is not None:
            eng.sim.set("feedback", "w", enet.feedback_random.ravel())
        eng.sim.set("out", "bias", enet.b_out)
        eng.sim.set("rate_start", "rate", enet.rate)
        return eng

    def gradients(self, x, labels) -> dict[str, np.ndarray]:
        """Gradients of one batch (mean over it), as ``EPropNetwork.gradients`` returns them; updates the
        rate estimate."""
        c, sim, B = self.config, self.sim, self.batch_size
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[0] != B or x.shape[2] != c.num_inputs:
            raise TrainingError(f"x must be [{B}, steps, {c.num_inputs}] spikes, got shape {x.shape}")
        if np.any((x != 0) & (x != 1)):
            raise TrainingError("the engine e-prop path takes 0/1 spikes per step (a spike source emits at most one)")
        labels = np.asarray(labels, np.int64)
        steps = x.shape[1]
        sim.reset_trial()
        t0 = sim.t
        # one train per (element, input neuron): the steps where x is 1, from one nonzero over the batch
        b_idx, i_idx, t_idx = np.nonzero(x.transpose(0, 2, 1))
        splits = np.searchsorted(b_idx * c.num_inputs + i_idx, np.arange(1, B * c.num_inputs))
        flat = np.split(t0 + t_idx * c.dt, splits)
        trains = [flat[b * c.num_inputs:(b + 1) * c.num_inputs] for b in range(B)]
        sim.set_spike_times("input", trains if B > 1 else trains[0])
        sim.set("readout", "label", labels if B > 1 else labels[0])
        sim.custom_update("trial_start")
        sim.run(steps + 2)
        sim.custom_update("grad")
        out = {}
        for p in self.projections:
            g = sim.get(f"{p}_grad", "g")
            out[p] = (g + sim.get(f"{p}_adapt", "g") if c.adaptive else g) / B
        H, K = c.hidden_total, c.num_outputs
        out["w_out"] = sim.get("readout_grad", "g").reshape(H, K).T / B
        out["b_out"] = sim.get("error_filter", "gb") / B
        return out
