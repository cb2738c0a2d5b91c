"""One rank's part of a partitioned network: which networks can be split, and the local
:class:`~plastix.Network` a rank simulates.

Every population's neurons are split over the ranks in contiguous blocks; rank ``r`` holds the block
``[lo, hi)`` of each population and every synapse onto those neurons.  A projection's rows stay
presynaptic: its local copy keeps all ``num_pre`` rows, each restricted to the owned targets (local target
index ``j - lo``), in the order the one-process row holds them.  Its presynaptic side is a *ghost*: a
spike-source population of the whole source population's size that never fires by itself; the
partitioned simulation writes every rank's spikes into its spike ring after each exchange.

The initial state is the one-process network's: every rank allocates the whole network's state once,
from the network seed, exactly as a one-process :class:`~plastix.Simulation` does, and keeps its slice
(given to the local network as explicit arrays, so the local build draws nothing).  That costs the whole
network's host memory and initialisation time on every rank, once (see docs/mpi.md).
"""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..codegen.names import NAMES
from ..codegen.plan import build_plan
from ..codegen.transform import parse_function
from ..errors import NetworkError
from ..model import connectivity as conn
from ..model.network import Dense, Network, RowPart
from ..model.neurons import spike_source_array
from ..model.specs import Var
from ..parallel.exchange import block_bounds
from . import state as st

@dataclass
class LocalPart:
    """What one rank simulates, and how its indices map to the whole network's."""

    network: Network                                    # the local network (owned blocks + ghosts)
    bounds: dict[str, np.ndarray]                       # population -> block bounds [ranks + 1]
    ghosts: dict[str, str] = field(default_factory=dict)   # source population -> its ghost in `network`
    #: steps between spike exchanges: 1 + the smallest projection delay, 1 when a ghost carries
    #: presynaptic traces (None: no projection)
    interval: int | None = None
    #: connectivity updates scheduled inside the one-process time loop (name -> every): the partitioned
    #: run calls them between exchange intervals, their global phases reduced across the ranks
    scheduled: dict[str, int] = field(default_factory=dict)
    #: connectivity updates whose row code reads row.total_length / row.offset: their RowPart row vars are
    #: refreshed from every rank's row lengths before each run of the update
    whole_rows: list[str] = field(default_factory=list)


#: names of the row vars holding, per row, the synapses on lower ranks / on the other ranks (RowPart)
PART_BEFORE, PART_OTHER = "part_before", "part_other"


def check_partitionable(net: Network, ranks: int) -> None:
    """:class:`NetworkError` naming the first feature a partitioned run cannot reproduce."""
    for pop in net.populations.values():
        if pop.size < ranks:
            raise NetworkError(f"population {pop.name!r} has {pop.size} neurons, fewer than the {ranks} ranks: "
                               "a partitioned simulation gives every rank at least one neuron of every population")
    plan = build_plan(net)
    for q in plan.projs:
        traces = set(q.proj.weight_update.pre_vars)
        reads_pre = sorted({f for fn in q.funcs.values() for ns, f in fn.inputs if ns == "pre"} - traces)
        if reads_pre:
            raise NetworkError(f"projection {q.proj.name!r}: weight-update model {q.proj.weight_update.name!r} reads "
                               f"presynaptic neuron variables {reads_pre}; a partitioned simulation holds the "
                               "presynaptic side as spikes and presynaptic traces (supported: synapse code reading "
                               "the synapse, its presynaptic traces, its target and postsynaptic traces)")
    for u in net.connectivity_updates.values():
        what = f"connectivity update {u.name!r}"
        if u.pre_var_refs:
            raise NetworkError(f"{what}: pre_var_refs {sorted(u.pre_var_refs)} read presynaptic neurons, which a "
                               "partitioned simulation holds only as spikes")
        clash = sorted({PART_BEFORE, PART_OTHER} & set(u.model.row_vars))
        if clash:
            raise NetworkError(f"{what}: row vars {clash} are the names a partitioned simulation gives the row's "
                               "synapses on other ranks; rename them")
    for c in plan.customs:
        what = f"custom update {c.update.name!r}"
        if c.update.model.per == "population":
            raise NetworkError(f"{what}: per='population' couples a whole population's neurons, which a "
                               "partitioned simulation spreads over ranks")
        if c.update.model.over_time or c.update.tape_refs:
            raise NetworkError(f"{what}: updates over the tape (scan, events, tape_refs) are not supported by a "
                               "partitioned simulation")
        if any(sf.uses_rng for sf in c.stages):
            raise NetworkError(f"{what}: draws random numbers, keyed by the local element index in custom updates: "
                               "every rank would draw the numbers of its first elements (a partitioned simulation "
                               "keys every rank by the network seed); not supported")


def _reads_whole_row(fn, where: str) -> bool:
    """Does row code read ``row.total_length`` / ``row.offset`` (so needs the other ranks' row lengths)?"""
    fdef = parse_function(fn, where)
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "row"
               and n.attr in ("total_length", "offset") for n in ast.walk(fdef))


def build_local(net: Network, rank: int, ranks: int) -> LocalPart:
    """Rank ``rank``'s :class:`LocalPart` of ``net`` (checked with :func:`check_partitionable`)."""
    check_partitionable(net, ranks)
    gplan = build_plan(net)
    gstate = st.allocate(net, gplan)           # the one-process initial state, from the network seed
    # every rank keys its random numbers by the network seed and global element ids (a neuron by its global
    # id, a row by its presynaptic neuron): neuron noise is the one-process noise on every rank
    local = Network(dt=net.dt, seed=net.seed, precision=net.precision)
    bounds = {name: block_bounds(p.size, ranks) for name, p in net.populations.items()}
    span = {name: (int(b[rank]), int(b[rank + 1])) for name, b in bounds.items()}
    for pop in net.populations.values():      # same order: same population indices, same random streams
        lo, hi = span[pop.name]
        keys = NAMES.pop(pop)
        local.add_population(pop.name, hi - lo, pop.model, params=pop.params,
                             init={v: gstate[keys.var(v)][lo:hi] for v in pop.model.vars})
        local.populations[pop.name].elem_offset = lo
    part = LocalPart(local, bounds)
    used = set(net.populations) | set(net.projections) | set(net.connectivity_updates) | set(net.custom_updates)
    for q in net.projections.values():
        if q.pre.name not in part.ghosts:
            name = f"{q.pre.name}__ghost"
            while name in used:
                name += "_"
            used.add(name)
            local.add_population(name, q.pre.size, spike_source_array())
            part.ghosts[q.pre.name] = name
    owned: dict[str, np.ndarray | None] = {}   # projection -> [num_pre, stride] mask of its owned synapses
    for q in net.projections.values():
        owned[q.name] = _add_projection(local, q, gstate, gplan, span[q.post.name], part.ghosts[q.pre.name], net)
        # per-synapse random numbers: rank r numbers its slots from r x (the one-process slot count), so no
        # two ranks share a synapse's numbers (Philox takes the element id mod 2**32)
        slots = q.pre.size * (q.post.size if q.dense else gstate[NAMES.proj(q).ind].shape[1])
        local.projections[q.name].syn_elem_offset = (rank * slots) % 2**32
    for name in net.update_order:             # same order: same update indices, keys and streams
        if name in net.connectivity_updates:
            u = net.connectivity_updates[name]
            _add_connectivity_update(local, u, gstate, owned, span[u.projection.post.name], ranks)
            if u.every is not None:
                part.scheduled[name] = u.every
            if _reads_whole_row(u.model.row_update, f"connectivity update {name!r}"):
                part.whole_rows.append(name)
        else:
            _add_custom_update(local, net.custom_updates[name], gstate, owned, span)
    if net.projections:
        part.interval = 1 + min(q.delay for q in net.projections.values())
        if any(q.weight_update.pre_vars for q in net.projections.values()):
            # a ghost's traces take each step's spikes after that step's exchange: the next step's synapse
            # code reads them (docs/mpi.md)
            part.interval = 1
    return part


def _add_projection(local: Network, q, gstate: dict, gplan, span: tuple[int, int], ghost: str, net: Network):
    lo, hi = span
    keys = NAMES.proj(q)
    wu, psm = q.weight_update, q.postsynaptic
    common = dict(weight_update=wu, postsynaptic=psm, wu_params=q.wu_params, psm_params=q.psm_params,
                  pre_init={v: gstate[keys.pre(v)] for v in wu.pre_vars},   # the ghost: every source neuron
                  post_init={v: gstate[keys.post(v)][lo:hi] for v in wu.post_vars},
                  psm_init={v: gstate[keys.psm(v)][lo:hi] for v in psm.vars}, delay=q.delay)
    if q.dense:
        local.add_projection(q.name, ghost, q.post.name, connectivity=Dense(),
                             init={v: gstate[keys.syn(v)][:, lo:hi].ravel() for v in wu.vars}, **common)
        return None
    ind, rowlen = gstate[keys.ind], gstate[keys.rowlen]
    valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
    mine = valid & (ind >= lo) & (ind < hi)
    pre, slot = np.nonzero(mine)               # row-major: each row keeps the one-process order
    post = ind[pre, slot].astype(np.int64) - lo
    rewired = any(u.projection is q for u in net.connectivity_updates.values())
    if rewired:   # rules see a row's capacity: keep the one-process stride (no more than the owned targets
        stride = ind.shape[1]   # when the rows stay duplicate-free)
        if gplan.projs[q.index].uses_bits:
            stride = min(stride, hi - lo)
        stride = max(stride, int(np.bincount(pre, minlength=q.pre.size).max(initial=0)), 1)
    else:         # static rows only need room for their owned synapses
        stride = max(1, int(np.bincount(pre, minlength=q.pre.size).max(initial=0)))
    local.add_projection(q.name, ghost, q.post.name, connectivity=conn.FromArrays(pre, post),
                         init={v: gstate[keys.syn(v)][mine] for v in wu.vars}, row_stride=stride, **common)
    return mine


def _synapse_values(arr: np.ndarray, mask, span) -> np.ndarray:
    """The owned synapses' values of a [num_pre, stride] array, in local row order."""
    if mask is None:                           # dense: [num_pre, num_post]
        return arr[:, span[0]:span[1]].ravel()
    return arr[mask]


def _add_connectivity_update(local: Network, u, gstate: dict, owned: dict, span: tuple[int, int],
                             ranks: int) -> None:
    """The update on the rank's part: its row code sees global target ids (RowPart), two more row vars
    hold the row's synapses on the other ranks, and a schedule (``every``) moves to the partitioned run,
    which reduces the global phase across the ranks between exchange intervals."""
    keys = NAMES.update(u)
    m = u.model
    n_pre = u.projection.pre.size
    whole = dataclasses.replace(m, row_vars={**m.row_vars, PART_BEFORE: Var(0, "int64"), PART_OTHER: Var(0, "int64")})
    local.add_connectivity_update(
        u.name, u.projection.name, whole, params=u.params, var_refs=u.var_refs, post_var_refs=u.post_var_refs,
        row_var_refs={ref: f"{o}.{v}" for ref, (o, v) in u.row_var_refs.items()},
        init={v: gstate[keys.syn(v)][owned[u.projection.name]] for v in m.vars},
        row_init={**{v: gstate[keys.row(v)] for v in m.row_vars}, PART_BEFORE: np.zeros(n_pre, np.int64),
                  PART_OTHER: np.zeros(n_pre, np.int64)}, group=u.group, every=None)
    local.connectivity_updates[u.name].part = RowPart(post_lo=span[0], num_post=u.projection.post.size, parts=ranks,
                                                      before=PART_BEFORE, other=PART_OTHER)


def _add_custom_update(local: Network, c, gstate: dict, owned: dict, span: dict) -> None:
    keys = NAMES.custom(c)
    m = c.model
    if c.per_synapse:
        sp = span[c.target.post.name]
        init = {v: _synapse_values(gstate[keys.var(v)], owned[c.target.name], sp) for v in m.vars}
    else:
        lo, hi = span[c.target.name]
        init = {v: gstate[keys.var(v)][lo:hi] for v in m.vars}
    local.add_custom_update(c.name, c.target.name, m, params=c.params,
                            var_refs={ref: f"{g}.{v}" for ref, (g, v) in c.var_refs.items()}, init=init,
                            group=c.group, every=c.every)
