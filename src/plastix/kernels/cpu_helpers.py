"""The RNG and row-sampling helpers compiled for the CPU once per installation, not once per model.

Generated CPU modules import these instead of carrying their source: numba compiles each one at the
first model that calls it and keeps its machine code in its on-disk cache (beside this package, or under
``NUMBA_CACHE_DIR``), so every later model (another network, another command, the next test) loads it
instead of compiling it again.  The functions are :mod:`~plastix.kernels.rng`'s and
:mod:`~plastix.kernels.sampling`'s own (one source for numpy, the CPU and CUDA): each is rebound to a
namespace in which its callees are the compiled versions and scalar math is ``math.*``, and compiled
with numpy's error model, as generated code is.  (CUDA modules still paste the source: device functions
compile with their kernels.)
"""
from __future__ import annotations

import math
import types

from numba import njit

from . import rng, sampling

__all__ = ["NAMES"]


def _compiled(modules) -> dict:
    ns: dict = {}
    for m in modules:
        ns.update(vars(m))  # their constants and imports
    # rng binds these to numpy for its vectorised use; compiled scalar code uses math
    ns.update(_sqrt=math.sqrt, _log=math.log, _cos=math.cos)
    out = {}
    for m in modules:
        for name in m.KERNEL_FUNCTIONS:  # dependency order
            f = getattr(m, name)
            g = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
            g.__qualname__, g.__module__, g.__doc__ = f.__qualname__, f.__module__, f.__doc__
            # the cache lives with f's source file and is keyed by its code: edits invalidate it
            ns[name] = out[name] = njit(cache=True, error_model="numpy")(g)
    return out


_FUNCTIONS = _compiled((rng, sampling))
globals().update(_FUNCTIONS)

#: The names generated modules import (rng's and sampling's KERNEL_FUNCTIONS).
NAMES = tuple(_FUNCTIONS)
