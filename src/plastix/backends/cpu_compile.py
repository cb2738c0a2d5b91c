"""A cold generated CPU module compiled on two cores.

Numba compiles one function at a time under a process-wide lock, so a cold ``run`` (the time loop, which
compiles every kernel it calls) uses one core.  When the module's machine code is not in numba's cache
yet and the process may use a second core, :func:`compile_kernels` hands some of ``run``'s kernels to a
helper process, which compiles them into numba's on-disk cache (``cache=True``) while this process
compiles the others.  ``run``'s own compilation then finds the helper's kernels in the cache and links
them in; nothing is compiled twice.  The helper only fills the cache: if it fails or is slow, this process
compiles what is missing itself, and the machine code is the same either way.  The kernels called from
Python (custom updates, rewiring rules) are shared out the same way at the first run
(:class:`SharedCompile`): the helper compiles them while this process compiles ``run``.

Measured (BENCHMARKS.md, "Session 18"), 2 cores, cold, one process -> with the helper: ``plastix topomap
--scale 1 --seconds 1`` 6.2-7.0 -> 5.3-6.7 s, ``plastix train --dataset digits --epochs 1`` 19-21 -> 12-13.5 s.

``PLASTIX_COMPILE_WORKERS=0`` turns the helper off (the test suite does: its workers already fill the cores).
"""
from __future__ import annotations

import ast
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import numba
import numpy as np

from ..compile_clock import counting

__all__ = ["Helper", "MISSING", "SharedCompile", "compile_kernels", "helper_allowed", "is_cached", "jobs_for",
           "kernel_calls", "loop_scalars"]

#: an argument value that is not known yet (numba has no type for it): the call is not shared out
MISSING = object()

log = logging.getLogger("plastix.compile")

#: the helper's command line (it reads its job list from standard input)
HELPER_COMMAND = [sys.executable, "-m", "plastix.backends.cpu_compile"]
#: less generated code than this (lines, kernels and their callees) is compiled here alone: a helper's
#: cache round trip costs more than it saves (measured: a cold ``bench sim`` of ~100 lines was 0.3 s slower
#: with it, ``topomap`` with ~350 lines 1 s faster)
MIN_SHARED_LINES = 200
#: how long to wait for the helper before compiling what it has not here (s)
HELPER_TIMEOUT_S = 300.0


def helper_allowed() -> bool:
    """May a compile helper run: ``PLASTIX_COMPILE_WORKERS`` is not ``0`` and the process has >= 2 CPUs."""
    setting = os.environ.get("PLASTIX_COMPILE_WORKERS", "auto").strip().lower()
    if setting not in ("auto", "0", "1"):
        raise ValueError(f"PLASTIX_COMPILE_WORKERS must be 'auto', '0' or '1', got {setting!r}")
    if setting == "0":
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return setting == "1" or cpus >= 2


def kernel_calls(source: str, entry: str = "run") -> list[tuple[str, list[str], int]]:
    """(kernel name, argument names, source lines) of each call ``name(a, b, ...)`` in ``entry``'s body
    whose arguments are all plain names and whose callee is a function of the module (aliases
    ``q1_x = q0_x`` resolved to the function compiled).  Calls are listed once, in source order."""
    functions, aliases = _parse(source)
    if entry not in functions:
        return []
    calls, seen = [], set()
    for node in (n for statement in functions[entry].body for n in ast.walk(statement)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        name = aliases.get(node.func.id, node.func.id)
        if name not in functions or name == entry or not all(isinstance(a, ast.Name) for a in node.args):
            continue
        args = [a.id for a in node.args]
        if (name, tuple(args)) in seen:
            continue
        seen.add((name, tuple(args)))
        calls.append((name, args, _lines_with_callees(name, functions, aliases)))
    return calls


def _parse(source: str) -> tuple[dict, dict]:
    """The module's top-level functions by name, and its aliases (``q1_x = q0_x``: q1_x -> q0_x)."""
    tree = ast.parse(source)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    aliases = {t.id: n.value.id for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name)
               for t in n.targets if isinstance(t, ast.Name)}
    return functions, aliases


def _lines_with_callees(name: str, functions: dict, aliases: dict) -> int:
    """Source lines of ``name`` and of the module's functions it calls, directly or not (each once)."""
    todo, seen, lines = [name], set(), 0
    while todo:
        fn = functions[todo.pop()]
        if fn.name in seen:
            continue
        seen.add(fn.name)
        lines += fn.end_lineno - fn.lineno + 1
        for node in (n for statement in fn.body for n in ast.walk(statement)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee = aliases.get(node.func.id, node.func.id)
                if callee in functions and callee not in seen:
                    todo.append(callee)
    return lines


class Helper:
    """A compile helper process: it imports numba and plastix, sets up numba's compiler (~0.6 s in all),
    then waits for one job list (:meth:`give`) or for its input to close (:meth:`cancel`: nothing to do).

    It is started only once a module is known to be cold: a helper started ahead, while the plan is built,
    gained 0.1-0.3 s on a cold topomap run but cost every warm run ~0.08 s (on this 2-vCPU machine a busy
    second vCPU slows the first)."""

    def __init__(self, proc, err):
        self._proc, self._err = proc, err

    @classmethod
    def start(cls) -> "Helper | None":
        """A new helper, or None when none may run (:func:`helper_allowed`) or it cannot start."""
        if not helper_allowed():
            return None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["PLASTIX_COMPILE_WORKERS"] = "0"
        err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty helper can never block on it
        try:
            proc = subprocess.Popen(HELPER_COMMAND, stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
        except OSError as exc:
            err.close()
            log.info("plastix compile helper did not start (%s); compiling in this process", exc)
            return None
        return cls(proc, err)

    def give(self, module, jobs, claims: str) -> bool:
        """Hand over the job list; False if the helper is gone."""
        payload = pickle.dumps({"path": module.__file__, "name": module.__name__, "jobs": jobs, "claims": claims})
        try:
            self._proc.stdin.write(payload)
            self._proc.stdin.close()
            return True
        except OSError:  # it died early: its jobs stay unclaimed and are compiled here
            self.cancel()
            return False

    def cancel(self) -> None:
        """Nothing to do: the helper exits when its input closes (it is not waited for)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._err.close()

    def wait(self, timeout: float = HELPER_TIMEOUT_S) -> bool:
        """Wait until the helper has compiled what it claimed; True if it finished cleanly."""
        with self._err:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
                log.info("plastix compile helper took over %.0f s; compiling what it claimed here", timeout)
                return False
            if self._proc.returncode != 0:
                self._err.seek(0)
                log.info("plastix compile helper failed (exit %s); compiling what it claimed here:\n%s",
                         self._proc.returncode, self._err.read().decode(errors="replace")[-2000:])
                return False
        return True


class SharedCompile:
    """Kernels shared out between this process and a helper: the helper starts on them at once
    (:meth:`start`) while this process may do other work (compile and run ``run``); :meth:`finish` compiles
    here what the helper has not claimed yet and waits for the helper."""

    def __init__(self, module, jobs, helper: Helper | None, claims: str):
        self.module, self.jobs, self._helper, self._claims = module, jobs, helper, claims
        self._given = helper is not None and helper.give(module, jobs, claims)

    @classmethod
    def start(cls, module, jobs) -> "SharedCompile | None":
        """Hand ``jobs`` (``(kernel name, signature)``, longest first) to a new helper; None when there is
        not enough to share or no helper may run."""
        if len(jobs) < 2 or not helper_allowed():
            return None
        return cls(module, jobs, Helper.start(), tempfile.mkdtemp(prefix="plastix-claims-"))

    def finish(self) -> dict:
        """``{"here": kernel names, "helper": kernel names, "helper_ok": bool}`` once all are compiled
        (``helper_ok`` None: this process compiled everything before the helper claimed anything)."""
        try:
            with counting():
                done = _compile_claimed(self.module, self.jobs, self._claims)
                if len(done) == len(self.jobs):  # the helper took nothing (still starting): never wait for it
                    ok = None
                    if self._helper is not None:
                        self._helper.cancel()
                else:
                    ok = self._given and self._helper.wait()
        finally:
            shutil.rmtree(self._claims, ignore_errors=True)
        here = [n for _, n in done]
        mine = {i for i, _ in done}
        return {"here": here, "helper": [n for i, (n, _) in enumerate(self.jobs) if i not in mine], "helper_ok": ok}


def compile_kernels(module, source: str, values: dict) -> dict:
    """Compile ``run``'s kernels of a cold generated ``module`` now, on two cores: this process and a
    helper process take the kernels from one list, longest first, each claiming the next one free.

    ``values``: the value (or an example of its type) of every argument name in ``run``'s body: state
    arrays and the loop scalars.  Returns what was done (see :meth:`SharedCompile.finish`); an empty dict
    when nothing was (a warm cache, no second CPU, too little code).
    """
    calls = [(name, [values.get(a, MISSING) for a in args]) for name, args, _ in kernel_calls(source)]
    jobs = jobs_for(module, source, calls) if helper_allowed() and not is_cached(module) else []
    shared = SharedCompile.start(module, jobs)
    return {} if shared is None else shared.finish()


def jobs_for(module, source: str, calls, min_lines: int | None = None) -> list[tuple[str, tuple]]:
    """(kernel name, numba signature) for each ``(kernel name, argument values)`` in ``calls`` whose
    kernel is a dispatcher of ``module`` not compiled for those types yet, the longest kernels first
    (their source lines and their callees'); calls with an unknown argument are left out.  None at all
    when they add up to fewer than ``min_lines`` (default :data:`MIN_SHARED_LINES`) lines."""
    functions, aliases = _parse(source)
    work, seen = [], set()
    for name, args in calls:
        name = aliases.get(name, name)
        dispatcher = getattr(module, name, None)
        if not isinstance(dispatcher, numba.core.dispatcher.Dispatcher) or name not in functions:
            continue
        try:
            sig = tuple(numba.typeof(a) for a in args)
        except ValueError:  # MISSING, or a value numba has no type for
            continue
        if (name, sig) in seen or sig in dispatcher.overloads:
            continue
        seen.add((name, sig))
        work.append((_lines_with_callees(name, functions, aliases), (name, sig)))
    if sum(lines for lines, _ in work) < (MIN_SHARED_LINES if min_lines is None else min_lines):
        return []
    return [job for _, job in sorted(work, key=lambda w: -w[0])]  # longest first: the two sides end together


def _claim(claims: str, index: int) -> bool:
    """Take job ``index`` unless the other process has (creating a file is atomic)."""
    try:
        os.close(os.open(os.path.join(claims, str(index)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:  # the list is gone: the other side has finished every job
        return False


def _compile_claimed(module, jobs, claims: str) -> list[str]:
    """Compile every job this process claims first, in order; the names compiled."""
    done = []
    for i, (name, sig) in enumerate(jobs):
        if _claim(claims, i):
            getattr(module, name).compile(sig)
            done.append((i, name))
    return done


def is_cached(module) -> bool:
    """Is ``run``'s machine code in numba's cache already (an index file exists)?"""
    try:
        return os.path.exists(module.run._cache._cache_file._index_path)
    except AttributeError:  # numba's cache layout changed: assume warm, compile as usual
        return True


def _helper_main() -> int:
    """The helper: import the generated module from its file and compile the jobs it claims into numba's
    cache."""
    import importlib.util

    numba.njit(lambda x: x + 1)(1)  # numba's first compilation in a process sets up its compiler (~0.2 s)
    data = sys.stdin.buffer.read()
    if not data:  # cancelled: the module was in the cache after all
        return 0
    job = pickle.loads(data)
    spec = importlib.util.spec_from_file_location(job["name"], job["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[job["name"]] = module
    spec.loader.exec_module(module)
    _compile_claimed(module, job["jobs"], job["claims"])
    return 0


def loop_scalars(precision) -> dict:
    """Examples of the loop scalars ``run`` passes its kernels (their types are what matters)."""
    real = np.dtype(precision).type
    return {"step": np.int64(0), "t": real(0), "dt": real(0), "seed": np.uint64(0)}


if __name__ == "__main__":
    sys.exit(_helper_main())
