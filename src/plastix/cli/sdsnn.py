"""``plastix sdsnn``: an SD-SNN classifier (conv / pool / fc LIF layers, surrogate-gradient BPTT on the engine)
that prunes and regrows itself while it trains (:mod:`plastix.learning.sdsnn`, docs/sdsnn.md).

``--mode sparse`` removes pruned synapses and neurons from the ragged rows, ``faithful`` runs the authors'
masks, ``none`` trains the same network unpruned (the baseline).  Writes ``results.json``, ``sdsnn.png``
and a checkpoint to ``--out`` (``--resume`` continues exactly); the JSON summary (``--json``: the last
line of stdout) has ``test_accuracy``, ``compression``, ``neurons``, ``epoch_s``, ``compile_s`` and ``ranks``.

Started by ``mpirun -n R`` / ``srun`` with R > 1 ranks it trains data-parallel over ``MPI.COMM_WORLD``
(docs/mpi.md): each rank runs its share of every batch, only rank 0 prints and writes ``--out``, and the
summary adds rank 0's ``epoch_comm_s`` / ``epoch_compute_s`` and the bytes one rank reduces per batch.
"""
from __future__ import annotations

from pathlib import Path

from .arguments import UsageError, integer, number, on_ranks, seed


def add_arguments(p) -> None:
    from ..learning.sdsnn import DATASETS, DEFAULT_LAYERS, MODES

    p.add_argument("--dataset", choices=sorted(DATASETS), default="digits",
                   help="digits (scikit-learn's 8x8, built in), fashion_mnist (Debian's dataset-fashion-mnist or "
                        "--data-dir), mnist, nmnist, dvs_gesture (files in --data-dir; default digits)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the data set's files are")
    p.add_argument("--mode", choices=MODES, default="sparse",
                   help="sparse: pruned synapses and neurons leave the network (default); faithful: the authors' "
                        "masks; none: the unpruned baseline")
    p.add_argument("--epochs", type=integer(0), default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=integer(1, 65535), default=None,
                   help="samples per batch (default: 100, digits 25, dvs_gesture 4)")
    p.add_argument("--structure-every", type=integer(1), default=None,
                   help="batches between structure steps (default: one step per epoch, as the authors)")
    p.add_argument("--schedule-scale", type=number(0, low_open=True), default=None,
                   help="multiply the development's durations (default: 1 per epoch, or batches per epoch / "
                        "--structure-every to keep the authors' timing in epochs; < that passes through the "
                        "whole development in fewer steps)")
    p.add_argument("--layers", default=None, help=f"layer spec (default {DEFAULT_LAYERS}, classes adjusted)")
    p.add_argument("--loss", choices=("mse_rate", "ce_rate", "ce_step"), default="mse_rate",
                   help="mse_rate (the authors'), ce_rate (spike counts as logits), ce_step (li readout)")
    p.add_argument("--lr", type=number(0, low_open=True), default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--steps", type=integer(1), default=None, help="time steps per sample (default: 20, DVS 64)")
    p.add_argument("--train-limit", type=integer(1), default=None, help="use the first N training samples")
    p.add_argument("--test-limit", type=integer(1), default=None, help="use the first N test samples")
    p.add_argument("--validation", type=number(0, 1, low_open=True, high_open=True), default=None,
                   help="hold out this fraction of the training split and evaluate on it instead of the test split")
    p.add_argument("--probe-batches", type=integer(1), default=4,
                   help="sparse mode: training batches before a regrowing structure step whose gradients score "
                        "absent synapses (default 4)")
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", type=Path, default=Path("sdsnn_out"), help="results, plots, checkpoint (default sdsnn_out)")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line (no progress bar)")


def run(args) -> dict | None:
    return on_ranks(args, _sdsnn)


def _sdsnn(args, comm) -> dict:
    from ..learning.sdsnn import SDSNNSettings, SDSNNTrainer

    if args.resume and not (args.out / "checkpoint_host.pkl").exists():
        raise UsageError(f"--resume: no checkpoint in {args.out} (run without --resume first)")
    settings = SDSNNSettings(dataset=args.dataset, mode=args.mode, epochs=args.epochs, batch_size=args.batch_size,
                             structure_every=args.structure_every, schedule_scale=args.schedule_scale,
                             layers=args.layers, loss=args.loss, lr=args.lr, steps=args.steps, seed=args.seed,
                             train_limit=args.train_limit, test_limit=args.test_limit, validation=args.validation,
                             probe_batches=args.probe_batches,
                             data_dir=None if args.data_dir is None else str(args.data_dir), backend=args.backend,
                             dtype=args.precision)
    trainer = SDSNNTrainer(settings, out_dir=str(args.out), progress=not args.json, comm=comm)
    trainer.fit(resume=args.resume)
    out = trainer.summary()
    out["evaluated_on"] = "test" if args.validation is None else f"validation ({args.validation:g})"
    out["out"] = str(args.out)
    return out
