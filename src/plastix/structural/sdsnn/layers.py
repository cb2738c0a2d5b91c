"""One SD-SNN layer in either mode: the four mechanisms (range update, clipping, regeneration, pruning)
over a storage (:mod:`.storage`, :mod:`.engine`).  Host numpy once per structure step.

Modes
-----
``faithful`` -- the authors' semantics on masks: every element keeps existing and training; a per-element
``mask`` (a per-synapse variable for fc layers) zeroes pruned weights at the end of each step,
regeneration ranks the trained values of masked elements, pruned units keep bias and outgoing weights.

``sparse`` -- plastix's: pruned synapses are removed from the ragged rows (their state goes with them);
a unit that was pruned and has no incoming synapse left is *dead*: its outgoing synapses are moved to a
dormant store (restored, with their values, when the unit regrows an incoming synapse) and its bias is
zeroed at every step.  Regeneration scores absent synapses from a probe (:mod:`.probe`); regrown
synapses start from fresh spine state (the layer's initial range ``+-r0``, counters 0) with the probe's
value clipped into it.  Importance is min-max normalised over the existing elements only.
"""
from __future__ import annotations

import numpy as np

from .probe import fc_candidates
from .schedule import LayerRule, SDSNNSchedule
from .scoring import (count_pruned_units, count_qualified, count_qualified_keyed, newly_pruned, prune_count,
                      regrowth_threshold, unit_importance)
from .spines import SPINE_VARS, clip_to_spines, init_spines, spine_width, update_spines

MODES = ("faithful", "sparse")
#: Faithful fc layers' extra per-synapse state (conv layers keep per-kernel counters on the layer).
FAITHFUL_VARS = {"mask": "f", "grow_cnt": "i", "grow_prev": "i"}


class ArrayBias:
    """A bias array (modified in place) and, optionally, the unit of each entry (conv: the channel of each
    output neuron); :meth:`zero` sets dead units' biases to 0."""

    def __init__(self, values: np.ndarray, unit_of: np.ndarray | None = None):
        self.values = values
        self.unit_of = None if unit_of is None else np.asarray(unit_of, np.int64)

    def zero(self, dead: np.ndarray) -> None:
        hit = dead if self.unit_of is None else dead[self.unit_of]
        if hit.shape != self.values.shape:
            raise ValueError(f"bias: {self.values.shape[0]} entries but {hit.shape[0]} units map to it")
        self.values[hit] = 0


class Outgoing:
    """The projection a layer's units send to (sparse mode removes a dead unit's synapses there).

    ``storage``: that projection's storage; ``pre_unit`` (int per presynaptic neuron of it): the unit of
    this layer each presynaptic neuron belongs to (default: the identity -- fc into fc).
    """

    def __init__(self, storage, pre_unit: np.ndarray | None = None):
        self.storage = storage
        self.pre_unit = None if pre_unit is None else np.asarray(pre_unit, np.int64)

    def unit_of(self, pre: np.ndarray) -> np.ndarray:
        return pre if self.pre_unit is None else self.pre_unit[pre]


class _Dormant:
    """Synapses set aside (pre, post and every per-synapse value) until they are restored."""

    def __init__(self):
        self.pre = np.zeros(0, np.int64)
        self.post = np.zeros(0, np.int64)
        self.values: dict[str, np.ndarray] = {}

    def put(self, storage, flag: np.ndarray) -> int:
        if not flag.any():
            return 0
        pre, post = storage.pairs()
        vals = storage.read(storage.var_names())
        self.pre = np.concatenate([self.pre, pre[flag]])
        self.post = np.concatenate([self.post, post[flag]])
        for k, v in vals.items():
            old = self.values.get(k, np.zeros(0, v.dtype))
            self.values[k] = np.concatenate([old, v[flag]])
        return storage.remove(flag)

    def take(self, storage, which: np.ndarray) -> int:
        if not which.any():
            return 0
        storage.add(self.pre[which], self.post[which], {k: v[which] for k, v in self.values.items()})
        keep = ~which
        self.pre, self.post = self.pre[keep], self.post[keep]
        self.values = {k: v[keep] for k, v in self.values.items()}
        return int(which.sum())


class _Layer:
    def __init__(self, name: str, rule: LayerRule, storage, mode: str, *, weight: str = "w",
                 outgoing: Outgoing | None = None, bias=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(rule, LayerRule):
            raise TypeError(f"layer {name!r}: rule must be a LayerRule, got {type(rule).__name__}")
        self.name, self.rule, self.storage, self.mode, self.weight = name, rule, storage, mode, weight
        self.outgoing, self.bias = outgoing, bias
        self.r0 = 0.0
        self.dormant_out = _Dormant()
        n = self.num_units
        self.history = np.zeros(n, bool)
        self.dead = np.zeros(n, bool)
        self.initial_elements = 0

    @property
    def sparse(self) -> bool:
        return self.mode == "sparse"

    # -- dead units (sparse mode) -------------------------------------------------------------------------
    def _update_dead(self) -> None:
        """dead = ever pruned and no active incoming element; move outgoing synapses accordingly."""
        if not self.sparse:
            return
        dead = self.history & (self.active_per_unit() == 0)
        if self.outgoing is not None:
            out = self.outgoing
            revived = self.dead & ~dead
            if revived.any() and self.dormant_out.pre.size:
                self.dormant_out.take(out.storage, revived[out.unit_of(self.dormant_out.pre)])
            newly = dead & ~self.dead
            if newly.any():
                pre, _ = out.storage.pairs()
                self.dormant_out.put(out.storage, newly[out.unit_of(pre)])
        self.dead = dead
        if self.bias is not None:
            self.bias.zero(dead)


class FCLayer(_Layer):
    """An fc layer: elements are the projection's synapses (ragged rows by presynaptic neuron), units its
    postsynaptic neurons; spine state (and, faithful, ``mask``, ``grow_cnt``, ``grow_prev``) are
    per-synapse variables of the storage, so they move with their synapse."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.grow_keys = np.zeros(0, np.int64)   # sparse: G_{t-1} over absent pairs (pre * num_post + post)
        self.grow_cnt = np.zeros(0, np.int32)

    @property
    def num_units(self) -> int:
        return int(self.storage.num_post)

    def state_names(self) -> list[str]:
        return list(SPINE_VARS) + ([] if self.sparse else list(FAITHFUL_VARS))

    def _active(self, d) -> np.ndarray:
        return d["mask"] if not self.sparse else np.ones(d[self.weight].size)

    def active_per_unit(self) -> np.ndarray:
        _, post = self.storage.pairs()
        act = np.ones(post.size) if self.sparse else self.storage.read(["mask"])["mask"]
        return np.bincount(post, weights=act, minlength=self.num_units)[:self.num_units]

    def init(self) -> None:
        w = self.storage.read([self.weight])[self.weight]
        state, self.r0 = init_spines(w)
        if not self.sparse:
            state["mask"] = np.ones(w.size, w.dtype if w.dtype.kind == "f" else np.float64)
            state["grow_cnt"] = np.zeros(w.size, np.int32)
            state["grow_prev"] = np.zeros(w.size, np.int32)
        self.storage.write(state)
        self.initial_elements = int(w.size)

    def ranges(self, sched: SDSNNSchedule) -> None:
        d = self.storage.read([self.weight] + list(SPINE_VARS) + ([] if self.sparse else ["mask"]))
        w_eff = d[self.weight] if self.sparse else d[self.weight] * d["mask"]
        spines = {k: d[k] for k in SPINE_VARS}
        update_spines(spines, w_eff, sched.count_thre, sched.shrink)
        self.storage.write(spines)

    def clip(self) -> None:
        d = self.storage.read([self.weight, "r_plus", "r_minus"])
        self.storage.write({self.weight: clip_to_spines(d[self.weight], d)})

    def regrow(self, t: float, sched: SDSNNSchedule, probe) -> int:
        q = sched.percentile(t, self.rule.percentile_base)
        R = self.rule.regrow_after
        if not self.sparse:
            d = self.storage.read([self.weight, "mask", "grow_cnt", "grow_prev"])
            v = d[self.weight]
            g = regrowth_threshold(v, q)
            qualified = (v > g) & (d["mask"] == 0)
            regrow = count_qualified(qualified, d["grow_prev"], d["grow_cnt"], R)
            d["mask"][regrow] = 1
            self.storage.write({k: d[k] for k in ("mask", "grow_cnt", "grow_prev")})
            return int(regrow.sum())
        if probe is None:
            raise ValueError(f"layer {self.name!r} (sparse, regrowing) needs a probe at step {t}: pass "
                             f"probes={{{self.name!r}: ...}} to structure_step (plastix.structural.sdsnn.probe)")
        pre, post = self.storage.pairs()
        w = self.storage.read([self.weight])[self.weight]
        cand = fc_candidates(probe, pre, post, self.storage.num_pre, self.num_units, f"layer {self.name!r} probe")
        g = regrowth_threshold(np.concatenate([w.astype(np.float64), cand.value]), q)
        keys = cand.pre * self.num_units + cand.post
        regrow, self.grow_keys, self.grow_cnt = count_qualified_keyed(keys, cand.value > g, self.grow_keys,
                                                                      self.grow_cnt, R)
        if regrow.any():
            w0 = np.clip(cand.value[regrow], -self.r0, self.r0).astype(w.dtype)
            n = w0.size
            self.storage.add(cand.pre[regrow], cand.post[regrow], {
                self.weight: w0, "r_plus": np.full(n, self.r0, w.dtype), "r_minus": np.full(n, -self.r0, w.dtype),
                "w_abs_prev": np.abs(w0)})
            self._update_dead()
        return int(regrow.sum())

    def prune(self, p: float) -> int:
        d = self.storage.read([self.weight] + list(SPINE_VARS) + ([] if self.sparse else ["mask"]))
        _, post = self.storage.pairs()
        active = self._active(d)
        importance = unit_importance(spine_width(d), active, post, self.num_units)
        new = newly_pruned(importance, prune_count(self.num_units, p), self.history if self.rule.history else None)
        chosen = new   # with history: the new ones; without: all k lowest (re-pruned every step)
        self.history |= chosen
        if self.sparse:
            self.storage.remove(chosen[post])
            self._update_dead()
        else:
            mask = d["mask"]
            mask[chosen[post]] = 0
            self.storage.write({"mask": mask, self.weight: (d[self.weight] * mask).astype(d[self.weight].dtype)})
        return int(new.sum())

    def pruned_units(self) -> int:
        return int(np.count_nonzero(self.active_per_unit() < self.rule.min_active))

    def zero_weights(self) -> tuple[int, int]:
        """(elements without weight, initial elements): absent synapses plus existing exact zeros."""
        w = self.storage.read([self.weight])[self.weight]
        absent = max(self.initial_elements - w.size, 0)
        return absent + int(np.count_nonzero(w == 0)), max(self.initial_elements, w.size)


class ConvLayer(_Layer):
    """A conv layer over a shared kernel ``[c_out, c_in, kh, kw]`` (:class:`~.storage.KernelArrays`):
    elements are kernel entries, units output channels (``kidx // (c_in * kh * kw)``), regeneration
    candidates whole (c_out, c_in) kernels (``kidx // (kh * kw)``) scored by their signed sum.  The mask
    and spine state are per kernel entry in both modes; the sparse mode also removes the conv projection's
    synapses of masked entries (``storage.synapses``, grouped by their ``kidx``) and restores them when
    their kernel regrows."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        c_out, c_in, kh, kw_ = self.storage.shape
        e = np.arange(c_out * c_in * kh * kw_)
        self.unit = e // (c_in * kh * kw_)
        self.group = e // (kh * kw_)
        self.num_groups = c_out * c_in
        self.grow_cnt = np.zeros(self.num_groups, np.int32)
        self.grow_prev = np.zeros(self.num_groups, np.int32)
        self.dormant_syn = _Dormant()

    @property
    def num_units(self) -> int:
        return int(self.storage.shape[0])

    def active_per_unit(self) -> np.ndarray:
        return np.bincount(self.unit, weights=self.storage.vars["mask"], minlength=self.num_units)

    def init(self) -> None:
        w = self.storage.read(["w"])["w"]
        state, self.r0 = init_spines(w)
        state["mask"] = np.ones(w.size, w.dtype)
        self.storage.write(state)
        self.initial_elements = int(w.size)

    def ranges(self, sched: SDSNNSchedule) -> None:
        d = self.storage.read(["w", "mask"] + list(SPINE_VARS))
        spines = {k: d[k] for k in SPINE_VARS}
        update_spines(spines, d["w"] * d["mask"], sched.count_thre, sched.shrink)
        self.storage.write(spines)

    def clip(self) -> None:
        d = self.storage.read(["w", "r_plus", "r_minus", "mask"])
        w = clip_to_spines(d["w"], d)
        if self.sparse:   # masked entries have no synapses: they stay 0
            w = w * d["mask"]
        self.storage.write({"w": w})

    def _sync_synapses(self) -> None:
        """Sparse: remove the conv projection's synapses of masked entries (into the dormant store)."""
        syn = self.storage.synapses
        if not self.sparse or syn is None:
            return
        kidx = syn.read([self.storage.kidx])[self.storage.kidx].astype(np.int64)
        self.dormant_syn.put(syn, self.storage.vars["mask"][kidx] == 0)

    def regrow(self, t: float, sched: SDSNNSchedule, probe) -> int:
        q = sched.percentile(t, self.rule.percentile_base)
        d = self.storage.read(["w", "mask"])
        w, mask = d["w"], d["mask"]
        masked_kernel = np.bincount(self.group, weights=mask, minlength=self.num_groups) == 0
        values = w.astype(np.float64)
        if self.sparse:
            if probe is None:
                raise ValueError(f"layer {self.name!r} (sparse, regrowing) needs a probe at step {t}: an array "
                                 f"{self.storage.shape} of would-be kernel values")
            probe = np.asarray(probe, np.float64)
            if probe.shape != self.storage.shape:
                raise ValueError(f"layer {self.name!r}: the probe must have the kernel's shape {self.storage.shape}, "
                                 f"got {probe.shape}")
            probe = probe.reshape(-1)
            values = np.where(masked_kernel[self.group], probe, values)
        v = np.bincount(self.group, weights=values, minlength=self.num_groups)
        g = regrowth_threshold(v, q)
        regrow = count_qualified((v > g) & masked_kernel, self.grow_prev, self.grow_cnt, self.rule.regrow_after)
        entries = regrow[self.group]
        if entries.any():
            mask[entries] = 1
            out = {"mask": mask}
            if self.sparse:   # fresh spines, the probe's values clipped into them
                w[entries] = np.clip(probe[entries], -self.r0, self.r0)
                s = self.storage.read(list(SPINE_VARS))
                for k in SPINE_VARS:
                    s[k][entries] = 0
                s["r_plus"][entries], s["r_minus"][entries] = self.r0, -self.r0
                s["w_abs_prev"][entries] = np.abs(w[entries])
                out.update(s, w=w)
            self.storage.write(out)
            syn = self.storage.synapses
            if self.sparse and syn is not None and self.dormant_syn.pre.size:
                kidx = self.dormant_syn.values[self.storage.kidx].astype(np.int64)
                self.dormant_syn.take(syn, entries[kidx])
            self._update_dead()
        return int(regrow.sum())

    def prune(self, p: float) -> int:
        d = self.storage.read(["w", "mask"] + list(SPINE_VARS))
        mask = d["mask"]
        importance = unit_importance(spine_width(d), mask, self.unit, self.num_units,
                                     normalise_over=(mask > 0) if self.sparse else None)
        new = newly_pruned(importance, prune_count(self.num_units, p), self.history if self.rule.history else None)
        self.history |= new
        mask[new[self.unit]] = 0
        self.storage.write({"mask": mask, "w": (d["w"] * mask).astype(d["w"].dtype)})
        self._sync_synapses()
        self._update_dead()
        return int(new.sum())

    def pruned_units(self) -> int:
        return count_pruned_units(self.storage.vars["mask"], self.unit, self.num_units, self.rule.min_active)

    def zero_weights(self) -> tuple[int, int]:
        w = self.storage.kernel
        return int(np.count_nonzero(w == 0)), int(w.size)
