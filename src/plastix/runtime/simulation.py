"""Simulation: build a Network for a backend, run it, read and write its state, record, save and load.

Lifecycle: ``Simulation(net)`` -> (optional ``record_*``) -> ``run(steps)`` (builds on first use) ->
``get`` / ``set`` / ``spikes`` / ``save`` / ``load`` / ``reset``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends import make_backend
from ..codegen.plan import build_plan
from ..errors import CapacityError, NetworkError, StateError
from ..model.network import Network
from . import state as st

FORMAT_VERSION = 1
#: Largest spike-recording buffer allocated without being asked for (events per run call).
DEFAULT_MAX_SPIKES = 1 << 26


class Simulation:
    """A built, runnable network.

    Parameters
    ----------
    network : Network
    backend : {"auto", "cpu", "cuda"}
        "auto" picks CUDA when a usable GPU is present, else CPU.
    parallel : bool or "auto"
        CPU only: multi-threaded kernels (race-free, bit-identical to serial).  "auto" uses them for large
        networks only.
    threads : int, optional
        CPU threads for parallel kernels (default: all numba threads).  Results do not depend on it.
    partitions : int, optional
        CPU parallel kernels split each step's spikes into this many fixed partitions (default: the
        machine's numba thread count); pin it to reproduce parallel runs bit for bit across machines.
    check_finite : bool
        After every ``run``, raise :class:`~plastix.errors.StateError` if a state variable became NaN/inf.
    """

    def __init__(self, network: Network, backend: str = "auto", *, parallel: bool | str = "auto",
                 threads: int | None = None, partitions: int | None = None, check_finite: bool = True):
        if not isinstance(network, Network):
            raise NetworkError(f"network must be a plastix.Network, got {type(network).__name__}")
        if not network.populations:
            raise NetworkError("the network has no populations")
        self.network = network
        self.backend = make_backend(backend, parallel=parallel, threads=threads, partitions=partitions)
        self.check_finite_after_run = check_finite
        self._spike_rec: dict[str, int | None] = {}  # pop name -> max spikes per run (None: default)
        self._var_rec: dict[tuple[str, str], int] = {}  # (pop, var) -> every n steps
        self._built_key = None
        self.state: dict | None = None
        self._initial: dict | None = None
        self.step = 0
        self._spikes: dict[str, list] = {}
        self._vars: dict[tuple[str, str], list] = {}
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
        recorded = tuple(sorted(self._var_rec))
        if self.state is not None and self._built_key == recorded:
            return self
        self.plan = build_plan(self.network, recorded)
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
        p = self._pop(pop)
        if not p.model.spikes:
            raise NetworkError(f"population {pop!r} ({p.model.name}) does not spike; record a variable instead")
        if max_spikes is not None and (not isinstance(max_spikes, (int, np.integer)) or max_spikes < 1):
            raise ValueError(f"max_spikes must be a positive integer, got {max_spikes!r}")
        self._spike_rec[pop] = max_spikes
        self._spikes.setdefault(pop, [])

    def record(self, pop: str, var: str, every: int = 1) -> None:
        """Record neuron variable ``var`` of ``pop`` after every ``every``-th step's neuron update."""
        p = self._pop(pop)
        if var not in p.model.vars:
            raise StateError(f"population {pop!r} has no variable {var!r}; known: {sorted(p.model.vars)}")
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if self._var_rec and set(self._var_rec.values()) != {every}:
            raise ValueError("all recorded variables must use the same 'every'")
        self._var_rec[(pop, var)] = int(every)
        self._vars.setdefault((pop, var), [])

    def spikes(self, pop: str) -> tuple[np.ndarray, np.ndarray]:
        """(times in ms, neuron indices) of the recorded spikes of ``pop``, in time order."""
        if pop not in self._spike_rec:
            raise StateError(f"spikes of {pop!r} are not recorded; call record_spikes({pop!r}) before run")
        chunks = self._spikes[pop]
        if not chunks:
            return np.zeros(0), np.zeros(0, np.int32)
        steps = np.concatenate([c[0] for c in chunks]).astype(np.int64)
        idx = np.concatenate([c[1] for c in chunks])
        order = np.lexsort((idx, steps))  # GPU recording order is not deterministic
        return steps[order] * self.network.dt, idx[order]

    def recorded(self, pop: str, var: str) -> np.ndarray:
        """Recorded values of ``var``: array [records, neurons]."""
        if (pop, var) not in self._vars:
            raise StateError(f"{pop}.{var} is not recorded; call record({pop!r}, {var!r}) before run")
        chunks = self._vars[(pop, var)]
        n = self._pop(pop).size
        return np.concatenate(chunks) if chunks else np.zeros((0, n))

    def spike_count(self, pop: str) -> int:
        """Total spikes ``pop`` emitted since build or reset."""
        self._ensure_state()
        name = f"{self._pop_prefix(pop)}_nspk"
        self.backend.pull(self.state, [name])
        return int(self.state[name][0])

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
        chunk = every if callback is not None else steps
        if progress and callback is None:
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
        caps = {}
        for pop, max_spikes in self._spike_rec.items():
            pfx = self._pop_prefix(pop)
            cap = max_spikes or min(self._pop(pop).size * n, DEFAULT_MAX_SPIKES)
            caps[pop] = cap
            state[f"{pfx}_rec_step"] = np.empty(cap, np.int32)
            state[f"{pfx}_rec_idx"] = np.empty(cap, np.int32)
            state[f"{pfx}_rec_n"][0] = 0
            self.backend.push(state, [f"{pfx}_rec_step", f"{pfx}_rec_idx", f"{pfx}_rec_n"])
        every = next(iter(self._var_rec.values()), 1)
        rows = -(-n // every)
        for r, (pop, var) in enumerate(plan.recorded_vars):
            arr = state[f"{self._pop_prefix(pop)}_{var}"]
            state[f"rec_var{r}"] = np.zeros((rows, arr.shape[0]), arr.dtype)
            self.backend.push(state, [f"rec_var{r}"])
        scheduled = [u for u in plan.updates if u.update.every is not None]
        before = {u.prefix: state[f"{u.prefix}_stats"].copy() for u in scheduled}
        self.backend.run(state, self.step, n, self.network.dt, self.network.seed, every)
        self.step += n
        for u in scheduled:
            self.backend.pull(state, [f"{u.prefix}_stats"])
            self._check_update_stats(u, state[f"{u.prefix}_stats"] - before[u.prefix], grow_columns=False)
        for pop, cap in caps.items():
            pfx = self._pop_prefix(pop)
            self.backend.pull(state, [f"{pfx}_rec_n", f"{pfx}_rec_step", f"{pfx}_rec_idx"])
            got = int(state[f"{pfx}_rec_n"][0])
            if got > cap:
                raise CapacityError(f"spike recording of {pop!r} overflowed: {got} spikes in this run call but "
                                    f"max_spikes is {cap}; call record_spikes({pop!r}, max_spikes=...) with more "
                                    "or run fewer steps per call")
            self._spikes[pop].append((state[f"{pfx}_rec_step"][:got].copy(), state[f"{pfx}_rec_idx"][:got].copy()))
        for r, key in enumerate(plan.recorded_vars):
            self.backend.pull(state, [f"rec_var{r}"])
            self._vars[key].append(state[f"rec_var{r}"].copy())
        if self.check_finite_after_run:
            self.backend.pull(state)
            st.check_finite(state, plan, self.step)

    # -- structural plasticity ---------------------------------------------------------------------------
    def custom_update(self, group: str) -> dict[str, dict]:
        """Run every connectivity update of ``group`` once, now (between steps).

        Returns, per update, its counts (``removed``, ``added``, ``failed_adds``) and timings in seconds
        (``row_s``: the row kernel, ``columns_s``: column-view maintenance, ``global_s``).  A full row on a
        strict ``row.add`` or an out-of-range target raises :class:`CapacityError` / :class:`StateError`.
        """
        self.build()
        members = [u for u in self.plan.updates if u.update.group == group]
        if not members:
            groups = sorted({u.update.group for u in self.plan.updates})
            raise StateError(f"no connectivity updates in group {group!r}; groups: {groups}")
        if not hasattr(self.backend, "run_update"):
            raise NotImplementedError(f"connectivity updates are not implemented on the {self.backend.name} "
                                      "backend yet; use backend='cpu'")
        out = {}
        for u in members:
            stats_key = f"{u.prefix}_stats"
            before = self.state[stats_key].copy()
            tg = time.perf_counter()
            self._run_global(u)
            t0 = time.perf_counter()
            self.backend.run_update(self.state, u.prefix, self.step, self.network.dt, self.network.seed)
            t1 = time.perf_counter()
            self.backend.pull(self.state, [stats_key])
            delta = self.state[stats_key] - before
            t2 = time.perf_counter()
            self._check_update_stats(u, delta, grow_columns=True)  # rebuilds the column view
            t3 = time.perf_counter()
            timing = {"row_s": t1 - t0, "global_s": t0 - tg, "columns_s": t3 - t2}
            self._update_timings[u.update.name] = timing
            out[u.update.name] = {"removed": int(delta[0]), "added": int(delta[1]), "failed_adds": int(delta[3]),
                                  **timing}
        return out

    def _run_global(self, u) -> None:
        """The update's global phase, if any: compiled (backend) or plain Python on the host state."""
        model = u.update.model
        if model.global_update is None:
            return
        if u.global_code is not None:
            self.backend.run_global(self.state, u, self.step, self.network.dt, self.network.seed)
            return
        from ..codegen.globalcode import run_python_global

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
        if name not in self.network.connectivity_updates:
            raise StateError(f"unknown connectivity update {name!r}; known: {sorted(self.network.connectivity_updates)}")
        return dict(self._update_timings.get(name, {}))

    def update_stats(self, name: str) -> dict[str, int]:
        """Cumulative counts of connectivity update ``name`` since build: removed, added, failed_adds."""
        self._ensure_state()
        if name not in self.network.connectivity_updates:
            raise StateError(f"unknown connectivity update {name!r}; known: {sorted(self.network.connectivity_updates)}")
        key = f"cu{self.network.connectivity_updates[name].index}_stats"
        self.backend.pull(self.state, [key])
        st_ = self.state[key]
        return {"removed": int(st_[0]), "added": int(st_[1]), "failed_adds": int(st_[3])}

    def _check_update_stats(self, u, delta, grow_columns: bool) -> None:
        name, proj = u.update.name, u.update.projection
        rebuilt = grow_columns and u.proj.needs_columns and bool(delta[0] or delta[1])
        if rebuilt:
            self._rebuild_columns(u.proj)  # first: the rows changed, even if we raise below
        if delta[6]:
            raise StateError(f"connectivity update {name!r}: {int(delta[6])} row.add calls targeted a neuron the row "
                             f"already reaches; rows of projection {proj.name!r} stay duplicate-free because a rule "
                             "on it samples free targets (use 'ok = row.add(...)' to handle it)")
        if delta[4]:
            raise StateError(f"connectivity update {name!r}: {int(delta[4])} row.add calls had a target outside "
                             f"[0, {proj.post.size}) and were not applied")
        if delta[2]:
            raise CapacityError(f"connectivity update {name!r}: {int(delta[2])} row.add calls found their row full "
                                f"(row_stride {self.state[f'q{proj.index}_ind'].shape[1]}) and were not applied; "
                                "give the projection more headroom, or use 'ok = row.add(...)' to handle it")
        if delta[5] and not rebuilt:  # a rebuild grows the view to fit
            raise CapacityError(f"connectivity update {name!r}: a target's in-degree outgrew the column view of "
                                f"projection {proj.name!r} ({self.state[f'q{proj.index}_colsyn'].shape[1]} slots)")

    def _rebuild_columns(self, q) -> None:
        """Rebuild a projection's column view from its rows, growing it if an in-degree no longer fits."""
        from .columns import build_columns, in_degree

        qp, proj = q.prefix, q.proj
        names = [f"{qp}_ind", f"{qp}_rowlen", f"{qp}_collen", f"{qp}_colsyn"]
        self.backend.pull(self.state, names)
        ind, rowlen = self.state[names[0]], self.state[names[1]]
        deg = int(in_degree(ind, rowlen, proj.post.size).max(initial=0))
        if deg > self.state[names[3]].shape[1]:
            self.state[names[3]] = np.zeros((proj.post.size, 2 * deg), np.int32)
        build_columns(ind, rowlen, self.state[names[2]], self.state[names[3]], f"projection {proj.name!r}")
        self.backend.push(self.state, names[2:])

    # -- state access ------------------------------------------------------------------------------------
    def _pop(self, name: str):
        try:
            return self.network.populations[name]
        except KeyError:
            raise StateError(f"unknown population {name!r}; known: {sorted(self.network.populations)}") from None

    def _pop_prefix(self, name: str) -> str:
        return f"p{self._pop(name).index}"

    def _proj(self, name: str):
        try:
            return self.network.projections[name]
        except KeyError:
            raise StateError(f"unknown projection {name!r}; known: {sorted(self.network.projections)}") from None

    def _locate(self, group: str, var: str) -> tuple[str, str]:
        """(state key, kind) with kind one of neuron, synapse, pre, post, psm."""
        if group in self.network.populations:
            p = self._pop(group)
            if var not in p.model.vars:
                raise StateError(f"population {group!r} has no variable {var!r}; known: {sorted(p.model.vars)}")
            return f"p{p.index}_{var}", "neuron"
        if group in self.network.projections:
            q = self._proj(group)
            wu, psm = q.weight_update, q.postsynaptic
            for kind, names in (("synapse", wu.vars), ("pre", wu.pre_vars), ("post", wu.post_vars),
                                ("psm", psm.vars)):
                if var in names:
                    return f"q{q.index}_{dict(synapse='s').get(kind, kind)}_{var}", kind
            known = sorted(set(wu.vars) | set(wu.pre_vars) | set(wu.post_vars) | set(psm.vars))
            raise StateError(f"projection {group!r} has no variable {var!r}; known: {known}")
        if group in self.network.connectivity_updates:
            u = self.network.connectivity_updates[group]
            if var in u.model.vars:
                return f"cu{u.index}_s_{var}", "update_synapse"
            if var in u.model.row_vars:
                return f"cu{u.index}_r_{var}", "row"
            if var in u.model.global_vars:
                return f"cu{u.index}_g_{var}", "global"
            raise StateError(f"connectivity update {group!r} has no variable {var!r}; known: "
                             f"{sorted(set(u.model.vars) | set(u.model.row_vars) | set(u.model.global_vars))}")
        raise StateError(f"unknown population, projection or connectivity update {group!r}; known: "
                         f"{sorted(self.network.populations) + sorted(self.network.projections)}")

    def _synapse_owner(self, group: str):
        """The projection whose index space ``group``'s per-synapse variables live in."""
        if group in self.network.connectivity_updates:
            return self.network.connectivity_updates[group].projection
        return self._proj(group)

    def _valid_mask(self, q) -> np.ndarray:
        rowlen = self.state[f"q{q.index}_rowlen"]
        stride = self.state[f"q{q.index}_ind"].shape[1]
        return np.arange(stride)[None, :] < rowlen[:, None]

    def get(self, group: str, var: str) -> np.ndarray:
        """A copy of ``var`` of a population (one value per neuron) or projection (per-synapse vars:
        one value per existing synapse, in row order as :meth:`connectivity`; trace and postsynaptic
        vars: one per pre / post neuron)."""
        self._ensure_state()
        key, kind = self._locate(group, var)
        self.backend.pull(self.state, [key])
        arr = self.state[key]
        if kind in ("synapse", "update_synapse"):
            return arr[self._valid_mask(self._synapse_owner(group))].copy()
        return arr.copy()

    def set(self, group: str, var: str, values) -> None:
        """Overwrite ``var`` (same shape as :meth:`get` returns, or a scalar)."""
        self._ensure_state()
        key, kind = self._locate(group, var)
        self.backend.pull(self.state, [key])
        arr = self.state[key]
        what = f"{group}.{var}"
        if kind in ("synapse", "update_synapse"):
            mask = self._valid_mask(self._synapse_owner(group))
            arr[mask] = st.validate_values(values, (int(mask.sum()),), arr.dtype, what)
        else:
            arr[...] = st.validate_values(values, arr.shape, arr.dtype, what)
        self.backend.push(self.state, [key])

    def connectivity(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) indices of every synapse of ``proj``, in row order."""
        self._ensure_state()
        q = self._proj(proj)
        names = [f"q{q.index}_ind", f"q{q.index}_rowlen"]
        self.backend.pull(self.state, names)
        mask = self._valid_mask(q)
        pre = np.nonzero(mask)[0]
        if q.dense:
            return pre, np.nonzero(mask)[1]
        return pre, self.state[names[0]][mask].astype(np.int64)

    def set_connectivity(self, proj: str, pre, post, **values) -> None:
        """Replace the synapses of sparse ``proj`` by the list (``pre[s]``, ``post[s]``) within the existing
        row stride (no reallocation).  ``values`` give per-synapse vars in the same order (scalar or array);
        vars not given start at their model defaults.  The column view is rebuilt."""
        from ..model import connectivity as conn

        self._ensure_state()
        q = self._proj(proj)
        if q.dense:
            raise StateError(f"projection {proj!r} is dense: its connectivity is fixed; set its weights instead")
        unknown = set(values) - set(q.weight_update.vars)
        if unknown:
            raise StateError(f"projection {proj!r}: unknown synapse variables {sorted(unknown)}; "
                             f"known: {sorted(q.weight_update.vars)}")
        qp = f"q{q.index}"
        stride = self.state[f"{qp}_ind"].shape[1]
        try:
            ind, rowlen, slot = conn.to_ragged(pre, post, q.pre.size, stride, num_post=q.post.size, name=proj)
        except ValueError as e:
            raise CapacityError(str(e)) from None
        pre = np.asarray(pre, np.int64)
        names = [f"{qp}_ind", f"{qp}_rowlen"]
        self.state[names[0]], self.state[names[1]] = ind, rowlen
        for name, var in q.weight_update.vars.items():
            arr = self.state[f"{qp}_s_{name}"]
            arr[...] = 0
            vals = values.get(name, var.init)
            arr[pre, slot] = st.validate_values(vals, (pre.size,), arr.dtype, f"{proj}.{name}")
            names.append(f"{qp}_s_{name}")
        for upd in self.network.connectivity_updates.values():  # rules' own per-synapse state restarts at 0
            if upd.projection is q:
                for v in upd.model.vars:
                    self.state[f"cu{upd.index}_s_{v}"][...] = 0
                    names.append(f"cu{upd.index}_s_{v}")
        if f"{qp}_bits" in self.state:
            try:
                st.check_no_duplicates(ind, rowlen, f"set_connectivity({proj!r})")
            except NetworkError as e:
                raise StateError(str(e)) from None
            self.state[f"{qp}_bits"] = st.target_bits(ind, rowlen, q.post.size)
            names.append(f"{qp}_bits")
        if f"{qp}_collen" in self.state:
            from .columns import in_degree

            deg = int(in_degree(ind, rowlen, q.post.size).max(initial=0))
            if deg > self.state[f"{qp}_colsyn"].shape[1]:  # grow the column view rather than fail
                self.state[f"{qp}_colsyn"] = np.zeros((q.post.size, deg), np.int32)
            from .columns import build_columns

            build_columns(ind, rowlen, self.state[f"{qp}_collen"], self.state[f"{qp}_colsyn"], f"projection {proj!r}")
            names += [f"{qp}_collen", f"{qp}_colsyn"]
        self.backend.push(self.state, names)

    def ragged(self, proj: str, var: str | None = None) -> dict[str, np.ndarray]:
        """Raw ragged arrays of ``proj``: ``ind``, ``row_length`` and, if given, ``var`` [num_pre, row_stride]."""
        self._ensure_state()
        q = self._proj(proj)
        names = {"ind": f"q{q.index}_ind", "row_length": f"q{q.index}_rowlen"}
        if var is not None:
            names[var] = self._locate(proj, var)[0]
        self.backend.pull(self.state, list(names.values()))
        return {k: self.state[v].copy() for k, v in names.items()}

    def set_param(self, group: str, name: str, value: float) -> None:
        """Change a parameter (derived parameters follow); no recompilation."""
        self._ensure_state()
        value = float(value)
        if not np.isfinite(value):
            raise StateError(f"param {name} must be finite, got {value}")
        targets = []
        if group in self.network.populations:
            p = self._pop(group)
            targets = [(p.model, p.params, f"p{p.index}_p")]
        elif group in self.network.projections:
            q = self._proj(group)
            targets = [(q.weight_update, q.wu_params, f"q{q.index}_p"), (q.postsynaptic, q.psm_params, f"q{q.index}_pp")]
        elif group in self.network.connectivity_updates:
            u = self.network.connectivity_updates[group]
            targets = [(u.model, u.params, f"cu{u.index}_p")]
        else:
            raise StateError(f"unknown population, projection or connectivity update {group!r}")
        for model, params, prefix in targets:
            if name in params:
                params[name] = value
                st.set_params(self.state, prefix, model, params, self.network.dt, self.network.precision)
                return
        known = sorted(k for _, params, _ in targets for k in params)
        raise StateError(f"{group!r} has no param {name!r}; known: {known}")

    def set_egp(self, pop: str, name: str, values) -> None:
        """Replace extra global array ``name`` of population ``pop`` (any length; float64), e.g. a
        stimulus schedule that model code indexes by time."""
        self._ensure_state()
        p = self._pop(pop)
        if name not in p.model.egps:
            raise StateError(f"population {pop!r} ({p.model.name}) has no extra global array {name!r}; "
                             f"known: {list(p.model.egps)}")
        arr = np.ascontiguousarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(arr)):
            raise StateError(f"set_egp({pop!r}, {name!r}): values must be finite")
        key = f"p{p.index}_g_{name}"
        self.state[key] = arr
        self.backend.push(self.state, [key])

    def set_spike_times(self, pop: str, times) -> None:
        """Give a spike-source-array population its spike times: a sequence of one array of times (ms)
        per neuron.  Times before the current time are skipped."""
        self._ensure_state()
        p = self._pop(pop)
        if "spike_times" not in p.model.egps:
            raise StateError(f"population {pop!r} ({p.model.name}) has no spike_times")
        if len(times) != p.size:
            raise StateError(f"set_spike_times({pop!r}): expected {p.size} arrays (one per neuron), got {len(times)}")
        arrays = [np.sort(np.asarray(t, np.float64).ravel()) for t in times]
        for i, a in enumerate(arrays):
            if a.size and not np.all(np.isfinite(a)):
                raise StateError(f"set_spike_times({pop!r}): neuron {i} has non-finite times")
        counts = np.array([a.size for a in arrays], np.int64)
        end = np.cumsum(counts)
        start = end - counts
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
        if end[-1] > np.iinfo(np.int32).max:
            raise CapacityError(f"set_spike_times({pop!r}): {end[-1]} spikes exceed 2**31 - 1")
        skip = np.array([np.searchsorted(a, self.t - 0.5 * self.dt, side="left") for a in arrays], np.int64)
        pfx = f"p{p.index}"
        self.state[f"{pfx}_g_spike_times"] = flat
        self.state[f"{pfx}_start_spike"] = (start + skip).astype(np.int32)
        self.state[f"{pfx}_end_spike"] = end.astype(np.int32)
        self.backend.push(self.state, [f"{pfx}_g_spike_times", f"{pfx}_start_spike", f"{pfx}_end_spike"])

    # -- reset, save, load -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after build (step 0); recordings are cleared."""
        self._ensure_state()
        self.state = copy.deepcopy(self._initial)
        self.step = 0
        for k in self._spikes:
            self._spikes[k] = []
        for k in self._vars:
            self._vars[k] = []
        self.backend.push(self.state)

    def _fingerprint(self) -> str:
        net = self.network
        key = build_plan(net).source_key() + f"\ndt={net.dt} seed={net.seed} " + repr(
            [(p.name, p.size) for p in net.populations.values()]) + repr(
            [(q.name, q.pre.name, q.post.name) for q in net.projections.values()])
        return hashlib.sha256(key.encode()).hexdigest()

    def save(self, path) -> None:
        """Write the complete state (connectivity, every variable and parameter, spike buffers, step) to
        ``path`` (.npz).  Recordings are not part of the state."""
        self._ensure_state()
        self.backend.pull(self.state)
        meta = {"format": FORMAT_VERSION, "step": self.step, "fingerprint": self._fingerprint()}
        scratch = ("_accbuf", "_flag", "_scratch")
        arrays = {k: v for k, v in self.state.items()
                  if not k.startswith("rec_var") and "_rec_" not in k and not k.endswith(scratch)}
        with open(path, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)

    def load(self, path) -> None:
        """Restore a state written by :meth:`save` from a simulation of the same network; the run then
        continues exactly as if it had never stopped."""
        self._ensure_state()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved state at {path}")
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data:
                raise StateError(f"{path} is not a plastix state file (no metadata)")
            meta = json.loads(str(data["__meta__"]))
            if meta.get("format") != FORMAT_VERSION:
                raise StateError(f"{path}: state format {meta.get('format')} is not supported ({FORMAT_VERSION})")
            if meta["fingerprint"] != self._fingerprint():  # noqa: SIM102
                raise StateError(f"{path} was saved from a different network (models, sizes, names, dt or seed "
                                 "differ)")
            for k in data.files:
                if k == "__meta__":
                    continue
                if k not in self.state:
                    raise StateError(f"{path}: unexpected array {k!r}")
                arr = data[k]
                self.state[k] = np.array(arr, dtype=self.state[k].dtype) if arr.ndim else self.state[k].dtype.type(arr)
        self.step = int(meta["step"])
        self.backend.push(self.state)
