"""The ``plastix bench rewire`` workload: a SET-style rewire of a large sparse projection (remove the
weakest fraction of each row, grow as many new non-duplicate targets per row) with a second per-synapse
array (a trace) that must travel with its synapse; an independent invariant check; and a vectorised
numpy implementation of the same rewire for reference."""
from __future__ import annotations

import numpy as np

from .. import structural
from ..errors import NetworkError
from ..model import connectivity as connect
from ..model import init, neurons
from ..model.network import Network
from ..model.specs import WeightUpdateModel


def _on_pre(s):
    add_to_post(s.w)  # noqa: F821


def weight_and_trace() -> WeightUpdateModel:
    """Static transmission with a second per-synapse variable ``trace`` (stands for any learning state)."""
    return WeightUpdateModel(name="weight_and_trace", vars={"w": 0.0, "trace": 0.0}, on_pre=_on_pre)


def build(pre: int, row_length: int, fraction: float, seed: int = 1) -> Network:
    if pre < 1 or not 1 <= row_length <= pre:
        raise NetworkError(f"need pre >= 1 and 1 <= row_length <= pre, got {pre} and {row_length}")
    if not 0.0 < fraction <= 1.0:
        raise NetworkError(f"fraction must be in (0, 1], got {fraction}")
    net = Network(dt=1.0, seed=seed)
    a = net.add_population("src", pre, neurons.lif())
    b = net.add_population("dst", pre, neurons.lif())
    # trace = the synapse's original slot within its row + 1: at most row_length, so exact in float32 at
    # any number of rows (a global slot id is not beyond 2**24 synapses); synapses never change rows
    slot_ids = np.tile(np.arange(1, row_length + 1, dtype=np.float64), pre)
    proj = net.add_projection("proj", a, b, connectivity=connect.FixedNumberPost(row_length),
                              weight_update=weight_and_trace(),
                              init={"w": init.Normal(0.0, 1.0), "trace": slot_ids}, row_stride=row_length)
    net.add_connectivity_update("set", proj, structural.set_rewire(fraction), var_refs={"weight": "w"})
    return net


def check_invariants(before: dict, after: dict, fraction: float, num_post: int) -> dict:
    """Independent check of one rewire.  ``before`` / ``after``: ragged ``ind``, ``row_length``, ``w``,
    ``trace`` [num_pre, K] as returned by ``Simulation.ragged`` (trace = original slot in the row + 1)."""
    ind0, w0 = before["ind"], before["w"]
    ind1, rl1, w1, tr1 = after["ind"], after["row_length"], after["w"], after["trace"]
    n_pre, k = ind0.shape
    n_remove = int(fraction * k)
    problems = []
    if not np.all(rl1 == k):
        problems.append("row lengths changed")
    if ind1.min() < 0 or ind1.max() >= num_post:
        problems.append("target out of range")
    srt = np.sort(ind1, axis=1)
    if np.any(srt[:, 1:] == srt[:, :-1]):
        problems.append("duplicate targets in a row")
    kept = tr1 != 0
    if not np.all(kept.sum(axis=1) == k - n_remove):
        problems.append("number of kept synapses per row is not K - floor(F K)")
    col = tr1[kept].astype(np.int64) - 1
    rows = np.nonzero(kept)[0]
    slot = rows * k + np.clip(col, 0, k - 1)
    if not (np.all((col >= 0) & (col < k)) and np.all(tr1[kept] == col + 1)
            and np.unique(slot).size == slot.size  # no synapse kept twice
            and np.all(ind0.reshape(-1)[slot] == ind1[kept]) and np.all(w0.reshape(-1)[slot] == w1[kept])):
        problems.append("a kept synapse lost its own target, weight or trace")
    if not np.all(w1[~kept] == 0):
        problems.append("new synapses are not zeroed")
    # the removed ones were the weakest: max |w| removed <= min |w| kept, per row
    was_kept = np.zeros(n_pre * k, bool)
    was_kept[slot] = True
    was_kept = was_kept.reshape(n_pre, k)
    absw = np.abs(w0)
    if n_remove and n_remove < k:
        max_removed = np.where(~was_kept, absw, -np.inf).max(axis=1)
        min_kept = np.where(was_kept, absw, np.inf).min(axis=1)
        if np.any(max_removed > min_kept):
            problems.append("a stronger synapse was removed while a weaker one was kept")
    return {"invariants_ok": not problems, "problems": problems}


def numpy_rewire(ind: np.ndarray, w: np.ndarray, trace: np.ndarray, fraction: float, num_post: int,
                 rng: np.random.Generator):
    """Vectorised numpy implementation of the same rewire (whole-array operations, no Python row loop).
    Returns new (ind, w, trace)."""
    n_pre, k = ind.shape
    n = int(fraction * k)
    order = np.argpartition(np.abs(w), n - 1, axis=1) if n else np.zeros((n_pre, 0), np.int64)
    keep_idx = np.sort(order[:, n:], axis=1)
    rows = np.arange(n_pre)[:, None]
    kept_ind, kept_w, kept_tr = ind[rows, keep_idx], w[rows, keep_idx], trace[rows, keep_idx]
    taken = np.zeros((n_pre, num_post), bool)
    taken[rows, kept_ind] = True
    new = np.full((n_pre, n), -1, np.int64)
    need = np.ones((n_pre, n), bool)
    while need.any():  # rejection sampling, vectorised over all rows
        cand = rng.integers(0, num_post, size=new.shape)
        for c in range(n):  # columns in order, so two new synapses of a row never collide
            r = np.nonzero(need[:, c] & ~taken[np.arange(n_pre), cand[:, c]])[0]
            new[r, c] = cand[r, c]
            taken[r, cand[r, c]] = True
            need[r, c] = False
    return (np.concatenate([kept_ind, new], axis=1), np.concatenate([kept_w, np.zeros((n_pre, n), w.dtype)], axis=1),
            np.concatenate([kept_tr, np.zeros((n_pre, n), trace.dtype)], axis=1))
