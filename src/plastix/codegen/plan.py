"""Lowering a Network to a *plan*: transformed phase functions plus the state keys every kernel uses
(built by :mod:`plastix.codegen.names`).  The runtime allocates state under exactly these keys; emitters
write kernels over them."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.network import ConnectivityUpdate, Network, Population, Projection
from ..kernels.rng import stream_id
from .names import NAMES, PopKeys, ProjKeys, UpdateKeys
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


@dataclass
class Plan:
    network: Network
    pops: list[PopPlan] = field(default_factory=list)
    projs: list[ProjPlan] = field(default_factory=list)
    updates: list[UpdatePlan] = field(default_factory=list)
    recorded_vars: tuple[tuple[str, str], ...] = ()  # (population name, var name)

    def pop_plan(self, pop: Population) -> PopPlan:
        return self.pops[pop.index]

    def incoming(self, pp: PopPlan) -> list[ProjPlan]:
        return [q for q in self.projs if q.proj.post is pp.pop]

    def outgoing(self, pp: PopPlan) -> list[ProjPlan]:
        return [q for q in self.projs if q.proj.pre is pp.pop]

    def source_key(self) -> str:
        """Everything that determines generated code (not sizes or values)."""
        parts = [self.network.precision, repr(self.recorded_vars)]
        for pp in self.pops:
            parts.append(f"pop {pp.prefix} spikes={pp.pop.model.spikes}")
            parts += [f.source for f in pp.funcs.values()]
        for q in self.projs:
            parts.append(f"proj {q.prefix} {q.proj.pre.index}->{q.proj.post.index} dense={q.proj.dense} "
                         f"delay={q.proj.delay}")
            parts += [f.source for f in q.funcs.values()]
        for u in self.updates:
            parts.append(f"update {u.prefix} on {u.proj.prefix} every={u.update.every} bits={u.proj.uses_bits} "
                         f"active_if={u.update.model.active_if}")
            parts += u.code.body
            if u.global_code is not None:
                parts.append(u.global_code.source)
        return "\n".join(parts)

    def synapse_array_keys(self, q: ProjPlan) -> list[str]:
        """State keys of every per-synapse array in ``q``'s index space (moved on remove, zeroed on add)."""
        keys = [q.keys.syn(v) for v in q.proj.weight_update.vars]
        for u in self.network.connectivity_updates.values():
            if u.projection is q.proj:
                keys += [NAMES.update(u).syn(v) for v in u.model.vars]
        return keys


def build_plan(net: Network, recorded_vars=()) -> Plan:
    plan = Plan(net, recorded_vars=tuple(recorded_vars))
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
        funcs = {}
        for phase, fn in wu.phase_functions().items():
            where = f"projection {proj.name!r} (weight-update model {wu.name!r}), {phase}"
            funcs[phase] = transform(fn, phase, f"{prefix}_{phase}", where, ns)
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
    return plan


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
        collen=q.keys.collen if q.needs_columns else None)
    where = f"connectivity update {upd.name!r} (model {m.name!r}) on projection {upd.projection.name!r}"
    code = row_code(m.row_update, keys, where, stream_id(prefix, "row_update"))
    up = UpdatePlan(upd, prefix, q, code, params, keys=ukeys)
    if q.needs_columns:
        import dataclasses

        inc_keys = dataclasses.replace(keys, colsyn=q.keys.colsyn)
        up.code_incremental = row_code(m.row_update, inc_keys, where, stream_id(prefix, "row_update"))
    if m.global_update is not None:
        from .globalcode import GlobalKeys, global_code

        up.global_keys = GlobalKeys(rows=dict(keys.row), rowlen=keys.rowlen, ind=keys.ind,
                                    glob={v: ukeys.glob(v) for v in m.global_vars}, params=dict(keys.params))
        up.global_stream = stream_id(prefix, "global_update")
        if m.global_mode == "compiled":
            up.global_code = global_code(m.global_update, up.global_keys, f"{prefix}_global", where,
                                         up.global_stream)
    return up
