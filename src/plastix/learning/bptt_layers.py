"""Layer stacks of the surrogate-gradient BPTT trainer, written as a spec string.

Tokens joined by ``-`` (the SD-SNN authors' MNIST network: ``conv15-pool2-conv40-pool2-fc300-fc10``):

* ``conv<C>[k<K>][s<S>][p<P>]`` -- a 2-D convolution to ``C`` channels (kernel 3, stride 1, padding 1 unless
  given), bias per channel, then SD-SNN's LIF;
* ``pool<P>`` -- ``P x P`` average pooling (stride ``P``) of the spikes, no neuron after it;
* ``fc<N>`` -- a fully connected layer of ``N`` LIF neurons with bias; ``fc<N>r`` adds a recurrent
  projection from the layer's own spikes of the previous step (no self-connections);
* ``li<N>`` -- (last only) a leaky-integrator readout of ``N`` classes (no spikes).

Neurons are laid out channel-major (``(c * H + y) * W + x``), so an ``fc`` after a conv or pool layer reads
the flattened map as PyTorch's ``flatten`` does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..model.conv import AvgPool2D, Conv2D

_TOKEN = re.compile(r"^(conv|pool|fc|li)(\d+)((?:[ksp]\d+)*)(r?)$")
_OPTION = re.compile(r"([ksp])(\d+)")


class LayerSpecError(ValueError):
    """A layer spec string that does not describe a valid stack for its input."""


@dataclass(frozen=True)
class Layer:
    """One layer of a stack: ``kind`` (conv / pool / fc / li), its ``name`` (``conv1``, ``pool1``, ``fc2``,
    ``readout``), ``in_shape`` / ``out_shape`` ((C, H, W) or (N,)), ``recurrent`` (fc), and the
    connectivity from the layer below (:class:`~plastix.model.conv.Conv2D`, :class:`AvgPool2D`, or None
    for fc / li, which connect to every neuron below)."""

    kind: str
    name: str
    in_shape: tuple
    out_shape: tuple
    recurrent: bool = False
    geometry: Conv2D | AvgPool2D | None = None

    @property
    def size(self) -> int:
        """Neurons of the layer."""
        return math.prod(self.out_shape)

    @property
    def in_size(self) -> int:
        """Neurons of the layer below."""
        return math.prod(self.in_shape)

    @property
    def spiking(self) -> bool:
        """Has LIF neurons (conv, fc); pool passes values on, li integrates."""
        return self.kind in ("conv", "fc")

    @property
    def trainable(self) -> bool:
        return self.kind != "pool"


def parse_layers(spec: str, in_shape) -> list[Layer]:
    """The layers of ``spec`` on an input of shape ``in_shape`` ((C, H, W) images or (N,) vectors).

    Raises :class:`LayerSpecError` naming the token for an unknown token, a conv / pool on a flat input,
    a geometry that does not fit its input, ``li`` anywhere but last, or a stack that does not end in an
    ``fc`` or ``li`` output layer."""
    if not isinstance(spec, str) or not spec.strip():
        raise LayerSpecError(f"layers must be a non-empty spec string such as 'conv15-pool2-fc300-fc10', got {spec!r}")
    shape = tuple(int(d) for d in (in_shape if isinstance(in_shape, (tuple, list)) else (in_shape,)))
    if len(shape) not in (1, 3) or any(d < 1 for d in shape):
        raise LayerSpecError(f"input shape must be (C, H, W) or (N,) with positive sizes, got {in_shape!r}")
    tokens = spec.strip().split("-")
    counts: dict[str, int] = {}
    layers: list[Layer] = []
    for i, tok in enumerate(tokens):
        m = _TOKEN.match(tok)
        if m is None:
            raise LayerSpecError(f"layer token {tok!r} (#{i + 1} of {spec!r}) is not conv<C>[k<K>][s<S>][p<P>], "
                                 "pool<P>, fc<N>[r] or li<N>")
        kind, n, opts, rec = m.group(1), int(m.group(2)), m.group(3), bool(m.group(4))
        if n < 1:
            raise LayerSpecError(f"layer token {tok!r}: the size must be >= 1")
        options = dict((k, int(v)) for k, v in _OPTION.findall(opts))
        if opts and kind != "conv":
            raise LayerSpecError(f"layer token {tok!r}: k/s/p options belong to conv layers only")
        if rec and kind != "fc":
            raise LayerSpecError(f"layer token {tok!r}: only fc layers can be recurrent ('r')")
        if kind == "li" and i != len(tokens) - 1:
            raise LayerSpecError(f"layer token {tok!r}: an li readout must be the last layer")
        counts[kind] = counts.get(kind, 0) + 1
        name = "readout" if kind == "li" else f"{kind}{counts[kind]}"
        if kind in ("conv", "pool"):
            if len(shape) != 3:
                raise LayerSpecError(f"layer {tok!r} needs an image input (C, H, W) but the layer below gives "
                                     f"{shape}: conv and pool layers come before the fc layers")
            try:
                if kind == "conv":
                    geo = Conv2D(shape, channels=n, kernel=options.get("k", 3), stride=options.get("s", 1),
                                 padding=options.get("p", 1))
                else:
                    geo = AvgPool2D(shape, pool=n)
                out = tuple(geo.out_shape)
            except ValueError as e:
                raise LayerSpecError(f"layer {tok!r} on input {shape}: {e}") from None
            layers.append(Layer(kind, name, shape, out, geometry=geo))
        else:
            out = (n,)
            layers.append(Layer(kind, name, shape, out, recurrent=rec))
        shape = out
    if layers[-1].kind not in ("fc", "li"):
        raise LayerSpecError(f"the last layer of {spec!r} must be the output: fc<classes> or li<classes>")
    if layers[-1].size < 2:
        raise LayerSpecError(f"the output layer of {spec!r} needs >= 2 classes")
    return layers
