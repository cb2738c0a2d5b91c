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


def _transmit_count(s, pre):
    add_to_post(s.w * pre.cnt)  # noqa: F821 - provided by the engine


#: trainable synapse: weight and accumulated gradient
SYNAPSE = WeightUpdateModel(name="bptt_synapse", vars={"w": 0.0, "grad": 0.0}, on_pre=_transmit)

_KIDX = Var(0, "int32", access=VA.READ_ONLY, doc="flat index into the kernel [C_out, C_in, kh, kw]")


def synapse(graded: bool, conv: bool) -> WeightUpdateModel:
    """A trainable synapse: ``w`` (for a convolution: its copy of the shared kernel entry ``kidx``).
    ``graded``: the presynaptic neuron sends a value ``cnt`` per event (an input count, a pooled value)
    and the synapse transmits ``w cnt``; else a spike, transmitting ``w``."""
    vars_ = {"w": 0.0, "kidx": _KIDX} if conv else {"w": 0.0}
    name = "bptt_" + ("conv" if conv else "fc") + ("_graded" if graded else "")
    return WeightUpdateModel(name=name, vars=vars_, on_pre=_transmit_count if graded else _transmit)


def _pool_sim(n, i_syn):
    n.cnt = i_syn


def _pool_threshold(n):
    return n.cnt != 0.0


def pool_model() -> NeuronModel:
    """Average pooling of spikes as a population: each neuron passes on its input of the step (the mean of
    its window's spikes, through synapses of weight ``1 / window``) as a graded event ``cnt``.  ``du``:
    the tape slot the layer above accumulates ``dL/dcnt`` into (pooling is linear: nothing else to do)."""
    return NeuronModel(name="avg_pool", vars={"cnt": 0.0, "du": 0.0}, sim=_pool_sim, threshold=_pool_threshold)


def _li_sim(n, p, i_syn):
    n.age += 1.0
    if n.age > p.t_first + 0.5:
        n.y = p.kappa * n.y + i_syn + n.bias


def li_readout(depth: int, kappa: float = 0.8) -> NeuronModel:
    """A leaky-integrator readout ``y_t = kappa y_{t-1} + I_t + b`` at ``depth`` (no spikes); ``g`` (the
    loss's ``dL/dy``) and ``du`` are tape slots of the backward pass."""
    return NeuronModel(name="li_readout", params={"kappa": kappa, "t_first": float(depth)},
                       vars={"y": 0.0, "age": 0.0, "g": 0.0, "du": 0.0,
                             "bias": Var(0.0, access=VA.READ_WRITE_SHARED)}, sim=_li_sim)


def parameters() -> NeuronModel:
    """Trainable values that are not a population's or a synapse's own, as a population (a convolution's
    shared kernel and channel biases): ``w`` and its gradient ``grad``, shared by the batch; no dynamics.
    Optimiser chains run on it like on any population."""
    shared = VA.READ_WRITE_SHARED
    return NeuronModel(name="parameters", vars={"w": Var(0.0, access=shared), "grad": Var(0.0, access=shared)})


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


def _ce_rate_loss(u, p, rows):
    K = u.s.shape[1]
    first = rows - p.steps
    top = -1e30
    for k in range(K):  # the counts are recomputed per pass: no scratch array shared by batch elements
        c = 0.0
        for r in range(first, rows):
            c += u.s[r, k]
        top = max(top, c)
    total = 0.0
    for k in range(K):
        c = 0.0
        for r in range(first, rows):
            c += u.s[r, k]
        total += exp(c - top)  # noqa: F821 - engine math
    for k in range(K):
        c = 0.0
        for r in range(first, rows):
            c += u.s[r, k]
        target = 1.0 if k == u.label else 0.0
        grad = p.scale * u.active * (exp(c - top) / total - target)  # noqa: F821
        for r in range(rows):
            u.g[r, k] = grad if r >= first else 0.0


def ce_rate(steps: int) -> CustomUpdateModel:
    """``g = dL/ds`` for the cross-entropy of the output spike counts ``c_k = sum_t s_t`` as logits,
    ``L = scale * CE(c, label)`` (``scale``: ``1 / batch`` for a batch mean)."""
    return CustomUpdateModel(name="ce_rate", per="population", params={"steps": float(steps), "scale": 1.0},
                             tape_refs={"s": VA.READ_ONLY, "g": VA.READ_WRITE},
                             global_vars={"label": Var(0, "int32", access=VA.READ_ONLY_DUPLICATE),
                                          "active": Var(1.0, access=VA.READ_ONLY_DUPLICATE)}, update=_ce_rate_loss)


def _ce_step_loss(u, p, rows):
    K = u.y.shape[1]
    first = rows - p.steps
    for r in range(rows):
        if r < first:
            for k in range(K):
                u.g[r, k] = 0.0
            continue
        top = u.y[r, 0]
        for k in range(1, K):
            top = max(top, u.y[r, k])
        total = 0.0
        for k in range(K):
            total += exp(u.y[r, k] - top)  # noqa: F821 - engine math
        for k in range(K):
            target = 1.0 if k == u.label else 0.0
            u.g[r, k] = p.scale * u.active * (exp(u.y[r, k] - top) / total - target)  # noqa: F821


def ce_step(steps: int) -> CustomUpdateModel:
    """``g = dL/dy`` of a leaky readout for the per-step cross-entropy summed over the trial's steps,
    ``L = scale * sum_t CE(y_t, label)``."""
    return CustomUpdateModel(name="ce_step", per="population", params={"steps": float(steps), "scale": 1.0},
                             tape_refs={"y": VA.READ_ONLY, "g": VA.READ_WRITE},
                             global_vars={"label": Var(0, "int32", access=VA.READ_ONLY_DUPLICATE),
                                          "active": Var(1.0, access=VA.READ_ONLY_DUPLICATE)}, update=_ce_step_loss)


def _li_adjoint(u, p, row):
    d = 0.0
    if row >= p.t_first:
        d = u.g + p.kappa * u.nxt
    u.du = d
    u.nxt = d
    u.gb = d


def li_adjoint(depth: int, kappa: float = 0.8) -> CustomUpdateModel:
    """The leaky readout's backward scan ``du_t = g_t + kappa du_{t+1}`` (``gb``: the bias gradient)."""
    return CustomUpdateModel(name="li_adjoint", params={"kappa": kappa, "t_first": float(depth)}, temps=("nxt",),
                             tape_refs={"g": VA.READ_ONLY, "du": VA.READ_WRITE},
                             vars={"gb": Var(0.0, access=VA.REDUCE_SUM)}, scan="backward", update=_li_adjoint)


def _adjoint(u, p, row):
    d = 0.0
    if row >= p.t_first:  # steps before the layer's first input are not part of the trial
        sg = 0.0
        if abs(u.u - p.v_th) < p.lens:
            sg = 1.0
        s = 0.0
        if u.u > p.v_th:   # the step's spike, as the forward step set it from this very u
            s = 1.0
        d = (u.g - p.decay * u.u * u.nxt) * sg + p.decay * (1.0 - s) * u.nxt
    u.du = d
    u.nxt = d
    u.gb = d


def adjoint(depth: int, decay: float = 0.2, v_thresh: float = 0.5, lens: float = 0.5,
            spikes_on_tape: bool = True) -> CustomUpdateModel:
    """The per-neuron backward scan above for a layer at ``depth``; ``gb``: the bias gradient (summed over
    steps and the batch).  ``s_t`` is recomputed from the taped ``u_t`` (the forward step sets ``s_t =
    [u_t > v_th]`` from that very value at the trial's steps): the same bits as reading a tape of ``s``,
    one stream less written every forward step and read back.  ``spikes_on_tape=True`` still tapes ``s``
    (an unread tape reference) for readers outside the backward pass, e.g. SD-SNN's gradient probe."""
    refs = {"u": VA.READ_ONLY, "g": VA.READ_ONLY, "du": VA.READ_WRITE}
    if spikes_on_tape:
        refs["s"] = VA.READ_ONLY
    return CustomUpdateModel(name="lif_adjoint", params={"decay": decay, "v_th": v_thresh, "lens": lens,
                                                         "t_first": float(depth)},
                             temps=("nxt",), tape_refs=refs, vars={"gb": Var(0.0, access=VA.REDUCE_SUM)},
                             scan="backward", update=_adjoint)


def _recurrent_adjoint(u, p, rows):
    n = u.u.shape[1]
    for r in range(rows - 1, -1, -1):
        for j in range(n):
            d = 0.0
            if r >= p.t_first:
                nxt = 0.0
                rec = 0.0
                if r + 1 < rows:
                    nxt = u.du[r + 1, j]
                    for k in range(n):   # dL/ds_j(t) through the recurrent synapses j -> k at t + 1
                        rec += u.W[j, k] * u.du[r + 1, k]
                sg = 0.0
                if abs(u.u[r, j] - p.v_th) < p.lens:
                    sg = 1.0
                d = (u.g[r, j] + rec - p.decay * u.u[r, j] * nxt) * sg + p.decay * (1.0 - u.s[r, j]) * nxt
            u.du[r, j] = d


def recurrent_adjoint(depth: int, decay: float = 0.2, v_thresh: float = 0.5, lens: float = 0.5) -> CustomUpdateModel:
    """:func:`adjoint` for a layer with recurrent synapses ``W`` [pre, post] (a dense projection onto
    itself): ``dL/ds_j(t)`` also gets ``sum_k W_jk du_k(t + 1)``, so the layer's neurons are coupled from
    step to step (a whole-population update, a matrix-vector product per step)."""
    return CustomUpdateModel(name="lif_recurrent_adjoint", per="population",
                             params={"decay": decay, "v_th": v_thresh, "lens": lens, "t_first": float(depth)},
                             var_refs={"W": VA.READ_ONLY},
                             tape_refs={"u": VA.READ_ONLY, "s": VA.READ_ONLY, "g": VA.READ_ONLY, "du": VA.READ_WRITE},
                             update=_recurrent_adjoint)


def _tape_sum(u):
    u.gb = u.du


def tape_sum() -> CustomUpdateModel:
    """``gb = sum`` over steps and the batch of ``du`` (a bias gradient)."""
    return CustomUpdateModel(name="tape_sum", tape_refs={"du": VA.READ_ONLY},
                             vars={"gb": Var(0.0, access=VA.REDUCE_SUM)}, scan="backward", update=_tape_sum)


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


def _at_arrivals_graded(u):
    u.gw = u.du * u.x


def weight_gradient(graded: bool = False) -> CustomUpdateModel:
    """``dL/dw_ij = sum`` over the spikes of ``i`` of ``du_j`` where they arrive (presynaptic events);
    ``graded``: each event weighted by the value ``x`` it carried (tape ref ``pre.cnt``)."""
    if graded:
        return CustomUpdateModel(name="weight_gradient_graded", tape_refs={"du": VA.READ_ONLY, "x": VA.READ_ONLY},
                                 vars={"gw": Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes",
                                 update=_at_arrivals_graded)
    return CustomUpdateModel(name="weight_gradient", tape_refs={"du": VA.READ_ONLY},
                             vars={"gw": Var(0.0, access=VA.REDUCE_SUM)}, events="pre_spikes", update=_at_arrivals)
