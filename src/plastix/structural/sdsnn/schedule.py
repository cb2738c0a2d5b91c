"""Every constant of SD-SNN's structural development (the authors' released code) with the
authors' defaults, and the per-dataset variants of it.

Time is counted in *structure steps* ``t`` (0-based; by default one per training epoch, as in the authors'
code).  :meth:`SDSNNConfig.scaled` stretches or compresses every duration so that steps can run every N
batches (see its docstring for which constants scale and how).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

KINDS = ("fc", "conv")
VARIANTS = ("mnist", "nmnist", "dvs", "bc_cifar", "lab_cifar")


@dataclass(frozen=True)
class SDSNNSchedule:
    """Layer-independent constants (units: structure steps unless stated).

    Attributes
    ----------
    count_thre : int
        theta: consecutive steps a condition must hold before a spine bound moves (authors: 18).
    shrink : float
        Factor applied to both bounds after ``count_thre`` consecutive magnitude decreases (0.75).
    clip_after : int
        Weights are clipped into their bounds at steps ``t > clip_after`` (18; LAB-CIFAR 5).
    prune_after : int
        Regeneration and pruning run at steps ``t > prune_after`` (36).
    t0 : float
        Origin of the decaying rate and rising percentile, ``2 * count_thre + 1`` (37).
    conv_alpha_tau : float
        Conv rate: ``alpha(t) = conv_decay_scale * exp(-(t - t0) / conv_alpha_tau)`` (5).
    fc_alpha_tau, fc_alpha_switch : float
        fc rate: ``alpha(t) = fc_decay_scale * fc_alpha_scale * exp(-(t - t0) / fc_alpha_tau)`` for
        ``t <= fc_alpha_switch`` (1 and 60), else ``rate_scale * fc_alpha_floor``; ``fc_alpha_scale`` and
        ``fc_alpha_floor`` are per layer (:class:`LayerRule`).
    percentile_growth, percentile_tau, percentile_cap : float
        Regeneration percentile ``q(t) = min(cap, base + growth ** ((t - t0) / tau))`` in percent
        (1.1, 1, 99).
    rate_scale : float
        Multiplies the fc rate's constant floor (1; :meth:`SDSNNConfig.scaled` sets ``1 / factor``: the same
        increase per epoch).
    conv_decay_scale, fc_decay_scale : float
        Multiply the decaying conv / fc rate increments (1; :meth:`SDSNNConfig.scaled` sets them so that
        the sum of the increments over all steps equals the authors' sum over epochs).
    """

    count_thre: int = 18
    shrink: float = 0.75
    clip_after: int = 18
    prune_after: int = 36
    t0: float = 37.0
    conv_alpha_tau: float = 5.0
    fc_alpha_tau: float = 1.0
    fc_alpha_switch: float = 60.0
    percentile_growth: float = 1.1
    percentile_tau: float = 1.0
    percentile_cap: float = 99.0
    rate_scale: float = 1.0
    conv_decay_scale: float = 1.0
    fc_decay_scale: float = 1.0

    def __post_init__(self):
        if not isinstance(self.count_thre, int) or self.count_thre < 1:
            raise ValueError(f"count_thre must be an integer >= 1, got {self.count_thre!r}")
        if not 0.0 < self.shrink <= 1.0:
            raise ValueError(f"shrink must be in (0, 1], got {self.shrink!r}")
        for name in ("clip_after", "prune_after"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("conv_alpha_tau", "fc_alpha_tau", "percentile_tau", "rate_scale", "conv_decay_scale",
                     "fc_decay_scale"):
            v = getattr(self, name)
            if not (0.0 < v < math.inf):
                raise ValueError(f"{name} must be in (0, inf), got {v!r}")
        if not 0.0 < self.percentile_cap <= 100.0:
            raise ValueError(f"percentile_cap must be in (0, 100], got {self.percentile_cap!r}")

    def conv_alpha(self, t: float) -> float:
        """Rate increment factor of a conv layer at step ``t``."""
        return self.conv_decay_scale * math.exp(-(t - self.t0) / self.conv_alpha_tau)

    def fc_alpha(self, t: float, scale: float, floor: float) -> float:
        """Rate increment factor of an fc layer at step ``t`` (``scale``, ``floor`` from its :class:`LayerRule`)."""
        if t <= self.fc_alpha_switch:
            return self.fc_decay_scale * scale * math.exp(-(t - self.t0) / self.fc_alpha_tau)
        return self.rate_scale * floor

    def percentile(self, t: float, base: float) -> float:
        """Regeneration percentile q(t) in percent for a layer with percentile base ``base``."""
        return min(self.percentile_cap, base + self.percentile_growth ** ((t - self.t0) / self.percentile_tau))


@dataclass(frozen=True)
class LayerRule:
    """What SD-SNN does to one weight layer (authors' constants per variant: :func:`sdsnn_variant`).

    Attributes
    ----------
    kind : {"fc", "conv"}
        fc: pruning units are postsynaptic neurons, regeneration candidates single synapses; conv: units
        are output channels (filters), candidates whole (c_out, c_in) kernels scored by their signed sum.
    update_ranges, clip, prune, regrow : bool
        Which of the four mechanisms act on the layer (table 2.0 of the specification).
    p_init : float
        Pruning percentage at the first pruning step (percent of units; cumulative target).
    min_active : int
        K: a unit with fewer than K active incoming synapses counts as pruned in the rate formula.
    regrow_after : int
        R: a candidate regrows when its consecutive-qualification counter exceeds R (``> R``).
    percentile_base : float
        Base of the regeneration percentile (percent): conv 65, fc 60 (DVS 55).
    history : bool
        Exclude units pruned before from new pruning (fc, CIFAR conv); MNIST-family conv2 has none
        and re-masks all lowest-k filters every step.
    fc_alpha_scale, fc_alpha_floor : float
        fc rate amplitude and late floor (MNIST family 1 and 0.00075; CIFAR 0.5 and 0.0005).
    size, target_size : int or None
        Override the unit counts of the rate formula ``(size - P_l) / (target_size - P_{l+1})`` -- the
        authors' hard-coded 300, 40, 512, 10, 11.  None: the layer's real unit count, and the next pruned
        layer's (or, for the last pruned layer, ``target_size`` must be given: the next layer's size).
    """

    kind: str
    update_ranges: bool = True
    clip: bool = True
    prune: bool = True
    regrow: bool = True
    p_init: float = 0.0
    min_active: int = 20
    regrow_after: int = 18
    percentile_base: float = 60.0
    history: bool = True
    fc_alpha_scale: float = 1.0
    fc_alpha_floor: float = 0.00075
    size: int | None = None
    target_size: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 <= self.p_init <= 100.0:
            raise ValueError(f"p_init must be in [0, 100] (percent), got {self.p_init!r}")
        for name in ("min_active", "regrow_after"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not 0.0 <= self.percentile_base <= 100.0:
            raise ValueError(f"percentile_base must be in [0, 100] (percent), got {self.percentile_base!r}")
        for name in ("size", "target_size"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {v!r}")


@dataclass(frozen=True)
class SDSNNConfig:
    """A schedule and the rules of the participating layers, in network order (the rate formula's
    "next layer" is the next entry with ``prune=True``)."""

    schedule: SDSNNSchedule = field(default_factory=SDSNNSchedule)
    layers: Mapping[str, LayerRule] = field(default_factory=dict)

    def scaled(self, factor: float) -> "SDSNNConfig":
        """The same development with every duration multiplied by ``factor`` (> 0).

        Use ``factor = structure steps per epoch`` (e.g. ``batches_per_epoch / every``) to run steps every
        ``every`` batches while keeping the authors' timing in epochs, or ``factor < 1`` to compress the
        development into fewer steps.  Scaled (rounded to integers, at least 1 where a count):
        ``count_thre``, ``clip_after``, ``prune_after``, every layer's ``regrow_after`` (R),
        ``t0 = prune_after + 1``, ``fc_alpha_switch = t0 + 23 * factor``, the time constants
        ``conv_alpha_tau`` (5 f), ``fc_alpha_tau`` (f) and ``percentile_tau`` (f).  The decaying rate
        increments are multiplied so that their sum over all steps equals the authors' (a geometric sum:
        ``(1 - exp(-1 / (tau f))) / (1 - exp(-1 / tau))``; about ``1 / f`` for large ``f``, while for
        ``f < 1`` each step takes what the authors' ``1 / f`` epochs took, not ``1 / f`` times one epoch's
        first increment), the fc floor by ``1 / factor``.  Not scaled: ``shrink``, percentages, percentile
        bases and cap, K.
        """
        f = float(factor)
        if not (0.0 < f < math.inf):
            raise ValueError(f"factor must be in (0, inf), got {factor!r}")
        s = self.schedule
        thre = max(1, round(s.count_thre * f))
        clip_after = max(0, round(s.clip_after * f))
        prune_after = max(0, round(s.prune_after * f))
        t0 = prune_after + 1.0
        sched = replace(s, count_thre=thre, clip_after=clip_after, prune_after=prune_after, t0=t0,
                        conv_alpha_tau=s.conv_alpha_tau * f, fc_alpha_tau=s.fc_alpha_tau * f,
                        fc_alpha_switch=t0 + (s.fc_alpha_switch - s.t0) * f, percentile_tau=s.percentile_tau * f,
                        rate_scale=s.rate_scale / f,
                        conv_decay_scale=s.conv_decay_scale * _geometric_ratio(s.conv_alpha_tau, f),
                        fc_decay_scale=s.fc_decay_scale * _geometric_ratio(s.fc_alpha_tau, f))
        layers = {k: replace(r, regrow_after=max(1, round(r.regrow_after * f))) for k, r in self.layers.items()}
        return SDSNNConfig(sched, layers)


def _geometric_ratio(tau: float, f: float) -> float:
    """``sum_k exp(-k / tau) / sum_k exp(-k / (tau f))`` over k >= 0: what keeps the total of a decaying
    increment when its time constant is stretched by ``f`` (steps per epoch)."""
    return (1.0 - math.exp(-1.0 / (tau * f))) / (1.0 - math.exp(-1.0 / tau))


def sdsnn_variant(variant: str, *, static_conv_ranges: bool = True) -> SDSNNConfig:
    """The authors' constants for one of their data sets.

    ``variant``: "mnist", "nmnist", "dvs" (layers ``conv2``, ``fc1``, ``fc2``; fc2 is clipped only, with
    its initial range) or "bc_cifar", "lab_cifar" (``conv0`` ... ``conv5``, ``fc_prun``).
    ``static_conv_ranges`` (CIFAR only): replicate the authors' quirk that conv ranges never update after
    step 0 (their range update sits inside the last layer's branch), so conv pruning ties are broken by
    index order; False updates them like fc_prun's.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant in ("mnist", "nmnist", "dvs"):
        p_fc = {"mnist": 35.0, "nmnist": 45.0, "dvs": 60.0}[variant]
        classes = 11 if variant == "dvs" else 10
        # N-MNIST: the authors' main.py comments the regeneration call out (both layers)
        conv2 = LayerRule("conv", p_init=5.0, min_active=10, regrow_after=18, percentile_base=65.0, history=False,
                          regrow=variant != "nmnist", size=40, target_size=300)
        fc1 = LayerRule("fc", p_init=p_fc, min_active=20, regrow_after=10,
                        percentile_base=55.0 if variant == "dvs" else 60.0, regrow=variant != "nmnist",
                        size=300, target_size=classes)
        fc2 = LayerRule("fc", update_ranges=False, clip=True, prune=False, regrow=False)
        return SDSNNConfig(SDSNNSchedule(), {"conv2": conv2, "fc1": fc1, "fc2": fc2})
    bc = variant == "bc_cifar"
    sched = SDSNNSchedule(clip_after=18 if bc else 5)
    layers = {}
    for i in range(6):
        layers[f"conv{i}"] = LayerRule("conv", update_ranges=not static_conv_ranges, p_init=0.5, min_active=20,
                                       regrow_after=18, percentile_base=65.0, history=True)
    layers["fc_prun"] = LayerRule("fc", p_init=2.0 if bc else 3.0, min_active=50 if bc else 20, regrow_after=18,
                                  percentile_base=60.0, history=True, fc_alpha_scale=0.5, fc_alpha_floor=0.0005,
                                  size=512, target_size=10)
    return SDSNNConfig(sched, layers)
