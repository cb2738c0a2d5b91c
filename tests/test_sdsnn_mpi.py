"""Data-parallel SD-SNN training over MPI (plastix.learning.sdsnn with ``comm``,
plastix.learning.distributed.BPTTDataParallel): ``mpiexec -n 2`` runs of tests/mpi_sdsnn.py against one
process with the same global batch, one rank through the MPI path, diverging ranks, and ``plastix sdsnn``
under mpiexec.  Launching works as in tests/test_mpi.py (the ``mpi`` extra brings mpi4py and mpiexec)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from plastix.cli.main import main

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
import mpi_sdsnn  # noqa: E402 -- the script the ranks run, beside this file
from test_mpi import _launch, cli_one_then_two_ranks  # noqa: E402

#: Integer state: equal to one process exactly, not to a tolerance.
EXACT = (".pre", ".post", "accuracy", "neurons", "pruned_per_step")


@pytest.fixture(scope="module")
def references():
    """One process, the same global batch, per mode (also compiles the kernels before the ranks start)."""
    out = {}
    for mode in ("none", "sparse", "faithful"):
        tr = mpi_sdsnn.trainer(mode)
        tr.fit()
        out[mode] = mpi_sdsnn.state(tr)
    return out


@pytest.mark.parametrize("mode", ["none", "sparse", "faithful"])
def test_two_ranks_train_like_one_process_with_the_same_global_batch(references, mode, tmp_path):
    """float64, batches of 5 split 2 + 3 (the last, of 1, leaves rank 0 nothing), ten structure steps (the
    faithful mode's masks, or the sparse mode's removed synapses and probe): the
    synapses, pruned counts, alive neurons and accuracies exactly as one process; weights, kernels, biases,
    spine bounds, probe values and losses to 1e-12 of the largest value (only the association of the sums
    over the batch differs; measured up to 5.6e-17 absolute); the two ranks bitwise identical."""
    reference = references[mode]
    _launch(2, sys.executable, "mpi_sdsnn.py", "train", mode, tmp_path)
    r0, r1 = (dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1))
    assert int(r0["ranks"]) == 2 and int(r0["bytes_per_batch"]) > 0
    if mode != "none":   # the structure acted: fc1 pruned (sparse: the probe scored absent synapses)
        assert reference["pruned_per_step"].sum() > 0 and reference["neurons"].tolist() != [2, 4, 12, 10]
    if mode == "sparse":
        assert any(k.startswith("probe.") for k in reference) and int(r0["probe_bytes"]) > 0
    assert reference["train_loss"][-1] < reference["train_loss"][0]   # it learned: the gradients are not 0
    assert set(r0) - {"ranks", "bytes_per_batch", "probe_bytes"} == set(reference)
    for key, ref in reference.items():
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=f"ranks differ in {key}")
        if key.endswith(EXACT) or ref.dtype.kind in "biu":
            np.testing.assert_array_equal(r0[key], ref, err_msg=key)
        else:
            np.testing.assert_allclose(r0[key], ref, rtol=1e-12, atol=1e-12 * max(np.abs(ref).max(initial=0), 1e-300),
                                       err_msg=key)
    res = json.loads((tmp_path / "run" / "results.json").read_text())   # rank 0 alone wrote it
    assert res["ranks"] == 2 and len(res["epochs"]) == 2
    assert all(e["comm_s"] >= 0 and e["compute_s"] > 0 for e in res["epochs"])


def test_one_rank_communicator_is_bitwise_one_process(references):
    """COMM_SELF (one rank through the whole data-parallel path, probe reduction included) gives exactly
    the one-process run."""
    MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed (pip install -e '.[mpi]')")
    tr = mpi_sdsnn.trainer("sparse", comm=MPI.COMM_SELF)
    tr.fit()
    for key, value in mpi_sdsnn.state(tr).items():
        np.testing.assert_array_equal(value, references["sparse"][key], err_msg=key)


@pytest.mark.parametrize("how, expect", [
    ("weights", ("after training epoch 1", "'fc1' on rank 1")),
    ("synapse", ("differ in length for ['fc1_syn_gw.gw']",))])
def test_a_rank_whose_fc1_diverges_is_reported_on_every_rank(references, how, expect, tmp_path):
    """Rank 1 alone changes fc1 after its first step: swapped weights are caught by the epoch's check,
    naming fc1 alone (every other layer stayed in step); a removed synapse at the next reduction, before
    gradients of different lengths could be mixed."""
    _launch(2, sys.executable, "mpi_sdsnn.py", "diverge", how, tmp_path)
    for r in (0, 1):
        msg = (tmp_path / f"rank{r}.txt").read_text()
        assert msg.startswith("RankDivergenceError"), msg
        assert all(e in msg for e in expect), msg
        assert "conv1" not in msg and "'fc2'" not in msg, msg


def test_cli_trains_under_mpiexec_prints_once_and_resumes(tmp_path):
    """``mpiexec -n 2 plastix sdsnn``: one JSON summary (rank 0's) with ``ranks`` 2, the time in reductions
    and the bytes reduced; ``--resume`` continues rank 0's checkpoint on both ranks; the first epoch equals
    one process's to float32 rounding."""
    args = ["sdsnn", "--dataset", "digits", "--train-limit", "40", "--test-limit", "20", "--batch-size", "10",
            "--layers", "conv2-pool2-conv8-pool2-fc12-fc10", "--steps", "6", "--structure-every", "2", "--json"]
    single, out, epoch = cli_one_then_two_ranks(args, tmp_path)
    # float32 gradients of the kernels and channel biases (2*9 + 2, 8*2*9 + 8), fc1's and fc2's synapses and
    # biases, then float64 statistics: samples, loss, correct and each of the 6 parts' length and its square
    params = 20 + 152 + out["synapses"]["fc1_syn"] + 12 + out["synapses"]["fc2_syn"] + 10
    assert out["reduce_bytes_per_batch"] == 4 * params + 8 * (3 + 2 * 6)
    assert epoch["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4)
    assert epoch["synapses"] == single["synapses"] and epoch["neurons"] == single["neurons"]
    second = _launch(2, BIN / "plastix", *args, "--epochs", "2", "--resume", "--out", tmp_path / "mpi", cwd=tmp_path)
    out = json.loads(second.stdout)
    assert out["ranks"] == 2 and out["epochs"] == 2
    res = json.loads((tmp_path / "mpi" / "results.json").read_text())
    assert res["epochs"][0]["train_loss"] == epoch["train_loss"] and res["epochs"][1]["epoch"] == 2


def test_resuming_with_another_rank_count_is_a_clear_error(tmp_path, capsys):
    """The checkpoint holds rank 0's simulation (its batch is ceil(B / R)): another rank count is refused."""
    import pickle

    args = ["sdsnn", "--dataset", "digits", "--train-limit", "10", "--test-limit", "5", "--batch-size", "10",
            "--layers", "conv2-pool2-conv8-pool2-fc12-fc10", "--steps", "6", "--json", "--out", str(tmp_path)]
    main(args + ["--epochs", "1"])
    host = tmp_path / "checkpoint_host.pkl"
    state = pickle.loads(host.read_bytes())
    host.write_bytes(pickle.dumps({**state, "ranks": 2}))   # as if written by 2 ranks
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(args + ["--epochs", "2", "--resume"])
    assert e.value.code == 2
    assert "written by 2 rank(s); resume it with as many (this run has 1)" in capsys.readouterr().err
