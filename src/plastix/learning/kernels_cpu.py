"""CPU (Numba) kernels of e-prop: one mini-batch trial, the whole time loop in compiled code.

Layouts (all float arrays share the network's float type):

* neuron state ``[batch, neurons]``; readout state ``[batch, classes]``;
* sparse projections as ragged rows: ``ind`` / ``w`` / ``grad`` ``[num_pre, row_stride]`` with
  ``rowlen[num_pre]``; per-synapse, per-batch traces ``eps`` / ``ebar`` ``[num_pre, batch, row_stride]`` so
  that one row's traces for one batch element are contiguous (the inner loop of the synapse kernel);
* presynaptic traces ``[batch, num_pre]``.

Parallelism: spike propagation and neuron updates run over batch elements, the synapse kernel over
rows (a row owns its gradients, so accumulating over the batch needs no atomics), readout gradients
over hidden neurons.  Results do not depend on the thread count: every sum has a fixed order.

Equations (``docs/eprop.md``): per step t, with x the input spikes and z the hidden spikes,
``a(t) = rho a(t-1) + z(t-1)``, ``v(t) = alpha v(t-1) + W_in x(t) + W_rec z(t-1) - v_th z(t-1)``,
``A = v_th + beta a``, ``z(t) = H(v - A)`` outside refractoriness, ``psi = (0.3 / v_th) max(0, 1 -
|v - A| / v_th)`` (0 while refractory); readout ``y(t) = kappa y(t-1) + W_out z(t) + b``, per-step softmax
``pi``, error ``pi - onehot``, learning signal ``L = B err``.  Eligibility: presynaptic trace ``xbar(t) =
alpha xbar(t-1) + pre(t)`` (pre = x(t) for input rows, z(t-1) for recurrent rows); ALIF
``eps(t) = psi(t-1) xbar(t-1) + (rho - beta psi(t-1)) eps(t-1)``, ``e = psi (xbar - beta eps)``; filtered
``ebar = kappa ebar + e``; gradient ``g += L ebar + R e`` with the rate regulariser ``R``.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

_OPTS = dict(cache=True, error_model="numpy", fastmath=False)


@numba.njit(parallel=True, **_OPTS)
def propagate(ind, rowlen, w, pre_now, current):
    """current[b, ind[i, k]] += pre_now[b, i] * w[i, k] for every row i that fired (pre_now != 0)."""
    batch, num_pre = pre_now.shape
    for b in prange(batch):
        for i in range(num_pre):
            s = pre_now[b, i]
            if s != 0.0:
                for k in range(rowlen[i]):
                    current[b, ind[i, k]] += s * w[i, k]


@numba.njit(parallel=True, **_OPTS)
def neurons(v, a, z, zprev, refrac, psi, psi_prev, current, alpha, rho, beta, v_th, n_ref, adaptive):
    """Advance the hidden (A)LIF neurons one step; ``z`` receives this step's spikes (0/1), ``psi`` the
    pseudo-derivative; the previous step's values move to ``zprev`` / ``psi_prev`` first."""
    batch, num = v.shape
    gain = 0.3 / v_th
    for b in prange(batch):
        for j in range(num):
            zp = z[b, j]
            zprev[b, j] = zp
            psi_prev[b, j] = psi[b, j]
            if adaptive:
                a[b, j] = rho * a[b, j] + zp
            vj = alpha * v[b, j] + current[b, j] - v_th * zp
            v[b, j] = vj
            current[b, j] = 0.0
            thr = v_th + beta * a[b, j]
            if refrac[b, j] > 0:
                refrac[b, j] -= 1
                z[b, j] = 0.0
                psi[b, j] = 0.0
            else:
                psi[b, j] = gain * max(0.0, 1.0 - abs(vj - thr) / v_th)
                if vj >= thr:
                    z[b, j] = 1.0
                    refrac[b, j] = n_ref
                else:
                    z[b, j] = 0.0


@numba.njit(parallel=True, **_OPTS)
def readout(z, y, w_out, b_out, feedback, labels, kappa, err, learn_signal, pi_sum, loss):
    """Leaky-integrator readout, per-step softmax, its cross-entropy (added to ``loss[b]``), the output
    error ``err`` (pi - onehot), the summed probabilities ``pi_sum`` and the learning signal ``L = B err``."""
    batch, num_hidden = z.shape
    num_out = y.shape[1]
    for b in prange(batch):
        ymax = -np.inf
        for k in range(num_out):
            acc = kappa * y[b, k] + b_out[k]
            for j in range(num_hidden):
                if z[b, j] != 0.0:
                    acc += w_out[k, j] * z[b, j]
            y[b, k] = acc
            ymax = max(ymax, acc)
        total = 0.0
        for k in range(num_out):
            e = math.exp(y[b, k] - ymax)
            err[b, k] = e
            total += e
        lab = labels[b]
        loss[b] += -(y[b, lab] - ymax - math.log(total))
        for k in range(num_out):
            p = err[b, k] / total
            pi_sum[b, k] += p
            err[b, k] = p - (1.0 if k == lab else 0.0)
        for j in range(num_hidden):
            acc = 0.0
            for k in range(num_out):
                acc += feedback[j, k] * err[b, k]
            learn_signal[b, j] = acc


@numba.njit(parallel=True, **_OPTS)
def readout_grads(z, err, zbar_out, bbar, kappa, g_out, g_bias, rate, rate_decay, dt, reg, c_reg, f_target):
    """Readout weight/bias gradients from the kappa-filtered hidden spikes, and the firing-rate
    regulariser: ``rate`` (1/ms, batch mean, exponentially averaged) and ``reg = c_reg (rate - target)``."""
    batch, num_hidden = z.shape
    num_out = err.shape[1]
    for j in prange(num_hidden):
        zsum = 0.0
        for b in range(batch):
            zb = kappa * zbar_out[b, j] + z[b, j]
            zbar_out[b, j] = zb
            zsum += z[b, j]
            for k in range(num_out):
                g_out[k, j] += err[b, k] * zb
        rate[j] = rate_decay * rate[j] + (1.0 - rate_decay) * zsum / (batch * dt)
        reg[j] = c_reg * (rate[j] - f_target)
    if num_hidden > 0:
        for b in range(batch):
            for k in range(num_out):
                g_bias[k] += err[b, k] * bbar


@numba.njit(parallel=True, **_OPTS)
def synapses(ind, rowlen, grad, eps, ebar, pre_bar, pre_now, psi, psi_prev, learn_signal, reg,
             alpha, rho, beta, kappa, adaptive):
    """Per synapse and batch element: eligibility, its kappa-filtered trace, and the gradient
    ``grad += L_j ebar_ji + reg_j e_ji`` (summed over the batch); also advances the row's presynaptic trace."""
    num_pre = ind.shape[0]
    batch = pre_now.shape[0]
    for i in prange(num_pre):
        n = rowlen[i]
        for b in range(batch):
            old = pre_bar[b, i]
            new = alpha * old + pre_now[b, i]
            pre_bar[b, i] = new
            if adaptive:
                for k in range(n):
                    j = ind[i, k]
                    pp = psi_prev[b, j]
                    ep = pp * old + (rho - beta * pp) * eps[i, b, k]
                    eps[i, b, k] = ep
                    e = psi[b, j] * (new - beta * ep)
                    eb = kappa * ebar[i, b, k] + e
                    ebar[i, b, k] = eb
                    grad[i, k] += learn_signal[b, j] * eb + reg[j] * e
            else:
                for k in range(n):
                    j = ind[i, k]
                    e = psi[b, j] * new
                    eb = kappa * ebar[i, b, k] + e
                    ebar[i, b, k] = eb
                    grad[i, k] += learn_signal[b, j] * eb + reg[j] * e


@numba.njit(**_OPTS)
def spike_frame(x, t, out):
    """out[b, i] = x[b, t, i] as floats (this step's input spike counts)."""
    batch, _, units = x.shape
    for b in range(batch):
        for i in range(units):
            out[b, i] = x[b, t, i]


@numba.njit(**_OPTS)
def run_trial(x, labels, train, adaptive, has_rec,
              in_ind, in_len, in_w, in_grad, in_eps, in_ebar, in_bar,
              rec_ind, rec_len, rec_w, rec_grad, rec_eps, rec_ebar, rec_bar,
              v, a, z, zprev, refrac, psi, psi_prev, current, x_now,
              y, err, learn_signal, zbar_out, pi_sum, loss, spikes,
              w_out, b_out, feedback, g_out, g_bias, rate, reg,
              alpha, rho, beta, v_th, n_ref, kappa, rate_decay, dt, c_reg, f_target):
    """One trial of a batch from rest: ``x`` [batch, steps, inputs] spike counts.  Fills ``loss`` (summed
    cross-entropy per sample), ``pi_sum`` (softmax summed over steps) and ``spikes`` (hidden spike count
    per sample); when ``train`` accumulates raw (unnormalised) gradients into the grad arrays."""
    steps = x.shape[1]
    bbar = 0.0
    for t in range(steps):
        spike_frame(x, t, x_now)
        propagate(in_ind, in_len, in_w, x_now, current)
        if has_rec:
            propagate(rec_ind, rec_len, rec_w, z, current)   # z still holds z(t-1)
        neurons(v, a, z, zprev, refrac, psi, psi_prev, current, alpha, rho, beta, v_th, n_ref, adaptive)
        readout(z, y, w_out, b_out, feedback, labels, kappa, err, learn_signal, pi_sum, loss)
        for b in range(z.shape[0]):
            for j in range(z.shape[1]):
                spikes[b] += z[b, j]
        if train:
            bbar = kappa * bbar + 1.0
            readout_grads(z, err, zbar_out, bbar, kappa, g_out, g_bias, rate, rate_decay, dt, reg, c_reg,
                          f_target)
            synapses(in_ind, in_len, in_grad, in_eps, in_ebar, in_bar, x_now, psi, psi_prev, learn_signal, reg,
                     alpha, rho, beta, kappa, adaptive)
            if has_rec:
                synapses(rec_ind, rec_len, rec_grad, rec_eps, rec_ebar, rec_bar, zprev, psi, psi_prev,
                         learn_signal, reg, alpha, rho, beta, kappa, adaptive)
