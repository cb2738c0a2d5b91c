"""Partitioned simulation (plastix.runtime.partition): ``mpiexec -n 2`` runs of tests/mpi_partition.py against
one process, the invariants of every rank's part under rewiring, save / load per rank, an error on one rank,
and bad input.

The mpiexec runs need mpi4py and an MPI launcher next to this Python (the ``mpi`` extra, part of ``test``)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import plastix as px
from plastix.errors import NetworkError
from plastix.parallel import MPIUnavailableError
from plastix.parallel.exchange import _reorder, block_bounds
from plastix.model.specs import WeightUpdateModel
from plastix.runtime.partition_build import check_partitionable

import mpi_partition as mp
from test_mpi import _launch

RANKS = 2


def _ranks(folder) -> list[dict]:
    return [dict(np.load(folder / f"rank{r}.npz")) for r in range(RANKS)]


def _one_process(run, net) -> dict:
    return run(px.Simulation(net, parallel=False))


def test_static_network_equals_one_process_spike_for_spike(tmp_path):
    """Spike-source input, sparse / dense projections, delays 0, 1 and 3, exponential synapses, float64: every
    spike, the recorded voltages (every 2 steps, over three run calls), the final neuron and postsynaptic
    state and every synapse are bitwise those of one process, on both ranks.  The same with delays 2, 3 and
    5, where the ranks exchange every 3 steps (and at the ends of run calls)."""
    reference = _one_process(mp.static_run, mp.static_network())
    delayed = _one_process(mp.static_run, mp.static_network(delay=2))
    reference.update({f"d2.{k}": v for k, v in delayed.items()})
    _launch(RANKS, sys.executable, "mpi_partition.py", "static", tmp_path)
    parts = _ranks(tmp_path)
    assert reference["exc.count"] > 100 and reference["inh.count"] > 20   # the network is active
    assert reference["exc.v.rec"].shape == (15 + 1 + 15, mp.N_EXC)        # steps 0, 2, .. of each call
    for key, ref in reference.items():
        for r, part in enumerate(parts):
            np.testing.assert_array_equal(part[key], ref, err_msg=f"rank {r}: {key}")
    # the bytes: per exchange a header of (1 + 3 populations x 1 step) int64 per rank, then the int32 ids
    spikes = sum(int(reference[f"{p}.count"]) for p in ("input", "exc", "inh"))
    assert parts[0]["timings.bytes"] == 60 * RANKS * 4 * 8 + 4 * spikes
    assert int(parts[0]["d2.exchanges"]) == 10 + 1 + 10   # 30 = 10 x 3, 1, 29 = 9 x 3 + 2
    assert delayed["exc.count"] > 100


def test_rewiring_keeps_every_ranks_invariants_and_the_stated_equalities(tmp_path):
    """DEEP R (per-synapse prune, globally reduced regrowth) and magnitude pruning, three rounds.

    Equal to one process: spikes until the first regrowth, the projection after the first prune, every
    round's prune and magnitude-prune counts, the magnitude-pruned static projection.  Conserved: DEEP R's
    synapse count (the global phase saw every rank's removals).  On every rank: rows within capacity, local
    targets in range and duplicate-free, the target bitmask matching the rows, every synapse's sign +-1 and
    its weight on the side of its sign, and the gathered connectivity the union of the ranks' parts."""
    reference = _one_process(mp.rewire_run, mp.rewiring_network())
    _launch(RANKS, sys.executable, "mpi_partition.py", "rewire", tmp_path)
    parts = _ranks(tmp_path)
    n_deep = mp.N_IN * 12
    ref_counts = reference["counts"]
    assert ref_counts[0, 0] > 20 and ref_counts[0, 3] > 0   # both rules removed synapses in the first round
    for r, part in enumerate(parts):
        for key in parts[0]:
            if not key.startswith("local."):
                np.testing.assert_array_equal(part[key], parts[0][key], err_msg=f"ranks differ in {key}")
        counts = part["counts"]
        np.testing.assert_array_equal(counts[:, 0], ref_counts[:, 0])              # DEEP R prune
        np.testing.assert_array_equal(counts[:, 3], ref_counts[:, 3])              # magnitude prune
        np.testing.assert_array_equal(counts[:, 1], counts[:, 0])                  # regrowth = removals
        np.testing.assert_array_equal(counts[:, 4], counts[:, 0])                  # global var total
        assert (counts[:, 2] == 0).all() and (counts[:, 5] == 0).all() and (counts[:, 6] == n_deep).all()
        for key in ("first.deep.pre", "first.deep.post", "first.deep.w", "exc_exc.pre", "exc_exc.post", "exc_exc.w"):
            np.testing.assert_array_equal(part[key], reference[key], err_msg=f"rank {r}: {key}")
        early, ref_early = part["exc.t"] < 20, reference["exc.t"] < 20
        np.testing.assert_array_equal(part["exc.i"][early], reference["exc.i"][ref_early])
        assert ref_early.sum() > 10
    # each rank's part of DEEP R's projection
    pieces = []
    for part in parts:
        ind, rowlen = part["local.deep.ind"], part["local.deep.rowlen"]
        lo, hi = int(part["local.deep.lo"]), int(part["local.deep.hi"])
        assert (rowlen <= ind.shape[1]).all() and ind.shape[1] <= 16
        valid = np.arange(ind.shape[1])[None, :] < rowlen[:, None]
        assert ((ind[valid] >= 0) & (ind[valid] < hi - lo)).all()
        for i in range(ind.shape[0]):
            assert len(set(ind[i, :rowlen[i]])) == rowlen[i], f"duplicate target in row {i}"
        assert bool(part["local.deep.bits_ok"])
        sign, w = part["local.deep.sign"][valid], part["local.deep.w"][valid]
        assert set(np.unique(sign)) <= {-1.0, 1.0} and (w * sign >= 0).all()
        pre = np.nonzero(valid)[0]
        pieces.append(np.stack([pre, ind[valid] + lo, w, sign], axis=1))
    union = np.concatenate(pieces)
    gathered = np.stack([parts[0]["deep.pre"], parts[0]["deep.post"], parts[0]["deep.w"], parts[0]["deep.sign"]], 1)
    np.testing.assert_array_equal(union[np.lexsort(union.T[::-1])], gathered[np.lexsort(gathered.T[::-1])])
    assert len({(a, b) for a, b in gathered[:, :2]}) == n_deep   # no duplicate synapse across ranks either


def test_an_add_to_another_ranks_target_is_a_clear_error_on_every_rank(tmp_path):
    _launch(RANKS, sys.executable, "mpi_partition.py", "offblock", tmp_path)
    parts = _ranks(tmp_path)
    assert str(parts[1]["error"]).startswith("StateError: connectivity update 'zero': 13 row.add calls had a "
                                             "target outside this rank's block [15, 31) of 31 targets"), parts[1]
    assert "test row.owns(j) first" in str(parts[1]["error"])
    assert str(parts[0]["error"]).startswith("RankFailedError: custom_update('zero') failed on rank 1"), parts[0]


def test_save_and_load_write_one_file_per_rank_and_an_error_on_one_rank_reaches_all(tmp_path):
    _launch(RANKS, sys.executable, "mpi_partition.py", "save", tmp_path)
    parts = _ranks(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("state.*")) == ["state.rank0of2.npz", "state.rank1of2.npz"]
    for part in parts:
        np.testing.assert_array_equal(part["again.v"], part["first.v"])   # continued exactly as before
        assert int(part["step"]) == 45
    assert str(parts[1]["error"]).startswith("CapacityError"), parts[1]["error"]
    assert str(parts[0]["error"]).startswith("RankFailedError: set_connectivity('exc_inh') failed on rank 1 of 2: "
                                             "CapacityError"), parts[0]["error"]


def test_one_rank_communicator_is_one_process_even_with_random_numbers():
    """COMM_SELF: the whole partition machinery with one rank, Poisson input included: bitwise the one-process
    run."""
    MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed (pip install -e '.[mpi]')")
    reference = _one_process(mp.noisy_run, mp.noisy_network())
    got = mp.noisy_run(px.Simulation(mp.noisy_network(), comm=MPI.COMM_SELF, parallel=False))
    assert reference["noise"].size > 50
    for key, ref in reference.items():
        np.testing.assert_array_equal(got[key], ref, err_msg=key)


def test_poisson_input_on_two_ranks_equals_one_process_spike_for_spike(tmp_path):
    """Random numbers keyed by the network seed and global neuron ids: rank 1's Poisson neurons draw the
    one-process numbers, so the stochastic network is the one-process run on both ranks."""
    reference = _one_process(mp.noisy_run, mp.noisy_network())
    _launch(RANKS, sys.executable, "mpi_partition.py", "noisy", tmp_path)
    assert reference["noise"].size > 50 and (reference["noise"] >= 9).sum() > 20   # rank 1's block fires
    for r, part in enumerate(_ranks(tmp_path)):
        for key, ref in reference.items():
            np.testing.assert_array_equal(part[key], ref, err_msg=f"rank {r}: {key}")


def test_block_bounds_and_the_exchange_reorder():
    np.testing.assert_array_equal(block_bounds(10, 3), [0, 3, 6, 10])
    with pytest.raises(ValueError, match="cannot split 2 neurons over 3 ranks"):
        block_bounds(2, 3)
    # 2 ranks, 2 populations, 2 steps: segments arrive (rank, pop, step); each pop comes back by step, then rank
    counts = np.array([[[1, 0], [2, 1]], [[1, 2], [0, 1]]])
    # rank 0: p0s0 [0], p1s0 [10, 11], p1s1 [12]; rank 1: p0s0 [5], p0s1 [6, 7], p1s1 [15]
    recv = np.array([0, 10, 11, 12, 5, 6, 7, 15])
    (c0, ids0), (c1, ids1) = _reorder(recv, counts)
    np.testing.assert_array_equal(c0, [2, 2])
    np.testing.assert_array_equal(ids0, [0, 5, 6, 7])
    np.testing.assert_array_equal(c1, [2, 2])
    np.testing.assert_array_equal(ids1, [10, 11, 12, 15])


def test_bad_input_is_a_clear_error(monkeypatch):
    net = mp.static_network()
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        px.Simulation(net, comm=object())
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "mpi4py", None)
        m.setitem(sys.modules, "mpi4py.MPI", None)
        with pytest.raises(MPIUnavailableError, match=r"mpi4py is not installed.*pip install \"plastix\[mpi\]\""):
            px.Simulation(net, comm="world")
    MPI = pytest.importorskip("mpi4py.MPI", reason="mpi4py is not installed (pip install -e '.[mpi]')")
    with pytest.raises(NetworkError, match="batch_size must be 1 for a simulation partitioned over ranks"):
        px.Simulation(net, comm=MPI.COMM_SELF, batch_size=2)
    with pytest.raises(NetworkError, match="backend must be 'cpu'"):
        px.Simulation(net, "cuda", comm=MPI.COMM_SELF)
    with pytest.raises(NetworkError, match="population 'input' has 13 neurons, fewer than the 16 ranks"):
        check_partitionable(net, 16)
    reads_v = mp.static_network()
    reads_v.add_projection("by_voltage", "exc", "inh", connectivity=px.connect.FixedProbability(0.2),
                           weight_update=WeightUpdateModel(name="by_voltage", vars={"w": 0.0}, on_pre=_on_pre_v))
    with pytest.raises(NetworkError, match=r"projection 'by_voltage'.*reads presynaptic neuron variables \['v'\]"):
        check_partitionable(reads_v, 2)
    clash = mp.static_network()
    clash.add_connectivity_update("far", "exc_exc", px.ConnectivityUpdateModel(
        name="far_prune", row_vars={"part_other": px.Var(0, "int64")}, row_update=_noop_rule))
    with pytest.raises(NetworkError, match=r"connectivity update 'far': row vars \['part_other'\]"):
        check_partitionable(clash, 2)
    # STDP's presynaptic traces, row code with target ids and a scheduled global phase are supported
    stdp = mp.static_network()
    stdp.add_projection("plastic", "input", "exc", connectivity=px.connect.FixedProbability(0.2),
                        weight_update=px.weight_update.stdp_additive())
    sched = mp.rewiring_network()
    sched.connectivity_updates["regrow"].every = 5
    for net in (stdp, sched):
        check_partitionable(net, 2)


def _on_pre_v(s, pre):
    add_to_post(s.w * pre.v)  # noqa: F821  (provided by code generation)


def _noop_rule(row):
    pass


def test_row_code_on_a_part_sees_global_target_ids(tmp_path):
    """A distance rule (``|s.j - row.index| > row.num_post / 2``) prunes on 2 ranks exactly what it prunes in
    one process; a scheduled DEEP R regrowth (global phase every 5 steps) keeps the synapse count."""
    _launch(RANKS, sys.executable, "mpi_partition.py", "grid", tmp_path)
    reference = mp.grid_run(px.Simulation(mp.grid_network(), parallel=False))
    assert 0 < reference["far.removed"] < reference["exc_exc.pre"].size + reference["far.removed"]
    for r, part in enumerate(_ranks(tmp_path)):
        for key in ("far.removed", "exc_exc.pre", "exc_exc.post", "exc_exc.w"):
            np.testing.assert_array_equal(part[key], reference[key], err_msg=f"rank {r}: {key}")
        assert int(part["deep.count"]) == mp.N_IN * 12 and int(part["regrow.calls"]) > 0



def test_bench_sim_under_mpiexec_prints_once_and_matches_numpy(tmp_path, capsys):
    """``mpiexec -n 2 plastix bench sim``: one JSON line (rank 0's) reporting 2 ranks and the exchange, with the
    noiseless network's spikes equal to the plain-numpy reference and to one process."""
    import json

    from plastix.cli.main import main
    from test_mpi import BIN

    args = ["bench", "sim", "--neurons", "400", "--row-length", "40", "--steps", "100", "--deterministic", "--json"]
    res = _launch(RANKS, BIN / "plastix", *args, "--reference", "numpy", cwd=tmp_path)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, res.stdout
    out = json.loads(lines[0])
    assert out["ranks"] == 2 and out["spikes_match"] is True and out["spikes"] > 100
    assert out["compute_s"] > 0 and out["exchange_s"] > 0 and out["bytes_received_per_step"] > 0
    main(args)
    one = json.loads(capsys.readouterr().out)
    assert one["ranks"] == 1 and one["spikes"] == out["spikes"]
