#!/usr/bin/env python3
"""PyTorch surrogate-gradient BPTT of the network `plastix train` trains with e-prop (the issue 14 baseline).

What a PyTorch user would write instead of plastix: the same spoken-digit data, loaded through
plastix.datasets with the options of `plastix train` (182 spike inputs, 92 steps of 1 ms), the same
network (182 inputs -> 256 recurrent LIF -> 10 leaky readouts with bias), the same loss (per-step softmax
cross-entropy summed over the trial, mean over the batch), Adam, batch 32, dense weights, trained by
backpropagation through time with autograd.

Neuron model, as plastix's e-prop LIF (src/plastix/learning/eprop.py EPropConfig defaults, dt 1 ms):

* ``v(t) = alpha v(t-1) + W_in x(t) + W_rec z(t-1) - v_th z(t-1)``, alpha = exp(-dt / 20 ms), v_th 0.6,
  subtractive reset, no self-connections in W_rec;
* ``z(t) = H(v(t) - v_th)`` unless refractory: 5 steps (5 ms) after a spike the neuron cannot fire;
* readout ``y(t) = kappa y(t-1) + W_out z(t) + b``, kappa = exp(-dt / 20 ms); prediction: the class with
  the largest softmax summed over steps.

Surrogate gradient (``--surrogate``): by default SuperSpike's fast sigmoid ``dz/dv = 1 / (1 + 10 |v - v_th| /
v_th)^2``, the common choice of PyTorch SNN code; ``--surrogate eprop`` takes e-prop's pseudo-derivative
``(0.3 / v_th) max(0, 1 - |v - v_th| / v_th)``, the one plastix uses, which trains this network worse with
BPTT (validation split, 3 epochs: 72 % at lr 1e-3, 60 % at 3e-3, against 84.5 % for the fast sigmoid at
lr 3e-3; slope 25: 83 %, slope 3: 60 %).  Both are zero while refractory.  The reset term is detached (no
gradient through the reset), as is usual for surrogate-gradient training and as e-prop treats it.
Weights start N(0, 1/sqrt(fan_in)) (fan_in: connected inputs; 255 for W_rec), the bias at 0.  Not
included: e-prop's firing-rate regulariser (c_reg 0.001), ALIF adaptation (plastix's default neuron; run
plastix with ``--neuron lif`` for the same network).

``--density D`` multiplies W_in and W_rec by fixed random 0/1 masks (probability D) in every step: the way
sparsity is usually done in PyTorch.  The products stay dense, so masking saves no time.

Time per epoch: wall time of the training pass (batch assembly, forward, backward, Adam), after one
untimed forward + backward on the first training batch (allocator and kernel warm-up; no optimiser
step, so training is unchanged).  Evaluation of the test split is timed separately.

Run with the interpreter of the torch venv made by ``install.sh torch``:

    benchmarks/peers/.venvs/torch/bin/python benchmarks/peers/torch_bptt.py --epochs 3 --json
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from plastix import datasets

#: ``plastix train``'s spoken-digit encoding (src/plastix/cli/train.py LOAD_OPTIONS): 1 ms per MFCC frame,
#: 7 threshold levels -> 182 input units, trials <= 92 steps.
LOAD_OPTIONS = {"frame_ms": 1.0, "levels": (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)}

# plastix's EPropConfig defaults (times in ms, thresholds in model units)
TAU_MEM_MS = 20.0
TAU_OUT_MS = 20.0
V_THRESH = 0.6
TAU_REFRAC_MS = 5.0
DT_MS = 1.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    p.add_argument("--batch-size", type=int, default=32, help="default 32")
    p.add_argument("--hidden", type=int, default=256, help="recurrent LIF neurons (default 256)")
    p.add_argument("--density", type=float, default=1.0,
                   help="connection probability of W_in and W_rec, as fixed 0/1 masks (default 1: dense)")
    p.add_argument("--surrogate", choices=SURROGATES, default="fast-sigmoid",
                   help="surrogate derivative: fast-sigmoid, 1 / (1 + SLOPE |v - v_th| / v_th)^2 (default), or "
                        "eprop, (0.3 / v_th) max(0, 1 - |v - v_th| / v_th) (plastix's)")
    p.add_argument("--slope", type=float, default=10.0, help="fast-sigmoid slope per threshold unit (default 10)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--seed", type=int, default=1, help="weights, masks and batch order (default 1)")
    p.add_argument("--validation", type=float, default=None, metavar="F",
                   help="train on the training split less a held-out fraction F of each class and evaluate on "
                        "that part instead of the test split (for choosing the learning rate)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the FSDD file (default: as plastix)")
    p.add_argument("--json", action="store_true", help="print only one JSON object on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON object to this file")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    if not args.lr > 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.hidden < 2:
        p.error(f"--hidden must be >= 2, got {args.hidden}")
    if not 0.0 < args.density <= 1.0:
        p.error(f"--density must be in (0, 1], got {args.density}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.validation is not None and not 0.0 < args.validation < 1.0:
        p.error(f"--validation must be in (0, 1), got {args.validation}")
    return args


class EPropSpike(torch.autograd.Function):
    """Heaviside spike of ``u = v - v_th`` forward; e-prop's pseudo-derivative
    ``(0.3 / v_th) max(0, 1 - |u| / v_th)`` backward."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * (0.3 / V_THRESH) * torch.clamp(1.0 - u.abs() / V_THRESH, min=0.0)


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside spike of ``u = v - v_th`` forward; SuperSpike's fast-sigmoid derivative
    ``1 / (1 + slope |u| / v_th)^2`` backward (``slope`` per threshold unit)."""

    @staticmethod
    def forward(ctx, u, slope):
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * u.abs() / V_THRESH) ** 2, None


SURROGATES = ("eprop", "fast-sigmoid")


class RecurrentLIFClassifier(torch.nn.Module):
    """Spike input -> recurrent LIF layer -> leaky-integrator readout with bias."""

    def __init__(self, num_inputs: int, num_hidden: int, num_outputs: int, density: float, generator,
                 surrogate: str = "fast-sigmoid", slope: float = 10.0):
        super().__init__()
        if surrogate == "eprop":
            self.spike = EPropSpike.apply
        else:
            self.spike = lambda u: FastSigmoidSpike.apply(u, slope)
        self.alpha = math.exp(-DT_MS / TAU_MEM_MS)
        self.kappa = math.exp(-DT_MS / TAU_OUT_MS)
        self.refractory_steps = int(round(TAU_REFRAC_MS / DT_MS))
        no_self = 1.0 - torch.eye(num_hidden)
        if density < 1.0:
            mask_in = (torch.rand(num_inputs, num_hidden, generator=generator) < density).float()
            mask_rec = (torch.rand(num_hidden, num_hidden, generator=generator) < density).float() * no_self
        else:
            mask_in, mask_rec = torch.ones(num_inputs, num_hidden), no_self
        self.register_buffer("mask_in", mask_in)
        self.register_buffer("mask_rec", mask_rec)

        def normal(shape, fan_in):
            return torch.randn(*shape, generator=generator) / math.sqrt(max(fan_in, 1.0))

        self.w_in = torch.nn.Parameter(normal((num_inputs, num_hidden), density * num_inputs) * mask_in)
        self.w_rec = torch.nn.Parameter(normal((num_hidden, num_hidden), density * (num_hidden - 1)) * mask_rec)
        self.w_out = torch.nn.Parameter(normal((num_hidden, num_outputs), num_hidden))
        self.b_out = torch.nn.Parameter(torch.zeros(num_outputs))

    def forward(self, x):
        """``x`` [batch, steps, inputs] spikes -> readout ``y`` [batch, steps, classes] and hidden spike count."""
        batch, steps, _ = x.shape
        hidden = self.w_rec.shape[0]
        input_current = x @ (self.w_in * self.mask_in)      # all steps at once: [batch, steps, hidden]
        w_rec = self.w_rec * self.mask_rec
        v = x.new_zeros(batch, hidden)
        z = x.new_zeros(batch, hidden)
        refractory = torch.zeros(batch, hidden, dtype=torch.int32)
        y = x.new_zeros(batch, self.b_out.shape[0])
        outputs = []
        spikes = 0.0
        for t in range(steps):
            v = self.alpha * v + input_current[:, t] + z @ w_rec - V_THRESH * z.detach()
            free = refractory == 0
            z = self.spike(v - V_THRESH) * free
            refractory = torch.where(free, z.detach().to(torch.int32) * self.refractory_steps, refractory - 1)
            y = self.kappa * y + z @ self.w_out + self.b_out
            outputs.append(y)
            spikes += float(z.detach().sum())
        return torch.stack(outputs, dim=1), spikes


def trial_loss(y, labels):
    """Per-step softmax cross-entropy summed over the trial, mean over the batch (plastix's e-prop loss)."""
    batch, steps, classes = y.shape
    return F.cross_entropy(y.reshape(-1, classes), labels.repeat_interleave(steps), reduction="sum") / batch


def predictions(y):
    """Class with the largest softmax summed over steps (plastix's readout decision)."""
    return torch.softmax(y, dim=2).sum(dim=1).argmax(dim=1)


def batches(split, batch_size, steps, *, shuffle, seed):
    """(spikes float32 tensor [batch, steps, inputs], labels int64 tensor) from plastix's batch API."""
    for b in split.batches(batch_size, shuffle=shuffle, seed=seed, dense=True, dt=DT_MS, steps=steps):
        yield torch.from_numpy(b.spikes.astype(np.float32)), torch.from_numpy(np.asarray(b.labels, np.int64))


def epoch_seed(seed: int, epoch: int) -> int:
    """The batch order of plastix's trainer for this seed and epoch."""
    return int(seed) * 100003 + int(epoch)


def evaluate(model, split, batch_size, steps):
    correct = seen = 0
    loss = spikes = 0.0
    with torch.no_grad():
        for x, labels in batches(split, batch_size, steps, shuffle=False, seed=0):
            y, s = model(x)
            loss += float(trial_loss(y, labels)) * len(labels)
            correct += int((predictions(y) == labels).sum())
            seen += len(labels)
            spikes += s
    return {"loss": loss / seen / steps, "accuracy": correct / seen,
            "rate_hz": spikes / (seen * steps * DT_MS * model.w_rec.shape[0]) * 1000.0}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    opts = dict(LOAD_OPTIONS)
    if args.data_dir is not None:
        opts["data_dir"] = args.data_dir
    ds = datasets.load("spoken_digits", dt=DT_MS, **opts)
    if args.validation is not None:
        ds = ds.validation_split(args.validation)
    steps = ds.train.default_steps(DT_MS)
    generator = torch.Generator().manual_seed(args.seed)
    model = RecurrentLIFClassifier(ds.train.num_units, args.hidden, ds.train.num_classes, args.density, generator,
                                   args.surrogate, args.slope)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)

    t0 = time.perf_counter()   # warm-up: one forward + backward, no optimiser step
    x, labels = next(batches(ds.train, args.batch_size, steps, shuffle=True, seed=epoch_seed(args.seed, 0)))
    y, _ = model(x)
    trial_loss(y, labels).backward()
    optimiser.zero_grad(set_to_none=True)
    warmup_s = time.perf_counter() - t0

    epochs = []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        loss = correct = seen = 0.0
        for x, labels in batches(ds.train, args.batch_size, steps, shuffle=True, seed=epoch_seed(args.seed, epoch)):
            y, _ = model(x)
            batch_loss = trial_loss(y, labels)
            optimiser.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimiser.step()
            loss += float(batch_loss.detach()) * len(labels)
            correct += int((predictions(y.detach()) == labels).sum())
            seen += len(labels)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev = evaluate(model, ds.test, args.batch_size, steps)
        row = {"epoch": epoch + 1, "train_wall_s": train_s, "train_loss": loss / seen / steps,
               "train_accuracy": correct / seen, "test_loss": ev["loss"], "test_accuracy": ev["accuracy"],
               "test_rate_hz": ev["rate_hz"], "eval_wall_s": time.perf_counter() - t0}
        epochs.append(row)
        if not args.json:
            print(f"epoch {epoch + 1}/{args.epochs}: loss {row['train_loss']:.3f} train {row['train_accuracy']:.3f} "
                  f"test {row['test_accuracy']:.3f} rate {row['test_rate_hz']:.1f} Hz ({train_s:.2f} s)",
                  file=sys.stderr)
    train_times = [e["train_wall_s"] for e in epochs]
    weights_in = int(model.mask_in.sum())
    weights_rec = int(model.mask_rec.sum())
    return {
        "framework": "pytorch", "method": "surrogate-gradient BPTT", "version": torch.__version__,
        "cuda": torch.version.cuda, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "dataset": "spoken_digits", "load_options": {k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in LOAD_OPTIONS.items()},
        "evaluated_on": "validation" if args.validation is not None else "test",
        "train_samples": len(ds.train), "test_samples": len(ds.test), "steps": steps,
        "inputs": ds.train.num_units, "hidden": args.hidden, "classes": ds.train.num_classes,
        "density": args.density, "synapses_effective": weights_in + weights_rec,
        "weights_computed": model.w_in.numel() + model.w_rec.numel(),
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "surrogate": args.surrogate,
        "slope": args.slope if args.surrogate == "fast-sigmoid" else None,
        "warmup_s": warmup_s, "train_wall_s_per_epoch": train_times,
        "train_wall_s_mean": sum(train_times) / len(train_times),
        "final_test_accuracy": epochs[-1]["test_accuracy"], "epochs": epochs,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("version", "threads", "density", "lr", "warmup_s", "train_wall_s_mean", "final_test_accuracy"):
            print(f"{key:>22}: {result[key]}")


if __name__ == "__main__":
    main()
