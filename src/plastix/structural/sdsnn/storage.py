"""Where a layer's synapses and their per-synapse state live: plain numpy ragged arrays
(:class:`RaggedArrays`, for host use and tests) or a kernel tensor (:class:`KernelArrays`, conv layers).
:mod:`.engine` adds the same interface over a running :class:`~plastix.Simulation`.

The interface every storage offers (values are *flat*: one entry per existing synapse, in row order --
row 0's slots ``0..row_length[0]-1``, then row 1's, ... -- the order ``Simulation.get`` uses):

* ``num_pre``, ``num_post``; ``pairs()`` -> ``(pre, post)`` int64 of every existing synapse;
* ``read(names)`` -> dict of flat arrays; ``write(values)`` writes flat arrays back;
* ``remove(flag)`` removes the synapses where ``flag`` is True (rows are compacted, every per-synapse
  array moves with its synapse), returns the number removed;
* ``add(pre, post, values)`` appends synapses (per-synapse values not given start at 0); a synapse that
  does not fit in its row raises :class:`~plastix.errors.CapacityError` naming the rows, before anything
  is written.
"""
from __future__ import annotations

import numpy as np

from ...errors import CapacityError


def valid_slots(row_length: np.ndarray, stride: int) -> np.ndarray:
    """``[num_pre, stride]`` bool, True at the slots that hold a synapse."""
    return np.arange(stride)[None, :] < np.asarray(row_length)[:, None]


def check_room(pre: np.ndarray, row_length: np.ndarray, stride: int, what: str) -> None:
    """Raise :class:`CapacityError` if adding one synapse per entry of ``pre`` overflows a row."""
    need = np.asarray(row_length, np.int64) + np.bincount(pre, minlength=row_length.size)[:row_length.size]
    over = np.nonzero(need > stride)[0]
    if over.size:
        rows = ", ".join(str(int(r)) for r in over[:8]) + (" ..." if over.size > 8 else "")
        raise CapacityError(f"{what}: regrowing {int(need[over].sum() - stride * over.size)} synapses does not fit: "
                            f"{over.size} rows would exceed row_stride {stride} (rows {rows}); nothing was added. "
                            "Give the projection more headroom (row_stride) or lower the regrowth")


def check_absent(pre: np.ndarray, post: np.ndarray, ex_pre: np.ndarray, ex_post: np.ndarray, num_post: int,
                 what: str) -> None:
    """Raise ``ValueError`` if a new (pre, post) pair repeats or already exists."""
    new = pre.astype(np.int64) * num_post + post
    if np.unique(new).size != new.size:
        raise ValueError(f"{what}: the synapses to add contain duplicate (pre, post) pairs")
    hit = np.isin(new, ex_pre.astype(np.int64) * num_post + ex_post)
    if hit.any():
        k = int(np.argmax(hit))
        raise ValueError(f"{what}: synapse ({int(pre[k])}, {int(post[k])}) already exists; "
                         "only absent pairs can be added")


class RaggedArrays:
    """A projection's ragged arrays held as numpy arrays (modified in place).

    Parameters
    ----------
    ind : int array [num_pre, stride]
        Postsynaptic index per slot; only the first ``row_length[i]`` slots of row ``i`` exist.
    row_length : int array [num_pre]
    num_post : int
    vars : dict name -> array [num_pre, stride]
        Every per-synapse variable (weight, spine state, optimiser moments, ...); all move with their
        synapse when rows are compacted.  Missing names are created (zeros) on first :meth:`write`.
    """

    def __init__(self, ind, row_length, num_post: int, vars: dict | None = None, name: str = "layer"):
        ind = np.asarray(ind)
        row_length = np.asarray(row_length)
        if ind.ndim != 2:
            raise ValueError(f"{name}: ind must be [num_pre, stride], got shape {ind.shape}")
        if row_length.shape != (ind.shape[0],):
            raise ValueError(f"{name}: row_length must have shape ({ind.shape[0]},), got {row_length.shape}")
        if (row_length < 0).any() or (row_length > ind.shape[1]).any():
            raise ValueError(f"{name}: row_length must be in [0, stride={ind.shape[1]}]")
        valid = valid_slots(row_length, ind.shape[1])
        if valid.any() and (ind[valid].min() < 0 or ind[valid].max() >= num_post):
            raise ValueError(f"{name}: ind must be in [0, num_post={num_post}) at existing slots")
        self.ind, self.row_length, self.num_post, self.name = ind, row_length, int(num_post), name
        self.vars = {}
        for k, v in (vars or {}).items():
            v = np.asarray(v)
            if v.shape != ind.shape:
                raise ValueError(f"{name}: per-synapse variable {k!r} must have shape {ind.shape}, got {v.shape}")
            self.vars[k] = v

    @property
    def num_pre(self) -> int:
        return self.ind.shape[0]

    @property
    def stride(self) -> int:
        return self.ind.shape[1]

    def valid(self) -> np.ndarray:
        return valid_slots(self.row_length, self.stride)

    def var_names(self) -> list[str]:
        return list(self.vars)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        v = self.valid()
        return np.nonzero(v)[0].astype(np.int64), self.ind[v].astype(np.int64)

    def read(self, names) -> dict[str, np.ndarray]:
        v = self.valid()
        missing = [n for n in names if n not in self.vars]
        if missing:
            raise KeyError(f"{self.name}: no per-synapse variable {missing}; known: {sorted(self.vars)}")
        return {n: self.vars[n][v] for n in names}

    def write(self, values: dict) -> None:
        v = self.valid()
        n = int(v.sum())
        for k, a in values.items():
            a = np.asarray(a)
            if a.shape != (n,):
                raise ValueError(f"{self.name}: {k!r} must have one value per synapse ({n}), got shape {a.shape}")
            if k not in self.vars:
                self.vars[k] = np.zeros(self.ind.shape, a.dtype)
            self.vars[k][v] = a

    def remove(self, flag) -> int:
        """Remove flagged synapses, compacting each row (the survivors keep their order)."""
        v = self.valid()
        flag = np.asarray(flag, bool)
        if flag.shape != (int(v.sum()),):
            raise ValueError(f"{self.name}: flag must have one entry per synapse ({int(v.sum())}), got {flag.shape}")
        keep = np.zeros_like(v)
        keep[v] = ~flag
        new_len = keep.sum(axis=1)
        new_valid = valid_slots(new_len, self.stride)
        for arr in [self.ind, *self.vars.values()]:
            kept = arr[keep]
            arr[...] = 0
            arr[new_valid] = kept
        self.row_length[:] = new_len
        return int(flag.sum())

    def add(self, pre, post, values: dict | None = None) -> None:
        pre, post = np.asarray(pre, np.int64), np.asarray(post, np.int64)
        if pre.shape != post.shape or pre.ndim != 1:
            raise ValueError(f"{self.name}: pre and post must be 1-d arrays of equal length")
        if pre.size == 0:
            return
        if pre.min() < 0 or pre.max() >= self.num_pre or post.min() < 0 or post.max() >= self.num_post:
            raise ValueError(f"{self.name}: pre must be in [0, {self.num_pre}) and post in [0, {self.num_post})")
        check_absent(pre, post, *self.pairs(), self.num_post, self.name)
        check_room(pre, self.row_length, self.stride, self.name)
        order = np.argsort(pre, kind="stable")
        pre_s = pre[order]
        starts = np.searchsorted(pre_s, pre_s, side="left")
        slot = self.row_length[pre_s].astype(np.int64) + np.arange(pre_s.size) - starts
        self.ind[pre_s, slot] = post[order]
        for k, arr in self.vars.items():
            arr[pre_s, slot] = 0
        for k, a in (values or {}).items():
            a = np.broadcast_to(np.asarray(a), pre.shape)
            if k not in self.vars:
                self.vars[k] = np.zeros(self.ind.shape, a.dtype)
            self.vars[k][pre_s, slot] = a[order]
        self.row_length[:] = self.row_length + np.bincount(pre, minlength=self.num_pre).astype(self.row_length.dtype)


class KernelArrays:
    """A conv layer's shared kernel ``[c_out, c_in, kh, kw]`` and its per-entry state (in place).

    Every kernel entry is an element of the layer; entries of pruned filters keep existing (the kernel is
    dense) and are masked.  ``synapses`` (optional, sparse mode): the conv projection's storage, with a
    per-synapse int variable ``kidx`` (flat index into the kernel) -- its synapses of masked entries are
    removed from the rows, and restored when their kernel regrows.
    """

    def __init__(self, kernel: np.ndarray, synapses=None, kidx: str = "kidx", name: str = "conv"):
        kernel = np.asarray(kernel)
        if kernel.ndim != 4:
            raise ValueError(f"{name}: kernel must be [c_out, c_in, kh, kw], got shape {kernel.shape}")
        self.kernel, self.synapses, self.kidx, self.name = kernel, synapses, kidx, name
        self.vars: dict[str, np.ndarray] = {}
        if synapses is not None:
            k = synapses.read([kidx])[kidx]
            if k.size and (k.min() < 0 or k.max() >= kernel.size):
                raise ValueError(f"{name}: per-synapse {kidx!r} must be in [0, {kernel.size})")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.kernel.shape

    def read(self, names) -> dict[str, np.ndarray]:
        out = {}
        for n in names:
            out[n] = self.kernel.reshape(-1).copy() if n == "w" else self.vars[n].copy()
        return out

    def write(self, values: dict) -> None:
        for k, a in values.items():
            a = np.asarray(a)
            if a.shape != (self.kernel.size,):
                raise ValueError(f"{self.name}: {k!r} must have one value per kernel entry ({self.kernel.size})")
            if k == "w":
                self.kernel.reshape(-1)[:] = a
            else:
                self.vars[k] = a.copy()
