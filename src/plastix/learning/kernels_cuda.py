"""CUDA (numba-cuda) kernels of e-prop: one mini-batch trial, a host loop launching one kernel per phase.

:func:`run_trial` takes exactly the arguments of :func:`plastix.learning.kernels_cpu.run_trial` (host numpy
arrays, same layouts, same equations: see that module) and leaves them as the CPU call would.  It copies the
arrays a trial reads to persistent device buffers (cached between calls by name, reallocated only when a
shape or dtype changes), uploads the whole spike tensor ``x`` once, launches the steps without any
device-to-host synchronisation and finally copies back every array the trial mutated.  Arrays a trial does
not touch are not transferred: with ``train`` false no gradient, trace or regulariser array; without
adaptation no ``eps``.

Kernels, per step ``t`` (all on the default stream, so they run in launch order):

* **propagation** (``_propagate``, one launch per projection): x over the row slots ``k``, y striding
  over the compacted list of this step's spiking ``(batch, row)`` pairs; atomic adds into ``current``.  The
  lists are double-buffered (slot ``t % 2``) and written by the neuron kernel of the previous step (by
  ``_compact_first`` for step 0), so propagation costs O(spikes x row length) and never scans ``x``.
* **neurons** (``_neurons``): one thread per ``(batch, neuron)``; when training the same thread advances
  the element's running rate (``rate_b``) and regulariser and records the spike; the same threads copy this
  step's input frame into ``x_now`` and append the next step's input spikes and this step's hidden spikes to
  the lists.
* **readout** (``_readout``): one block per batch element; classes over threads, then softmax, loss, error
  (and its history, when training) in thread 0 (class counts are small), then the learning signal with
  hidden neurons over threads.
* **synapses** (``_synapses``, the dominant cost): x over the row slots, y over (row, batch chunk); a thread
  owns slot ``k`` of row ``i`` and loops over its chunk's batch elements, adding the step's contribution to
  the gradient in a register (one chunk: one plain read-modify-write of ``grad[i, k]``, no atomics; several
  chunks, used when rows x slots alone would not fill the GPU, see :data:`SYN_TARGET_THREADS`: one atomic
  add per thread).  Traces ``eps`` / ``ebar`` ``[batch, row, slot]`` are read and written coalesced along
  ``k``.  The presynaptic traces are double-buffered (each row's slot-0 thread writes the new value while
  the other threads still read the old).

After the last step (training only), as on the CPU: ``_backfilter`` turns the error history into
``E(t) = err(t) + kappa E(t + 1)`` (a thread per batch element and class), ``_finish`` adds the readout
gradients over the recorded spikes (a thread per hidden neuron, and per class for the bias) and sets
``rate`` / ``reg`` to the batch means.

Floating point: every expression mirrors the CPU kernel term by term (including where Numba promotes a
float32 expression to float64, as in the pseudo-derivative, the softmax and the rate), so the float type of
the inputs (float32 or float64) is kept.  Sums whose order differs from the CPU: the synaptic current
(atomic adds, any order) and each synapse's gradient (the CPU sums each batch element over the steps, then
the elements; here each step's batch sum -- per chunk, added atomically -- is added to ``grad``).  Everything
else is summed in the CPU's order.  With float64 the results agree with the CPU to ~1e-12 relative; a spike
can in principle flip where a membrane potential lies within an ulp of the threshold, after which the trial
diverges (never seen with float64).  On a real GPU, NVVM may also contract ``a * b + c`` into FMAs, moving
float32 results by about an ulp per operation.

Under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``) kernel arithmetic is plain numpy on numpy
scalars, whose float32 promotion rules (NEP 50) differ from Numba's: float32 runs then agree with the CPU
only to float32 tolerance.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..kernels import launch
from ..kernels.cuda_device import DeviceArrays, probe
from ..kernels.launch import blocks as _blocks, configure

#: Lower bound on the x extent of 2-D blocks (a warp): short rows still make whole warps.
MIN_X_THREADS = 32
#: The synapse kernel splits the batch into chunks (threads accumulate atomically) until rows x slots x
#: chunks reaches about this many threads; one chunk (no atomics, the CPU's summation order) otherwise.
SYN_TARGET_THREADS = 1 << 17
#: Fixed number of batch chunks of the synapse kernel (None: from SYN_TARGET_THREADS).
BATCH_CHUNKS = None

cuda = None  # numba.cuda, imported on first use (importing it initialises the driver or the simulator)
_KERNELS: dict = {}
#: Persistent device buffers by name (replaced when the shape or dtype changes).
_DEVICE = DeviceArrays()


def _import_cuda():
    global cuda
    if cuda is None:
        from numba import cuda as _cuda

        cuda = _cuda
    return cuda


def available() -> tuple[bool, str]:
    """(usable, reason): numba-cuda importable and a GPU present, or the simulator enabled."""
    ok, why = probe()
    if ok:
        _import_cuda()
    return ok, why


# -- kernels (plain functions, compiled with cuda.jit on first use) --------------------------------------

def _compact_first(x, z, cnt, in_lst, in_val, rec_lst, rec_val, has_rec, rate_b, rate):
    """Lists of the spikes step 0 propagates: input x[:, 0, :] and hidden z (the initial state), in slot 0;
    each element's running rate ``rate_b[b]`` starts from ``rate``."""
    g = cuda.grid(1)
    batch, _, num_in = x.shape
    num_hid = z.shape[1]
    if g < batch * num_in:
        b = g // num_in
        i = g - b * num_in
        xv = x[b, 0, i]
        if xv != 0:
            pos = cuda.atomic.add(cnt, (0, 0), 1)
            in_lst[0, pos] = g
            in_val[0, pos] = xv
    if g < batch * num_hid:
        b = g // num_hid
        j = g - b * num_hid
        rate_b[b, j] = rate[j]
        zv = z[b, j]
        if has_rec and zv != 0.0:
            pos = cuda.atomic.add(cnt, (1, 0), 1)
            rec_lst[0, pos] = g
            rec_val[0, pos] = zv


def _propagate(slot, which, cnt, lst, val, ind, rowlen, w, current, code_rows, pre_off, post_off):
    """current[b, post_off + ind[i, k]] += val * w[i, k] for the spiking (b, pre_off + i) of list ``which``
    (0 input, 1 hidden; codes b * code_rows + neuron); spikes of neurons outside the rows are skipped."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    ys = cuda.gridDim.y * cuda.blockDim.y
    num_pre, stride = ind.shape
    n = cnt[which, slot]
    if k < stride:
        for s in range(y0, n, ys):
            code = lst[slot, s]
            b = code // code_rows
            i = code - b * code_rows - pre_off
            if i >= 0 and i < num_pre and k < rowlen[i]:
                cuda.atomic.add(current, (b, post_off + ind[i, k]), val[slot, s] * w[i, k])


def _neurons(t, x, x_now, cnt, in_lst, in_val, rec_lst, rec_val, has_rec,
             v, a, z, zprev, refrac, psi, psi_prev, current, alpha, rho, beta, v_th, n_ref, adaptive, reset_zero,
             train, rate_b, reg_b, z_hist, rate_decay, dt, c_reg, f_target):
    """Hidden (A)LIF update of step t (as kernels_cpu._neurons), this step's input frame into x_now, the
    spike lists of step t + 1 (next input frame, this step's hidden spikes) in slot (t + 1) % 2 and, when
    training, each element's running rate, its regulariser ``reg_b`` and the spike history."""
    g = cuda.grid(1)
    batch, num_in = x_now.shape
    num_hid = v.shape[1]
    slot = t % 2
    nxt = 1 - slot
    if g == 0:  # the lists step t propagated (nothing reads them any more); step t + 1 writes them next
        cnt[0, slot] = 0
        cnt[1, slot] = 0
    if g < batch * num_in:
        b = g // num_in
        i = g - b * num_in
        x_now[b, i] = x[b, t, i]
        if t + 1 < x.shape[1]:
            xv = x[b, t + 1, i]
            if xv != 0:
                pos = cuda.atomic.add(cnt, (0, nxt), 1)
                in_lst[nxt, pos] = g
                in_val[nxt, pos] = xv
    if g < batch * num_hid:
        b = g // num_hid
        j = g - b * num_hid
        gain = 0.3 / v_th
        zp = z[b, j]
        zprev[b, j] = zp
        psi_prev[b, j] = psi[b, j]
        if adaptive:
            a[b, j] = rho * a[b, j] + zp
        if reset_zero:
            vj = alpha * v[b, j] * (1.0 - zp) + current[b, j]
        else:
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
                if has_rec:
                    pos = cuda.atomic.add(cnt, (1, nxt), 1)
                    rec_lst[nxt, pos] = g
                    rec_val[nxt, pos] = 1.0
            else:
                z[b, j] = 0.0
        if train:
            zj = z[b, j]
            f = rate_decay * rate_b[b, j] + (1.0 - rate_decay) * zj / dt
            rate_b[b, j] = f
            reg_b[b, j] = c_reg * (f - f_target)
            z_hist[b, t, j] = zj


def _readout(t, z, y, w_out, b_out, feedback, labels, kappa, err, learn_signal, pi_sum, loss, spikes,
             train, e_hist):
    """As kernels_cpu._readout (one block per batch element), plus the hidden spike count ``spikes[b]`` and,
    when training, the error history ``e_hist[b, t]``."""
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    num_hidden = z.shape[1]
    num_out = y.shape[1]
    for k in range(tid, num_out, nt):
        acc = kappa * y[b, k] + b_out[k]
        for j in range(num_hidden):
            if z[b, j] != 0.0:
                acc += w_out[k, j] * z[b, j]
        y[b, k] = acc
    cuda.syncthreads()
    if tid == 0:
        ymax = -math.inf
        for k in range(num_out):
            ymax = max(ymax, y[b, k])
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
            if train:
                e_hist[b, t, k] = err[b, k]
        s = spikes[b]
        for j in range(num_hidden):
            s += z[b, j]
        spikes[b] = s
    cuda.syncthreads()
    for j in range(tid, num_hidden, nt):
        acc = 0.0
        for k in range(num_out):
            acc += feedback[j, k] * err[b, k]
        learn_signal[b, j] = acc


def _backfilter(e_hist, kappa):
    """E(t) = err(t) + kappa E(t + 1) in place; one thread per (batch, class)."""
    g = cuda.grid(1)
    batch, steps, num_out = e_hist.shape
    if g < batch * num_out:
        b = g // num_out
        k = g - b * num_out
        for t in range(steps - 2, -1, -1):
            e_hist[b, t, k] += kappa * e_hist[b, t + 1, k]


def _finish(z_hist, e_hist, g_out, g_bias, rate_b, reg_b, rate, reg):
    """End of a training trial (as kernels_cpu): threads j < H add ``sum over spikes (b, t, j) of E[b, t]`` to
    g_out[:, j] and set rate[j] / reg[j] to the batch means; threads H + k add ``sum_{b,t} E[b, t, k]`` to
    g_bias[k]."""
    g = cuda.grid(1)
    batch, steps, num_hidden = z_hist.shape
    num_out = e_hist.shape[2]
    if g < num_hidden:
        j = g
        for b in range(batch):
            for t in range(steps):
                if z_hist[b, t, j] != 0:
                    for k in range(num_out):
                        g_out[k, j] += e_hist[b, t, k]
        acc = 0.0
        r = 0.0
        for b in range(batch):
            acc += rate_b[b, j]
            r += reg_b[b, j]
        rate[j] = acc / batch
        reg[j] = r / batch
    elif g < num_hidden + num_out:
        k = g - num_hidden
        for b in range(batch):
            for t in range(steps):
                g_bias[k] += e_hist[b, t, k]


def _synapses(ind, rowlen, grad, eps, ebar, bar_old, bar_new, pre_now, psi, psi_prev, learn_signal, reg_b,
              alpha, rho, beta, kappa, adaptive, chunks, zero):
    """As kernels_cpu._synapses over the batch; a thread owns slot k of row i for one chunk of the batch and
    adds that chunk's contribution of this step to grad[i, k]."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    ys = cuda.gridDim.y * cuda.blockDim.y
    num_pre = ind.shape[0]
    batch = pre_now.shape[0]
    per = (batch + chunks - 1) // chunks
    for r in range(y0, num_pre * chunks, ys):
        i = r // chunks
        b0 = (r - i * chunks) * per
        b1 = min(batch, b0 + per)
        if k == 0:
            for b in range(b0, b1):
                bar_new[b, i] = alpha * bar_old[b, i] + pre_now[b, i]
        if k < rowlen[i]:
            j = ind[i, k]
            g = grad[i, k] if chunks == 1 else zero
            if adaptive:
                for b in range(b0, b1):
                    old = bar_old[b, i]
                    new = alpha * old + pre_now[b, i]
                    pp = psi_prev[b, j]
                    ep = pp * old + (rho - beta * pp) * eps[b, i, k]
                    eps[b, i, k] = ep
                    e = psi[b, j] * (new - beta * ep)
                    eb = kappa * ebar[b, i, k] + e
                    ebar[b, i, k] = eb
                    g += learn_signal[b, j] * eb + reg_b[b, j] * e
            else:
                for b in range(b0, b1):
                    new = alpha * bar_old[b, i] + pre_now[b, i]
                    e = psi[b, j] * new
                    eb = kappa * ebar[b, i, k] + e
                    ebar[b, i, k] = eb
                    g += learn_signal[b, j] * eb + reg_b[b, j] * e
            if chunks == 1:
                grad[i, k] = g
            else:
                cuda.atomic.add(grad, (i, k), g)


def _zero(flat):
    g = cuda.grid(1)
    if g < flat.shape[0]:
        flat[g] = 0


_KERNEL_FUNCS = (_compact_first, _propagate, _neurons, _readout, _backfilter, _finish, _synapses, _zero)


def _kernels() -> dict:
    if not _KERNELS:
        c = _import_cuda()
        for fn in _KERNEL_FUNCS:
            _KERNELS[fn.__name__.lstrip("_")] = c.jit(cache=True)(fn)
    return _KERNELS


# -- host side -----------------------------------------------------------------------------------------------

def _block_xy(width: int) -> tuple[int, int]:
    """2-D block (x over row slots, y over rows / spikes) for rows of ``width`` slots."""
    return launch.block_2d(width, MIN_X_THREADS)


def _buffer(name: str, shape, dtype):
    return _DEVICE.buffer(name, shape, dtype)


def _upload(name: str, host: np.ndarray):
    return _DEVICE.upload(name, host)


_download = DeviceArrays.download


def clear_device_buffers() -> None:
    """Release the cached device buffers (the next trial reallocates them)."""
    _DEVICE.clear()


def run_trial(x, labels, train, adaptive,
              proj_ind, proj_len, proj_w, proj_grad, proj_gbuf, proj_eps, proj_ebar, proj_bar, proj_geom,
              v, a, z, zprev, refrac, psi, psi_prev, current, x_now,
              y, err, learn_signal, rate_b, pi_sum, loss, spikes,
              w_out, b_out, feedback, g_out, g_bias, rate, reg,
              alpha, rho, beta, v_th, n_ref, kappa, rate_decay, dt, c_reg, f_target, reset_zero, *, copy_state=True):
    """One trial of a batch on the GPU: the arguments and effects of :func:`kernels_cpu.run_trial`
    (``proj_gbuf``, the CPU's per-element scratch, is not used: gradients are summed on the device).

    ``copy_state=False`` is for callers that pass the per-trial state zeroed (as ``EPropNetwork._view``
    does): neuron, readout and trace state and the scratch buffers (v, a, z, zprev, refrac, psi, psi_prev,
    current, x_now, y, err, learn_signal, rate_b, the presynaptic traces, eps, ebar) are then zeroed on
    the device instead of uploaded, and not copied back; the host copies keep their (zero) contents.  The
    outputs (loss, pi_sum, spikes, gradients, rate, reg) are transferred either way."""
    from . import kernels_cpu

    batch, steps, num_in = x.shape
    num_hid = v.shape[1]
    if batch == 0 or steps == 0 or num_hid == 0 or num_in == 0:  # nothing for a GPU to do
        kernels_cpu.run_trial(x, labels, train, adaptive, proj_ind, proj_len, proj_w, proj_grad, proj_gbuf,
                              proj_eps, proj_ebar, proj_bar, proj_geom,
                              v, a, z, zprev, refrac, psi, psi_prev, current, x_now, y, err, learn_signal,
                              rate_b, pi_sum, loss, spikes, w_out, b_out, feedback, g_out, g_bias, rate, reg,
                              alpha, rho, beta, v_th, n_ref, kappa, rate_decay, dt, c_reg, f_target, reset_zero)
        return
    K = _kernels()
    train, adaptive, reset_zero = bool(train), bool(adaptive), bool(reset_zero)
    geom = [tuple(int(g) for g in row) for row in np.asarray(proj_geom)]
    projs = [p for p in range(len(geom)) if proj_ind[p].shape[0] > 0]   # placeholders have no rows
    has_rec = any(geom[p][0] == 1 for p in projs)   # some projection reads hidden spikes: keep their list
    fdt = np.dtype(w_out.dtype)
    num_out = y.shape[1]

    # -- device copies: (name, host array, mutated by the trial) --------------------------------------------
    arrays = [("x", x, False), ("labels", labels, False), ("w_out", w_out, False), ("b_out", b_out, False),
              ("feedback", feedback, False), ("rate", rate, train), ("loss", loss, True), ("pi_sum", pi_sum, True),
              ("spikes", spikes, True)]
    # per-trial state and scratch (zeroed on the device instead of uploaded when not copy_state)
    state = [("v", v), ("a", a), ("z", z), ("zprev", zprev), ("refrac", refrac), ("psi", psi),
             ("psi_prev", psi_prev), ("current", current), ("x_now", x_now), ("y", y), ("err", err),
             ("learn_signal", learn_signal), ("rate_b", rate_b)]
    if train:
        arrays += [("g_out", g_out, True), ("g_bias", g_bias, True), ("reg", reg, True)]
    for p in projs:
        arrays += [(f"p{p}_ind", proj_ind[p], False), (f"p{p}_len", proj_len[p], False), (f"p{p}_w", proj_w[p], False)]
        if train:
            arrays += [(f"p{p}_grad", proj_grad[p], True)]
            state += [(f"p{p}_ebar", proj_ebar[p])] + ([(f"p{p}_eps", proj_eps[p])] if adaptive else [])
    state_names = {n for n, _ in state}
    arrays += [(n, h, True) for n, h in state]
    dev = {}
    to_zero = []
    for name, host, _ in arrays:
        if name in state_names and not copy_state:
            dev[name] = _buffer(name, host.shape, host.dtype)
            to_zero.append(dev[name])
        else:
            dev[name] = _upload(name, host)
    bars = {}
    if train:  # presynaptic traces, double-buffered [2, batch, rows]: step t reads [t % 2], writes the other
        for p in projs:
            host = proj_bar[p]
            buf = _buffer(f"p{p}_bar", (2,) + host.shape, host.dtype)
            if not copy_state:
                to_zero.append(buf)
            elif host.size:
                buf[0].copy_to_device(np.ascontiguousarray(host))
            bars[p] = (buf[0], buf[1])
        z_hist = _buffer("z_hist", (batch, steps, num_hid), np.uint8)
        e_hist = _buffer("e_hist", (batch, steps, num_out), fdt)
        reg_b = _buffer("reg_b", (batch, num_hid), fdt)
    else:  # placeholders (never read)
        z_hist = _buffer("z_hist_none", (1, 1, 1), np.uint8)
        e_hist = _buffer("e_hist_none", (1, 1, 1), fdt)
        reg_b = _buffer("reg_b_none", (1, 1), fdt)
    # spike lists [2 slots, batch * rows] (codes b * rows + i, and values) and their counts [list, slot]
    cnt = _buffer("cnt", (2, 2), np.int32)
    cnt.copy_to_device(np.zeros((2, 2), np.int32))
    in_lst = _buffer("in_lst", (2, batch * num_in), np.int32)
    in_val = _buffer("in_val", (2, batch * num_in), fdt)
    rec_lst = _buffer("rec_lst", (2, batch * num_hid if has_rec else 1), np.int32)
    rec_val = _buffer("rec_val", (2, batch * num_hid if has_rec else 1), fdt)

    tpb = int(launch.THREADS_PER_BLOCK)
    d = dev
    with warnings.catch_warnings():
        # tiny networks make small grids: numba-cuda's low-occupancy warning would fire on every launch
        warnings.simplefilter("ignore")
        # -- launch configurations (computed once per trial) -------------------------------------------------
        k_zero = K["zero"]
        for arr in to_zero:
            k_zero[_blocks(arr.size, tpb), tpb](arr.reshape(arr.size))
        n_flat = max(batch * num_in, batch * num_hid)
        K["compact_first"][_blocks(n_flat, tpb), tpb](d["x"], d["z"], cnt, in_lst, in_val, rec_lst, rec_val,
                                                      has_rec, d["rate_b"], d["rate"])

        def prop_launch(ind, n_spk):
            tx, ty = _block_xy(ind.shape[1])
            grid = (_blocks(ind.shape[1], tx), min(_blocks(n_spk, ty), int(launch.MAX_SPIKE_BLOCKS)))
            return configure(K["propagate"], (grid, (tx, ty)))

        def syn_launch(ind):
            rows, stride = ind.shape
            tx, ty = _block_xy(stride)
            gx = _blocks(stride, tx)
            if BATCH_CHUNKS is not None:
                chunks = int(BATCH_CHUNKS)
            else:
                chunks = _blocks(int(SYN_TARGET_THREADS), max(1, rows * gx * tx))
            chunks = max(1, min(batch, chunks))
            chunks = _blocks(batch, _blocks(batch, chunks))   # no empty chunks
            grid = (gx, min(_blocks(rows * chunks, ty), launch.MAX_GRID_Y))
            return configure(K["synapses"], (grid, (tx, ty))), chunks

        # per projection: (propagation launch, list, code rows, synapse launch, chunks, views of the presynaptic
        # activity and of the targets' psi / psi_prev / learning signal / regulariser)
        plan = []
        for p in projs:
            src, pre_off, post_off, n_post = geom[p]
            rows = proj_ind[p].shape[0]
            post = slice(post_off, post_off + n_post)
            if src == 0:
                prop = (prop_launch(proj_ind[p], batch * num_in), 0, num_in)
                pre_now = d["x_now"]
            else:
                prop = (prop_launch(proj_ind[p], batch * num_hid), 1, num_hid)
                pre_now = d["zprev"][:, pre_off:pre_off + rows]
            syn, chunks = syn_launch(proj_ind[p]) if train else (None, 1)
            targets = (d["psi"][:, post], d["psi_prev"][:, post], d["learn_signal"][:, post],
                       reg_b[:, post] if train else reg_b)
            plan.append((p, prop, pre_off if src == 1 else 0, post_off, syn, chunks, pre_now, targets))
        k_neurons = configure(K["neurons"], (_blocks(n_flat, tpb), tpb))
        k_readout = configure(K["readout"], (batch, min(tpb, launch.block_2d(max(num_out, num_hid), MIN_X_THREADS)[0])))
        zero = fdt.type(0)

        # -- the steps: launched back to back, no host synchronisation ---------------------------------------
        for t in range(steps):
            slot = t % 2
            for p, (k_prop, which, code_rows), pre_off, post_off, _, _, _, _ in plan:
                lst, val = (in_lst, in_val) if which == 0 else (rec_lst, rec_val)
                k_prop(slot, which, cnt, lst, val, d[f"p{p}_ind"], d[f"p{p}_len"], d[f"p{p}_w"], d["current"],
                       code_rows, pre_off, post_off)
            k_neurons(t, d["x"], d["x_now"], cnt, in_lst, in_val, rec_lst, rec_val, has_rec,
                      d["v"], d["a"], d["z"], d["zprev"], d["refrac"], d["psi"], d["psi_prev"], d["current"],
                      alpha, rho, beta, v_th, n_ref, adaptive, reset_zero,
                      train, d["rate_b"], reg_b, z_hist, rate_decay, dt, c_reg, f_target)
            k_readout(t, d["z"], d["y"], d["w_out"], d["b_out"], d["feedback"], d["labels"], kappa, d["err"],
                      d["learn_signal"], d["pi_sum"], d["loss"], d["spikes"], train, e_hist)
            if train:
                for p, _, _, _, k_syn, chunks, pre_now, (t_psi, t_psi_prev, t_learn, t_reg) in plan:
                    old, new = bars[p][slot], bars[p][1 - slot]
                    ebar = d[f"p{p}_ebar"]
                    k_syn(d[f"p{p}_ind"], d[f"p{p}_len"], d[f"p{p}_grad"], d[f"p{p}_eps"] if adaptive else ebar,
                          ebar, old, new, pre_now, t_psi, t_psi_prev, t_learn, t_reg,
                          alpha, rho, beta, kappa, adaptive, chunks, zero)
        if train:
            K["backfilter"][_blocks(batch * num_out, tpb), tpb](e_hist, kappa)
            K["finish"][_blocks(num_hid + num_out, tpb), tpb](z_hist, e_hist, d["g_out"], d["g_bias"],
                                                              d["rate_b"], reg_b, d["rate"], d["reg"])

    # -- results back ---------------------------------------------------------------------------------------
    for name, host, mutated in arrays:
        if mutated and (copy_state or name not in state_names):
            _download(dev[name], host)
    if train and copy_state:
        for p in projs:
            _download(bars[p][steps % 2], proj_bar[p])
