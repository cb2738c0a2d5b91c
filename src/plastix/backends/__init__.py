"""Backend registry.  Importing it never requires a GPU or numba-cuda."""
from __future__ import annotations

from ..errors import BackendError

BACKENDS = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when numba-cuda is installed and a GPU (or the CUDA simulator) is usable."""
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # driver problems must not break backend="auto"
        return False


def make_backend(name: str = "auto", *, parallel="auto", threads=None, partitions=None):
    if name not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        # never pick numba-cuda's simulator implicitly: it is for testing kernels, far slower than the CPU
        import numba

        name = "cuda" if cuda_available() and not numba.config.ENABLE_CUDASIM else "cpu"
    if name == "cpu":
        from .cpu import CpuBackend

        return CpuBackend(parallel=parallel, threads=threads, partitions=partitions)
    if not cuda_available():
        raise BackendError("backend 'cuda' needs numba-cuda (pip install plastix[cuda]) and an NVIDIA GPU "
                           "(or NUMBA_ENABLE_CUDASIM=1 for the simulator)")
    from .cuda import CudaBackend

    return CudaBackend()
