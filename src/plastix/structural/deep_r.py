"""DEEP R's rewiring step (Bellec et al. 2018, the mlGeNN variant) as two connectivity updates.

Each synapse has a fixed sign (``sign`` = +1 / -1, a per-synapse variable of the projection) and a signed
weight ``w``; it is active while ``w * sign >= 0``.  After each optimiser step (which adds the L1 term
and, with a temperature, the noise — :mod:`plastix.learning.optimizers`):

1. :func:`deep_r_prune` removes every synapse whose weight crossed zero (``w * sign < 0``) and counts
   the removals per row (row var ``removed``);
2. :func:`deep_r_regrow` (global phase) spreads exactly that many new synapses uniformly over the rows
   that still have room, and each row adds its share at random unconnected targets with ``w = 0``, a
   random sign and every other per-synapse variable (optimiser moments, gradients, traces) zeroed.

The number of active synapses is therefore conserved exactly unless every row is full; synapses that
could not be placed are counted in the global var ``unplaced`` and in the update's failed adds.
Attach them to two groups (a group updates a projection once) and run the prune group first::

    net.add_connectivity_update("prune", "in_hid", deep_r_prune(), var_refs={"weight": "w", "sign": "sign"},
                                group="prune")
    net.add_connectivity_update("regrow", "in_hid", deep_r_regrow(), var_refs={"weight": "w", "sign": "sign"},
                                row_var_refs={"removed": "prune.removed"}, group="regrow")
    sim.custom_update("prune"); sim.custom_update("regrow")
"""
from __future__ import annotations

from ..model.specs import ConnectivityUpdateModel, Var
from .rules import _distribute_budget


def _prune_flipped(row):
    row.removed = 0
    for s in row.synapses:
        if s.weight * s.sign < 0.0:
            s.remove()
            row.removed += 1


def deep_r_prune() -> ConnectivityUpdateModel:
    """Remove every synapse whose ``weight`` has the opposite sign of its ``sign`` (it crossed zero: DEEP R's
    dormant connections); row var ``removed`` counts them (reset each call)."""
    return ConnectivityUpdateModel(name="deep_r_prune", row_vars={"removed": Var(0, "int32")},
                                   var_refs=("weight", "sign"), row_update=_prune_flipped, doc=deep_r_prune.__doc__)


def _regrow_signed(row, rng):
    for _ in range(row.to_add):
        j = row.sample_free()
        if j >= 0:
            sign = 1.0
            if rng.uniform() < 0.5:
                sign = -1.0
            row.add(j, weight=0.0, sign=sign)


def deep_r_regrow() -> ConnectivityUpdateModel:
    """Regrow as many synapses as :func:`deep_r_prune` removed (``row_var_refs={"removed": ...}``), spread
    uniformly over rows with room, at random unconnected targets, with weight 0 and a random sign.  Global
    vars: ``total`` (requested) and ``unplaced`` (no row had room)."""
    return ConnectivityUpdateModel(
        name="deep_r_regrow", row_vars={"to_add": Var(0, "int32")}, row_var_refs=("removed",),
        global_vars={"total": Var(0, "int64"), "unplaced": Var(0, "int64")}, var_refs=("weight", "sign"),
        row_update=_regrow_signed, global_update=_distribute_budget, doc=deep_r_regrow.__doc__)
