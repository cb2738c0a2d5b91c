"""Code that is compiled *into* kernels, and the numbers and helpers kernel launches share.

A leaf package: it imports numpy, numba, llvmlite and (lazily) numba-cuda, never anything of plastix above
it, so code generation (``plastix.codegen``), the backends and the learning code can all depend on it.

* :mod:`.rng` -- Philox-4x32-10 counter-based random numbers (one source for numpy, njit and CUDA).
* :mod:`.sampling` -- row helpers of connectivity-update code (free-target sampling, selection).
* :mod:`.prefetch` -- a cache-prefetch intrinsic for pipelined CPU row kernels.
* :mod:`.columns` -- the column view (incoming synapses per target) filled from the rows on the CPU.
* :mod:`.columns_cuda` -- the same on the GPU, as three kernels.
* :mod:`.launch` -- launch geometry (one ``THREADS_PER_BLOCK``), launch configuration, simulator flag.
* :mod:`.cuda_device` -- the one CUDA probe and the device-array holder every CUDA user shares.
"""
