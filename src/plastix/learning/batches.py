"""Checks of a training batch shared by the trainers: spike counts ``x`` [batch, steps, inputs] and labels."""
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
