"""Optimisers as small composable pieces (optax's shape), compiled as one custom update.

Each piece is a per-element stage function acting on a running update ``u.upd`` (a temporary, 0 at the
start of every element) plus the state it owns; :func:`chain` joins pieces, in order, into one
:class:`~plastix.CustomUpdateModel` that the engine compiles for the CPU and CUDA, and
:func:`attach` puts it on a projection (or population) with its variable references.  Moments and other
per-synapse optimiser state are the update's own variables: they move with their synapse when the
projection rewires.

Adam with DEEP R, as plastix's e-prop trainer applies it::

    model = chain(gradient(scale=1 / batch), add_l1(0.01, fixed_sign=True), scale_by_adam(),
                  scale_by_learning_rate(1e-3), add_noise(std), apply_updates())
    opt = attach(net, "adam_ih", "ih", model, var_refs={"grad": "grad", "w": "w", "sign": "sign"})
    ...
    opt.step(sim)   # one optimiser step over every synapse of "ih"

Pieces and the variable references they need (bind them in :func:`attach`):

* :func:`gradient` -- ``upd = scale * grad`` (``grad``; zeroed after use unless ``zero=False``);
* :func:`add_l1` -- ``upd += l1 * sign(w)`` (``w``), or ``l1 * sign`` with DEEP R's fixed ``sign``;
* :func:`scale_by_adam` -- Adam's moments ``m``, ``v`` (own vars) and
  ``upd = sqrt(1 - b2^k) / (1 - b1^k) * m / (sqrt(v) + eps)`` at step ``k`` (the global var ``count``,
  set by :meth:`Optimizer.step`) -- Kingma & Ba's efficient form, epsilon added before the bias
  correction;
* :func:`scale_by_learning_rate` -- ``upd = -lr * upd`` (descent; ``lr`` is a param: change it with
  ``Simulation.set_param`` without recompiling);
* :func:`add_noise` -- ``upd += std * N(0, 1)``, counter-based (Langevin dynamics, DEEP R's
  ``sqrt(2 lr T)``);
* :func:`apply_updates` -- ``w += upd`` (``w``);
* :func:`theta_gradient` -- soft DEEP R's gradient for theta: ``upd = sign * upd + l1`` where
  ``theta > 0``, else 0 (``sign``, ``theta``);
* :func:`soft_deep_r` -- soft DEEP R: ``upd`` is applied to ``theta`` (``theta``, ``sign``), clipped
  below at ``theta_min``, and ``w = sign * max(theta, 0)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import PlastixError
from ..model.specs import CustomUpdateModel, Var, VarAccess

VA = VarAccess


class OptimizerError(PlastixError, ValueError):
    """An optimiser chain that cannot be built."""


@dataclass(frozen=True)
class Piece:
    """One stage of an optimiser: its function, params, own vars, variable references and globals."""

    name: str
    stage: Callable
    params: dict = field(default_factory=dict)
    vars: dict = field(default_factory=dict)
    var_refs: dict = field(default_factory=dict)
    global_vars: dict = field(default_factory=dict)


# -- stage functions (per element; u.upd is the running update) ---------------------------------------
def _gradient_zero(u, p):
    u.upd = p.grad_scale * u.grad
    u.grad = 0.0


def _gradient_keep(u, p):
    u.upd = p.grad_scale * u.grad


def _l1_fixed_sign(u, p):
    u.upd = u.upd + p.l1 * u.sign


def _l1_weight_sign(u, p):
    if u.w > 0.0:
        u.upd = u.upd + p.l1
    elif u.w < 0.0:
        u.upd = u.upd - p.l1


def _adam(u, p):
    u.m = p.adam_b1 * u.m + (1.0 - p.adam_b1) * u.upd
    u.v = p.adam_b2 * u.v + (1.0 - p.adam_b2) * u.upd * u.upd
    corr = sqrt(1.0 - p.adam_b2 ** u.count) / (1.0 - p.adam_b1 ** u.count)  # noqa: F821 - engine math
    u.upd = corr * u.m / (sqrt(u.v) + p.adam_eps)  # noqa: F821


def _scale_lr(u, p):
    u.upd = -p.lr * u.upd


def _noise(u, p, rng):
    u.upd = u.upd + p.noise_std * rng.normal()


def _apply(u):
    u.w = u.w + u.upd


def _theta_gradient(u, p):
    if u.theta > 0.0:
        u.upd = u.upd * u.sign + p.l1
    else:
        u.upd = 0.0


def _soft_deep_r(u, p):
    th = max(u.theta + u.upd, p.theta_min)
    u.theta = th
    u.w = u.sign * max(th, 0.0)


# -- pieces ---------------------------------------------------------------------------------------------
def gradient(scale: float = 1.0, zero: bool = True) -> Piece:
    """Start from ``scale * grad`` (e.g. ``1 / batch`` turns a summed gradient into a mean); ``zero``
    clears ``grad`` for the next accumulation."""
    return Piece("gradient", _gradient_zero if zero else _gradient_keep, {"grad_scale": scale},
                 var_refs={"grad": VA.READ_WRITE if zero else VA.READ_ONLY})


def add_l1(strength: float, fixed_sign: bool = False) -> Piece:
    """L1 toward zero: ``upd += strength * sign(w)``; with ``fixed_sign`` the synapse's fixed sign
    variable ``sign`` (DEEP R) instead of the weight's."""
    if not strength >= 0:
        raise OptimizerError(f"add_l1: strength must be >= 0, got {strength}")
    if fixed_sign:
        return Piece("l1", _l1_fixed_sign, {"l1": strength}, var_refs={"sign": VA.READ_ONLY})
    return Piece("l1", _l1_weight_sign, {"l1": strength}, var_refs={"w": VA.READ_ONLY})


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Piece:
    """Adam's moment estimates and bias-corrected scaling (own vars ``m``, ``v``; global ``count``)."""
    for name, v in (("b1", b1), ("b2", b2)):
        if not 0.0 <= v < 1.0:
            raise OptimizerError(f"scale_by_adam: {name} must be in [0, 1), got {v}")
    if not eps > 0:
        raise OptimizerError(f"scale_by_adam: eps must be > 0, got {eps}")
    return Piece("adam", _adam, {"adam_b1": b1, "adam_b2": b2, "adam_eps": eps}, vars={"m": 0.0, "v": 0.0},
                 global_vars={"count": Var(0.0)})


def scale_by_learning_rate(lr: float) -> Piece:
    """Descent step: ``upd = -lr * upd``."""
    if not (lr > 0 and math.isfinite(lr)):
        raise OptimizerError(f"scale_by_learning_rate: lr must be a positive number, got {lr}")
    return Piece("lr", _scale_lr, {"lr": lr})


def add_noise(std: float) -> Piece:
    """Gaussian noise of standard deviation ``std`` added to the update (counter-based: keyed by seed,
    step and element)."""
    if not std >= 0:
        raise OptimizerError(f"add_noise: std must be >= 0, got {std}")
    return Piece("noise", _noise, {"noise_std": std})


def apply_updates() -> Piece:
    """``w += upd``."""
    return Piece("apply", _apply, var_refs={"w": VA.READ_WRITE})


def theta_gradient(l1: float = 0.0) -> Piece:
    """Soft DEEP R's gradient for ``theta``: ``upd = sign * upd + l1`` where ``theta > 0`` (``w = sign
    theta`` there), 0 for dormant synapses (``sign``, ``theta``)."""
    if not l1 >= 0:
        raise OptimizerError(f"theta_gradient: l1 must be >= 0, got {l1}")
    return Piece("theta_gradient", _theta_gradient, {"l1": l1},
                 var_refs={"sign": VA.READ_ONLY, "theta": VA.READ_ONLY})


def soft_deep_r(theta_min: float = -1.0) -> Piece:
    """Soft DEEP R's parameter: ``theta = max(theta + upd, theta_min)``, ``w = sign * max(theta, 0)``."""
    return Piece("soft_deep_r", _soft_deep_r, {"theta_min": theta_min},
                 var_refs={"theta": VA.READ_WRITE, "sign": VA.READ_ONLY, "w": VA.READ_WRITE})


def chain(*pieces: Piece, name: str = "optimizer") -> CustomUpdateModel:
    """One custom update model running ``pieces`` in order on every element."""
    if not pieces or not all(isinstance(p, Piece) for p in pieces):
        raise OptimizerError("chain needs one or more optimiser pieces (plastix.learning.optimizers)")
    params, vars_, refs, globs = {}, {}, {}, {}
    for piece in pieces:
        for what, have, new in (("param", params, piece.params), ("var", vars_, piece.vars),
                                ("global var", globs, piece.global_vars)):
            clash = set(have) & set(new)
            if clash:
                raise OptimizerError(f"chain: pieces share {what}s {sorted(clash)}; use each piece once")
            have.update(new)
        for ref, access in piece.var_refs.items():
            # the strongest access any piece needs
            refs[ref] = VA.READ_WRITE if VA.READ_WRITE in (access, refs.get(ref)) else access
    return CustomUpdateModel(name=name, params=params, vars=vars_, var_refs=refs, global_vars=globs,
                             temps=("upd",), update=tuple(p.stage for p in pieces),
                             doc=" -> ".join(p.name for p in pieces))


class Optimizer:
    """An optimiser chain attached to a network: :meth:`step` runs one step over every element."""

    def __init__(self, name: str, group: str, model: CustomUpdateModel):
        self.name, self.group, self.model = name, group, model

    def step(self, sim) -> dict:
        """One optimiser step: advance the step count (Adam's bias correction; kept in the simulation's
        state, so checkpoints carry it) and run the update over every element."""
        if "count" in self.model.global_vars:
            sim.set(self.name, "count", float(sim.get(self.name, "count")) + 1.0)
        return sim.custom_update(self.group)


def attach(net, name: str, target: str, model: CustomUpdateModel, *, var_refs: dict | None = None,
           group: str | None = None) -> Optimizer:
    """Attach optimiser ``model`` (from :func:`chain`) to ``target`` of ``net`` as custom update ``name``;
    ``var_refs`` binds the pieces' references (``grad``, ``w``, ``sign``, ``theta``) to variables."""
    upd = net.add_custom_update(name, target, model, var_refs=var_refs, group=group)
    return Optimizer(name, upd.group, model)
