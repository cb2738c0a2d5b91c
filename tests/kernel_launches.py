"""Records every CUDA kernel the test suite defines and launches under numba-cuda's simulator, with the
Numba types of the arguments it is launched with, so tests/test_ptx.py can compile exactly those kernels
with the real compiler.

:func:`install` wraps the simulator's kernel class (what ``cuda.jit`` returns under
``NUMBA_ENABLE_CUDASIM=1``): its constructor notes each kernel (not device function) defined, its call
notes each top-level launch as ``(module file, module name, qualified name, argument types)``.  Argument
types are what ``numba.typeof`` gives for each argument -- the simulator's device arrays type like real
device arrays (dtype, dimensions, layout) -- written as plain JSON (see :func:`encode_type`) so another
process, running the real compiler, can rebuild them with :func:`decode_type`.

A launch costs the simulator milliseconds (one Python thread per CUDA thread); recording it costs one
dictionary lookup once the kernel's argument kinds have been seen (~10 us for 20 arguments).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: Environment variable naming a JSON file: when set, the session's recordings are written there at its end.
RECORD_ENV = "PLASTIX_RECORD_KERNEL_LAUNCHES"

#: (module file, module name, qualified name) of every kernel defined while recording.
DEFINED: set[tuple[str, str, str]] = set()
#: (module file, module name, qualified name, encoded argument types) -> number of launches.
LAUNCHED: dict[tuple, int] = {}
#: Node id of the test running now (set by tests/conftest.py), and of every test that launched a kernel.
CURRENT_TEST: list[str] = ["<outside any test>"]
LAUNCHING_TESTS: set[str] = set()

_installed = False


def encode_type(ty) -> list:
    """JSON form of the Numba type of a kernel argument: ``["array", dtype, ndim, layout, readonly]`` or
    ``["scalar", dtype]`` (a numpy dtype name: ``"int64"``, ``"float32"``, ``"bool"``...)."""
    from numba.core import types
    from numba.np import numpy_support

    if isinstance(ty, types.Array):
        return ["array", str(numpy_support.as_dtype(ty.dtype)), ty.ndim, ty.layout, not ty.mutable]
    if isinstance(ty, (types.Boolean, types.Integer, types.Float, types.Complex)):
        return ["scalar", str(numpy_support.as_dtype(ty))]
    raise TypeError(f"kernel argument of Numba type {ty} cannot be recorded: add its encoding to "
                    f"{Path(__file__).name}")


def decode_type(enc: list):
    """The Numba type :func:`encode_type` wrote as ``enc``."""
    import numpy as np
    from numba.core import types
    from numba.np import numpy_support

    if enc[0] == "array":
        _, dtype, ndim, layout, readonly = enc
        return types.Array(numpy_support.from_dtype(np.dtype(dtype)), int(ndim), layout, readonly=bool(readonly))
    if enc[0] == "scalar":
        return numpy_support.from_dtype(np.dtype(enc[1]))
    raise ValueError(f"unknown recorded type {enc!r}")


def _where(fn) -> tuple[str, str, str]:
    return (os.path.abspath(fn.__code__.co_filename), fn.__module__, fn.__qualname__)


def install() -> None:
    """Wrap the simulator's kernel class so definitions and launches are recorded (once per process)."""
    global _installed
    if _installed:
        return
    import numba
    from numba.cuda.simulator import kernel as sim_kernel
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    _FAKE_ARRAY[0] = FakeCUDAArray
    cls = sim_kernel.FakeCUDAKernel
    init, call = cls.__init__, cls.__call__
    typecache: dict = {}   # (function, what types each argument) -> recorded key

    def recording_init(self, fn, device, *args, **kwargs):
        init(self, fn, device, *args, **kwargs)
        if not device:
            DEFINED.add(_where(fn))

    def recording_call(self, *args):
        # a top-level launch: not a device function, not a call made from inside a running kernel
        if not self._device and sim_kernel._kernel_context is None:
            shape = (self.fn,) + tuple(_shape_of(a) for a in args)
            key = typecache.get(shape)
            if key is None:
                key = _where(self.fn) + (json.dumps([encode_type(numba.typeof(a)) for a in args]),)
                typecache[shape] = key
            LAUNCHED[key] = LAUNCHED.get(key, 0) + 1
            LAUNCHING_TESTS.add(CURRENT_TEST[0])
        return call(self, *args)

    cls.__init__, cls.__call__ = recording_init, recording_call
    _installed = True


def _shape_of(a):
    """What determines an argument's Numba type: its class (numpy and Python scalars: nothing else) and,
    for arrays, dtype, dimensions, layout and writability, read from the numpy array a simulator device
    array wraps (its attribute forwarding costs microseconds per access)."""
    cls = type(a)
    arr = a._ary if cls is _FAKE_ARRAY[0] else a
    if isinstance(arr, np.ndarray):
        f = arr.flags
        return (cls, arr.dtype.str, arr.ndim, f.c_contiguous, f.f_contiguous, 0 in arr.strides, f.writeable)
    return cls


#: The simulator's device array class (set by install).
_FAKE_ARRAY: list = [None]


def snapshot() -> dict:
    """The recordings as JSON-ready data."""
    return {"defined": sorted(list(d) for d in DEFINED), "tests": sorted(LAUNCHING_TESTS),
            "launched": [{"file": f, "module": m, "qualname": q, "types": json.loads(t), "count": n}
                         for (f, m, q, t), n in sorted(LAUNCHED.items())]}


def dump(path) -> None:
    Path(path).write_text(json.dumps(snapshot(), indent=1))
