"""Training loop: epochs of e-prop mini-batches, evaluation, results (JSON + plots) and exact checkpoints.

``out_dir`` receives ``results.json`` (per epoch: train loss and accuracy, test loss and accuracy, wall
seconds without compilation and the compilation seconds apart, synapses per projection, rewirings and
failed rewirings; per batch: rewirings; the final test accuracy; the whole run's wall and compilation
seconds), the plots of :mod:`.plots` and ``checkpoint/`` (the simulation state, readout and optimiser
state, and the results so far), written after every epoch.  ``resume=True`` continues from that
checkpoint exactly: mini-batch order is a function of (seed, epoch) and every random number of the
rewiring is keyed by the optimiser step, so a resumed run equals an uninterrupted one.

With ``comm`` (an mpi4py communicator) the training is data-parallel (:mod:`.distributed`): every rank
runs its shard of each mini-batch and of each evaluation batch, all ranks apply the same summed gradients,
their network states are compared every epoch, and only rank 0 shows progress and writes ``out_dir``
(every rank reads the checkpoint on ``resume``, so ``out_dir`` must be on a file system they share).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import MISSING, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..compile_clock import Stopwatch
from ..datasets.base import Batch, SpikeDataset, SpikeSplit
from .distributed import DataParallel
from .eprop import EPropConfig, EPropNetwork, TrainingError

CHECKPOINT = "checkpoint"
FORMAT = 2   # 2: the network on the engine (readout, bias, Adam moments in the simulation state)


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(seed) * 100003 + int(epoch)


def _defaults() -> dict:
    """EPropConfig's default settings, for checkpoints written before a setting existed."""
    return {f.name: f.default for f in fields(EPropConfig) if f.default is not MISSING}


class Trainer:
    """Trains an :class:`EPropNetwork` on a :class:`~plastix.datasets.SpikeDataset`.

    ``steps``: trial length in steps of ``config.dt`` (default: the data set's duration); spikes after
    it are an error unless ``clip=True``.  ``augment``: a transform of each training batch (see
    :mod:`plastix.datasets.augment`), drawing from a generator keyed by (seed, epoch, batch).
    ``comm``: an mpi4py communicator (e.g. ``MPI.COMM_WORLD``) to train data-parallel over its ranks, each
    running ``batch_size / ranks`` samples of every global batch of ``batch_size`` (None: one process).
    """

    def __init__(self, config: EPropConfig, dataset: SpikeDataset, *, batch_size: int = 32,
                 steps: int | None = None, clip: bool = False, out_dir=None, progress: bool = True,
                 augment=None, comm=None):
        if not isinstance(dataset, SpikeDataset):
            raise TrainingError(f"dataset must be a plastix.datasets.SpikeDataset, got {type(dataset).__name__}")
        if dataset.train.num_units != config.num_inputs:
            raise TrainingError(f"config.num_inputs = {config.num_inputs} but the data set has "
                                f"{dataset.train.num_units} input units")
        if dataset.train.num_classes > config.num_outputs:
            raise TrainingError(f"config.num_outputs = {config.num_outputs} but the data set has "
                                f"{dataset.train.num_classes} classes")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise TrainingError(f"batch_size must be a positive integer, got {batch_size!r}")
        if augment is not None and not (callable(augment) and hasattr(augment, "to_dict")):
            raise TrainingError(f"augment must be a plastix.datasets.augment transform, got {augment!r}")
        self.augment = augment
        self.config = config
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.steps = int(steps) if steps is not None else dataset.train.default_steps(config.dt)
        if self.steps < 1:
            raise TrainingError(f"steps must be >= 1, got {self.steps}")
        self.clip = clip
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.parallel = DataParallel(comm) if comm is not None else None
        self.ranks = self.parallel.size if self.parallel is not None else 1
        self.is_root = self.parallel is None or self.parallel.rank == 0   # shows progress, writes out_dir
        self.progress = progress and self.is_root
        self.max_batches: int | None = None   # benchmarks: cut epochs short
        self._clock = Stopwatch()   # this process's compilation, from building the network on
        self.net = EPropNetwork(config, batch_size=self._local_batch())
        self.results = self._fresh_results()

    def _local_batch(self) -> int:
        """Samples this process runs per trial: its shard of a global batch (all of it in one process)."""
        return -(-self.batch_size // self.ranks)

    def _fresh_results(self) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(), "dataset": self.dataset.summary(),
                "batch_size": self.batch_size, "ranks": self.ranks, "steps": self.steps,
                "augment": self._augment_desc(),
                "synapses_initial": self.net.synapse_counts(), "capacity": self.net.capacity(),
                "epochs": [], "rewirings_per_batch": {p: [] for p in self.net.rewired},
                "failed_per_batch": {p: [] for p in self.net.rewired}}

    def _augment_desc(self):
        return self.augment.to_dict() if self.augment is not None else None

    # -- data ------------------------------------------------------------------------------------------
    def _batches(self, split: SpikeSplit, *, shuffle: bool, seed: int, whole: bool = False):
        """Dense mini-batches; under MPI this rank's shard of each (only its samples made dense) unless
        ``whole``."""
        if self.parallel is None or whole:
            yield from split.batches(self.batch_size, shuffle=shuffle, seed=seed, dense=True, dt=self.config.dt,
                                     steps=self.steps, clip=self.clip)
            return
        for batch in split.batches(self.batch_size, shuffle=shuffle, seed=seed):
            idx = batch.indices[self.parallel.shard(len(batch.indices))]
            yield Batch(idx, split.labels[idx], split.to_dense(self.config.dt, self.steps, clip=self.clip, indices=idx))

    def _train_batch(self, spikes, labels) -> dict:
        if self.parallel is None:
            return self.net.train_batch(spikes, labels)
        return self.parallel.train_batch(self.net, spikes, labels)

    # -- epochs ----------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training split (shuffled by seed and epoch), at learning rate
        ``lr * lr_decay ** epoch``.  ``train_wall_s`` excludes the compilation done during the epoch
        (kernels compile at their first call), which is ``train_compile_s``."""
        sw = Stopwatch()
        self.net.lr_scale = self.config.lr_decay ** epoch
        loss = correct = seen = 0.0
        rewired = {p: 0 for p in self.net.rewired}
        failed = {p: 0 for p in self.net.rewired}
        n_batches = -(-len(self.dataset.train) // self.batch_size)
        if self.max_batches is not None:
            n_batches = min(n_batches, self.max_batches)
        # the augmentation draws for the whole batch: under MPI every rank augments it all, then takes its shard
        batches = self._batches(self.dataset.train, shuffle=True, seed=_epoch_seed(self.config.seed, epoch),
                                whole=self.augment is not None)
        bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch + 1}", disable=not self.progress, leave=False)
        for b_index, batch in enumerate(bar):
            if b_index >= n_batches:
                break
            spikes, labels = batch.spikes, batch.labels
            if self.augment is not None:  # its own stream: the batch order's is untouched
                spikes = self.augment(spikes, np.random.default_rng([self.config.seed, epoch, b_index, 0xA6]))
                if self.parallel is not None:
                    cut = self.parallel.shard(len(labels))
                    spikes, labels = spikes[cut], labels[cut]
            r = self._train_batch(spikes, labels)
            loss += r["loss"] * r["samples"]
            correct += r["correct"]
            seen += r["samples"]
            for p, st in r["rewiring"].items():
                rewired[p] += st["removed"]
                failed[p] += st["failed"]
                self.results["rewirings_per_batch"][p].append(st["removed"])
                self.results["failed_per_batch"][p].append(st["failed"])
            bar.set_postfix(loss=f"{loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        return {"train_loss": loss / seen, "train_accuracy": correct / seen, "train_wall_s": sw.run_s,
                "train_compile_s": sw.compile_s, "rewirings": rewired, "failed_rewirings": failed}

    def evaluate(self, split: SpikeSplit | None = None) -> dict:
        """Loss and accuracy on ``split`` (default: the test split), in file order."""
        split = self.dataset.test if split is None else split
        loss = correct = seen = 0.0
        rate = 0.0
        for batch in self._batches(split, shuffle=False, seed=0):
            r = (self.net.evaluate_batch(batch.spikes, batch.labels) if self.parallel is None
                 else self.parallel.evaluate_batch(self.net, batch.spikes, batch.labels))
            loss += r["loss"] * r["samples"]
            correct += r["correct"]
            rate += r["rate_hz"] * r["samples"]
            seen += r["samples"]
        return {"loss": loss / seen, "accuracy": correct / seen, "rate_hz": rate / seen}

    def fit(self, epochs: int, *, resume: bool = False) -> dict:
        """Train until ``epochs`` epochs are done (counting those of a resumed checkpoint); returns the results.

        Per epoch, ``wall_s`` is the epoch's wall time (training and evaluation) less the compilation done
        during it, which is ``compile_s``; the results' ``wall_s`` is the whole run's wall time, compilation
        included, and their ``compile_s`` all compilation of this process since the trainer was made."""
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise TrainingError(f"epochs must be a non-negative integer, got {epochs!r}")
        if resume:
            self.load_checkpoint()
            self.results["ranks"] = self.ranks   # may differ from the interrupted run's
            if self.parallel is not None:   # every rank read the same files?
                self.parallel.check(self.net, "after loading the checkpoint")
        t_start = time.perf_counter() - sum(e["wall_s"] + e.get("compile_s", 0.0) for e in self.results["epochs"])
        for epoch in range(len(self.results["epochs"]), epochs):
            sw = Stopwatch()
            tr = self.train_epoch(epoch)
            if self.parallel is not None:
                self.parallel.check(self.net, f"after training epoch {epoch + 1}")
            ev = self.evaluate()
            row = {"epoch": epoch + 1, **tr, "test_loss": ev["loss"], "test_accuracy": ev["accuracy"],
                   "test_rate_hz": ev["rate_hz"], "synapses": self.net.synapse_counts(),
                   "wall_s": sw.run_s, "compile_s": sw.compile_s}
            if self.parallel is not None:   # this process's time in reductions and checks, and in the rest
                row["comm_s"], row["compute_s"] = self.parallel.comm_s, self.parallel.compute_s
                self.parallel.comm_s = self.parallel.compute_s = 0.0
            self.results["epochs"].append(row)
            if self.progress:
                tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {tr['train_loss']:.3f} train {tr['train_accuracy']:.3f} "
                           f"test {ev['accuracy']:.3f} ({row['wall_s']:.1f} s)")
            if self.out_dir is not None and self.is_root:
                self.save_checkpoint()
        self.results["final_test_accuracy"] = (self.results["epochs"][-1]["test_accuracy"]
                                               if self.results["epochs"] else self.evaluate()["accuracy"])
        self.results["synapses_final"] = self.net.synapse_counts()
        self.results["wall_s"] = time.perf_counter() - t_start
        self.results["compile_s"] = self._clock.compile_s
        if self.out_dir is not None and self.is_root:
            self.write_results()
        return self.results

    # -- output ----------------------------------------------------------------------------------------
    def write_results(self) -> None:
        from .plots import plot_training

        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "results.json", "w") as f:
            json.dump(self.results, f, indent=1)
        plot_training(self.results, self.out_dir)

    def save_checkpoint(self, directory=None) -> Path:
        """Write the complete training state to ``directory`` (default ``out_dir/checkpoint``)."""
        d = Path(directory) if directory is not None else self._checkpoint_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.net.sim.save(d / "simulation.npz.tmp")
        with open(d / "trainer.npz.tmp", "wb") as f:
            np.savez(f, **self.net.state_arrays())
        with open(d / "meta.json.tmp", "w") as f:
            json.dump({"format": FORMAT, "config": self.config.to_dict(), "batch_size": self.batch_size,
                       "steps": self.steps, "augment": self._augment_desc(), "results": self.results}, f)
        for name in ("simulation.npz", "trainer.npz", "meta.json"):  # all three replaced together
            os.replace(d / f"{name}.tmp", d / name)
        return d

    def _checkpoint_dir(self) -> Path:
        if self.out_dir is None:
            raise TrainingError("no out_dir: give a directory to save or resume checkpoints")
        return self.out_dir / CHECKPOINT

    def load_checkpoint(self, directory=None) -> None:
        """Restore the state written by :meth:`save_checkpoint` (same config, batch size and steps)."""
        d = Path(directory) if directory is not None else self._checkpoint_dir()
        if not (d / "meta.json").exists():
            raise TrainingError(f"no checkpoint to resume from in {d} (expected meta.json, simulation.npz, "
                                "trainer.npz)")
        with open(d / "meta.json") as f:
            meta = json.load(f)
        if meta.get("format") != FORMAT:
            raise TrainingError(f"{d}: checkpoint format {meta.get('format')} is not supported ({FORMAT})")
        if isinstance(meta.get("config"), dict):   # settings added since the checkpoint take their defaults
            meta["config"] = {**_defaults(), **meta["config"]}
        for key, mine in (("config", self.config.to_dict()), ("batch_size", self.batch_size), ("steps", self.steps),
                          ("augment", self._augment_desc())):
            if meta.get(key) != mine:
                raise TrainingError(f"{d}: the checkpoint was written with a different {key} ({meta.get(key)!r}, "
                                    f"now {mine!r}); resume with the same settings")
        self.net.sim.load(d / "simulation.npz")
        with np.load(d / "trainer.npz") as data:
            self.net.load_state_arrays(data)
        self.results = meta["results"]


def load_model(directory) -> EPropNetwork:
    """The trained network saved in ``directory`` (a training ``out_dir`` or its ``checkpoint`` folder),
    ready for :meth:`EPropNetwork.predict_scores` / :func:`classify`."""
    d = Path(directory)
    if (d / CHECKPOINT / "meta.json").exists():
        d = d / CHECKPOINT
    if not (d / "meta.json").exists():
        raise TrainingError(f"no trained model in {directory} (expected {CHECKPOINT}/meta.json)")
    with open(d / "meta.json") as f:
        meta = json.load(f)
    net = EPropNetwork(EPropConfig.from_dict({**_defaults(), **meta["config"]}), batch_size=meta["batch_size"])
    net.sim.load(d / "simulation.npz")
    with np.load(d / "trainer.npz") as data:
        net.load_state_arrays(data)
    return net


def classify(net: EPropNetwork, spikes, batch_size: int = 256) -> np.ndarray:
    """Predicted class of every sample of ``spikes`` ([samples, steps, inputs] counts, or a
    :class:`SpikeSplit`, binned at the network's dt)."""
    if isinstance(spikes, SpikeSplit):
        spikes = spikes.to_dense(net.config.dt)
    spikes = np.asarray(spikes)
    out = [np.argmax(net.predict_scores(spikes[i:i + batch_size]), axis=1) for i in range(0, len(spikes), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)
