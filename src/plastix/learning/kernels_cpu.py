"""CPU (Numba) kernels of e-prop: one mini-batch trial, the whole time loop in compiled code.

Layouts (all float arrays share the network's float type):

* neuron state ``[batch, neurons]``; readout state ``[batch, classes]``;
* the hidden neurons of all layers as one vector, layer after layer;
* sparse projections (a tuple of them: input, recurrent and layer-to-layer, each with its geometry, see
  :func:`run_trial`) as ragged rows: ``ind`` / ``w`` / ``grad`` ``[num_pre, row_stride]`` with
  ``rowlen[num_pre]``; per-synapse, per-batch traces ``eps`` / ``ebar`` ``[batch, num_pre, row_stride]``
  (one batch element's traces are one contiguous block: a thread owns a batch element);
* presynaptic traces ``[batch, num_pre]``.

Parallelism: one parallel region per trial, over batch elements: each batch element runs the whole
time loop on its own (batch elements interact only through the parameters, which a trial does not
change), accumulating its gradients into private per-element buffers that are then summed in a fixed
order, in parallel over rows.  Results therefore do not depend on the thread count, and a busy machine
costs no per-step barrier.  (A region per phase and step was tried first: ~5 barriers per step made
trials up to 10x slower whenever another process competed for the cores.)

Readout gradients are computed once per trial, not per step: ``sum_t err(t) zbar(t)^T`` equals
``sum_t E(t) z(t)^T`` with the backward-filtered error ``E(t) = err(t) + kappa E(t+1)``, so only
hidden spikes cost work.  The rate regulariser uses a per-element running rate started from the
network's estimate, which is set to the batch mean at the end of the trial.

Equations (``docs/eprop.md``): per step t, with x the input spikes and z the hidden spikes,
``a(t) = rho a(t-1) + z(t-1)``, ``v(t) = alpha v(t-1) + W_in x(t) + W_rec z(t-1) - v_th z(t-1)`` (or, with
``reset_zero``, ``v(t) = alpha v(t-1) (1 - z(t-1)) + W_in x(t) + W_rec z(t-1)``),
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


@numba.njit(inline="always", **_OPTS)
def _propagate(ind, rowlen, w, pre_now, current):
    """current[ind[i, k]] += pre_now[i] * w[i, k] for every row i that fired (pre_now != 0)."""
    for i in range(pre_now.shape[0]):
        s = pre_now[i]
        if s != 0.0:
            for k in range(rowlen[i]):
                current[ind[i, k]] += s * w[i, k]


@numba.njit(inline="always", **_OPTS)
def _neurons(v, a, z, zprev, refrac, psi, psi_prev, current, alpha, rho, beta, v_th, n_ref, adaptive, reset_zero):
    """Advance the hidden (A)LIF neurons of one batch element one step; ``z`` receives this step's
    spikes (0/1), ``psi`` the pseudo-derivative; the previous step's values move to ``zprev`` / ``psi_prev``.
    ``v`` keeps the value before the reset: a spike is subtracted (``v_th``) in the next step, or with
    ``reset_zero`` the next step starts from 0 (``v(t) = alpha v(t-1) (1 - z(t-1)) + I(t)``)."""
    gain = 0.3 / v_th
    for j in range(v.shape[0]):
        zp = z[j]
        zprev[j] = zp
        psi_prev[j] = psi[j]
        if adaptive:
            a[j] = rho * a[j] + zp
        if reset_zero:
            vj = alpha * v[j] * (1.0 - zp) + current[j]
        else:
            vj = alpha * v[j] + current[j] - v_th * zp
        v[j] = vj
        current[j] = 0.0
        thr = v_th + beta * a[j]
        if refrac[j] > 0:
            refrac[j] -= 1
            z[j] = 0.0
            psi[j] = 0.0
        else:
            psi[j] = gain * max(0.0, 1.0 - abs(vj - thr) / v_th)
            if vj >= thr:
                z[j] = 1.0
                refrac[j] = n_ref
            else:
                z[j] = 0.0


@numba.njit(inline="always", **_OPTS)
def _readout(z, y, w_out, b_out, feedback, lab, kappa, err, learn_signal, pi_sum):
    """Leaky-integrator readout, per-step softmax, output error ``err`` (pi - onehot), summed
    probabilities and the learning signal ``L = B err``; returns this step's cross-entropy."""
    num_out = y.shape[0]
    for k in range(num_out):
        y[k] = kappa * y[k] + b_out[k]
    for j in range(z.shape[0]):
        if z[j] != 0.0:
            for k in range(num_out):
                y[k] += w_out[k, j] * z[j]
    ymax = -np.inf
    for k in range(num_out):
        ymax = max(ymax, y[k])
    total = 0.0
    for k in range(num_out):
        e = math.exp(y[k] - ymax)
        err[k] = e
        total += e
    for k in range(num_out):
        p = err[k] / total
        pi_sum[k] += p
        err[k] = p - (1.0 if k == lab else 0.0)
    for j in range(learn_signal.shape[0]):
        acc = 0.0
        for k in range(num_out):
            acc += feedback[j, k] * err[k]
        learn_signal[j] = acc
    return -(y[lab] - ymax - math.log(total))


@numba.njit(inline="always", **_OPTS)
def _synapses(ind, rowlen, grad, eps, ebar, pre_bar, pre_now, psi, psi_prev, learn_signal, reg,
              alpha, rho, beta, kappa, adaptive):
    """One batch element: eligibility, its kappa-filtered trace and ``grad += L_j ebar_ji + reg_j e_ji`` for
    every synapse; advances each row's presynaptic trace."""
    for i in range(ind.shape[0]):
        n = rowlen[i]
        old = pre_bar[i]
        new = alpha * old + pre_now[i]
        pre_bar[i] = new
        if adaptive:
            for k in range(n):
                j = ind[i, k]
                pp = psi_prev[j]
                ep = pp * old + (rho - beta * pp) * eps[i, k]
                eps[i, k] = ep
                e = psi[j] * (new - beta * ep)
                eb = kappa * ebar[i, k] + e
                ebar[i, k] = eb
                grad[i, k] += learn_signal[j] * eb + reg[j] * e
        else:
            for k in range(n):
                j = ind[i, k]
                e = psi[j] * new
                eb = kappa * ebar[i, k] + e
                ebar[i, k] = eb
                grad[i, k] += learn_signal[j] * eb + reg[j] * e


@numba.njit(parallel=True, **_OPTS)
def _sum_over_batch(per_element, rowlen, out):
    """out[i, k] += sum_b per_element[b, i, k] over each row's existing slots (fixed order)."""
    for i in prange(out.shape[0]):
        for b in range(per_element.shape[0]):
            for k in range(rowlen[i]):
                out[i, k] += per_element[b, i, k]


@numba.njit(parallel=True, **_OPTS)
def run_trial(x, labels, train, adaptive,
              proj_ind, proj_len, proj_w, proj_grad, proj_gbuf, proj_eps, proj_ebar, proj_bar, proj_geom,
              v, a, z, zprev, refrac, psi, psi_prev, current, x_now,
              y, err, learn_signal, rate_b, pi_sum, loss, spikes,
              w_out, b_out, feedback, g_out, g_bias, rate, reg,
              alpha, rho, beta, v_th, n_ref, kappa, rate_decay, dt, c_reg, f_target, reset_zero):
    """One trial of a batch from rest: ``x`` [batch, steps, inputs] spike counts.

    The hidden neurons of every layer form one vector (layer after layer) in the neuron state
    ``[batch, hidden]``.  Projection ``p`` (tuples ``proj_*`` of equal-typed arrays, one entry per
    projection; ``proj_gbuf`` its per-element gradient scratch ``[batch, rows, stride]``, zeroed) has
    the geometry ``proj_geom[p] = (source, pre_offset, post_offset, post_size)``: source 0 reads the input
    spikes x(t) (pre_offset 0), source 1 reads hidden spikes z(t-1) of neurons ``pre_offset + row``; its
    targets are hidden neurons ``post_offset + ind``.  A projection with no rows is a placeholder.

    ``reset_zero``: a spike sets the membrane to 0 instead of subtracting ``v_th`` in the next step (the
    reset is non-differentiable either way: the eligibility traces are the same).

    Fills ``loss`` (summed cross-entropy per sample), ``pi_sum`` (softmax summed over steps) and
    ``spikes`` (hidden spike count per sample); when ``train``, adds the raw (summed, unnormalised)
    gradients to each ``proj_grad[p]``, ``g_out`` and ``g_bias`` and updates the rate estimate ``rate``
    (1/ms).  ``rate_b`` receives each element's running rate (1/ms) and ``reg`` the batch-mean regulariser
    of the last step."""
    batch, steps, _ = x.shape
    num_hidden = v.shape[1]
    num_out = y.shape[1]
    ftype = v.dtype
    num_proj = proj_geom.shape[0]
    z_hist = np.zeros((batch, steps if train else 0, num_hidden), np.uint8)
    e_hist = np.zeros((batch, steps if train else 0, num_out), ftype)
    reg_b = np.zeros((batch, num_hidden), ftype)
    for b in prange(batch):
        for j in range(num_hidden):
            rate_b[b, j] = rate[j]
        lab = labels[b]
        for t in range(steps):
            for i in range(x.shape[2]):
                x_now[b, i] = x[b, t, i]
            for p in range(num_proj):   # z still holds z(t-1)
                rows = proj_ind[p].shape[0]
                lo, n = proj_geom[p, 2], proj_geom[p, 3]
                if proj_geom[p, 0] == 0:
                    _propagate(proj_ind[p], proj_len[p], proj_w[p], x_now[b, :rows], current[b, lo:lo + n])
                else:
                    pre = proj_geom[p, 1]
                    _propagate(proj_ind[p], proj_len[p], proj_w[p], z[b, pre:pre + rows], current[b, lo:lo + n])
            _neurons(v[b], a[b], z[b], zprev[b], refrac[b], psi[b], psi_prev[b], current[b], alpha, rho, beta,
                     v_th, n_ref, adaptive, reset_zero)
            loss[b] += _readout(z[b], y[b], w_out, b_out, feedback, lab, kappa, err[b], learn_signal[b], pi_sum[b])
            for j in range(num_hidden):
                spikes[b] += z[b, j]
            if train:
                for j in range(num_hidden):
                    f = rate_decay * rate_b[b, j] + (1.0 - rate_decay) * z[b, j] / dt
                    rate_b[b, j] = f
                    reg_b[b, j] = c_reg * (f - f_target)
                    z_hist[b, t, j] = np.uint8(z[b, j])
                for k in range(num_out):
                    e_hist[b, t, k] = err[b, k]
                for p in range(num_proj):
                    rows = proj_ind[p].shape[0]
                    lo, hi = proj_geom[p, 2], proj_geom[p, 2] + proj_geom[p, 3]
                    if proj_geom[p, 0] == 0:
                        pre_now = x_now[b, :rows]
                    else:
                        pre_now = zprev[b, proj_geom[p, 1]:proj_geom[p, 1] + rows]
                    _synapses(proj_ind[p], proj_len[p], proj_gbuf[p][b], proj_eps[p][b], proj_ebar[p][b],
                              proj_bar[p][b], pre_now, psi[b, lo:hi], psi_prev[b, lo:hi], learn_signal[b, lo:hi],
                              reg_b[b, lo:hi], alpha, rho, beta, kappa, adaptive)
        if train:   # backward-filtered error, in place: E(t) = err(t) + kappa E(t + 1)
            for t in range(steps - 2, -1, -1):
                for k in range(num_out):
                    e_hist[b, t, k] += kappa * e_hist[b, t + 1, k]
    if train:
        for p in range(num_proj):
            _sum_over_batch(proj_gbuf[p], proj_len[p], proj_grad[p])
        _readout_grads(z_hist, e_hist, g_out, g_bias)
        for j in range(num_hidden):
            acc = 0.0
            r = 0.0
            for b in range(batch):
                acc += rate_b[b, j]
                r += reg_b[b, j]
            rate[j] = acc / batch
            reg[j] = r / batch


@numba.njit(parallel=True, **_OPTS)
def _readout_grads(z_hist, e_hist, g_out, g_bias):
    """g_out[k, j] += sum over spikes (b, t, j) of E[b, t, k]; g_bias[k] += sum_{b,t} E[b, t, k]."""
    batch, steps, num_hidden = z_hist.shape
    num_out = e_hist.shape[2]
    for j in prange(num_hidden):
        for b in range(batch):
            for t in range(steps):
                if z_hist[b, t, j] != 0:
                    for k in range(num_out):
                        g_out[k, j] += e_hist[b, t, k]
    for b in range(batch):
        for t in range(steps):
            for k in range(num_out):
                g_bias[k] += e_hist[b, t, k]
