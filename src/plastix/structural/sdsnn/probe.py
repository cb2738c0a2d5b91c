"""The sparse mode's regeneration signal: would-be weights of *absent* synapses, supplied by the trainer.

In the authors' code pruned weights keep training (there is no gradient mask), so at a structure step a
pruned synapse holds what training from 0 produced since it was zeroed, and regeneration ranks those
values.  In the sparse mode a pruned synapse no longer exists, so the trainer must estimate that value:
the natural probe is ``-lr * sum over the probe window of dL/dw_ij`` (plain SGD from 0; an Adam step
differs), with ``dL/dw_ij = sum_t delta_j(t) * x_i(t)`` for a feed-forward layer (BPTT: the postsynaptic
adjoint times the presynaptic input; e-prop: learning signal times eligibility).

Cost: for an fc layer with ``n_pre x n_post`` possible pairs, scoring every absent pair is a dense
outer-product gradient -- ``O(B * T * n_pre * n_post)`` flops per probed batch and one
``n_pre x n_post`` accumulator -- i.e. what a dense layer's weight gradient costs, paid only in the probe
window (e.g. the last batches before a structure step).  :class:`Candidates` restricts it to a chosen
subset (``O(B * T * n_candidates)``); the percentile and counters then run over that subset.  A conv
layer's probe is a dense ``[c_out, c_in, kh, kw]`` array (kernel gradients are cheap: weights are shared).

A probe given to :meth:`~plastix.structural.sdsnn.SDSNN.structure_step` for a sparse regrowing layer is
one of:

* an array ``[num_pre, num_post]`` (fc) or ``[c_out, c_in, kh, kw]`` (conv) of would-be values; only the
  absent entries are read;
* a callable ``probe(pre, post) -> values`` (fc), called with every absent pair (the enumeration itself
  is ``O(n_pre * n_post)`` host memory);
* :class:`Candidates` -- explicit absent pairs and their values (fc).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidates:
    """Absent (pre, post) pairs of an fc layer with their would-be weights (``value``, same units as
    the weight)."""

    pre: np.ndarray
    post: np.ndarray
    value: np.ndarray

    def __post_init__(self):
        pre, post, value = (np.asarray(a) for a in (self.pre, self.post, self.value))
        if not (pre.ndim == post.ndim == value.ndim == 1 and pre.size == post.size == value.size):
            raise ValueError("Candidates: pre, post and value must be 1-d arrays of the same length, got shapes "
                             f"{pre.shape}, {post.shape}, {value.shape}")
        object.__setattr__(self, "pre", pre.astype(np.int64))
        object.__setattr__(self, "post", post.astype(np.int64))
        object.__setattr__(self, "value", value.astype(np.float64))


def absent_pairs(pre: np.ndarray, post: np.ndarray, num_pre: int, num_post: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (pre, post) pair without a synapse, in row-major order (dense enumeration)."""
    present = np.zeros((num_pre, num_post), bool)
    present[pre, post] = True
    a, b = np.nonzero(~present)
    return a.astype(np.int64), b.astype(np.int64)


def fc_candidates(probe, pre: np.ndarray, post: np.ndarray, num_pre: int, num_post: int, what: str) -> Candidates:
    """Resolve an fc probe (array, callable or :class:`Candidates`) into checked :class:`Candidates`."""
    if isinstance(probe, Candidates):
        c = probe
        if c.pre.size and (c.pre.min() < 0 or c.pre.max() >= num_pre or c.post.min() < 0
                           or c.post.max() >= num_post):
            raise ValueError(f"{what}: candidate pre must be in [0, {num_pre}) and post in [0, {num_post})")
        keys = c.pre * num_post + c.post
        if np.unique(keys).size != keys.size:
            raise ValueError(f"{what}: candidates contain duplicate (pre, post) pairs")
        if np.isin(keys, pre.astype(np.int64) * num_post + post).any():
            raise ValueError(f"{what}: candidates must be absent synapses; some already exist")
        return c
    a, b = absent_pairs(pre, post, num_pre, num_post)
    if callable(probe):
        v = np.asarray(probe(a, b), np.float64)
        if v.shape != a.shape:
            raise ValueError(f"{what}: probe(pre, post) must return one value per pair ({a.size}), got {v.shape}")
        return Candidates(a, b, v)
    arr = np.asarray(probe, np.float64)
    if arr.shape != (num_pre, num_post):
        raise ValueError(f"{what}: a probe array must have shape (num_pre, num_post) = {(num_pre, num_post)}, "
                         f"got {arr.shape}")
    return Candidates(a, b, arr[a, b])
