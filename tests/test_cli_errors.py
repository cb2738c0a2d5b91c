"""Bad input to any ``plastix`` subcommand ends as one line ``plastix <command>: error: ...`` and exit status 2.

Every bad argument here fails before a network is compiled or trained, so these tests take seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plastix.cli import bench_rewire
from plastix.cli.arguments import UsageError
from plastix.cli.main import main


def _error_line(capsys, argv: list[str], command: str) -> str:
    """Run ``plastix argv`` in this process; the single stderr line after ``plastix <command>: error: ``."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    prefix = f"plastix {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert captured.out == ""
    return lines[0][len(prefix):]


def _plastix_command() -> list[str]:
    """The installed ``plastix`` console script (next to this Python, or on PATH); else ``python -m``."""
    script = Path(sys.executable).with_name("plastix")
    if script.exists():
        return [str(script)]
    found = shutil.which("plastix")
    return [found] if found else [sys.executable, "-m", "plastix.cli.main"]


def _run(args: list[str], **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"} | env
    return subprocess.run(_plastix_command() + args, capture_output=True, text=True, env=environ, timeout=300)


# --- one bad argument per subcommand, rejected while parsing -------------------------------------------


def test_train_rejects_a_density_outside_its_range(capsys):
    msg = _error_line(capsys, ["train", "--input-density", "1.5"], "train")
    assert msg == "argument --input-density: must be a finite number in (0, 1], got '1.5'"


def test_topomap_rejects_a_scale_outside_its_range(capsys):
    msg = _error_line(capsys, ["topomap", "--scale", "9"], "topomap")
    assert msg == "argument --scale: must be an integer in 1..7, got '9'"


def test_topomap_rejects_breakdown_and_no_breakdown_together(capsys):
    msg = _error_line(capsys, ["topomap", "--breakdown", "--no-breakdown"], "topomap")
    assert msg == "--breakdown and --no-breakdown contradict each other"


def test_bench_sim_rejects_zero_steps(capsys):
    msg = _error_line(capsys, ["bench", "sim", "--steps", "0"], "bench sim")
    assert msg == "argument --steps: must be an integer >= 1, got '0'"


def test_bench_rewire_rejects_a_fraction_of_zero(capsys):
    msg = _error_line(capsys, ["bench", "rewire", "--fraction", "0"], "bench rewire")
    assert msg == "argument --fraction: must be a finite number in (0, 1], got '0'"


def test_bench_train_rejects_a_density_above_one(capsys):
    msg = _error_line(capsys, ["bench", "train", "--densities", "1.0,2"], "bench train")
    assert msg == "argument --densities: must be comma-separated finite numbers in (0, 1], got '1.0,2'"


@pytest.mark.parametrize("argv, command, flag", [
    (["train", "--lr", "nan"], "train", "--lr"),
    (["train", "--seed", "-1"], "train", "--seed"),
    (["train", "--levels", "0,x"], "train", "--levels"),
    (["topomap", "--seconds", "inf"], "topomap", "--seconds"),
    (["bench", "sim", "--threads", "0"], "bench sim", "--threads"),
    (["bench", "rewire", "--repeats", "0"], "bench rewire", "--repeats"),
    (["bench", "train", "--random-data", "40,30"], "bench train", "--random-data"),
])
def test_non_finite_and_malformed_values_name_their_flag(capsys, argv, command, flag):
    assert _error_line(capsys, argv, command).startswith(f"argument {flag}: ")


def test_an_unknown_flag_is_reported_by_its_subcommand(capsys):
    assert _error_line(capsys, ["bench", "rewire", "--bogus", "1"], "bench rewire") == \
        "unrecognized arguments: --bogus 1"


# --- errors found after parsing: flags that do not fit together, plastix's own errors ----------------------


def test_bench_rewire_row_longer_than_the_population(capsys):
    msg = _error_line(capsys, ["bench", "rewire", "--pre", "10", "--row-length", "2000"], "bench rewire")
    assert msg.startswith("--row-length (2000) must not exceed --pre (10)")


def test_bench_sim_row_longer_than_the_population(capsys):
    msg = _error_line(capsys, ["bench", "sim", "--neurons", "10", "--row-length", "11"], "bench sim")
    assert msg.startswith("--row-length (11) must not exceed --neurons (10)")


def test_train_option_of_another_data_set(capsys):
    msg = _error_line(capsys, ["train", "--dataset", "randman", "--frame-ms", "2"], "train")
    assert msg == "--frame-ms applies to --dataset spoken_digits only"


def test_train_missing_data_set_is_a_plastix_error_on_one_line(capsys, tmp_path):
    msg = _error_line(capsys, ["train", "--dataset", "shd", "--data-dir", str(tmp_path)], "train")
    assert "shd_train.h5" in msg and str(tmp_path) in msg


# --- --debug and real bugs keep the traceback -----------------------------------------------------------


def test_debug_raises_the_error_itself():
    with pytest.raises(UsageError, match=r"--row-length \(2000\) must not exceed --pre \(10\)"):
        main(["bench", "rewire", "--pre", "10", "--row-length", "2000", "--debug"])


def test_an_unexpected_exception_is_not_turned_into_a_one_line_error(monkeypatch):
    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(bench_rewire, "run", broken)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(["bench", "rewire"])


# --- the installed command, in a process of its own ------------------------------------------------------


def test_entry_point_prints_one_line_and_exits_2():
    res = _run(["bench", "rewire", "--pre", "10", "--row-length", "2000"])
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        "plastix bench rewire: error: --row-length (2000) must not exceed --pre (10): "
        "a row's targets are distinct postsynaptic neurons"]


def test_entry_point_with_debug_prints_the_traceback():
    res = _run(["bench", "rewire", "--pre", "10", "--row-length", "2000", "--debug"])
    assert res.returncode == 1
    assert res.stderr.startswith("Traceback (most recent call last):")
    assert res.stderr.splitlines()[-1].startswith("plastix.cli.arguments.UsageError: --row-length (2000)")


def test_entry_point_cuda_without_a_gpu():
    probe = subprocess.run([sys.executable, "-c", "from plastix.backends import cuda_available as a; print(a())"],
                           capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"})
    if probe.stdout.strip() == "True":
        pytest.skip("a CUDA GPU is usable here")
    res = _run(["bench", "sim", "--backend", "cuda", "--neurons", "100", "--row-length", "10", "--steps", "10"])
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("plastix bench sim: error: backend 'cuda' is not usable: ")
