"""CPU backend: generated numba.njit kernels operating in place on the host state arrays."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..codegen import cpu as cpu_emit
from ..codegen.cache import load_module
from ..codegen.plan import Plan
from ..codegen.taps import tap_keys
from ..kernels import conv_taps
from . import cpu_compile

#: Below these sizes the parallel runtime's per-step fork/join costs more than it saves.
PARALLEL_MIN_SYNAPSES = 1_000_000
PARALLEL_MIN_NEURONS = 100_000


def wants_parallel(plan: Plan, state: dict) -> bool:
    if numba.config.NUMBA_NUM_THREADS < 2:
        return False
    n_syn = sum(int(state[q.keys.rowlen].sum()) for q in plan.projs)
    n_neu = sum(pp.pop.size for pp in plan.pops)
    return n_syn >= PARALLEL_MIN_SYNAPSES or n_neu >= PARALLEL_MIN_NEURONS


class CpuBackend:
    """Generated ``numba.njit`` kernels on the host arrays (implements :class:`~plastix.backends.base.Backend`)."""

    name = "cpu"
    host_resident = True

    def __init__(self, parallel: bool | str = "auto", threads: int | None = None, partitions: int | None = None):
        if parallel not in (True, False, "auto"):
            raise ValueError(f"parallel must be True, False or 'auto', got {parallel!r}")
        max_threads = numba.config.NUMBA_NUM_THREADS
        if threads is not None and not (isinstance(threads, int) and 1 <= threads <= max_threads):
            raise ValueError(f"threads must be an integer in [1, {max_threads}], got {threads!r}")
        if partitions is not None and not (isinstance(partitions, int) and 1 <= partitions <= 1024):
            raise ValueError(f"partitions must be an integer in [1, 1024], got {partitions!r}")
        # fixed per machine, not per thread count: results never depend on `threads`
        self.partitions = partitions or max_threads
        self.parallel_option = parallel
        self.threads = threads
        self.parallel = False
        self.batched = False
        self.module = None
        self.run_args: list[str] = []
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._taps: list[tuple] = []   # convolutions propagated by kernel taps (codegen.taps)
        #: propagate convolutions by their kernel taps where that equals the rows, in the steps with events
        #: enough to pay for it (True); "always": in every step with an event (tests); False: always the
        #: rows (an A/B measurement).  The results are the same bits every way.
        self.conv_taps: bool | str = True
        #: which kernels the last cold compile compiled here and which in the helper (empty when warm)
        self.compiled_apart: dict = {}
        #: the same for the kernels called from Python, shared out at the first run
        self.compiled_apart_later: dict = {}
        self._python_kernels_cold = False
        self._global_args: dict[str, list[str]] = {}

    def compile(self, plan: Plan, state: dict) -> None:
        # a batch runs its elements in parallel, each element's time loop on one thread (serial kernels)
        self.batched = plan.batched
        self.batch_size = plan.batch_size
        self.parallel = False if self.batched else (
            wants_parallel(plan, state) if self.parallel_option == "auto" else bool(self.parallel_option))
        source, self.run_args = cpu_emit.emit_module(plan, parallel=self.parallel)
        self.update_args = cpu_emit.update_kernel_args(plan, self.parallel)
        self.custom_args = cpu_emit.custom_kernel_args(plan)
        # what sizes a custom update's work: its elements (synapses: the row lengths' sum; neurons: the spike
        # flags, [batch, neurons] when batched) and whether it scans the tape
        self.custom_work = {c.prefix: (c.target_keys.rowlen if c.per_synapse else c.target_keys.flag,
                                       c.per_synapse, c.update.model.over_time) for c in plan.customs}
        self.last_steps = 1
        parts = self.partitions if self.parallel else 1
        for u in plan.updates:  # per-partition selection scratch of the row kernels
            stride = state[u.proj.keys.ind].shape[1]
            state[u.keys.scratch] = np.zeros((parts, stride if u.code.uses_scratch else 1), np.float64)
        self.precision = plan.network.precision
        for q in plan.projs:  # private accumulation buffers of the partitioned parallel kernels
            if q.keys.accbuf in self.run_args:
                in_syn = state[q.keys.in_syn]
                state[q.keys.accbuf] = np.zeros((self.partitions, in_syn.shape[0]), in_syn.dtype)
        self._taps = [] if self.parallel else [self._tap_arrays(q, state) for q in plan.projs if q.taps]
        self.source = source
        self.module = load_module(source, "cpu_par" if self.parallel else "cpu")
        # a cold module: the kernels called from Python (custom updates, rewiring rules) are shared out at
        # the first run, when every array they take exists (tapes and recordings come with the run)
        self._python_kernels_cold = cpu_compile.helper_allowed() and not cpu_compile.is_cached(self.module)
        self._global_args = {u.prefix: u.global_code.args for u in plan.updates if u.global_code is not None}
        if not self.parallel:  # a cold module: run's kernels compiled on two cores (a parallel run is one function)
            values = cpu_compile.loop_scalars(self.precision)
            values.update((a, state[a][0] if self.batched and a in plan.duplicated else state[a])
                          for a in self.run_args if a in state)  # recording buffers come with the run
            self.compiled_apart = cpu_compile.compile_kernels(self.module, source, values)

    @staticmethod
    def _tap_arrays(q, state: dict) -> tuple:
        """The tap table of convolution ``q`` (into the state, with the kernel's arrays that each run
        refreshes) and what :func:`~plastix.kernels.conv_taps.kernel_from_synapses` reads and uses as scratch."""
        conv = q.proj.connectivity
        c_out, c_in, kh, kw = conv.kernel_shape
        keys = tap_keys(q)
        start, tap, out = conv_taps.tap_table(conv.in_shape, conv.kernel, conv.stride, conv.padding,
                                              conv.out_shape[1:])
        info = np.zeros(conv_taps.INFO_SIZE, np.int64)
        info[conv_taps.INFO_POSITIONS] = conv.num_post // c_out
        fewest = conv_taps.min_spikes(tap.size, conv.num_pre, conv.num_post // c_out)
        w = state[q.keys.syn("w")]
        state.update({keys["start"]: start, keys["tap"]: tap, keys["out"]: out, keys["info"]: info,
                      keys["kernel"]: np.zeros((c_in * kh * kw, c_out), w.dtype),
                      keys["chan"]: np.zeros(c_out, np.int64)})
        full = conv_taps.tap_counts(tap, c_in * kh * kw, c_out)
        lookup = conv_taps.TapLookup(conv.in_shape, conv.kernel, c_out, start, tap)
        scratch = (np.zeros(full.size, np.int64), np.zeros((tap.size, c_out), np.uint8))
        return q, keys, full, lookup, scratch, fewest

    def _read_kernels(self, state: dict) -> None:
        """Before a run: each tap convolution's kernel read back from its synapses (or the rows, if they
        are not the geometry's whole kernel entries).  O(synapses)."""
        if self.conv_taps not in (True, False, "always"):
            raise ValueError(f"conv_taps must be True, False or 'always', got {self.conv_taps!r}")
        for q, keys, full, lk, (count, seen), fewest in self._taps:
            info = state[keys["info"]]
            info[conv_taps.INFO_MIN_SPIKES] = 1 if self.conv_taps == "always" else fewest
            if self.conv_taps is False:
                info[conv_taps.INFO_OK] = 0
                continue
            conv_taps.kernel_from_synapses(
                state[q.keys.ind], state[q.keys.rowlen], state[q.keys.syn("w")], state[q.keys.syn("kidx")],
                state[keys["out"]], lk.entry_channel, lk.entry_tap, lk.pre_first_tap, lk.slot, full,
                state[keys["kernel"]],
                state[keys["chan"]], info, count, seen)

    @property
    def thread_count(self) -> int:
        if not (self.parallel or self.batched) or (self.batched and self.parallel_option is False):
            return 1  # a batch with parallel=False: the elements one after another
        return self.threads or numba.config.NUMBA_NUM_THREADS

    def push(self, state: dict, names=None) -> None:
        """Host arrays are the kernels' arrays: nothing to copy."""

    def pull(self, state: dict, names=None) -> None:
        """Host arrays are the kernels' arrays: nothing to copy."""

    #: below this many element-steps a chunked kernel runs as one chunk: handing work to the pool costs more
    SMALL_WORK = 50_000

    def _chunks(self, kernel, *args, work: int | None = None) -> None:
        """Run a chunked kernel (``kernel(part, parts, *args)``, serial and without the GIL) as
        :attr:`thread_count` chunks on a thread pool; the chunks visit disjoint elements."""
        parts = self.thread_count
        if parts == 1 or (work is not None and work < self.SMALL_WORK):
            kernel(np.int64(0), np.int64(1), *args)
            return
        if self._pool is None or self._pool_size != parts:
            self._pool = ThreadPoolExecutor(max_workers=parts, thread_name_prefix="plastix-cpu")
            self._pool_size = parts
        futures = [self._pool.submit(kernel, np.int64(p), np.int64(parts), *args) for p in range(parts)]
        for f in futures:
            f.result()  # re-raises a chunk's exception

    def _python_kernel_calls(self, state: dict) -> list[tuple[str, list]]:
        """(kernel, example arguments) of every kernel called from Python, as run_custom, run_update and
        run_global call them."""
        real = np.dtype(self.precision).type
        loop = [np.int64(0), real(0), real(0), np.uint64(0)]  # step, t, dt, seed
        calls = []

        def arg(name):
            return state.get(name, cpu_compile.MISSING)

        for prefix, names in self.custom_args.items():  # chunked: _part, _parts first
            calls.append((f"{prefix}_update", [np.int64(0), np.int64(1)] + loop + [arg(a) for a in names[4:]]))
        for prefix, names in self.update_args.items():
            calls.append((f"{prefix}_row", loop + [arg(a) for a in names[4:]]))
        for prefix, names in self._global_args.items():
            calls.append((f"{prefix}_global", [np.uint64(0), np.int64(0), real(0), real(0)] + [arg(a) for a in names]))
        return calls

    def run(self, state: dict, step0: int, n_steps: int, dt: float, seed: int, rec_every: int) -> None:
        shared = None
        if self._python_kernels_cold:  # the helper compiles them while `run` compiles here
            self._python_kernels_cold = False
            jobs = cpu_compile.jobs_for(self.module, self.source, self._python_kernel_calls(state))
            shared = cpu_compile.SharedCompile.start(self.module, jobs)
        try:
            self._run(state, step0, n_steps, dt, seed, rec_every)
        finally:
            if shared is not None:
                self.compiled_apart_later = shared.finish()

    def _run(self, state: dict, step0: int, n_steps: int, dt: float, seed: int, rec_every: int) -> None:
        self._read_kernels(state)
        args = [state[a] for a in self.run_args]
        scalars = (np.int64(step0), np.int64(n_steps), np.float64(dt), np.uint64(seed), np.int64(rec_every))
        self.last_steps = max(1, int(n_steps))
        if self.batched:  # the elements' time loops, chunks of the batch on threads
            self._chunks(self.module.run_batched, *scalars, *args)
            return
        if self.parallel:
            numba.set_num_threads(self.thread_count)
        self.module.run(*scalars, *args)

    def run_update(self, state: dict, prefix: str, step: int, dt: float, seed: int) -> None:
        """Run connectivity update ``prefix``'s row kernel once (``Simulation.custom_update``)."""
        if self.parallel:
            numba.set_num_threads(self.thread_count)
        scalar = np.dtype(self.precision).type
        args = [state[a] for a in self.update_args[prefix][4:]]  # after step, t, dt, seed
        getattr(self.module, f"{prefix}_row")(np.int64(step), scalar(step * dt), scalar(dt), np.uint64(seed), *args)

    def run_custom(self, state: dict, prefix: str, step: int, dt: float, seed: int) -> None:
        """Run custom update ``prefix``'s kernel once (``Simulation.custom_update``)."""
        scalar = np.dtype(self.precision).type
        args = [state[a] for a in self.custom_args[prefix][4:]]  # after step, t, dt, seed
        size_key, per_synapse, over_time = self.custom_work[prefix]
        elements = int(state[size_key].sum()) * self.batch_size if per_synapse else int(state[size_key].size)
        work = elements * (self.last_steps if over_time else 1)
        self._chunks(getattr(self.module, f"{prefix}_update"), np.int64(step), scalar(step * dt), scalar(dt),
                     np.uint64(seed), *args, work=work)

    def run_global(self, state: dict, u, step: int, dt: float, seed: int) -> None:
        """Run connectivity update ``u``'s compiled global phase once."""
        if self.parallel:
            numba.set_num_threads(self.thread_count)
        scalar = np.dtype(self.precision).type
        fn = getattr(self.module, f"{u.prefix}_global")
        fn(np.uint64(seed), np.int64(step), scalar(step * dt), scalar(dt), *[state[a] for a in u.global_code.args])
