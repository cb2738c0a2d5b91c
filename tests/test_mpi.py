"""Data-parallel training over MPI (plastix.learning.distributed): ``mpiexec -n 2`` runs of tests/mpi_training.py
against one process with the same global batch, a diverging rank, the CLI under mpiexec, and a missing MPI.

The mpiexec runs need mpi4py and an MPI launcher next to this Python (the ``mpi`` extra, part of ``test``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plastix.cli.main import main
from plastix.parallel import MPIUnavailableError, import_mpi, launched_size, sum_to_all, world

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
import mpi_training  # noqa: E402 -- the script the ranks run, beside this file


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install -e '.[mpi]')")
    exe = shutil.which("mpiexec", path=str(BIN)) or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("mpi4py is installed but no mpiexec was found (the mpich wheel of the mpi extra brings one)")
    return exe


def _launch(ranks: int, *argv, cwd=HERE, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks argv...``; Open MPI's launcher also needs to be told that root and more ranks than
    cores are fine (MPICH's, the extra's, needs nothing)."""
    exe = _mpiexec()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")
    res = subprocess.run([exe, "-n", str(ranks), *map(str, argv)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0 or not check, f"mpiexec failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


def cli_one_then_two_ranks(args, tmp_path):
    """``plastix ARGS --epochs 1`` in this process (which also compiles the kernels before the ranks run),
    then under ``mpiexec -n 2`` (into ``tmp_path/mpi``), which must print one JSON summary (rank 0's) with
    ``ranks`` 2 and one epoch's ``epoch_comm_s``.  Returns (one process's first epoch, that summary, the
    2-rank run's first epoch from its results.json)."""
    main(args + ["--epochs", "1", "--out", str(tmp_path / "one")])
    single = json.loads((tmp_path / "one" / "results.json").read_text())["epochs"][0]
    first = _launch(2, BIN / "plastix", *args, "--epochs", "1", "--out", tmp_path / "mpi", cwd=tmp_path)
    lines = [line for line in first.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, first.stdout
    out = json.loads(lines[0])
    assert out["ranks"] == 2 and out["epochs"] == 1 and len(out["epoch_comm_s"]) == 1
    epoch = json.loads((tmp_path / "mpi" / "results.json").read_text())["epochs"][0]
    return single, out, epoch


@pytest.fixture(scope="module")
def reference():
    """One process, the same global batch: also compiles the kernels once before the ranks start."""
    tr = mpi_training.trainer(mpi_training.dataset())
    tr.fit(mpi_training.EPOCHS)
    return mpi_training.state(tr)


def test_two_ranks_train_like_one_process_with_the_same_global_batch(reference, tmp_path):
    """DEEP R on, float64, batches of 5 split 2 + 3 (and a last one of 1: rank 0's share empty): connectivity
    and rewiring counts exactly as one process, weights, Adam moments, readout and losses to 1e-12 of the
    largest value (only the sums' association differs), and the two ranks bitwise identical."""
    _launch(2, sys.executable, "mpi_training.py", "train", tmp_path)
    r0, r1 = (dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1))
    assert int(r0["ranks"]) == 2
    assert sum(int(reference[k].sum()) for k in reference if k.startswith("rewired.")) > 20   # DEEP R rewired
    for key, ref in reference.items():
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=f"ranks differ in {key}")
        if key.endswith((".rowlen", ".ind")) or key.startswith("rewired.") or "accuracy" in key:
            np.testing.assert_array_equal(r0[key], ref, err_msg=key)
        else:
            np.testing.assert_allclose(r0[key], ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max(), err_msg=key)
    # rank 0 alone wrote the results
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["ranks"] == 2 and len(res["epochs"]) == 2
    assert all(e["comm_s"] >= 0 and e["compute_s"] > 0 for e in res["epochs"])


def test_a_rank_whose_connectivity_diverges_is_reported_on_every_rank(reference, tmp_path):
    _launch(2, sys.executable, "mpi_training.py", "diverge", tmp_path)
    for r in (0, 1):
        msg = (tmp_path / f"rank{r}.txt").read_text()
        assert msg.startswith("RankDivergenceError"), msg
        assert "after training epoch 1" in msg and "'hid_hid' on rank 1" in msg, msg
        assert "in_hid" not in msg, msg   # its weights stayed in step: every rank applied the same gradients
    assert not (tmp_path / "run" / "results.json").exists()


def test_one_rank_communicator_is_bitwise_one_process(reference):
    """COMM_SELF (one rank through the whole data-parallel path) gives exactly the one-process run."""
    MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed (pip install -e '.[mpi]')")
    tr = mpi_training.trainer(mpi_training.dataset(), comm=MPI.COMM_SELF)
    tr.fit(mpi_training.EPOCHS)
    for key, value in mpi_training.state(tr).items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)


def test_cli_trains_under_mpiexec_prints_once_and_resumes(tmp_path):
    """``mpiexec -n 2 plastix train``: one JSON summary (rank 0's) reporting 2 ranks; ``--resume`` continues
    the checkpoint on both ranks; the result is that of one process to float32 rounding."""
    args = ["train", "--dataset", "randman", "--hidden", "12", "--dt", "2", "--batch-size", "50", "--json"]
    single, out, epoch = cli_one_then_two_ranks(args, tmp_path)
    plastix = BIN / "plastix"
    assert epoch["train_loss"] == pytest.approx(single["train_loss"], rel=1e-3)
    assert abs(epoch["test_accuracy"] - single["test_accuracy"]) <= 0.01
    second = _launch(2, plastix, *args, "--epochs", "2", "--resume", "--out", tmp_path / "mpi", cwd=tmp_path)
    out = json.loads(second.stdout)
    assert out["ranks"] == 2 and out["epochs"] == 2
    res = json.loads((tmp_path / "mpi" / "results.json").read_text())
    assert res["epochs"][0] == epoch and res["epochs"][1]["epoch"] == 2   # the first epoch kept, one more run


def test_sum_to_all_is_rank_ordered_and_identical_everywhere(tmp_path):
    """Three ranks add 1e16, 1.0 and -1e16: rank order gives (1e16 + 1) - 1e16 = 0 in float64 on every rank."""
    script = tmp_path / "sum.py"
    script.write_text(
        "import sys\nimport numpy as np\nfrom plastix.parallel import sum_to_all, world\n"
        "comm = world()\nvalue = np.array([[1e16, 1.0, -1e16][comm.Get_rank()], float(comm.Get_rank())])\n"
        "total = sum_to_all(comm, value)\n"
        "np.save(sys.argv[1] + f'/sum{comm.Get_rank()}.npy', total)\n")
    _launch(3, sys.executable, script, tmp_path, cwd=tmp_path)
    for r in range(3):
        np.testing.assert_array_equal(np.load(tmp_path / f"sum{r}.npy"), [0.0, 3.0])


def test_an_error_on_one_rank_ends_the_whole_job(tmp_path):
    """Rank 1 fails alone while rank 0 waits in a reduction: abort_on_error ends the job (no hang), naming the rank."""
    script = tmp_path / "fail.py"
    script.write_text(
        "import numpy as np\nfrom plastix.parallel import abort_on_error, sum_to_all, world\ncomm = world()\n"
        "with abort_on_error(comm):\n"
        "    if comm.Get_rank() == 1:\n        raise ValueError('bad input on this rank')\n"
        "    sum_to_all(comm, np.zeros(3))\n")
    res = _launch(2, sys.executable, script, cwd=tmp_path, timeout=120, check=False)
    assert res.returncode != 0
    assert "rank 1 of 2: error: bad input on this rank; aborting every rank" in res.stderr + res.stdout


def test_launched_size_reads_the_launchers_variables():
    assert launched_size({}) == 1
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert launched_size({"PMI_SIZE": "3", "PMI_RANK": "0"}) == 3
    assert launched_size({"PMIX_RANK": "0", "SLURM_NTASKS": "8"}) == 8
    assert launched_size({"SLURM_NTASKS": "8"}) == 1   # an sbatch allocation alone launches no ranks


def test_missing_mpi4py_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # as if not installed: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    with pytest.raises(MPIUnavailableError, match=r"mpi4py is not installed.*pip install \"plastix\[mpi\]\""):
        import_mpi()
    with pytest.raises(MPIUnavailableError):
        world()
    assert sum_to_all(None, np.arange(3.0)).tolist() == [0.0, 1.0, 2.0]   # one process needs no MPI
    # plastix train started by mpirun (the launcher's variables set) without mpi4py: an error, not R copies
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "0")
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "randman", "--epochs", "0", "--out", "unused"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "MPI launcher with 2 ranks" in err and 'pip install "plastix[mpi]"' in err, err
