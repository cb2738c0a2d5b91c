"""The network graph: populations of neurons and projections between them.

A :class:`Network` only *describes*; :class:`plastix.Simulation` builds it for a backend and runs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import NetworkError
from .specs import ConnectivityUpdateModel, CustomUpdateModel, NeuronModel, PostsynapticModel, WeightUpdateModel

PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class Dense:
    """Dense (all-to-all, stored without indices) connectivity: every pre neuron reaches every post
    neuron through its own weight; used for dense baselines and readouts."""


def _check_params(model, given: Mapping[str, float] | None, what: str) -> dict[str, float]:
    given = dict(given or {})
    unknown = set(given) - set(model.params)
    if unknown:
        raise NetworkError(f"{what}: unknown params {sorted(unknown)} for model {model.name!r}; "
                           f"known: {sorted(model.params)}")
    out = dict(model.params)
    for k, v in given.items():
        v = float(v)
        if not np.isfinite(v):
            raise NetworkError(f"{what}: param {k} must be finite, got {v}")
        out[k] = v
    return out


def _check_init(names, given: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = set(given) - set(names)
    if unknown:
        raise NetworkError(f"{what}: unknown variables {sorted(unknown)}; known: {sorted(names)}")
    return given


@dataclass(eq=False)
class Population:
    name: str
    size: int
    model: NeuronModel
    params: dict[str, float]
    init: dict[str, Any]
    index: int
    #: global id of neuron 0 (a partitioned simulation's rank block): random-number element ids are global
    elem_offset: int = 0

    def __repr__(self):
        return f"Population({self.name!r}, size={self.size}, model={self.model.name!r})"


@dataclass(eq=False)
class Projection:
    name: str
    pre: Population
    post: Population
    weight_update: WeightUpdateModel
    postsynaptic: PostsynapticModel
    connectivity: Any
    wu_params: dict[str, float]
    psm_params: dict[str, float]
    init: dict[str, Any]
    pre_init: dict[str, Any]
    post_init: dict[str, Any]
    psm_init: dict[str, Any]
    delay: int
    row_stride: int | None
    headroom: float
    index: int
    #: added to the random-number element id ``i x stride + k`` of every synapse (a partitioned simulation
    #: numbers each rank's slots apart, so that its ranks never share a synapse's numbers)
    syn_elem_offset: int = 0

    @property
    def dense(self) -> bool:
        return isinstance(self.connectivity, Dense)

    def __repr__(self):
        return f"Projection({self.name!r}, {self.pre.name!r} -> {self.post.name!r}, {self.weight_update.name!r})"


@dataclass(frozen=True)
class RowPart:
    """A rank's part of a partitioned projection, as its connectivity updates see it (docs/mpi.md): row code
    reads and writes global target ids (``s.j``, ``row.add(j)``, ``row.in_degree(j)``, ``row.owns(j)``) and
    the whole population's ``row.num_post``; ``row.total_length`` / ``row.offset`` count the row's synapses on
    every rank / on the ranks below this one (row vars ``before`` and ``other``, refreshed before each run
    of the update); a global phase's ``rows.parts`` is the number of ranks."""

    post_lo: int      # global id of the rank's first target
    num_post: int     # the whole target population
    parts: int        # ranks
    before: str       # row var: the row's synapses on lower ranks
    other: str        # row var: the row's synapses on the other ranks


@dataclass(eq=False)
class ConnectivityUpdate:
    """A :class:`ConnectivityUpdateModel` attached to a sparse projection, with its references resolved
    (``var_refs`` etc. map the model's names to the projection's / populations' variable names)."""

    name: str
    projection: Projection
    model: ConnectivityUpdateModel
    params: dict[str, float]
    var_refs: dict[str, str]
    pre_var_refs: dict[str, str]
    post_var_refs: dict[str, str]
    row_var_refs: dict[str, tuple[str, str]]  # ref -> (other update name, its row var)
    init: dict[str, Any]
    row_init: dict[str, Any]
    group: str
    every: int | None
    index: int
    #: set by a partitioned simulation: how this rank's part of the projection sits in the whole one
    part: "RowPart | None" = None

    def __repr__(self):
        return f"ConnectivityUpdate({self.name!r} on {self.projection.name!r}, group={self.group!r})"


@dataclass(eq=False)
class CustomUpdate:
    """A :class:`CustomUpdateModel` attached to a population (one element per neuron) or a projection (one
    per existing synapse), with its variable references resolved to ``(group, variable)``."""

    name: str
    target: Any  # Population or Projection
    model: CustomUpdateModel
    params: dict[str, float]
    var_refs: dict[str, tuple[str, str]]
    init: dict[str, Any]
    group: str
    every: int | None
    index: int
    #: tape ref -> (side: "pre" / "post" on projections, None on populations; population name; var)
    tape_refs: dict[str, tuple[str | None, str, str]] = field(default_factory=dict)

    @property
    def per_synapse(self) -> bool:
        return isinstance(self.target, Projection)

    def __repr__(self):
        return f"CustomUpdate({self.name!r} on {self.target.name!r}, group={self.group!r})"


@dataclass(eq=False)
class Network:
    """A spiking network description.

    Parameters
    ----------
    dt : float
        Time step (ms).
    seed : int
        Seeds both host-side initialisation and the counter-based random numbers of the run.
    precision : {"float32", "float64"}
        Floating type of every state variable and parameter.
    """

    dt: float = 1.0
    seed: int = 0
    precision: str = "float32"
    populations: dict[str, Population] = field(default_factory=dict)
    projections: dict[str, Projection] = field(default_factory=dict)
    connectivity_updates: dict[str, ConnectivityUpdate] = field(default_factory=dict)
    custom_updates: dict[str, CustomUpdate] = field(default_factory=dict)
    #: names of connectivity and custom updates in the order they were added: a group runs in this order
    update_order: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not (isinstance(self.dt, (int, float)) and self.dt > 0 and np.isfinite(self.dt)):
            raise NetworkError(f"dt must be a positive number of ms, got {self.dt!r}")
        if self.precision not in PRECISIONS:
            raise NetworkError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (isinstance(self.seed, (int, np.integer)) and 0 <= self.seed < 2**64):
            raise NetworkError(f"seed must be an integer in [0, 2**64), got {self.seed!r}")
        self.dt = float(self.dt)

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise NetworkError(f"name must be a non-empty string, got {name!r}")
        if (name in self.populations or name in self.projections or name in self.connectivity_updates
                or name in self.custom_updates):
            raise NetworkError(f"name {name!r} is already used by a population, projection or update")

    def add_population(self, name: str, size: int, model: NeuronModel, *, params: Mapping[str, float] | None = None,
                       init: Mapping[str, Any] | None = None) -> Population:
        """Add ``size`` neurons of ``model``.  ``init`` maps var names to a scalar, an initialiser
        (:mod:`plastix.init`) or an array of length ``size``."""
        self._check_new_name(name)
        if not isinstance(model, NeuronModel):
            raise NetworkError(f"population {name!r}: model must be a NeuronModel, got {type(model).__name__}")
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise NetworkError(f"population {name!r}: size must be a positive integer, got {size!r}")
        pop = Population(name, int(size), model, _check_params(model, params, f"population {name!r}"),
                         _check_init(model.vars, init, f"population {name!r}"), len(self.populations))
        self.populations[name] = pop
        return pop

    def _population(self, p, role: str, proj: str) -> Population:
        if isinstance(p, str):
            p = self.populations.get(p)
        if not isinstance(p, Population) or self.populations.get(p.name) is not p:
            raise NetworkError(f"projection {proj!r}: {role} must be a population of this network, got {p!r}")
        return p

    def add_projection(self, name: str, pre: Population | str, post: Population | str, *,
                       connectivity: Any,
                       weight_update: WeightUpdateModel | None = None,
                       postsynaptic: PostsynapticModel | None = None,
                       wu_params: Mapping[str, float] | None = None,
                       psm_params: Mapping[str, float] | None = None,
                       init: Mapping[str, Any] | None = None,
                       pre_init: Mapping[str, Any] | None = None,
                       post_init: Mapping[str, Any] | None = None,
                       psm_init: Mapping[str, Any] | None = None,
                       delay: int = 0, row_stride: int | None = None, headroom: float = 1.0) -> Projection:
        """Connect ``pre`` to ``post``.

        ``connectivity`` is an initialiser from :mod:`plastix.connect` (or :class:`Dense`).
        ``weight_update`` defaults to static synapses, ``postsynaptic`` to delta current.  ``init`` gives
        per-synapse var values (scalar, initialiser, or one value per synapse in row order).  ``delay`` is
        the axonal delay in whole steps.  ``row_stride`` fixes the ragged row capacity; otherwise it is
        derived from the connectivity, times ``headroom`` (>= 1) for synapses added later.
        """
        from ..model import postsynaptic as psm_mod, weight_update as wu_mod

        self._check_new_name(name)
        pre = self._population(pre, "pre", name)
        post = self._population(post, "post", name)
        wu = weight_update if weight_update is not None else wu_mod.static()
        psm = postsynaptic if postsynaptic is not None else psm_mod.delta()
        if not isinstance(wu, WeightUpdateModel):
            raise NetworkError(f"projection {name!r}: weight_update must be a WeightUpdateModel")
        if not isinstance(psm, PostsynapticModel):
            raise NetworkError(f"projection {name!r}: postsynaptic must be a PostsynapticModel")
        if not post.model.spikes and (wu.on_post or wu.post_spike):
            raise NetworkError(f"projection {name!r}: weight-update model {wu.name!r} needs postsynaptic spikes "
                               f"but {post.name!r} ({post.model.name}) does not spike")
        if not pre.model.spikes:
            raise NetworkError(f"projection {name!r}: presynaptic population {pre.name!r} ({pre.model.name}) "
                               "does not spike")
        if not isinstance(delay, (int, np.integer)) or not 0 <= delay <= 10_000:
            raise NetworkError(f"projection {name!r}: delay must be an integer number of steps in [0, 10000], "
                               f"got {delay!r}")
        if row_stride is not None and (not isinstance(row_stride, (int, np.integer)) or row_stride < 1):
            raise NetworkError(f"projection {name!r}: row_stride must be a positive integer, got {row_stride!r}")
        if not (isinstance(headroom, (int, float)) and headroom >= 1.0):
            raise NetworkError(f"projection {name!r}: headroom must be >= 1.0, got {headroom!r}")
        if not (isinstance(connectivity, Dense) or hasattr(connectivity, "build")):
            raise NetworkError(f"projection {name!r}: connectivity must be an initialiser from plastix.connect, "
                               f"got {connectivity!r}")
        what = f"projection {name!r}"
        proj = Projection(
            name, pre, post, wu, psm, connectivity,
            _check_params(wu, wu_params, what), _check_params(psm, psm_params, what),
            _check_init(wu.vars, init, what), _check_init(wu.pre_vars, pre_init, what + " pre_init"),
            _check_init(wu.post_vars, post_init, what + " post_init"),
            _check_init(psm.vars, psm_init, what + " psm_init"),
            int(delay), None if row_stride is None else int(row_stride), float(headroom), len(self.projections))
        self.projections[name] = proj
        return proj

    def add_connectivity_update(self, name: str, projection: Projection | str, model: ConnectivityUpdateModel, *,
                                params: Mapping[str, float] | None = None,
                                var_refs: Mapping[str, str] | None = None,
                                pre_var_refs: Mapping[str, str] | None = None,
                                post_var_refs: Mapping[str, str] | None = None,
                                row_var_refs: Mapping[str, str] | None = None,
                                init: Mapping[str, Any] | None = None, row_init: Mapping[str, Any] | None = None,
                                group: str | None = None, every: int | None = None) -> ConnectivityUpdate:
        """Attach a structural-plasticity rule to the sparse ``projection``.

        ``var_refs`` maps each of the model's ``var_refs`` to a per-synapse variable of the projection (its
        weight-update vars or another update's own vars); ``pre_var_refs`` / ``post_var_refs`` map to
        variables of the pre / post population (default: same names); ``row_var_refs`` maps each of the
        model's ``row_var_refs`` to ``"<other update>.<row var>"`` (an update with the same number of rows).
        ``group`` (default ``name``) is
        what ``Simulation.custom_update(group)`` runs; ``every`` (steps) also runs it inside the compiled
        time loop, at the end of every ``every``-th step.
        """
        self._check_new_name(name)
        given = projection
        if isinstance(projection, str):
            projection = self.projections.get(projection)
        if not isinstance(projection, Projection) or self.projections.get(projection.name) is not projection:
            raise NetworkError(f"connectivity update {name!r}: projection {given!r} is not a projection of this "
                               f"network; known: {sorted(self.projections)}")
        if projection.dense:
            raise NetworkError(f"connectivity update {name!r}: projection {projection.name!r} is dense; "
                               "structural plasticity needs sparse connectivity")
        if not isinstance(model, ConnectivityUpdateModel):
            raise NetworkError(f"connectivity update {name!r}: model must be a ConnectivityUpdateModel")
        what = f"connectivity update {name!r}"
        syn_names = set(projection.weight_update.vars)
        for other in self.connectivity_updates.values():
            if other.projection is projection:
                syn_names |= set(other.model.vars)

        def resolve(kind, wanted, given, available, target):
            given = dict(given or {})
            unknown = set(given) - set(wanted)
            if unknown:
                raise NetworkError(f"{what}: {kind} {sorted(unknown)} are not declared by model {model.name!r} "
                                   f"(it declares {list(wanted)})")
            out = {}
            for ref in wanted:
                tgt = given.get(ref, ref)
                if tgt not in available:
                    raise NetworkError(f"{what}: {kind[:-1]} {ref!r} -> {tgt!r}, but {target} has no such variable; "
                                       f"known: {sorted(available)}")
                out[ref] = tgt
            return out

        refs = resolve("var_refs", model.var_refs, var_refs, syn_names, f"projection {projection.name!r}")
        pre_refs = resolve("pre_var_refs", model.pre_var_refs, pre_var_refs, projection.pre.model.vars,
                           f"population {projection.pre.name!r}")
        post_refs = resolve("post_var_refs", model.post_var_refs, post_var_refs, projection.post.model.vars,
                            f"population {projection.post.name!r}")
        given_rows = dict(row_var_refs or {})
        unknown = set(given_rows) - set(model.row_var_refs)
        if unknown or set(model.row_var_refs) - set(given_rows):
            raise NetworkError(f"{what}: row_var_refs must map exactly {list(model.row_var_refs)} to "
                               f"'<update>.<row var>', got {given_rows}")
        row_refs = {}
        for ref, target in given_rows.items():
            other_name, _, var = str(target).partition(".")
            other = self.connectivity_updates.get(other_name)
            if other is None or var not in other.model.row_vars:
                raise NetworkError(f"{what}: row_var_ref {ref!r} -> {target!r}: no connectivity update {other_name!r} "
                                   f"with row var {var!r}")
            if other.projection.pre.size != projection.pre.size:
                raise NetworkError(f"{what}: row_var_ref {ref!r} -> {target!r}: {other_name!r} has "
                                   f"{other.projection.pre.size} rows, this projection {projection.pre.size}")
            row_refs[ref] = (other_name, var)
        clash = set(model.vars) & syn_names
        if clash:
            raise NetworkError(f"{what}: per-synapse vars {sorted(clash)} already exist on projection "
                               f"{projection.name!r}; rename them in the model")
        if every is not None and (not isinstance(every, (int, np.integer)) or every < 1):
            raise NetworkError(f"{what}: every must be a positive integer number of steps, got {every!r}")
        if every is not None and model.global_update is not None and model.global_mode == "python":
            raise NetworkError(f"{what}: a Python-mode global phase cannot run inside the compiled time loop; "
                               "use global_mode='compiled' or trigger the update with custom_update")
        group = name if group is None else group
        if not isinstance(group, str) or not group:
            raise NetworkError(f"{what}: group must be a non-empty string")
        for other in self.connectivity_updates.values():
            if other.group == group and other.projection is projection:
                raise NetworkError(f"{what}: group {group!r} already updates projection {projection.name!r} "
                                   f"(with {other.name!r}); members of a group run concurrently, so use two groups")
            if other.group == group and other.every != every:
                raise NetworkError(f"{what}: all members of group {group!r} need the same 'every'")
        upd = ConnectivityUpdate(name, projection, model, _check_params(model, params, what), refs, pre_refs,
                                 post_refs, row_refs, _check_init(model.vars, init, what),
                                 _check_init(model.row_vars, row_init, what + " row_init"), group,
                                 None if every is None else int(every), len(self.connectivity_updates))
        self.connectivity_updates[name] = upd
        self.update_order.append(name)
        return upd

    def add_custom_update(self, name: str, target: Population | Projection | str, model: CustomUpdateModel, *,
                          var_refs: Mapping[str, str] | None = None, params: Mapping[str, float] | None = None,
                          init: Mapping[str, Any] | None = None, group: str | None = None,
                          every: int | None = None, tape_refs: Mapping[str, str] | None = None) -> CustomUpdate:
        """Attach a custom update to a population (it runs once per neuron) or a projection (once per
        existing synapse).

        ``var_refs`` maps each of the model's ``var_refs`` to ``"<group>.<var>"`` or ``"<var>"`` (a variable
        of ``target``): for a population target any per-neuron variable of the same number of neurons (a
        population's, a projection's pre / post trace or postsynaptic variable, another per-neuron custom
        update's); for a projection target a per-synapse variable of the same projection (its weight-update
        variables, a connectivity or custom update's own).  ``group`` (default ``name``) is what
        ``Simulation.custom_update(group)`` runs; ``every`` (steps, batch size 1 only) also runs it at the
        end of every ``every``-th step of the compiled time loop.  ``tape_refs`` binds the model's tape
        references: ``"<var>"`` / ``"<population>.<var>"`` (a population of the target's size) on a population
        target, ``"pre.<var>"`` / ``"post.<var>"`` on a projection target.
        """
        self._check_new_name(name)
        what = f"custom update {name!r}"
        if not isinstance(model, CustomUpdateModel):
            raise NetworkError(f"{what}: model must be a CustomUpdateModel, got {type(model).__name__}")
        given = target
        if isinstance(target, str):
            target = self.populations.get(target) or self.projections.get(target)
        if not (isinstance(target, (Population, Projection))
                and (self.populations.get(target.name) is target or self.projections.get(target.name) is target)):
            raise NetworkError(f"{what}: target {given!r} is not a population or projection of this network; known: "
                               f"{sorted(self.populations) + sorted(self.projections)}")
        given_refs = dict(var_refs or {})
        unknown = set(given_refs) - set(model.var_refs)
        if unknown:
            raise NetworkError(f"{what}: var_refs {sorted(unknown)} are not declared by model {model.name!r} "
                               f"(it declares {list(model.var_refs)})")
        elements = self._elements(target)
        population = model.per == "population"
        if population and not isinstance(target, Population):
            raise NetworkError(f"{what}: per='population' runs over a population's neurons: target {target.name!r} "
                               "is a projection")
        refs = {}
        for ref in model.var_refs:
            spec = str(given_refs.get(ref, ref))
            grp, _, var = spec.rpartition(".")
            grp = grp or target.name
            kind, vars_ = self._group_vars(grp, what, ref)
            if var not in vars_:
                raise NetworkError(f"{what}: var_ref {ref!r} -> {spec!r}: {grp!r} has no variable {var!r}; known: "
                                   f"{sorted(vars_)}")
            found = vars_[var]
            if population:  # whole arrays of any size; a per-synapse variable as a dense [pre, post] matrix
                if found[0] == "synapses" and not found[1].dense:
                    raise NetworkError(f"{what}: var_ref {ref!r} -> '{grp}.{var}': per='population' updates see a "
                                       f"projection's synapses as a dense matrix, but {found[1].name!r} is sparse")
            elif found != elements:
                raise NetworkError(f"{what}: var_ref {ref!r} -> '{grp}.{var}' has {self._describe(found)} but the "
                                   f"update runs over {self._describe(elements)}")
            refs[ref] = (grp, var)
        tapes = self._tape_refs(what, target, model, tape_refs)
        if every is not None and (not isinstance(every, (int, np.integer)) or every < 1):
            raise NetworkError(f"{what}: every must be a positive integer number of steps, got {every!r}")
        if every is not None and model.over_time:
            raise NetworkError(f"{what}: an update over the tape runs between runs, not every {every} steps")
        group = name if group is None else group
        if not isinstance(group, str) or not group:
            raise NetworkError(f"{what}: group must be a non-empty string")
        upd = CustomUpdate(name, target, model, _check_params(model, params, what), refs,
                           _check_init(model.vars, init, what), group, None if every is None else int(every),
                           len(self.custom_updates), tapes)
        self.custom_updates[name] = upd
        self.update_order.append(name)
        return upd

    def _tape_refs(self, what, target, model, given) -> dict:
        given = dict(given or {})
        unknown = set(given) - set(model.tape_refs)
        if unknown:
            raise NetworkError(f"{what}: tape_refs {sorted(unknown)} are not declared by model {model.name!r} "
                               f"(it declares {list(model.tape_refs)})")
        if model.events == "pre_spikes":
            if not isinstance(target, Projection):
                raise NetworkError(f"{what}: events='pre_spikes' runs per synapse: its target must be a projection")
            if not target.pre.model.spikes:
                raise NetworkError(f"{what}: events='pre_spikes', but {target.pre.name!r} does not spike")
        out = {}
        for ref in model.tape_refs:
            spec = str(given.get(ref, ref))
            head, _, var = spec.rpartition(".")
            if isinstance(target, Projection):
                if head not in ("pre", "post"):
                    raise NetworkError(f"{what}: tape_ref {ref!r} -> {spec!r}: on a projection write 'pre.<var>' or "
                                       "'post.<var>'")
                side, pop = head, (target.pre if head == "pre" else target.post)
            else:
                side, pop = None, self.populations.get(head or target.name)
                if pop is None:
                    raise NetworkError(f"{what}: tape_ref {ref!r} -> {spec!r}: no population {head!r}")
                if pop.size != target.size and model.per != "population":
                    raise NetworkError(f"{what}: tape_ref {ref!r} -> {spec!r} has {pop.size} neurons but the update "
                                       f"runs over {target.size}")
            if var not in pop.model.vars:
                raise NetworkError(f"{what}: tape_ref {ref!r} -> {spec!r}: population {pop.name!r} has no variable "
                                   f"{var!r}; known: {sorted(pop.model.vars)}")
            out[ref] = (side, pop.name, var)
        return out

    @staticmethod
    def _elements(target):
        """What a group's per-element variables are indexed by: ("neurons", n) or ("synapses", projection)."""
        return ("synapses", target) if isinstance(target, Projection) else ("neurons", target.size)

    @staticmethod
    def _describe(elements) -> str:
        kind, what = elements
        return f"one value per synapse of {what.name!r}" if kind == "synapses" else f"{what} neurons"

    def _group_vars(self, grp: str, what: str, ref: str) -> tuple[str, dict]:
        """Per-element variables of group ``grp``: name -> what they are indexed by."""
        if grp in self.populations:
            p = self.populations[grp]
            return "population", {v: ("neurons", p.size) for v in p.model.vars}
        if grp in self.projections:
            q = self.projections[grp]
            out = {v: ("synapses", q) for v in q.weight_update.vars}
            out.update({v: ("neurons", q.pre.size) for v in q.weight_update.pre_vars})
            out.update({v: ("neurons", q.post.size) for v in q.weight_update.post_vars})
            out.update({v: ("neurons", q.post.size) for v in q.postsynaptic.vars})
            return "projection", out
        if grp in self.connectivity_updates:
            u = self.connectivity_updates[grp]
            return "connectivity update", {v: ("synapses", u.projection) for v in u.model.vars}
        if grp in self.custom_updates:
            c = self.custom_updates[grp]
            return "custom update", {v: self._elements(c.target) for v in c.model.vars}
        known = sorted(self.populations) + sorted(self.projections) + sorted(self.connectivity_updates)
        raise NetworkError(f"{what}: var_ref {ref!r} names unknown group {grp!r}; known: "
                           f"{known + sorted(self.custom_updates)}")

    def synapse_arrays(self, projection: Projection) -> list[str]:
        """Names of every per-synapse variable living in ``projection``'s index space: weight-update vars,
        then each attached connectivity update's own vars (prefixed ``<update>.``)."""
        names = list(projection.weight_update.vars)
        for u in self.connectivity_updates.values():
            if u.projection is projection:
                names += [f"{u.name}.{v}" for v in u.model.vars]
        for c in self.custom_updates.values():
            if c.target is projection:
                names += [f"{c.name}.{v}" for v in c.model.vars]
        return names

    def incoming(self, pop: Population) -> list[Projection]:
        return [p for p in self.projections.values() if p.post is pop]

    def outgoing(self, pop: Population) -> list[Projection]:
        return [p for p in self.projections.values() if p.pre is pop]

    def spike_slots(self, pop: Population) -> int:
        """Rows of the population's spike ring buffer: enough for the longest outgoing delay, plus one slot
        being written and one being cleared ahead (see codegen)."""
        return max([p.delay for p in self.outgoing(pop)], default=0) + 2
