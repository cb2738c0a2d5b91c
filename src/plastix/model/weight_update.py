"""Built-in weight-update models."""
from __future__ import annotations

from .specs import WeightUpdateModel, decay


def _static_on_pre(s):
    add_to_post(s.w)  # noqa: F821  (provided by code generation)


def static() -> WeightUpdateModel:
    """Fixed weights: every presynaptic spike adds ``w`` to its targets' input."""
    return WeightUpdateModel(name="static", vars={"w": 0.0}, on_pre=_static_on_pre, doc=static.__doc__)


def _stdp_on_pre(s, p, post):
    add_to_post(s.w)  # noqa: F821
    s.w = min(max(s.w - p.a_minus * post.y, p.w_min), p.w_max)


def _stdp_on_post(s, p, pre):
    s.w = min(max(s.w + p.a_plus * pre.x, p.w_min), p.w_max)


def _stdp_pre_dynamics(pre, p):
    pre.x = pre.x * p.decay_plus


def _stdp_pre_spike(pre):
    pre.x += 1.0


def _stdp_post_dynamics(post, p):
    post.y = post.y * p.decay_minus


def _stdp_post_spike(post):
    post.y += 1.0


def stdp_additive(tau_plus: float = 20.0, tau_minus: float = 20.0, a_plus: float = 0.01,
                  a_minus: float = 0.012, w_min: float = 0.0, w_max: float = 1.0) -> WeightUpdateModel:
    """Additive STDP with all-to-all spike pairing through exponential traces and hard weight bounds.

    A postsynaptic spike adds ``a_plus * x`` (x: presynaptic trace, time constant ``tau_plus`` ms); a
    presynaptic spike subtracts ``a_minus * y`` (y: postsynaptic trace, ``tau_minus`` ms); ``w`` stays in
    ``[w_min, w_max]``.
    """
    if w_min > w_max:
        raise ValueError(f"w_min ({w_min}) must be <= w_max ({w_max})")
    return WeightUpdateModel(
        name="stdp_additive",
        params={"tau_plus": tau_plus, "tau_minus": tau_minus, "a_plus": a_plus, "a_minus": a_minus,
                "w_min": w_min, "w_max": w_max},
        derived={"decay_plus": decay("tau_plus"), "decay_minus": decay("tau_minus")},
        vars={"w": 0.0}, pre_vars={"x": 0.0}, post_vars={"y": 0.0},
        on_pre=_stdp_on_pre, on_post=_stdp_on_post,
        pre_dynamics=_stdp_pre_dynamics, pre_spike=_stdp_pre_spike,
        post_dynamics=_stdp_post_dynamics, post_spike=_stdp_post_spike,
        doc=stdp_additive.__doc__,
    )
