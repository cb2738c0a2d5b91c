"""Plain-numpy implementation of the bench network, for ``--reference numpy``.

Arithmetic mirrors the compiled kernels operation by operation in float32 (derived constants computed
in float64 then cast; spikes delivered in ascending presynaptic order, ``np.add.at`` being sequential),
so spike trains must match exactly.  With ``noise`` the Gaussian current noise is drawn from the same
counter-based streams the kernels use (:func:`plastix.kernels.rng.normal` keyed by the run's seed, the
neuron, the step, draw 0 and the population's ``sim`` stream); the kernels then carry the membrane update
in float64 (float32 state times a float64 draw), compare it with the threshold and store it as float32,
and so does this reference."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..kernels import rng as philox
from .lif_network import PARAMS


class Noise(NamedTuple):
    """The noise's counter-based stream: ``seed`` (of a batch element: ``host_batch_seed(seed, b)``) and
    ``stream`` (:func:`plastix.bench.lif_network.noise_stream`)."""
    seed: int
    stream: int


def simulate(values: dict, neurons: int, steps: int, on_spikes=None,
             noise: Noise | None = None) -> tuple[int, np.ndarray]:
    """Returns (total spikes, spikes per step); ``on_spikes(step, indices)`` sees every step's spikes.
    ``noise`` None: the deterministic network (no current noise)."""
    f = np.float32
    dt = PARAMS["dt_ms"]
    tau, c = PARAMS["tau_m_ms"], PARAMS["c_nf"]
    alpha = f(math.exp(-dt / tau))
    gain = f((1.0 - math.exp(-dt / tau)) * tau / c)
    v_rest, v_reset, v_th = f(PARAMS["v_rest_mv"]), f(PARAMS["v_reset_mv"]), f(PARAMS["v_thresh_mv"])
    t_ref, dt32 = f(PARAMS["tau_refrac_ms"]), f(dt)
    noise_sd = f(PARAMS["noise_sd_na"])
    i_off = values["i_offset"].astype(f)
    pre, post, w = values["pre"], values["post"].astype(np.int64), values["w"].astype(f)
    starts = np.searchsorted(pre, np.arange(neurons + 1))
    elements = np.arange(neurons, dtype=np.uint64)
    v = np.full(neurons, v_rest, f)
    refrac = np.zeros(neurons, f)
    in_syn = np.zeros(neurons, f)
    spiking = np.zeros(0, np.int64)
    counts = np.zeros(steps, np.int64)
    for s in range(steps):
        if spiking.size:
            sel = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in spiking])
            np.add.at(in_syn, post[sel], w[sel])
        i_syn = in_syn.copy()
        in_syn[:] = 0
        active = refrac <= f(0)
        refrac = np.where(active, refrac, refrac - dt32)
        if noise is None:
            v = np.where(active, v_rest + alpha * (v - v_rest) + gain * (i_syn + i_off), v)
            spk = (refrac <= f(0)) & (v >= v_th)
        else:
            z = philox.normal(np.uint64(noise.seed), elements, np.uint64(s), np.uint64(0), np.uint64(noise.stream))
            v64 = np.where(active, v_rest + alpha * (v - v_rest) + gain * (i_syn + i_off + noise_sd * z), v)
            spk = (refrac <= f(0)) & (v64 >= v_th)
            v = v64.astype(f)
        v[spk] = v_reset
        refrac[spk] = t_ref
        spiking = np.flatnonzero(spk)
        counts[s] = spiking.size
        if on_spikes is not None:
            on_spikes(s, spiking)
    return int(counts.sum()), counts
