"""Small numba-cuda helpers shared by the CUDA backend, its generated modules and the e-prop GPU kernels
(importing this module does not import numba.cuda)."""
from __future__ import annotations


def simulator() -> bool:
    """True when numba-cuda runs its simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        from numba.cuda import config  # numba-cuda >= 0.2x keeps its own config
    except ImportError:  # pragma: no cover - older numba-cuda
        from numba.core import config
    return bool(getattr(config, "ENABLE_CUDASIM", False))


def configure(kernel, cfg):
    """``kernel`` configured for ``cfg = (grid, block)``, for launches prepared once and repeated.
    numba-cuda's simulator stores a launch configuration on the kernel object itself (two configurations
    of one kernel made in advance would share the last), so there each launch configures anew."""
    if not simulator():
        return kernel[cfg]

    def launch(*args):
        kernel[cfg](*args)
    return launch
