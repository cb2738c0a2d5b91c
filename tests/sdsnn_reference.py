"""Independent forward pass and surrogate-gradient BPTT, in plain numpy, for the SD-SNN layer stacks
(conv / pool / fc with optional recurrence / li readout) that plastix's engine-based BPTT trainer runs.

The semantics are those of the lead's spec (notes: "The BPTT network both plastix and its references
implement"; the authors' MNIST-family ``SCNN``):

* LIF, every conv and fc layer: ``u_t = decay * u_{t-1} * (1 - s_{t-1}) + I_t + b``,
  ``s_t = H(u_t - v_th)`` with ``H(0) = 0`` (the authors' ``input.gt(thresh)``: a spike needs
  ``u_t > v_th``); u and s start at 0 per sample; the reset factor ``(1 - s_{t-1})`` is differentiated;
  surrogate ``ds/du = 1 if |u - v_th| < lens else 0`` (strict, no normalisation).
* conv: cross-correlation with zero padding, bias per output channel (``nn.Conv2d``); pool: P x P
  average, stride P, floor mode, no neuron after it; fc: ``I_t = a_t @ w (+ s_{t-1} @ w_rec)`` with a
  zero-diagonal ``w_rec``; li: ``y_t = kappa * y_{t-1} + a_t @ w + b``.
* Every layer processes step t at step t.
* Losses, mean over the batch as PyTorch reduces them: ``mse_rate`` (``nn.MSELoss`` of the rate
  ``sum_t s_t / T`` against the one-hot label, mean over batch and classes), ``ce_rate``
  (cross-entropy of the spike counts), ``ce_step`` (cross-entropy of ``y_t`` summed over t).

The forward pass runs layer by layer over all steps (a layer's input sequence is complete before the
layer runs: there are no top-down paths). The backward pass is written out by hand: the loss
gradient enters the output layer, each LIF layer is unrolled backwards in time, and each linear map
(conv, pool, fc, li) hands its input gradient to the layer below.

Validation: ``tests/tools/check_sdsnn_reference_torch.py`` (offline, not in CI; run with the torch
venv ``benchmarks/peers/.venvs/torch``, torch 2.13 CPU, float64) builds the same networks in PyTorch the
way the authors' code does (time loop outside, layers inside, ``F.conv2d`` / ``F.avg_pool2d`` /
``F.linear``, a custom ``autograd.Function`` for the rectangular surrogate, reset not detached, the
recurrent matrix masked by ``1 - I``) and compares loss, spikes, membranes and every gradient with
this module on 15 configurations x 3 random draws: conv+pool+fc, strided / padded / non-square
convolutions, pooling with a floor remainder, recurrent fc stacks, li readouts, all three losses,
Bernoulli, event-count and continuous graded inputs, and non-default decay / v_th / lens; every LIF
layer active (rates 0.05-0.8). Largest absolute difference over the 45 runs: gradients 3.6e-15 (largest
gradient entry per run 0.02-20), membranes 3.6e-15, loss 7.1e-15, spikes identical (li outputs 8.9e-16). The
same script with the reset detached on the torch side fails (gradients differ by 5e-3), so it does see
the reset path.
``tests/test_sdsnn_reference.py`` (CI) checks hand-computed cases and exact invariants without torch.
"""
from __future__ import annotations

import re

import numpy as np

KINDS = ("conv", "pool", "fc", "li")
LOSSES = ("mse_rate", "ce_rate", "ce_step")

_TOKEN_CONV = re.compile(r"conv(\d+)((?:[ksp]\d+)*)")
_TOKEN_POOL = re.compile(r"pool(\d+)")
_TOKEN_FC = re.compile(r"fc(\d+)(r?)")
_TOKEN_LI = re.compile(r"li(\d+)")


# ---------------------------------------------------------------------------------------------------
# geometry and the layer grammar

def conv_out_hw(in_hw, kernel, stride, padding):
    """Output (H, W) of a convolution: floor((H + 2 p - k) / s) + 1 per axis (PyTorch's formula)."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(in_hw, kernel, stride, padding))


def out_shape(layer):
    """The shape of a layer's output at one step: (C, H, W) for conv and pool, (n_out,) for fc and li."""
    kind = layer["kind"]
    if kind == "conv":
        c, h, w = layer["in_shape"]
        return (layer["channels"],) + conv_out_hw((h, w), layer["kernel"], layer["stride"], layer["padding"])
    if kind == "pool":
        c, h, w = layer["in_shape"]
        return (c, h // layer["pool"], w // layer["pool"])
    return (layer["n_out"],)


def in_size(layer):
    """Number of input values a layer reads at one step."""
    if layer["kind"] in ("conv", "pool"):
        return int(np.prod(layer["in_shape"]))
    return layer["n_in"]


def layer_specs(spec, in_shape):
    """Parse a layer spec string (``conv<C>[k<K>][s<S>][p<P>]``, ``pool<P>``, ``fc<N>[r]``, ``li<N>``
    joined by '-') into the layer dicts ``forward_backward`` takes.

    Parameters
    ----------
    spec : str
        e.g. ``"conv15-pool2-conv40-pool2-fc300-fc10"`` or ``"conv16k5s2p0-fc8r-li3"``. conv defaults:
        kernel 3, stride 1, padding 1 (square); each suffix at most once, in any order.
    in_shape : tuple of int
        (C, H, W) for a network that starts with conv or pool, (N,) (or (C, H, W)) for an fc start.

    Raises
    ------
    ValueError
        on an unknown token, a zero size, a conv / pool after an fc layer or on a flat input, an
        output smaller than 1 x 1, an ``li`` that is not last, or a last layer that is not fc / li.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"spec must be a non-empty string of '-'-joined layer tokens, got {spec!r}")
    shape = tuple(int(n) for n in in_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"in_shape must be (C, H, W) or (N,) with every entry >= 1, got {in_shape!r}")
    tokens = spec.split("-")
    layers = []
    for pos, tok in enumerate(tokens):
        where = f"layer token {tok!r} (position {pos} in {spec!r})"
        if m := _TOKEN_CONV.fullmatch(tok):
            channels = int(m.group(1))
            opts = {"k": 3, "s": 1, "p": 1}
            seen = set()
            for key, val in re.findall(r"([ksp])(\d+)", m.group(2)):
                if key in seen:
                    raise ValueError(f"{where}: suffix '{key}' given twice")
                seen.add(key)
                opts[key] = int(val)
            if channels < 1 or opts["k"] < 1 or opts["s"] < 1:
                raise ValueError(f"{where}: channels, kernel and stride must be >= 1")
            if len(shape) != 3:
                raise ValueError(f"{where}: conv needs a (C, H, W) input, gets a flat one of {shape[0]}")
            layer = {"kind": "conv", "in_shape": shape, "channels": channels, "kernel": (opts["k"],) * 2,
                     "stride": (opts["s"],) * 2, "padding": (opts["p"],) * 2}
            ho, wo = out_shape(layer)[1:]
            if ho < 1 or wo < 1:
                raise ValueError(f"{where}: output {ho}x{wo} from input {shape[1]}x{shape[2]} "
                                 f"(kernel {opts['k']}, stride {opts['s']}, padding {opts['p']}); must be >= 1x1")
        elif m := _TOKEN_POOL.fullmatch(tok):
            p = int(m.group(1))
            if p < 1:
                raise ValueError(f"{where}: pool size must be >= 1")
            if len(shape) != 3:
                raise ValueError(f"{where}: pool needs a (C, H, W) input, gets a flat one of {shape[0]}")
            if shape[1] < p or shape[2] < p:
                raise ValueError(f"{where}: pool {p} larger than its input {shape[1]}x{shape[2]}")
            layer = {"kind": "pool", "in_shape": shape, "pool": p}
        elif m := _TOKEN_FC.fullmatch(tok):
            n = int(m.group(1))
            if n < 1:
                raise ValueError(f"{where}: fc size must be >= 1")
            layer = {"kind": "fc", "n_in": int(np.prod(shape)), "n_out": n, "recurrent": m.group(2) == "r"}
        elif m := _TOKEN_LI.fullmatch(tok):
            n = int(m.group(1))
            if n < 1:
                raise ValueError(f"{where}: li size must be >= 1")
            if pos != len(tokens) - 1:
                raise ValueError(f"{where}: li is a readout and must be the last layer")
            layer = {"kind": "li", "n_in": int(np.prod(shape)), "n_out": n, "kappa": 0.8}
        else:
            raise ValueError(f"{where}: unknown token; allowed: conv<C>[k<K>][s<S>][p<P>], pool<P>, fc<N>[r], li<N>")
        layers.append(layer)
        shape = out_shape(layer)
    if layers[-1]["kind"] not in ("fc", "li"):
        raise ValueError(f"the last layer of {spec!r} must be fc<N> or li<N> (the output), got {tokens[-1]!r}")
    return layers


def init_params(layers, rng):
    """PyTorch's default initialisation: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in =
    C_in*kh*kw (conv) or n_in (fc, li); ``w_rec`` U(-1/sqrt(n_out), 1/sqrt(n_out)) with a zero diagonal.
    ``rng``: a ``numpy.random.Generator``. Returns a list aligned with ``layers`` (pool: ``{}``)."""
    params = []
    for layer in layers:
        kind = layer["kind"]
        if kind == "conv":
            ci = layer["in_shape"][0]
            kh, kw = layer["kernel"]
            bound = 1.0 / np.sqrt(ci * kh * kw)
            params.append({"kernel": rng.uniform(-bound, bound, (layer["channels"], ci, kh, kw)),
                           "bias": rng.uniform(-bound, bound, layer["channels"])})
        elif kind == "pool":
            params.append({})
        else:
            n, m = layer["n_in"], layer["n_out"]
            bound = 1.0 / np.sqrt(n)
            p = {"w": rng.uniform(-bound, bound, (n, m)), "bias": rng.uniform(-bound, bound, m)}
            if kind == "fc" and layer["recurrent"]:
                w_rec = rng.uniform(-1.0 / np.sqrt(m), 1.0 / np.sqrt(m), (m, m))
                np.fill_diagonal(w_rec, 0.0)
                p["w_rec"] = w_rec
            params.append(p)
    return params


# ---------------------------------------------------------------------------------------------------
# linear maps of one step (applied to [N, ...] with N = batch * steps) and their transposes

def _tap_window(i, j, out_hw, stride):
    """The slice of the padded input that kernel tap (i, j) reads for every output pixel."""
    (ho, wo), (sh, sw) = out_hw, stride
    return (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))


def conv2d(a, kernel, stride, padding):
    """Cross-correlation ``out[n, o, y, x] = sum_{c,i,j} kernel[o, c, i, j] * a_pad[n, c, y*sh + i, x*sw + j]``
    of ``a`` [N, C_in, H, W] with zero padding; no bias. Returns [N, C_out, H_out, W_out]."""
    co, ci, kh, kw = kernel.shape
    ph, pw = padding
    out_hw = conv_out_hw(a.shape[2:], (kh, kw), stride, padding)
    a_pad = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((a.shape[0], co) + out_hw)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", a_pad[_tap_window(i, j, out_hw, stride)], kernel[:, :, i, j])
    return out


def conv2d_backward(g_out, a, kernel, stride, padding):
    """Gradients of ``sum(g_out * conv2d(a, kernel, ...))``: returns (d/da [N, C_in, H, W], d/dkernel)."""
    co, ci, kh, kw = kernel.shape
    ph, pw = padding
    h, w = a.shape[2:]
    out_hw = g_out.shape[2:]
    a_pad = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    g_pad = np.zeros_like(a_pad)
    g_kernel = np.zeros_like(kernel)
    for i in range(kh):
        for j in range(kw):
            win = _tap_window(i, j, out_hw, stride)
            g_kernel[:, :, i, j] = np.einsum("nohw,nchw->oc", g_out, a_pad[win])
            g_pad[win] += np.einsum("nohw,oc->nchw", g_out, kernel[:, :, i, j])
    return g_pad[:, :, ph:ph + h, pw:pw + w], g_kernel


def avg_pool(a, p):
    """P x P block means of ``a`` [N, C, H, W], stride P, floor mode (trailing rows / columns dropped)."""
    n, c, h, w = a.shape
    ho, wo = h // p, w // p
    return a[:, :, :ho * p, :wo * p].reshape(n, c, ho, p, wo, p).mean(axis=(3, 5))


def avg_pool_backward(g_out, in_hw, p):
    """Gradient of ``sum(g_out * avg_pool(a, p))`` with respect to ``a`` [N, C, H, W]: each input in a
    block gets 1/P^2 of the block's gradient; the rows / columns floor mode drops get 0."""
    n, c, ho, wo = g_out.shape
    g = np.zeros((n, c) + tuple(in_hw))
    g[:, :, :ho * p, :wo * p] = np.repeat(np.repeat(g_out, p, axis=2), p, axis=3) / (p * p)
    return g


# ---------------------------------------------------------------------------------------------------
# neurons through time

def lif_forward(drive, w_rec, decay, v_th):
    """LIF over all steps. ``drive`` [B, T, n]: feed-forward input plus bias per step; ``w_rec`` [n, n]
    (pre, post) or None adds ``s_{t-1} @ w_rec``. Returns (u, s), both [B, T, n]; u is pre-reset."""
    b, t_steps, n = drive.shape
    u, s = np.zeros((b, t_steps, n)), np.zeros((b, t_steps, n))
    u_prev, s_prev = np.zeros((b, n)), np.zeros((b, n))
    for t in range(t_steps):
        i_t = drive[:, t] if w_rec is None else drive[:, t] + s_prev @ w_rec
        u_prev = decay * u_prev * (1.0 - s_prev) + i_t
        s_prev = (u_prev > v_th).astype(float)
        u[:, t], s[:, t] = u_prev, s_prev
    return u, s


def lif_backward(g_s, u, s, w_rec, decay, v_th, lens):
    """Unrolled backward pass of ``lif_forward``: ``g_s`` [B, T, n] is dL/ds_t from outside the layer
    (the layer above or the loss); returns dL/du_t [B, T, n] (= dL/dI_t, the gradient of the drive).

    s_t reaches u_{t+1} through the reset (d u_{t+1} / d s_t = -decay u_t) and, with recurrence, through
    I_{t+1} (``@ w_rec.T``); u_t reaches u_{t+1} through decay (1 - s_t) and s_t through the surrogate."""
    surrogate = (np.abs(u - v_th) < lens).astype(float)
    g_u = np.zeros_like(u)
    g_u_next = np.zeros_like(u[:, 0])                     # dL/du_T = 0: nothing after the last step
    for t in reversed(range(u.shape[1])):
        g_s_t = g_s[:, t] - decay * u[:, t] * g_u_next
        if w_rec is not None:
            g_s_t = g_s_t + g_u_next @ w_rec.T
        g_u_next = surrogate[:, t] * g_s_t + decay * (1.0 - s[:, t]) * g_u_next
        g_u[:, t] = g_u_next
    return g_u


def li_forward(drive, kappa):
    """Leaky integrator ``y_t = kappa y_{t-1} + drive_t``, y_{-1} = 0; ``drive`` [B, T, n]."""
    y = np.zeros_like(drive)
    y_prev = np.zeros_like(drive[:, 0])
    for t in range(drive.shape[1]):
        y_prev = kappa * y_prev + drive[:, t]
        y[:, t] = y_prev
    return y


def li_backward(g_y, kappa):
    """dL/d drive_t = sum_{t' >= t} kappa^(t'-t) dL/dy_t' from the per-step ``g_y`` [B, T, n]."""
    g = np.zeros_like(g_y)
    g_next = np.zeros_like(g_y[:, 0])
    for t in reversed(range(g_y.shape[1])):
        g_next = g_y[:, t] + kappa * g_next
        g[:, t] = g_next
    return g


# ---------------------------------------------------------------------------------------------------
# losses

def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def loss_and_grad(out, labels, loss):
    """Loss (float) and dL/d out [B, T, K] for the output sequence ``out`` (spikes, or y for ce_step)."""
    b, t_steps, k = out.shape
    onehot = np.eye(k)[labels]
    if loss == "mse_rate":
        diff = out.sum(axis=1) / t_steps - onehot
        g = np.broadcast_to((2.0 * diff / (b * k * t_steps))[:, None, :], out.shape)
        return float(np.mean(diff ** 2)), g.copy()
    if loss == "ce_rate":
        logp = _log_softmax(out.sum(axis=1))
        g = np.broadcast_to(((np.exp(logp) - onehot) / b)[:, None, :], out.shape)
        return float(-np.mean(logp[np.arange(b), labels])), g.copy()
    if loss == "ce_step":
        logp = _log_softmax(out)
        g = (np.exp(logp) - onehot[:, None, :]) / b
        return float(-logp[np.arange(b), :, labels].sum() / b), g
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


# ---------------------------------------------------------------------------------------------------
# checks

def _check(x, labels, layers, params, loss, T):
    if not layers:
        raise ValueError("layers must hold at least one layer")
    if len(params) != len(layers):
        raise ValueError(f"params must be aligned with layers: {len(params)} entries for {len(layers)} layers")
    if x.ndim != 3:
        raise ValueError(f"x must be [B, T, n_in], got shape {x.shape}")
    if T is not None and T != x.shape[1]:
        raise ValueError(f"T={T} disagrees with x's {x.shape[1]} steps (x is [B, T, n_in])")
    if x.shape[2] != in_size(layers[0]):
        raise ValueError(f"x has {x.shape[2]} inputs per step; layers[0] reads {in_size(layers[0])}")
    prev = None
    for l, (layer, p) in enumerate(zip(layers, params)):
        kind = layer.get("kind")
        if kind not in KINDS:
            raise ValueError(f"layers[{l}]['kind'] must be one of {KINDS}, got {kind!r}")
        if prev is not None:
            if in_size(layer) != int(np.prod(prev)):
                raise ValueError(f"layers[{l}] reads {in_size(layer)} values; layers[{l - 1}] gives {prev}")
            if kind in ("conv", "pool") and len(prev) == 3 and tuple(layer["in_shape"]) != prev:
                raise ValueError(f"layers[{l}]['in_shape'] {layer['in_shape']} != layers[{l - 1}]'s output {prev}")
        if kind == "li" and l != len(layers) - 1:
            raise ValueError(f"layers[{l}] is li: a readout, allowed only as the last layer")
        if kind in ("conv", "pool") and min(out_shape(layer)[1:]) < 1:
            raise ValueError(f"layers[{l}] ({kind}) has an empty output {out_shape(layer)}")
        expected = {}
        if kind == "conv":
            kh, kw = layer["kernel"]
            expected = {"kernel": (layer["channels"], layer["in_shape"][0], kh, kw), "bias": (layer["channels"],)}
        elif kind in ("fc", "li"):
            expected = {"w": (layer["n_in"], layer["n_out"]), "bias": (layer["n_out"],)}
            if kind == "fc" and layer["recurrent"]:
                expected["w_rec"] = (layer["n_out"], layer["n_out"])
        if set(p) != set(expected):
            raise ValueError(f"params[{l}] ({kind}) must have keys {sorted(expected)}, got {sorted(p)}")
        for key, shape in expected.items():
            if np.shape(p[key]) != shape:
                raise ValueError(f"params[{l}]['{key}'] has shape {np.shape(p[key])}, expected {shape}")
        if "w_rec" in p and np.any(np.diag(p["w_rec"]) != 0):
            raise ValueError(f"params[{l}]['w_rec'] must have a zero diagonal (no self-connections)")
        prev = out_shape(layer)
    last = layers[-1]["kind"]
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if (loss == "ce_step") != (last == "li"):
        raise ValueError(f"loss {loss!r} does not fit a last layer of kind {last!r}: "
                         "ce_step needs an li readout; mse_rate and ce_rate need an fc (LIF) output")
    n_classes = layers[-1]["n_out"]
    if labels.shape != (x.shape[0],) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be [B] = [{x.shape[0]}] ints in [0, {n_classes}), "
                         f"got shape {labels.shape}, range [{labels.min()}, {labels.max()}]")


# ---------------------------------------------------------------------------------------------------
# the whole network

def forward_backward(x, labels, layers, params, loss, T=None, *, decay=0.2, v_th=0.5, lens=0.5):
    """Forward pass, loss and surrogate-gradient BPTT of a layer stack.

    Parameters
    ----------
    x : array [B, T, n_in]
        input per step, channel-major flattened ((c*H + y)*W + x), graded values allowed.
    labels : int array [B]
    layers : list of dict
        as ``layer_specs`` returns them (see its docstring); conv kernel / stride / padding are
        (h, w) pairs.
    params : list of dict, aligned with layers
        conv {"kernel" [C_out, C_in, kh, kw], "bias" [C_out]}; pool {}; fc {"w" [n_in, n_out] (pre, post),
        "bias" [n_out], "w_rec" [n_out, n_out] (pre, post, zero diagonal; recurrent only)};
        li {"w" [n_in, n_out], "bias" [n_out]}.
    loss : {"mse_rate", "ce_rate", "ce_step"}
    T : int, optional
        number of steps; if given it must equal x.shape[1].
    decay, v_th, lens : float
        LIF decay per step, threshold, surrogate half-width (dimensionless).

    Returns
    -------
    dict
        "loss": float; "grads": list aligned with layers, same keys as params (``w_rec``'s diagonal 0);
        "spikes": per layer [B, T, n_out] (pool: the pooled values, li: y); "u": per LIF layer (conv and
        fc, in order; pool and li have none) [B, T, n], the membrane before the reset.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    _check(x, labels, layers, params, loss, T)
    b, t_steps, _ = x.shape
    params = [{k: np.asarray(v, dtype=np.float64) for k, v in p.items()} for p in params]

    # forward, layer by layer over all steps; inputs[l] is what layer l reads, [B, T, in_size]
    inputs, outputs, membranes = [], [], []
    a = x
    for layer, p in zip(layers, params):
        inputs.append(a)
        kind = layer["kind"]
        if kind == "conv":
            c, h, w = layer["in_shape"]
            co, ho, wo = out_shape(layer)
            drive = conv2d(a.reshape(b * t_steps, c, h, w), p["kernel"], layer["stride"], layer["padding"])
            drive = (drive + p["bias"][:, None, None]).reshape(b, t_steps, co * ho * wo)
            u, a = lif_forward(drive, None, decay, v_th)
            membranes.append(u)
        elif kind == "pool":
            c, h, w = layer["in_shape"]
            a = avg_pool(a.reshape(b * t_steps, c, h, w), layer["pool"]).reshape(b, t_steps, -1)
        elif kind == "fc":
            u, a = lif_forward(a @ p["w"] + p["bias"], p.get("w_rec"), decay, v_th)
            membranes.append(u)
        else:
            a = li_forward(a @ p["w"] + p["bias"], layer["kappa"])
        outputs.append(a)
    value, g_out = loss_and_grad(outputs[-1], labels, loss)

    # backward, top layer first; g_out is dL/d(output of the layer being processed), [B, T, n_out]
    grads = [None] * len(layers)
    lif_index = len(membranes)
    for l in reversed(range(len(layers))):
        layer, p, a_in = layers[l], params[l], inputs[l]
        kind = layer["kind"]
        if kind in ("conv", "fc"):
            lif_index -= 1
            g_drive = lif_backward(g_out, membranes[lif_index], outputs[l], p.get("w_rec"), decay, v_th, lens)
        if kind == "conv":
            c, h, w = layer["in_shape"]
            co, ho, wo = out_shape(layer)
            g4 = g_drive.reshape(b * t_steps, co, ho, wo)
            g_in, g_kernel = conv2d_backward(g4, a_in.reshape(b * t_steps, c, h, w), p["kernel"],
                                             layer["stride"], layer["padding"])
            grads[l] = {"kernel": g_kernel, "bias": g4.sum(axis=(0, 2, 3))}
            g_out = g_in.reshape(b, t_steps, c * h * w)
        elif kind == "pool":
            c, h, w = layer["in_shape"]
            _, ho, wo = out_shape(layer)
            g_in = avg_pool_backward(g_out.reshape(b * t_steps, c, ho, wo), (h, w), layer["pool"])
            grads[l] = {}
            g_out = g_in.reshape(b, t_steps, c * h * w)
        else:
            if kind == "li":
                g_drive = li_backward(g_out, layer["kappa"])
            grads[l] = {"w": np.einsum("btn,btm->nm", a_in, g_drive), "bias": g_drive.sum(axis=(0, 1))}
            if "w_rec" in p:
                s_prev = np.concatenate([np.zeros_like(outputs[l][:, :1]), outputs[l][:, :-1]], axis=1)
                g_rec = np.einsum("btn,btm->nm", s_prev, g_drive)
                np.fill_diagonal(g_rec, 0.0)                 # no self-connection: nothing to learn there
                grads[l]["w_rec"] = g_rec
            g_out = g_drive @ p["w"].T
    return {"loss": value, "grads": grads, "spikes": outputs, "u": membranes}
