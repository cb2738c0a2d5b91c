"""The equations of e-prop (docs/eprop.md), each written once, as engine models: neurons, synapses and
the custom updates over a trial's tape.  :class:`~plastix.learning.eprop.EPropNetwork` assembles them.

Timing on the engine (the run of a trial of ``T`` steps has ``T + 2`` engine steps): input spikes of trial
step ``t`` are emitted at engine step ``t`` and reach every first-layer neuron at engine step ``t + 1``, where
hidden trial step ``t`` runs; spikes of hidden layer ``l`` reach layer ``l + 1`` (and the recurrent targets)
one step later, as in the paper's ``z(t - 1)``; hidden spikes of trial step ``t`` reach the readout at
engine step ``t + 2``.  Tape rows are engine steps.

Gradients (per batch element, summed over the batch by the updates' reductions):

* readout ``y(t) = kappa y(t - 1) + W z(t) + b``, softmax ``pi(t)``, error ``err = pi - onehot(label)``:
  the readout neuron model and :func:`softmax_error` (a whole-population update over the tape);
* ``E(t) = err(t) + kappa E(t + 1)`` (:func:`error_filter`, a backward scan); the bias gradient is its
  sum, the readout gradient its sum over the hidden spikes that reach the readout (:func:`at_readout`);
* ``A_j(t) = (sum_k B_jk E_k(t) + reg_j(t)) psi_j(t)`` and its backward alpha-filter ``Abar``
  (:func:`learning_signal`, one pass);
* per input or recurrent synapse, ``sum_t (L_j ebar_ji + reg_j e_ji)`` equals the sum of ``Abar_j`` over
  the presynaptic spikes arriving at it (:func:`at_arrivals`, weighted by the spike count of input
  neurons): work ~ presynaptic events x row length; ALIF adds ``-beta sum_t A_j(t) eps_ji(t)`` with the
  adaptation eligibility ``eps`` from a per-synapse forward scan (:func:`adaptation`);
* the rate estimate: the batch mean of the running rates at the trial's last step (host side, over
  the neurons' state).

Padding: a batch element with ``active = 0`` (a short last batch) runs, but its error and learning signal
are zero and its rate is not counted, so it adds nothing.
"""
from __future__ import annotations

import math

import numpy as np

from ..model.specs import CustomUpdateModel, NeuronModel, Var, VarAccess, WeightUpdateModel

VA = VarAccess


# -- neurons --------------------------------------------------------------------------------------------
def _input_sim(n, p):
    n.xbar = p.alpha * n.xbar


def _input_threshold(n, g, t, dt):
    return n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt


def _input_reset(n, g, t, dt):
    c = 0.0
    while n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt:
        n.start_spike += 1
        c += 1.0
    n.cnt = c
    n.xbar += c


def input_model(alpha: float) -> NeuronModel:
    """A spike source array whose neurons may spike several times per step (``cnt``: spikes this step,
    what the synapses transmit) and keep their alpha-filtered spike train ``xbar``."""
    return NeuronModel(name="eprop_input", params={"alpha": alpha},
                       vars={"start_spike": Var(0, "int32"), "end_spike": Var(0, "int32"), "xbar": 0.0, "cnt": 0.0},
                       egps=("spike_times",), sim=_input_sim, threshold=_input_threshold, reset=_input_reset)


def _hidden_sim(n, p, i_syn):
    zp = n.z
    n.age += 1.0
    n.a = p.rho * n.a + zp
    if p.reset_zero > 0.0:
        n.v = p.alpha * n.v * (1.0 - zp) + i_syn
    else:
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
    # the trial's steps: engine step 0 is before the first input arrives, the run's last step after the trial
    if n.age > 1.0 and n.age < p.t_last + 0.5:
        n.f = p.rate_decay * n.f + (1.0 - p.rate_decay) * n.z / p.dt
        n.reg = p.c_reg * (n.f - p.f_target)
        n.nz += n.z


def _hidden_threshold(n):
    return n.z > 0.0


def hidden_model(*, alpha, rho, beta, v_thresh, n_ref, rate_decay, c_reg, f_target, dt, reset_zero) -> NeuronModel:
    """The e-prop ALIF neuron (LIF: ``beta = 0``): membrane ``v``, adaptation ``a``, spike ``z``, the
    pseudo-derivative ``psi = 0.3 / v_th max(0, 1 - |v - thr| / v_th)`` (0 while refractory), the filtered
    spike train ``xbar``, the running rate ``f`` (1/ms) and its regulariser ``reg = c_reg (f - f_target)``.
    ``v`` keeps its value before the reset: a spike is subtracted in the next step, or with ``reset_zero``
    the next step starts from 0.  ``nz`` counts the trial's spikes; ``t_last`` (a param set per trial) is
    the engine step of the trial's last step + 1.  ``A`` / ``Ab`` are tape slots the gradient updates fill."""
    params = {"alpha": alpha, "rho": rho, "beta": beta, "v_th": v_thresh, "gain": 0.3 / v_thresh,
              "n_ref": float(n_ref), "rate_decay": rate_decay, "c_reg": c_reg, "f_target": f_target, "dt": dt,
              "reset_zero": 1.0 if reset_zero else 0.0, "t_last": 1.0}
    vars_ = {v: 0.0 for v in ("v", "a", "z", "refrac", "psi", "xbar", "f", "reg", "age", "nz", "A", "Ab")}
    return NeuronModel(name="eprop_hidden", params=params, vars=vars_, sim=_hidden_sim, threshold=_hidden_threshold)


def _readout_sim(n, p, i_syn):
    n.age += 1.0
    if n.age > 2.5:  # hidden spikes of trial step 0 arrive at engine step 2
        n.y = p.kappa * n.y + i_syn + n.bias


def readout_model(kappa: float) -> NeuronModel:
    """Leaky-integrator readout ``y = kappa y + W z + b`` with its shared bias and bias gradient ``gbias``;
    ``err`` is a tape slot (the output error, then its backward-filtered ``E``)."""
    shared = VA.READ_WRITE_SHARED
    return NeuronModel(name="eprop_readout", params={"kappa": kappa},
                       vars={"y": 0.0, "err": 0.0, "age": 0.0, "bias": Var(0.0, access=shared),
                             "gbias": Var(0.0, access=shared)}, sim=_readout_sim)


# -- synapses ---------------------------------------------------------------------------------------------
def _transmit_count(s, pre):
    add_to_post(s.w * pre.cnt)  # noqa: F821 - provided by the engine


def _transmit(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine


_TRAINABLE = {"w": 0.0, "sign": 1.0, "theta": 0.0, "grad": 0.0}
#: trainable synapse from the input (transmits the spike count): weight (nA), fixed sign (DEEP R),
#: soft-DEEP-R parameter theta, accumulated gradient
INPUT_SYNAPSE = WeightUpdateModel(name="eprop_input_synapse", vars=_TRAINABLE, on_pre=_transmit_count)
#: trainable synapse between hidden neurons (recurrent or layer to layer)
HIDDEN_SYNAPSE = WeightUpdateModel(name="eprop_synapse", vars=_TRAINABLE, on_pre=_transmit)
#: readout weight with its accumulated gradient
READOUT_SYNAPSE = WeightUpdateModel(name="eprop_readout_synapse", vars={"w": 0.0, "grad": 0.0}, on_pre=_transmit)
#: fixed random feedback weight B_jk (read on the tape, never transmits)
FEEDBACK_SYNAPSE = WeightUpdateModel(name="eprop_feedback", vars={"w": 0.0})


# -- custom updates ---------------------------------------------------------------------------------------
def _rate_start(u):
    u.f = u.rate


def rate_start() -> CustomUpdateModel:
    """Trial start: each element's running rate starts from the network's estimate ``rate`` (1/ms)."""
    return CustomUpdateModel(name="rate_start", vars={"rate": 0.0}, var_refs={"f": VA.READ_WRITE}, update=_rate_start)


def _softmax_error(u, rows):
    K = u.y.shape[1]
    for r in range(rows):
        if r < 2:  # before the first hidden spikes can arrive
            for k in range(K):
                u.err[r, k] = 0.0
            continue
        top = u.y[r, 0]
        for k in range(1, K):
            top = max(top, u.y[r, k])
        total = 0.0
        for k in range(K):
            e = exp(u.y[r, k] - top)  # noqa: F821 - engine math
            u.err[r, k] = e
            total += e
        for k in range(K):
            u.err[r, k] = u.active * (u.err[r, k] / total - (1.0 if k == u.label else 0.0))


def softmax_error() -> CustomUpdateModel:
    """Per step: ``err = active (softmax(y) - onehot(label))`` (the readout couples its neurons: a
    whole-population update)."""
    return CustomUpdateModel(
        name="softmax_error", per="population", tape_refs={"y": VA.READ_ONLY, "err": VA.READ_WRITE},
        global_vars={"label": Var(0, "int32", access=VA.READ_ONLY_DUPLICATE),
                     "active": Var(1.0, access=VA.READ_ONLY_DUPLICATE)}, update=_softmax_error)


def _error_filter(u, p, row):
    if row >= 2:
        u.acc = p.kappa * u.acc + u.err
        u.err = u.acc
        u.gb = u.acc


def error_filter(kappa: float) -> CustomUpdateModel:
    """``E(t) = err(t) + kappa E(t + 1)`` in place of ``err`` (backward scan); ``gb``: the bias gradient."""
    return CustomUpdateModel(name="error_filter", params={"kappa": kappa}, temps=("acc",),
                             tape_refs={"err": VA.READ_WRITE}, vars={"gb": Var(0.0, access=VA.REDUCE_SUM)},
                             scan="backward", update=_error_filter)


def _learning_signal(u, p, rows):
    H = u.A.shape[1]
    K = u.E.shape[1]
    # the feedback matrix transposed once, so each step's product adds contiguous rows (a loop over the
    # hidden neurons that vectorises); each neuron's sum still runs k = 0 .. K - 1 from reg * active
    BT = np.empty((K, H), u.B.dtype)
    for j in range(H):
        for k in range(K):
            BT[k, j] = u.B[j, k]
    acc = np.empty_like(u.reg[0])
    for r in range(rows - 1, -1, -1):
        inside = r > 0 and r < rows - 1  # the extra last step: its error would reach the readout after the run
        if inside:
            for j in range(H):
                acc[j] = u.reg[r, j] * u.active
            for k in range(K):
                e = u.E[r + 1, k]
                for j in range(H):
                    acc[j] += BT[k, j] * e
            for j in range(H):
                u.A[r, j] = acc[j] * u.psi[r, j]
        else:
            for j in range(H):
                u.A[r, j] = 0.0
        if r == rows - 1:
            for j in range(H):
                u.Ab[r, j] = u.A[r, j]
        else:
            for j in range(H):
                u.Ab[r, j] = p.alpha * u.Ab[r + 1, j] + u.A[r, j]


def learning_signal(alpha: float) -> CustomUpdateModel:
    """``A_j = (sum_k B_jk E_k + reg_j) psi_j`` per step, with feedback ``B`` (symmetric: the readout weights;
    or fixed random), over the whole layer (a matrix-vector product per step), and its backward
    alpha-filter ``Abar(t) = A(t) + alpha Abar(t + 1)`` in the same pass."""
    return CustomUpdateModel(
        name="learning_signal", per="population", params={"alpha": alpha}, var_refs={"B": VA.READ_ONLY},
        tape_refs={"A": VA.READ_WRITE, "Ab": VA.READ_WRITE, "E": VA.READ_ONLY, "reg": VA.READ_ONLY,
                   "psi": VA.READ_ONLY},
        global_vars={"active": Var(1.0, access=VA.READ_ONLY_DUPLICATE)}, update=_learning_signal)


_SUMMED = {"g": Var(0.0, access=VA.REDUCE_SUM)}


def _at_arrivals(u):
    u.g = u.Ab


def _at_arrivals_count(u):
    u.g = u.Ab * u.cnt


def at_arrivals(counts: bool) -> CustomUpdateModel:
    """Per synapse ``g``: the sum of its target's ``Abar`` over the presynaptic spikes arriving at it
    (``counts``: weighted by the input neuron's spike count)."""
    if counts:
        return CustomUpdateModel(name="at_arrivals_count", tape_refs={"Ab": VA.READ_ONLY, "cnt": VA.READ_ONLY},
                                 vars=_SUMMED, events="pre_spikes", update=_at_arrivals_count)
    return CustomUpdateModel(name="at_arrivals", tape_refs={"Ab": VA.READ_ONLY}, vars=_SUMMED, events="pre_spikes",
                             update=_at_arrivals)


def _adaptation(u, p):
    u.eps = u.psi_prev * u.xb_prev + (p.rho - p.beta * u.psi_prev) * u.eps
    u.g = -p.beta * u.A * u.eps
    u.psi_prev = u.psi
    u.xb_prev = u.xb


def adaptation(rho: float, beta: float) -> CustomUpdateModel:
    """ALIF's adaptation term ``-beta sum_t A_j(t) eps_ji(t)`` per synapse, ``eps`` from a forward scan
    ``eps(t) = psi(t-1) xbar(t-1) + (rho - beta psi(t-1)) eps(t-1)``."""
    return CustomUpdateModel(name="adaptation", params={"rho": rho, "beta": beta},
                             temps=("eps", "psi_prev", "xb_prev"), vars=_SUMMED,
                             tape_refs={"psi": VA.READ_ONLY, "A": VA.READ_ONLY, "xb": VA.READ_ONLY}, scan="forward",
                             update=_adaptation)


def _at_readout(u):
    u.g = u.E


def at_readout() -> CustomUpdateModel:
    """Per readout weight: the sum of ``E`` over the hidden spikes that reach the readout."""
    return CustomUpdateModel(name="at_readout", tape_refs={"E": VA.READ_ONLY}, vars=_SUMMED, events="pre_spikes",
                             update=_at_readout)


def _accumulate1(u):
    u.grad = u.grad + u.g1


def _accumulate2(u):
    u.grad = u.grad + u.g1 + u.g2


def accumulate(terms: int) -> CustomUpdateModel:
    """``grad += g1 (+ g2)``: a trial's gradient parts added to the gradient accumulated since the last
    optimiser step."""
    refs = {"grad": VA.READ_WRITE, "g1": VA.READ_ONLY}
    if terms == 2:
        refs["g2"] = VA.READ_ONLY
    return CustomUpdateModel(name=f"accumulate{terms}", var_refs=refs,
                             update=_accumulate2 if terms == 2 else _accumulate1)


def deep_r_noise_std(lr: float, temperature: float) -> float:
    """Standard deviation of DEEP R's per-step noise, ``sqrt(2 lr T)``."""
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    return math.sqrt(2.0 * lr * temperature)
