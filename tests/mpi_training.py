"""Run by tests/test_mpi.py under ``mpiexec -n R``, and imported by it for the one-process reference.

``python mpi_training.py train OUT``: data-parallel training (DEEP R on, float64) of :func:`trainer` over
``MPI.COMM_WORLD``; every rank writes its final state to ``OUT/rank<r>.npz`` (rank 0 also writes results).
``python mpi_training.py diverge OUT``: the same, but rank 1 swaps two targets of one row of ``hid_hid``
after its first optimiser step; every rank writes the error it got to ``OUT/rank<r>.txt``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from plastix import datasets
from plastix.learning.eprop import EPropConfig
from plastix.learning.trainer import Trainer

#: global batch and epochs: 21 training samples make batches of 5, 5, 5, 5 and 1, which two ranks split 2 + 3
#: and, the last, 0 + 1 (rank 0 gets nothing); 12 test samples: 5, 5, 2
BATCH, EPOCHS = 5, 2


def dataset():
    return datasets.load("randman", num_classes=3, num_units=20, train_per_class=7, test_per_class=4,
                         duration_ms=30.0, seed=4)


def trainer(ds, out_dir=None, comm=None) -> Trainer:
    c = EPropConfig(num_inputs=ds.train.num_units, num_outputs=3, num_hidden=16, input_density=0.3,
                    recurrent_density=0.3, row_padding=2.0, rewiring="deep-r", lr=0.05, l1=0.3, seed=3,
                    dtype="float64")
    return Trainer(c, ds, batch_size=BATCH, out_dir=out_dir, progress=False, comm=comm)


def state(tr: Trainer) -> dict:
    """Everything the comparison needs: per projection rowlen, ind, w, m, v (full ragged arrays), readout,
    rate, per-epoch losses and accuracies, rewirings per batch."""
    out = {}
    for p in tr.net.projections:
        a = tr.net.arrays(p)
        for k in ("rowlen", "ind", "w", "m", "v"):
            out[f"{p}.{k}"] = np.array(a[k])
    out.update(w_out=tr.net.w_out, b_out=tr.net.b_out, rate=tr.net.rate)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        out[key] = np.array([e[key] for e in tr.results["epochs"]])
    for p, counts in tr.results["rewirings_per_batch"].items():
        out[f"rewired.{p}"] = np.array(counts)
    return out


def main(mode: str, out: Path) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    tr = trainer(dataset(), out / "run", comm=comm)
    if mode == "diverge":
        if comm.Get_rank() == 1:
            apply = tr.net.apply_gradients

            def apply_then_corrupt(samples):   # one rank's connectivity goes its own way
                res = apply(samples)
                if tr.net.opt_step == 1:
                    sim = tr.net.sim
                    pre, post = sim.connectivity("hid_hid")
                    first = int(np.argmax(pre[1:] == pre[:-1]))   # a row's first two synapses trade weights
                    w = sim.get("hid_hid", "w")
                    w[[first, first + 1]] = w[[first + 1, first]]
                    sim.set_connectivity("hid_hid", pre, post, w=w)
                return res
            tr.net.apply_gradients = apply_then_corrupt
        try:
            tr.fit(EPOCHS)
            msg = "no error"
        except Exception as e:   # noqa: BLE001 -- the test reads what each rank got
            msg = f"{type(e).__name__}: {e}"
        (out / f"rank{comm.Get_rank()}.txt").write_text(msg)
        return
    tr.fit(EPOCHS)
    np.savez(out / f"rank{comm.Get_rank()}.npz", **state(tr), ranks=tr.results["ranks"],
             bytes_per_batch=tr.parallel.bytes_per_batch)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
