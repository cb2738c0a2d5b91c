"""Backend registry.  Importing it never requires a GPU or numba-cuda.

:mod:`.base` writes down the contract every backend implements; :mod:`.cpu` (numba.njit) and
:mod:`.cuda` (numba-cuda) implement it.
"""
from __future__ import annotations

from ..errors import BackendError
from ..kernels.cuda_device import cuda_available, probe
from .base import Backend

BACKENDS = ("auto", "cpu", "cuda")

__all__ = ["BACKENDS", "Backend", "cuda_available", "make_backend"]


def make_backend(name: str = "auto", *, parallel="auto", threads=None, partitions=None) -> Backend:
    if name not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        # never pick numba-cuda's simulator implicitly: it is for testing kernels, far slower than the CPU
        import numba

        name = "cuda" if cuda_available() and not numba.config.ENABLE_CUDASIM else "cpu"
    if name == "cpu":
        from .cpu import CpuBackend

        return CpuBackend(parallel=parallel, threads=threads, partitions=partitions)
    ok, why = probe()
    if not ok:
        raise BackendError(f"backend 'cuda' is not usable: {why}. It needs numba-cuda (pip install "
                           "plastix[cuda]) and an NVIDIA GPU (or NUMBA_ENABLE_CUDASIM=1 for the simulator)")
    from .cuda import CudaBackend

    return CudaBackend()
