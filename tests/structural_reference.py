"""Plain-Python model of one ragged projection under structural plasticity, for tests/test_structural.py.

Independent of plastix: rows are Python lists of synapses, each synapse a dict ``{"j": target, <var>:
value, ...}``.  It implements the documented row-code semantics: ``s.remove()`` is a swap-remove (the
row's last synapse moves into the freed slot and is the next one visited), ``row.add`` appends and gives
every per-synapse variable not named its zero value.  Column views are recomputed from scratch: for each
target, the flat slot ids ``i * row_stride + k`` of its incoming synapses in ascending ``(i, k)`` order.
"""
from __future__ import annotations

import numpy as np


class RaggedReference:
    """``n_pre`` rows of at most ``stride`` synapses onto ``n_post`` targets, carrying ``var_names``."""

    def __init__(self, n_pre: int, n_post: int, stride: int, var_names):
        self.n_pre, self.n_post, self.stride = n_pre, n_post, stride
        self.var_names = tuple(var_names)
        self.rows: list[list[dict]] = [[] for _ in range(n_pre)]

    # -- edits -------------------------------------------------------------------------------------------
    def set_connectivity(self, pre, post, **values) -> None:
        """Replace every row by the synapse list (pre[s], post[s]) (input order kept within a row)."""
        self.rows = [[] for _ in range(self.n_pre)]
        pre, post = np.asarray(pre, np.int64), np.asarray(post, np.int64)
        for s in range(pre.size):
            syn = {"j": int(post[s])}
            for v in self.var_names:
                syn[v] = float(np.asarray(values[v])[s]) if v in values else 0.0
            self.rows[int(pre[s])].append(syn)
        assert all(len(r) <= self.stride for r in self.rows)

    def remove_where(self, pred) -> list[int]:
        """Swap-remove, row by row, every visited synapse with ``pred(i, syn)`` true (the synapse moved into
        a freed slot is visited next).  Returns the removals per row."""
        removed = []
        for i, row in enumerate(self.rows):
            k, n = 0, 0
            while k < len(row):
                if pred(i, row[k]):
                    row[k] = row[-1]
                    row.pop()
                    n += 1
                else:
                    k += 1
            removed.append(n)
        return removed

    def append(self, i: int, j: int, **values) -> bool:
        """``ok = row.add(j, **values)`` on row ``i``: False (nothing changes) when the row is full."""
        if not 0 <= j < self.n_post:
            raise ValueError(f"target {j} out of range")
        if len(self.rows[i]) >= self.stride:
            return False
        syn = {"j": int(j)}
        for v in self.var_names:
            syn[v] = float(values.get(v, 0.0))
        self.rows[i].append(syn)
        return True

    def update_all(self, var: str, fn) -> None:
        for row in self.rows:
            for syn in row:
                syn[var] = fn(syn[var])

    # -- views -------------------------------------------------------------------------------------------
    def row_lengths(self) -> np.ndarray:
        return np.array([len(r) for r in self.rows], np.int64)

    def targets(self, i: int) -> list[int]:
        return [s["j"] for s in self.rows[i]]

    def connectivity(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) of every synapse in row order."""
        pre = [i for i, r in enumerate(self.rows) for _ in r]
        post = [s["j"] for r in self.rows for s in r]
        return np.array(pre, np.int64), np.array(post, np.int64)

    def flat(self, var: str) -> np.ndarray:
        """Values of ``var`` in row order (the order ``Simulation.get`` returns)."""
        return np.array([s[var] for r in self.rows for s in r], np.float64)

    def columns(self) -> list[list[int]]:
        return columns_from_rows(
            [[s["j"] for s in r] for r in self.rows], self.stride, self.n_post)


def columns_from_rows(rows, stride: int, n_post: int) -> list[list[int]]:
    """Column view from scratch: per target, flat slot ids ``i * stride + k`` in ascending (i, k) order."""
    cols: list[list[int]] = [[] for _ in range(n_post)]
    for i, targets in enumerate(rows):
        for k, j in enumerate(targets):
            cols[int(j)].append(i * stride + k)
    return cols


def ragged_rows(ind: np.ndarray, rowlen: np.ndarray) -> list[list[int]]:
    return [ind[i, : rowlen[i]].tolist() for i in range(rowlen.shape[0])]


def assert_column_view(sim, proj: str) -> None:
    """The projection's column view (``q<b>_collen`` / ``q<b>_colsyn``) holds exactly the synapses of one
    rebuilt from its rows.  The order within a column is not part of the contract (serial row kernels
    maintain the view incrementally, the GPU fills it with atomics); postsynaptic learning updates each
    synapse independently."""
    q = sim.network.projections[proj]
    r = sim.ragged(proj)
    stride = r["ind"].shape[1]
    want = columns_from_rows(ragged_rows(r["ind"], r["row_length"]), stride, q.post.size)
    collen = sim.state[f"q{q.index}_collen"]
    colsyn = sim.state[f"q{q.index}_colsyn"]
    assert collen.tolist() == [len(c) for c in want], f"{proj}: column lengths differ from a rebuild"
    for j, c in enumerate(want):
        assert sorted(colsyn[j, : len(c)].tolist()) == sorted(c), f"{proj}: column of target {j} differs from a rebuild"
