"""The contract every backend implements (:class:`Backend`), written down as a Protocol.

A backend turns a :class:`~plastix.codegen.plan.Plan` into compiled kernels and runs them on a state: the
host ``state`` dict (numpy arrays and numpy scalars under the keys of :mod:`plastix.codegen.names`) is the
authoritative description between calls.  A backend whose kernels work on other memory (a GPU) keeps
twins of the arrays and copies them when asked (:meth:`Backend.push` / :meth:`Backend.pull`); the
runtime pulls what it reads and pushes what it changes.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    #: "cpu" or "cuda".
    name: str
    #: True when the kernels work on the host arrays themselves (push / pull copy nothing).
    host_resident: bool
    #: True when the kernels are multi-threaded / data-parallel.
    parallel: bool

    @property
    def thread_count(self) -> int:
        """Host threads the kernels use (1 for serial CPU kernels and for a GPU backend)."""

    def compile(self, plan, state: dict) -> None:
        """Generate (or load from the cache) and compile the kernels of ``plan``; may add backend scratch
        arrays to ``state``.  Called again after a rebuild (e.g. a newly recorded variable)."""

    def push(self, state: dict, names=None) -> None:
        """Make the kernels' copies of ``names`` (every array when None) equal the host arrays."""

    def pull(self, state: dict, names=None) -> None:
        """Make the host arrays ``names`` (every array when None) equal the kernels' copies."""

    def run(self, state: dict, step0: int, n_steps: int, dt: float, seed: int, rec_every: int) -> None:
        """Run steps ``step0 .. step0 + n_steps - 1`` (neurons, synapses, scheduled connectivity updates,
        recording every ``rec_every`` steps) in the order of docs/semantics.md."""

    def run_update(self, state: dict, prefix: str, step: int, dt: float, seed: int) -> None:
        """Run the row phase of connectivity update ``prefix`` (``cu<k>``) once, now."""

    def run_global(self, state: dict, u, step: int, dt: float, seed: int) -> None:
        """Run the compiled global phase of connectivity update plan ``u`` once, now."""

    def run_custom(self, state: dict, prefix: str, step: int, dt: float, seed: int) -> None:
        """Run custom update ``prefix`` (``cx<k>``) over every element of its target once, now."""
