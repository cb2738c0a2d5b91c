"""SD-SNN on a running :class:`~plastix.Simulation`: two connectivity updates that own the per-synapse
state and do the removals and additions in the engine (CPU and CUDA backends), and a storage that reads
and writes through the simulation's public state access.

:func:`attach_sdsnn` adds, to a sparse projection of a :class:`~plastix.Network` before it is built:

* ``<proj>_sdsnn`` (:func:`sdsnn_state_rule`): its per-synapse ``vars`` are the spine state (and, for the
  faithful mode, ``mask``, ``grow_cnt``, ``grow_prev``), so the engine moves them with their synapse like
  every other per-synapse array (weights, optimiser moments); its row code removes every synapse whose
  ``remove_mark`` the host set -- the sparse mode's pruning;
* ``<proj>_sdsnn_grow`` (:func:`sdsnn_grow_rule`): adds up to :data:`ADDS_PER_CALL` synapses per row and
  call at the targets the host planned in row vars (new synapses' per-synapse values start at 0; the
  host then writes their weight and spine state).

The scoring (which synapses to remove or add) is vectorised host numpy once per structure step
(:mod:`.layers`); :class:`SimulationArrays` pulls and pushes the arrays it needs.
"""
from __future__ import annotations

import numpy as np

from ...model.specs import ConnectivityUpdateModel, Var
from .layers import FAITHFUL_VARS, MODES
from .spines import SPINE_VARS
from .storage import check_absent, check_room

#: Synapses a row can gain per call of the grow rule (more calls when a row gains more).
ADDS_PER_CALL = 4


def _remove_marked(row):
    row.removed = 0
    for s in row.synapses:
        if s.remove_mark != 0:
            s.remove()
            row.removed += 1


def sdsnn_state_rule(mode: str) -> ConnectivityUpdateModel:
    """The rule that owns SD-SNN's per-synapse state on a projection and removes every synapse with
    ``remove_mark != 0`` (row var ``removed`` counts them per call)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    names = dict(SPINE_VARS)
    if mode == "faithful":
        names.update(FAITHFUL_VARS)
    vars_ = {k: (Var(0.0) if kind == "f" else Var(0, "int32")) for k, kind in names.items()}
    vars_["remove_mark"] = Var(0, "int32")
    return ConnectivityUpdateModel(name="sdsnn_state", vars=vars_, row_vars={"removed": Var(0, "int32")},
                                   row_update=_remove_marked, doc=sdsnn_state_rule.__doc__)


def _add_planned(row):
    if row.grow_0 >= 0:
        row.add(row.grow_0)
        row.grow_0 = -1
    if row.grow_1 >= 0:
        row.add(row.grow_1)
        row.grow_1 = -1
    if row.grow_2 >= 0:
        row.add(row.grow_2)
        row.grow_2 = -1
    if row.grow_3 >= 0:
        row.add(row.grow_3)
        row.grow_3 = -1


def sdsnn_grow_rule() -> ConnectivityUpdateModel:
    """Add a synapse to target ``grow_k`` (k < :data:`ADDS_PER_CALL`; -1: none) of each row, then clear
    the plan; a full row raises :class:`~plastix.errors.CapacityError`."""
    rows = {f"grow_{k}": Var(-1, "int32") for k in range(ADDS_PER_CALL)}
    return ConnectivityUpdateModel(name="sdsnn_grow", row_vars=rows, row_update=_add_planned,
                                   doc=sdsnn_grow_rule.__doc__)


def attach_sdsnn(net, projection: str, mode: str) -> tuple[str, str]:
    """Add SD-SNN's two connectivity updates to sparse ``projection`` of ``net`` (before building);
    returns their names ``(state, grow)`` for :class:`SimulationArrays`."""
    state, grow = f"{projection}_sdsnn", f"{projection}_sdsnn_grow"
    net.add_connectivity_update(state, projection, sdsnn_state_rule(mode))
    net.add_connectivity_update(grow, projection, sdsnn_grow_rule())
    return state, grow


class SimulationArrays:
    """The storage interface of :mod:`.storage` over projection ``proj`` of a built-or-buildable
    :class:`~plastix.Simulation` with the updates of :func:`attach_sdsnn` (names ``state``, ``grow``).

    Per-synapse variables are read and written through ``Simulation.get`` / ``set`` (the projection's
    weight-update variables, and the state rule's own), in the simulation's row order; removals and
    additions run the two connectivity updates with ``Simulation.custom_update``.
    """

    def __init__(self, sim, proj: str, state: str, grow: str, name: str | None = None):
        net = sim.network
        if proj not in net.projections:
            raise ValueError(f"unknown projection {proj!r}; known: {sorted(net.projections)}")
        for u, model in ((state, "sdsnn_state"), (grow, "sdsnn_grow")):
            upd = net.connectivity_updates.get(u)
            if upd is None or upd.model.name != model or upd.projection is not net.projections[proj]:
                raise ValueError(f"{u!r} is not a {model} update on projection {proj!r}; attach them with "
                                 "attach_sdsnn(net, proj, mode) before building")
        self.sim, self.proj, self.state, self.grow, self.name = sim, proj, state, grow, name or proj
        q = net.projections[proj]
        self.num_pre, self.num_post = q.pre.size, q.post.size
        self._proj_vars = set(q.weight_update.vars)
        self._state_vars = set(net.connectivity_updates[state].model.vars) - {"remove_mark"}

    def var_names(self) -> list[str]:
        return sorted(self._proj_vars) + sorted(self._state_vars)

    def _group(self, var: str) -> str:
        if var in self._proj_vars:
            return self.proj
        if var in self._state_vars:
            return self.state
        raise KeyError(f"{self.name}: no per-synapse variable {var!r}; known: {self.var_names()}")

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        pre, post = self.sim.connectivity(self.proj)
        return pre.astype(np.int64), post.astype(np.int64)

    def read(self, names) -> dict[str, np.ndarray]:
        return {n: self.sim.get(self._group(n), n) for n in names}

    def write(self, values: dict) -> None:
        for n, v in values.items():
            self.sim.set(self._group(n), n, v)

    def remove(self, flag) -> int:
        flag = np.asarray(flag, bool)
        if not flag.any():
            return 0
        self.sim.set(self.state, "remove_mark", flag.astype(np.int32))
        removed = self.sim.custom_update(self.sim.network.connectivity_updates[self.state].group)[self.state]["removed"]
        if removed != int(flag.sum()):
            raise RuntimeError(f"{self.name}: {int(flag.sum())} synapses marked for removal but {removed} removed")
        return removed

    def add(self, pre, post, values: dict | None = None) -> None:
        pre, post = np.asarray(pre, np.int64), np.asarray(post, np.int64)
        if pre.size == 0:
            return
        if pre.min() < 0 or pre.max() >= self.num_pre or post.min() < 0 or post.max() >= self.num_post:
            raise ValueError(f"{self.name}: pre must be in [0, {self.num_pre}) and post in [0, {self.num_post})")
        ex_pre, ex_post = self.pairs()
        check_absent(pre, post, ex_pre, ex_post, self.num_post, self.name)
        r = self.sim.ragged(self.proj)
        check_room(pre, r["row_length"], r["ind"].shape[1], self.name)
        order = np.argsort(pre, kind="stable")
        pre_s, post_s = pre[order], post[order]
        rank = np.arange(pre_s.size) - np.searchsorted(pre_s, pre_s, side="left")   # k-th new synapse of its row
        group = self.sim.network.connectivity_updates[self.grow].group
        for start in range(0, int(rank.max()) + 1, ADDS_PER_CALL):
            for k in range(ADDS_PER_CALL):
                plan = np.full(self.num_pre, -1, np.int32)
                sel = rank == start + k
                plan[pre_s[sel]] = post_s[sel]
                self.sim.set(self.grow, f"grow_{k}", plan)
            self.sim.custom_update(group)
        if values:   # the new synapses' values, at their flat positions in row order
            a, b = self.pairs()
            keys = a * self.num_post + b
            pos = np.searchsorted(keys, pre * self.num_post + post) if np.all(keys[1:] > keys[:-1]) else None
            if pos is None:
                sorter = np.argsort(keys)
                pos = sorter[np.searchsorted(keys, pre * self.num_post + post, sorter=sorter)]
            for n, v in values.items():
                arr = self.read([n])[n]
                arr[pos] = np.broadcast_to(np.asarray(v), pre.shape)
                self.write({n: arr})


class SimulationBias:
    """A population variable used as a bias (``pop.var``, one value per neuron); ``unit_of`` maps each
    neuron to its unit (conv: its channel).  :meth:`zero` sets dead units' values to 0."""

    def __init__(self, sim, pop: str, var: str, unit_of: np.ndarray | None = None):
        self.sim, self.pop, self.var = sim, pop, var
        self.unit_of = None if unit_of is None else np.asarray(unit_of, np.int64)

    def zero(self, dead: np.ndarray) -> None:
        vals = self.sim.get(self.pop, self.var)
        hit = dead if self.unit_of is None else dead[self.unit_of]
        if hit.shape != vals.shape[-1:]:
            raise ValueError(f"bias {self.pop}.{self.var}: {vals.shape[-1]} neurons but {hit.shape[0]} units map to it")
        if hit.any():
            vals[..., hit] = 0
            self.sim.set(self.pop, self.var, vals)
