"""``plastix bench train``: e-prop training time per epoch at several connection densities, one run."""
from __future__ import annotations

import os

import numpy as np

from .arguments import UsageError, integer, numbers
from ..compile_clock import Stopwatch
from .train import add_model_arguments, config_from_args, load_dataset


def add_arguments(p) -> None:
    add_model_arguments(p)
    p.add_argument("--densities", type=numbers(0, 1, low_open=True), default=(1.0, 0.1, 0.01),
                   help="comma-separated input and recurrent connection probabilities (default 1.0,0.1,0.01)")
    p.add_argument("--rewiring", choices=("none", "deep-r"), default="deep-r",
                   help="rewiring of the sparse networks (default deep-r; density 1 never rewires)")
    p.add_argument("--epochs", type=integer(1), default=1, help="timed epochs per density (default 1)")
    p.add_argument("--max-batches", type=integer(1), default=None,
                   help="time only this many batches per epoch (default: the whole training split)")
    p.add_argument("--random-data", type=random_data_shape, default=None, metavar="SAMPLES,STEPS,INPUTS,CLASSES",
                   help="time on random spikes of this shape instead of a data set (e.g. SHD: 2048,1000,700,20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def random_data_shape(text: str) -> tuple[int, int, int, int]:
    """``--random-data``: SAMPLES,STEPS,INPUTS,CLASSES, three counts >= 1 and >= 2 classes."""
    import argparse

    try:
        samples, steps, inputs, classes = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be SAMPLES,STEPS,INPUTS,CLASSES (four integers), got {text!r}")
    if min(samples, steps, inputs) < 1 or classes < 2:
        raise argparse.ArgumentTypeError(f"needs SAMPLES, STEPS, INPUTS >= 1 and CLASSES >= 2, got {text!r}")
    return samples, steps, inputs, classes


def _random_dataset(shape: tuple[int, int, int, int], rate_hz: float = 10.0, seed: int = 0):
    """Poisson spikes (``rate_hz``) of ``shape`` (samples, steps, inputs, classes), as events (an SHD-sized set
    would be 1.4 GB dense)."""
    from ..datasets.base import SpikeDataset, SpikeSplit

    samples, steps, inputs, classes = shape
    spec = ",".join(map(str, shape))
    rng = np.random.default_rng(seed)
    cells = steps * inputs
    counts = rng.binomial(cells, rate_hz / 1000.0, samples)
    times, units = [], []
    for n in counts:
        flat = np.unique(rng.integers(0, cells, n))
        times.append((flat // inputs).astype(np.float64))
        units.append(flat % inputs)
    labels = rng.integers(0, classes, samples)
    kw = dict(num_units=inputs, num_classes=classes, duration_ms=float(steps), dt=1.0)
    train = SpikeSplit.from_samples(times, units, labels, **kw)
    test = SpikeSplit.from_samples(times[:1], units[:1], labels[:1], **kw)
    return SpikeDataset("random", train, test, {"source": f"Poisson {rate_hz} Hz, shape {spec}"})


def run(args) -> dict:
    from ..learning.trainer import Trainer

    if args.random_data:
        given = [flag for flag, v in (("--data-dir", args.data_dir), ("--frame-ms", args.frame_ms),
                                      ("--levels", args.levels)) if v is not None]
        if given:
            raise UsageError(f"--random-data replaces the data set; {', '.join(given)} would have no effect")
    ds = _random_dataset(args.random_data) if args.random_data else load_dataset(args)
    whole = Stopwatch()
    rows = []
    for d in args.densities:
        sw = Stopwatch()
        config = config_from_args(args, ds, input_density=d, recurrent_density=d, row_padding=2.0,
                                  rewiring=args.rewiring if d < 1.0 else "none")
        trainer = Trainer(config, ds, batch_size=args.batch_size, steps=args.steps, clip=args.clip,
                          progress=not args.json)
        trainer.max_batches = 2
        trainer.train_epoch(0)   # warm-up: compiles kernels, touches memory
        trainer.max_batches = args.max_batches
        times, rewired = [], 0
        for e in range(args.epochs):
            epoch = Stopwatch()
            r = trainer.train_epoch(e + 1)
            times.append(epoch.run_s)   # without compilation (none is expected after the warm-up)
            rewired += sum(r["rewirings"].values())
        rows.append({"density": d, "synapses": sum(trainer.net.synapse_counts().values()),
                     "epoch_s": float(np.median(times)), "epoch_s_all": times, "compile_s": sw.compile_s,
                     "rewirings_per_epoch": rewired / args.epochs, "train_accuracy": r["train_accuracy"]})
    dense = next((r for r in rows if r["density"] == 1.0), None)
    for r in rows:
        r["speedup_vs_dense"] = dense["epoch_s"] / r["epoch_s"] if dense else None
    import numba

    name = f"random {','.join(map(str, args.random_data))}" if args.random_data else args.dataset
    return {"dataset": name, "hidden": args.hidden,
            "neuron": args.neuron, "batch_size": args.batch_size, "backend": args.backend,
            "threads": numba.get_num_threads(), "cpu_count": os.cpu_count(), "rewiring": args.rewiring,
            "max_batches": args.max_batches, "compile_s": whole.compile_s, "results": rows}
