"""The one CUDA probe, and the device-array holder every CUDA user shares (the engine's CUDA backend and
the e-prop GPU path).  Importing this module does not import numba-cuda: that initialises the driver or
the simulator, so it happens on first use."""
from __future__ import annotations

import os
import sys

import numba
import numpy as np

from .launch import simulator


def cuda_module():
    """``numba.cuda`` (imported on first use)."""
    from numba import cuda

    return cuda


#: device nodes through which a Linux process reaches an NVIDIA GPU (WSL: /dev/dxg)
_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")


def _no_device_nodes() -> bool:
    """On Linux, True when no NVIDIA device node exists: no GPU can be reached, so numba-cuda (~0.2 s to
    import) need not be asked."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _DEVICE_NODES)


def probe() -> tuple[bool, str]:
    """(usable, reason): numba-cuda importable and a GPU present, or the simulator enabled."""
    if not numba.config.ENABLE_CUDASIM and _no_device_nodes():
        return False, f"no CUDA GPU found (none of {', '.join(_DEVICE_NODES)} exists)"
    try:
        cuda = cuda_module()
    except Exception as e:  # noqa: BLE001 - any failure to import means no CUDA
        return False, f"numba-cuda is not importable ({type(e).__name__}: {e}); pip install 'plastix[cuda]'"
    if simulator():
        return True, "numba-cuda simulator"
    try:
        ok = bool(cuda.is_available())
    except Exception as e:  # noqa: BLE001 - driver problems must not break backend="auto"
        return False, f"CUDA is not usable ({type(e).__name__}: {e})"
    return (True, "CUDA GPU") if ok else (False, "no CUDA GPU found (numba.cuda.is_available() is False)")


def cuda_available() -> bool:
    """True when numba-cuda is installed and a GPU (or the CUDA simulator) is usable."""
    return probe()[0]


class DeviceArrays:
    """Device twins of host arrays, by name: allocated on first use and kept between calls, reallocated
    only when a shape or dtype changes (a device allocation costs far more than a copy)."""

    def __init__(self):
        self._arrays: dict = {}

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def __getitem__(self, name: str):
        return self._arrays[name]

    def __setitem__(self, name: str, dev) -> None:
        self._arrays[name] = dev

    def __bool__(self) -> bool:
        return bool(self._arrays)

    def get(self, name: str, default=None):
        return self._arrays.get(name, default)

    def buffer(self, name: str, shape, dtype):
        """The device array ``name`` of ``shape`` / ``dtype`` (contents undefined when newly allocated)."""
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        d = self._arrays.get(name)
        if d is None or tuple(d.shape) != shape or np.dtype(d.dtype) != dtype:
            self._arrays.pop(name, None)  # free the old one before allocating the new
            d = self._arrays[name] = cuda_module().device_array(shape, dtype)
        return d

    def upload(self, name: str, host: np.ndarray):
        """Copy ``host`` to the device array ``name`` (reallocated if its shape or dtype differ)."""
        d = self.buffer(name, host.shape, host.dtype)
        if host.size:
            d.copy_to_device(np.ascontiguousarray(host))
        return d

    @staticmethod
    def download(dev, host: np.ndarray) -> None:
        """Copy device array ``dev`` into ``host`` in place."""
        if not host.size:
            return
        if host.flags.c_contiguous and host.flags.writeable:
            dev.copy_to_host(host)
        else:
            host[...] = dev.copy_to_host()

    def clear(self) -> None:
        """Release every device array (the next use reallocates)."""
        self._arrays.clear()
