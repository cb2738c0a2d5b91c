"""Column view rebuilt on the GPU: clear the counts, fill with atomics, clamp to the capacity.

The kernels are plain functions here, compiled with ``numba.cuda.jit`` on the first call of
:func:`column_kernels` (importing this module does not import numba-cuda).  The order of synapses within a
column is not deterministic, which postsynaptic learning does not depend on (each synapse is updated
independently).  A target whose in-degree exceeds the capacity sets ``stats[overflow_slot]``.
"""
from __future__ import annotations

cuda = None  # numba.cuda, bound by column_kernels()
_KERNELS: tuple = ()


def _cols_clear(collen):
    j = cuda.grid(1)
    if j < collen.shape[0]:
        collen[j] = 0


def _cols_fill(ind, rowlen, collen, colsyn, stats, overflow_slot):
    # x over row slots, y striding over rows
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    rs = cuda.gridDim.y * cuda.blockDim.y
    cap = colsyn.shape[1]
    stride = ind.shape[1]
    while r < rowlen.shape[0]:
        if k < rowlen[r]:
            j = ind[r, k]
            pos = cuda.atomic.add(collen, j, 1)
            if pos < cap:
                colsyn[j, pos] = r * stride + k
            else:
                stats[overflow_slot] = 1
        r += rs


def _cols_clamp(collen, cap):
    j = cuda.grid(1)
    if j < collen.shape[0] and collen[j] > cap:
        collen[j] = cap  # overflow was flagged; kernels must never read past the capacity


def column_kernels():
    """(clear, fill, clamp) compiled with ``cuda.jit`` (cached on disk on a real GPU)."""
    global cuda, _KERNELS
    if not _KERNELS:
        from numba import cuda as _cuda

        cuda = _cuda
        _KERNELS = tuple(_cuda.jit(cache=True)(f) for f in (_cols_clear, _cols_fill, _cols_clamp))
    return _KERNELS
