"""A simulation partitioned over MPI ranks: ``Simulation(net, comm=comm)`` on every rank of ``comm``.

Each rank runs its part of the network (:mod:`.partition_build`: its block of every population, the
synapses onto it, a ghost of every source population) with the ordinary engine, in intervals of at most
``1 + minimum delay`` steps; after each interval the ranks exchange the interval's spikes
(:class:`~plastix.parallel.exchange.SpikeExchange`) and write them into the ghosts' spike rings, where the
next steps' propagation reads them exactly as it reads a population's own spikes in one process.

Every method is collective: call it on every rank, in the same order, with the same arguments.  What the
ranks hold (docs/mpi.md, "Partitioned simulation"):

* ``get`` / ``recorded`` / ``connectivity`` / ``spikes`` / ``spike_count`` / ``update_stats`` return the
  whole network's values on every rank, in global neuron ids;
* ``set`` / ``set_spike_times`` / ``set_connectivity`` take the whole network's values (the same on
  every rank); each rank keeps its part;
* ``save(path)`` writes one file per rank, ``<stem>.rank<r>of<R>.npz``; ``load`` reads them back with the
  same number of ranks.

Synapses are listed by presynaptic neuron, then by the rank owning their target, then in that rank's row
order; in one process a row lists them in its own slot order: the same synapses, ordered differently
within a row.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..codegen.names import NAMES, STAT
from ..errors import NetworkError, StateError
from ..model.network import Network
from ..parallel.exchange import RankFailedError, SpikeExchange
from ..parallel.mpi import check_comm
from . import state as st
from .global_phase import run_python_global
from .partition_build import build_local
from .partition_traces import GhostTraces
from .simulation import Simulation


class _RankSimulation(Simulation):
    """One rank's engine: a connectivity update's global phase sees the whole projection -- every rank's
    part of every row, rank-major (``rows.count = ranks x num_pre``) -- and every rank computes the same
    result from the network seed; each rank then keeps its parts' row variables."""

    def __init__(self, network, comm, global_seed: int, whole_rows=(), **kwargs):
        super().__init__(network, **kwargs)
        self.comm = comm
        self.global_seed = global_seed
        self.whole_rows = set(whole_rows)   # updates whose row code reads row.total_length / row.offset

    def _connectivity_update(self, u) -> dict:
        part = u.update.part
        if u.update.name in self.whole_rows:   # the row's synapses on the lower / other ranks, as of now
            keys, state = u.proj.keys, self.state
            self.backend.pull(state, [keys.rowlen])
            lengths = allgather_rows(self.comm, state[keys.rowlen].astype(np.int64)).reshape(self.comm.Get_size(), -1)
            rank = self.comm.Get_rank()
            row = u.code.keys.row
            state[row[part.before]][...] = lengths[:rank].sum(axis=0)
            state[row[part.other]][...] = lengths.sum(axis=0) - lengths[rank]
            self.backend.push(state, [row[part.before], row[part.other]])
        return super()._connectivity_update(u)

    def scheduled_update(self, name: str) -> dict:
        """Update ``name`` as one process runs it inside its time loop at the end of step ``self.step - 1``:
        the same step number (random numbers are keyed by it), global phase reduced across the ranks."""
        u = next(u for u in self.plan.updates if u.update.name == name)
        self.step -= 1
        try:
            return self._connectivity_update(u)
        finally:
            self.step += 1

    def _check_update_stats(self, u, delta, rebuild_columns: bool) -> None:
        part = u.update.part
        bad = int(delta[STAT.bad_target])
        if part is not None and bad:
            lo, n = part.post_lo, u.update.projection.post.size
            delta = delta.copy()
            delta[STAT.bad_target] = 0
            super()._check_update_stats(u, delta, rebuild_columns)
            raise StateError(f"connectivity update {u.update.name!r}: {bad} row.add calls had a target outside this "
                             f"rank's block [{lo}, {lo + n}) of {part.num_post} targets and were not applied; on a "
                             "partitioned simulation a rank adds only the targets it owns: test row.owns(j) first")
        super()._check_update_stats(u, delta, rebuild_columns)

    def _run_global(self, u) -> None:
        model = u.update.model
        if model.global_update is None:
            return
        keys, state, comm = u.global_keys, self.state, self.comm
        rank, ranks = comm.Get_rank(), comm.Get_size()
        gathered = list(dict.fromkeys(list(keys.rows.values()) + [keys.rowlen]))
        self.backend.pull(state, gathered + list(keys.glob.values()))
        view = {k: allgather_rows(comm, state[k]) for k in gathered}
        n, stride = state[keys.ind].shape
        # rows.count and rows.capacity are read from ind's shape: a zero-stride view, no memory
        view[keys.ind] = np.lib.stride_tricks.as_strided(np.zeros(1, state[keys.ind].dtype), (ranks * n, stride),
                                                         (0, 0), writeable=False)
        view.update({k: state[k].copy() for k in keys.glob.values()})
        view.update({k: state[k] for k in keys.params.values()})
        view[keys.stream] = state[keys.stream]
        if u.global_code is not None:
            self.backend.run_global(view, u, self.step, self.network.dt, self.global_seed)
            written = list(u.global_code.written)
        else:
            written = run_python_global(model.global_update, view, keys, self.global_seed, self.step,
                                        u.global_stream, self.network.dt)
        for k in written:
            state[k][...] = view[k][rank * n:(rank + 1) * n] if k in gathered else view[k]
        self.backend.push(state, written)


def allgather_rows(comm, local: np.ndarray) -> np.ndarray:
    """Every rank's ``local`` (same length on every rank) one after another, rank-major."""
    local = np.ascontiguousarray(local)
    out = np.empty((comm.Get_size(),) + local.shape, local.dtype)
    comm.Allgather(local, out)
    return out.reshape((-1,) + local.shape[1:])


def allgatherv(comm, local: np.ndarray, counts) -> np.ndarray:
    """Concatenation of every rank's 1-d ``local`` (rank r has ``counts[r]`` elements), rank-major."""
    local = np.ascontiguousarray(local).reshape(-1)
    out = np.empty(int(np.sum(counts)), local.dtype)
    comm.Allgatherv(local, [out, np.asarray(counts, np.int64)])
    return out


class PartitionedSimulation:
    """``Simulation(network, comm=comm)``: the network partitioned over the ranks of ``comm`` (see the
    module docstring and docs/mpi.md for what equals a one-process run).

    Parameters are those of :class:`~plastix.Simulation` (CPU backend only, ``batch_size`` 1; ``threads``
    defaults to numba's current thread count, which :func:`plastix.parallel.share_cores` sets to this
    rank's share of its node's cores -- call it first when several ranks share a node), plus
    ``measure_wait``: time a barrier before each exchange, splitting the exchange time into waiting for
    the slowest rank (``wait_s``) and the transfer itself (``exchange_s``); it adds one collective per
    exchange, so it is for benchmarks.
    """

    def __init__(self, network: Network, backend: str = "auto", *, comm, parallel: bool | str = "auto",
                 threads: int | None = None, partitions: int | None = None, check_finite: bool = True,
                 batch_size: int = 1, measure_wait: bool = False):
        if comm == "world":
            from ..parallel.mpi import world

            comm = world()
        comm = check_comm(comm)
        if not isinstance(network, Network):
            raise NetworkError(f"network must be a plastix.Network, got {type(network).__name__}")
        if not network.populations:
            raise NetworkError("the network has no populations")
        if batch_size != 1:
            raise NetworkError(f"batch_size must be 1 for a simulation partitioned over ranks (comm given), got "
                               f"{batch_size!r}: a batch shares one connectivity, a partition splits it; use "
                               "data-parallel training (docs/mpi.md) to spread a batch over ranks")
        if backend not in ("auto", "cpu"):
            raise NetworkError(f"backend must be 'cpu' (or 'auto') for a simulation partitioned over ranks, got "
                               f"{backend!r}: the spike exchange writes the ghosts' spike rings on the host")
        self.network = network
        self.comm = comm
        self.rank, self.ranks = comm.Get_rank(), comm.Get_size()
        self.check_finite_after_run = check_finite
        self.batch_size = 1
        self.part = self._collective(lambda: build_local(network, self.rank, self.ranks), "building the partition")
        if threads is None:
            import numba

            threads = numba.get_num_threads()
        self.local = _RankSimulation(self.part.network, comm, network.seed, self.part.whole_rows, backend="cpu",
                                     parallel=parallel, threads=threads, partitions=partitions, check_finite=False)
        self._ghost_traces: GhostTraces | None = None
        self.bounds = self.part.bounds
        #: exchanged populations: every source of a projection, then those recorded (the same on every rank)
        self._exchanged: list[str] = list(self.part.ghosts)
        self.exchange = SpikeExchange(comm, 0, measure_wait=measure_wait)
        self.compute_s = 0.0
        self._recorded_spikes: dict[str, list] = {}
        self._var_every: dict[tuple[str, str], int] = {}
        self._recorded_vars: dict[tuple[str, str], list] = {}

    # -- collectives -------------------------------------------------------------------------------------
    def _collective(self, fn: Callable, what: str):
        """``fn()`` on every rank; if it raised on any rank, every rank raises (the failing rank its own
        error, the others :class:`RankFailedError` with its message)."""
        try:
            out, failure = fn(), None
        except Exception as e:   # noqa: BLE001 -- any error on one rank would leave the others waiting
            out, failure = None, e
        everyone = self.comm.allgather(None if failure is None else f"{type(failure).__name__}: {failure}")
        bad = [r for r, msg in enumerate(everyone) if msg is not None]
        if failure is not None:
            raise failure
        if bad:
            raise RankFailedError(f"{what} failed on rank {bad[0]} of {self.ranks}: {everyone[bad[0]]}")
        return out

    def _span(self, pop: str) -> tuple[int, int]:
        b = self.bounds[pop]
        return int(b[self.rank]), int(b[self.rank + 1])

    def _counts(self, pop: str) -> np.ndarray:
        return np.diff(self.bounds[pop])

    # -- lifecycle ---------------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self.network.dt

    @property
    def step(self) -> int:
        return self.local.step

    @property
    def t(self) -> float:
        """Time (ms) at the start of the next step."""
        return self.step * self.network.dt

    @property
    def backend(self):
        return self.local.backend

    def build(self) -> "PartitionedSimulation":
        self._collective(self.local.build, "building the local simulation")
        return self

    def run(self, steps: int, *, callback: Callable | None = None, every: int | None = None,
            progress: bool = False) -> "PartitionedSimulation":
        """Advance ``steps`` steps, exchanging spikes every ``1 + minimum delay`` steps; ``callback`` and
        ``progress`` as in :meth:`Simulation.run` (the bar on rank 0 only)."""
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        if callback is not None and (every is None or every < 1):
            raise ValueError("callback needs every >= 1 (steps between calls)")
        self.build()
        interval = self.part.interval or max(int(steps), 1)
        bar = None
        if progress and self.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(steps), unit="step", desc=f"simulating ({self.ranks} ranks)")
        start, done = self.step, 0
        next_call = every if callback is not None else None
        scheduled = self.part.scheduled
        order = [u.update.name for u in self.local.plan.updates if u.update.name in scheduled]
        try:
            while done < steps:
                n = min(interval, steps - done)
                if next_call is not None:
                    n = min(n, next_call - done)
                for k in scheduled.values():   # end an interval where one process runs a scheduled update
                    n = min(n, k - self.step % k)
                self._advance(int(n), start)
                done += n
                for name in order:             # one process: at the end of a step s with (s + 1) % every == 0
                    if self.step % scheduled[name] == 0:
                        self._collective(lambda name=name: self.local.scheduled_update(name),
                                         f"connectivity update {name!r}")
                if bar is not None:
                    bar.update(n)
                if next_call is not None and (done == next_call or done == steps):
                    callback(self)
                    next_call += every
        finally:
            if bar is not None:
                bar.close()
        if self.check_finite_after_run:
            self._collective(lambda: st.check_finite(self.local.state, self.local.plan, self.step),
                             "the finiteness check (indices in that rank's message are local to its block)")
        return self

    def _advance(self, n: int, run_start: int) -> None:
        """``n`` steps (at most one exchange interval) on this rank, then the exchange."""
        local, s0 = self.local, self.local.step
        mine, failure = [], None
        try:
            for pop in self._exchanged:
                if pop not in local.recorder.spike_pops:
                    local.record_spikes(pop)
            for (pop, var) in self._var_every:
                if (pop, var) not in local.recorder.var_every:
                    local.record(pop, var, 1)
            t0 = time.perf_counter()
            local.run(n)
            self.compute_s += time.perf_counter() - t0
            for pop in self._exchanged:
                times, idx = local.spikes(pop)
                mine.append((np.rint(times / self.dt).astype(np.int64) - s0, idx.astype(np.int64) + self._span(pop)[0]))
            for (pop, var), every in self._var_every.items():
                rows = local.recorded(pop, var)
                keep = (s0 + np.arange(rows.shape[0]) - run_start) % every == 0
                self._recorded_vars[(pop, var)].append(rows[keep])
            local.recorder.clear()
        except Exception as e:   # noqa: BLE001 -- reported to every rank by the exchange
            failure = e
        self.exchange.pops = len(self._exchanged)
        got = self.exchange.exchange(mine, n, failure)
        state = local.state
        for pop, (counts, ids) in zip(self._exchanged, got):
            if pop in self.part.ghosts:
                keys = NAMES.pop(self.part.network.populations[self.part.ghosts[pop]])
                spk, cnt = state[keys.spk], state[keys.spkcnt]
                off = 0
                for k in range(n):
                    slot = (s0 + k) % cnt.shape[0]
                    c = int(counts[k])
                    spk[slot, :c] = ids[off:off + c]
                    cnt[slot] = c
                    off += c
                local.backend.push(state, [keys.spk, keys.spkcnt])
                self._apply_ghost_traces(pop, s0, counts, ids)
            if pop in self._recorded_spikes:
                self._recorded_spikes[pop].append((s0 + np.repeat(np.arange(n), counts), ids.copy()))

    def _apply_ghost_traces(self, pop: str, s0: int, counts: np.ndarray, ids: np.ndarray) -> None:
        """The exchanged spikes of ``pop``, step by step, into its ghost's presynaptic traces."""
        local = self.local
        if self._ghost_traces is None:
            self._ghost_traces = GhostTraces(local.plan, self.part.ghosts)
        ghost = self.part.ghosts[pop]
        if ghost not in self._ghost_traces.kernels or not ids.size:
            return
        ends = np.concatenate([[0], np.cumsum(counts)])
        for k in np.flatnonzero(counts):
            self._ghost_traces.apply(local.state, ghost, s0 + int(k), self.dt, self.network.seed,
                                     ids[ends[k]:ends[k + 1]])

    def timings(self) -> dict:
        """This rank's seconds in the local engine (``compute_s``) and in spike exchanges (``exchange_s``;
        ``wait_s`` with ``measure_wait``), the steps and exchanges so far and the bytes this rank received."""
        ex = self.exchange
        return {"compute_s": self.compute_s, "exchange_s": ex.exchange_s, "wait_s": ex.wait_s, "steps": ex.steps,
                "exchanges": ex.exchanges, "bytes_received": ex.bytes_received,
                "bytes_received_per_step": ex.bytes_received / max(ex.steps, 1), "ranks": self.ranks}

    # -- recording ---------------------------------------------------------------------------------------
    def _check_pop(self, pop: str):
        if pop not in self.network.populations:
            raise StateError(f"unknown population {pop!r}; known: {sorted(self.network.populations)}")
        return self.network.populations[pop]

    def record_spikes(self, pop: str, max_spikes: int | None = None) -> None:
        """Record spikes of ``pop``: every rank keeps every rank's spikes (they pass through the exchange).
        ``max_spikes`` bounds one exchange interval's spikes of this rank's block."""
        self._check_pop(pop)
        self.local.record_spikes(pop, max_spikes)
        if pop not in self._exchanged:
            self._exchanged.append(pop)
        self._recorded_spikes.setdefault(pop, [])

    def record(self, pop: str, var: str, every: int = 1) -> None:
        """Record neuron variable ``var`` of ``pop`` after every ``every``-th step of each run call (each
        rank records its block; :meth:`recorded` gathers)."""
        p = self._check_pop(pop)
        if var not in p.model.vars:
            raise StateError(f"population {pop!r} has no variable {var!r}; known: {sorted(p.model.vars)}")
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if self._var_every and set(self._var_every.values()) != {every}:
            raise ValueError("all recorded variables must use the same 'every'")
        self._var_every[(pop, var)] = int(every)
        self._recorded_vars.setdefault((pop, var), [])

    def spikes(self, pop: str, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times in ms, global neuron ids) of the recorded spikes of ``pop``, by time then id (every rank)."""
        self._check_pop(pop)
        if pop not in self._recorded_spikes:
            raise StateError(f"spikes of {pop!r} are not recorded; call record_spikes({pop!r}) before run")
        if batch not in (None, 0):
            raise StateError(f"batch must be 0 or None (a partitioned simulation has batch size 1), got {batch!r}")
        chunks = self._recorded_spikes[pop]
        if not chunks:
            return np.zeros(0), np.zeros(0, np.int32)
        steps = np.concatenate([c[0] for c in chunks])
        return steps * self.dt, np.concatenate([c[1] for c in chunks]).astype(np.int32)

    def recorded(self, pop: str, var: str) -> np.ndarray:
        """Recorded values of ``var``, [records, neurons of the whole population] (on every rank)."""
        if (pop, var) not in self._recorded_vars:
            raise StateError(f"{pop}.{var} is not recorded; call record({pop!r}, {var!r}) before run")
        chunks = self._recorded_vars[(pop, var)]
        lo, hi = self._span(pop)
        mine = np.concatenate(chunks) if chunks else np.zeros((0, hi - lo))
        records = mine.shape[0]
        flat = allgatherv(self.comm, mine.T.copy(), self._counts(pop) * records)
        return flat.reshape(-1, records).T.copy()

    def spike_count(self, pop: str) -> int:
        """Total spikes ``pop`` emitted since build or reset (every rank's)."""
        self._check_pop(pop)
        return int(self.comm.allreduce(int(self.local.spike_count(pop))))

    def tape(self, pop: str, var: str):
        raise StateError("a partitioned simulation keeps no tape (custom updates over the tape are not supported)")

    # -- state access ------------------------------------------------------------------------------------
    def _locate(self, group: str, var: str) -> tuple[str, str]:
        net = self.network
        if not (group in net.populations or group in net.projections or group in net.connectivity_updates
                or group in net.custom_updates):
            raise StateError(f"unknown population, projection, connectivity or custom update {group!r}; known: "
                             f"{sorted(net.populations) + sorted(net.projections)}")
        self.local._ensure_state()
        return self.local.access.locate(group, var)

    def _projection_of(self, group: str):
        net = self.network
        if group in net.connectivity_updates:
            return net.connectivity_updates[group].projection
        if group in net.custom_updates:
            return net.custom_updates[group].target
        return net.projections[group]

    def _neuron_pop(self, group: str, kind: str) -> str:
        """The population whose blocks split a per-neuron variable of ``group``."""
        net = self.network
        if kind == "neuron":
            return group
        if kind == "custom_neuron":
            return net.custom_updates[group].target.name
        return net.projections[group].post.name   # post traces, postsynaptic vars

    def _layout(self, proj) -> tuple[np.ndarray, list[np.ndarray]]:
        """(global presynaptic id of every synapse in gathered order, positions of each rank's synapses in
        that order): synapses by pre, then owning rank, then local slot."""
        lq = self.part.network.projections[proj.name]
        rowlen = self.local.state[NAMES.proj(lq).rowlen]
        C = allgather_rows(self.comm, rowlen.astype(np.int64)).reshape(self.ranks, -1)   # [rank, pre]
        per_row = C.sum(axis=0)
        row_start = np.concatenate([[0], np.cumsum(per_row)[:-1]])
        before = np.cumsum(C, axis=0) - C                      # synapses of lower ranks in each row
        positions = []
        for r in range(self.ranks):
            base = np.repeat(row_start + before[r], C[r])
            first = np.repeat(np.concatenate([[0], np.cumsum(C[r])[:-1]]), C[r])
            positions.append(base + np.arange(int(C[r].sum())) - first)
        return np.repeat(np.arange(per_row.size), per_row), positions

    def _gather_synapses(self, proj, local_values: np.ndarray) -> np.ndarray:
        _, positions = self._layout(proj)
        flat = allgatherv(self.comm, local_values, [p.size for p in positions])
        out = np.empty_like(flat)
        out[np.concatenate(positions)] = flat
        return out

    def get(self, group: str, var: str) -> np.ndarray:
        """The whole network's ``var`` (as :meth:`Simulation.get`), on every rank; per-synapse values in the
        gathered synapse order; a connectivity update's row variable as [ranks, rows] (each rank's part of
        each row)."""
        key, kind = self._locate(group, var)
        arr = self.local.get(group, var)
        if kind in ("synapse", "update_synapse"):
            return self._gather_synapses(self._projection_of(group), arr)
        if kind == "row":
            return allgather_rows(self.comm, arr).reshape(self.ranks, -1)
        if kind in ("global", "custom_global", "pre"):   # presynaptic traces: every rank's ghost holds them all
            return arr
        return allgatherv(self.comm, arr, self._counts(self._neuron_pop(group, kind)))

    def set(self, group: str, var: str, values) -> None:
        """Overwrite ``var`` with the whole network's values (shape of :meth:`get`, or a scalar), the same
        on every rank; each rank keeps its part."""
        key, kind = self._locate(group, var)
        values = np.asarray(values)

        def mine():
            if values.ndim == 0 or kind in ("global", "custom_global", "pre"):
                return values
            if kind in ("synapse", "update_synapse"):
                _, positions = self._layout(self._projection_of(group))
                total = sum(p.size for p in positions)
                if values.shape != (total,):
                    raise StateError(f"{group}.{var}: expected shape ({total},) (one value per synapse of the whole "
                                     f"projection), got {values.shape}")
                return values[positions[self.rank]]
            if kind == "row":
                if values.ndim == 2:
                    if values.shape[0] != self.ranks:
                        raise StateError(f"{group}.{var}: expected [ranks = {self.ranks}, rows] or [rows], got "
                                         f"{values.shape}")
                    return values[self.rank]
                return values
            pop = self._neuron_pop(group, kind)
            n = int(self.bounds[pop][-1])
            if values.shape != (n,):
                raise StateError(f"{group}.{var}: expected shape ({n},) (the whole population) or a scalar, got "
                                 f"{values.shape}")
            lo, hi = self._span(pop)
            return values[lo:hi]

        self._collective(lambda: self.local.set(group, var, mine()), f"set({group!r}, {var!r})")

    def connectivity(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) global ids of every synapse of ``proj``, in the gathered order, on every rank."""
        if proj not in self.network.projections:
            raise StateError(f"unknown projection {proj!r}; known: {sorted(self.network.projections)}")
        q = self.network.projections[proj]
        self.local._ensure_state()
        _, post = self.local.connectivity(proj)
        pre_all, positions = self._layout(q)
        flat = allgatherv(self.comm, post.astype(np.int64) + self._span(q.post.name)[0], [p.size for p in positions])
        out = np.empty_like(flat)
        out[np.concatenate(positions)] = flat
        return pre_all, out

    def set_connectivity(self, proj: str, pre, post, **values) -> None:
        """Replace the synapses of ``proj`` by the whole list (``pre[s]``, ``post[s]``, global ids), the same
        on every rank: each rank keeps those onto its targets, in the given order, within its rows'
        capacity."""
        if proj not in self.network.projections:
            raise StateError(f"unknown projection {proj!r}; known: {sorted(self.network.projections)}")
        q = self.network.projections[proj]
        lo, hi = self._span(q.post.name)

        def apply():
            pre_, post_ = np.asarray(pre, np.int64).ravel(), np.asarray(post, np.int64).ravel()
            if pre_.shape != post_.shape:
                raise StateError(f"set_connectivity({proj!r}): pre and post differ in length ({pre_.size}, "
                                 f"{post_.size})")
            if post_.size and (post_.min() < 0 or post_.max() >= q.post.size):
                raise StateError(f"set_connectivity({proj!r}): post ids must lie in [0, {q.post.size})")
            keep = (post_ >= lo) & (post_ < hi)
            vals = {k: (v if np.ndim(v) == 0 else np.asarray(v)[keep]) for k, v in values.items()}
            self.local.set_connectivity(proj, pre_[keep], post_[keep] - lo, **vals)

        self._collective(apply, f"set_connectivity({proj!r})")

    def ragged(self, proj: str, var: str | None = None, of: str | None = None):
        raise StateError("a partitioned simulation has no whole-network ragged layout: each rank holds its part "
                         "(sim.local.ragged(...) gives this rank's rows, with local target indices)")

    def set_param(self, group: str, name: str, value: float) -> None:
        self._collective(lambda: self.local.set_param(group, name, value), f"set_param({group!r}, {name!r})")

    def set_egp(self, pop: str, name: str, values) -> None:
        """Replace extra global array ``name`` of ``pop`` on every rank (the whole array: model code indexes
        it by time or by its own variables, not by neuron)."""
        self._check_pop(pop)
        self._collective(lambda: self.local.set_egp(pop, name, values), f"set_egp({pop!r}, {name!r})")

    def set_spike_times(self, pop: str, times) -> None:
        """One array of times (ms) per neuron of the whole population; each rank keeps its block's."""
        p = self._check_pop(pop)
        if len(times) != p.size:
            raise StateError(f"set_spike_times({pop!r}): expected {p.size} arrays (one per neuron), got {len(times)}")
        lo, hi = self._span(pop)
        self._collective(lambda: self.local.set_spike_times(pop, list(times)[lo:hi]), f"set_spike_times({pop!r})")

    def set_spike_times_flat(self, pop: str, times, counts) -> None:
        """:meth:`Simulation.set_spike_times_flat` for the whole population; each rank keeps its block's."""
        p = self._check_pop(pop)
        counts = np.asarray(counts)
        if counts.shape != (p.size,):
            raise StateError(f"set_spike_times_flat({pop!r}): counts must have shape ({p.size},), got {counts.shape}")
        lo, hi = self._span(pop)
        ends = np.concatenate([[0], np.cumsum(counts.astype(np.int64))])
        flat = np.asarray(times, np.float64).ravel()
        self._collective(lambda: self.local.set_spike_times_flat(pop, flat[ends[lo]:ends[hi]], counts[lo:hi]),
                         f"set_spike_times_flat({pop!r})")

    # -- structural plasticity ---------------------------------------------------------------------------
    def custom_update(self, group: str, rows: tuple[int, int] | None = None) -> dict[str, dict]:
        """Run the updates of ``group`` on every rank's part (global phases over the whole projection);
        counts summed over the ranks, timings this rank's.  ``rows``: as :meth:`Simulation.custom_update`."""
        out = self._collective(lambda: self.local.custom_update(group, rows), f"custom_update({group!r})")
        for res in out.values():
            if "removed" in res:
                total = self.comm.allreduce(np.array([res["removed"], res["added"], res["failed_adds"]], np.int64))
                res.update(removed=int(total[0]), added=int(total[1]), failed_adds=int(total[2]))
        return out

    def update_stats(self, name: str) -> dict[str, int]:
        """Cumulative counts of connectivity update ``name``, summed over the ranks."""
        mine = self._collective(lambda: self.local.update_stats(name), f"update_stats({name!r})")
        total = self.comm.allreduce(np.array(list(mine.values()), np.int64))
        return {k: int(v) for k, v in zip(mine, total)}

    def update_timings(self, name: str | None = None) -> dict:
        return self.local.update_timings(name)

    # -- reset, save, load -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after build (step 0) on every rank; recordings cleared."""
        self._collective(self.local.reset, "reset")
        for v in self._recorded_spikes.values():
            v.clear()
        for v in self._recorded_vars.values():
            v.clear()

    def reset_trial(self) -> None:
        self._collective(self.local.reset_trial, "reset_trial")

    def rank_path(self, path) -> Path:
        """The file rank ``r`` of ``R`` uses for ``path``: ``<stem>.rank<r>of<R><suffix or .npz>``."""
        path = Path(path)
        return path.with_name(f"{path.stem}.rank{self.rank}of{self.ranks}{path.suffix or '.npz'}")

    def save(self, path) -> None:
        """Every rank writes its part's complete state (its ghosts' spike rings included) to
        :meth:`rank_path`; recordings are not part of the state."""
        self._collective(lambda: self.local.save(self.rank_path(path)), f"save({str(path)!r})")

    def load(self, path) -> None:
        """Every rank restores its part from :meth:`rank_path` (written with the same number of ranks)."""
        self._collective(lambda: self.local.load(self.rank_path(path)), f"load({str(path)!r})")
