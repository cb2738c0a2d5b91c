"""Simulation: build a Network for a backend, run it, read and write its state, record, save and load.

Lifecycle: ``Simulation(net)`` -> (optional ``record_*``) -> ``run(steps)`` (builds on first use) ->
``get`` / ``set`` / ``spikes`` / ``save`` / ``load`` / ``reset``.  The class holds the lifecycle and
delegates each job to a module: state access (:mod:`.access`), recording (:mod:`.recording`), checkpoints
(:mod:`.checkpoint`), the host column view (:mod:`.columns_host`), Python global phases
(:mod:`.global_phase`).
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np

from ..backends import make_backend
from ..codegen.names import ALL_TAPE_ROWS, NAMES, TAPE_ROWS, TAPE_T0, UpdateStats, is_recording
from ..codegen.plan import build_plan
from ..errors import CapacityError, NetworkError, StateError
from ..model.network import Network
from . import checkpoint, columns_host
from . import state as st
from .access import StateAccess
from .global_phase import run_python_global
from .recording import DEFAULT_MAX_SPIKES, Recorder
from .windows import tape_rows

__all__ = ["Simulation", "DEFAULT_MAX_SPIKES"]


class Simulation:
    """A built, runnable network.

    Parameters
    ----------
    network : Network
    backend : {"auto", "cpu", "cuda"}
        "auto" picks CUDA when a usable GPU is present, else CPU.
    parallel : bool or "auto"
        CPU only: multi-threaded kernels (race-free; results depend on ``partitions``, never on the thread
        count; input is summed partition by partition, so float sums may differ from the serial kernels' in
        the last bits).  "auto" uses them for large networks only.  With a batch the elements run in
        parallel ("auto", True) or one after another on one thread (False).
    threads : int, optional
        CPU threads for parallel kernels (default: all numba threads).  Results do not depend on it.
    partitions : int, optional
        CPU parallel kernels split each step's spikes into this many fixed partitions (default: the
        machine's numba thread count); pin it to reproduce parallel runs bit for bit across machines.
    check_finite : bool
        After every ``run``, raise :class:`~plastix.errors.StateError` if a state variable became NaN/inf.
    batch_size : int
        Independent copies of the network's dynamics run side by side (trials of a mini-batch).  Variables
        with one copy per element (:class:`~plastix.VarAccess`: neuron, postsynaptic and trace variables
        by default, spike buffers, recordings) get a leading batch axis in ``get`` / ``set`` /
        ``recorded``; connectivity and shared synapse variables (weights, by default) are one copy.  On the
        CPU the elements run in parallel, each element's whole time loop on one thread (results do not
        depend on the thread count); on CUDA the batch is a grid dimension.  Element ``b`` draws random
        numbers keyed by ``plastix.kernels.rng.host_batch_seed(seed, b)`` (element 0: the network's seed).
        1 (default) is the unbatched engine.
    comm : mpi4py communicator or "world", optional
        Partition the network over the ranks of ``comm`` (``"world"``: ``MPI.COMM_WORLD``): the result is a
        :class:`~plastix.runtime.partition.PartitionedSimulation`, run on every rank (docs/mpi.md).
    """

    def __new__(cls, *args, comm=None, **kwargs):
        # the MPI hook: Simulation(net, comm=comm) is a partitioned simulation (not a subclass: every method
        # of it is collective and gathers over the ranks)
        if comm is not None and cls is Simulation:
            from .partition import PartitionedSimulation

            return PartitionedSimulation(*args, comm=comm, **kwargs)
        return super().__new__(cls)

    def __init__(self, network: Network, backend: str = "auto", *, parallel: bool | str = "auto",
                 threads: int | None = None, partitions: int | None = None, check_finite: bool = True,
                 batch_size: int = 1, comm=None):
        if comm is not None:
            raise NetworkError(f"comm is only accepted by Simulation itself, not by {type(self).__name__}")
        if not isinstance(network, Network):
            raise NetworkError(f"network must be a plastix.Network, got {type(network).__name__}")
        if not network.populations:
            raise NetworkError("the network has no populations")
        if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
                or not 1 <= batch_size <= 65535):
            raise NetworkError(f"batch_size must be an integer in [1, 65535], got {batch_size!r}")
        self.network = network
        self.batch_size = int(batch_size)
        self.backend = make_backend(backend, parallel=parallel, threads=threads, partitions=partitions)
        self.check_finite_after_run = check_finite
        self.recorder = Recorder(network, self.batch_size)
        self.access = StateAccess(self)
        self._built_key = None
        self.state: dict | None = None
        self._initial: dict | None = None
        self.step = 0
        self._update_timings: dict[str, dict] = {}

    # -- build -------------------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self.network.dt

    @property
    def t(self) -> float:
        """Time (ms) at the start of the next step."""
        return self.step * self.network.dt

    def build(self) -> "Simulation":
        """Generate and compile kernels and allocate state (done automatically by the first ``run``)."""
        for cu in self.network.custom_updates.values():  # what updates over the tape read
            for _side, pop, var in cu.tape_refs.values():
                self.recorder.tape(pop, var)
            if cu.model.events == "pre_spikes":
                self.recorder.tape_spikes_of(cu.target.pre.name)
        recorded = self.recorder.recorded_vars
        if self.state is not None and self._built_key == recorded:
            return self
        self.plan = build_plan(self.network, recorded, self.batch_size)
        fresh = self.state is None
        if fresh:
            self.state = st.allocate(self.network, self.plan)
        self.backend.compile(self.plan, self.state)  # may add backend scratch arrays to the state
        if fresh:
            self._initial = copy.deepcopy(self.state)
        self.backend.push(self.state)
        self._built_key = recorded
        return self

    def _ensure_state(self):
        if self.state is None:
            self.build()

    # -- recording ---------------------------------------------------------------------------------------
    def record_spikes(self, pop: str, max_spikes: int | None = None) -> None:
        """Record spikes of ``pop``.  ``max_spikes`` bounds the events one ``run`` call may record
        (default: every neuron every step, up to 2**26); more raise :class:`CapacityError`."""
        self.recorder.record_spikes(pop, max_spikes)

    def record(self, pop: str, var: str, every: int = 1) -> None:
        """Record neuron variable ``var`` of ``pop`` after every ``every``-th step's neuron update."""
        self.recorder.record(pop, var, every)

    def spikes(self, pop: str, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times in ms, neuron indices) of the recorded spikes of ``pop``, in time order (then neuron
        order).  With a batch: those of element ``batch``; ``batch=None`` then returns (times, neuron
        indices, batch elements) of every element, ordered by element, time and neuron."""
        return self.recorder.spikes(pop, batch)

    def recorded(self, pop: str, var: str) -> np.ndarray:
        """Recorded values of ``var``: array [records, neurons] ([batch, records, neurons] with a batch)."""
        return self.recorder.recorded(pop, var)

    def tape(self, pop: str, var: str) -> np.ndarray:
        """A copy of the tape of ``var`` of ``pop``: its value after every step of the last run call,
        [steps, neurons] ([batch, steps, neurons] with a batch), as updates over the tape left it."""
        self._ensure_state()
        if (pop, var) not in self.plan.recorded_vars:
            raise StateError(f"{pop}.{var} is not on the tape: no custom update reads it and it is not recorded")
        key = NAMES.rec_var(self.plan.recorded_vars.index((pop, var)))
        self.backend.pull(self.state, [key])
        return self.state[key].copy()

    def spike_count(self, pop: str) -> int | np.ndarray:
        """Total spikes ``pop`` emitted since build or reset (with a batch: one count per element)."""
        self._ensure_state()
        key = NAMES.pop(self.access.pop(pop)).nspk
        self.backend.pull(self.state, [key])
        counts = self.state[key]
        return counts[:, 0].copy() if counts.ndim == 2 else int(counts[0])

    # -- running -----------------------------------------------------------------------------------------
    def run(self, steps: int, *, callback: Callable | None = None, every: int | None = None,
            progress: bool = False) -> "Simulation":
        """Advance ``steps`` time steps; the time loop runs in compiled code.

        ``callback(sim)`` (optional) is called every ``every`` steps (and at the end), from Python.
        ``progress`` shows a progress bar (tqdm).
        """
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        if callback is not None and (every is None or every < 1):
            raise ValueError("callback needs every >= 1 (steps between calls)")
        self.build()
        taped = any(cu.model.over_time for cu in self.network.custom_updates.values())
        if taped and callback is not None:
            raise ValueError("custom updates over the tape read the last run call whole: a run with a callback "
                             "would split it; call run once per trial")
        chunk = every if callback is not None else steps
        if progress and callback is None and not taped:
            chunk = max(1, steps // 100)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(steps), unit="step", desc="simulating")
        done = 0
        try:
            while done < steps:
                n = min(chunk, steps - done) if chunk else steps
                self._run_chunk(int(n))
                done += n
                if bar is not None:
                    bar.update(n)
                if callback is not None:
                    callback(self)
        finally:
            if bar is not None:
                bar.close()
        return self

    def _run_chunk(self, n: int) -> None:
        state, plan = self.state, self.plan
        caps = self.recorder.prepare(state, self.backend, plan, n)
        scheduled = [u for u in plan.updates if u.update.every is not None]
        before = {u.prefix: state[u.keys.stats].copy() for u in scheduled}
        if TAPE_T0 in state:  # row 0 of the tape is this call's first step
            state[TAPE_T0][0] = self.step
            self.backend.push(state, [TAPE_T0])
        self.backend.run(state, self.step, n, self.network.dt, self.network.seed, self.recorder.every)
        self.step += n
        for u in scheduled:
            self.backend.pull(state, [u.keys.stats])
            self._check_update_stats(u, state[u.keys.stats] - before[u.prefix], rebuild_columns=False)
        self.recorder.collect(state, self.backend, plan, caps)
        if self.check_finite_after_run:
            self.backend.pull(state)
            st.check_finite(state, plan, self.step)

    # -- structural plasticity ---------------------------------------------------------------------------
    def custom_update(self, group: str, rows: tuple[int, int] | None = None) -> dict[str, dict]:
        """Run every connectivity and custom update of ``group`` once, now (between steps), in the order
        they were added to the network.

        ``rows=(first, stop)``: the custom updates that scan the tape or run over presynaptic events
        visit only tape rows ``first .. stop - 1`` (row 0: the last run's first step; for a per-synapse
        update, the row where the presynaptic value arrives), e.g. the steps of a trial that carry a
        gradient; rows outside keep their values and add nothing to reductions.  Every member must be
        such an update.

        Returns, per update, timings in seconds and, for connectivity updates, their counts (``removed``,
        ``added``, ``failed_adds``; timings ``row_s``: the row kernel, ``columns_s``: column-view
        maintenance, ``global_s``; custom updates: ``update_s``).  A full row on a strict ``row.add`` or an
        out-of-range target raises :class:`CapacityError` / :class:`StateError`.
        """
        self.build()
        net = self.network
        members = [n for n in net.update_order
                   if (net.connectivity_updates.get(n) or net.custom_updates.get(n)).group == group]
        if not members:
            every = list(net.connectivity_updates.values()) + list(net.custom_updates.values())
            groups = sorted({u.group for u in every})
            raise StateError(f"no connectivity or custom updates in group {group!r}; groups: {groups}")
        plans = {u.update.name: u for u in self.plan.updates}
        customs = {c.update.name: c for c in self.plan.customs}
        if rows is not None:
            rows = self._tape_window(group, members, customs, rows)
            self._set_tape_rows(rows)
        out = {}
        try:
            for name in members:
                if name in customs:
                    t0 = time.perf_counter()
                    self.backend.run_custom(self.state, customs[name].prefix, self.step, net.dt, net.seed)
                    out[name] = {"update_s": time.perf_counter() - t0}
                    self._update_timings[name] = dict(out[name])
                    continue
                out[name] = self._connectivity_update(plans[name])
        finally:   # the window is this call's only: scheduled updates and later calls see every row
            if rows is not None:
                self._set_tape_rows(ALL_TAPE_ROWS)
        return out

    @staticmethod
    def _tape_window(group: str, members: list[str], customs: dict, rows) -> tuple[int, int]:
        """``rows`` checked (:func:`~plastix.runtime.windows.tape_rows`), for a group of updates that visit
        tape rows one by one."""
        rows = tape_rows(rows, f"custom_update({group!r})")
        for name in members:
            c = customs.get(name)
            m = c.update.model if c is not None else None
            if m is None or not m.over_time or (m.per == "population" and m.scan is None):
                what = ("a connectivity update" if c is None else "an update that reads no tape rows one by one"
                        if m.over_time else "an update that does not read the tape")
                raise ValueError(f"custom_update({group!r}, rows={rows!r}): {name!r} is {what}; rows applies to "
                                 "custom updates that scan the tape or run over presynaptic events")
        return rows

    def _set_tape_rows(self, rows) -> None:
        self.state[TAPE_ROWS][:] = rows
        self.backend.push(self.state, [TAPE_ROWS])

    def _connectivity_update(self, u) -> dict:
        stats_key = u.keys.stats
        before = self.state[stats_key].copy()
        tg = time.perf_counter()
        self._run_global(u)
        t0 = time.perf_counter()
        self.backend.run_update(self.state, u.prefix, self.step, self.network.dt, self.network.seed)
        t1 = time.perf_counter()
        self.backend.pull(self.state, [stats_key])
        delta = self.state[stats_key] - before
        t2 = time.perf_counter()
        self._check_update_stats(u, delta, rebuild_columns=True)
        t3 = time.perf_counter()
        timing = {"row_s": t1 - t0, "global_s": t0 - tg, "columns_s": t3 - t2}
        self._update_timings[u.update.name] = timing
        counts = UpdateStats.from_array(delta)
        return {"removed": counts.removed, "added": counts.added, "failed_adds": counts.failed_adds, **timing}

    def _run_global(self, u) -> None:
        """The update's global phase, if any: compiled (backend) or plain Python on the host state."""
        model = u.update.model
        if model.global_update is None:
            return
        if u.global_code is not None:
            self.backend.run_global(self.state, u, self.step, self.network.dt, self.network.seed)
            return
        keys = u.global_keys
        names = list(keys.rows.values()) + list(keys.glob.values()) + [keys.rowlen, keys.ind]
        self.backend.pull(self.state, names)
        written = run_python_global(model.global_update, self.state, keys, self.network.seed, self.step,
                                    u.global_stream, self.network.dt)
        self.backend.push(self.state, written)

    def update_timings(self, name: str | None = None) -> dict:
        """Timings (s) of the last ``custom_update`` of each update (or of ``name``): row phase, global
        phase, column-view maintenance."""
        if name is None:
            return dict(self._update_timings)
        self.access.update(name)
        return dict(self._update_timings.get(name, {}))

    def update_stats(self, name: str) -> dict[str, int]:
        """Cumulative counts of connectivity update ``name`` since build: removed, added, failed_adds."""
        self._ensure_state()
        key = NAMES.update(self.access.update(name)).stats
        self.backend.pull(self.state, [key])
        counts = UpdateStats.from_array(self.state[key])
        return {"removed": counts.removed, "added": counts.added, "failed_adds": counts.failed_adds}

    def _check_update_stats(self, u, delta, rebuild_columns: bool) -> None:
        """Raise for what the update's kernels counted but could not apply; with ``rebuild_columns``
        rebuild the column view first (from the host: the row kernel did not maintain it)."""
        name, proj = u.update.name, u.update.projection
        c = UpdateStats.from_array(delta)
        rebuilt = rebuild_columns and u.proj.needs_columns and bool(c.removed or c.added)
        if rebuilt:  # first: the rows changed, even if we raise below
            keys = u.proj.keys
            self.backend.pull(self.state, [keys.ind, keys.rowlen, keys.collen, keys.colsyn])
            columns_host.rebuild(self.state, keys, proj.post.size, f"projection {proj.name!r}")
            self.backend.push(self.state, [keys.collen, keys.colsyn])
        if c.duplicate:
            raise StateError(f"connectivity update {name!r}: {c.duplicate} row.add calls targeted a neuron the row "
                             f"already reaches; rows of projection {proj.name!r} stay duplicate-free because a rule "
                             "on it samples free targets (use 'ok = row.add(...)' to handle it)")
        if c.bad_target:
            raise StateError(f"connectivity update {name!r}: {c.bad_target} row.add calls had a target outside "
                             f"[0, {proj.post.size}) and were not applied")
        if c.full:
            raise CapacityError(f"connectivity update {name!r}: {c.full} row.add calls found their row full "
                                f"(row_stride {self.state[u.proj.keys.ind].shape[1]}) and were not applied; "
                                "give the projection more headroom, or use 'ok = row.add(...)' to handle it")
        if c.column_overflow and not rebuilt:  # a rebuild grows the view to fit
            raise CapacityError(f"connectivity update {name!r}: a target's in-degree outgrew the column view of "
                                f"projection {proj.name!r} ({self.state[u.proj.keys.colsyn].shape[1]} slots)")

    # -- state access ------------------------------------------------------------------------------------
    def get(self, group: str, var: str) -> np.ndarray:
        """A copy of ``var`` of a population (one value per neuron) or projection (per-synapse vars:
        one value per existing synapse, in row order as :meth:`connectivity`; trace and postsynaptic
        vars: one per pre / post neuron)."""
        self._ensure_state()
        return self.access.get(group, var)

    def set(self, group: str, var: str, values) -> None:
        """Overwrite ``var`` (same shape as :meth:`get` returns, or a scalar)."""
        self._ensure_state()
        self.access.set(group, var, values)

    def connectivity(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) indices of every synapse of ``proj``, in row order."""
        self._ensure_state()
        return self.access.connectivity(proj)

    def set_connectivity(self, proj: str, pre, post, **values) -> None:
        """Replace the synapses of sparse ``proj`` by the list (``pre[s]``, ``post[s]``) within the existing
        row stride (no reallocation).  ``values`` give per-synapse vars in the same order (scalar or array);
        vars not given start at their model defaults.  The column view is rebuilt."""
        self._ensure_state()
        self.access.set_connectivity(proj, pre, post, **values)

    def ragged(self, proj: str, var: str | None = None, of: str | None = None) -> dict[str, np.ndarray]:
        """Raw ragged arrays of ``proj``: ``ind``, ``row_length`` and, if given, ``var`` [num_pre, row_stride]
        (``of``: the connectivity or custom update on ``proj`` that owns ``var``, e.g. an optimiser's moment)."""
        self._ensure_state()
        return self.access.ragged(proj, var, of)

    def set_param(self, group: str, name: str, value: float) -> None:
        """Change a parameter (derived parameters follow); no recompilation."""
        self._ensure_state()
        self.access.set_param(group, name, value)

    def set_egp(self, pop: str, name: str, values) -> None:
        """Replace extra global array ``name`` of population ``pop`` (any length; float64), e.g. a
        stimulus schedule that model code indexes by time."""
        self._ensure_state()
        self.access.set_egp(pop, name, values)

    def set_spike_times(self, pop: str, times) -> None:
        """Give a spike-source-array population its spike times: a sequence of one array of times (ms)
        per neuron (with a batch: a sequence of such sequences, one per batch element).  Times before the
        current time are skipped."""
        self._ensure_state()
        self.access.set_spike_times(pop, times, self.t, self.dt)

    def set_spike_times_flat(self, pop: str, times, counts) -> None:
        """:meth:`set_spike_times` from one flat array: ``times`` (ms) holds the trains one after another
        (neuron by neuron; with a batch, element by element, then neuron by neuron), ``counts`` the number
        of spikes of each train ([neurons], or [batch, neurons]).  Several spikes of a train in one step
        are kept (a model may count them)."""
        self._ensure_state()
        self.access.set_spike_times_flat(pop, times, counts, self.t, self.dt)

    # -- reset, save, load -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after build (step 0); recordings are cleared."""
        self._ensure_state()
        self.state = copy.deepcopy(self._initial)
        self.step = 0
        self.recorder.clear()
        self.backend.push(self.state)

    def reset_trial(self) -> None:
        """Start a new trial: every variable with one copy per batch element (neuron, postsynaptic and
        trace variables, per-element synapse variables, spike buffers) returns to its initial value, while
        what the batch shares -- weights, connectivity, custom-update state such as optimiser moments --
        stays.  The step counter keeps counting (random streams stay fresh); recordings are kept.  Spike
        sources start empty again: give them the trial's input with ``set_spike_times`` after this."""
        self._ensure_state()
        keys = [k for k in self.plan.duplicated if k in self._initial and not is_recording(k)]
        for k in keys:
            self.state[k][...] = self._initial[k]
        self.backend.push(self.state, keys)

    def save(self, path) -> None:
        """Write the complete state (connectivity, every variable and parameter, spike buffers, step) to
        ``path`` (.npz).  Recordings are not part of the state."""
        self._ensure_state()
        self.backend.pull(self.state)
        checkpoint.save(path, self.state, self.step, self.network)

    def load(self, path) -> None:
        """Restore a state written by :meth:`save` from a simulation of the same network; the run then
        continues exactly as if it had never stopped."""
        self._ensure_state()
        self.step = checkpoint.load(path, self.state, self.network)
        self.backend.push(self.state)
