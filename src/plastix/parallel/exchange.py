"""Spike exchange between the ranks of a partitioned simulation, and the block partition of neurons.

Every population's neurons are split over the ranks in contiguous blocks (:func:`block_bounds`).  After
each interval of ``L`` steps (at most the minimum delay + 1), :class:`SpikeExchange` gives every rank the
spikes every rank emitted in those steps, in global neuron ids: one ``Allgather`` of a fixed-size header
(a status word and each rank's spike count per population and step) and one ``Allgatherv`` of the ids
(int32).  Each rank therefore receives ``4 x (ranks x (1 + populations x L) + spikes)`` bytes per interval,
where ``spikes`` is the total of every rank.  The status word carries a failure on one rank to all of
them, so an error on one rank is raised on every rank instead of leaving the others waiting.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import PlastixError


class RankFailedError(PlastixError, RuntimeError):
    """Another rank failed during a collective step; raised on the ranks that did not fail themselves."""


def block_bounds(n: int, ranks: int) -> np.ndarray:
    """Rank ``r`` owns neurons ``[b[r], b[r + 1])`` of a population of ``n``: ``b[r] = r n // ranks``
    (contiguous blocks whose sizes differ by at most one)."""
    if ranks < 1 or n < ranks:
        raise ValueError(f"cannot split {n} neurons over {ranks} ranks: every rank needs at least one")
    return (np.arange(ranks + 1, dtype=np.int64) * n) // ranks


class SpikeExchange:
    """All-to-all exchange of per-step spike ids over ``comm`` for ``pops`` populations.

    Attributes ``exchange_s`` (seconds in the collectives and the reassembly), ``wait_s`` (with
    ``measure_wait``: seconds in a barrier before each exchange, i.e. waiting for the slowest rank, which
    ``exchange_s`` then excludes), ``bytes_received`` and ``exchanges`` accumulate over calls.
    """

    def __init__(self, comm, pops: int, *, measure_wait: bool = False):
        self.comm = comm
        self.ranks = comm.Get_size()
        self.rank = comm.Get_rank()
        self.pops = int(pops)
        self.measure_wait = measure_wait
        self.exchange_s = 0.0
        self.wait_s = 0.0
        self.bytes_received = 0
        self.exchanges = 0
        self.steps = 0

    def exchange(self, local: list[tuple[np.ndarray, np.ndarray]], steps: int,
                 failure: BaseException | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exchange one interval of ``steps`` steps.

        ``local[p]`` is ``(step_in_interval, global_id)`` of this rank's spikes of population ``p``, sorted
        by step then id.  Returns, per population, ``(counts[steps], ids)``: every rank's spikes of each
        step, in ascending id order, steps one after another.  ``failure``: this rank failed; every rank
        then raises (this rank ``failure`` itself, the others :class:`RankFailedError` naming it).
        """
        if self.measure_wait:
            t0 = time.perf_counter()
            self.comm.Barrier()
            self.wait_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        R, P, L = self.ranks, self.pops, int(steps)
        header = np.zeros(1 + P * L, np.int64)
        header[0] = 0 if failure is None else 1
        ids = []
        if failure is None:
            for p, (step, gid) in enumerate(local):
                header[1 + p * L:1 + (p + 1) * L] = np.bincount(step, minlength=L)[:L]
                ids.append(np.asarray(gid, np.int32))
        headers = np.empty((R, 1 + P * L), np.int64)
        self.comm.Allgather(header, headers)
        failed = np.nonzero(headers[:, 0])[0]
        if failed.size:
            self.exchange_s += time.perf_counter() - t0
            if failure is not None:
                raise failure
            raise RankFailedError(f"rank {int(failed[0])} of {R} failed during the run (its error is raised there); "
                                  "this rank stopped with it")
        counts = headers[:, 1:].reshape(R, P, L)          # [rank, pop, step]
        per_rank = counts.sum(axis=(1, 2))
        send = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        recv = np.empty(int(per_rank.sum()), np.int32)
        self.comm.Allgatherv(send, [recv, per_rank])
        out = _reorder(recv, counts)
        self.bytes_received += headers.nbytes + recv.nbytes
        self.exchanges += 1
        self.steps += L
        self.exchange_s += time.perf_counter() - t0
        return out


def _reorder(recv: np.ndarray, counts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``recv`` holds segments in (rank, pop, step) order with lengths ``counts[rank, pop, step]``; returns,
    per pop, (spikes per step, ids in (step, rank) order) -- ascending ids within a step, since rank r's
    ids lie below rank r + 1's."""
    R, P, L = counts.shape
    start = np.zeros(counts.size, np.int64)
    np.cumsum(counts.ravel()[:-1], out=start[1:])
    start = start.reshape(R, P, L).transpose(1, 2, 0).ravel()       # (pop, step, rank) order
    length = counts.transpose(1, 2, 0).ravel()
    out_start = np.zeros(length.size, np.int64)
    np.cumsum(length[:-1], out=out_start[1:])
    gather = np.repeat(start - out_start, length) + np.arange(int(length.sum()))
    ordered = recv[gather]
    per_pop = counts.sum(axis=0)                                      # [pop, step]
    bounds = np.concatenate([[0], np.cumsum(per_pop.sum(axis=1))])
    return [(per_pop[p], ordered[bounds[p]:bounds[p + 1]]) for p in range(P)]
