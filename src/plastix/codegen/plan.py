"""Lowering a Network to a *plan*: transformed phase functions plus the state keys every kernel uses
(built by :mod:`plastix.codegen.names`).  The runtime allocates state under exactly these keys; emitters
write kernels over them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError, NetworkError
from ..model.network import ConnectivityUpdate, CustomUpdate, Network, Population, Projection
from ..model.specs import VarAccess
from ..kernels.rng import stream_id
from .names import NAMES, CustomKeys, PopKeys, ProjKeys, UpdateKeys, rng_stream
from .transform import Field, ScalarFunction, transform


def _fields(vars_) -> dict[str, Field]:
    return {n: Field("scalar" if v.dtype == "scalar" else "int") for n, v in vars_.items()}


def _param_fields(model, params, dt) -> dict[str, Field]:
    return {n: Field("scalar") for n in model.derive(params, dt)}


@dataclass
class PopPlan:
    pop: Population
    prefix: str
    funcs: dict[str, ScalarFunction]
    param_names: list[str]
    streams: dict[str, int]
    keys: PopKeys = None


@dataclass
class ProjPlan:
    proj: Projection
    prefix: str
    funcs: dict[str, ScalarFunction]  # weight-update phases + "apply" of the postsynaptic model
    wu_param_names: list[str]
    psm_param_names: list[str]
    streams: dict[str, int]

    uses_bits: bool = False  # keeps a per-row target bitmask ``qb_bits`` (a rule samples free targets)
    taps: bool = False  # a convolution whose serial CPU propagation may run by kernel taps (codegen.taps)
    keys: ProjKeys = None

    @property
    def needs_columns(self) -> bool:
        return "on_post" in self.funcs and not self.proj.dense


@dataclass
class UpdatePlan:
    """A connectivity update lowered to its row-kernel body (see :mod:`plastix.codegen.rowcode`)."""

    update: ConnectivityUpdate
    prefix: str
    proj: ProjPlan
    code: object  # RowCode
    param_names: list[str]
    code_incremental: object = None  # RowCode that also maintains the column view (serial CPU kernels)
    global_keys: object = None  # GlobalKeys, when the model has a global phase
    global_code: object = None  # GlobalCode, when that phase is compiled
    global_stream: int = 0
    keys: UpdateKeys = None


@dataclass(frozen=True)
class CustomField:
    """A field ``u.<name>`` of a custom update: where it lives and how the batch shares it."""

    key: str | None         # state key (None for temporaries)
    kind: str               # "own", "ref", "temp", "global" or "tape"
    access: str             # VarAccess mode (temporaries: read_write)
    per_element: bool       # has a leading batch axis in the state
    dtype: str              # "scalar" or an integer dtype
    side: str | None = None  # tapes on projections: indexed by the synapse's "pre" or "post" neuron


@dataclass
class CustomPlan:
    """A custom update lowered to its stage functions and fields (see :mod:`plastix.codegen.custom`)."""

    update: CustomUpdate
    prefix: str
    keys: CustomKeys
    stages: list[ScalarFunction]
    fields: dict[str, CustomField]
    param_names: list[str]
    stream: int
    #: runs its function once per batch element (it touches a per-element variable of a batched plan)
    batched: bool
    target_keys: object  # PopKeys or ProjKeys of the target
    array: object = None  # ArrayCode of a per="population" update (then ``stages`` is empty)

    @property
    def per_synapse(self) -> bool:
        return self.update.per_synapse

    @property
    def written(self) -> set[str]:
        if self.array is not None:
            return set(self.array.written)
        return {f for sf in self.stages for ns, f in sf.writes if ns == "u"}


@dataclass
class Plan:
    network: Network
    pops: list[PopPlan] = field(default_factory=list)
    projs: list[ProjPlan] = field(default_factory=list)
    updates: list[UpdatePlan] = field(default_factory=list)
    customs: list[CustomPlan] = field(default_factory=list)
    recorded_vars: tuple[tuple[str, str], ...] = ()  # (population name, var name)
    batch_size: int = 1
    #: state keys with one copy per batch element (a leading batch axis when ``batch_size > 1``)
    duplicated: frozenset = frozenset()

    @property
    def batched(self) -> bool:
        return self.batch_size > 1

    def pop_plan(self, pop: Population) -> PopPlan:
        return self.pops[pop.index]

    def incoming(self, pp: PopPlan) -> list[ProjPlan]:
        return [q for q in self.projs if q.proj.post is pp.pop]

    def outgoing(self, pp: PopPlan) -> list[ProjPlan]:
        return [q for q in self.projs if q.proj.pre is pp.pop]

    def stream_constants(self) -> dict[str, np.int64]:
        """The stream ids the kernels take as arguments (state scalars keyed by :func:`~.names.rng_stream`),
        derived from the group prefixes as :func:`~plastix.kernels.rng.stream_id` numbers every stream."""
        return {rng_stream(u.prefix, phase): np.int64(stream_id(u.prefix, phase))
                for u in self.updates for phase in ("row_update", "global_update")}

    def source_key(self) -> str:
        """Everything that determines generated code (not sizes or values)."""
        parts = [self.network.precision, repr(self.recorded_vars)]
        if self.batched:  # the batch size itself is a shape, not code
            parts.append("batched " + " ".join(sorted(self.duplicated)))
        for pp in self.pops:
            parts.append(f"pop {pp.prefix} spikes={pp.pop.model.spikes}")
            parts += [f.source for f in pp.funcs.values()]
        for q in self.projs:
            parts.append(f"proj {q.prefix} {q.proj.pre.index}->{q.proj.post.index} dense={q.proj.dense} "
                         f"delay={q.proj.delay} taps={q.taps}")
            parts += [f.source for f in q.funcs.values()]
        for u in self.updates:
            parts.append(f"update {u.prefix} on {u.proj.prefix} every={u.update.every} bits={u.proj.uses_bits} "
                         f"active_if={u.update.model.active_if}")
            parts += u.code.body
            if u.global_code is not None:
                parts.append(u.global_code.source)
        for c in self.customs:
            parts.append(f"custom {c.prefix} on {c.target_keys.prefix} every={c.update.every} batched={c.batched} "
                         f"scan={c.update.model.scan} events={c.update.model.events} "
                         + repr(sorted(c.fields.items())))
            parts += [sf.source for sf in c.stages] + (c.array.body if c.array is not None else [])
        return "\n".join(parts)

    def synapse_array_keys(self, q: ProjPlan) -> list[str]:
        """State keys of every per-synapse array in ``q``'s index space (moved on remove, zeroed on add)."""
        keys = [q.keys.syn(v) for v in q.proj.weight_update.vars]
        for u in self.network.connectivity_updates.values():
            if u.projection is q.proj:
                keys += [NAMES.update(u).syn(v) for v in u.model.vars]
        for c in self.network.custom_updates.values():
            if c.target is q.proj:
                keys += [NAMES.custom(c).var(v) for v in c.model.vars]
        return keys


#: Weight-update phases run per synapse (the others per pre / post neuron).
SYNAPSE_PHASES = ("on_pre", "on_post", "dynamics")

#: Access mode of a variable declared without one, by kind.
DEFAULT_ACCESS = {"neuron": VarAccess.READ_WRITE, "psm": VarAccess.READ_WRITE, "trace": VarAccess.READ_WRITE,
                  "synapse": VarAccess.READ_WRITE_SHARED}


def duplicated_keys(net: Network, recorded_vars=()) -> frozenset:
    """State keys holding one copy per batch element: neuron, postsynaptic and trace variables by their
    access mode, per-synapse variables declared per element, and every population's spike buffers."""
    keys = set()
    for pop in net.populations.values():
        k = NAMES.pop(pop)
        keys |= {k.var(v) for v, var in pop.model.vars.items()
                 if VarAccess.duplicated(var.access_or(DEFAULT_ACCESS["neuron"]))}
        keys |= {k.spk, k.spkcnt, k.flag, k.nspk, *k.rec_buffers}
    for proj in net.projections.values():
        k, wu = NAMES.proj(proj), proj.weight_update
        keys |= {k.syn(v) for v, var in wu.vars.items()
                 if VarAccess.duplicated(var.access_or(DEFAULT_ACCESS["synapse"]))}
        for side, tvars in (("pre", wu.pre_vars), ("post", wu.post_vars)):
            keys |= {k.trace(side, v) for v, var in tvars.items()
                     if VarAccess.duplicated(var.access_or(DEFAULT_ACCESS["trace"]))}
        keys |= {k.psm(v) for v, var in proj.postsynaptic.vars.items()
                 if VarAccess.duplicated(var.access_or(DEFAULT_ACCESS["psm"]))}
    for c in net.custom_updates.values():
        keys |= {NAMES.custom(c).var(v) for v, var in c.model.vars.items() if var.access == VarAccess.READ_WRITE}
        keys |= {NAMES.custom(c).glob(v) for v, var in c.model.global_vars.items()
                 if var.access == VarAccess.READ_ONLY_DUPLICATE}
    keys |= {NAMES.rec_var(r) for r in range(len(recorded_vars))}
    return frozenset(keys)


def _check_access(plan: Plan) -> None:
    """Model code never writes a read-only variable; with a batch, it never writes a shared one (batch
    elements would race on it), and connectivity updates (run between trials on the one shared
    connectivity) neither run on a schedule nor reference per-element variables."""
    def check(sf, ns, vars_, kind, where):
        for n, v in sf.writes:
            if n != ns or v not in vars_:
                continue
            access = vars_[v].access_or(DEFAULT_ACCESS[kind])
            if not VarAccess.writable(access):
                raise ModelError(f"{where}: writes {v!r}, declared {access} (model code may not write it)")
            if plan.batched and not VarAccess.duplicated(access):
                raise NetworkError(f"{where}: writes {v!r}, which is shared by the batch ({access}), but batch_size "
                                   f"is {plan.batch_size}: declare it Var(access='read_write') for one copy per batch "
                                   "element, or reduce into it with a custom update")

    for pp in plan.pops:
        for ph, sf in pp.funcs.items():
            check(sf, "n", pp.pop.model.vars, "neuron", f"population {pp.pop.name!r}, {ph}")
    for q in plan.projs:
        wu, psm = q.proj.weight_update, q.proj.postsynaptic
        for ph, sf in q.funcs.items():
            where = f"projection {q.proj.name!r}, {ph}"
            if ph == "apply":
                check(sf, "s", psm.vars, "psm", where)
                continue
            check(sf, "s", wu.vars, "synapse", where)
            check(sf, "pre", wu.pre_vars, "trace", where)
            check(sf, "post", wu.post_vars, "trace", where)
    if not plan.batched:
        return
    for u in plan.network.connectivity_updates.values():
        what = f"connectivity update {u.name!r}"
        if u.every is not None:
            raise NetworkError(f"{what}: runs every {u.every} steps inside the time loop, but batch_size is "
                               f"{plan.batch_size}: the batch shares one connectivity, so rewire between runs "
                               "(Simulation.custom_update) instead")
        per_element = [v for v in u.projection.weight_update.vars if NAMES.proj(u.projection).syn(v) in plan.duplicated]
        if per_element:
            raise NetworkError(f"{what}: projection {u.projection.name!r} has per-element synapse variables "
                               f"{per_element} and batch_size is {plan.batch_size}; rewiring moves shared synapse "
                               "state only (run the batch with shared synapse variables, or with batch_size 1)")
        for ref, target in list(u.pre_var_refs.items()) + list(u.post_var_refs.items()):
            side = u.projection.pre if ref in u.pre_var_refs else u.projection.post
            if NAMES.pop(side).var(target) in plan.duplicated:
                raise NetworkError(f"{what}: references {side.name}.{target}, which has one copy per batch element "
                                   f"(batch_size {plan.batch_size}); connectivity updates see shared state only")


def build_plan(net: Network, recorded_vars=(), batch_size: int = 1) -> Plan:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise NetworkError(f"batch_size must be a positive integer, got {batch_size!r}")
    plan = Plan(net, recorded_vars=tuple(recorded_vars), batch_size=int(batch_size),
                duplicated=duplicated_keys(net, recorded_vars))
    dt = net.dt
    for pop in net.populations.values():
        m = pop.model
        keys = NAMES.pop(pop)
        prefix = keys.prefix
        ns = {"n": _fields(m.vars), "p": _param_fields(m, pop.params, dt),
              "g": {e: Field("array") for e in m.egps}}
        funcs = {}
        for phase, fn in m.phase_functions().items():
            where = f"population {pop.name!r} (neuron model {m.name!r}), {phase}"
            funcs[phase] = transform(fn, phase, f"{prefix}_{phase}", where, ns)
        plan.pops.append(PopPlan(pop, prefix, funcs, list(m.derive(pop.params, dt)),
                                 {ph: stream_id(prefix, ph) for ph in funcs}, keys=keys))
    for proj in net.projections.values():
        wu, psm = proj.weight_update, proj.postsynaptic
        keys = NAMES.proj(proj)
        prefix = keys.prefix
        wu_params = _param_fields(wu, proj.wu_params, dt)
        ns = {"s": _fields(wu.vars), "p": wu_params, "pre": _fields(wu.pre_vars), "post": _fields(wu.post_vars)}
        # per-synapse phases also read the pre / post neurons' own variables (a trace var of the same
        # name wins); trace phases see only the traces they own
        syn_ns = dict(ns, pre={**_fields(proj.pre.model.vars), **ns["pre"]},
                      post={**_fields(proj.post.model.vars), **ns["post"]})
        funcs = {}
        for phase, fn in wu.phase_functions().items():
            where = f"projection {proj.name!r} (weight-update model {wu.name!r}), {phase}"
            funcs[phase] = transform(fn, phase, f"{prefix}_{phase}", where,
                                     syn_ns if phase in SYNAPSE_PHASES else ns)
        psm_ns = {"s": _fields(psm.vars), "p": _param_fields(psm, proj.psm_params, dt),
                  "n": _fields(proj.post.model.vars)}
        where = f"projection {proj.name!r} (postsynaptic model {psm.name!r}), apply"
        funcs["apply"] = transform(psm.apply, "apply", f"{prefix}_apply", where, psm_ns)
        plan.projs.append(ProjPlan(proj, prefix, funcs, list(wu.derive(proj.wu_params, dt)),
                                   list(psm.derive(proj.psm_params, dt)),
                                   {ph: stream_id(prefix, ph) for ph in funcs}, keys=keys))
    from .rowcode import uses_sample_free

    for upd in net.connectivity_updates.values():
        if uses_sample_free(upd.model.row_update):
            plan.projs[upd.projection.index].uses_bits = True
    for upd in net.connectivity_updates.values():
        plan.updates.append(_update_plan(plan, upd))
    for cu in net.custom_updates.values():
        plan.customs.append(_custom_plan(plan, cu))
    from .taps import propagates_by_taps

    for q in plan.projs:
        q.taps = propagates_by_taps(plan, q)
    _check_access(plan)
    return plan


def _referenced_var(net: Network, group: str, var: str):
    """The :class:`~plastix.model.specs.Var` behind ``group.var`` and its kind's default access."""
    if group in net.populations:
        return net.populations[group].model.vars[var], DEFAULT_ACCESS["neuron"]
    if group in net.projections:
        q = net.projections[group]
        wu = q.weight_update
        for vars_, kind in ((wu.vars, "synapse"), (wu.pre_vars, "trace"), (wu.post_vars, "trace"),
                            (q.postsynaptic.vars, "psm")):
            if var in vars_:
                return vars_[var], DEFAULT_ACCESS[kind]
    if group in net.connectivity_updates:
        return net.connectivity_updates[group].model.vars[var], VarAccess.READ_WRITE_SHARED
    return net.custom_updates[group].model.vars[var], VarAccess.READ_WRITE_SHARED


def _custom_plan(plan: Plan, cu: CustomUpdate) -> CustomPlan:
    net, m = plan.network, cu.model
    keys = NAMES.custom(cu)
    where = f"custom update {cu.name!r} (model {m.name!r})"
    fields: dict[str, CustomField] = {}
    for v, var in m.vars.items():
        key = keys.var(v)
        fields[v] = CustomField(key, "own", var.access_or(VarAccess.READ_WRITE_SHARED),
                                plan.batched and key in plan.duplicated, var.dtype)
    for ref, (grp, v) in cu.var_refs.items():
        var, _ = _referenced_var(net, grp, v)
        key = NAMES.var_of(net, grp, v)
        fields[ref] = CustomField(key, "ref", m.var_refs[ref], plan.batched and key in plan.duplicated, var.dtype)
    for t in m.temps:
        fields[t] = CustomField(None, "temp", VarAccess.READ_WRITE, False, "scalar")
    for ref, (side, pop, v) in cu.tape_refs.items():
        if (pop, v) not in plan.recorded_vars:
            raise NetworkError(f"{where}: tape_ref {ref!r} -> {pop}.{v} is not recorded (the simulation records "
                               "tapes at build)")
        key = NAMES.rec_var(plan.recorded_vars.index((pop, v)))
        fields[ref] = CustomField(key, "tape", m.tape_refs[ref], plan.batched,
                                  net.populations[pop].model.vars[v].dtype, side)
    for g, var in m.global_vars.items():
        key = keys.glob(g)
        fields[g] = CustomField(key, "global", var.access_or(VarAccess.READ_ONLY),
                                plan.batched and key in plan.duplicated, var.dtype)
    params = list(m.derive(cu.params, net.dt))
    ns = {"u": {n: Field("scalar" if f.dtype == "scalar" else "int") for n, f in fields.items()},
          "p": {n: Field("scalar") for n in params}}
    array = None
    if m.per == "population":
        from .arraycode import array_code

        stages = []
        array = array_code(m.stages, fields, set(params), {n for n, f in fields.items() if f.kind == "global"}, where)
        written = set(array.written)
    else:
        stages = [transform(fn, "custom", f"{keys.prefix}_stage{k}", f"{where}, stage {k}", ns)
                  for k, fn in enumerate(m.stages)]
        written = {f for sf in stages for n, f in sf.writes if n == "u"}
    batched = any(f.per_element for f in fields.values())
    for name, f in fields.items():
        if f.kind == "tape" and f.access == VarAccess.ACCUMULATE and not (cu.per_synapse and f.side == "pre"):
            raise ModelError(f"{where}: tape_ref {name!r} accumulates (access 'accumulate'): bind it to 'pre.<var>' "
                             "of the projection the update runs over")
    if cu.per_synapse:
        bad = sorted(n for n in written if fields[n].kind == "tape" and fields[n].access != VarAccess.ACCUMULATE)
        if bad:
            raise ModelError(f"{where}: a per-synapse update may not write tapes {bad}: the synapses of one neuron "
                             "would race on its value (write per-synapse variables or reductions instead)")
    if m.events:
        bad = sorted(n for n in written if fields[n].kind != "temp" and fields[n].access != VarAccess.REDUCE_SUM)
        if bad:
            raise ModelError(f"{where}: events='pre_spikes' sums over events: it may assign only reduce_sum "
                             f"variables and temporaries, but writes {bad}")
    for name, f in fields.items():
        if f.access in VarAccess.REDUCTIONS:
            if f.dtype != "scalar":
                raise ModelError(f"{where}: {name!r} is a reduction ({f.access}) but has integer type {f.dtype}")
            if f.per_element:
                raise NetworkError(f"{where}: {name!r} reduces over the batch ({f.access}) into "
                                   f"{f.key}, which has one copy per batch element; reduce into a shared variable")
        if name in written and f.kind == "global":
            raise ModelError(f"{where}: writes {name!r}, a global var (read-only in update code; set it from the "
                             "host with Simulation.set)")
        if name in written and f.access == VarAccess.READ_ONLY:
            raise ModelError(f"{where}: writes {name!r}, a {'tape_ref' if f.kind == 'tape' else 'var_ref'} declared "
                             "read_only")
        if (name in written and batched and f.kind != "temp" and not f.per_element
                and f.access not in VarAccess.REDUCTIONS):
            raise NetworkError(f"{where}: writes {name!r}, which is shared by the batch, while the update runs once "
                               f"per batch element (it touches per-element variables); declare {name!r} a "
                               "reduction (reduce_sum / reduce_mean / reduce_max)")
    if cu.every is not None and plan.batched:
        raise NetworkError(f"{where}: runs every {cu.every} steps inside the time loop, which needs batch_size 1 "
                           f"(got {plan.batch_size}); run it between runs with Simulation.custom_update")
    target_keys = NAMES.proj(cu.target) if cu.per_synapse else NAMES.pop(cu.target)
    return CustomPlan(cu, keys.prefix, keys, stages, fields, params, stream_id(keys.prefix, "custom"), batched,
                      target_keys, array)


def _update_plan(plan: Plan, upd: ConnectivityUpdate) -> UpdatePlan:
    from .rowcode import RowKeys, row_code

    q = plan.projs[upd.projection.index]
    m = upd.model
    ukeys = NAMES.update(upd)
    prefix = ukeys.prefix
    owner = {v: q.keys.syn(v) for v in q.proj.weight_update.vars}
    for other in plan.network.connectivity_updates.values():
        if other.projection is upd.projection:
            owner.update({v: NAMES.update(other).syn(v) for v in other.model.vars})
    syn = {v: ukeys.syn(v) for v in m.vars}
    syn.update({ref: owner[target] for ref, target in upd.var_refs.items()})
    pre_keys, post_keys = NAMES.pop(upd.projection.pre), NAMES.pop(upd.projection.post)
    params = list(m.derive(upd.params, plan.network.dt))
    updates = plan.network.connectivity_updates
    keys = RowKeys(
        ind=q.keys.ind, rowlen=q.keys.rowlen, synapse_arrays=plan.synapse_array_keys(q), syn=syn,
        row={**{v: ukeys.row(v) for v in m.row_vars},
             **{ref: NAMES.update(updates[o]).row(v) for ref, (o, v) in upd.row_var_refs.items()}},
        pre={ref: pre_keys.var(t) for ref, t in upd.pre_var_refs.items()},
        post={ref: post_keys.var(t) for ref, t in upd.post_var_refs.items()},
        params={n: ukeys.param(n) for n in params},
        bits=q.keys.bits if q.uses_bits else None,
        collen=q.keys.collen if q.needs_columns else None, part=upd.part)
    where = f"connectivity update {upd.name!r} (model {m.name!r}) on projection {upd.projection.name!r}"
    code = row_code(m.row_update, keys, where, rng_stream(prefix, "row_update"))
    up = UpdatePlan(upd, prefix, q, code, params, keys=ukeys)
    if q.needs_columns:
        import dataclasses

        inc_keys = dataclasses.replace(keys, colsyn=q.keys.colsyn)
        up.code_incremental = row_code(m.row_update, inc_keys, where, rng_stream(prefix, "row_update"))
    if m.global_update is not None:
        from .globalcode import GlobalKeys, global_code

        up.global_keys = GlobalKeys(rows=dict(keys.row), rowlen=keys.rowlen, ind=keys.ind,
                                    glob={v: ukeys.glob(v) for v in m.global_vars}, params=dict(keys.params),
                                    parts=upd.part.parts if upd.part is not None else 1,
                                    stream=rng_stream(prefix, "global_update"))
        up.global_stream = stream_id(prefix, "global_update")
        if m.global_mode == "compiled":
            up.global_code = global_code(m.global_update, up.global_keys, f"{prefix}_global", where)
    return up
