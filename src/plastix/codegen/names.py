"""The one owner of state names: every array and scalar the kernels use lives in the state dict under a
key built here, and nowhere else.

Keys (a = population index, b = projection index, k = connectivity-update index):

* population ``pa``: ``pa_<var>`` neuron vars, ``pa_p_<param>`` params, ``pa_g_<egp>`` extra global
  arrays, ``pa_spk`` / ``pa_spkcnt`` the spike ring buffer, ``pa_flag`` per-step spike flags, ``pa_nspk``
  total spikes, ``pa_rec_step`` / ``pa_rec_idx`` / ``pa_rec_n`` spike recording.
* projection ``qb``: ``qb_ind`` / ``qb_rowlen`` ragged connectivity, ``qb_s_<var>`` per-synapse vars,
  ``qb_pre_<var>`` / ``qb_post_<var>`` trace vars, ``qb_psm_<var>`` postsynaptic-model vars (``in_syn``
  included), ``qb_p_<param>`` / ``qb_pp_<param>`` weight-update / postsynaptic params, ``qb_collen`` /
  ``qb_colsyn`` the column view (incoming synapses per target, as flat slot ids ``i * row_stride + k``),
  ``qb_bits`` the per-row target bitmask, ``qb_accbuf`` the CPU parallel kernels' per-partition input,
  ``qb_<name>_taps`` a convolution's tap table and kernel for propagation by taps (derived, CPU).
* connectivity update ``cuk``: ``cuk_s_<var>`` / ``cuk_r_<var>`` / ``cuk_g_<var>`` / ``cuk_p_<param>``
  per-synapse, per-row, global vars and params, ``cuk_stats`` its counters (:class:`UpdateStats`),
  ``cuk_scratch`` row-kernel selection scratch.
* custom update ``cxk``: ``cxk_v_<var>`` own per-element variables, ``cxk_g_<var>`` global vars ([1], or
  [batch, 1]), ``cxk_p_<param>`` params.
* ``rec_var<r>`` the buffer of the r-th recorded neuron variable.
* ``<group>_<phase>_rng`` the random-number stream id of a group's phase (int64 scalar, derived from the
  names: kernel arguments rather than literals, so groups with the same code share one compiled kernel).
"""
from __future__ import annotations

from typing import NamedTuple


class PopKeys:
    """State keys of population ``index``."""

    def __init__(self, index: int):
        self.prefix = f"p{index}"
        p = self.prefix
        self.spk, self.spkcnt, self.flag, self.nspk = f"{p}_spk", f"{p}_spkcnt", f"{p}_flag", f"{p}_nspk"
        self.rec_step, self.rec_idx, self.rec_n = f"{p}_rec_step", f"{p}_rec_idx", f"{p}_rec_n"
        self.rec_buffers = (self.rec_step, self.rec_idx, self.rec_n)

    def var(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def param(self, name: str) -> str:
        return f"{self.prefix}_p_{name}"

    def egp(self, name: str) -> str:
        return f"{self.prefix}_g_{name}"


class ProjKeys:
    """State keys of projection ``index``."""

    def __init__(self, index: int):
        self.prefix = f"q{index}"
        q = self.prefix
        self.ind, self.rowlen = f"{q}_ind", f"{q}_rowlen"
        self.collen, self.colsyn = f"{q}_collen", f"{q}_colsyn"
        self.bits, self.accbuf = f"{q}_bits", f"{q}_accbuf"
        self.in_syn = self.psm("in_syn")

    def taps(self, name: str) -> str:
        """An array of the propagation by kernel taps (:mod:`plastix.codegen.taps`), derived by the CPU backend."""
        return f"{self.prefix}_{name}_taps"

    def syn(self, name: str) -> str:
        """A per-synapse variable of the weight-update model, [num_pre, row_stride]."""
        return f"{self.prefix}_s_{name}"

    def trace(self, side: str, name: str) -> str:
        """A presynaptic (``side="pre"``) or postsynaptic (``"post"``) trace variable."""
        if side not in ("pre", "post"):
            raise ValueError(f"side must be 'pre' or 'post', got {side!r}")
        return f"{self.prefix}_{side}_{name}"

    def pre(self, name: str) -> str:
        return self.trace("pre", name)

    def post(self, name: str) -> str:
        return self.trace("post", name)

    def psm(self, name: str) -> str:
        """A postsynaptic-model variable (one per target)."""
        return f"{self.prefix}_psm_{name}"

    def param(self, name: str) -> str:
        """A weight-update model parameter."""
        return f"{self.prefix}_p_{name}"

    def psm_param(self, name: str) -> str:
        """A postsynaptic-model parameter."""
        return f"{self.prefix}_pp_{name}"


class UpdateKeys:
    """State keys of connectivity update ``index``."""

    def __init__(self, index: int):
        self.prefix = f"cu{index}"
        self.stats, self.scratch = f"{self.prefix}_stats", f"{self.prefix}_scratch"

    def syn(self, name: str) -> str:
        return f"{self.prefix}_s_{name}"

    def row(self, name: str) -> str:
        return f"{self.prefix}_r_{name}"

    def glob(self, name: str) -> str:
        return f"{self.prefix}_g_{name}"

    def param(self, name: str) -> str:
        return f"{self.prefix}_p_{name}"


class CustomKeys:
    """State keys of custom update ``index``: own variables (one per element of its target) and params."""

    def __init__(self, index: int):
        self.prefix = f"cx{index}"

    def var(self, name: str) -> str:
        return f"{self.prefix}_v_{name}"

    def glob(self, name: str) -> str:
        return f"{self.prefix}_g_{name}"

    def param(self, name: str) -> str:
        return f"{self.prefix}_p_{name}"


def rec_var(r: int) -> str:
    """The recording buffer of the ``r``-th recorded neuron variable, [records, neurons]."""
    return f"rec_var{r}"


#: The first step of the last run call ([1] int64): row 0 of the tape (recorded variables and spikes).
TAPE_T0 = "tape_t0"

#: The tape rows an update over the tape visits, ``[first, stop)`` ([2] int64; all rows unless
#: ``Simulation.custom_update(group, rows=...)`` narrows them for one call).  Not saved: a call's argument.
TAPE_ROWS = "tape_rows_scratch"
ALL_TAPE_ROWS = (0, (1 << 62))

#: Suffixes of backend scratch arrays and derived constants: not part of a saved state.
SCRATCH_SUFFIXES = ("_accbuf", "_flag", "_scratch", "_taps", "_rng")


def rng_stream(prefix: str, phase: str) -> str:
    """The key of the stream id (int64 scalar) of phase ``phase`` of the group with key prefix ``prefix``."""
    return f"{prefix}_{phase}_rng"


def spike_recording_count(buffer_key: str) -> str:
    """The ``pa_rec_n`` key of the population whose spike-recording buffer (``pa_rec_step`` or
    ``pa_rec_idx``) is ``buffer_key``."""
    return buffer_key.rsplit("_rec_", 1)[0] + "_rec_n"


def is_recording(key: str) -> bool:
    """True for recording buffers (spikes and variables): not part of a saved state."""
    return key.startswith("rec_var") or "_rec_" in key


class StateNames:
    """Keys of a network's state, by population, projection and connectivity update (objects with an
    ``index``, as :class:`~plastix.model.network.Network` numbers them)."""

    def pop(self, pop) -> PopKeys:
        return PopKeys(pop.index)

    def proj(self, proj) -> ProjKeys:
        return ProjKeys(proj.index)

    def update(self, upd) -> UpdateKeys:
        return UpdateKeys(upd.index)

    def custom(self, cu) -> CustomKeys:
        return CustomKeys(cu.index)

    def var_of(self, network, group: str, var: str) -> str:
        """The state key of per-element variable ``var`` of ``group`` (a population, projection,
        connectivity update or custom update of ``network``)."""
        if group in network.populations:
            return self.pop(network.populations[group]).var(var)
        if group in network.projections:
            q = network.projections[group]
            keys = self.proj(q)
            if var in q.weight_update.vars:
                return keys.syn(var)
            if var in q.weight_update.pre_vars:
                return keys.pre(var)
            if var in q.weight_update.post_vars:
                return keys.post(var)
            return keys.psm(var)
        if group in network.connectivity_updates:
            return self.update(network.connectivity_updates[group]).syn(var)
        return self.custom(network.custom_updates[group]).var(var)

    @staticmethod
    def rec_var(r: int) -> str:
        return rec_var(r)


NAMES = StateNames()


class UpdateStats(NamedTuple):
    """Counters of a connectivity update (``cu<k>_stats``, int64): the kernels add into the array slot of
    each field (:data:`STAT` gives the slot), the runtime reads differences as :meth:`from_array`."""

    removed: int          # synapses removed
    added: int            # synapses added
    full: int             # strict row.add on a full row (not applied)
    failed_adds: int      # row.add(...) whose result the code checks, not applied (full or duplicate)
    bad_target: int       # row.add with a target outside [0, num_post) (not applied)
    column_overflow: int  # a target's in-degree outgrew the column view
    duplicate: int        # strict row.add of a target the row already reaches (duplicate-free rows)

    @classmethod
    def from_array(cls, arr) -> "UpdateStats":
        return cls(*(int(v) for v in arr[:len(cls._fields)]))


#: Slot of each counter in ``cu<k>_stats``.
STAT = UpdateStats(*range(len(UpdateStats._fields)))
#: Length of ``cu<k>_stats``.
STATS_SIZE = len(UpdateStats._fields)
