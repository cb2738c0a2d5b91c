"""Convolution and average pooling as sparse projections (GeNN's approach to conv layers).

A 2-D cross-correlation (PyTorch ``nn.Conv2d`` semantics: zero padding, no dilation, no groups) is a
sparse projection: presynaptic neuron ``(c_in, y, x)`` reaches postsynaptic neuron ``(c_out, oy, ox)``
exactly when ``ky = y + padding - oy * stride`` lies in ``[0, kh)`` and likewise ``kx``, through kernel
entry ``K[c_out, c_in, ky, kx]``.  Neurons are laid out channel-major: ``(c, y, x)`` has index
``(c * H + y) * W + x``, so flattening a conv layer's output for a fully connected layer is the identity.

Each synapse of a :class:`Conv2D` projection carries its flat kernel index ``kidx`` (into a kernel of
shape ``[C_out, C_in, kh, kw]``) as a per-synapse int32 variable of :func:`conv_synapse`; ``w`` is a
per-synapse copy of ``K.flat[kidx]`` (the engine's kernels read ``w``), kept equal to the kernel by
:func:`plastix.conv.tie`.  Structural changes (``plastix.conv.prune_channel`` / ``regrow_slice``) and
row compaction move ``kidx`` with its synapse like every other per-synapse variable.

:class:`AvgPool2D` is a fixed projection with weight ``1 / (pool height * pool width)`` from each
channel to the same channel of a pooled grid (pooling of spikes, as SD-SNN does).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .checks import check_sizes
from .connectivity import Connectivity
from ..errors import NetworkError
from .specs import Var, VarAccess, WeightUpdateModel

__all__ = ["Conv2D", "AvgPool2D", "conv_synapse", "add_conv2d", "add_avg_pool2d", "channel_indices"]

#: Work arrays of the synapse enumeration are kept below about this many synapses per block.
_BLOCK_SYNAPSES = 1 << 22


# --------------------------------------------------------------------------------------------------
# argument checks


def _positive_int(name: str, value, what: str = "a positive integer") -> int:
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be {what} (>= 1), got {v}")
    return int(v)


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a (height, width) pair."""
    try:
        items = (value, value) if np.ndim(value) == 0 else tuple(value)
        if len(items) != 2:
            raise TypeError
        a, b = operator.index(items[0]), operator.index(items[1])
    except TypeError:
        raise ValueError(f"{name} must be an integer or a pair (height, width) of integers >= {minimum}, "
                         f"got {value!r}") from None
    if a < minimum or b < minimum:
        raise ValueError(f"{name} must be >= {minimum} (an integer or a pair (height, width)), got {value!r}")
    return int(a), int(b)


def _in_shape(value) -> tuple[int, int, int]:
    try:
        c, h, w = (operator.index(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"in_shape must be (channels, height, width), three positive integers, "
                         f"got {value!r}") from None
    if min(c, h, w) < 1:
        raise ValueError(f"in_shape must be (channels, height, width), three positive integers (>= 1), "
                         f"got {value!r}")
    return int(c), int(h), int(w)


def _out_size(axis: str, size: int, k: int, s: int, p: int, kname: str) -> int:
    if k > size + 2 * p:
        raise ValueError(f"{kname} {axis} {k} is larger than the padded input {axis} {size + 2 * p} "
                         f"(in_shape {axis} {size} + 2 * padding {p}); {kname} {axis} must be in "
                         f"[1, {size + 2 * p}]")
    return (size + 2 * p - k) // s + 1


def _axis_windows(size: int, k: int, s: int, p: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """For every input coordinate y in [0, size): the first output coordinate whose window covers it and
    how many consecutive ones do (windows of output o cover o*s - p .. o*s - p + k - 1)."""
    num = np.arange(size, dtype=np.int64) + p
    lo = np.maximum(0, -((k - 1 - num) // s))  # ceil((num - k + 1) / s), at least 0
    hi = np.minimum(out - 1, num // s)
    return lo, np.maximum(hi - lo + 1, 0)


# --------------------------------------------------------------------------------------------------
# the shared enumeration


@dataclass(frozen=True)
class _Windows:
    """Sliding windows of ``kernel`` x ``stride`` x ``padding`` over a (C, H, W) grid."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ylo, ny, xlo, nx)``: per input row / column the first output row / column whose window covers
        it and how many do."""
        (_, h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = (self.in_shape, self.kernel, self.stride, self.padding,
                                                             self.out_hw)
        return _axis_windows(h, kh, sh, ph, ho) + _axis_windows(w, kw, sw, pw, wo)

    def enumerate(self, pre_channels: np.ndarray, out_channels: np.ndarray, kernel_index: bool):
        """Synapses from the rows of ``pre_channels`` to, for the ``r``-th of them, output channels
        ``out_channels[r]`` (sorted), in row order with ascending post within a row.

        Returns ``(pre, post, kidx)`` int64 (``kidx`` None unless ``kernel_index``).

        Input rows ``y`` whose windows have the same count ``ny`` and the same first tap ``ky0`` (the
        border rows, and all interior rows of a stride-1 layer) form one class; likewise columns.  Within
        a (row class, column class) pair every presynaptic neuron's targets are its own base plus one
        shared pattern, and so are their kernel indices: each pair is written with one broadcast."""
        c_in, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw), (ho, wo) = self.kernel, self.stride, self.padding, self.out_hw
        ylo, ny, xlo, nx = self.axes()
        ky0 = np.arange(h) + ph - ylo * sh  # kernel row of the first output window covering y
        kx0 = np.arange(w) + pw - xlo * sw
        m = out_channels.shape[1]
        hw = h * w
        rows = (pre_channels[:, None] * hw + np.arange(hw)[None, :]).ravel()
        lengths = np.tile(m * (ny[:, None] * nx[None, :]).ravel(), pre_channels.size)
        n = int(lengths.sum())
        starts = np.cumsum(lengths) - lengths  # in the output, per row of ``rows`` (local order)
        pre = np.repeat(rows, lengths)
        post = np.empty(n, np.int64)
        kidx = np.empty(n, np.int64) if kernel_index else None
        y_classes = _classes(ny, ky0)
        x_classes = _classes(nx, kx0)
        for r in range(pre_channels.size):
            ci, couts = int(pre_channels[r]), out_channels[r]
            for ys in y_classes:
                cy = int(ny[ys[0]])
                if cy == 0:
                    continue
                for xs in x_classes:
                    cx = int(nx[xs[0]])
                    if cx == 0:
                        continue
                    co, a, b = (g.ravel() for g in np.meshgrid(couts, np.arange(cy), np.arange(cx), indexing="ij"))
                    post_pattern = (co * ho + a) * wo + b
                    local = (r * hw + ys[:, None] * w + xs[None, :]).ravel()  # rows of this class pair
                    post_base = (ylo[ys][:, None] * wo + xlo[xs][None, :]).ravel()
                    k_pattern = co * (c_in * kh * kw) - a * (sh * kw) - b * sw
                    k_base = ci * kh * kw + int(ky0[ys[0]]) * kw + int(kx0[xs[0]])
                    step = max(1, _BLOCK_SYNAPSES // post_pattern.size)
                    for c0 in range(0, local.size, step):  # bounded temporaries
                        sl = slice(c0, c0 + step)
                        dest = starts[local[sl]][:, None] + np.arange(post_pattern.size)[None, :]
                        post[dest] = post_base[sl][:, None] + post_pattern[None, :]
                        if kernel_index:
                            kidx[dest] = k_base + k_pattern
        return pre, post, kidx


def _classes(count: np.ndarray, first_tap: np.ndarray) -> list[np.ndarray]:
    """The input rows (or columns) grouped by (window count, first kernel tap)."""
    _, which = np.unique(np.stack([count, first_tap], axis=1), axis=0, return_inverse=True)
    which = which.ravel()
    return [np.nonzero(which == k)[0] for k in range(int(which.max(initial=-1)) + 1)]


# --------------------------------------------------------------------------------------------------
# Conv2D


@dataclass(frozen=True)
class Conv2D(Connectivity):
    """The synapses of a 2-D cross-correlation, each carrying its kernel index.

    Parameters
    ----------
    in_shape : (C_in, H, W)
        Shape of the presynaptic population (channel-major, ``C_in * H * W`` neurons).
    channels : int
        Output channels ``C_out``.
    kernel : int or (kh, kw)
        Kernel size; each of ``kh`` / ``kw`` must be at most the padded input height / width.
    stride : int or (sh, sw)
        Step between output positions, >= 1.
    padding : int or (ph, pw)
        Zeros added on each side, >= 0 (no synapses reach into the padding).

    The postsynaptic population has ``C_out * H_out * W_out`` neurons, ``H_out = (H + 2 ph - kh) // sh + 1``
    (likewise ``W_out``).  ``build`` returns the synapses in row order with ascending post within a row;
    :meth:`synapse_init` gives ``w`` and ``kidx`` in the same order for the projection's ``init``
    (:func:`add_conv2d` does both).
    """

    in_shape: tuple[int, int, int]
    channels: int
    kernel: Any = 3
    stride: Any = 1
    padding: Any = 0

    is_random: ClassVar[bool] = False

    def __post_init__(self):
        c_in, h, w = _in_shape(self.in_shape)
        object.__setattr__(self, "in_shape", (c_in, h, w))
        object.__setattr__(self, "channels", _positive_int("channels", self.channels))
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel, 1))
        object.__setattr__(self, "stride", _pair("stride", self.stride, 1))
        object.__setattr__(self, "padding", _pair("padding", self.padding, 0))
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        ho = _out_size("height", h, kh, sh, ph, "kernel")
        wo = _out_size("width", w, kw, sw, pw, "kernel")
        if self.channels * c_in * kh * kw > np.iinfo(np.int32).max:
            raise ValueError(f"the kernel has {self.channels * c_in * kh * kw} entries; kidx is int32, so "
                             f"C_out * C_in * kh * kw must be < 2**31")
        object.__setattr__(self, "_windows", _Windows((c_in, h, w), self.kernel, self.stride, self.padding,
                                                      (ho, wo)))

    # -- shapes ----------------------------------------------------------------------------------------
    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C_out, H_out, W_out) of the postsynaptic population."""
        return (self.channels,) + self._windows.out_hw

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """(C_out, C_in, kh, kw), the shape of the shared weight that ``kidx`` indexes (flat, C order)."""
        return (self.channels, self.in_shape[0]) + self.kernel

    @property
    def num_pre(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def num_post(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def num_synapses(self) -> int:
        """Synapses of the full projection (the kernel entries times the positions they reach)."""
        _, ny, _, nx = self._windows.axes()
        return int(self.channels * self.in_shape[0] * ny.sum() * nx.sum())

    def check_sizes(self, num_pre: int, num_post: int) -> None:
        """ValueError unless the populations are ``C_in * H * W`` and ``C_out * H_out * W_out`` neurons."""
        num_pre, num_post = check_sizes(num_pre, num_post)
        _check_population("pre", num_pre, self.num_pre, "in_shape", self.in_shape, "C_in * H * W")
        _check_population("post", num_post, self.num_post, "out_shape", self.out_shape, "C_out * H_out * W_out")

    # -- the Connectivity protocol ---------------------------------------------------------------------
    def max_row_length(self, num_pre: int, num_post: int) -> int:
        self.check_sizes(num_pre, num_post)
        _, ny, _, nx = self._windows.axes()
        return int(self.channels * ny.max() * nx.max())

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        self.check_sizes(num_pre, num_post)
        cins = np.arange(self.in_shape[0], dtype=np.int64)
        couts = np.broadcast_to(np.arange(self.channels, dtype=np.int64), (cins.size, self.channels))
        pre, post, _ = self._windows.enumerate(cins, couts, kernel_index=False)
        return pre, post

    # -- synapses and their kernel indices ------------------------------------------------------------
    def synapses(self, c_out=None, c_in=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pre, post, kidx)`` (int64) of every synapse, in ``build`` order; with ``c_out`` / ``c_in``
        (an int or a sequence of ints) only those output / input channels' synapses (the kernel slices
        ``K[c_out, c_in]``), still in row order."""
        c_in_all = self.in_shape[0]
        cins = channel_indices("c_in", c_in, c_in_all)
        couts = channel_indices("c_out", c_out, self.channels)
        out = np.broadcast_to(couts, (cins.size, couts.size))
        return self._windows.enumerate(cins, out, kernel_index=True)

    def kernel_index(self) -> np.ndarray:
        """Flat kernel index of every synapse, in ``build`` order (int64)."""
        return self.synapses()[2]

    def check_kernel(self, kernel) -> np.ndarray:
        """``kernel`` as a float64 array of :attr:`kernel_shape`, checked (shape, finite values)."""
        arr = np.asarray(kernel, dtype=np.float64)
        if arr.shape != self.kernel_shape:
            raise ValueError(f"kernel must have shape (C_out, C_in, kh, kw) = {self.kernel_shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("kernel values must be finite (found NaN or inf)")
        return arr

    def synapse_init(self, kernel) -> dict[str, np.ndarray]:
        """``{"w": K.flat[kidx], "kidx": kidx}`` in ``build`` order: the ``init`` of a projection built
        with this connectivity and :func:`conv_synapse`."""
        k = self.check_kernel(kernel)
        kidx = self.kernel_index()
        return {"w": k.ravel()[kidx], "kidx": kidx.astype(np.int32)}

    # -- bias per output channel -----------------------------------------------------------------------
    def channel_of_post(self) -> np.ndarray:
        """Output channel of every postsynaptic neuron, [C_out * H_out * W_out] (int64)."""
        return np.repeat(np.arange(self.channels, dtype=np.int64), self.num_post // self.channels)

    def channel_neurons(self, c_out: int) -> slice:
        """The postsynaptic neurons of output channel ``c_out`` (a contiguous range)."""
        c = channel_indices("c_out", c_out, self.channels)
        if c.size != 1:
            raise ValueError(f"c_out must be one channel in [0, {self.channels}), got {c_out!r}")
        plane = self.num_post // self.channels
        return slice(int(c[0]) * plane, (int(c[0]) + 1) * plane)

    def bias_per_neuron(self, bias) -> np.ndarray:
        """A bias per output channel, [C_out], spread to every neuron of its channel (e.g. for a neuron
        model's ``bias`` variable), [C_out * H_out * W_out]."""
        b = np.asarray(bias, dtype=np.float64)
        if b.shape != (self.channels,):
            raise ValueError(f"bias must have shape (C_out,) = ({self.channels},), got {b.shape}")
        return np.repeat(b, self.num_post // self.channels)

    def sum_per_channel(self, per_neuron) -> np.ndarray:
        """Sum of a per-neuron array (e.g. the gradient of the loss with respect to each neuron's bias)
        over each output channel's neurons: the gradient of the shared per-channel bias, [C_out]."""
        v = np.asarray(per_neuron, dtype=np.float64)
        if v.shape[-1:] != (self.num_post,):
            raise ValueError(f"per_neuron must have {self.num_post} values (C_out * H_out * W_out) on its last "
                             f"axis, got shape {v.shape}")
        return v.reshape(v.shape[:-1] + (self.channels, -1)).sum(axis=-1)


# --------------------------------------------------------------------------------------------------
# AvgPool2D


@dataclass(frozen=True)
class AvgPool2D(Connectivity):
    """Average pooling of each channel: input ``(c, y, x)`` reaches output ``(c, oy, ox)`` when it lies in
    that output's ``pool`` window (PyTorch ``nn.AvgPool2d``, no padding, floor mode), with the fixed
    weight :attr:`weight` = ``1 / (ph * pw)``.

    Parameters
    ----------
    in_shape : (C, H, W)
        Shape of the presynaptic population (channel-major).
    pool : int or (ph, pw)
        Window size, at most the input height / width.
    stride : int or (sh, sw), optional
        Step between windows (default: ``pool``, non-overlapping windows).  Inputs that no window covers
        (the last rows / columns when ``H - ph`` is not a multiple of ``sh``) have no synapses.
    """

    in_shape: tuple[int, int, int]
    pool: Any = 2
    stride: Any = None

    is_random: ClassVar[bool] = False

    def __post_init__(self):
        c, h, w = _in_shape(self.in_shape)
        object.__setattr__(self, "in_shape", (c, h, w))
        object.__setattr__(self, "pool", _pair("pool", self.pool, 1))
        object.__setattr__(self, "stride", self.pool if self.stride is None else _pair("stride", self.stride, 1))
        (kh, kw), (sh, sw) = self.pool, self.stride
        ho = _out_size("height", h, kh, sh, 0, "pool")
        wo = _out_size("width", w, kw, sw, 0, "pool")
        object.__setattr__(self, "_windows", _Windows((c, h, w), self.pool, self.stride, (0, 0), (ho, wo)))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H_out, W_out) of the postsynaptic population."""
        return (self.in_shape[0],) + self._windows.out_hw

    @property
    def weight(self) -> float:
        """The weight of every synapse, 1 / (pool height * pool width)."""
        return 1.0 / (self.pool[0] * self.pool[1])

    @property
    def num_pre(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def num_post(self) -> int:
        return int(np.prod(self.out_shape))

    def check_sizes(self, num_pre: int, num_post: int) -> None:
        """ValueError unless the populations are ``C * H * W`` and ``C * H_out * W_out`` neurons."""
        num_pre, num_post = check_sizes(num_pre, num_post)
        _check_population("pre", num_pre, self.num_pre, "in_shape", self.in_shape, "C * H * W")
        _check_population("post", num_post, self.num_post, "out_shape", self.out_shape, "C * H_out * W_out")

    def max_row_length(self, num_pre: int, num_post: int) -> int:
        self.check_sizes(num_pre, num_post)
        _, ny, _, nx = self._windows.axes()
        return int(ny.max() * nx.max())

    def build(self, num_pre: int, num_post: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        self.check_sizes(num_pre, num_post)
        chans = np.arange(self.in_shape[0], dtype=np.int64)
        pre, post, _ = self._windows.enumerate(chans, chans[:, None], kernel_index=False)
        return pre, post

    def synapse_init(self) -> dict[str, float]:
        """``{"w": weight}``: the ``init`` of a static projection built with this connectivity."""
        return {"w": self.weight}


def _check_population(role: str, size: int, need: int, shape_name: str, shape, formula: str) -> None:
    if size != need:
        raise ValueError(f"num_{role} ({role} population size) must be {formula} = {need} for {shape_name} "
                         f"{shape}, got {size}")


def channel_indices(name: str, value, limit: int) -> np.ndarray:
    """None (every channel), an int or a sequence of ints in [0, limit) as a sorted unique int64 array."""
    if value is None:
        return np.arange(limit, dtype=np.int64)
    arr = np.atleast_1d(np.asarray(value))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer or a non-empty sequence of integers in [0, {limit}), "
                         f"got {value!r}")
    bad = arr[(arr < 0) | (arr >= limit)]
    if bad.size:
        raise ValueError(f"{name} must be in [0, {limit}), got {int(bad[0])}")
    return np.unique(arr.astype(np.int64))


# --------------------------------------------------------------------------------------------------
# weight-update model and projection helpers


def _conv_on_pre(s):
    add_to_post(s.w)  # noqa: F821  (provided by code generation)


def conv_synapse() -> WeightUpdateModel:
    """Static transmission through a shared kernel: every presynaptic spike adds ``w`` to its targets'
    input; ``kidx`` (int32, read-only for model code) is the synapse's flat index into the kernel
    ``[C_out, C_in, kh, kw]``, and ``w`` its copy of that kernel entry (``plastix.conv.tie`` writes it)."""
    return WeightUpdateModel(
        name="conv_synapse",
        vars={"w": Var(0.0, doc="copy of the kernel entry K.flat[kidx]"),
              "kidx": Var(0, "int32", doc="flat index into the kernel [C_out, C_in, kh, kw]",
                          access=VarAccess.READ_ONLY)},
        on_pre=_conv_on_pre, doc=conv_synapse.__doc__)


def _population_size(net, pop) -> int:
    p = net.populations.get(pop) if isinstance(pop, str) else pop
    return getattr(p, "size", None)


def add_conv2d(net, name: str, pre, post, conv: Conv2D, kernel, *, postsynaptic=None, psm_params=None,
               delay: int = 0, headroom: float = 1.0, row_stride: int | None = None):
    """Add a :class:`Conv2D` projection with :func:`conv_synapse` weights tied to ``kernel``
    ([C_out, C_in, kh, kw]) to ``net`` and return it.

    ``headroom`` / ``row_stride`` size the rows as in :meth:`~plastix.Network.add_projection`: pruning and
    regrowing kernel slices (``plastix.conv``) reuses the slots the build filled, so 1.0 suffices unless
    something else adds synapses to the rows.
    """
    if not isinstance(conv, Conv2D):
        raise NetworkError(f"projection {name!r}: conv must be a Conv2D, got {type(conv).__name__}")
    sizes = (_population_size(net, pre), _population_size(net, post))
    if None not in sizes:
        try:
            conv.check_sizes(*sizes)
        except ValueError as e:
            raise NetworkError(f"projection {name!r}: {e}") from None
    return net.add_projection(name, pre, post, connectivity=conv, weight_update=conv_synapse(),
                              postsynaptic=postsynaptic, psm_params=psm_params, init=conv.synapse_init(kernel),
                              delay=delay, headroom=headroom, row_stride=row_stride)


def add_avg_pool2d(net, name: str, pre, post, pool: AvgPool2D, *, postsynaptic=None, psm_params=None,
                   delay: int = 0):
    """Add an :class:`AvgPool2D` projection (static weights ``pool.weight``) to ``net`` and return it."""
    if not isinstance(pool, AvgPool2D):
        raise NetworkError(f"projection {name!r}: pool must be an AvgPool2D, got {type(pool).__name__}")
    sizes = (_population_size(net, pre), _population_size(net, post))
    if None not in sizes:
        try:
            pool.check_sizes(*sizes)
        except ValueError as e:
            raise NetworkError(f"projection {name!r}: {e}") from None
    return net.add_projection(name, pre, post, connectivity=pool, postsynaptic=postsynaptic,
                              psm_params=psm_params, init=pool.synapse_init(), delay=delay)
