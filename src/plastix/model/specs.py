"""Model descriptions: neuron, postsynaptic and weight-update models as plain Python functions.

A model is a schema (params, vars, derived params, extra global arrays) plus one Python function per
phase.  Phase functions are written *per element* (one neuron, one synapse) and reach state through
namespaces named by their arguments, e.g. ``def sim(n, p, i_syn, dt): n.v += ...``.  Which argument
names a phase accepts, and which namespaces it may write, is fixed by :data:`PHASES`; code generation
(:mod:`plastix.codegen`) turns the functions into CPU and CUDA kernels.  This module never imports numba.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import ModelError

#: Integer dtypes a variable may have besides the network's float ("scalar") type.
INT_DTYPES = ("int32", "int64")


class VarAccess:
    """How a variable is shared by the elements of a batch (``Simulation(net, batch_size=B)``) and whether
    model code may write it (GeNN's vocabulary).

    * ``READ_WRITE``: one copy per batch element, read and written by model code;
    * ``READ_ONLY_DUPLICATE``: one copy per batch element, model code only reads it (set from the host);
    * ``READ_ONLY``: one copy shared by the batch, model code only reads it;
    * ``READ_WRITE_SHARED``: one copy shared by the batch that model code may write -- only while the batch
      size is 1 (with more, elements would race on it: reduce into it with a custom update instead).

    A variable declared without an access mode takes its kind's default: neuron, postsynaptic and trace
    variables ``READ_WRITE``; per-synapse variables ``READ_WRITE_SHARED`` (weights are one copy for the
    batch; declare per-element synaptic traces ``READ_WRITE``); connectivity-update variables are always
    shared (connectivity is one copy; it changes between trials).
    """

    READ_WRITE = "read_write"
    READ_ONLY_DUPLICATE = "read_only_duplicate"
    READ_ONLY = "read_only"
    READ_WRITE_SHARED = "read_write_shared"
    ALL = (READ_WRITE, READ_ONLY_DUPLICATE, READ_ONLY, READ_WRITE_SHARED)
    #: Custom updates only: the variable is shared by the batch and written as the sum / mean / max over
    #: the batch elements of what the update function assigns to it (in element order: deterministic).
    REDUCE_SUM = "reduce_sum"
    REDUCE_MEAN = "reduce_mean"
    REDUCE_MAX = "reduce_max"
    REDUCTIONS = (REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX)
    #: Tape references of per-synapse scans only, bound to ``pre.<var>``: at every step what the update
    #: assigns is added to the presynaptic neuron's tape at the step whose value reached the synapse
    #: (1 + delay steps earlier), per batch element -- the transpose of reading ``pre.<var>``, e.g. BPTT's
    #: adjoint carried back through a projection.  The slot should be a variable the run leaves at 0.
    ACCUMULATE = "accumulate"

    @staticmethod
    def duplicated(access: str) -> bool:
        """One copy per batch element?"""
        return access in (VarAccess.READ_WRITE, VarAccess.READ_ONLY_DUPLICATE)

    @staticmethod
    def writable(access: str) -> bool:
        """May model code write it?"""
        return access in (VarAccess.READ_WRITE, VarAccess.READ_WRITE_SHARED)


@dataclass(frozen=True)
class Var:
    """A state variable: ``init`` is its default initial value; ``dtype`` "scalar" follows the network
    precision, or one of :data:`INT_DTYPES`; ``access`` one of :class:`VarAccess` (None: the default of
    the variable's kind)."""

    init: float = 0.0
    dtype: str = "scalar"
    doc: str = ""
    access: str | None = None

    def __post_init__(self):
        if self.dtype != "scalar" and self.dtype not in INT_DTYPES:
            raise ModelError(f"Var dtype must be 'scalar' or one of {INT_DTYPES}, got {self.dtype!r}")
        if self.access is not None and self.access not in VarAccess.ALL + VarAccess.REDUCTIONS:
            raise ModelError(f"Var access must be one of {VarAccess.ALL + VarAccess.REDUCTIONS} (or None), "
                             f"got {self.access!r}")

    def access_or(self, default: str) -> str:
        return self.access if self.access is not None else default


@dataclass(frozen=True)
class Phase:
    """What a phase function may see.  ``namespaces`` maps argument name -> (role, writable)."""

    namespaces: Mapping[str, tuple[str, bool]]
    scalars: tuple[str, ...]
    returns: str | None = None  # "bool" or "scalar" when the function must return a value
    rng: bool = True
    add_to_post: bool = False


_COMMON = ("dt", "t")
#: Phase name -> Phase.  Roles: "vars" (the model's own vars), "params", "egps", "pre", "post", "target".
PHASES: dict[str, Phase] = {
    # neuron models
    "sim": Phase({"n": ("vars", True), "p": ("params", False), "g": ("egps", False)}, _COMMON + ("i_syn",)),
    "threshold": Phase({"n": ("vars", False), "p": ("params", False), "g": ("egps", False)}, _COMMON, "bool"),
    "reset": Phase({"n": ("vars", True), "p": ("params", False), "g": ("egps", False)}, _COMMON),
    # postsynaptic models: s = the model's per-target vars (in_syn included), n = target neuron (read-only)
    "apply": Phase({"s": ("vars", True), "p": ("params", False), "n": ("target", False)}, _COMMON, "scalar"),
    # weight-update models, per synapse
    "on_pre": Phase({"s": ("vars", True), "p": ("params", False), "pre": ("pre", False), "post": ("post", False)},
                    _COMMON, add_to_post=True),
    "on_post": Phase({"s": ("vars", True), "p": ("params", False), "pre": ("pre", False), "post": ("post", False)},
                     _COMMON),
    "dynamics": Phase({"s": ("vars", True), "p": ("params", False), "pre": ("pre", False), "post": ("post", False)},
                      _COMMON, add_to_post=True),
    # weight-update models, per pre / post neuron (traces), run inside the neuron update
    "pre_dynamics": Phase({"pre": ("pre", True), "p": ("params", False)}, _COMMON),
    "pre_spike": Phase({"pre": ("pre", True), "p": ("params", False)}, _COMMON),
    "post_dynamics": Phase({"post": ("post", True), "p": ("params", False)}, _COMMON),
    "post_spike": Phase({"post": ("post", True), "p": ("params", False)}, _COMMON),
    # custom updates, per neuron or per synapse: u = own vars, variable references and temporaries
    "custom": Phase({"u": ("vars", True), "p": ("params", False)}, _COMMON + ("row", "rows")),
    # connectivity updates, per row (presynaptic neuron): see ConnectivityUpdateModel
    "row_update": Phase({"row": ("row", True), "p": ("params", False), "pre": ("pre", True),
                         "post": ("post", False)}, _COMMON),
}


def _as_vars(vars_: Mapping[str, float | Var] | None, what: str) -> dict[str, Var]:
    out = {}
    for name, v in (vars_ or {}).items():
        _check_name(name, what)
        out[name] = v if isinstance(v, Var) else Var(float(v))
    return out


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ModelError(f"{what} name {name!r} must be a Python identifier not starting with '_'")


@dataclass(frozen=True)
class _Model:
    name: str
    params: Mapping[str, float] = field(default_factory=dict)
    vars: Mapping[str, Var] = field(default_factory=dict)
    derived: Mapping[str, Callable] = field(default_factory=dict)
    doc: str = ""

    _phase_names: tuple[str, ...] = ()

    def _validate(self) -> None:
        for n in self.params:
            _check_name(n, "param")
        for n in self.derived:
            _check_name(n, "derived param")
        clash = (set(self.params) | set(self.derived)) & set(self.vars)
        if clash:
            raise ModelError(f"model {self.name!r}: names used both as param and var: {sorted(clash)}")

    def derive(self, params: Mapping[str, float], dt: float) -> dict[str, float]:
        """All params plus derived params (computed in float64 on the host)."""
        out = {k: float(v) for k, v in params.items()}
        for name, fn in self.derived.items():
            out[name] = float(fn(out, dt))
        return out

    def phase_functions(self) -> dict[str, Callable]:
        return {ph: getattr(self, ph) for ph in self._phase_names if getattr(self, ph) is not None}

    def with_params(self, **params: float):
        """A copy of the model with other default parameter values."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise ModelError(f"model {self.name!r} has no params {sorted(unknown)}; known: {sorted(self.params)}")
        new = dict(self.params)
        new.update({k: float(v) for k, v in params.items()})
        return _replace(self, params=new)


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


@dataclass(frozen=True)
class NeuronModel(_Model):
    """A neuron model.

    ``sim(n, p, g, i_syn, dt, t, rng)`` advances one neuron by one step; ``threshold(...)`` returns True
    when it spikes; ``reset(...)`` runs after a spike.  ``egps`` names extra global arrays (e.g. spike
    times) readable as ``g.name[index]``.  Any argument subset may be used, by name.
    """

    sim: Callable | None = None
    threshold: Callable | None = None
    reset: Callable | None = None
    egps: tuple[str, ...] = ()
    _phase_names: tuple[str, ...] = ("sim", "threshold", "reset")

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        object.__setattr__(self, "vars", _as_vars(self.vars, "var"))
        self._validate()
        if self.reset is not None and self.threshold is None:
            raise ModelError(f"neuron model {self.name!r} has reset code but no threshold")

    @property
    def spikes(self) -> bool:
        return self.threshold is not None


@dataclass(frozen=True)
class PostsynapticModel(_Model):
    """How a projection's per-target input accumulator ``in_syn`` becomes a current.

    ``apply(s, p, n, dt)`` returns the current (nA) for this step and updates ``s.in_syn`` (and any other
    vars of ``s``); ``n`` is the target neuron's state (read-only).
    """

    apply: Callable | None = None
    _phase_names: tuple[str, ...] = ("apply",)

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        vs = _as_vars(self.vars, "var")
        vs.setdefault("in_syn", Var(0.0, doc="input accumulated from presynaptic spikes"))
        object.__setattr__(self, "vars", vs)
        self._validate()
        if self.apply is None:
            raise ModelError(f"postsynaptic model {self.name!r} needs an apply function")


@dataclass(frozen=True)
class WeightUpdateModel(_Model):
    """Per-synapse learning and transmission.

    ``vars`` are per synapse; ``pre_vars`` / ``post_vars`` are per presynaptic / postsynaptic neuron
    (e.g. traces).  Phases: ``on_pre`` (per synapse of a spiking row, may call ``add_to_post(x)``),
    ``on_post`` (per incoming synapse of a spiking target), ``dynamics`` (every synapse, every step),
    and the trace phases ``pre_dynamics``, ``pre_spike``, ``post_dynamics``, ``post_spike``.
    """

    pre_vars: Mapping[str, Var] = field(default_factory=dict)
    post_vars: Mapping[str, Var] = field(default_factory=dict)
    on_pre: Callable | None = None
    on_post: Callable | None = None
    dynamics: Callable | None = None
    pre_dynamics: Callable | None = None
    pre_spike: Callable | None = None
    post_dynamics: Callable | None = None
    post_spike: Callable | None = None
    _phase_names: tuple[str, ...] = ("on_pre", "on_post", "dynamics", "pre_dynamics", "pre_spike",
                                     "post_dynamics", "post_spike")

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        object.__setattr__(self, "vars", _as_vars(self.vars, "synapse var"))
        object.__setattr__(self, "pre_vars", _as_vars(self.pre_vars, "pre var"))
        object.__setattr__(self, "post_vars", _as_vars(self.post_vars, "post var"))
        self._validate()


@dataclass(frozen=True)
class ConnectivityUpdateModel(_Model):
    """A structural-plasticity rule: Python code run once per row (presynaptic neuron) that may remove
    and add synapses of a sparse projection.

    ``row_update(row, p, pre, post, rng, dt, t)`` (any argument subset, by name) sees:

    * ``row.index``, ``row.length``, ``row.capacity`` (row stride), ``row.num_post``, and the rule's own
      per-row ``row_vars`` as ``row.<name>`` (read/write);
    * ``for s in row.synapses:`` — the row's synapses, removal-safe: ``s.j`` is the target, ``s.<name>``
      any of the rule's own per-synapse ``vars`` or ``var_refs`` (the projection's per-synapse variables it
      was attached to), ``s.remove()`` deletes the synapse when its iteration ends (swap-remove: the
      row's last synapse moves into this slot and is visited next; every per-synapse array of the
      projection moves with it);
    * ``row.add(j, name=value, ...)`` appends a synapse to target ``j``; other per-synapse values start at
      0.  As a statement a full row raises :class:`~plastix.errors.CapacityError`; as an expression it
      returns False instead (the failure is counted);
    * ``row.remove_slot(k)`` — remove the synapse in slot ``k`` (outside synapse loops; swap-remove);
    * ``row.random_slot()`` — a uniformly random occupied slot in ``[0, row.length)`` (-1 for an empty
      row; it takes words in turn with ``sample_free`` from one stream), e.g.
      ``row.remove_slot(row.random_slot())`` for random turnover; on the CPU its first draw per row is
      made a few rows ahead and the synapse's cache lines are prefetched;
    * ``row.sample_free()`` — a uniformly random target not connected from this row (-1 if none); the
      projection then keeps a per-row bitmask of targets (``num_pre * num_post / 8`` bytes) that every
      rule on it maintains;
    * ``row.in_degree(j)`` — target ``j``'s number of incoming synapses in this projection as of the
      last column-view rebuild (needs a weight-update model with on_post code), e.g. for fan-in caps;
    * ``row.smallest_magnitude("name", n)`` — the n-th smallest (0-based) ``|s.name|`` in the row (+inf
      if the row has n or fewer synapses), for magnitude-based pruning;
    * ``row.remove_weakest("name", n)`` — remove exactly the ``n`` synapses with the smallest ``|s.name|``
      (ties: lowest slots first; outside synapse loops), touching only those slots — SET's pruning step;
    * ``row.owns(j)`` — whether this process holds target ``j`` (always, for a valid ``j``, in one process;
      a partitioned simulation's rank holds its block of the targets), ``row.total_length`` and
      ``row.offset`` — the whole row's synapse count and those on lower ranks (``row.length`` and 0 in one
      process): with them a rule written for the whole row keeps its meaning on a rank's part of it
      (docs/mpi.md, "Row code on a rank's part");
    * ``pre.<name>`` — ``pre_var_refs`` of the row's presynaptic neuron (read/write); ``post.<name>`` —
      ``post_var_refs`` of the current synapse's target (read-only, inside the synapse loop);
    * ``p`` params, ``rng.uniform()`` / ``rng.normal()`` (counter-based), ``dt``, ``t``.

    ``active_if`` names a per-row variable: rows where it is 0 are skipped before any of their state is
    touched (e.g. a global phase marks the few rows that rewire this step).

    ``row_var_refs`` name per-row variables of *other* updates (e.g. counts a pruning rule left behind),
    seen as ``row.<name>`` like the rule's own.

    ``global_update(glob, rows, p, rng, dt, t)`` (optional) runs once *before* the rows, for budgets and
    reductions across rows.  It is written with whole-array numpy operations over ``rows.<name>`` (arrays
    over the rows: own row vars, row_var_refs, and ``rows.length``), ``rows.count``, ``rows.capacity`` and
    ``rows.parts`` (1; a partitioned simulation's ranks, its rows then being each rank's part, rank-major),
    reads and writes the model's ``global_vars`` as ``glob.<name>`` (scalars), and draws arrays of
    counter-based random numbers with ``rng.uniform(n)`` / ``rng.normal(n)``.  It is compiled with
    ``numba.njit(parallel=True)`` (array expressions run multi-threaded).  With ``global_mode="python"``
    it instead runs as plain Python on numpy arrays (``rng.uniform(n)`` / ``rng.normal(n)`` then come from a
    numpy Generator seeded by seed and step) — for the rare rule numba cannot compile.
    """

    row_vars: Mapping[str, Var] = field(default_factory=dict)
    global_vars: Mapping[str, Var] = field(default_factory=dict)
    var_refs: tuple[str, ...] = ()
    pre_var_refs: tuple[str, ...] = ()
    post_var_refs: tuple[str, ...] = ()
    row_var_refs: tuple[str, ...] = ()
    row_update: Callable | None = None
    global_update: Callable | None = None
    global_mode: str = "compiled"
    active_if: str | None = None  # a row var / row_var_ref: rows where it is 0 are not visited at all
    _phase_names: tuple[str, ...] = ("row_update",)

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        object.__setattr__(self, "vars", _as_vars(self.vars, "synapse var"))
        object.__setattr__(self, "row_vars", _as_vars(self.row_vars, "row var"))
        object.__setattr__(self, "global_vars", _as_vars(self.global_vars, "global var"))
        if self.global_mode not in ("compiled", "python"):
            raise ModelError(f"connectivity update {self.name!r}: global_mode must be 'compiled' or 'python', "
                             f"got {self.global_mode!r}")
        if self.active_if is not None and self.active_if not in set(self.row_vars) | set(self.row_var_refs):
            raise ModelError(f"connectivity update {self.name!r}: active_if must name a row var or row_var_ref, "
                             f"got {self.active_if!r}")
        clash = set(self.row_vars) & set(self.row_var_refs)
        if clash:
            raise ModelError(f"connectivity update {self.name!r}: {sorted(clash)} are both row vars and row_var_refs")
        for group in ("var_refs", "pre_var_refs", "post_var_refs", "row_var_refs"):
            names = tuple(getattr(self, group))
            for n in names:
                _check_name(n, group[:-1].replace("_", " "))
            object.__setattr__(self, group, names)
        self._validate()
        clash = set(self.vars) & set(self.var_refs)
        if clash:
            raise ModelError(f"connectivity update {self.name!r}: {sorted(clash)} are both own vars and var_refs")
        if self.row_update is None:
            raise ModelError(f"connectivity update {self.name!r} needs a row_update function")


@dataclass(frozen=True)
class CustomUpdateModel(_Model):
    """An update run on demand (``Simulation.custom_update(group)``) or on a schedule, once per element of
    a population (per neuron) or of a projection (per existing synapse): optimiser steps, gradient
    reductions, resets, weight normalisation.

    ``update(u, p, rng, dt, t, row, rows)`` (any argument subset, by name) is written for one element
    (``row`` / ``rows``: the tape step being visited and the number of recorded steps, for updates over
    the tape; 0 and 1 otherwise) and reaches, through ``u``:

    * its own ``vars`` (one per element; e.g. Adam's moments, which move with their synapse when the
      projection rewires),
    * ``var_refs``: variables of other groups bound when the update is attached
      (:meth:`~plastix.Network.add_custom_update`); the model declares each reference's access:
      :class:`VarAccess` ``READ_ONLY`` or ``READ_WRITE``, or a reduction ``REDUCE_SUM`` / ``REDUCE_MEAN`` /
      ``REDUCE_MAX``: write-only, into a variable shared by the batch, which receives the sum / mean / max
      over the batch elements of what the function assigns (elements in order: deterministic);
    * ``temps``: local scalars starting at 0 for each element, shared by the stages, stored nowhere;
    * ``global_vars``: read-only scalars for the whole target (e.g. a reward signal), set from the host
      with ``Simulation.set``; ``Var(access=VarAccess.READ_ONLY_DUPLICATE)`` gives one per batch element.

    ``update`` may be a tuple of functions (stages) run in order on the same element, each seeing the
    others' writes: small composable pieces (see :mod:`plastix.learning.optimizers`).

    **Over the tape of the last run.**  ``tape_refs`` (name -> ``READ_ONLY`` / ``READ_WRITE``) are neuron
    variables recorded at every step of the last ``Simulation.run`` call, per batch element (the
    simulation records them itself, without keeping host copies).  Such an update runs over time:

    * ``scan="forward"`` / ``"backward"``: for every element (and batch element) the function runs once
      per recorded step, in time order or reversed; ``u.<tape ref>`` is the value at that step (writes
      go back to the tape), temporaries carry over from step to step (an accumulator such as a filtered
      trace), reductions accumulate over steps and batch elements (sum and max over both; mean: the sum
      divided by the batch size);
    * ``events="pre_spikes"`` (projection targets): the function runs only at the steps where a spike of
      the synapse's presynaptic neuron arrives -- work proportional to presynaptic events times row length,
      not synapses times steps -- and may only assign ``REDUCE_SUM`` variables (the sum over events).

    On a projection, a tape reference names ``"pre.<var>"`` or ``"post.<var>"``.  A synapse sees what
    meets at it: at step t its postsynaptic neuron's value at t and its presynaptic neuron's value from
    step t - 1 - delay (what the presynaptic side sent then arrives now; 0 before the tape starts); an
    event is the step a presynaptic spike arrives (1 + delay after it was emitted; spikes arriving after
    the last recorded step are not on the tape).  Per-synapse updates do not write tapes.

    **Whole populations.**  With ``per="population"`` (population targets) the function runs once per
    batch element (and, with ``scan``, per recorded step) and sees every field as a numpy array over
    neurons: own vars and references to any population's variables (any size), a dense projection's
    per-synapse variable as its [pre, post] matrix, global vars as scalars, and tapes -- with ``scan``
    the recorded step's values, without it the element's whole tape as a [steps, neurons] array (for
    code that pairs different steps; ``rows`` is the number of steps).  It is written
    with whole-array numpy operations (``np.exp(u.y - u.y.max())``, ``u.W @ u.e``, ``u.err[u.label] -= 1``)
    and compiled with numba -- for what couples neurons (a softmax, a feedback matrix); assigning
    ``u.x = expr`` writes every element of ``x``.  No reductions, temps or random numbers: compute sums
    with numpy.  On CUDA it runs on the host over copies of the arrays.

    With a batch, an update that references a per-element variable runs its function once per batch
    element (in order) for every element it updates; writing a shared non-reduction variable from such
    an update is an error (the elements would overwrite each other).
    """

    var_refs: Mapping[str, str] = field(default_factory=dict)
    temps: tuple[str, ...] = ()
    global_vars: Mapping[str, Var] = field(default_factory=dict)
    tape_refs: Mapping[str, str] = field(default_factory=dict)
    scan: str | None = None
    events: str | None = None
    per: str = "element"
    update: Callable | tuple | None = None
    _phase_names: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        vs = _as_vars(self.vars, "var")
        for name, v in vs.items():
            if v.access not in (None, VarAccess.READ_WRITE_SHARED, VarAccess.READ_WRITE) + VarAccess.REDUCTIONS:
                raise ModelError(f"custom update {self.name!r}: var {name!r} access must be read_write_shared "
                                 f"(default: one copy for the batch), read_write (one per batch element) or a "
                                 f"reduction {VarAccess.REDUCTIONS}, got {v.access!r}")
        object.__setattr__(self, "vars", vs)
        refs = dict(self.var_refs or {})
        allowed = (VarAccess.READ_ONLY, VarAccess.READ_WRITE) + VarAccess.REDUCTIONS
        for name, access in refs.items():
            _check_name(name, "var_ref")
            if access not in allowed:
                raise ModelError(f"custom update {self.name!r}: var_ref {name!r} access must be one of {allowed}, "
                                 f"got {access!r}")
        object.__setattr__(self, "var_refs", refs)
        temps = tuple(self.temps)
        for t in temps:
            _check_name(t, "temp")
        object.__setattr__(self, "temps", temps)
        gv = _as_vars(self.global_vars, "global var")
        for name, v in gv.items():
            if v.access not in (None, VarAccess.READ_ONLY, VarAccess.READ_ONLY_DUPLICATE):
                raise ModelError(f"custom update {self.name!r}: global var {name!r} access must be read_only "
                                 f"(default) or read_only_duplicate (one per batch element), got {v.access!r}")
        object.__setattr__(self, "global_vars", gv)
        tapes = dict(self.tape_refs or {})
        for name, access in tapes.items():
            _check_name(name, "tape_ref")
            if access not in (VarAccess.READ_ONLY, VarAccess.READ_WRITE, VarAccess.ACCUMULATE):
                raise ModelError(f"custom update {self.name!r}: tape_ref {name!r} access must be read_only, "
                                 f"read_write or accumulate, got {access!r}")
            if access == VarAccess.ACCUMULATE and not (self.scan and self.per == "element"):
                raise ModelError(f"custom update {self.name!r}: tape_ref {name!r} accumulates into the presynaptic "
                                 "tape: it needs a per-synapse scan (scan='forward' / 'backward')")
        object.__setattr__(self, "tape_refs", tapes)
        if self.scan not in (None, "forward", "backward"):
            raise ModelError(f"custom update {self.name!r}: scan must be 'forward', 'backward' or None, "
                             f"got {self.scan!r}")
        if self.events not in (None, "pre_spikes"):
            raise ModelError(f"custom update {self.name!r}: events must be 'pre_spikes' or None, got {self.events!r}")
        if self.per not in ("element", "population"):
            raise ModelError(f"custom update {self.name!r}: per must be 'element' or 'population', got {self.per!r}")
        if self.per == "population":
            if self.events:
                raise ModelError(f"custom update {self.name!r}: events='pre_spikes' runs per synapse, not "
                                 "per='population'")
            bad = [n for n, v in vs.items() if v.access in VarAccess.REDUCTIONS]
            bad += [n for n, a in refs.items() if a in VarAccess.REDUCTIONS]
            if bad or temps:
                raise ModelError(f"custom update {self.name!r}: per='population' functions compute with whole "
                                 f"arrays: no reductions or temps ({sorted(bad) + list(temps)}); use numpy sums")
        if self.scan and self.events:
            raise ModelError(f"custom update {self.name!r}: give scan or events, not both")
        if tapes and not (self.scan or self.events or self.per == "population"):
            raise ModelError(f"custom update {self.name!r}: tape_refs need scan='forward' / 'backward', "
                             "events='pre_spikes' or per='population' (the update runs over the recorded steps)")
        self._validate()
        names = [*vs, *refs, *temps, *gv, *tapes]
        clash = {n for n in names if names.count(n) > 1}
        if clash:
            raise ModelError(f"custom update {self.name!r}: {sorted(clash)} used twice among vars, var_refs, temps, "
                             "global vars and tape refs")
        stages = self.update if isinstance(self.update, tuple) else (self.update,)
        if not stages or any(not callable(f) for f in stages):
            raise ModelError(f"custom update {self.name!r} needs an update function (or a tuple of them)")

    @property
    def over_time(self) -> bool:
        """Does it read the tape of the last run (a scan, presynaptic events, or tape refs)?"""
        return bool(self.scan or self.events or self.tape_refs)

    @property
    def stages(self) -> tuple[Callable, ...]:
        return self.update if isinstance(self.update, tuple) else (self.update,)


def decay(tau_param: str) -> Callable:
    """Derived-param helper: ``exp(-dt / p[tau_param])``."""

    def fn(p, dt):
        tau = p[tau_param]
        if not tau > 0:
            raise ModelError(f"param {tau_param} must be > 0 ms, got {tau}")
        return math.exp(-dt / tau)

    return fn
