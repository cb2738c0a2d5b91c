"""The topographic map partitioned over 2 ranks (``mpiexec -n 2``, tests/mpi_topomap.py) against one process,
and ``mpiexec -n 2 plastix topomap`` against ``plastix topomap``.

With global random-number element ids, presynaptic traces kept on the ghosts and a rewiring rule written for
the whole row (row.total_length, row.offset, row.owns, rows.parts), the partitioned run is the one-process
run: spikes, STDP weights and traces, every formation and elimination (docs/mpi.md, "Row code on a rank's
part", says when this holds)."""
from __future__ import annotations

import json
import sys

import numpy as np

import plastix as px
from plastix.topomap import model

import mpi_topomap as mt
from test_mpi import BIN, _launch

RANKS = 2


def test_topomap_on_two_ranks_equals_one_process(tmp_path):
    """Poisson stimulus, STDP (presynaptic traces on the ghosts), rewiring every 1 ms with a fan-in cap,
    recorded over two run calls: every spike, synapse, weight, trace and update count as in one process, on
    both ranks; each rank's rows hold only its own targets, duplicate-free."""
    reference = mt.run(px.Simulation(model.build(mt.params()), parallel=False))
    _launch(RANKS, sys.executable, "mpi_topomap.py", "run", tmp_path)
    parts = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(RANKS)]
    removed, added = reference["rewire_ff"][0] + reference["rewire_lat"][0], reference["rewire_ff"][1]
    assert removed > 50 and added > 20 and reference["target.i"].size > 100   # it rewired, and it is active
    for r, part in enumerate(parts):
        for key, ref in reference.items():
            np.testing.assert_array_equal(part[key], ref, err_msg=f"rank {r}: {key}")
        for q in ("ff", "lat"):
            ind, rowlen = part[f"local.{q}.ind"], part[f"local.{q}.rowlen"]
            lo, hi = int(part[f"local.{q}.lo"]), int(part[f"local.{q}.hi"])
            valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
            assert ((ind[valid] >= 0) & (ind[valid] < hi - lo)).all()
            for i in np.flatnonzero(rowlen):
                assert len(set(ind[i, :rowlen[i]])) == rowlen[i], f"rank {r}: duplicate target in {q} row {i}"


def test_topomap_cli_under_mpiexec_reports_two_ranks_and_the_one_process_result(tmp_path, capsys):
    from plastix.cli.main import main

    args = ["topomap", "--seconds", "0.2", "--record-every", "0.1", "--json"]
    res = _launch(RANKS, BIN / "plastix", *args, "--out", tmp_path / "two", cwd=tmp_path)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, res.stdout                                  # rank 0 alone prints
    two = json.loads(lines[0])
    assert two["ranks"] == 2 and two["exchange_s"] > 0 and two["bytes_received_per_step"] > 0
    assert json.loads((tmp_path / "two" / "results.json").read_text())["ranks"] == 2
    assert not list((tmp_path / "two").glob("*rank1*"))
    main(args + ["--out", str(tmp_path / "one")])
    one = json.loads(capsys.readouterr().out)
    assert one["ranks"] == 1
    for key in ("synapses_initial", "synapses_final", "rf_spread_final", "ad_final", "rewiring", "spikes"):
        assert two[key] == one[key], key   # exactly: the same run
