"""The per-step driver: SD-SNN's structural development over a network's participating layers, in the
authors' order (specification 2.6), and the pruning-rate measurement (specification 3)."""
from __future__ import annotations

from typing import Mapping

from .layers import MODES, ConvLayer, FCLayer, Outgoing
from .schedule import SDSNNConfig
from .scoring import rate_increment
from .storage import KernelArrays


class SDSNN:
    """SD-SNN's structural development for the layers of ``config`` (network order).

    Parameters
    ----------
    config : SDSNNConfig
        Schedule and one :class:`~.schedule.LayerRule` per layer (e.g. :func:`~.schedule.sdsnn_variant`).
    storages : mapping name -> storage
        For each layer of ``config``: an fc layer's projection storage (:class:`~.storage.RaggedArrays`,
        :class:`~.engine.SimulationArrays`) or a conv layer's :class:`~.storage.KernelArrays`.
    mode : {"faithful", "sparse"}
        See :mod:`.layers`.
    outgoing : mapping name -> Outgoing, optional
        Sparse mode: the projection each layer's units send to (dead units' synapses leave it).
    biases : mapping name -> bias, optional
        Sparse mode: an object with ``zero(dead_units)`` (:class:`~.layers.ArrayBias`,
        :class:`~.engine.SimulationBias`); dead units' biases are set to 0 at every step.  Training must
        not move them in between (mask their gradient with :meth:`dead_units`), or they are 0 again at the
        next step.
    weight : str
        Name of the weight among an fc storage's per-synapse variables.

    Call :meth:`structure_step` with ``t = 0, 1, 2, ...`` -- after every training epoch, or every N batches
    with :meth:`SDSNNConfig.scaled` constants.
    """

    def __init__(self, config: SDSNNConfig, storages: Mapping, mode: str = "faithful", *,
                 outgoing: Mapping[str, Outgoing] | None = None, biases: Mapping | None = None, weight: str = "w"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(config, SDSNNConfig):
            raise TypeError(f"config must be an SDSNNConfig, got {type(config).__name__}")
        names = list(config.layers)
        if "total" in names:
            raise ValueError("a layer may not be named 'total' (compression() reports the sum under that key)")
        if set(storages) != set(names):
            raise ValueError(f"storages must name exactly the config's layers {names}, got {sorted(storages)}")
        for what, extra in (("outgoing", outgoing), ("biases", biases)):
            unknown = set(extra or {}) - set(names)
            if unknown:
                raise ValueError(f"{what} names unknown layers {sorted(unknown)}; layers: {names}")
        self.config, self.mode = config, mode
        self.layers = {}
        for n in names:
            rule, st = config.layers[n], storages[n]
            if rule.kind == "conv" and not isinstance(st, KernelArrays):
                raise TypeError(f"layer {n!r} is a conv layer: its storage must be a KernelArrays, "
                                f"got {type(st).__name__}")
            if rule.kind == "fc" and isinstance(st, KernelArrays):
                raise TypeError(f"layer {n!r} is an fc layer: its storage must be a projection's ragged storage")
            cls = ConvLayer if rule.kind == "conv" else FCLayer
            self.layers[n] = cls(n, rule, st, mode, weight=weight if rule.kind == "fc" else "w",
                                 outgoing=(outgoing or {}).get(n), bias=(biases or {}).get(n))
        self.pruned_order = [n for n in names if config.layers[n].prune]
        for i, n in enumerate(self.pruned_order):
            if i + 1 == len(self.pruned_order) and config.layers[n].target_size is None:
                raise ValueError(f"layer {n!r} is the last pruned layer: its rule needs target_size (the size of "
                                 "the layer it projects to, e.g. the number of classes) for the rate formula")
        self.p = {n: float(config.layers[n].p_init) for n in self.pruned_order}
        self.next_t = 0
        self.history: list[dict] = []

    def _size(self, name: str) -> int:
        layer = self.layers[name]
        return layer.rule.size if layer.rule.size is not None else layer.num_units

    def structure_step(self, t: int, probes: Mapping | None = None) -> dict:
        """Run the structural step that follows training step ``t`` (0-based; consecutive calls).

        ``t == 0``: initialise the spines (``r+- = +-max(W)``) and masks.  ``t >= 1``: range update; from
        ``t > clip_after`` clipping; from ``t > prune_after`` regeneration, then pruning with the rate
        update, layer by layer in network order (each layer's rate sees the next layer's pruned count
        before that layer prunes).  ``probes``: sparse mode, one per regrowing layer (:mod:`.probe`).

        Returns a report ``{layer: {"regrown", "newly_pruned", "pruned_units", "p", "zeros", "elements"}}``
        (``regrown``: synapses (fc) or kernels (conv); ``pruned_units``: P_l with the layer's K).
        """
        if isinstance(t, bool) or not isinstance(t, int):
            raise TypeError(f"t must be an int (the structure step index), got {t!r}")
        if t != self.next_t:
            raise ValueError(f"structure steps must come in order 0, 1, 2, ...: expected t={self.next_t}, got t={t}")
        probes = dict(probes or {})
        s = self.config.schedule
        regrowing = [n for n, L in self.layers.items() if L.rule.regrow and self.mode == "sparse"]
        unused = set(probes) - set(regrowing)
        if unused:
            raise ValueError(f"probes given for {sorted(unused)}, which take none (only sparse regrowing layers "
                             f"do: {regrowing})")
        report = {n: {"regrown": 0, "newly_pruned": 0} for n in self.layers}
        if t == 0:
            for L in self.layers.values():
                L.init()
        else:
            for L in self.layers.values():
                if L.rule.update_ranges:
                    L.ranges(s)
            if t > s.clip_after:
                for L in self.layers.values():
                    if L.rule.clip:
                        L.clip()
            if t > s.prune_after:
                for n, L in self.layers.items():
                    if L.rule.regrow:
                        report[n]["regrown"] = L.regrow(t, s, probes.get(n))
                for i, n in enumerate(self.pruned_order):
                    L = self.layers[n]
                    report[n]["newly_pruned"] = L.prune(self.p[n])
                    pruned = L.pruned_units()
                    if i + 1 < len(self.pruned_order):
                        nxt = self.pruned_order[i + 1]
                        target = L.rule.target_size if L.rule.target_size is not None else self._size(nxt)
                        target_pruned = self.layers[nxt].pruned_units()
                    else:
                        target, target_pruned = L.rule.target_size, 0
                    alpha = (s.conv_alpha(t) if L.rule.kind == "conv"
                             else s.fc_alpha(t, L.rule.fc_alpha_scale, L.rule.fc_alpha_floor))
                    self.p[n] += rate_increment(alpha, self._size(n), pruned, target, target_pruned)
        for n, L in self.layers.items():
            zeros, elements = L.zero_weights()
            report[n].update(pruned_units=L.pruned_units() if L.rule.prune else 0, p=self.p.get(n),
                             zeros=zeros, elements=elements)
        self.next_t = t + 1
        self.history.append(report)
        return report

    def dead_units(self, name: str):
        """Sparse mode: bool per unit of layer ``name``, True where the unit is dead (pruned, no incoming
        synapse left): its bias is held at 0 and its outgoing synapses are dormant."""
        return self.layers[name].dead.copy()

    def compression(self) -> dict:
        """The authors' ``if_zero`` measurement made comparable across modes.

        Per layer ``(zeros, elements)``: elements are the layer's weights at step 0 (fc: synapses, conv:
        kernel entries); zeros count those that carry no weight now -- exact zeros in the faithful mode,
        absent synapses plus exact zeros in the sparse mode.  ``"total"``: the summed rate
        ``sum zeros / sum elements`` (the specification's guess at the reported pruning rate).
        """
        out = {}
        z_sum = e_sum = 0
        for n, L in self.layers.items():
            z, e = L.zero_weights()
            out[n] = {"zeros": z, "elements": e, "rate": z / e if e else 0.0}
            z_sum, e_sum = z_sum + z, e_sum + e
        out["total"] = {"zeros": z_sum, "elements": e_sum, "rate": z_sum / e_sum if e_sum else 0.0}
        return out
