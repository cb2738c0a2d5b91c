"""The examples keep working: build their networks and run them briefly (their plotting is not tested)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

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
