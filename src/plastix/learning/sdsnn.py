"""SD-SNN training: a BPTT classifier (:mod:`.bptt`) that prunes and regrows itself while it learns, with
the structural rules of :mod:`plastix.structural.sdsnn`, in the ``faithful`` mode (the authors' masks)
or the ``sparse`` mode (pruned synapses and neurons leave the ragged rows; training gets cheaper as the
network shrinks), or ``none`` (the unpruned baseline).

Per epoch (or every ``structure_every`` batches): train, then one structure step (the authors' order,
``../shared/SDSNN.md`` 2.6), then evaluate.  A conv layer's kernel is copied from the network's parameter
population into the rule's :class:`~plastix.structural.sdsnn.KernelArrays` before a step and tied back
after it; fc layers' storages read and write the simulation directly.

**The sparse probe.**  Absent synapses do not train, so regeneration scores them by the weight one
interval of training from 0 would give them (what the faithful mode's masked weights carry): Adam's
steps, ``-lr * interval * mean(g) / rms(g)`` from the gradients ``g`` of the last ``probe_batches``
training batches before a structure step that regrows, computed from those batches' tapes as a dense
product (fc: ``sum_t x(t)^T du(t + 1)``, ``B T n_pre n_post`` multiply-adds; conv: the correlation of the
input maps with ``du`` per kernel tap).  It is paid only in the probe window, only from the step where
regeneration starts.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..compile_clock import Stopwatch
from ..datasets.base import Batch
from ..structural.sdsnn import SDSNN, KernelArrays, sdsnn_variant
from ..structural.sdsnn.engine import SimulationArrays, SimulationBias, attach_sdsnn
from ..structural.sdsnn.layers import Outgoing
from .bptt import BPTTConfig, BPTTError, BPTTNetwork
from .distributed import BPTTDataParallel

MODES = ("none", "faithful", "sparse")
#: data set -> (SD-SNN variant of its constants, default layer spec)
DATASETS = {"digits": "mnist", "fashion_mnist": "mnist", "mnist": "mnist", "nmnist": "nmnist", "dvs_gesture": "dvs"}
DEFAULT_LAYERS = "conv15-pool2-conv40-pool2-fc300-fc10"
#: Batch size per data set when none is given: the authors' (100; DVS Gesture 4), but 25 for the 1,438
#: training images of scikit-learn's digits (100 leaves 15 optimiser steps per epoch).
DEFAULT_BATCH = {"digits": 25, "fashion_mnist": 100, "mnist": 100, "nmnist": 100, "dvs_gesture": 4}
FORMAT = 1


@dataclass
class SDSNNSettings:
    """One SD-SNN run.  ``dataset``: one of :data:`DATASETS`; ``mode``: none / faithful / sparse;
    ``batch_size``: None = :data:`DEFAULT_BATCH`; ``structure_every``: batches between structure steps
    (None: one per epoch, as the authors);
    ``schedule_scale``: :meth:`SDSNNConfig.scaled` factor of the development's durations (None: 1 per
    epoch, else ``batches_per_epoch / structure_every``, keeping the authors' timing in epochs; < that
    compresses the development into fewer steps); ``train_limit`` / ``test_limit``: use the first N
    samples of each split (CPU-sized runs); ``validation``: hold out this fraction of the training split
    and report on it instead of the test split (for choosing settings)."""

    dataset: str = "digits"
    mode: str = "sparse"
    epochs: int = 10
    batch_size: int | None = None
    structure_every: int | None = None
    schedule_scale: float | None = None
    layers: str | None = None
    loss: str = "mse_rate"
    lr: float = 1e-3
    steps: int | None = None
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    validation: float | None = None
    probe_batches: int = 4
    data_dir: str | None = None
    backend: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise BPTTError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.mode not in MODES:
            raise BPTTError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.batch_size is None:
            self.batch_size = DEFAULT_BATCH[self.dataset]
        for name in ("epochs", "batch_size", "probe_batches"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if name == "epochs" else 1):
                raise BPTTError(f"{name} must be an integer >= {0 if name == 'epochs' else 1}, got {v!r}")
        for name in ("structure_every", "train_limit", "test_limit", "steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise BPTTError(f"{name} must be a positive integer or None, got {v!r}")
        if self.schedule_scale is not None and not self.schedule_scale > 0:
            raise BPTTError(f"schedule_scale must be > 0 or None, got {self.schedule_scale!r}")
        if self.validation is not None and not 0.0 < self.validation < 1.0:
            raise BPTTError(f"validation must be a fraction in (0, 1) or None, got {self.validation!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_frames(s: SDSNNSettings):
    """The run's :class:`~plastix.datasets.FrameDataset` (images redrawn as Bernoulli frames every epoch;
    N-MNIST / DVS Gesture as event-count frames), limited and split as the settings say."""
    from .. import datasets as pxd

    steps = s.steps
    if s.dataset in ("digits", "fashion_mnist", "mnist"):
        opts = {"redraw": True, "steps": steps or 20, "seed": s.seed}
        if s.dataset == "digits":
            opts["encoding"] = "rate"
    elif s.dataset == "nmnist":
        opts = {"frames": steps or 20, "crop": 1}
    else:
        opts = {"frames": steps or 64}
    ds = pxd.load(s.dataset, data_dir=s.data_dir, **opts)
    if s.validation is not None:
        ds = ds.validation_split(s.validation)
    if s.train_limit is not None or s.test_limit is not None:
        tr = ds.train if s.train_limit is None else ds.train.subset(np.arange(min(s.train_limit, len(ds.train))))
        te = ds.test if s.test_limit is None else ds.test.subset(np.arange(min(s.test_limit, len(ds.test))))
        ds = pxd.FrameDataset(ds.name, tr, te, {**ds.info, "train_limit": s.train_limit,
                                                "test_limit": s.test_limit}, ds.dt)
    return ds


def kernel_probe(layer, x_tape, du_tape) -> np.ndarray:
    """The dense would-be gradient of conv ``layer``'s whole kernel [C_out, C_in, kh, kw] from one trial's
    tapes: the input maps ``x`` (the tape of the layer below) correlated with ``du`` one step later, per tap."""
    geo = layer.geometry
    co, ci, kh, kw = geo.kernel_shape
    (sh, sw), (ph, pw) = geo.stride, geo.padding
    _, H, W = layer.in_shape
    _, Ho, Wo = layer.out_shape
    B, R = x_tape.shape[:2]
    x = x_tape[:, :-1].reshape(B * (R - 1), ci, H, W).astype(np.float64)
    du = du_tape[:, 1:].reshape(B * (R - 1), co, Ho, Wo).astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    g = np.zeros((co, ci, kh, kw))
    for ky in range(kh):
        for kx in range(kw):
            win = xp[:, :, ky:ky + sh * (Ho - 1) + 1:sh, kx:kx + sw * (Wo - 1) + 1:sw]   # [n, ci, Ho, Wo]
            g[:, :, ky, kx] = np.tensordot(du, win, axes=([0, 2, 3], [0, 2, 3]))
    return g


class SDSNNTrainer:
    """Train an SD-SNN classifier per :class:`SDSNNSettings`; ``out_dir``: results, plots, checkpoint.

    ``comm``: an mpi4py communicator (e.g. ``MPI.COMM_WORLD``) to train data-parallel over its ranks
    (:class:`~.distributed.BPTTDataParallel`): each rank runs its contiguous shard of every global batch of
    ``batch_size`` and of every evaluation batch, the raw gradients and the sparse probe's gradients are
    summed in rank order, every rank takes the same Adam and structure steps, the ranks' states are compared
    after every epoch, and only rank 0 shows progress and writes ``out_dir`` (docs/mpi.md)."""

    def __init__(self, settings: SDSNNSettings, *, out_dir=None, progress: bool = True, dataset=None, comm=None):
        self.settings = s = settings
        self.out_dir = out_dir
        self.parallel = BPTTDataParallel(comm) if comm is not None else None
        self.ranks = 1 if self.parallel is None else self.parallel.size
        self.is_root = self.parallel is None or self.parallel.rank == 0   # shows progress, writes out_dir
        self.progress = progress and self.is_root
        self.probe_bytes = 0   # what one rank sends per probe batch (under MPI)
        self._clock = Stopwatch()
        self.dataset = load_frames(s) if dataset is None else dataset
        ds = self.dataset
        layers = s.layers or DEFAULT_LAYERS.replace("fc10", f"fc{ds.num_classes}")
        self.config = BPTTConfig(input_shape=ds.frame_shape, layers=layers, steps=ds.steps, loss=s.loss, lr=s.lr,
                                 seed=s.seed, dtype=s.dtype, backend=s.backend)
        if self.config.num_classes != ds.num_classes:
            raise BPTTError(f"the output layer has {self.config.num_classes} neurons but {ds.name!r} "
                            f"has {ds.num_classes} classes")
        self.batches_per_epoch = -(-len(ds.train) // s.batch_size)
        self.rules = self._rules()
        # under MPI a rank's simulation runs its shard; the gradients keep the global batch's scale
        self.net = BPTTNetwork(self.config, batch_size=-(-s.batch_size // self.ranks), attach=self._attach,
                               loss_batch=s.batch_size)
        self.sd = self._driver()
        self.structure_t = 0
        self.structure_enabled = True   # False: train without structure steps (e.g. to time the final network)
        self.results = {"format": FORMAT, "settings": s.to_dict(), "config": self.config.to_dict(),
                        "dataset": ds.summary(), "ranks": self.ranks, "epochs": [], "structure_steps": []}

    # -- SD-SNN wiring -----------------------------------------------------------------------------------
    def _rules(self):
        s = self.settings
        if s.mode == "none":
            return None
        cfg = sdsnn_variant(DATASETS[s.dataset])
        names = {L.name for L in self.config.stack}
        missing = sorted(set(cfg.layers) - names)
        if missing:
            raise BPTTError(f"SD-SNN's {DATASETS[s.dataset]!r} rules act on layers {sorted(cfg.layers)}, but the "
                            f"network {self.config.layers!r} has no {missing}")
        pruned = [n for n in cfg.layers if cfg.layers[n].prune]
        for n in pruned:   # a unit with fewer than K active inputs counts as pruned: K must fit the fan-in
            L = self.config.stack[[x.name for x in self.config.stack].index(n)]
            fan_in = (L.geometry.kernel_shape[1] * L.geometry.kernel_shape[2] * L.geometry.kernel_shape[3]
                      if L.kind == "conv" else L.in_size)
            if fan_in < cfg.layers[n].min_active:
                raise BPTTError(f"layer {n!r} has {fan_in} inputs per unit, fewer than SD-SNN's K = "
                                f"{cfg.layers[n].min_active} (min_active): every unit would count as pruned; "
                                "widen the layer below")
        rules = {}
        for n, rule in cfg.layers.items():   # the real unit counts, not the authors' hard-coded ones
            target = self.config.num_classes if pruned and n == pruned[-1] else None
            rules[n] = dataclasses.replace(rule, size=None, target_size=target)
        cfg = dataclasses.replace(cfg, layers=rules)
        if s.structure_every is None:
            scale = 1.0 if s.schedule_scale is None else s.schedule_scale
        else:
            scale = (self.batches_per_epoch / s.structure_every) if s.schedule_scale is None else s.schedule_scale
        return cfg.scaled(scale) if scale != 1.0 else cfg

    def _attach(self, network) -> None:
        if self.rules is None:
            return
        mode = self.settings.mode
        self._attached = {}
        for n, rule in self.rules.layers.items():
            if rule.kind == "fc" or mode == "sparse":
                self._attached[n] = attach_sdsnn(network, f"{n}_syn", mode)
        if mode == "sparse":   # dead units' outgoing synapses leave the next fc layer
            for i, L in enumerate(self.config.stack[:-1]):
                nxt = self.config.stack[i + 1]
                if L.name in self.rules.layers and L.kind == "fc" and nxt.name not in self._attached:
                    self._attached[nxt.name] = attach_sdsnn(network, f"{nxt.name}_syn", mode)

    def _storage(self, name: str):
        state, grow = self._attached[name]
        return SimulationArrays(self.net.sim, f"{name}_syn", state, grow, name=name)

    def _driver(self):
        if self.rules is None:
            return None
        sim, mode = self.net.sim, self.settings.mode
        storages, outgoing, biases = {}, {}, {}
        self._kernels = {}
        stack = self.config.stack
        for n, rule in self.rules.layers.items():
            L = self.net.layer(n)
            if rule.kind == "conv":
                kernel, _ = self.net.conv_parameters(n)
                self._kernels[n] = kernel
                storages[n] = KernelArrays(kernel, synapses=self._storage(n) if mode == "sparse" else None, name=n)
            else:
                storages[n] = self._storage(n)
                if mode == "sparse":
                    biases[n] = SimulationBias(sim, n, "bias")
                    i = stack.index(L)
                    if i + 1 < len(stack) and stack[i + 1].name in self._attached:
                        outgoing[n] = Outgoing(self._storage(stack[i + 1].name))
        return SDSNN(self.rules, storages, mode, outgoing=outgoing or None, biases=biases or None)

    def _freeze_dead(self) -> None:
        """Sparse mode: what the structure removed stays removed until the next step -- dead units' biases
        and masked kernel entries are held at 0 after every optimiser step (Adam's moments would move
        them otherwise)."""
        if self.sd is None or self.settings.mode != "sparse":
            return
        for n, layer in self.sd.layers.items():
            mask = layer.storage.vars.get("mask") if layer.rule.kind == "conv" else None
            self.net.hold_zero(n, entries=None if mask is None else mask == 0,
                               units=layer.dead if layer.dead.any() else None)

    # -- probes ---------------------------------------------------------------------------------------------
    def _regrows_next(self) -> bool:
        if self.sd is None or self.settings.mode != "sparse" or not self.structure_enabled:
            return False
        return self.structure_t > self.rules.schedule.prune_after and any(
            L.rule.regrow for L in self.sd.layers.values())

    def _accumulate_probe(self, empty: bool = False) -> None:
        """Add the last training trial's dense would-be gradients of the regrowing layers to the probe
        window's sums; under MPI summed over the ranks first (``empty``: this rank's shard had no samples,
        its tapes are stale), so every rank scores absent synapses alike."""
        net, grads = self.net, {}
        for n, L in self.sd.layers.items():
            if not L.rule.regrow:
                continue
            layer = net.layer(n)
            i = self.config.stack.index(layer)
            below = "input" if i == 0 else self.config.stack[i - 1].name
            graded = below == "input" or self.config.stack[i - 1].kind == "pool"
            x = net.sim.tape(below, "cnt" if graded else "s")
            du = net.sim.tape(n, "du")
            if layer.kind == "conv":
                g = kernel_probe(layer, x, du)
            else:
                B, R = x.shape[:2]
                g = x[:, :-1].reshape(B * (R - 1), -1).astype(np.float64).T @ du[:, 1:].reshape(B * (R - 1), -1)
            grads[n] = np.zeros_like(g) if empty else g
        if self.parallel is not None and grads:
            flat = np.concatenate([g.ravel() for g in grads.values()])
            self.probe_bytes = flat.nbytes
            flat, at = self.parallel.sum(flat), 0
            for n, g in grads.items():
                grads[n] = flat[at:at + g.size].reshape(g.shape)
                at += g.size
        for n, g in grads.items():
            acc = self._probe.setdefault(n, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + g, acc[1] + g * g, acc[2] + 1

    def _probes(self) -> dict:
        """The step Adam would take from 0 over one interval between structure steps: ``-lr * interval *
        mean(g) / rms(g)`` over the probe window's batch gradients (Adam's update is about ``lr`` per step
        whatever the gradient's scale, so the raw ``-lr * sum g`` would rank absent synapses far below the
        trained weights they compete with)."""
        s = self.settings
        interval = s.structure_every or self.batches_per_epoch
        out = {}
        for n, (g1, g2, k) in self._probe.items():
            out[n] = -self.net.lr * interval * g1 / np.sqrt(k * g2 + 1e-30)
        return out

    # -- structure -----------------------------------------------------------------------------------------
    def structure_step(self) -> dict:
        sw = Stopwatch()
        for n, k in self._kernels.items():
            k[...] = self.net.conv_parameters(n)[0]
        probes = self._probes() if self._regrows_next() else None
        report = self.sd.structure_step(self.structure_t, probes=probes)
        for n, k in self._kernels.items():
            self.net.set_conv_parameters(n, k)
        self._freeze_dead()
        self.structure_t += 1
        self._probe = {}
        comp = self.sd.compression()
        row = {"t": self.structure_t - 1, "wall_s": sw.run_s, "compression": comp["total"]["rate"],
               "layers": {n: {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                              for k, v in r.items()} for n, r in report.items()},
               "layer_compression": {n: c["rate"] for n, c in comp.items() if n != "total"}}
        self.results["structure_steps"].append(row)
        return row

    # -- epochs -----------------------------------------------------------------------------------------
    def _batches(self, split, *, shuffle: bool, seed: int, epoch: int):
        """``(x [n, steps, inputs], labels)`` per mini-batch of ``split`` at presentation ``epoch``; under
        MPI this rank's shard of each (only its samples' frames drawn: a sample's frames depend on its index,
        not on its batch, so it gets the spikes it gets in one process)."""
        s = self.settings
        if self.parallel is None:
            batches = split.batches(s.batch_size, shuffle=shuffle, seed=seed, epoch=epoch)
        else:
            batches = (Batch(mine, split.labels[mine], split.frames(mine, epoch=epoch))
                       for idx in split.batch_indices(s.batch_size, shuffle=shuffle, seed=seed)
                       for mine in (idx[self.parallel.shard(len(idx))],))
        for batch in batches:
            n = len(batch.labels)
            yield batch.spikes.reshape(n, self.config.steps, self.config.num_inputs), batch.labels

    def _train_batch(self, x, labels) -> dict:
        if self.parallel is None:
            return self.net.train_batch(x, labels)
        return self.parallel.train_batch(self.net, x, labels)

    def train_epoch(self, epoch: int) -> dict:
        s, net = self.settings, self.net
        net.lr = self.config.lr_at(epoch)
        sw = Stopwatch()
        structure_s = 0.0
        loss = correct = seen = 0.0
        self._probe = getattr(self, "_probe", {})
        batches = self._batches(self.dataset.train, shuffle=True, seed=s.seed * 100_003 + epoch, epoch=epoch)
        bar = tqdm(batches, total=self.batches_per_epoch, desc=f"epoch {epoch + 1}", disable=not self.progress,
                   leave=False)
        for b, (x, labels) in enumerate(bar):
            r = self._train_batch(x, labels)
            # structure steps every N batches counted over the whole run (or at each epoch's end); the
            # probe window is the last probe_batches batches before a step
            done = epoch * self.batches_per_epoch + b + 1
            if s.structure_every is None:
                step_now, to_step = b + 1 == self.batches_per_epoch, self.batches_per_epoch - b - 1
            else:
                step_now, to_step = done % s.structure_every == 0, (-done) % s.structure_every
            step_now = step_now and self.sd is not None and self.structure_enabled
            t, comm0 = time.perf_counter(), self.parallel.comm_s if self.parallel is not None else 0.0
            if self._regrows_next() and to_step < s.probe_batches:
                self._accumulate_probe(empty=len(labels) == 0)
            if step_now:
                structure_s += self.structure_step()["wall_s"]
            if self.parallel is not None:   # probe and structure step: compute, less the probe's reduction
                self.parallel.compute_s += time.perf_counter() - t - (self.parallel.comm_s - comm0)
            loss += r["loss"] * r["samples"]
            correct += r["correct"]
            seen += r["samples"]
            bar.set_postfix(loss=f"{loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        return {"train_loss": loss / seen, "train_accuracy": correct / seen, "train_s": sw.run_s - structure_s,
                "structure_s": structure_s, "train_compile_s": sw.compile_s}

    def evaluate(self) -> dict:
        loss = correct = seen = 0.0
        for x, labels in self._batches(self.dataset.test, shuffle=False, seed=0, epoch=0):
            r = (self.net.evaluate_batch(x, labels) if self.parallel is None
                 else self.parallel.evaluate_batch(self.net, x, labels))
            loss += r["loss"] * r["samples"]
            correct += r["correct"]
            seen += r["samples"]
        return {"loss": loss / seen, "accuracy": correct / seen}

    def alive_neurons(self) -> dict[str, int]:
        """Neurons (fc) / channels (conv) per prunable layer that are not pruned."""
        out = {}
        if self.sd is None:
            return {L.name: (L.out_shape[0] if L.kind == "conv" else L.size)
                    for L in self.config.stack if L.kind in ("conv", "fc")}
        for L in self.config.stack:
            if L.kind not in ("conv", "fc"):
                continue
            layer = self.sd.layers.get(L.name)
            units = L.out_shape[0] if L.kind == "conv" else L.size
            if layer is None or not layer.rule.prune:
                out[L.name] = units
            else:
                out[L.name] = int(units - layer.history.sum())
        return out

    def compression(self) -> dict:
        """Per prunable layer and ``total``: the fraction of weights removed, as measured right after the
        last structure step (in the faithful mode masked weights train again between steps, as the
        authors'; their figure is taken after the masking)."""
        if self.sd is None or not self.results["structure_steps"]:
            return {"total": 0.0}
        last = self.results["structure_steps"][-1]
        return {**last["layer_compression"], "total": last["compression"]}

    def structure_state(self) -> dict[str, tuple]:
        """Per layer with structural rules, the arrays of their state (driver counters, masks, dead units,
        dormant synapses' pairs, spine bounds, pruning rate), for the ranks' agreement check."""
        if self.sd is None:
            return {}
        out = {}
        for n, L in self.sd.layers.items():
            st = []
            for k, v in sorted(vars(L).items()):
                if k in _LAYER_REFS:
                    continue
                if isinstance(v, np.ndarray):
                    st.append(v)
                elif hasattr(v, "pre") and hasattr(v, "post"):   # dormant synapses: (pre, post) pairs
                    st += [v.pre, v.post]
            if isinstance(L.storage, KernelArrays):
                st += [L.storage.vars[k] for k in sorted(L.storage.vars)]
            else:
                st += list(L.storage.read(L.state_names()).values())
            out[n] = tuple(st) + (np.array([self.sd.p.get(n, 0.0), self.structure_t]),)
        return out

    def check_ranks(self, where: str) -> None:
        """Under MPI: :class:`~plastix.parallel.RankDivergenceError` on every rank unless all hold the same
        weights, connectivity and structural state (:meth:`BPTTDataParallel.check`)."""
        if self.parallel is not None:
            self.parallel.check(self.net, where, self.structure_state())

    def fit(self, *, resume: bool = False) -> dict:
        s = self.settings
        if resume:
            self.load_checkpoint()
            self.check_ranks("after loading the checkpoint")
        for epoch in range(len(self.results["epochs"]), s.epochs):
            sw = Stopwatch()
            tr = self.train_epoch(epoch)
            self.check_ranks(f"after training epoch {epoch + 1}")
            ev = self.evaluate()
            row = {"epoch": epoch + 1, **tr, "test_loss": ev["loss"], "test_accuracy": ev["accuracy"],
                   "lr": self.net.lr, "synapses": self.net.synapse_counts(), "neurons": self.alive_neurons(),
                   "compression": self.compression(), "epoch_s": tr["train_s"], "wall_s": sw.run_s,
                   "compile_s": sw.compile_s}
            if self.parallel is not None:   # this process's time in reductions and checks, and in the rest
                row["comm_s"], row["compute_s"] = self.parallel.comm_s, self.parallel.compute_s
                self.parallel.comm_s = self.parallel.compute_s = 0.0
            self.results["epochs"].append(row)
            if self.progress:
                tqdm.write(f"epoch {epoch + 1}/{s.epochs}: loss {tr['train_loss']:.4f} train "
                           f"{tr['train_accuracy']:.3f} test {ev['accuracy']:.3f} compression "
                           f"{row['compression']['total']:.3f} ({tr['train_s']:.1f} s)")
            if self.out_dir is not None and self.is_root:
                self.save_checkpoint()
                self.results["compile_s"] = self._clock.compile_s
                self.write_results()   # after every epoch: a run can be watched (and plotted) while it trains
        self.results["compile_s"] = self._clock.compile_s
        if self.out_dir is not None and self.is_root:
            self.write_results()
        return self.results

    def summary(self) -> dict:
        ep = self.results["epochs"]
        return {"dataset": self.settings.dataset, "mode": self.settings.mode, "layers": self.config.layers,
                "epochs": len(ep), "test_accuracy": ep[-1]["test_accuracy"] if ep else self.evaluate()["accuracy"],
                "compression": self.compression()["total"], "layer_compression": self.compression(),
                "neurons": self.alive_neurons(), "synapses": self.net.synapse_counts(),
                "epoch_s": [e["epoch_s"] for e in ep], "compile_s": self._clock.compile_s,
                "structure_steps": len(self.results["structure_steps"]), "ranks": self.ranks,
                # under MPI, rank 0's seconds per epoch in the reductions and checks, and in the rest
                **({"epoch_comm_s": [e["comm_s"] for e in ep], "epoch_compute_s": [e["compute_s"] for e in ep],
                    "reduce_bytes_per_batch": self.parallel.bytes_per_batch,
                    "probe_reduce_bytes_per_batch": self.probe_bytes} if self.ranks > 1 else {})}

    # -- persistence ----------------------------------------------------------------------------------------
    def _paths(self):
        return os.path.join(self.out_dir, "checkpoint.npz"), os.path.join(self.out_dir, "checkpoint_host.pkl")

    def save_checkpoint(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        sim_path, host_path = self._paths()
        self.net.sim.save(sim_path)
        host = {"format": FORMAT, "settings": self.settings.to_dict(), "results": self.results,
                "opt_step": self.net.opt_step, "lr": self.net.lr, "structure_t": self.structure_t, "ranks": self.ranks,
                "probe": getattr(self, "_probe", {}), "sd": _driver_state(self.sd)}
        with open(host_path + ".tmp", "wb") as f:
            pickle.dump(host, f)
        os.replace(host_path + ".tmp", host_path)

    def load_checkpoint(self) -> None:
        if self.out_dir is None:
            raise BPTTError("resume needs out_dir (where the checkpoint is)")
        sim_path, host_path = self._paths()
        if not (os.path.exists(sim_path) and os.path.exists(host_path)):
            raise BPTTError(f"no checkpoint to resume in {self.out_dir!r} (checkpoint.npz / checkpoint_host.pkl)")
        with open(host_path, "rb") as f:
            host = pickle.load(f)
        if host.get("format") != FORMAT:
            raise BPTTError(f"checkpoint format {host.get('format')} is not this version's {FORMAT}")
        same = {k: v for k, v in host["settings"].items() if k != "epochs"}
        mine = {k: v for k, v in self.settings.to_dict().items() if k != "epochs"}
        if same != mine:
            diff = sorted(k for k in mine if same.get(k) != mine[k])
            raise BPTTError(f"the checkpoint in {self.out_dir!r} was written with other settings ({diff})")
        if host.get("ranks", 1) != self.ranks:   # the simulation saved is rank 0's, of batch ceil(B / ranks)
            raise BPTTError(f"the checkpoint in {self.out_dir!r} was written by {host.get('ranks', 1)} rank(s); "
                            f"resume it with as many (this run has {self.ranks})")
        self.net.sim.load(sim_path)
        self.results = host["results"]
        self.net.opt_step, self.net.lr = host["opt_step"], host["lr"]
        self.structure_t, self._probe = host["structure_t"], host["probe"]
        _load_driver_state(self.sd, host["sd"])
        self._freeze_dead()
        for n, k in getattr(self, "_kernels", {}).items():
            k[...] = self.net.conv_parameters(n)[0]

    def write_results(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "results.json"), "w") as f:
            json.dump(_jsonable(self.results), f, indent=1)
        try:
            from .sdsnn_plots import plot_run

            plot_run(self.results, os.path.join(self.out_dir, "sdsnn.png"))
        except ImportError:
            pass


_LAYER_REFS = ("storage", "outgoing", "bias", "rule")


def _driver_state(sd) -> dict | None:
    """The structural driver's host state (counters, masks, dormant synapses, kernel-entry state), without
    its references into the simulation (which the simulation checkpoint holds)."""
    if sd is None:
        return None
    layers = {}
    for n, L in sd.layers.items():
        st = {k: v for k, v in vars(L).items() if k not in _LAYER_REFS}
        if isinstance(L.storage, KernelArrays):
            st["_kernel_vars"] = {k: v.copy() for k, v in L.storage.vars.items()}
        layers[n] = st
    return {"p": dict(sd.p), "next_t": sd.next_t, "history": sd.history, "layers": layers}


def _load_driver_state(sd, state) -> None:
    if sd is None or state is None:
        return
    sd.p, sd.next_t, sd.history = dict(state["p"]), state["next_t"], state["history"]
    for n, st in state["layers"].items():
        L = sd.layers[n]
        st = dict(st)
        kv = st.pop("_kernel_vars", None)
        for k, v in st.items():
            setattr(L, k, v)
        if kv is not None:
            L.storage.vars = kv


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def train_sdsnn(settings: SDSNNSettings, *, out_dir=None, progress: bool = True, resume: bool = False,
                comm=None) -> dict:
    """Train per ``settings`` (``comm``: data-parallel over its ranks, see :class:`SDSNNTrainer`); returns
    the JSON summary (see :meth:`SDSNNTrainer.summary`)."""
    t = SDSNNTrainer(settings, out_dir=out_dir, progress=progress, comm=comm)
    t.fit(resume=resume)
    out = t.summary()
    out["wall_s"] = time.perf_counter() - t._clock._t0
    return out


__all__ = ["SDSNNSettings", "SDSNNTrainer", "train_sdsnn", "load_frames", "MODES", "DATASETS"]
