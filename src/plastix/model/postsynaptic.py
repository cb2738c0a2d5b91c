"""Built-in postsynaptic models: how ``in_syn`` (the sum of weights of arriving spikes) becomes a current."""
from __future__ import annotations

from .specs import PostsynapticModel, decay


def _delta_apply(s):
    i = s.in_syn
    s.in_syn = 0.0
    return i


def delta() -> PostsynapticModel:
    """Each spike's weight is injected as current for one step."""
    return PostsynapticModel(name="delta", apply=_delta_apply, doc=delta.__doc__)


def _exp_curr_apply(s, p):
    i = s.in_syn
    s.in_syn = s.in_syn * p.decay
    return i


def exp_curr(tau: float = 5.0) -> PostsynapticModel:
    """Exponentially decaying current (time constant ``tau`` ms); a spike adds its weight (nA)."""
    return PostsynapticModel(name="exp_curr", params={"tau": tau}, derived={"decay": decay("tau")},
                             apply=_exp_curr_apply, doc=exp_curr.__doc__)


def _exp_cond_apply(s, p, n):
    i = s.in_syn * (p.e_rev - n.v)
    s.in_syn = s.in_syn * p.decay
    return i


def exp_cond(tau: float = 5.0, e_rev: float = 0.0) -> PostsynapticModel:
    """Exponentially decaying conductance (µS, time constant ``tau`` ms) with reversal potential
    ``e_rev`` (mV); current ``g (e_rev - v)`` with ``v`` the target's membrane potential."""
    return PostsynapticModel(name="exp_cond", params={"tau": tau, "e_rev": e_rev}, derived={"decay": decay("tau")},
                             apply=_exp_cond_apply, doc=exp_cond.__doc__)
