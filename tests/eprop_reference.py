"""A plain-numpy e-prop reference in forward mode (eligibility traces carried per synapse, per step),
written from docs/eprop.md's equations: one recurrent hidden layer of (A)LIF neurons, leaky readout with
bias, per-step softmax, symmetric or random feedback and the rate regulariser.  The engine computes the
same gradients in the other order (backward-filtered signals over the tape, sums over spike arrivals);
agreement checks both the equations and that reordering."""
from __future__ import annotations

import math

import numpy as np


def eprop_forward(x, labels, w_in, w_rec, w_out, b_out, feedback, rate0, c):
    """Summed (not averaged) gradients of a batch and the next rate estimate.

    x [B, T, N] spike counts; w_in [N, H]; w_rec [H, H] (0 where no synapse); w_out [K, H]; b_out [K];
    feedback [H, K] (the readout's transpose for symmetric feedback); rate0 [H] (1/ms).  Returns
    (g_in [N, H], g_rec [H, H], g_out [K, H], g_b [K], rate [H], spikes [B])."""
    B, T, N = x.shape
    H, K = w_in.shape[1], w_out.shape[0]
    alpha, rho, kappa = math.exp(-c.dt / c.tau_mem), math.exp(-c.dt / c.tau_adapt), math.exp(-c.dt / c.tau_out)
    beta = c.beta if c.adaptive else 0.0
    v_th, gain, n_ref = c.v_thresh, 0.3 / c.v_thresh, round(c.tau_refrac / c.dt)
    decay, f_target = math.exp(-c.dt / c.tau_rate), c.f_target / 1000.0
    g_in, g_rec, g_out, g_b = np.zeros((N, H)), np.zeros((H, H)), np.zeros((K, H)), np.zeros(K)
    rate_end, spikes = np.zeros((B, H)), np.zeros(B)
    for b in range(B):
        v, a, z, psi, refrac = (np.zeros(H) for _ in range(5))
        y, zbar, bbar = np.zeros(K), np.zeros(H), 0.0
        f = rate0.astype(float).copy()
        traces = {}
        for name, n_pre in (("in", N), ("rec", H)):
            traces[name] = {"xbar": np.zeros(n_pre), "eps": np.zeros((n_pre, H)), "ebar": np.zeros((n_pre, H))}
        for t in range(T):
            zp, psi_prev = z.copy(), psi.copy()
            a = rho * a + zp
            current = x[b, t] @ w_in + zp @ w_rec
            v = alpha * v * (1.0 - zp) + current if c.reset == "zero" else alpha * v + current - v_th * zp
            thr = v_th + beta * a
            ref = refrac > 0
            psi = np.where(ref, 0.0, gain * np.maximum(0.0, 1.0 - np.abs(v - thr) / v_th))
            z = np.where(~ref & (v >= thr), 1.0, 0.0)
            refrac = np.where(ref, refrac - 1, np.where(z > 0, n_ref, refrac))
            spikes[b] += z.sum()
            y = kappa * y + b_out + w_out @ z
            pi = np.exp(y - y.max())
            pi /= pi.sum()
            err = pi - np.eye(K)[labels[b]]
            learn = feedback @ err
            f = decay * f + (1.0 - decay) * z / c.dt
            reg = c.c_reg * (f - f_target)
            for name, pre_now, g in (("in", x[b, t].astype(float), g_in), ("rec", zp, g_rec)):
                tr = traces[name]
                old = tr["xbar"]
                new = alpha * old + pre_now
                tr["eps"] = psi_prev[None, :] * old[:, None] + (rho - beta * psi_prev[None, :]) * tr["eps"]
                e = psi[None, :] * (new[:, None] - beta * tr["eps"])
                tr["ebar"] = kappa * tr["ebar"] + e
                g += learn[None, :] * tr["ebar"] + reg[None, :] * e
                tr["xbar"] = new
            zbar = kappa * zbar + z
            bbar = kappa * bbar + 1.0
            g_out += np.outer(err, zbar)
            g_b += err * bbar
        rate_end[b] = f
    return g_in, g_rec, g_out, g_b, rate_end.mean(axis=0), spikes
