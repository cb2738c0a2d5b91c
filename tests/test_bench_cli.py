"""The ``plastix`` command and the bench-sim contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plastix.bench import lif_network


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "plastix.cli.main", *args], capture_output=True, text=True, check=True)
    return out.stdout


def test_version():
    assert _cli("--version").strip().startswith("plastix ")


def test_bench_sim_json_contract_and_numpy_match():
    out = json.loads(_cli("bench", "sim", "--neurons", "500", "--row-length", "50", "--steps", "200",
                          "--deterministic", "--reference", "numpy", "--json"))
    for key in ("neurons", "synapses", "steps", "backend", "threads", "wall_s", "steps_per_s", "spikes",
                "synaptic_events_per_s", "numpy_wall_s", "speedup_vs_numpy", "spikes_match", "compile_s"):
        assert key in out
    assert out["synapses"] == 500 * 50 and out["backend"] == "cpu"
    assert out["spikes_match"] is True and out["spikes"] == out["numpy_spikes"]
    assert 0.01 < out["firing_fraction_per_step"] < 0.08


def test_bench_sim_noisy_runs():
    out = json.loads(_cli("bench", "sim", "--neurons", "300", "--row-length", "30", "--steps", "100", "--json"))
    assert out["spikes"] > 0 and out["deterministic"] is False


def test_bench_parameters_match_peer_definition():
    shared = json.loads((Path(__file__).parents[1] / "benchmarks" / "peers" / "network.json").read_text())
    shared.pop("description")
    assert shared == lif_network.PARAMS


def test_topomap_cli_json(tmp_path):
    out = json.loads(_cli("topomap", "--seconds", "0.2", "--record-every", "0.1", "--no-breakdown", "--backend",
                          "cpu", "--out", str(tmp_path), "--json"))
    for key in ("scale", "neurons_per_layer", "model_seconds", "wall_s", "realtime_factor", "compile_s",
                "synapses_initial", "synapses_final", "rf_spread_initial", "rf_spread_final", "ad_initial", "ad_final"):
        assert key in out
    assert (tmp_path / "results.json").exists() and (tmp_path / "maps.png").exists()
