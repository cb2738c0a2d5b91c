"""The MPI pieces every distributed part of plastix shares.

mpi4py is optional: nothing here imports it until MPI is asked for, and asking without it raises
:class:`MPIUnavailableError` with the install line.  ``mpi4py`` initialises MPI when it is first imported.

Reductions are **fixed-order**: :func:`sum_to_all` gathers every rank's array on rank 0, adds them there in
rank order (rank 0's + rank 1's + ...) and broadcasts the bits, so every rank receives bitwise the same
sum whatever the MPI library's reduction algorithm or the number of ranks per node (``MPI_Allreduce`` is
only advised, not required, to give every rank the same bits).
"""
from __future__ import annotations

import os
import sys
import zlib
from contextlib import contextmanager

import numpy as np

from ..errors import PlastixError

#: What to install for MPI (the wheels bring their own MPI library and ``mpiexec``: no system MPI needed).
INSTALL = 'pip install "plastix[mpi]"  (mpi4py with the MPICH wheel; or mpi4py built against your cluster\'s MPI)'

#: Environment variables that MPI launchers set to the number of ranks: Open MPI's mpirun, MPICH / Intel MPI's
#: Hydra and Slurm's PMI-2 (``PMI_SIZE``); Slurm's srun with PMIx sets ``PMIX_RANK`` and ``SLURM_NTASKS``.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


class MPIUnavailableError(PlastixError, ImportError):
    """MPI was asked for but mpi4py (or an MPI library for it) is not installed."""


class RankDivergenceError(PlastixError, RuntimeError):
    """Ranks that must hold identical state do not.  Raised on every rank at once (a collective check)."""


def import_mpi():
    """``mpi4py.MPI`` (initialising MPI), or :class:`MPIUnavailableError` saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise MPIUnavailableError(f"MPI was asked for but mpi4py is not installed ({e}); install it with {INSTALL}") \
            from e
    except RuntimeError as e:   # mpi4py without a loadable MPI library
        raise MPIUnavailableError(f"mpi4py is installed but found no MPI library ({e}); install one with "
                                  f"{INSTALL}") from e
    return MPI


def launched_size(environ=None) -> int:
    """Number of ranks the MPI launcher that started this process asked for (1 when none did).

    Reads only environment variables (:data:`SIZE_VARIABLES`; Slurm's ``SLURM_NTASKS`` when a PMI / PMIx rank
    is set), so it works without mpi4py: a run started by ``mpirun -n 4`` without mpi4py installed can say so
    instead of running four independent copies."""
    env = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        if env.get(name, "").isdigit():
            return int(env[name])
    if ("PMIX_RANK" in env or "PMI_RANK" in env) and env.get("SLURM_NTASKS", "").isdigit():
        return int(env["SLURM_NTASKS"])
    return 1


def world():
    """``MPI.COMM_WORLD``; :class:`MPIUnavailableError` without mpi4py."""
    return import_mpi().COMM_WORLD


def size_of(comm) -> int:
    """Ranks of ``comm`` (1 for None: one process)."""
    return 1 if comm is None else int(comm.Get_size())


def rank_of(comm) -> int:
    """This process's rank in ``comm`` (0 for None)."""
    return 0 if comm is None else int(comm.Get_rank())


def check_comm(comm, name: str = "comm"):
    """``comm`` if it is an mpi4py intracommunicator (or None), else a TypeError naming ``name``."""
    if comm is None:
        return None
    if not all(hasattr(comm, m) for m in ("Get_rank", "Get_size", "Gather", "Bcast", "allgather")):
        raise TypeError(f"{name} must be an mpi4py communicator such as MPI.COMM_WORLD (or None: one process), "
                        f"got {type(comm).__name__}")
    return comm


def share_cores(comm) -> int:
    """Give each rank its share of this node's cores for Numba's threads (cores // ranks on this node, at
    least 1) unless ``NUMBA_NUM_THREADS`` was set; returns the thread count in use.  Without this every rank
    starts one thread per core and R ranks on a node run R times too many threads."""
    import numba

    if comm is None or "NUMBA_NUM_THREADS" in os.environ:
        return numba.get_num_threads()
    local = comm.Split_type(import_mpi().COMM_TYPE_SHARED)
    on_node = local.Get_size()
    local.Free()
    numba.set_num_threads(max(1, numba.config.NUMBA_NUM_THREADS // on_node))
    return numba.get_num_threads()


def sum_to_all(comm, local: np.ndarray) -> np.ndarray:
    """Element-wise sum of every rank's ``local`` (same shape and dtype on every rank), in rank order on
    rank 0, broadcast: bitwise the same array on every rank.  One rank (or ``comm`` None): ``local`` itself."""
    local = np.ascontiguousarray(local)
    size = size_of(comm)
    if size == 1:
        return local
    root = comm.Get_rank() == 0
    parts = np.empty((size,) + local.shape, local.dtype) if root else None
    comm.Gather(local, parts, root=0)
    total = np.empty_like(local)
    if root:
        total[...] = parts[0]
        for r in range(1, size):   # fixed order: ((rank 0 + rank 1) + rank 2) + ...
            total += parts[r]
    comm.Bcast(total, root=0)
    return total


def checksum(*arrays) -> int:
    """CRC-32 of the bytes of ``arrays`` (shapes and dtypes included): equal state gives equal checksums."""
    crc = 0
    for a in arrays:
        a = np.ascontiguousarray(a)
        crc = zlib.crc32(f"{a.dtype.str}{a.shape}".encode(), crc)
        crc = zlib.crc32(a.view(np.uint8).reshape(-1), crc)
    return crc


def agree(comm, values: dict, what: str) -> None:
    """Raise :class:`RankDivergenceError` on every rank unless every rank of ``comm`` holds the same ``values``
    (name -> checksum or other comparable).  The message names each differing entry and the ranks that
    differ from rank 0; ``what`` says where (e.g. ``"connectivity after epoch 3"``)."""
    if size_of(comm) == 1:
        return
    everyone = comm.allgather(values)
    ref = everyone[0]
    bad = []
    for name in ref:
        ranks = [r for r, v in enumerate(everyone) if v.get(name) != ref[name]]
        if ranks:
            bad.append(f"{name!r} on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}")
    extra = sorted({k for v in everyone for k in v} - set(ref))
    if extra:
        bad.append(f"entries {extra} missing on rank 0")
    if bad:
        raise RankDivergenceError(f"ranks diverged: {what} differs from rank 0 for {'; '.join(bad)} "
                                  f"({size_of(comm)} ranks); the ranks no longer train one model")


@contextmanager
def abort_on_error(comm, prog: str = "plastix"):
    """Around work that every rank of ``comm`` must do together: an error on one rank alone would leave the
    others waiting forever in their next collective call, so it is printed (with the rank) and ends the whole
    job with ``MPI_Abort``.  Collective errors (:class:`RankDivergenceError`, raised on every rank at once)
    pass through; only rank 0 reports them, the other ranks exit with status 2 silently."""
    if size_of(comm) == 1:
        yield
        return
    try:
        yield
    except RankDivergenceError:
        if comm.Get_rank() != 0:
            raise SystemExit(2) from None
        raise
    except BaseException as e:   # noqa: BLE001 -- any error, KeyboardInterrupt included, strands the others
        if isinstance(e, SystemExit) and not e.code:
            raise
        print(f"{prog}: rank {comm.Get_rank()} of {comm.Get_size()}: error: {e or type(e).__name__}; "
              "aborting every rank", file=sys.stderr, flush=True)
        comm.Abort(2)
        os._exit(2)   # MPI_Abort may return before the launcher's kill arrives: report nothing more
