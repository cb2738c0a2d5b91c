"""Built-in neuron models (equations in docs/semantics.md).  Copy one to start a model of your own."""
from __future__ import annotations

import math

from .specs import NeuronModel, Var, decay


def _lif_derived():
    return {
        "alpha": decay("tau_m"),
        # (1 - alpha) R, the step response to a constant current (exact integration); MOhm
        "gain": lambda p, dt: (1.0 - math.exp(-dt / p["tau_m"])) * p["tau_m"] / p["C"],
    }


def _lif_sim(n, p, i_syn, dt):
    if n.refrac > 0.0:
        n.refrac -= dt
    else:
        n.v = p.v_rest + p.alpha * (n.v - p.v_rest) + p.gain * (i_syn + n.i_offset)


def _lif_threshold(n, p):
    return n.refrac <= 0.0 and n.v >= p.v_thresh


def _lif_reset_to(n, p):
    n.v = p.v_reset
    n.refrac = p.tau_refrac


def _lif_reset_subtract(n, p):
    n.v -= p.v_thresh - p.v_reset
    n.refrac = p.tau_refrac


_LIF_VARS = {
    "v": Var(-70.0, doc="membrane potential (mV)"),
    "refrac": Var(0.0, doc="remaining refractory time (ms)"),
    "i_offset": Var(0.0, doc="constant input current (nA)"),
}


def lif(reset: str = "to_reset", **params: float) -> NeuronModel:
    """Current-based leaky integrate-and-fire neuron with a refractory period.

    Params: ``C`` (nF), ``tau_m`` (ms), ``v_rest``, ``v_reset``, ``v_thresh`` (mV), ``tau_refrac`` (ms).
    ``reset``: "to_reset" (v = v_reset) or "subtract" (v -= v_thresh - v_reset).
    """
    if reset not in ("to_reset", "subtract"):
        raise ValueError(f"reset must be 'to_reset' or 'subtract', got {reset!r}")
    m = NeuronModel(
        name=f"lif_{reset}",
        params={"C": 1.0, "tau_m": 20.0, "v_rest": -70.0, "v_reset": -70.0, "v_thresh": -50.0, "tau_refrac": 2.0},
        vars=_LIF_VARS,
        derived=_lif_derived(),
        sim=_lif_sim,
        threshold=_lif_threshold,
        reset=_lif_reset_to if reset == "to_reset" else _lif_reset_subtract,
        doc=lif.__doc__,
    )
    return m.with_params(**params) if params else m


def conductance_lif(**params: float) -> NeuronModel:
    """LIF with Bamford et al. (2010) defaults, meant to be driven by :func:`postsynaptic.exp_cond`
    (C 20 nF, tau_m 20 ms, v_rest = v_reset = -70 mV, v_thresh -54 mV, tau_refrac 5 ms)."""
    m = NeuronModel(
        name="conductance_lif",
        params={"C": 20.0, "tau_m": 20.0, "v_rest": -70.0, "v_reset": -70.0, "v_thresh": -54.0, "tau_refrac": 5.0},
        vars=_LIF_VARS,
        derived=_lif_derived(),
        sim=_lif_sim,
        threshold=_lif_threshold,
        reset=_lif_reset_to,
        doc=conductance_lif.__doc__,
    )
    return m.with_params(**params) if params else m


def _alif_sim(n, p, i_syn, dt):
    n.v = p.alpha * n.v + i_syn
    n.a = p.rho * n.a
    if n.refrac > 0.0:
        n.refrac -= dt


def _alif_threshold(n, p):
    return n.refrac <= 0.0 and n.v >= p.v_thresh + p.beta * n.a


def _alif_reset(n, p):
    n.v -= p.v_thresh
    n.a += 1.0
    n.refrac = p.tau_refrac


def alif(**params: float) -> NeuronModel:
    """Adaptive LIF (e-prop style, dimensionless voltage): threshold ``v_thresh + beta a``,
    subtractive reset.  Params ``tau_m``, ``tau_adapt``, ``tau_refrac`` (ms), ``v_thresh``, ``beta``."""
    m = NeuronModel(
        name="alif",
        params={"tau_m": 20.0, "tau_adapt": 2000.0, "v_thresh": 0.6, "beta": 0.0174, "tau_refrac": 5.0},
        vars={"v": 0.0, "a": 0.0, "refrac": 0.0},
        derived={"alpha": decay("tau_m"), "rho": decay("tau_adapt")},
        sim=_alif_sim,
        threshold=_alif_threshold,
        reset=_alif_reset,
        doc=alif.__doc__,
    )
    return m.with_params(**params) if params else m


def _poisson_threshold(n, dt, rng):
    return rng.uniform() < n.rate * dt * 0.001


def poisson() -> NeuronModel:
    """Poisson spike source; var ``rate`` (Hz) may be changed at any time with ``Simulation.set``."""
    return NeuronModel(name="poisson", vars={"rate": Var(0.0, doc="firing rate (Hz)")},
                       threshold=_poisson_threshold, doc=poisson.__doc__)


def _ssa_threshold(n, g, t, dt):
    return n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt


def _ssa_reset(n, g, t, dt):
    # several times inside one step make one spike: skip all of them
    while n.start_spike < n.end_spike and g.spike_times[n.start_spike] < t + 0.5 * dt:
        n.start_spike += 1


def spike_source_array() -> NeuronModel:
    """Emits given spike times (ms).  Set them with ``Simulation.set_spike_times(pop, times_per_neuron)``."""
    return NeuronModel(
        name="spike_source_array",
        vars={"start_spike": Var(0, "int32"), "end_spike": Var(0, "int32")},
        egps=("spike_times",),
        threshold=_ssa_threshold,
        reset=_ssa_reset,
        doc=spike_source_array.__doc__,
    )


def _li_sim(n, p, i_syn):
    n.v = p.alpha * n.v + i_syn + n.bias


def leaky_integrator(**params: float) -> NeuronModel:
    """Non-spiking leaky integrator (readout): ``v = alpha v + i_syn + bias``; param ``tau_m`` (ms)."""
    m = NeuronModel(name="leaky_integrator", params={"tau_m": 20.0}, vars={"v": 0.0, "bias": 0.0},
                    derived={"alpha": decay("tau_m")}, sim=_li_sim, doc=leaky_integrator.__doc__)
    return m.with_params(**params) if params else m
