"""MPI through mpi4py (the optional extra ``pip install "plastix[mpi]"``): importing it with a clear error when
it is missing, telling whether this process was started by ``mpirun`` / ``mpiexec`` / ``srun``, fixed-order
reductions whose result is bitwise the same on every rank, cross-rank agreement checks, and the spike exchange
of partitioned simulations."""
from .exchange import RankFailedError, SpikeExchange, block_bounds
from .mpi import (MPIUnavailableError, RankDivergenceError, abort_on_error, agree, check_comm, checksum, import_mpi,
                  launched_size, rank_of, share_cores, size_of, sum_to_all, world)

__all__ = ["MPIUnavailableError", "RankDivergenceError", "RankFailedError", "SpikeExchange", "block_bounds",
           "abort_on_error", "agree", "check_comm", "checksum", "import_mpi", "launched_size", "rank_of",
           "share_cores", "size_of", "sum_to_all", "world"]
