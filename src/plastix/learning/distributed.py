"""Data-parallel training over MPI ranks (mlGeNN's scheme: split each batch, sum the gradients), for e-prop /
DEEP R (:class:`DataParallel`) and the BPTT / SD-SNN trainer (:class:`BPTTDataParallel`); :class:`Shards`
is what both share.

Every rank holds the whole network.  Each mini-batch of ``B`` samples is cut into ``R`` contiguous shards
without overlap (rank ``r`` takes samples ``r B // R`` to ``(r + 1) B // R``; a rank may get none when
``B < R``); each rank runs the trial of its shard (``net.accumulate_gradients``), then one fixed-order sum
(:func:`plastix.parallel.sum_to_all`: rank 0 adds the ranks' arrays in rank order and broadcasts the bits)
gives every rank the same

* raw gradients: ``net.gradient_vector()`` (e-prop: every projection's existing synapses, row by row, the
  readout weights and the bias; BPTT: conv kernels and channel biases, fc synapses and biases);
* batch statistics: sample count, loss and correct predictions (e-prop also the spike rate and the batch
  mean of the running rates, the estimate ``rate`` that starts the next trial and drives the rate
  regulariser, each rank's mean weighted by its shard's size), and each gradient part's length (a rank
  whose synapse count went its own way is an error before mismatched gradients are summed);

after which the Adam step (divided by the global ``B``) and the structural updates (DEEP R's rewiring;
SD-SNN's structure steps, whose sparse probe the SD-SNN trainer sums over the ranks the same way) run on
every rank.  Their inputs are bitwise equal and their random numbers, where they have any, are
counter-based (keyed by seed, optimiser step and synapse slot), so every rank's weights and connectivity
stay **bitwise identical**; a CRC-32 of each projection's (BPTT: each layer's) connectivity and weights is
compared across ranks every epoch (``check``), and a mismatch raises
:class:`~plastix.parallel.RankDivergenceError`.

Against one process with the same global batch ``B``: every sample's trial is the same computation (a
trial's samples interact only through the parameters), so the results differ only in how the sums over
the batch are associated: one process adds the samples one after another; ``R`` ranks add them within
their shard, then the shards' sums in rank order.  With one rank the result is bitwise that of
``net.train_batch``.
"""
from __future__ import annotations

import time

import numpy as np

from ..parallel import RankDivergenceError, agree, check_comm, checksum, rank_of, size_of, sum_to_all
from .bptt import BPTTError, BPTTNetwork
from .eprop import EPropNetwork, TrainingError

#: Batch statistics reduced with the gradients (float64): count, sums over samples.
_STATS = ("samples", "loss", "correct", "rate_hz")


class Shards:
    """The collective half of data-parallel training on communicator ``comm`` (mpi4py, e.g. ``MPI.COMM_WORLD``),
    whatever the network: sharding, fixed-order sums, the gradient exchange, evaluation and agreement checks.

    Every rank must call the same methods in the same order with its own shard (:meth:`shard`).  Counts
    ``compute_s`` (trials, optimiser, rewiring), ``comm_s`` (the reductions and checks) and
    ``bytes_per_batch`` (what one rank sends per training batch); ``sync_timing=True`` puts a barrier before
    each reduction and counts the wait there (load imbalance) as ``wait_s`` instead of ``comm_s``.
    """

    #: The trainer's error class, for a batch that is empty on every rank.
    error: type = TrainingError

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

    def sum(self, local: np.ndarray) -> np.ndarray:
        """:func:`~plastix.parallel.sum_to_all` of ``local``, its time counted as ``comm_s``."""
        if self.sync_timing and self.size > 1:
            t = time.perf_counter()
            self.comm.Barrier()
            self.wait_s += time.perf_counter() - t
        t = time.perf_counter()
        total = sum_to_all(self.comm, local)
        self.comm_s += time.perf_counter() - t
        return total

    def exchange_gradients(self, net, stats: np.ndarray, empty: bool) -> np.ndarray:
        """After this rank's trial: every rank's raw gradients (``net.gradient_vector()``, zeros when this
        rank's shard was ``empty``) and ``stats`` summed in rank order, the sum put back into ``net``
        (``net.set_gradient_vector``; with one rank the trial's own gradients stay, untouched); returns the
        summed ``stats``, whose first entry must be the sample count (:attr:`error` when it is 0).

        The statistics go first, with each gradient part's length ``n`` and ``n**2``: the ranks' lengths
        are all equal exactly when ``R sum(n**2) == sum(n)**2``, so a rank whose connectivity went its own
        way (another synapse count) raises :class:`~plastix.parallel.RankDivergenceError` on every rank,
        naming the part, instead of mixing mismatched gradients."""
        parts = net.gradient_parts()
        pieces = [np.ravel(net.sim.get(g, v)) for g, v in parts]   # net.gradient_vector(), part by part
        grads = np.zeros(sum(p.size for p in pieces)) if empty else np.concatenate(pieces)
        sizes = np.array([p.size for p in pieces], np.float64)
        local = np.concatenate([stats, sizes, sizes * sizes])
        self.bytes_per_batch = grads.nbytes + local.nbytes
        total = self.sum(local)
        n, n2 = total[stats.size:stats.size + sizes.size], total[stats.size + sizes.size:]
        bad = [f"{g}.{v}" for (g, v), a, b in zip(parts, n, n2) if self.size * b != a * a]
        if bad:
            raise RankDivergenceError(f"ranks diverged: the ranks' raw gradients differ in length for {bad} "
                                      f"({self.size} ranks; a rank's connectivity went its own way)")
        grads = self.sum(grads)
        stats = total[:stats.size]
        if int(stats[0]) == 0:
            raise self.error("a training batch with no samples on any rank")
        if self.size > 1:
            net.set_gradient_vector(grads)
        return stats

    #: What ``net.evaluate_batch`` reports as means over the samples (summed weighted by shard size).
    means: tuple[str, ...] = ("loss",)

    def evaluate_batch(self, net, x, labels) -> dict:
        """This rank's shard of one evaluation batch; returns ``net.evaluate_batch``'s summary of the whole
        batch (correct counts summed exactly, :attr:`means` as sample-weighted means)."""
        t = time.perf_counter()
        n = int(np.asarray(labels).shape[0])
        local = np.zeros(2 + len(self.means))
        if n:
            r = net.evaluate_batch(x, labels)
            local[:] = (n, r["correct"], *(r[k] * n for k in self.means))
        self.compute_s += time.perf_counter() - t
        s = self.sum(local)
        total = int(s[0])
        if total == 0:
            raise self.error("an evaluation batch with no samples on any rank")
        return {"correct": int(s[1]), "samples": total, **{k: float(v / total) for k, v in zip(self.means, s[2:])}}

    def agree(self, fingerprint: dict, what: str) -> None:
        """Raise :class:`~plastix.parallel.RankDivergenceError` on every rank unless all ranks hold the same
        ``fingerprint`` (name -> checksum); ``what`` says what and when, for the message."""
        t = time.perf_counter()
        agree(self.comm, fingerprint, what)
        self.comm_s += time.perf_counter() - t


class DataParallel(Shards):
    """:class:`Shards` for an :class:`EPropNetwork`: the trial, reduction, Adam step and DEEP R of one
    mini-batch (:meth:`train_batch`) and the per-epoch check (:meth:`check`)."""

    means = ("loss", "rate_hz")

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
        self.compute_s += time.perf_counter() - t
        stats = self.exchange_gradients(net, stats, empty=n == 0)
        t = time.perf_counter()
        total = int(stats[0])
        if self.size > 1:   # one rank: the trial's own means, untouched (bitwise train_batch)
            net.rate = stats[len(_STATS):] / total
        rewiring = net.apply_gradients(total)
        self.compute_s += time.perf_counter() - t
        return {"loss": float(stats[1] / total), "correct": int(stats[2]), "samples": total,
                "rate_hz": float(stats[3] / total), "rewiring": rewiring}

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
        self.agree(self.fingerprint(net), f"the network state {where} (CRC-32 per projection of rowlen, "
                   "ind and w of its synapses, of the readout, and the optimiser step)")


class BPTTDataParallel(Shards):
    """:class:`Shards` for a :class:`~plastix.learning.bptt.BPTTNetwork` (the SD-SNN trainer's): one
    mini-batch's BPTT trial, reduction and Adam step (:meth:`train_batch`) and the per-epoch check
    (:meth:`check`).  Build the network with ``loss_batch`` = the global batch, so that its raw gradients
    are the one-process ones' terms."""

    error = BPTTError

    def train_batch(self, net: BPTTNetwork, x, labels) -> dict:
        """This rank's shard ``x`` [n, steps, inputs] / ``labels`` (n may be 0) of one mini-batch: trial,
        global reduction of the raw gradients with the sample count, summed loss and correct count, then
        the Adam step (divided by the global batch).  Returns :meth:`BPTTNetwork.train_batch`'s summary of
        the whole batch, identical on every rank."""
        t = time.perf_counter()
        labels = np.asarray(labels)
        n = int(labels.shape[0])
        stats = np.zeros(3)   # samples, summed loss, correct
        if n:
            out = net.accumulate_gradients(x, labels)
            stats[:] = (n, out["loss"].sum(), (np.argmax(out["scores"], axis=1) == labels).sum())
        self.compute_s += time.perf_counter() - t
        stats = self.exchange_gradients(net, stats, empty=n == 0)
        t = time.perf_counter()
        total = int(stats[0])
        net.apply_gradients(total)
        self.compute_s += time.perf_counter() - t
        return {"loss": float(stats[1] / total), "correct": int(stats[2]), "samples": total}

    @staticmethod
    def fingerprint(net: BPTTNetwork, extra: dict | None = None) -> dict[str, int]:
        """CRC-32 per trainable layer of its incoming projections' connectivity and weights (``row_length``,
        then ``ind`` and ``w`` of the existing synapses row by row), its parameters (a conv layer's kernel
        and channel biases, an fc / li layer's biases) and the arrays ``extra[layer]`` (e.g. the structural
        rules' state), and of the optimiser step."""
        sim, out = net.sim, {}
        for L in net.layers:
            if not L.trainable:
                continue
            parts = []
            for p, (_, post, _) in net.projections.items():
                if post != L.name:
                    continue
                r = sim.ragged(p, "w")
                m = np.arange(r["ind"].shape[1])[None, :] < r["row_length"][:, None]
                parts += [r["row_length"], r["ind"][m], r["w"][m]]
            parts.append(sim.get(f"{L.name}_param", "w") if L.kind == "conv" else sim.get(L.name, "bias"))
            out[L.name] = checksum(*parts, *(extra or {}).get(L.name, ()))
        out["optimiser step"] = net.opt_step
        return out

    def check(self, net: BPTTNetwork, where: str, extra: dict | None = None) -> None:
        """Raise :class:`~plastix.parallel.RankDivergenceError` on every rank unless all ranks hold the same
        :meth:`fingerprint` (``where``: when, for the message, e.g. ``"after epoch 2"``)."""
        self.agree(self.fingerprint(net, extra), f"the network state {where} (CRC-32 per layer of its synapses' "
                   "row_length, ind and w, its kernel or biases and its structural state, and the optimiser step)")
