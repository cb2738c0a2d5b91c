"""Recording of spikes and neuron variables: what is recorded, the buffers a run call writes, and the
chunks collected after it."""
from __future__ import annotations

import numpy as np

from ..codegen.names import NAMES, rec_var
from ..errors import CapacityError, NetworkError, StateError

#: Largest spike-recording buffer allocated without being asked for (events per run call).
DEFAULT_MAX_SPIKES = 1 << 26


class Recorder:
    """What a :class:`~plastix.Simulation` records, and what it has recorded so far."""

    def __init__(self, network, batch_size: int = 1):
        self.network = network
        self.batch_size = batch_size
        #: leading batch axis on the buffers (batch_size > 1); element b's buffers are [b, ...]
        self._lead = (batch_size,) if batch_size > 1 else ()
        self.spike_pops: dict[str, int | None] = {}  # pop name -> max spikes per run (None: default)
        self.var_every: dict[tuple[str, str], int] = {}  # (pop, var) -> every n steps
        self._spikes: dict[str, list] = {}
        self._vars: dict[tuple[str, str], list] = {}
        # recorded for updates over the tape only: written by every run call, never copied to the host
        self.tape_vars: set[tuple[str, str]] = set()
        self.tape_spikes: set[str] = set()

    def _pop(self, name: str):
        try:
            return self.network.populations[name]
        except KeyError:
            raise StateError(f"unknown population {name!r}; known: {sorted(self.network.populations)}") from None

    # -- what -------------------------------------------------------------------------------------------
    def record_spikes(self, pop: str, max_spikes: int | None = None) -> None:
        p = self._pop(pop)
        if not p.model.spikes:
            raise NetworkError(f"population {pop!r} ({p.model.name}) does not spike; record a variable instead")
        if max_spikes is not None and (not isinstance(max_spikes, (int, np.integer)) or max_spikes < 1):
            raise ValueError(f"max_spikes must be a positive integer, got {max_spikes!r}")
        self.spike_pops[pop] = max_spikes
        self._spikes.setdefault(pop, [])
        self.tape_spikes.discard(pop)

    def tape(self, pop: str, var: str) -> None:
        """Record ``var`` of ``pop`` at every step for updates over the tape (no host copies)."""
        if (pop, var) in self.var_every:
            if self.var_every[(pop, var)] != 1:
                raise ValueError(f"{pop}.{var} is on the tape of a custom update, which needs every step: "
                                 f"recorded every {self.var_every[(pop, var)]}")
            return
        if self.var_every and set(self.var_every.values()) != {1}:
            raise ValueError("custom updates over the tape record every step: recorded variables must use every=1")
        self.var_every[(pop, var)] = 1
        self._vars.setdefault((pop, var), [])
        self.tape_vars.add((pop, var))

    def tape_spikes_of(self, pop: str) -> None:
        """Record spikes of ``pop`` for updates over presynaptic events (no host copies)."""
        if pop not in self.spike_pops:
            self.spike_pops[pop] = None
            self._spikes.setdefault(pop, [])
            self.tape_spikes.add(pop)

    def record(self, pop: str, var: str, every: int = 1) -> None:
        p = self._pop(pop)
        if var not in p.model.vars:
            raise StateError(f"population {pop!r} has no variable {var!r}; known: {sorted(p.model.vars)}")
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if self.var_every and set(self.var_every.values()) != {every}:
            raise ValueError("all recorded variables must use the same 'every'")
        self.var_every[(pop, var)] = int(every)
        self._vars.setdefault((pop, var), [])
        self.tape_vars.discard((pop, var))

    @property
    def recorded_vars(self) -> tuple[tuple[str, str], ...]:
        """The recorded (population, variable) pairs, in the order the generated code records them."""
        return tuple(sorted(self.var_every))

    @property
    def every(self) -> int:
        return next(iter(self.var_every.values()), 1)

    # -- around a run call ----------------------------------------------------------------------------------
    def prepare(self, state: dict, backend, plan, n_steps: int) -> dict[str, int]:
        """Allocate the buffers a run of ``n_steps`` writes; returns the spike capacity per population."""
        caps = {}
        for pop, max_spikes in self.spike_pops.items():
            keys = NAMES.pop(self._pop(pop))
            cap = max_spikes or min(self._pop(pop).size * n_steps, DEFAULT_MAX_SPIKES)
            caps[pop] = cap
            # the run writes each element's events from the start of its buffer and counts them: the last
            # run's buffers are reused when their capacity fits (fresh pages would be faulted in every call)
            for key in (keys.rec_step, keys.rec_idx):
                old = state.get(key)
                if not (isinstance(old, np.ndarray) and old.shape == self._lead + (cap,)):
                    state[key] = np.empty(self._lead + (cap,), np.int32)
            state[keys.rec_n][...] = 0
            backend.push(state, list(keys.rec_buffers))
        rows = -(-n_steps // self.every)
        for r, (pop, var) in enumerate(plan.recorded_vars):
            arr = state[NAMES.pop(self._pop(pop)).var(var)]
            # a shared (read-only) variable is recorded once per element too: the copy is per element.  The
            # run writes every row, so the last run's buffer is reused when its shape fits (no zeroing)
            shape = self._lead + (rows, arr.shape[-1])
            old = state.get(rec_var(r))
            if not (isinstance(old, np.ndarray) and old.shape == shape and old.dtype == arr.dtype):
                state[rec_var(r)] = np.empty(shape, arr.dtype)
            backend.push(state, [rec_var(r)])
        return caps

    def collect(self, state: dict, backend, plan, caps: dict[str, int]) -> None:
        """Keep what the run call recorded; :class:`CapacityError` if a spike buffer overflowed."""
        for pop, cap in caps.items():
            keys = NAMES.pop(self._pop(pop))
            backend.pull(state, [keys.rec_n, keys.rec_step, keys.rec_idx])
            counts = state[keys.rec_n].reshape(-1)
            got = int(counts.max())
            if got > cap:
                which = f" (batch element {int(counts.argmax())})" if self._lead else ""
                raise CapacityError(f"spike recording of {pop!r} overflowed: {got} spikes in this run call{which} "
                                    f"but max_spikes is {cap}; call record_spikes({pop!r}, max_spikes=...) with "
                                    "more or run fewer steps per call")
            if pop in self.tape_spikes:
                continue
            steps = state[keys.rec_step].reshape(-1, state[keys.rec_step].shape[-1])
            idx = state[keys.rec_idx].reshape(steps.shape)
            self._spikes[pop].append([(steps[b, :int(n)].copy(), idx[b, :int(n)].copy()) for b, n in enumerate(counts)])
        for r, key in enumerate(plan.recorded_vars):
            if key in self.tape_vars:
                continue
            backend.pull(state, [rec_var(r)])
            self._vars[key].append(state[rec_var(r)].copy())

    def clear(self) -> None:
        for k in self._spikes:
            self._spikes[k] = []
        for k in self._vars:
            self._vars[k] = []

    # -- results --------------------------------------------------------------------------------------------
    def spikes(self, pop: str, batch: int | None = None):
        if pop not in self.spike_pops:
            raise StateError(f"spikes of {pop!r} are not recorded; call record_spikes({pop!r}) before run")
        if pop in self.tape_spikes:
            raise StateError(f"spikes of {pop!r} are recorded for a custom update's tape only (not kept); call "
                             f"record_spikes({pop!r}) before run")
        if batch is not None and not (isinstance(batch, (int, np.integer)) and 0 <= batch < self.batch_size):
            raise StateError(f"batch must be an element index in [0, {self.batch_size}), got {batch!r}")
        if not self._lead or batch is not None:
            return self._element_spikes(pop, batch or 0)
        per = [self._element_spikes(pop, b) for b in range(self.batch_size)]
        elem = np.concatenate([np.full(t.size, b, np.int64) for b, (t, _) in enumerate(per)])
        return (np.concatenate([t for t, _ in per]), np.concatenate([i for _, i in per]).astype(np.int32), elem)

    def _element_spikes(self, pop: str, b: int) -> tuple[np.ndarray, np.ndarray]:
        chunks = [c[b] for c in self._spikes[pop]]
        if not chunks:
            return np.zeros(0), np.zeros(0, np.int32)
        steps = np.concatenate([c[0] for c in chunks]).astype(np.int64)
        idx = np.concatenate([c[1] for c in chunks])
        order = np.lexsort((idx, steps))  # GPU recording order is not deterministic
        return steps[order] * self.network.dt, idx[order]

    def recorded(self, pop: str, var: str) -> np.ndarray:
        if (pop, var) not in self._vars or (pop, var) in self.tape_vars:
            taped = (pop, var) in self.tape_vars
            extra = " (it is on a custom update's tape only: Simulation.tape reads it)" if taped else ""
            raise StateError(f"{pop}.{var} is not recorded{extra}; call record({pop!r}, {var!r}) before run")
        chunks = self._vars[(pop, var)]
        n = self._pop(pop).size
        if not chunks:
            return np.zeros(self._lead + (0, n))
        return np.concatenate(chunks, axis=len(self._lead))
