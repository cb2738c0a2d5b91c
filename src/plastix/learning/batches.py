"""What the trainers share about batches: the batched simulation they build, the check of a batch of
spike counts ``x`` [batch, steps, inputs] and its labels, and their raw gradients as one flat vector (what
data-parallel training sums over ranks)."""
from __future__ import annotations

import numpy as np


def check_count_batch(x, labels, *, num_inputs: int, num_classes: int, error, steps: int | None = None,
                      hint: str = ""):
    """``(x as uint8, labels as int64)`` or ``error(message)`` naming what is wrong: the shape (``steps``:
    the required number of steps, None: any >= 1), counts outside 0..255 or not whole, labels of the wrong
    shape or outside ``0 .. num_classes - 1``."""
    x = np.asarray(x)
    want = f"[batch, {'steps' if steps is None else f'{steps} steps'}, {num_inputs}]"
    if x.ndim != 3 or x.shape[2] != num_inputs or (steps is not None and x.shape[1] != steps):
        raise error(f"x must be {want} spike counts, got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise error(f"x needs at least one sample and one step, got shape {x.shape}")
    if x.dtype != np.uint8:
        if np.any(x < 0) or np.any(x > 255) or np.any(x != np.round(x)):
            raise error("x must hold spike counts 0..255" + hint)
        x = x.astype(np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if labels.shape != (x.shape[0],):
        raise error(f"labels must have shape ({x.shape[0]},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise error(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return x, labels


def simulation_batch(batch_size, error) -> int:
    """The batch a trainer's simulation runs for ``batch_size`` samples per call (an integer 1..65535, else
    ``error``): at least 2, so that one compiled batched code serves every size (short calls are padded)."""
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or not 1 <= batch_size <= 65535):
        raise error(f"batch_size must be an integer in [1, 65535], got {batch_size!r}")
    return max(2, int(batch_size))


def batched_simulation(network, backend: str, batch: int, error):
    """A built batched :class:`~plastix.Simulation` of ``network`` on ``backend``; ``error`` (naming why)
    when the CUDA backend is asked for and unusable."""
    from ..runtime import Simulation

    if backend == "cuda":
        from ..kernels.cuda_device import probe

        ok, why = probe()
        if not ok:
            raise error(f"backend='cuda' is unavailable: {why}")
    sim = Simulation(network, backend=backend, batch_size=batch, check_finite=False)
    sim.build()
    return sim


def gradient_vector(sim, parts) -> np.ndarray:
    """The variables ``parts`` ((group, variable) pairs) of ``sim`` flattened and joined, in that order."""
    return np.concatenate([np.ravel(sim.get(g, v)) for g, v in parts])


def set_gradient_vector(sim, parts, vec, error) -> None:
    """Write ``vec`` (laid out as :func:`gradient_vector`) back into the variables ``parts`` of ``sim``;
    ``error`` when its length does not match."""
    vec = np.asarray(vec, np.float64)
    sizes = [np.size(sim.get(g, v)) for g, v in parts]
    if sum(sizes) != vec.size:
        raise error(f"gradient vector has {vec.size} entries, the network {sum(sizes)}")
    at = 0
    for (g, v), n in zip(parts, sizes):
        sim.set(g, v, vec[at:at + n])
        at += n
