"""Launch geometry and launch configuration shared by every CUDA kernel plastix generates or ships
(importing this module does not import numba-cuda).

Tests shrink :data:`THREADS_PER_BLOCK` and :data:`MAX_SPIKE_BLOCKS` so that tiny networks still run on
several blocks; the values are read when a launch is configured, so a change applies to the next ``run``.
"""
from __future__ import annotations

#: Threads per block of every kernel.
THREADS_PER_BLOCK = 128
#: Upper bound on the blocks launched along the spike / row axis (y) of 2-D kernels; more spikes or rows
#: are strided by the threads.
MAX_SPIKE_BLOCKS = 4096
#: The largest y extent of a CUDA grid.
MAX_GRID_Y = 65535


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


def blocks(n: int, per: int) -> int:
    """Blocks of ``per`` threads covering ``n`` elements (at least one)."""
    return max(1, -(-int(n) // int(per)))


def block_2d(width: int, min_x: int = 1) -> tuple[int, int]:
    """2-D block (x over row slots / columns, y over rows / spikes) for rows of ``width`` slots: x the
    power of two covering ``width`` (at least ``min_x``, at most a whole block), y the rest of the block."""
    tpb = int(THREADS_PER_BLOCK)
    bx = 1
    while bx < max(int(width), int(min_x)) and bx < tpb:
        bx *= 2
    return bx, max(1, tpb // bx)


def cfg1(n: int):
    """(grid, block) of a 1-D kernel over ``n`` elements."""
    tpb = int(THREADS_PER_BLOCK)
    return blocks(n, tpb), tpb


def cfg2(width: int, n_y: int, min_x: int = 1):
    """(grid, block) of a 2-D kernel: x covers ``width`` (row slots, columns or targets), y strides over up
    to ``n_y`` spikes or rows, with at most :data:`MAX_SPIKE_BLOCKS` blocks in all."""
    bx, by = block_2d(width, min_x)
    gx = blocks(width, bx)
    gy = max(1, min(blocks(max(1, n_y), by), max(1, int(MAX_SPIKE_BLOCKS) // gx), MAX_GRID_Y))
    return (gx, gy), (bx, by)


#: The largest z extent of a CUDA grid (batched kernels put the batch element there).
MAX_GRID_Z = 65535


def cfg_batch(cfg, batch: int):
    """``cfg = (grid, block)`` of a kernel with its grid repeated over ``batch`` elements along z (the
    kernel reads its element from ``blockIdx.z``)."""
    grid, block = cfg
    if not 1 <= int(batch) <= MAX_GRID_Z:
        raise ValueError(f"batch must be in [1, {MAX_GRID_Z}] on CUDA, got {batch}")
    grid = (grid, 1) if isinstance(grid, int) else tuple(grid)
    block = (block, 1) if isinstance(block, int) else tuple(block)
    return (grid[0], grid[1], int(batch)), (block[0], block[1], 1)
