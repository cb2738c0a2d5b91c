"""Run by tests/test_sdsnn_mpi.py under ``mpiexec -n R``, and imported by it for the one-process reference.

``python mpi_sdsnn.py train MODE OUT``: data-parallel SD-SNN training (float64) of :func:`trainer` in mode
``MODE`` (none / sparse / faithful) over ``MPI.COMM_WORLD``; every rank writes its final state to
``OUT/rank<r>.npz`` (rank 0 also writes the results to ``OUT/run``).
``python mpi_sdsnn.py diverge HOW OUT``: sparse training in which rank 1 alone changes ``fc1`` after its
first optimiser step: ``weights`` swaps the weights of two synapses (the synapse count stays),
``synapse`` removes one; every rank writes the error it got to ``OUT/rank<r>.txt``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from plastix.datasets import BernoulliFrames, FrameDataset
from plastix.learning.sdsnn import SDSNNSettings, SDSNNTrainer

#: 21 training samples in global batches of 5, 5, 5, 5 and 1: two ranks split them 2 + 3 and, the last,
#: 0 + 1 (rank 0's shard empty); 12 test samples: 5, 5, 2.  Ten structure steps (one per batch), fc1
#: pruned from the sixth on, the sparse probe accumulated from then on.
BATCH, EPOCHS = 5, 2
LAYERS = "conv2-pool2-conv4-fc12-fc10"


def dataset() -> FrameDataset:
    rng = np.random.default_rng(0)
    n_train, n_test = 21, 12
    labels = rng.integers(0, 3, n_train + n_test)
    images = rng.integers(0, 120, (n_train + n_test, 1, 8, 8))
    for c in range(3):   # a class-dependent bright block: the task is learnable, the loss moves
        images[labels == c, 0, 2 * c:2 * c + 3, 1:6] += 130
    tr = BernoulliFrames(images[:n_train], labels[:n_train], steps=6, num_classes=10, seed=0)
    te = BernoulliFrames(images[n_train:], labels[n_train:], steps=6, num_classes=10, seed=0, split_key=1)
    return FrameDataset("blocks", tr, te)


def trainer(mode: str, ds=None, out_dir=None, comm=None) -> SDSNNTrainer:
    s = SDSNNSettings(dataset="digits", mode=mode, epochs=EPOCHS, batch_size=BATCH, structure_every=1,
                      schedule_scale=0.12, layers=LAYERS, lr=0.02, dtype="float64")
    tr = SDSNNTrainer(s, out_dir=out_dir, progress=False, dataset=dataset() if ds is None else ds, comm=comm)
    tr.last_probes = {}
    probes = tr._probes

    def recorded():   # the probe values the last regrowing structure step scored absent synapses by
        tr.last_probes = probes()
        return tr.last_probes
    tr._probes = recorded
    return tr


def state(tr: SDSNNTrainer) -> dict:
    """What the comparison needs: per trainable projection its synapses (pre, post) and weights, conv
    kernels and biases, fc biases, the structural state, per-epoch losses and accuracies, alive neurons and
    the structure steps' counts, and the last probe values."""
    net, out = tr.net, {}
    for p in net.synapse_counts():
        pre, post = net.sim.connectivity(p)
        out[f"{p}.pre"], out[f"{p}.post"], out[f"{p}.w"] = pre, post, np.asarray(net.sim.get(p, "w"))
    for L in net.layers:
        if L.kind == "conv":
            out[f"{L.name}.kernel"], out[f"{L.name}.bias"] = net.conv_parameters(L.name)
        elif L.kind == "fc":
            out[f"{L.name}.bias"] = np.asarray(net.sim.get(L.name, "bias"))
    for n, arrays in tr.structure_state().items():
        for i, a in enumerate(arrays):
            out[f"structure.{n}.{i}"] = np.asarray(a)
    for n, a in tr.last_probes.items():
        out[f"probe.{n}"] = a
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        out[key] = np.array([e[key] for e in tr.results["epochs"]])
    out["neurons"] = np.array(list(tr.alive_neurons().values()))
    out["pruned_per_step"] = np.array([[r["newly_pruned"] for r in st["layers"].values()]
                                       for st in tr.results["structure_steps"]]).reshape(-1)
    return out


def main(mode: str, how: str, out: Path) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if mode == "train":
        tr = trainer(how, out_dir=out / "run", comm=comm)
        tr.fit()
        np.savez(out / f"rank{comm.Get_rank()}.npz", **state(tr), ranks=tr.ranks,
                 bytes_per_batch=tr.parallel.bytes_per_batch, probe_bytes=tr.probe_bytes)
        return
    tr = trainer("sparse", comm=comm)
    if comm.Get_rank() == 1:
        apply = tr.net.apply_gradients

        def apply_then_corrupt(samples):   # one rank's fc1 goes its own way
            apply(samples)
            if tr.net.opt_step == 1:
                sim = tr.net.sim
                pre, post = sim.connectivity("fc1_syn")
                w = np.asarray(sim.get("fc1_syn", "w")).copy()
                if how == "weights":
                    w[[0, 1]] = w[[1, 0]]
                    sim.set("fc1_syn", "w", w)
                else:
                    sim.set_connectivity("fc1_syn", pre[1:], post[1:], w=w[1:])
        tr.net.apply_gradients = apply_then_corrupt
    try:
        tr.fit()
        msg = "no error"
    except Exception as e:   # noqa: BLE001 -- the test reads what each rank got
        msg = f"{type(e).__name__}: {e}"
    (out / f"rank{comm.Get_rank()}.txt").write_text(msg)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
