"""Built-in connectivity-update rules.

Each function returns a :class:`~plastix.ConnectivityUpdateModel`; attach it with
``Network.add_connectivity_update(name, projection, model, var_refs={"weight": "w"})``.  The row code
below is the whole implementation, compiled for every backend by plastix.
"""
from __future__ import annotations

import numpy as np

from ..model.specs import ConnectivityUpdateModel, Var


def _magnitude_prune(row, p):
    for s in row.synapses:
        if abs(s.weight) < p.threshold:
            s.remove()


def magnitude_prune(threshold: float) -> ConnectivityUpdateModel:
    """Remove every synapse whose ``|weight|`` is below ``threshold``."""
    return ConnectivityUpdateModel(name="magnitude_prune", params={"threshold": threshold}, var_refs=("weight",),
                                   row_update=_magnitude_prune, doc=magnitude_prune.__doc__)


def _random_prune(row, p, rng):
    for s in row.synapses:
        if rng.uniform() < p.probability:
            s.remove()


def random_prune(probability: float) -> ConnectivityUpdateModel:
    """Remove each synapse independently with ``probability`` (counter-based random numbers)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    return ConnectivityUpdateModel(name="random_prune", params={"probability": probability},
                                   row_update=_random_prune, doc=random_prune.__doc__)


def _random_regrow(row, p):
    n = row.capacity if p.target_length > row.capacity else int(p.target_length)
    while row.length < n:
        j = row.sample_free()
        if j < 0:
            break
        row.add(j, weight=p.w_init)


def random_regrow(target_length: int, w_init: float = 0.0) -> ConnectivityUpdateModel:
    """Add synapses to random unconnected targets until each row has ``target_length`` synapses (or no
    free target is left); new synapses get ``weight = w_init``, every other per-synapse variable 0."""
    return ConnectivityUpdateModel(name="random_regrow", params={"target_length": target_length, "w_init": w_init},
                                   var_refs=("weight",), row_update=_random_regrow, doc=random_regrow.__doc__)


def _random_replace(row, p):
    for _ in range(int(p.n)):
        if row.length > 0:
            row.remove_slot(row.random_slot())
            j = row.sample_free()
            if j >= 0:
                row.add(j, weight=p.w_init)


def random_replace(n: int, w_init: float = 0.0) -> ConnectivityUpdateModel:
    """Per row, remove ``n`` synapses chosen at random and grow ``n`` new ones to random unconnected
    targets (``weight = w_init``): O(n) work per row, independent of the row length — the continual
    turnover of rewiring models."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return ConnectivityUpdateModel(name="random_replace", params={"n": n, "w_init": w_init}, var_refs=("weight",),
                                   row_update=_random_replace, doc=random_replace.__doc__)


def _distribute_budget(glob, rows, rng):
    # every one of the `total` new synapses picks a uniformly random row that still has room; rows that
    # would overflow keep what fits and the rest is drawn again among the others (vectorised rounds)
    total = rows.removed.sum()
    glob.total = total
    to_add = np.zeros(rows.count, np.int64)
    remaining = total
    room = rows.capacity - rows.length
    while remaining > 0:
        eligible = np.nonzero(room - to_add > 0)[0]
        if eligible.size == 0:
            break
        picks = eligible[(rng.uniform(remaining) * eligible.size).astype(np.int64)]
        granted = np.minimum(np.bincount(picks, minlength=rows.count), room - to_add)
        to_add += granted
        remaining -= granted.sum()
    rows.to_add = to_add
    glob.unplaced = remaining


def _add_budget(row, p):
    for _ in range(row.to_add):
        j = row.sample_free()
        if j >= 0:
            row.add(j, weight=p.w_init)


def distributed_regrow(w_init: float = 0.0) -> ConnectivityUpdateModel:
    """Regrow, over the whole projection, as many synapses as another rule removed (DEEP R's rewiring
    step): the global phase sums that rule's per-row count (``row_var_refs={"removed": "<rule>.<var>"}``)
    and spreads the total uniformly over rows with room (row var ``to_add``); each row then adds its
    share at random unconnected targets with ``weight = w_init``.  Global vars: ``total`` (requested) and
    ``unplaced`` (could not be placed: every row full) — reported, never dropped silently."""
    return ConnectivityUpdateModel(
        name="distributed_regrow", params={"w_init": w_init}, row_vars={"to_add": Var(0, "int32")},
        row_var_refs=("removed",), global_vars={"total": Var(0, "int64"), "unplaced": Var(0, "int64")},
        var_refs=("weight",), row_update=_add_budget, global_update=_distribute_budget,
        doc=distributed_regrow.__doc__)


def _set_rewire(row, p):
    n = int(p.fraction * row.length)
    if n > 0:
        # exactly the n weakest (ties: lowest slots first), selected and removed in one step that
        # touches only the removed slots and the synapses moved into them
        removed = row.remove_weakest("weight", n)
        for _ in range(removed):
            j = row.sample_free()
            if j >= 0:
                row.add(j, weight=p.w_init)
        row.replaced += removed


def set_rewire(fraction: float, w_init: float = 0.0) -> ConnectivityUpdateModel:
    """SET (sparse evolutionary training): per row, remove the ``floor(fraction * length)`` synapses with
    the smallest ``|weight|`` (ties: lowest slots first) and grow as many new ones to random unconnected
    targets (``weight = w_init``, other per-synapse variables 0).  Row var ``replaced`` counts the
    synapses replaced."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return ConnectivityUpdateModel(name="set_rewire", params={"fraction": fraction, "w_init": w_init},
                                   row_vars={"replaced": Var(0, "int64")}, var_refs=("weight",),
                                   row_update=_set_rewire, doc=set_rewire.__doc__)
