"""Surrogate-gradient BPTT as engine models (issue 15, item 1): SD-SNN's LIF neuron, its adjoint as a
backward scan over the tape, the adjoint carried back through a projection by accumulating into the
presynaptic tape, and the weight gradient as a sum over presynaptic spike arrivals.

Equations (SD-SNN, ``../shared/SDSNN.md`` 1a): ``u_t = decay u_{t-1} (1 - s_{t-1}) + I_t + b``,
``s_t = H(u_t - v_th)``, rectangular surrogate ``ds/du = 1 if |u - v_th| < lens``; the reset path is not
detached.  Backward, per neuron and step (``next`` is ``du`` of the following step)::

    dL/ds_t = g_t - decay u_t du_{t+1}              (g_t: from the loss or from the next layer)
    du_t    = dL/ds_t ds/du(u_t) + decay (1 - s_t) du_{t+1}

``g`` of a layer is ``sum_j W_ij du_j`` of the layer above at the step its spikes arrive there (a
per-synapse scan with ``VarAccess.ACCUMULATE``); ``dL/dW_ij = sum_t s_i(t) du_j(t + 1)`` (presynaptic
events); ``dL/db_j = sum_t du_j(t)``.  A layer at depth ``D`` (the input is depth 0) runs its trial steps
at engine steps ``D .. D + T - 1`` (a spike reaches the next layer one step later).
"""
from __future__ import annotations

from ..model.specs import CustomUpdateModel, NeuronModel, Var, VarAccess, WeightUpdateModel

VA = VarAccess


def _lif_sim(n, p, i_syn):
    n.age += 1.0
    if n.age > p.t_first + 0.5:  # the trial's first input reaches depth D at engine step D
        n.u = p.decay * n.u * (1.0 - n.s) + i_syn + n.bias
        if n.u > p.v_th:
            n.s = 1.0
        else:
            n.s = 0.0


def _lif_threshold(n):
    return n.s > 0.0


def sdsnn_lif(depth: int, decay: float = 0.2, v_thresh: float = 0.5) -> NeuronModel:
    """SD-SNN's LIF at ``depth`` layers from the input (hard reset through ``1 - s``); ``bias`` is shared,
    ``g`` / ``du`` are tape slots the backward pass fills."""
    return NeuronModel(name="sdsnn_lif", params={"decay": decay, "v_th": v_thresh, "t_first": float(depth)},
                       vars={"u": 0.0, "s": 0.0, "age": 0.0, "g": 0.0, "du": 0.0,
                             "bias": Var(0.0, access=VA.READ_WRITE_SHARED)},
                       sim=_lif_sim, threshold=_lif_threshold)


def _transmit(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine


#: trainable synapse: weight and accumulated gradient
SYNAPSE = WeightUpdateModel(name="bptt_synapse", vars={"w": 0.0, "grad": 0.0}, on_pre=_transmit)


def _rate_loss(u, p, rows):
    K = u.s.shape[1]
    first = rows - p.steps
    for k in range(K):
        count = 0.0
        for r in range(first, rows):
            count += u.s[r, k]
        target = 1.0 if k == u.label else 0.0
        grad = p.scale * u.active * (count / p.steps - target) / p.steps
        for r in range(rows):
            u.g[r, k] = grad if r >= first else 0.0


def rate_mse(steps: int) -> CustomUpdateModel:
    """The output layer's ``g = dL/ds``: loss ``scale / 2 * sum_k (rate_k - onehot_k)^2`` with ``rate = sum_t s_t
    / steps`` (``scale``: e.g. ``2 / (batch classes)`` for a mean over both; set with ``set_param``), so
    ``g_t = scale (rate - onehot) / steps`` on the trial's steps."""
    return CustomUpdateModel(name="rate_mse", per="population", params={"steps": float(steps), "scale": 1.0},
                             tape_refs={"s": VA.READ_ONLY, "g": VA.READ_WRITE},
                             global_vars={"label": Var(0, "int32", access=VA.READ_ONLY_DUPLICATE),
                                          "active": Var(1.0, access=VA.READ_ONLY_DUPLICATE)}, update=_rate_loss)


def _adjoint(u, p, row):
    d = 0.0
    if row >= p.t_first:  # steps before the layer's first input are not part of the trial
        sg = 0.0
        if abs(u.u - p.v_th) < p.lens:
            sg = 1.0
        d = (u.g - p.decay * u.u * u.nxt) * sg + p.decay * (1.0 - u.s) * u.nxt
    u.du = d
    u.nxt = d
    u.gb = d


def adjoint(depth: int, decay: float = 0.2, v_thresh: float = 0.5, lens: float = 0.5) -> CustomUpdateModel:
    """The per-neuron backward scan above for a layer at ``depth``; ``gb``: the bias gradient (summed over
    steps and the batch)."""
    return CustomUpdateModel(name="lif_adjoint", params={"decay": decay, "v_th": v_thresh, "lens": lens,
                                                         "t_first": float(depth)},
                             temps=("nxt",), tape_refs={"u": VA.READ_ONLY, "s": VA.READ_ONLY, "g": VA.READ_ONLY,
                                                        "du": VA.READ_WRITE},
                             vars={"gb": Var(0.0, access=VA.REDUCE_SUM)}, scan="backward", update=_adjoint)


def _transpose(u):
    u.gz = u.w * u.du


def transpose() -> CustomUpdateModel:
    """``g_i += sum_j w_ij du_j`` at the step the spikes of ``i`` arrive (per-synapse scan accumulating into the
    presynaptic tape)."""
    return CustomUpdateModel(name="adjoint_transpose", var_refs={"w": VA.READ_ONLY},
                             tape_refs={"du": VA.READ_ONLY, "gz": VA.ACCUMULATE}, scan="backward",
                             update=_transpose)


def _at_arrivals(u):
    u.gw = u.du


def weight_gradient() -> CustomUpdateModel:
    """``dL/dw_ij = sum`` over the spikes of ``i`` of ``du_j`` where they arrive (presynaptic events)."""
    return CustomUpdateModel(name="weight_gradient", tape_refs={"du": VA.READ_ONLY},
                             vars={"gw": Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes", update=_at_arrivals)
