"""Reading and writing a simulation's state by name: variables, parameters, extra global arrays, spike
times, connectivity.  Every read pulls from the backend first and every write pushes after, so the host
``state`` dict and the device never disagree where a user can see it."""
from __future__ import annotations

import numpy as np

from ..codegen.names import NAMES
from ..errors import CapacityError, NetworkError, StateError
from ..model import connectivity as conn
from . import columns_host
from . import state as st


class StateAccess:
    """Named access to the state of ``sim`` (a :class:`~plastix.Simulation`; its ``state`` may be replaced
    by ``reset`` or ``load``, so it is looked up on every call)."""

    def __init__(self, sim):
        self.sim = sim
        self.network = sim.network

    @property
    def state(self) -> dict:
        return self.sim.state

    @property
    def backend(self):
        return self.sim.backend

    # -- lookup ------------------------------------------------------------------------------------------
    def pop(self, name: str):
        try:
            return self.network.populations[name]
        except KeyError:
            raise StateError(f"unknown population {name!r}; known: {sorted(self.network.populations)}") from None

    def proj(self, name: str):
        try:
            return self.network.projections[name]
        except KeyError:
            raise StateError(f"unknown projection {name!r}; known: {sorted(self.network.projections)}") from None

    def update(self, name: str):
        try:
            return self.network.connectivity_updates[name]
        except KeyError:
            raise StateError(f"unknown connectivity update {name!r}; known: "
                             f"{sorted(self.network.connectivity_updates)}") from None

    def locate(self, group: str, var: str) -> tuple[str, str]:
        """(state key, kind) with kind one of neuron, synapse, pre, post, psm, update_synapse, row, global."""
        net = self.network
        if group in net.populations:
            p = self.pop(group)
            if var not in p.model.vars:
                raise StateError(f"population {group!r} has no variable {var!r}; known: {sorted(p.model.vars)}")
            return NAMES.pop(p).var(var), "neuron"
        if group in net.projections:
            q = self.proj(group)
            keys, wu, psm = NAMES.proj(q), q.weight_update, q.postsynaptic
            for kind, names, key in (("synapse", wu.vars, keys.syn), ("pre", wu.pre_vars, keys.pre),
                                     ("post", wu.post_vars, keys.post), ("psm", psm.vars, keys.psm)):
                if var in names:
                    return key(var), kind
            known = sorted(set(wu.vars) | set(wu.pre_vars) | set(wu.post_vars) | set(psm.vars))
            raise StateError(f"projection {group!r} has no variable {var!r}; known: {known}")
        if group in net.connectivity_updates:
            u = self.update(group)
            keys = NAMES.update(u)
            if var in u.model.vars:
                return keys.syn(var), "update_synapse"
            if var in u.model.row_vars:
                return keys.row(var), "row"
            if var in u.model.global_vars:
                return keys.glob(var), "global"
            raise StateError(f"connectivity update {group!r} has no variable {var!r}; known: "
                             f"{sorted(set(u.model.vars) | set(u.model.row_vars) | set(u.model.global_vars))}")
        if group in net.custom_updates:
            c = net.custom_updates[group]
            if var in c.model.global_vars:
                return NAMES.custom(c).glob(var), "custom_global"
            if var not in c.model.vars:
                raise StateError(f"custom update {group!r} has no variable {var!r}; known: "
                                 f"{sorted(set(c.model.vars) | set(c.model.global_vars))}")
            return NAMES.custom(c).var(var), ("update_synapse" if c.per_synapse else "custom_neuron")
        raise StateError(f"unknown population, projection, connectivity or custom update {group!r}; known: "
                         f"{sorted(net.populations) + sorted(net.projections)}")

    def _synapse_owner(self, group: str):
        """The projection whose index space ``group``'s per-synapse variables live in."""
        if group in self.network.connectivity_updates:
            return self.network.connectivity_updates[group].projection
        if group in self.network.custom_updates:
            return self.network.custom_updates[group].target
        return self.proj(group)

    def valid_mask(self, q) -> np.ndarray:
        """[num_pre, row_stride] True where projection ``q`` has a synapse."""
        keys = NAMES.proj(q)
        rowlen = self.state[keys.rowlen]
        stride = self.state[keys.ind].shape[1]
        return np.arange(stride)[None, :] < rowlen[:, None]

    # -- variables ----------------------------------------------------------------------------------------
    def batched(self, key: str) -> bool:
        """Does state ``key`` have a leading batch axis?"""
        plan = getattr(self.sim, "plan", None)
        return plan is not None and plan.batched and key in plan.duplicated

    def get(self, group: str, var: str) -> np.ndarray:
        key, kind = self.locate(group, var)
        self.backend.pull(self.state, [key])
        arr = self.state[key]
        if kind in ("synapse", "update_synapse"):
            return arr[..., self.valid_mask(self._synapse_owner(group))].copy()
        if kind == "custom_global":  # a scalar, or one per batch element
            return arr[..., 0].copy() if arr.ndim == 2 else arr[0].copy()
        return arr.copy()

    def set(self, group: str, var: str, values) -> None:
        """Values of the shape :meth:`get` returns; for a variable with one copy per batch element also
        one element's shape (every element gets the same values) or a scalar."""
        key, kind = self.locate(group, var)
        self.backend.pull(self.state, [key])
        arr = self.state[key]
        what = f"{group}.{var}"
        lead = arr.shape[:1] if self.batched(key) else ()
        if kind in ("synapse", "update_synapse"):
            mask = self.valid_mask(self._synapse_owner(group))
            shape = (int(mask.sum()),)
            arr[..., mask] = self._values(values, lead, shape, arr.dtype, what)
        elif kind == "custom_global":
            arr[..., 0] = self._values(values, lead, (), arr.dtype, what)
        else:
            arr[...] = self._values(values, lead, arr.shape[len(lead):], arr.dtype, what)
        self.backend.push(self.state, [key])

    @staticmethod
    def _values(values, lead: tuple, shape: tuple, dtype, what: str) -> np.ndarray:
        if not lead or np.shape(values) in ((), tuple(shape)):
            return st.validate_values(values, shape, dtype, what)
        if np.shape(values) != lead + tuple(shape):
            raise StateError(f"{what}: expected shape {lead + tuple(shape)} (one row per batch element) or "
                             f"{tuple(shape)} (the same for every element), got {np.shape(values)}")
        return st.validate_values(values, lead + tuple(shape), dtype, what)

    def set_param(self, group: str, name: str, value: float) -> None:
        value = float(value)
        if not np.isfinite(value):
            raise StateError(f"param {name} must be finite, got {value}")
        net = self.network
        if group in net.populations:
            p = self.pop(group)
            targets = [(p.model, p.params, NAMES.pop(p).param)]
        elif group in net.projections:
            q = self.proj(group)
            keys = NAMES.proj(q)
            targets = [(q.weight_update, q.wu_params, keys.param), (q.postsynaptic, q.psm_params, keys.psm_param)]
        elif group in net.connectivity_updates:
            u = self.update(group)
            targets = [(u.model, u.params, NAMES.update(u).param)]
        elif group in net.custom_updates:
            c = net.custom_updates[group]
            targets = [(c.model, c.params, NAMES.custom(c).param)]
        else:
            raise StateError(f"unknown population, projection or connectivity update {group!r}")
        for model, params, key in targets:
            if name in params:
                params[name] = value
                st.set_params(self.state, key, model, params, net.dt, net.precision)
                return
        known = sorted(k for _, params, _ in targets for k in params)
        raise StateError(f"{group!r} has no param {name!r}; known: {known}")

    def set_egp(self, pop: str, name: str, values) -> None:
        p = self.pop(pop)
        if name not in p.model.egps:
            raise StateError(f"population {pop!r} ({p.model.name}) has no extra global array {name!r}; "
                             f"known: {list(p.model.egps)}")
        arr = np.ascontiguousarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(arr)):
            raise StateError(f"set_egp({pop!r}, {name!r}): values must be finite")
        key = NAMES.pop(p).egp(name)
        self.state[key] = arr
        self.backend.push(self.state, [key])

    def set_spike_times(self, pop: str, times, t_now: float, dt: float) -> None:
        p = self.pop(pop)
        if "spike_times" not in p.model.egps:
            raise StateError(f"population {pop!r} ({p.model.name}) has no spike_times")
        keys = NAMES.pop(p)
        batch = self.state[keys.var("start_spike")].shape[0] if self.batched(keys.var("start_spike")) else 0
        if batch:  # one flat array of every element's trains; per-element start / end indices into it
            if len(times) != batch:
                raise StateError(f"set_spike_times({pop!r}): expected {batch} sequences (one per batch element) "
                                 f"of {p.size} arrays, got {len(times)}")
            per = [t for elem in times for t in self._check_trains(pop, elem, p.size)]
        else:
            per = self._check_trains(pop, times, p.size)
        self._store_trains(pop, per, t_now, dt, keys, batch)

    @staticmethod
    def _check_trains(pop: str, times, n: int) -> list:
        if len(times) != n:
            raise StateError(f"set_spike_times({pop!r}): expected {n} arrays (one per neuron), got {len(times)}")
        return list(times)

    def set_spike_times_flat(self, pop: str, times, counts, t_now: float, dt: float) -> None:
        p = self.pop(pop)
        if "spike_times" not in p.model.egps:
            raise StateError(f"population {pop!r} ({p.model.name}) has no spike_times")
        keys = NAMES.pop(p)
        batch = self.state[keys.var("start_spike")].shape[0] if self.batched(keys.var("start_spike")) else 0
        counts = np.asarray(counts)
        want = (batch, p.size) if batch else (p.size,)
        if counts.shape != want or (counts.size and (counts.min() < 0 or np.any(counts != np.round(counts)))):
            raise StateError(f"set_spike_times_flat({pop!r}): counts must be non-negative integers of shape {want} "
                             f"(spikes per {'batch element and ' if batch else ''}neuron), got shape {counts.shape}")
        counts = counts.astype(np.int64).ravel()
        flat = np.asarray(times, np.float64).ravel()
        if flat.size != counts.sum():
            raise StateError(f"set_spike_times_flat({pop!r}): {flat.size} times but counts sum to {counts.sum()}")
        self._store_flat(pop, flat, counts, t_now, dt, keys, batch)

    def _store_trains(self, pop: str, times, t_now: float, dt: float, keys, batch: int) -> None:
        arrays = [np.asarray(t, np.float64).ravel() for t in times]
        counts = np.array([a.size for a in arrays], np.int64)
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
        self._store_flat(pop, flat, counts, t_now, dt, keys, batch)

    def _store_flat(self, pop: str, flat, counts, t_now: float, dt: float, keys, batch: int) -> None:
        # vectorised over all trains: one sort keyed by (train, time)
        train = np.repeat(np.arange(counts.size), counts)
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            n = self.pop(pop).size
            i = int(train[bad[0]])
            where = f"batch element {i // n}, neuron {i % n}" if batch else f"neuron {i}"
            raise StateError(f"set_spike_times({pop!r}): {where} has non-finite times")
        end = np.cumsum(counts)
        start = end - counts
        if end.size and end[-1] > np.iinfo(np.int32).max:
            raise CapacityError(f"set_spike_times({pop!r}): {end[-1]} spikes exceed 2**31 - 1")
        if flat.size > 1 and not np.all((np.diff(train) > 0) | (np.diff(flat) >= 0)):
            flat = flat[np.lexsort((flat, train))]   # (trains given in order: already sorted)
        skip = np.bincount(train[flat < t_now - 0.5 * dt], minlength=counts.size) if flat.size else 0
        written = [keys.egp("spike_times"), keys.var("start_spike"), keys.var("end_spike")]
        shape = (batch, -1) if batch else (-1,)
        self.state[written[0]] = flat
        self.state[written[1]] = np.ascontiguousarray((start + skip).astype(np.int32).reshape(shape))
        self.state[written[2]] = np.ascontiguousarray(end.astype(np.int32).reshape(shape))
        self.backend.push(self.state, written)

    # -- connectivity ---------------------------------------------------------------------------------------
    def connectivity(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        q = self.proj(proj)
        keys = NAMES.proj(q)
        self.backend.pull(self.state, [keys.ind, keys.rowlen])
        mask = self.valid_mask(q)
        pre = np.nonzero(mask)[0]
        if q.dense:
            return pre, np.nonzero(mask)[1]
        return pre, self.state[keys.ind][mask].astype(np.int64)

    def ragged(self, proj: str, var: str | None = None, of: str | None = None) -> dict[str, np.ndarray]:
        keys = NAMES.proj(self.proj(proj))
        names = {"ind": keys.ind, "row_length": keys.rowlen}
        if var is not None:
            key, kind = self.locate(of or proj, var)
            if of is not None and (kind == "global" or self.state[key].shape[-2:] != self.state[keys.ind].shape):
                raise StateError(f"ragged({proj!r}, {var!r}, of={of!r}): {of!r} has no per-synapse variable {var!r} "
                                 f"on projection {proj!r}")
            names[var] = key
        self.backend.pull(self.state, list(names.values()))
        return {k: self.state[v].copy() for k, v in names.items()}

    def set_connectivity(self, proj: str, pre, post, **values) -> None:
        q = self.proj(proj)
        if q.dense:
            raise StateError(f"projection {proj!r} is dense: its connectivity is fixed; set its weights instead")
        unknown = set(values) - set(q.weight_update.vars)
        if unknown:
            raise StateError(f"projection {proj!r}: unknown synapse variables {sorted(unknown)}; "
                             f"known: {sorted(q.weight_update.vars)}")
        keys, state = NAMES.proj(q), self.state
        stride = state[keys.ind].shape[1]
        try:
            ind, rowlen, slot = conn.to_ragged(pre, post, q.pre.size, stride, num_post=q.post.size, name=proj)
        except ValueError as e:
            raise CapacityError(str(e)) from None
        pre = np.asarray(pre, np.int64)
        written = [keys.ind, keys.rowlen]
        state[keys.ind], state[keys.rowlen] = ind, rowlen
        for name, var in q.weight_update.vars.items():
            arr = state[keys.syn(name)]
            arr[...] = 0
            vals = values.get(name, var.init)
            arr[..., pre, slot] = st.validate_values(vals, (pre.size,), arr.dtype, f"{proj}.{name}")
            written.append(keys.syn(name))
        for upd in self.network.connectivity_updates.values():  # rules' own per-synapse state restarts at 0
            if upd.projection is q:
                for v in upd.model.vars:
                    key = NAMES.update(upd).syn(v)
                    state[key][...] = 0
                    written.append(key)
        for cu in self.network.custom_updates.values():  # so do custom updates' (e.g. optimiser moments)
            if cu.target is q:
                for v in cu.model.vars:
                    key = NAMES.custom(cu).var(v)
                    state[key][...] = 0
                    written.append(key)
        if keys.bits in state:
            try:
                st.check_no_duplicates(ind, rowlen, f"set_connectivity({proj!r})")
            except NetworkError as e:
                raise StateError(str(e)) from None
            state[keys.bits] = st.target_bits(ind, rowlen, q.post.size)
            written.append(keys.bits)
        if keys.collen in state:
            columns_host.rebuild(state, keys, q.post.size, f"projection {proj!r}")
            written += [keys.collen, keys.colsyn]
        self.backend.push(state, written)
