"""Seconds spent compiling, counted apart from the seconds spent running.

Numba compiles a function at its first call with new argument types (or loads the machine code of an
earlier run from its on-disk cache), so compilation happens inside whatever is timed around that first
call: a training epoch, a simulation run.  Every compilation and every cache load runs while numba holds
its global compiler lock, and numba announces each acquisition and release of that lock as a
``"numba:compiler_lock"`` event (:mod:`numba.core.event`).  This module listens to those events from
its import on and adds up the time the lock is held (nested acquisitions counted once): that is the
process's compile time, whatever function triggered it and however deep inside a call it happened, with
no warm-up calls that would have to run kernels on real state.  (numba-cuda's compiler takes the same
lock, so GPU kernels count too.)

:class:`Stopwatch` splits the wall time of a stretch of code into compilation and the rest; figures
that claim to measure running (epoch times, simulation wall time, real-time factors) use the rest.
:func:`counting` marks a block whose whole duration counts as compilation (code generation).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from numba.core import event

__all__ = ["compile_seconds", "counting", "Stopwatch", "OutermostLock"]


class OutermostLock(event.Listener):
    """A listener to numba's compiler-lock events that acts when the outermost acquisition starts
    (:meth:`first`) and when it ends (:meth:`last`): nested acquisitions count once."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._depth = 0

    def first(self) -> None:
        """The lock is taken (nothing held it)."""

    def last(self) -> None:
        """The outermost holder released it."""

    def on_start(self, _event=None):
        with self._mutex:
            if self._depth == 0:
                self.first()
            self._depth += 1

    def on_end(self, _event=None):
        with self._mutex:
            if self._depth == 0:  # a lock taken before this listener was registered
                return
            self._depth -= 1
            if self._depth == 0:
                self.last()


class _LockTimer(OutermostLock):
    """Adds up the wall time during which at least one compilation (or counted block) is in progress."""

    def __init__(self):
        super().__init__()
        self._since = 0.0
        self.total = 0.0

    def first(self) -> None:
        self._since = time.perf_counter()

    def last(self) -> None:
        self.total += time.perf_counter() - self._since

    def seconds(self) -> float:
        with self._mutex:
            running = time.perf_counter() - self._since if self._depth else 0.0
            return self.total + running


_timer = _LockTimer()
event.register("numba:compiler_lock", _timer)


def compile_seconds() -> float:
    """Seconds this process has spent compiling (numba compiling or loading its cache, and
    :func:`counting` blocks) since plastix's compile clock was imported."""
    return _timer.seconds()


@contextmanager
def counting():
    """Count the whole block as compilation (for code generation); compilations inside it count once."""
    _timer.on_start()
    try:
        yield
    finally:
        _timer.on_end()


class Stopwatch:
    """Wall time since construction (or :meth:`restart`), split into compilation and the rest.

    Examples
    --------
    >>> sw = Stopwatch()
    >>> _ = sum(range(10))
    >>> sw.total_s >= sw.run_s >= 0.0 and sw.compile_s >= 0.0
    True
    """

    def __init__(self):
        self.restart()

    def restart(self) -> None:
        self._t0 = time.perf_counter()
        self._c0 = compile_seconds()

    @property
    def total_s(self) -> float:
        """Wall seconds since the start."""
        return time.perf_counter() - self._t0

    @property
    def compile_s(self) -> float:
        """Seconds of the interval spent compiling."""
        return compile_seconds() - self._c0

    @property
    def run_s(self) -> float:
        """Wall seconds of the interval less the compilation inside it."""
        c = self.compile_s
        return max(time.perf_counter() - self._t0 - c, 0.0)
