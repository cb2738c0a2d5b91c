"""CUDA backend: generated numba-cuda kernels operating on device copies of the host state.

The host ``state`` dict stays the authoritative description of the simulation between calls: every array
has a device twin (allocated by :meth:`CudaBackend.push`), numpy scalars (parameters) are passed by value
at each ``run`` and are never copied.  :class:`~plastix.Simulation` pulls what it reads and pushes what it
changes.  Works on an NVIDIA GPU and under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""
from __future__ import annotations

import numpy as np

import inspect

from ..codegen import cpu as cpu_emit
from ..codegen import cuda as cuda_emit
from ..codegen.cache import load_module
from ..codegen.names import spike_recording_count
from ..codegen.plan import Plan
from ..kernels import launch
from ..kernels.cuda_device import DeviceArrays, cuda_module

#: Spike-recording buffers: written only by the kernels, so a push just (re)allocates them and a pull
#: copies only the recorded prefix (they can be hundreds of MB).
_REC_BUFFERS = ("_rec_step", "_rec_idx")


class CudaBackend:
    """Generated ``numba.cuda.jit`` kernels on device twins of the host arrays (implements
    :class:`~plastix.backends.base.Backend`)."""

    name = "cuda"
    host_resident = False
    parallel = True
    #: Host threads driving the GPU (kernels themselves run ``threads_per_block``-thread blocks).
    thread_count = 1

    def __init__(self):
        self.module = None
        self.run_args: list[str] = []
        self.source = ""
        self.dev = DeviceArrays()

    @property
    def threads_per_block(self) -> int:
        return launch.THREADS_PER_BLOCK

    @property
    def simulator(self) -> bool:
        return launch.simulator()

    def compile(self, plan: Plan, state: dict) -> None:
        if self.dev:
            # a rebuild (e.g. a newly recorded variable) pushes the whole host state next: the device holds
            # the current state, so bring the host up to date first
            self.pull(state)
        for u in plan.updates:  # selection scratch: one row per presynaptic row, if the rule selects
            n_pre, stride = state[u.proj.keys.ind].shape
            shape = (n_pre, stride) if u.code.uses_scratch else (1, 1)
            state[u.keys.scratch] = np.zeros(shape, np.float64)
        self.update_args = {}
        source, self.run_args = cuda_emit.emit_module(plan, parallel=True)
        self.source = source
        self.module = load_module(source, "cuda_sim" if self.simulator else "cuda")
        # scheduled updates with a global phase: the run is split at their steps (see run)
        self.host_scheduled = [u for u in plan.updates if u.update.every is not None
                               and u.update.model.global_update is not None]
        self.global_module = None
        self.host_customs = cpu_emit.host_custom_args(plan)  # per="population" updates run on the host
        if any(u.global_code is not None for u in plan.updates) or self.host_customs:
            self.global_module = load_module(cpu_emit.emit_global_module(plan), "cpu_global")
        for u in plan.updates:
            fn = getattr(self.module, f"run_update_{u.prefix}")
            self.update_args[u.prefix] = list(inspect.signature(fn).parameters)[4:-1]  # without with_columns
        self.custom_args = {}
        for c in plan.customs:
            if c.prefix in self.host_customs:
                continue
            fn = getattr(self.module, f"run_custom_{c.prefix}")
            self.custom_args[c.prefix] = list(inspect.signature(fn).parameters)[4:]
        self.precision = plan.network.precision

    # -- host <-> device ---------------------------------------------------------------------------------
    @staticmethod
    def _names(state: dict, names) -> list[str]:
        keys = state.keys() if names is None else names
        return [k for k in keys if isinstance(state[k], np.ndarray)]

    def push(self, state: dict, names=None) -> None:
        """Copy host arrays ``names`` (all when None) to the device; scalars are read at each run."""
        for k in self._names(state, names):
            host = state[k]
            if k.endswith(_REC_BUFFERS):  # written by the kernels only: (re)allocate, never copy
                self.dev.buffer(k, host.shape, host.dtype)
            else:
                self.dev.upload(k, host)

    def pull(self, state: dict, names=None) -> None:
        """Copy device arrays ``names`` (all when None) into the host state."""
        names = self._names(state, names)
        rec_n = {}
        for k in names:
            dev = self.dev.get(k)
            if dev is None:
                continue
            host = state[k]
            if k.endswith(_REC_BUFFERS):
                count = spike_recording_count(k)
                if count not in rec_n:  # [1], or [batch, 1]: the most any element recorded
                    rec_n[count] = int(self.dev[count].copy_to_host().max())
                if host.shape != dev.shape or host.dtype != dev.dtype or not host.flags.writeable:
                    host = state[k] = np.empty(dev.shape, dev.dtype)
                if len(dev.shape) > 1:  # a batch: element rows are strided, copy them whole
                    dev.copy_to_host(host)
                    continue
                m = min(rec_n[count], dev.shape[0])
                if m:
                    host[:m] = dev[:m].copy_to_host()
                continue
            if (host.shape == dev.shape and host.dtype == dev.dtype and host.flags.c_contiguous
                    and host.flags.writeable):
                if host.size:
                    dev.copy_to_host(host)
            else:
                state[k] = dev.copy_to_host()

    # -- running -----------------------------------------------------------------------------------------
    def run(self, state: dict, step0: int, n_steps: int, dt: float, seed: int, rec_every: int) -> None:
        missing = [a for a in self.run_args if isinstance(state[a], np.ndarray) and a not in self.dev]
        if missing:
            self.push(state, missing)
        args = [self.dev[a] if isinstance(state[a], np.ndarray) else state[a] for a in self.run_args]
        if not self.host_scheduled:
            self.module.run(np.int64(step0), np.int64(n_steps), np.float64(dt), np.uint64(seed),
                            np.int64(rec_every), np.int64(step0), *args)
            cuda_module().synchronize()  # kernel errors surface here, and wall-clock timings mean something
            return
        # rules with a global phase: run up to the end of each step where one is due, then its global
        # phase (host), its rows and the column view (device) -- as the CPU does inside its loop
        s, end = step0, step0 + n_steps
        while s < end:
            due = min(((s // u.update.every) + 1) * u.update.every - 1 for u in self.host_scheduled)
            last = min(due, end - 1)
            self.module.run(np.int64(s), np.int64(last - s + 1), np.float64(dt), np.uint64(seed),
                            np.int64(rec_every), np.int64(step0), *args)
            if last == due:
                for u in self.host_scheduled:
                    if (last + 1) % u.update.every == 0:
                        self.run_global(state, u, last, dt, seed)
                        self.run_update(state, u.prefix, last, dt, seed, with_columns=u.proj.needs_columns)
            s = last + 1
        cuda_module().synchronize()

    def run_update(self, state: dict, prefix: str, step: int, dt: float, seed: int, with_columns: bool = False) -> None:
        """Run connectivity update ``prefix``'s row kernel once (``Simulation.custom_update``); with
        ``with_columns`` also rebuild the projection's column view on the device."""
        names = self.update_args[prefix]
        missing = [a for a in names if isinstance(state[a], np.ndarray) and a not in self.dev]
        if missing:
            self.push(state, missing)
        scalar = np.dtype(self.precision).type
        args = [self.dev[a] if isinstance(state[a], np.ndarray) else state[a] for a in names]
        getattr(self.module, f"run_update_{prefix}")(np.int64(step), scalar(step * dt), scalar(dt), np.uint64(seed),
                                                      *args, with_columns=with_columns)
        cuda_module().synchronize()

    def run_custom(self, state: dict, prefix: str, step: int, dt: float, seed: int) -> None:
        """Run custom update ``prefix``'s kernel once (``Simulation.custom_update``); per="population"
        updates run on the host over copies of their arrays."""
        if prefix in self.host_customs:
            names = [a for a in self.host_customs[prefix][4:] if isinstance(state[a], np.ndarray)]
            self.pull(state, names)
            scalar = np.dtype(self.precision).type
            fn = getattr(self.global_module, f"{prefix}_update")
            fn(np.int64(step), scalar(step * dt), scalar(dt), np.uint64(seed),
               *[state[a] for a in self.host_customs[prefix][4:]])
            self.push(state, names)
            return
        names = self.custom_args[prefix]
        missing = [a for a in names if isinstance(state[a], np.ndarray) and a not in self.dev]
        if missing:
            self.push(state, missing)
        scalar = np.dtype(self.precision).type
        args = [self.dev[a] if isinstance(state[a], np.ndarray) else state[a] for a in names]
        getattr(self.module, f"run_custom_{prefix}")(np.int64(step), scalar(step * dt), scalar(dt), np.uint64(seed),
                                                     *args)
        cuda_module().synchronize()

    def run_global(self, state: dict, u, step: int, dt: float, seed: int) -> None:
        """Run connectivity update ``u``'s global phase on the host (arrays copied to and from the GPU)."""
        names = [a for a in u.global_code.args if isinstance(state[a], np.ndarray)]
        self.pull(state, names)
        scalar = np.dtype(self.precision).type
        fn = getattr(self.global_module, f"{u.prefix}_global")
        fn(np.uint64(seed), np.int64(step), scalar(step * dt), scalar(dt), *[state[a] for a in u.global_code.args])
        self.push(state, u.global_code.written)
