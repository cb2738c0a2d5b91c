"""The ``plastix bench sim`` network: recurrent current-based LIF, fixed-number connectivity, constant
heterogeneous drive (~3 % of neurons firing per 1 ms step at 10k x 1k) plus optional Gaussian current
noise drawn from the counter-based RNG.  Parameters mirror ``benchmarks/peers/network.json`` so peer
simulators run the same model (a test keeps the two in step)."""
from __future__ import annotations

import numpy as np

from ..errors import NetworkError
from ..kernels.rng import stream_id
from ..model import connectivity as connect
from ..model.network import Network
from ..model.specs import NeuronModel
from ..model.neurons import lif

PARAMS = {
    "dt_ms": 1.0,
    "tau_m_ms": 20.0,
    "c_nf": 1.0,
    "v_rest_mv": 0.0,
    "v_reset_mv": 0.0,
    "v_thresh_mv": 20.0,
    "tau_refrac_ms": 2.0,
    "i_offset_low_na": 1.0,
    "i_offset_high_na": 2.0,
    "excitatory_fraction": 0.8,
    "w_exc_na": 0.02,
    "w_inh_na": -0.1,
    "noise_sd_na": 0.2,
    "delay_steps": 0,
}


def _noisy_sim(n, p, i_syn, dt, rng):
    if n.refrac > 0.0:
        n.refrac -= dt
    else:
        n.v = p.v_rest + p.alpha * (n.v - p.v_rest) + p.gain * (i_syn + n.i_offset + p.noise_sd * rng.normal())


def neuron_model(deterministic: bool) -> NeuronModel:
    base = lif(C=PARAMS["c_nf"], tau_m=PARAMS["tau_m_ms"], v_rest=PARAMS["v_rest_mv"], v_reset=PARAMS["v_reset_mv"],
               v_thresh=PARAMS["v_thresh_mv"], tau_refrac=PARAMS["tau_refrac_ms"])
    if deterministic:
        return base
    return NeuronModel(name="lif_noisy", params=dict(base.params, noise_sd=PARAMS["noise_sd_na"]), vars=base.vars,
                       derived=base.derived, sim=_noisy_sim, threshold=base.threshold, reset=base.reset)


def initial_values(neurons: int, row_length: int, seed: int):
    """(i_offset per neuron, targets [N, K], weights [N, K]) — drawn here so that the numpy reference and
    plastix get the very same network."""
    rng = np.random.default_rng(seed)
    i_offset = rng.uniform(PARAMS["i_offset_low_na"], PARAMS["i_offset_high_na"], neurons)
    pre, post = connect.FixedNumberPost(row_length).build(neurons, neurons, rng)
    n_exc = int(round(PARAMS["excitatory_fraction"] * neurons))
    w = np.where(pre < n_exc, PARAMS["w_exc_na"], PARAMS["w_inh_na"])
    return i_offset, pre, post, w


def build(neurons: int, row_length: int, seed: int = 1, deterministic: bool = False) -> tuple[Network, dict]:
    if neurons < 1 or not 1 <= row_length <= neurons:
        raise NetworkError(f"need neurons >= 1 and 1 <= row_length <= neurons, got {neurons} and {row_length}")
    i_offset, pre, post, w = initial_values(neurons, row_length, seed)
    net = Network(dt=PARAMS["dt_ms"], seed=seed)
    pop = net.add_population("lif", neurons, neuron_model(deterministic),
                             init={"v": PARAMS["v_rest_mv"], "i_offset": i_offset})
    net.add_projection("recurrent", pop, pop, connectivity=connect.FromArrays(pre, post), init={"w": w},
                       delay=PARAMS["delay_steps"], row_stride=row_length)
    return net, {"i_offset": i_offset, "pre": pre, "post": post, "w": w}


def noise_stream(net: Network) -> int:
    """The counter-based stream the noise of :func:`build`'s population draws from (its ``sim`` phase's)."""
    from ..codegen.names import NAMES

    return stream_id(NAMES.pop(net.populations["lif"]).prefix, "sim")
