"""Connectivity statistics of a synapse list ``pre[s] -> post[s]`` (integer indices; duplicated pairs are
separate synapses): in- and out-degrees, their summary, and turnover between two snapshots."""
from __future__ import annotations

import math

import numpy as np


def synapse_indices(name: str, values, limit: int) -> np.ndarray:
    """``values`` as a 1-D int64 index array, every entry in ``[0, limit)``; ``ValueError`` naming
    ``name`` otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.nonzero((arr < 0) | (arr >= limit))[0]
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {arr[bad[0]]} is out of range [0, {limit})")
    return arr


def degrees(pre, post, n_pre: int, n_post: int):
    """``(in_degree, out_degree)``: the number of afferent synapses of each of the ``n_post`` targets and
    of efferent synapses of each of the ``n_pre`` sources (int64; duplicates count)."""
    n_pre, n_post = int(n_pre), int(n_post)
    pre = synapse_indices("pre", pre, n_pre)
    post = synapse_indices("post", post, n_post)
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
    return np.bincount(post, minlength=n_post), np.bincount(pre, minlength=n_pre)


def degree_summary(in_degree, out_degree) -> dict:
    """Summary statistics (plain Python floats) of in- and out-degree arrays:
    ``{in,out}_degree_{mean,std,min,max}`` (NaN entries for empty arrays)."""
    out = {}
    for name, arr in (("in_degree", in_degree), ("out_degree", out_degree)):
        a = np.asarray(arr, dtype=np.float64)
        for stat, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
            out[f"{name}_{stat}"] = float(fn(a)) if a.size else float("nan")
    return out


def multiset_minus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keys of the multiset difference ``a - b``, each repeated by its surplus count (sorted)."""
    ua, ca = np.unique(a, return_counts=True)
    ub, cb = np.unique(b, return_counts=True)
    in_b = np.zeros(ua.size, dtype=np.int64)
    if ub.size:
        idx = np.minimum(np.searchsorted(ub, ua), ub.size - 1)
        hit = ub[idx] == ua
        in_b[hit] = cb[idx[hit]]
    surplus = ca - in_b
    keep = surplus > 0
    return np.repeat(ua[keep], surplus[keep])


def turnover(before, after, n_pre: int, n_post: int):
    """Synapses formed and eliminated between snapshots ``before = (pre, post)`` and ``after``:
    ``(formed_pre, formed_post, eliminated_pre, eliminated_post)``.

    Formed = multiset difference ``after - before`` of the ``(pre, post)`` pairs, eliminated =
    ``before - after`` (multiplicities counted: a pair with 1 synapse before and 3 after counts as 2
    formations).  A synapse eliminated and re-formed between the snapshots is invisible."""
    n_pre, n_post = int(n_pre), int(n_post)
    keys = []
    for what, (pre, post) in (("before", before), ("after", after)):
        pre = synapse_indices(f"{what} pre", pre, n_pre)
        post = synapse_indices(f"{what} post", post, n_post)
        if pre.shape != post.shape:
            raise ValueError(f"{what}: pre and post must have the same length, got {pre.size} and {post.size}")
        keys.append(pre * n_post + post)
    formed = multiset_minus(keys[1], keys[0])
    elim = multiset_minus(keys[0], keys[1])
    fpre, fpost = np.divmod(formed, n_post)
    epre, epost = np.divmod(elim, n_post)
    return fpre, fpost, epre, epost


def json_float(x) -> float | None:
    """``x`` as a float, or None when it is not finite (``json.dumps(..., allow_nan=False)`` works)."""
    x = float(x)
    return x if math.isfinite(x) else None
