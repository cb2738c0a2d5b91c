"""Event-driven reductions over a Conv2D projection's presynaptic events, by kernel entry (numba).

A convolution's weight gradient is a sum over presynaptic events of a postsynaptic value at each target,
summed over the synapses that share a kernel entry.  Walking the synapses (one accumulator per synapse
instance, then :func:`~plastix.conv.kernel_sum`) touches every instance's slot: 1.06 million of them for
SD-SNN's second Fashion-MNIST convolution, whose kernel has 5,400 entries.  Here each event visits its
``kh x kw`` taps from the geometry and adds into one accumulator per kernel entry, the output channels
contiguous (a vector over ``C_out``), so the accumulators stay in L1 and the work is events x taps x
channels, as before, without the synapse-instance traffic.

Batch elements run in parallel, each into its own float64 partial sum; the partials are added in element
order afterwards, so the result does not depend on the thread count.
"""
from __future__ import annotations

import numba
import numpy as np

from ..kernels.conv_taps import tap_table

__all__ = ["tap_table", "event_tap_sums", "tap_transpose_add", "transpose_table", "entry_counts",
           "pool_window_transpose"]


@numba.njit(parallel=True, cache=True, nogil=True)
def event_tap_sums(rec_step, rec_idx, rec_n, t0, arrive, post, pre, graded, channels, n_out, tap_start, tap,
                   tap_out, out, row0=0, row1=1 << 62):
    """``out[b, tap[q], c]`` += ``x * post[b, t, channels[c] * n_out + tap_out[q]]`` over batch element ``b``'s
    recorded presynaptic events and, for an event of neuron ``i``, the entries ``q`` in
    ``tap_start[i] .. tap_start[i + 1]`` of the tap table (:func:`tap_table`: the kernel taps
    ``(ci * kh + ky) * kw + kx`` through which ``i`` reaches an output position, and that position).

    An event emitted at step ``te`` (tape row ``rec_step - t0``) arrives at tape row ``t = te + arrive``;
    only events arriving at rows ``row0 .. row1 - 1`` count (those after the last tape row are not on it).  ``x`` is
    ``pre[b, te, i]`` when ``graded`` (the value the event carried), else 1.  ``channels``: the output
    channels to sum (int64, ascending); ``n_out``: output positions per channel; ``out``
    [B, C_in * kh * kw, len(channels)] (the sums' precision), overwritten.
    """
    n_c = channels.size
    ntape = min(post.shape[1], row1)
    one = np.ones(1, out.dtype)[0]   # the sums' type: products in the sums' precision
    for b in numba.prange(out.shape[0]):
        acc = out[b]
        acc[:] = 0.0
        row = np.empty(n_out * n_c, post.dtype)   # post[b, t] channel-minor: one tap reads contiguously
        current = -1
        for e in range(min(rec_n[b, 0], rec_step.shape[1])):
            te = rec_step[b, e] - t0
            t = te + arrive
            if t >= ntape:   # events come in time order: the rest arrive after the tape too
                break
            if t < row0:
                continue
            i = rec_idx[b, e]
            x = pre[b, te, i] if graded else one
            if x == 0.0:
                continue
            if t != current:
                for c in range(n_c):
                    base = channels[c] * n_out
                    for s in range(n_out):
                        row[s * n_c + c] = post[b, t, base + s]
                current = t
            for q in range(tap_start[i], tap_start[i + 1]):
                # views, not offsets: indices known non-negative let LLVM vectorise the channel loop (2.5x)
                a = acc[tap[q]]
                r = row[tap_out[q] * n_c:(tap_out[q] + 1) * n_c]
                for c in range(n_c):
                    a[c] += x * r[c]


@numba.njit(cache=True)
def entry_counts(kidx, rowlen, size):
    """How many existing synapses each of the ``size`` kernel entries has (occupied slots only)."""
    count = np.zeros(size, np.int64)
    for i in range(rowlen.size):
        for j in range(rowlen[i]):
            count[kidx[i, j]] += 1
    return count


@numba.njit(parallel=True, cache=True, nogil=True)
def tap_transpose_add(post, shift, kernel_rows, n_in, tap_in, gz, row0=0, row1=1 << 62):
    """``gz[b, u, ci * n_in + tap_in[tap, s]] += sum_c kernel_rows[c, ci * kh * kw + tap] * post[b, u + shift,
    c * n_out + s]`` for every output position ``s`` and tap whose input position ``tap_in[tap, s]`` lies
    inside the input (>= 0): the transposed convolution of the tape ``post`` into the presynaptic tape
    ``gz``, for the rows ``u + shift`` of ``post`` in ``max(row0, shift) .. min(row1, ntape) - 1``.

    Per ``(b, u)``: a [C_in * kh * kw, n_out] column buffer (the tape's dtype) takes the kernel times the
    tape row, four output channels per pass over a buffer row (long contiguous loops the compiler
    vectorises, a quarter of the buffer traffic; all-zero kernel quadruples skipped); then col2im adds the
    columns into the input positions.  Each ``(b, u)`` row is one task with its own buffer, its additions in
    a fixed order: the result does not depend on the thread count.  Plain loops, not BLAS: a BLAS call
    beside numba's worker threads contends with them (measured 4x slower).
    """
    n_b = post.shape[0]
    first, stop = max(row0, shift), min(row1, post.shape[1])
    steps = max(stop - first, 0)
    c_out, n_rows = kernel_rows.shape
    n_taps, n_out = tap_in.shape
    c_in = n_rows // n_taps
    quads = c_out // 4
    for task in numba.prange(n_b * steps):
        b = task // steps
        u = first - shift + task - b * steps
        row = post[b, u + shift]
        cols = np.zeros((n_rows, n_out), post.dtype)
        for cq in range(quads):
            c = 4 * cq
            d0 = row[c * n_out:(c + 1) * n_out]
            d1 = row[(c + 1) * n_out:(c + 2) * n_out]
            d2 = row[(c + 2) * n_out:(c + 3) * n_out]
            d3 = row[(c + 3) * n_out:(c + 4) * n_out]
            for r in range(n_rows):
                k0, k1, k2, k3 = kernel_rows[c, r], kernel_rows[c + 1, r], kernel_rows[c + 2, r], kernel_rows[c + 3, r]
                if k0 == 0.0 and k1 == 0.0 and k2 == 0.0 and k3 == 0.0:
                    continue
                col = cols[r]
                for s in range(n_out):
                    col[s] += k0 * d0[s] + k1 * d1[s] + k2 * d2[s] + k3 * d3[s]
        for c in range(4 * quads, c_out):
            d0 = row[c * n_out:(c + 1) * n_out]
            for r in range(n_rows):
                k0 = kernel_rows[c, r]
                if k0 == 0.0:
                    continue
                col = cols[r]
                for s in range(n_out):
                    col[s] += k0 * d0[s]
        g = gz[b, u]
        for ci in range(c_in):
            for tap in range(n_taps):
                col = cols[ci * n_taps + tap]
                into = tap_in[tap]
                for s in range(n_out):
                    if into[s] >= 0:
                        g[ci * n_in + into[s]] += col[s]


def transpose_table(in_shape, kernel, stride, padding, out_hw) -> np.ndarray:
    """``[kh * kw, H_out * W_out]``: the input position ``iy * W + ix`` (``iy = oy * sh - ph + ky``) that tap
    ``ky * kw + kx`` of output position ``oy * W_out + ox`` reads, or -1 in the padding."""
    (_, h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = in_shape, kernel, stride, padding, out_hw
    ky, kx, oy, ox = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(ho), np.arange(wo), indexing="ij")
    iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    return np.where(inside, iy * w + ix, -1).reshape(kh * kw, ho * wo).astype(np.int64)


@numba.njit(parallel=True, cache=True, nogil=True)
def pool_window_transpose(post, shift, weight, in_shape, out_hw, ylo, ny, xlo, nx, gz, row0=0, row1=1 << 62):
    """``gz[b, u, (c, iy, ix)] += weight * post[b, u + shift, (c, oy, ox)]`` summed over the pooling windows
    ``(oy, ox)`` that cover input ``(iy, ix)`` (rows ``ylo[iy] .. ylo[iy] + ny[iy] - 1``, likewise columns),
    in ascending output order: the transposed average pooling of the tape ``post`` into the presynaptic
    tape ``gz``, for the rows ``u + shift`` of ``post`` in ``max(row0, shift) .. min(row1, ntape) - 1``.
    Each ``(b, u)`` row is one task."""
    c_n, h, w = in_shape[0], in_shape[1], in_shape[2]
    ho, wo = out_hw[0], out_hw[1]
    n_b = post.shape[0]
    first, stop = max(row0, shift), min(row1, post.shape[1])
    steps = max(stop - first, 0)
    single = ny.max() <= 1 and nx.max() <= 1   # no input in two windows (stride >= pool): one read each
    for task in numba.prange(n_b * steps):
        b = task // steps
        u = first - shift + task - b * steps
        row = post[b, u + shift]
        g = gz[b, u]
        for c in range(c_n):
            for iy in range(h):
                if single:
                    if ny[iy] == 0:
                        continue
                    src = row[(c * ho + ylo[iy]) * wo:(c * ho + ylo[iy] + 1) * wo]
                    dst = g[(c * h + iy) * w:(c * h + iy + 1) * w]
                    for ix in range(w):
                        if nx[ix] != 0:
                            dst[ix] += weight * src[xlo[ix]]
                    continue
                for ix in range(w):
                    acc = g[(c * h + iy) * w + ix]
                    for oy in range(ylo[iy], ylo[iy] + ny[iy]):
                        for ox in range(xlo[ix], xlo[ix] + nx[ix]):
                            acc += weight * row[(c * ho + oy) * wo + ox]
                    g[(c * h + iy) * w + ix] = acc
