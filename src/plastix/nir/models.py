"""Neuron models that run NIR neuron nodes in plastix, one step of ``dt`` per plastix step.

Every parameter is a per-neuron variable (NIR nodes are heterogeneous), set by the loader from the node:
``alpha`` / ``gain`` are the decay and input gain of one step (:func:`plastix.nir.units.discrete`),
``bias`` the constant current of the node's Affine inputs, switched on at ``t_on`` (ms) -- the plastix
step at which this node's NIR time 0 falls (see docs/nir.md, "Timing").  ``I`` below is the summed
input of the step (``i_syn``, plus ``bias`` from ``t_on`` on).

* :func:`lif` (NIR ``LIF``): ``v <- v_leak + alpha (v - v_leak) + gain I``; spike when ``v > v_thresh``;
  then ``v = v_reset`` at once (NIR's reset).
* :func:`lif` with ``reset="subtract_next"`` (e-prop's neuron, from plastix metadata): the spike's
  ``v_thresh - v_reset`` is subtracted in the *next* step, undecayed; spike when ``v >= v_thresh``; a
  refractory period of ``refrac_steps`` steps blocks spikes but not integration.
* :func:`lif` with ``reset="zero_ge"`` (e-prop's neuron with ``EPropConfig(reset="zero")``, from plastix
  metadata): NIR's reset to ``v_reset`` at once, but spike when ``v >= v_thresh`` and a refractory period
  of ``refrac_steps`` steps that blocks spikes but not integration.
* ``synaptic=True`` (NIR ``CubaLIF`` / ``CubaLI``): the input first drives a current
  ``i <- alpha_syn i + gain_syn I`` and the membrane integrates ``i`` instead of ``I``.
* :func:`li` (NIR ``LI``): the membrane equation without threshold.
"""
from __future__ import annotations

from ..model.specs import NeuronModel, Var

RESETS = ("zero", "subtract_next", "zero_ge")

_COMMON = {
    "v": Var(0.0, doc="membrane potential"),
    "alpha": Var(0.0, doc="membrane decay per step"),
    "gain": Var(0.0, doc="input gain per step"),
    "v_leak": Var(0.0, doc="leak (rest) potential"),
    "bias": Var(0.0, doc="constant input current"),
    "t_on": Var(0.0, doc="time (ms) from which the bias acts"),
}
_SYNAPTIC = {
    "i": Var(0.0, doc="synaptic current"),
    "alpha_syn": Var(0.0, doc="synaptic decay per step"),
    "gain_syn": Var(0.0, doc="synaptic input gain per step"),
}
_SPIKING = {"v_thresh": Var(0.0, doc="threshold"), "v_reset": Var(0.0, doc="reset potential")}
_SUBTRACT = {"z": Var(0.0, doc="1 in the step after a spike"),
             "refrac": Var(0.0, doc="refractory steps left"),
             "hold": Var(0.0, doc="1 while refractory in this step")}


def _li_sim(n, i_syn, t, dt):
    cur = i_syn
    if t >= n.t_on - 0.5 * dt:
        cur = cur + n.bias
    n.v = n.v_leak + n.alpha * (n.v - n.v_leak) + n.gain * cur


def _cuba_li_sim(n, i_syn, t, dt):
    cur = i_syn
    if t >= n.t_on - 0.5 * dt:
        cur = cur + n.bias
    n.i = n.alpha_syn * n.i + n.gain_syn * cur
    n.v = n.v_leak + n.alpha * (n.v - n.v_leak) + n.gain * n.i


def _gt_threshold(n):
    return n.v > n.v_thresh


def _zero_reset(n):
    n.v = n.v_reset


def _subtract_sim(n, i_syn, t, dt):
    cur = i_syn
    if t >= n.t_on - 0.5 * dt:
        cur = cur + n.bias
    n.v = n.v_leak + n.alpha * (n.v - n.v_leak) + n.gain * cur - (n.v_thresh - n.v_reset) * n.z
    n.z = 0.0
    if n.refrac > 0.0:
        n.refrac = n.refrac - 1.0
        n.hold = 1.0
    else:
        n.hold = 0.0


def _cuba_subtract_sim(n, i_syn, t, dt):
    cur = i_syn
    if t >= n.t_on - 0.5 * dt:
        cur = cur + n.bias
    n.i = n.alpha_syn * n.i + n.gain_syn * cur
    n.v = n.v_leak + n.alpha * (n.v - n.v_leak) + n.gain * n.i - (n.v_thresh - n.v_reset) * n.z
    n.z = 0.0
    if n.refrac > 0.0:
        n.refrac = n.refrac - 1.0
        n.hold = 1.0
    else:
        n.hold = 0.0


def _ge_threshold(n):
    return n.hold == 0.0 and n.v >= n.v_thresh


def _subtract_reset(n, p):
    n.z = 1.0
    n.refrac = p.refrac_steps


def _zero_refrac_reset(n, p):
    n.v = n.v_reset
    n.refrac = p.refrac_steps


def lif(reset: str = "zero", *, synaptic: bool = False, refrac_steps: int = 0) -> NeuronModel:
    """Spiking NIR neuron (``LIF``, or ``CubaLIF`` with ``synaptic=True``); see the module docstring."""
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    if reset == "zero" and refrac_steps:
        raise ValueError("refrac_steps needs reset='subtract_next' or 'zero_ge' (NIR neurons have no refractory "
                         "period)")
    vars_ = {**_COMMON, **(_SYNAPTIC if synaptic else {}), **_SPIKING}
    kind = "cuba_lif" if synaptic else "lif"
    if reset == "zero":
        return NeuronModel(name=f"nir_{kind}", vars=vars_, sim=_cuba_li_sim if synaptic else _li_sim,
                           threshold=_gt_threshold, reset=_zero_reset, doc=lif.__doc__)
    # both e-prop resets share the step of the subtracting model: with reset "zero_ge", z stays 0
    after_spike = _subtract_reset if reset == "subtract_next" else _zero_refrac_reset
    return NeuronModel(name=f"nir_{kind}_{reset}", params={"refrac_steps": float(refrac_steps)},
                       vars={**vars_, **_SUBTRACT}, sim=_cuba_subtract_sim if synaptic else _subtract_sim,
                       threshold=_ge_threshold, reset=after_spike, doc=lif.__doc__)


def li(*, synaptic: bool = False) -> NeuronModel:
    """Non-spiking NIR leaky integrator (``LI``, or ``CubaLI`` with ``synaptic=True``)."""
    vars_ = {**_COMMON, **(_SYNAPTIC if synaptic else {})}
    return NeuronModel(name="nir_cuba_li" if synaptic else "nir_li", vars=vars_,
                       sim=_cuba_li_sim if synaptic else _li_sim, doc=li.__doc__)
