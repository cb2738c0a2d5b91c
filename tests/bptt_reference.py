"""Independent BPTT for e-prop networks, in numpy: the whole hidden population as one vector (layer after
layer), an input matrix and one hidden-to-hidden matrix (recurrent and layer-to-layer blocks, all reading
z(t - 1)), the same pseudo-derivative and the reset (``config.reset``: subtract v_th in the next step, or
back to zero) treated as non-differentiable: the whole reset term is a constant in the backward pass.

With ``cut=True`` the backward path from a hidden neuron to the neurons it projects to is dropped: that is
exactly e-prop's gradient (each neuron's own state is followed through time; its learning signal is its
direct effect on the readout).  Without recurrence or further layers the cut changes nothing: e-prop then
equals BPTT.
"""
import math

import numpy as np

from plastix.learning.eprop import EPropConfig


def bptt(x, labels, w_in, w_hh, w_out, b_out, c: EPropConfig, feedback=None, cut=True):
    """Gradients of the loss (per-step cross-entropy summed over steps, mean over the batch).
    x [B, T, N]; w_in [N, H]; w_hh [H, H] (pre, post); w_out [K, H]; ``feedback`` [H, K] replaces w_out.T on
    the path back from the output error.  ``cut``: no backward path from a neuron to the neurons it feeds."""
    back = w_out if feedback is None else feedback.T
    B, T, N = x.shape
    K, H = w_out.shape
    alpha, rho, kappa = (math.exp(-c.dt / tau) for tau in (c.tau_mem, c.tau_adapt, c.tau_out))
    beta = c.beta if c.neuron == "alif" else 0.0
    n_ref = int(round(c.tau_refrac / c.dt))
    v, a, z, y = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, K))
    refrac = np.zeros((B, H), int)
    Z, PSI, GY = np.zeros((T + 1, B, H)), np.zeros((T, B, H)), np.zeros((T, B, K))
    onehot = np.eye(K)[labels]
    for t in range(T):
        a = rho * a + z if beta > 0 else a
        # the reset (subtracting v_th, or with reset="zero" dropping alpha v(t-1) after a spike) is a
        # constant in the backward pass: dv(t)/dv(t-1) = alpha either way
        reset = c.v_thresh * z if c.reset == "subtract" else alpha * v * z
        v = alpha * v + x[:, t, :] @ w_in + z @ w_hh - reset
        thr = c.v_thresh + beta * a
        ref = refrac > 0
        refrac = np.where(ref, refrac - 1, refrac)
        psi = np.where(ref, 0.0, 0.3 / c.v_thresh * np.maximum(0.0, 1.0 - np.abs(v - thr) / c.v_thresh))
        z = np.where(~ref & (v >= thr), 1.0, 0.0)
        refrac = np.where(z > 0, n_ref, refrac)
        y = kappa * y + z @ w_out.T + b_out
        p = np.exp(y - y.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        Z[t + 1], PSI[t], GY[t] = z, psi, (p - onehot) / B   # Z[t + 1] = z(t); Z[0] = z(-1) = 0
    g_in, g_hh = np.zeros_like(w_in), np.zeros_like(w_hh)
    g_out, g_b = np.zeros_like(w_out), np.zeros_like(b_out)
    gy_next, gv_next, ga_next = np.zeros((B, K)), np.zeros((B, H)), np.zeros((B, H))
    for t in reversed(range(T)):
        gy = GY[t] + kappa * gy_next
        gz = gy @ back + (ga_next if beta > 0 else 0)   # z(t) feeds y(t) and a(t + 1); its reset is stopped
        if not cut:
            gz = gz + gv_next @ w_hh.T                     # ... and v(t + 1) of the neurons it projects to
        gv = PSI[t] * gz + alpha * gv_next
        ga = -beta * PSI[t] * gz + rho * ga_next
        g_in += x[:, t, :].T @ gv
        g_hh += Z[t].T @ gv                                # v(t) reads z(t - 1)
        g_out += gy.T @ Z[t + 1]
        g_b += gy.sum(axis=0)
        gy_next, gv_next, ga_next = gy, gv, ga
    return g_in, g_hh, g_out, g_b, Z.sum()
