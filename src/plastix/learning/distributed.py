"""Data-parallel e-prop / DEEP R training over MPI ranks (mlGeNN's scheme: split each batch, sum the gradients).

Every rank holds the whole network.  Each mini-batch of ``B`` samples is cut into ``R`` contiguous shards
without overlap (rank ``r`` takes samples ``r B // R`` to ``(r + 1) B // R``; a rank may get none when
``B < R``); each rank runs the e-prop trial of its shard (:meth:`EPropNetwork.accumulate_gradients`), then
one fixed-order sum (:func:`plastix.parallel.sum_to_all`: rank 0 adds the ranks' arrays in rank order and
broadcasts the bits) gives every rank the same

* raw gradients: :meth:`EPropNetwork.gradient_vector` (every projection's existing synapses, row by row,
  the readout weights and the bias);
* batch statistics: sample count, loss, correct predictions and spike rate, and the batch mean of the
  running rates (the estimate ``rate`` that starts the next trial and drives the rate regulariser), each
  rank's mean weighted by its shard's size;

after which the Adam step (divided by the global ``B``) and DEEP R's rewiring run on every rank.  Their
inputs are bitwise equal and their random numbers are counter-based (keyed by seed, optimiser step and
synapse slot), so every rank's weights and connectivity stay **bitwise identical**; a CRC-32 of each
projection's connectivity and weights (and of the readout) is compared across ranks every epoch
(:meth:`DataParallel.check`), and a mismatch raises :class:`~plastix.parallel.RankDivergenceError`.

Against one process with the same global batch ``B``: every sample's trial is the same computation (a
trial's samples interact only through the parameters), so the results differ only in how the sums over
the batch are associated: one process adds the samples one after another; ``R`` ranks add them within
their shard, then the shards' sums in rank order.  With one rank the result is bitwise that of
:meth:`EPropNetwork.train_batch`.
"""
from __future__ import annotations

import time

import numpy as np

from ..parallel import agree, check_comm, checksum, rank_of, size_of, sum_to_all
from .eprop import EPropNetwork, TrainingError

#: Batch statistics reduced with the gradients (float64): count, sums over samples.
_STATS = ("samples", "loss", "correct", "rate_hz")


class DataParallel:
    """The collective half of data-parallel training on communicator ``comm`` (mpi4py, e.g. ``MPI.COMM_WORLD``).

    Every rank must call the same methods in the same order with its own shard (:meth:`shard`).  Counts
    ``compute_s`` (trials, optimiser, rewiring), ``comm_s`` (the reductions and checks) and
    ``bytes_per_batch`` (what one rank sends per training batch); ``sync_timing=True`` puts a barrier before
    each reduction and counts the wait there (load imbalance) as ``wait_s`` instead of ``comm_s``.
    """

    def __init__(self, comm, *, sync_timing: bool = False):
        self.comm = check_comm(comm)
        self.rank = rank_of(comm)
        self.size = size_of(comm)
        self.sync_timing = bool(sync_timing)
        self.compute_s = self.comm_s = self.wait_s = 0.0
        self.bytes_per_batch = 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` samples (sizes differ by at most one; may be empty)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def _sum(self, local: np.ndarray) -> np.ndarray:
        if self.sync_timing and self.size > 1:
            t = time.perf_counter()
            self.comm.Barrier()
            self.wait_s += time.perf_counter() - t
        t = time.perf_counter()
        total = sum_to_all(self.comm, local)
        self.comm_s += time.perf_counter() - t
        return total

    # -- training --------------------------------------------------------------------------------------
    def train_batch(self, net: EPropNetwork, x, labels) -> dict:
        """This rank's shard ``x`` / ``labels`` (may be empty) of one mini-batch: trial, global reduction,
        optimiser step and rewiring.  Returns what :meth:`EPropNetwork.train_batch` returns, for the whole
        (global) batch; identical on every rank."""
        t = time.perf_counter()
        labels = np.asarray(labels)
        n = int(labels.shape[0])
        H = net.config.hidden_total
        stats = np.zeros(len(_STATS) + H)
        if n:
            out = net.accumulate_gradients(x, labels)
            pred = np.argmax(out["pi_sum"], axis=1)
            stats[:len(_STATS)] = (n, out["loss"].sum(), (pred == labels).sum(), out["rate_hz"].sum())
            stats[len(_STATS):] = net.rate * float(n)
        grads = net.gradient_vector()
        self.compute_s += time.perf_counter() - t
        self.bytes_per_batch = grads.nbytes + stats.nbytes
        grads = self._sum(grads)
        stats = self._sum(stats)
        t = time.perf_counter()
        total = int(stats[0])
        if total == 0:
            raise TrainingError("a training batch with no samples on any rank")
        if self.size > 1:   # one rank: the trial's own gradients and means, untouched (bitwise train_batch)
            net.set_gradient_vector(grads)
            net.rate = stats[len(_STATS):] / total
        rewiring = net.apply_gradients(total)
        self.compute_s += time.perf_counter() - t
        return {"loss": float(stats[1] / total), "correct": int(stats[2]), "samples": total,
                "rate_hz": float(stats[3] / total), "rewiring": rewiring}

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate_batch(self, net: EPropNetwork, x, labels) -> dict:
        """This rank's shard of one evaluation batch; returns :meth:`EPropNetwork.evaluate_batch`'s summary
        of the whole batch (correct counts summed exactly, loss and rate as sample-weighted means)."""
        t = time.perf_counter()
        n = int(np.asarray(labels).shape[0])
        local = np.zeros(len(_STATS))
        if n:
            r = net.evaluate_batch(x, labels)
            local[:] = (n, r["loss"] * n, r["correct"], r["rate_hz"] * n)
        self.compute_s += time.perf_counter() - t
        s = self._sum(local)
        total = int(s[0])
        if total == 0:
            raise TrainingError("an evaluation batch with no samples on any rank")
        return {"loss": float(s[1] / total), "correct": int(s[2]), "samples": total, "rate_hz": float(s[3] / total)}

    # -- agreement -------------------------------------------------------------------------------------
    @staticmethod
    def fingerprint(net: EPropNetwork) -> dict[str, int]:
        """CRC-32 per projection of its connectivity and weights (``rowlen``, then ``ind`` and ``w`` of the
        existing synapses row by row), of the readout (``w_out``, ``b_out``) and of the optimiser step."""
        out = {}
        for p in net.projections:
            a = net.arrays(p)
            m = np.arange(a["ind"].shape[1])[None, :] < a["rowlen"][:, None]
            out[p] = checksum(a["rowlen"], a["ind"][m], a["w"][m])
        out["readout"] = checksum(net.w_out, net.b_out)
        out["optimiser step"] = net.opt_step
        return out

    def check(self, net: EPropNetwork, where: str) -> None:
        """Raise :class:`~plastix.parallel.RankDivergenceError` on every rank unless all ranks hold the same
        :meth:`fingerprint` (``where``: when, for the message, e.g. ``"after epoch 2"``)."""
        t = time.perf_counter()
        agree(self.comm, self.fingerprint(net), f"the network state {where} (CRC-32 per projection of rowlen, "
              "ind and w of its synapses, of the readout, and the optimiser step)")
        self.comm_s += time.perf_counter() - t
