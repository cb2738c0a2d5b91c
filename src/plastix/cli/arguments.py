"""Argument types of the ``plastix`` command line.

Each type converts one flag's text and rejects a bad value up front, before anything is built or compiled,
with a message that argparse prefixes with the flag (``argument --fraction: must be a finite number in
(0, 1], got '1.5'``).  Checks that involve several flags raise :class:`UsageError` from the subcommand,
which :func:`plastix.cli.main.main` reports the same way.
"""
from __future__ import annotations

import argparse
import math

from ..errors import PlastixError

#: Most neurons of one population: neuron indices are int32 in plastix's kernels.
MAX_NEURONS = 2**31 - 1


class UsageError(PlastixError, ValueError):
    """Command-line arguments that are each valid but do not fit together (``--row-length`` > ``--pre``)."""


class _Interval:
    """The real numbers from ``low`` to ``high`` (None: unbounded; ``*_open``: that bound excluded)."""

    def __init__(self, low, high, low_open: bool, high_open: bool):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def __contains__(self, value: float) -> bool:
        return math.isfinite(value) and \
            (self.low is None or (value > self.low if self.low_open else value >= self.low)) and \
            (self.high is None or (value < self.high if self.high_open else value <= self.high))

    def __str__(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f" in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f" {'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f" {'<' if self.high_open else '<='} {hi:g}"
        return ""


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # not a number: fails every interval


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False):
    """A finite float from ``low`` to ``high`` (None: unbounded; ``low_open`` / ``high_open``: bound excluded)."""
    interval = _Interval(low, high, low_open, high_open)

    def convert(text: str) -> float:
        value = _float(text)
        if value not in interval:
            raise argparse.ArgumentTypeError(f"must be a finite number{interval}, got {text!r}")
        return value

    return convert


def numbers(low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False):
    """One or more comma-separated finite floats, each as in :func:`number`; returns a tuple."""
    interval = _Interval(low, high, low_open, high_open)

    def convert(text: str) -> tuple:
        values = tuple(_float(v) for v in text.split(","))
        if not all(v in interval for v in values):
            raise argparse.ArgumentTypeError(f"must be comma-separated finite numbers{interval}, got {text!r}")
        return values

    return convert


def integer(low: int | None = None, high: int | None = None):
    """An integer from ``low`` to ``high`` inclusive (None: unbounded)."""
    if low is not None and high is not None:
        allowed = f" in {low}..{high}"
    else:
        allowed = f" >= {low}" if low is not None else f" <= {high}" if high is not None else ""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer{allowed}, got {text!r}")
        return value

    return convert


def seed(text: str) -> int:
    """``--seed``: an integer in [0, 2**64), the seeds :class:`plastix.Network` accepts."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**64), got {text!r}")
    return value


def threads(text: str) -> int:
    """``--threads``: a CPU thread count from 1 to the size of numba's thread pool (NUMBA_NUM_THREADS)."""
    import numba

    return integer(1, numba.config.NUMBA_NUM_THREADS)(text)


def cpu_backend_options(args) -> dict:
    """``Simulation`` keyword arguments of ``--backend``, ``--parallel {auto,on,off}`` and ``--threads``
    (:class:`UsageError` for ``--threads`` with a backend other than cpu)."""
    if args.threads is not None and args.backend != "cpu":
        raise UsageError(f"--threads applies to --backend cpu only, got --backend {args.backend}")
    if args.backend != "cpu":
        return {}
    return {"parallel": {"auto": "auto", "on": True, "off": False}[args.parallel], "threads": args.threads}


def mpi_comm():
    """``MPI.COMM_WORLD`` when an MPI launcher started this process with more than one rank, else None;
    an MPI launch without mpi4py is an error saying what to install (not R independent copies of the run).
    Each rank's Numba threads get its share of the node's cores (:func:`plastix.parallel.share_cores`)."""
    from ..parallel import MPIUnavailableError, launched_size, share_cores, world

    ranks = launched_size()
    if ranks == 1:
        return None
    try:
        comm = world()
    except MPIUnavailableError as e:
        raise MPIUnavailableError(f"started by an MPI launcher with {ranks} ranks: {e}") from e
    share_cores(comm)   # Numba threads: this node's cores shared among its ranks
    return comm


def on_ranks(args, body):
    """``body(args, comm)`` on every rank of an MPI launch (``comm`` None without one), an error on any rank
    aborting all of them; returns its result on rank 0 alone (the only rank that prints), None elsewhere."""
    from ..parallel import abort_on_error

    comm = mpi_comm()
    with abort_on_error(comm, prog=args.prog):
        out = body(args, comm)
    return out if comm is None or comm.Get_rank() == 0 else None
