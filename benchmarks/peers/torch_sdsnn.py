#!/usr/bin/env python3
"""PyTorch surrogate-gradient BPTT of SD-SNN's network, dense and unpruned (the issue 15 baseline).

What a PyTorch user trains today instead of plastix: the authors' convolutional spiking network
(SD-SNN's MNIST-family ``SCNN``, /work/shared/SDSNN.md section 1a) written by hand as the authors wrote it,
one loop over the time steps with autograd through all of them, on the same images and split as plastix.
Only the structural machinery (masks, pruning, regrowth) is left out: every weight stays.

Network (``--layers``, default ``conv15-pool2-conv40-pool2-fc300-fc10``): tokens joined by ``-``.

* ``conv<C>``: ``nn.Conv2d(C_in, C, 3, stride 1, padding 1)`` with bias, then LIF; suffixes ``k<K>``,
  ``s<S>``, ``p<P>`` (each optional, at most once, any order) set kernel, stride and padding
  (``conv16k5s2p0``);
* ``pool<P>``: ``nn.AvgPool2d(P)`` (P x P, stride P, floor) on the spikes, no neuron after it;
* ``fc<N>``: ``nn.Linear(-> N)`` with bias, then LIF; its input is the flattened (channel-major, C order)
  output before it.  ``fc<N>r`` adds ``Linear(N, N, bias=False)`` from the layer's own spikes of the
  previous step, diagonal held at 0 (a fixed mask);
* ``li<N>`` (last only): leaky-integrator readout ``y_t = 0.8 y_{t-1} + W s_t + b``, no spikes.

LIF (every spiking layer, SD-SNN's ``mem_update``): ``u_t = 0.2 u_{t-1} (1 - s_{t-1}) + I_t`` (``I_t``: the
conv / linear output with its bias), ``s_t = [u_t > 0.5]``; u and s start at 0 for every sample; the reset
factor ``(1 - s)`` is not detached; surrogate ``ds/du = 1`` where ``|u - 0.5| < 0.5``, else 0 (rectangular,
no normalisation).  Every layer handles step t in step t.

Input: Bernoulli rate code, ``x_t = [pixel / vmax > U(0, 1)]`` redrawn at every step, training and test
(T = ``--steps`` = 20), from torch generators seeded by ``--seed``.

Loss (``--loss``; default ``mse_rate``, or ``ce_step`` when the last layer is ``li``):

* ``mse_rate`` (SD-SNN): ``nn.MSELoss()`` between the output rates ``sum_t s_t / T`` and the one-hot label;
* ``ce_rate``: cross-entropy of the spike counts ``sum_t s_t`` as logits, mean over the batch;
* ``ce_step`` (``li`` readout): per-step cross-entropy summed over the steps, mean over the batch.

Prediction: the class with the largest output summed over the steps (the spike count, or the ``li``
readout's sum), as plastix's BPTT trainer; ties go to the lowest class, as ``max(1)`` in the authors' code.

Training: Adam (lr ``--lr`` 1e-3, betas 0.9 / 0.999, eps 1e-8, no weight decay), batch ``--batch-size``
100 with the last, smaller batch kept (the authors' sizes divide their data sets; digits' 1,438 do not),
a new shuffle each epoch; the authors' schedule: after epoch ``e`` (0-based) lr x 0.1 if ``e % 40 == 0``
and ``e > 1``.  Weights and biases start with PyTorch's defaults for ``Conv2d`` / ``Linear``
(``torch.manual_seed(--seed)``).  float32, ``torch.set_num_threads(--threads)`` (default 2).

Data: the images, labels and split plastix trains on, written by ``export_images.py`` with plastix's
interpreter (the torch venv has no scikit-learn) to ``--data-cache`` on first use, then read from there;
``--data FILE`` reads a file written by it.  ``digits``: scikit-learn's 8 x 8 digits (values 0..16, vmax
16), of each digit the last 20 % in file order is test (1,438 / 359); ``fashion_mnist``: 28 x 28 (vmax 255),
60,000 / 10,000 from the IDX files plastix finds (Debian's ``/usr/share/datasets/fashion-mnist``).
``--train-limit N`` / ``--test-limit N``: the first N samples of the split, as ``plastix sdsnn
--train-limit / --test-limit``.

Time per epoch: wall time of the training pass (batch assembly, spike coding, forward, backward, Adam),
without evaluation; before the first epoch one untimed forward + backward on a training batch (allocator
and kernel warm-up; no optimiser step and its own generator, so training is unchanged).

Writes ``--out-dir``/results.json (every epoch: lr, train time, train and test loss and accuracy, load
average) and prints a one-line JSON summary as the last line of stdout; progress goes to stderr.

    benchmarks/peers/.venvs/torch/bin/python benchmarks/peers/torch_sdsnn.py --dataset digits --epochs 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

try:
    from tqdm import tqdm
except ImportError:    # plain lines on stderr instead of a bar
    tqdm = None

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# SD-SNN's neuron and readout constants (SDSNN.md section 1a; lead's spec)
DECAY = 0.2
V_TH = 0.5
LENS = 0.5
KAPPA = 0.8
#: lr x 0.1 after every epoch e (0-based) with e % LR_DECAY_EPOCHS == 0 and e > 1 (the authors' lr_scheduler).
LR_DECAY_EPOCHS = 40

DEFAULT_LAYERS = "conv15-pool2-conv40-pool2-fc300-fc10"
LOSSES = ("mse_rate", "ce_rate", "ce_step")
DATASETS = ("digits", "fashion_mnist")
_TOKEN = re.compile(r"conv(?P<conv>\d+)(?P<options>(?:[ksp]\d+)*)"
                    r"|pool(?P<pool>\d+)|fc(?P<fc>\d+)(?P<r>r?)|li(?P<li>\d+)")
_CONV_OPTION = re.compile(r"([ksp])(\d+)")


@dataclass(frozen=True)
class LayerSpec:
    """One token of ``--layers``: ``kind`` conv / pool / fc / li; ``size`` channels, pool width or neurons."""

    kind: str
    size: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    recurrent: bool = False
    token: str = ""


def parse_layers(text: str) -> list[LayerSpec]:
    """The layers of a spec string like ``conv15-pool2-conv40-pool2-fc300-fc10`` (see the module text)."""
    layers = []
    for token in text.split("-"):
        m = _TOKEN.fullmatch(token)
        if m is None:
            raise ValueError(f"--layers: cannot read {token!r} in {text!r}; tokens are conv<C>[k<K>][s<S>][p<P>], "
                             "pool<P>, fc<N>[r] and li<N> (last only), joined by '-'")
        if m["conv"]:
            options = _CONV_OPTION.findall(m["options"])
            given = dict(options)
            if len(given) < len(options):
                raise ValueError(f"--layers: {token!r}: each of k, s, p at most once")
            spec = LayerSpec("conv", int(m["conv"]), kernel=int(given.get("k", 3)), stride=int(given.get("s", 1)),
                             padding=int(given.get("p", 1)), token=token)
            if spec.kernel < 1 or spec.stride < 1:
                raise ValueError(f"--layers: {token!r}: kernel and stride must be >= 1")
        elif m["pool"]:
            spec = LayerSpec("pool", int(m["pool"]), token=token)
        elif m["fc"]:
            spec = LayerSpec("fc", int(m["fc"]), recurrent=bool(m["r"]), token=token)
        else:
            spec = LayerSpec("li", int(m["li"]), token=token)
        if spec.size < 1:
            raise ValueError(f"--layers: {token!r}: the number must be >= 1")
        if layers and layers[-1].kind in ("fc", "li") and spec.kind in ("conv", "pool"):
            raise ValueError(f"--layers: {token!r} after a fully connected layer; conv and pool layers come first")
        if layers and layers[-1].kind == "li":
            raise ValueError(f"--layers: {text!r}: li<N> must be the last layer")
        layers.append(spec)
    if layers[-1].kind not in ("fc", "li"):
        raise ValueError(f"--layers: {text!r} must end with the output layer fc<N> or li<N>")
    if layers[-1].kind == "li" and len(layers) == 1:
        raise ValueError(f"--layers: {text!r}: an li readout needs a spiking layer before it")
    return layers


class RectangularSpike(torch.autograd.Function):
    """``s = [u > V_TH]`` forward; ``ds/du = [|u - V_TH| < LENS]`` backward (SD-SNN's ``ActFun``)."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return u.gt(V_TH).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * ((u - V_TH).abs() < LENS).to(grad.dtype)


class SDSNN(torch.nn.Module):
    """The layers of ``specs`` on input frames of ``input_shape`` ``(C, H, W)``, run step by step."""

    def __init__(self, specs: list[LayerSpec], input_shape: tuple[int, int, int]):
        super().__init__()
        self.specs = list(specs)
        self.ops = torch.nn.ModuleList()
        self.recurrent = torch.nn.ModuleDict()
        shape = tuple(input_shape)       # (C, H, W) before the first fc, then (N,)
        for i, spec in enumerate(self.specs):
            if spec.kind == "conv":
                if len(shape) != 3:
                    raise ValueError(f"layer {i} (conv) needs image input")
                op = torch.nn.Conv2d(shape[0], spec.size, spec.kernel, stride=spec.stride, padding=spec.padding)
                h, w = ((n + 2 * spec.padding - spec.kernel) // spec.stride + 1 for n in shape[1:])
                if h < 1 or w < 1:
                    raise ValueError(f"--layers: {spec.token} (layer {i}) on a {shape[1]} x {shape[2]} input leaves "
                                     f"no output pixel")
                shape = (spec.size, h, w)
            elif spec.kind == "pool":
                if shape[1] < spec.size or shape[2] < spec.size:
                    raise ValueError(f"--layers: {spec.token} (layer {i}) on a {shape[1]} x {shape[2]} input "
                                     f"leaves no output pixel")
                op = torch.nn.AvgPool2d(spec.size)
                shape = (shape[0], shape[1] // spec.size, shape[2] // spec.size)
            else:
                op = torch.nn.Linear(int(np.prod(shape)), spec.size)
                shape = (spec.size,)
                if spec.recurrent:
                    self.recurrent[str(i)] = torch.nn.Linear(spec.size, spec.size, bias=False)
                    with torch.no_grad():
                        self.recurrent[str(i)].weight.fill_diagonal_(0.0)
                    self.register_buffer(f"no_self_{i}", 1.0 - torch.eye(spec.size))
            self.ops.append(op)
        self.num_outputs = shape[0]

    def weights_per_layer(self) -> list[int]:
        """Weights (no biases) of each layer with weights; a recurrent fc counts its N (N - 1) recurrent ones."""
        out = []
        for i, (spec, op) in enumerate(zip(self.specs, self.ops)):
            if spec.kind == "pool":
                continue
            n = op.weight.numel()
            if spec.recurrent:
                n += spec.size * (spec.size - 1)
            out.append(n)
        return out

    def forward(self, pixels: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
        """``pixels`` [batch, C, H, W] spike probabilities -> output [steps, batch, classes]: the last
        layer's spikes (fc) or values (li) at every step."""
        state = [None] * len(self.specs)     # (u, s) of a spiking layer, y of an li readout
        outputs = []
        for _ in range(steps):
            x = (pixels > torch.rand(pixels.shape, generator=generator)).to(pixels.dtype)
            for i, (spec, op) in enumerate(zip(self.specs, self.ops)):
                if spec.kind == "pool":
                    x = op(x)
                    continue
                if spec.kind in ("fc", "li") and x.dim() > 2:
                    x = x.flatten(1)
                current = op(x)
                if spec.kind == "li":
                    x = current if state[i] is None else KAPPA * state[i] + current
                    state[i] = x
                    continue
                if state[i] is None:          # u_{-1} = s_{-1} = 0
                    u = current
                else:
                    u_prev, s_prev = state[i]
                    u = DECAY * u_prev * (1.0 - s_prev) + current
                    if spec.recurrent:
                        w = self.recurrent[str(i)].weight * getattr(self, f"no_self_{i}")
                        u = u + F.linear(s_prev, w)
                x = RectangularSpike.apply(u)
                state[i] = (u, x)
            outputs.append(x)
        return torch.stack(outputs)


def loss_and_predictions(out: torch.Tensor, labels: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch loss (mean over the batch) and predicted classes of output ``out`` [steps, batch, classes]."""
    steps, batch, classes = out.shape
    if loss == "mse_rate":
        rate = out.mean(0)
        return F.mse_loss(rate, F.one_hot(labels, classes).to(rate.dtype)), rate.argmax(1)
    if loss == "ce_rate":
        counts = out.sum(0)
        return F.cross_entropy(counts, labels), counts.argmax(1)
    value = F.cross_entropy(out.reshape(steps * batch, classes), labels.repeat(steps), reduction="sum") / batch
    return value, out.sum(0).argmax(1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="default digits")
    p.add_argument("--data", type=Path, default=None, metavar="NPZ",
                   help="read this file written by export_images.py instead of --dataset / --*-limit")
    p.add_argument("--train-limit", type=int, default=None, metavar="N", help="train on N samples (default all)")
    p.add_argument("--test-limit", type=int, default=None, metavar="N", help="test on N samples (default all)")
    p.add_argument("--layers", default=DEFAULT_LAYERS, help=f"layer spec (default {DEFAULT_LAYERS})")
    p.add_argument("--loss", choices=LOSSES, default=None,
                   help="default mse_rate, or ce_step when the last layer is li<N>")
    p.add_argument("--epochs", type=int, default=3, help="default 3")
    p.add_argument("--batch-size", type=int, default=100, help="default 100")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's initial learning rate (default 1e-3)")
    p.add_argument("--steps", type=int, default=20, help="time steps T per sample (default 20)")
    p.add_argument("--seed", type=int, default=0, help="weights, batch order and spike draws (default 0)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "out" / "torch_sdsnn", help="where results.json goes")
    p.add_argument("--data-cache", type=Path, default=HERE / ".data",
                   help="folder of the exported data files (default benchmarks/peers/.data)")
    p.add_argument("--plastix-python", type=Path, default=ROOT / ".venv" / "bin" / "python",
                   help="interpreter with plastix[data] that runs export_images.py (default the checkout's .venv)")
    args = p.parse_args(argv)
    try:
        args.specs = parse_layers(args.layers)
    except ValueError as e:
        p.error(str(e))
    last = args.specs[-1].kind
    if args.loss is None:
        args.loss = "ce_step" if last == "li" else "mse_rate"
    if (args.loss == "ce_step") != (last == "li"):
        p.error(f"--loss {args.loss} needs {'an li<N>' if args.loss == 'ce_step' else 'an fc<N>'} output layer; "
                f"--layers {args.layers!r} ends with {last}")
    for name, low in (("epochs", 1), ("batch_size", 1), ("steps", 1), ("threads", 1), ("seed", 0)):
        if getattr(args, name) < low:
            p.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    for name in ("train_limit", "test_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if value is not None and args.data is not None:
            p.error(f"--{name.replace('_', '-')} applies to --dataset; the file of --data holds its own subset")
    if not args.lr > 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    return args


def data_file(args) -> Path:
    """The exported data: --data, or the cache file for --dataset and the limits (written if missing)."""
    if args.data is not None:
        return args.data
    limits = f"train{args.train_limit or 'all'}_test{args.test_limit or 'all'}"
    path = args.data_cache / f"{args.dataset}_{limits}.npz"
    if path.is_file():
        return path
    if not args.plastix_python.is_file():
        sys.exit(f"torch_sdsnn.py: {args.plastix_python} missing: set up plastix's venv (README) or pass "
                 "--plastix-python, or --data a file written by export_images.py")
    argv = [str(args.plastix_python), str(HERE / "export_images.py"), "--dataset", args.dataset, "--out", str(path)]
    for name, value in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit)):
        if value is not None:
            argv += [name, str(value)]
    env = dict(os.environ)
    env.setdefault("PLASTIX_CACHE_DIR", str(ROOT / ".plastix-cache"))
    print(f"torch_sdsnn.py: exporting the data: {shlex.join(argv)}", file=sys.stderr)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"torch_sdsnn.py: exporting the data failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return path


def load_data(path: Path) -> dict:
    """Pixels as spike probabilities (float32 [n, C, H, W] in [0, 1]) and labels of both splits."""
    try:
        with np.load(path) as f:
            arrays = {key: f[key] for key in f.files}
    except (OSError, ValueError) as e:
        sys.exit(f"torch_sdsnn.py: cannot read {path} ({e})")
    needed = {f"{s}_{k}" for s in ("train", "test") for k in ("images", "labels", "ids")} | {"vmax", "num_classes"}
    if needed - set(arrays):
        sys.exit(f"torch_sdsnn.py: {path} lacks {sorted(needed - set(arrays))}: not written by export_images.py")
    vmax = float(arrays["vmax"])
    out = {"vmax": int(vmax), "num_classes": int(arrays["num_classes"]), "path": str(path),
           "description": json.loads(str(arrays.get("description", "{}")))}
    for split in ("train", "test"):
        out[split] = (torch.from_numpy(arrays[f"{split}_images"].astype(np.float32) / vmax),
                      torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64)))
    return out


def progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="batch", file=sys.stderr, leave=False) if tqdm is not None else None


def train_epoch(model, optimiser, data, args, order: torch.Generator, code: torch.Generator, desc: str) -> dict:
    pixels, labels = data
    n = len(labels)
    bar = progress((n + args.batch_size - 1) // args.batch_size, desc)
    t0 = time.perf_counter()
    loss_sum = correct = 0.0
    perm = torch.randperm(n, generator=order)
    for start in range(0, n, args.batch_size):
        idx = perm[start:start + args.batch_size]
        x, y = pixels[idx], labels[idx]
        out = model(x, args.steps, code)
        loss, predicted = loss_and_predictions(out, y, args.loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int((predicted == y).sum())
        if bar is not None:
            bar.update()
    train_s = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return {"train_wall_s": train_s, "train_loss": loss_sum / n, "train_accuracy": correct / n}


def evaluate(model, data, args, code: torch.Generator) -> dict:
    pixels, labels = data
    t0 = time.perf_counter()
    loss_sum = correct = 0.0
    with torch.no_grad():
        for start in range(0, len(labels), args.batch_size):
            x, y = pixels[start:start + args.batch_size], labels[start:start + args.batch_size]
            loss, predicted = loss_and_predictions(model(x, args.steps, code), y, args.loss)
            loss_sum += float(loss) * len(y)
            correct += int((predicted == y).sum())
    return {"test_loss": loss_sum / len(labels), "test_accuracy": correct / len(labels),
            "eval_wall_s": time.perf_counter() - t0}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    data = load_data(data_file(args))
    input_shape = tuple(data["train"][0].shape[1:])
    torch.manual_seed(args.seed)
    try:
        model = SDSNN(args.specs, input_shape)
    except ValueError as e:
        sys.exit(f"torch_sdsnn.py: {e}")
    if model.num_outputs != data["num_classes"]:
        sys.exit(f"torch_sdsnn.py: --layers {args.layers!r} has {model.num_outputs} outputs but the data have "
                 f"{data['num_classes']} classes; end it with fc{data['num_classes']} or li{data['num_classes']}")
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    order = torch.Generator().manual_seed(args.seed)                 # batch order
    train_code = torch.Generator().manual_seed(args.seed + 1_000_003)  # training spikes
    test_code = torch.Generator().manual_seed(args.seed + 2_000_003)   # test spikes

    t0 = time.perf_counter()   # warm-up: one forward + backward, no optimiser step, its own spikes
    pixels, labels = data["train"]
    warm = torch.Generator().manual_seed(args.seed + 3_000_003)
    loss_and_predictions(model(pixels[:args.batch_size], args.steps, warm), labels[:args.batch_size],
                         args.loss)[0].backward()
    optimiser.zero_grad(set_to_none=True)
    warmup_s = time.perf_counter() - t0

    epochs = []
    for epoch in range(args.epochs):
        lr = optimiser.param_groups[0]["lr"]
        load_before = os.getloadavg()[0]
        row = {"epoch": epoch + 1, "lr": lr,
               **train_epoch(model, optimiser, data["train"], args, order, train_code,
                             f"epoch {epoch + 1}/{args.epochs}")}
        if epoch % LR_DECAY_EPOCHS == 0 and epoch > 1:
            for group in optimiser.param_groups:
                group["lr"] *= 0.1
        row.update(evaluate(model, data["test"], args, test_code))
        row["loadavg_1min_before"], row["loadavg_1min_after"] = load_before, os.getloadavg()[0]
        epochs.append(row)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {row['train_loss']:.4f} train {row['train_accuracy']:.3f} "
              f"test {row['test_accuracy']:.3f} ({row['train_wall_s']:.1f} s train, {row['eval_wall_s']:.1f} s "
              f"test, load {load_before:.2f})", file=sys.stderr)
    train_times = [e["train_wall_s"] for e in epochs]
    return {
        "framework": "pytorch", "method": "surrogate-gradient BPTT (SD-SNN network, dense, no masks)",
        "version": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "python": platform.python_version(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "command": shlex.join([sys.executable, *sys.argv]),
        "dataset": data["description"].get("dataset"), "data_file": data["path"], "data": data["description"],
        "train_samples": len(data["train"][1]), "test_samples": len(data["test"][1]),
        "input_shape": list(input_shape), "vmax": data["vmax"], "classes": data["num_classes"],
        "layers": args.layers, "weights_per_layer": model.weights_per_layer(),
        "parameters": sum(p.numel() for p in model.parameters()), "loss": args.loss, "steps": args.steps,
        "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": f"x0.1 after epoch e (0-based) if e % "
                                                                     f"{LR_DECAY_EPOCHS} == 0 and e > 1",
        "seed": args.seed, "warmup_s": warmup_s, "train_wall_s_per_epoch": train_times,
        "train_wall_s_mean": sum(train_times) / len(train_times), "train_wall_s_median": statistics.median(train_times),
        "test_accuracy_per_epoch": [e["test_accuracy"] for e in epochs],
        "final_test_accuracy": epochs[-1]["test_accuracy"], "epochs": epochs,
    }


SUMMARY_KEYS = ("framework", "version", "threads", "omp_wait_policy", "dataset", "train_samples", "test_samples",
                "layers", "loss", "batch_size", "steps", "warmup_s", "train_wall_s_per_epoch", "train_wall_s_mean",
                "train_wall_s_median", "test_accuracy_per_epoch", "final_test_accuracy")


def main(argv=None) -> None:
    args = parse_args(argv)
    result = run(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "results.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({**{k: result[k] for k in SUMMARY_KEYS}, "results": str(path)}))


if __name__ == "__main__":
    main()
