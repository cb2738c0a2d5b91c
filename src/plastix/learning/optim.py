"""Adam with bias correction on sparse (ragged) and dense parameters, with DEEP R's weight part.

Sparse parameters live in ragged rows (``w``, ``grad``, moments ``m`` / ``v`` [num_pre, row_stride] and
``rowlen``); only a row's first ``rowlen`` slots are touched.  The gradient used is
``scale * grad`` (``scale`` turns the trial's raw sums into a mean) plus the DEEP R terms:

* ``mode = NONE``: plain Adam on ``w``;
* ``mode = DEEP_R``: L1 toward zero, ``g += l1 * sign``, Adam on ``w``, then Bellec's noise
  ``w += sqrt(2 lr T) N(0, 1)`` when the temperature ``T > 0`` (``noise_std``).  Synapses whose weight
  crossed zero are removed afterwards by :func:`plastix.structural.deep_r_prune`;
* ``mode = SOFT_DEEP_R``: the parameter is ``theta`` (``w = sign * max(theta, 0)``): Adam on theta
  with ``dL/dtheta = sign * dL/dw`` for active synapses and the L1 term, noise on every theta, theta
  clipped below at ``theta_min``; no synapse is ever removed.

The noise is counter-based (Philox keyed by seed, optimiser step and synapse slot): it does not depend
on the thread count.  ``grad`` is zeroed after use.
"""
from __future__ import annotations

import math
import types

import numba
import numpy as np
from numba import prange

from ..kernels import rng as rng_mod

NONE, DEEP_R, SOFT_DEEP_R = 0, 1, 2
MODES = {"none": NONE, "deep-r": DEEP_R, "soft-deep-r": SOFT_DEEP_R}

_OPTS = dict(cache=True, error_model="numpy")


def _jit_rng():
    """numba-compiled copies of the Philox functions of :mod:`plastix.kernels.rng` (same source)."""
    glob = dict(vars(rng_mod))
    for name in rng_mod.KERNEL_FUNCTIONS:
        fn = getattr(rng_mod, name)
        glob[name] = numba.njit(inline="always")(types.FunctionType(fn.__code__, glob, name))
    return glob["normal"]


_normal = _jit_rng()


@numba.njit(**_OPTS)
def _adam_delta(g, m, v, lr_t, b1, b2, eps):
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    return m, v, lr_t * m / (math.sqrt(v) + eps)


@numba.njit(parallel=True, **_OPTS)
def adam_sparse(rowlen, w, sign, theta, m, v, grad, scale, lr, b1, b2, eps, step, mode, l1, noise_std,
                theta_min, seed, stream):
    """One Adam step (``step`` >= 1, for bias correction) on every existing synapse of a ragged projection."""
    lr_t = lr * math.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step)
    stride = w.shape[1]
    for i in prange(w.shape[0]):
        for k in range(rowlen[i]):
            g = scale * grad[i, k]
            grad[i, k] = 0.0
            if mode == 2:  # soft DEEP R: the parameter is theta
                th = theta[i, k]
                g = (g * sign[i, k] if th > 0.0 else 0.0) + (l1 if th > 0.0 else 0.0)
                m[i, k], v[i, k], d = _adam_delta(g, m[i, k], v[i, k], lr_t, b1, b2, eps)
                th -= d
                if noise_std > 0.0:
                    th += noise_std * _normal(seed, i * stride + k, step, 0, stream)
                th = max(th, theta_min)
                theta[i, k] = th
                w[i, k] = sign[i, k] * max(th, 0.0)
            else:
                if mode == 1:
                    g += l1 * sign[i, k]
                m[i, k], v[i, k], d = _adam_delta(g, m[i, k], v[i, k], lr_t, b1, b2, eps)
                wk = w[i, k] - d
                if mode == 1 and noise_std > 0.0:
                    wk += noise_std * _normal(seed, i * stride + k, step, 0, stream)
                w[i, k] = wk


@numba.njit(**_OPTS)
def adam_dense(w, m, v, grad, scale, lr, b1, b2, eps, step):
    """One Adam step on a dense parameter array (any shape, flattened); zeroes ``grad``."""
    lr_t = lr * math.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step)
    wf, mf, vf, gf = w.reshape(-1), m.reshape(-1), v.reshape(-1), grad.reshape(-1)
    for k in range(wf.size):
        mf[k], vf[k], d = _adam_delta(scale * gf[k], mf[k], vf[k], lr_t, b1, b2, eps)
        wf[k] -= d
        gf[k] = 0.0


def deep_r_noise_std(lr: float, temperature: float) -> float:
    """Standard deviation of DEEP R's per-step noise, sqrt(2 lr T)."""
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    return math.sqrt(2.0 * lr * temperature)
