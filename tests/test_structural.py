"""Structural plasticity: connectivity-update row code (remove, add, sample_free), custom_update groups,
schedules inside the compiled loop, and their error reporting.

Every result is checked against an independent plain-Python model of the ragged matrix
(tests/structural_reference.py) that implements the documented semantics: swap-remove (the row's last
synapse moves into the freed slot and is visited next, with every per-synapse array), append on add with
unnamed per-synapse variables at zero, and the column view as flat slot ids in ascending (i, k) order.

Per-synapse values encode their synapse: ``u = 1 + pre * 1000 + post + w`` (exact in float32), so a value
that did not move with its synapse shows up at once.

Compile cost: kernels are cached per generated source, which does not depend on population sizes or
row strides, so each network *structure* below compiles once per CPU mode and is reused with other data
(``set_connectivity`` / ``set``) or other sizes.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import CPU_MODES, make_sim, reference_inputs, spike_pairs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy_reference import simulate
from structural_reference import RaggedReference, assert_column_view, ragged_rows

import plastix as px

F32 = np.float32


def _set_update_param(sim, update: str, name: str, value: float) -> None:
    """``sim.set_param`` on a connectivity update's parameter."""
    sim.set_param(update, name, value)


# ---------------------------------------------------------------------------------------------------------
# Models (module level: their source is parsed)
# ---------------------------------------------------------------------------------------------------------
def _on_pre_w(s):
    add_to_post(s.w)  # noqa: F821  (provided by code generation)


def _on_post_u(s):
    s.u += 1.0


#: two per-synapse vars, and on_post so that the projection keeps a column view
TWO_VARS = px.WeightUpdateModel(name="two_vars", vars={"w": 0.0, "u": 0.0}, on_pre=_on_pre_w, on_post=_on_post_u)


def _prune_rule(row, p):
    for s in row.synapses:
        if s.weight < p.threshold:
            s.remove()
            row.count += 1


def _random_prune_rule(row, p, rng):
    for s in row.synapses:
        row.visits += 1
        if rng.uniform() < p.prob:
            s.remove()


def _grow_rule(row, p):
    k = 0
    while k < p.n:
        j = row.sample_free()
        if j < 0:
            row.nofree += 1
        else:
            ok = row.add(j, weight=p.w0)
            if not ok:
                row.failed += 1
        k += 1


def _ageing_rule(row):
    for s in row.synapses:
        s.age += 1


PRUNE = px.ConnectivityUpdateModel(name="prune", params={"threshold": 0.5}, row_vars={"count": px.Var(0, "int32")},
                                   var_refs=("weight",), row_update=_prune_rule)
RANDOM_PRUNE = px.ConnectivityUpdateModel(name="random_prune", params={"prob": 0.5},
                                          row_vars={"visits": px.Var(0, "int32")}, row_update=_random_prune_rule)
GROW = px.ConnectivityUpdateModel(name="grow", params={"n": 1.0, "w0": 0.5},
                                  row_vars={"nofree": px.Var(0, "int32"), "failed": px.Var(0, "int32")},
                                  var_refs=("weight",), row_update=_grow_rule)
AGEING = px.ConnectivityUpdateModel(name="ageing", vars={"age": px.Var(0, "int32")}, row_update=_ageing_rule)

UPDATES = ("prune", "rprune", "grow", "ageing")
ROW_VARS = {"count": "prune", "visits": "rprune", "nofree": "grow", "failed": "grow"}


def _property_net(n_pre: int, n_post: int, stride: int) -> px.Network:
    net = px.Network(dt=1.0, seed=7)
    a = net.add_population("a", n_pre, px.neurons.lif())  # no input: silent, so run() only advances time
    b = net.add_population("b", n_post, px.neurons.lif())
    empty = px.connect.FromArrays(np.zeros(0, int), np.zeros(0, int))  # every example starts with "set"
    proj = net.add_projection("ab", a, b, connectivity=empty, weight_update=TWO_VARS, row_stride=stride)
    net.add_connectivity_update("prune", proj, PRUNE, var_refs={"weight": "w"})
    net.add_connectivity_update("rprune", proj, RANDOM_PRUNE)
    net.add_connectivity_update("grow", proj, GROW, var_refs={"weight": "w"})
    net.add_connectivity_update("ageing", proj, AGEING)
    return net


def _rows(sim, proj):
    r = sim.ragged(proj)
    return ragged_rows(r["ind"], r["row_length"])


def _encoded(pre, post, w):
    return 1.0 + np.asarray(pre) * 1000.0 + np.asarray(post) + np.asarray(w)


# ---------------------------------------------------------------------------------------------------------
# 1. Random operation sequences against the plain-Python model
# ---------------------------------------------------------------------------------------------------------
class _Harness:
    """The same operations on a serial and a parallel simulation, mirrored on a RaggedReference; random
    outcomes (rng prune, sample_free) are read from the serial run and must then match everywhere."""

    def __init__(self, n_pre, n_post, stride):
        self.n_pre, self.n_post, self.stride = n_pre, n_post, stride
        self.sims = {m: make_sim(_property_net(n_pre, n_post, stride), m) for m in sorted(CPU_MODES)}
        self.ref = RaggedReference(n_pre, n_post, stride, ("w", "u", "age"))
        self.row_vars = {v: np.zeros(n_pre, np.int64) for v in ROW_VARS}
        self.totals = {u: {"removed": 0, "added": 0, "failed_adds": 0} for u in UPDATES}

    def _update(self, name):
        """custom_update(name) on every simulation; their counts must agree; returns them."""
        counts = []
        for sim in self.sims.values():
            got = sim.custom_update(name)
            assert set(got) == {name}
            counts.append({k: got[name][k] for k in ("removed", "added", "failed_adds")})
            assert all(got[name][k] >= 0 for k in ("row_s", "global_s", "columns_s"))
        assert counts[0] == counts[1], f"{name}: serial and parallel counts differ"
        for k, v in counts[0].items():
            self.totals[name][k] += v
        return counts[0]

    def _serial_rows(self):
        r = self.sims["serial"].ragged("ab")
        return ragged_rows(r["ind"], r["row_length"])

    # -- operations ----------------------------------------------------------------------------------------
    def set(self, seed):
        rng = np.random.default_rng(seed)
        pre, post = [], []
        for i in range(self.n_pre):
            k = int(rng.integers(0, min(self.stride, self.n_post) + 1))
            pre += [i] * k
            post += rng.choice(self.n_post, k, replace=False).tolist()
        order = rng.permutation(len(pre))  # synapse lists need not be sorted by row
        pre, post = np.array(pre, np.int64)[order], np.array(post, np.int64)[order]
        w = rng.integers(0, 64, pre.size) / 64.0
        u = _encoded(pre, post, w)
        for sim in self.sims.values():
            sim.set_connectivity("ab", pre, post, w=w, u=u)
        self.ref.set_connectivity(pre, post, w=w, u=u)  # age (an update's own var) restarts at 0

    def prune(self, k):
        thr = k / 64.0
        for sim in self.sims.values():
            _set_update_param(sim, "prune", "threshold", thr)
        counts = self._update("prune")
        removed = self.ref.remove_where(lambda i, s: F32(s["w"]) < F32(thr))
        self.row_vars["count"] += removed
        assert counts == {"removed": sum(removed), "added": 0, "failed_adds": 0}

    def rprune(self, prob):
        before = [self.ref.targets(i) for i in range(self.n_pre)]
        for sim in self.sims.values():
            _set_update_param(sim, "rprune", "prob", prob)
        counts = self._update("rprune")
        after = self._serial_rows()
        gone = []
        for i in range(self.n_pre):
            assert set(after[i]) <= set(before[i]), f"row {i}: random prune created synapses"
            gone.append(set(before[i]) - set(after[i]))
        if prob == 0.0:
            assert not any(gone)
        if prob == 1.0:  # uniform() < 1 always
            assert all(len(a) == 0 for a in after)
        # each synapse visited exactly once (the moved one included), whatever was removed
        self.row_vars["visits"] += [len(b) for b in before]
        removed = self.ref.remove_where(lambda i, s: s["j"] in gone[i])
        assert counts == {"removed": sum(removed), "added": 0, "failed_adds": 0}

    def grow(self, n, w0k):
        w0 = w0k / 64.0
        before = [self.ref.targets(i) for i in range(self.n_pre)]
        for sim in self.sims.values():
            _set_update_param(sim, "grow", "n", n)
            _set_update_param(sim, "grow", "w0", w0)
        counts = self._update("grow")
        after = self._serial_rows()
        want = {"removed": 0, "added": 0, "failed_adds": 0}
        for i in range(self.n_pre):
            length, added, failed, nofree = len(before[i]), 0, 0, 0
            for _ in range(n):  # what the rule must do, one sample_free / add at a time
                if length >= self.n_post:
                    nofree += 1  # every target taken: sample_free() == -1
                elif length >= self.stride:
                    failed += 1  # ok = row.add(...) on a full row: False
                else:
                    length += 1
                    added += 1
            assert after[i][: len(before[i])] == before[i], f"row {i}: add disturbed existing synapses"
            new = after[i][len(before[i]):]
            assert len(new) == added, f"row {i}: {len(new)} synapses added, expected {added}"
            assert all(0 <= j < self.n_post for j in new), f"row {i}: sample_free gave out-of-range {new}"
            assert len(set(before[i]) | set(new)) == len(before[i]) + len(new), \
                f"row {i}: sample_free gave a connected target ({before[i]} + {new})"
            for j in new:
                assert self.ref.append(i, j, w=w0)
            self.row_vars["failed"][i] += failed
            self.row_vars["nofree"][i] += nofree
            want["added"] += added
            want["failed_adds"] += failed
        assert counts == want

    def age(self):
        assert self._update("ageing") == {"removed": 0, "added": 0, "failed_adds": 0}
        self.ref.update_all("age", lambda a: a + 1)

    def run(self, n):
        for sim in self.sims.values():
            sim.run(n)  # silent network: moves the rng step on, changes no synapse

    # -- checks --------------------------------------------------------------------------------------------
    def check(self, what):
        ref = self.ref
        want_rows = [ref.targets(i) for i in range(self.n_pre)]
        for mode, sim in self.sims.items():
            at = f"[{mode}] after {what}"
            r = sim.ragged("ab", "w")
            ind, rowlen, w = r["ind"], r["row_length"], r["w"]
            u = sim.ragged("ab", "u")["u"]
            assert ind.shape == (self.n_pre, self.stride)
            assert np.all(rowlen <= self.stride), at
            rows = ragged_rows(ind, rowlen)
            for i, row in enumerate(rows):
                assert len(set(row)) == len(row), f"{at}: duplicate targets in row {i}: {row}"
                assert all(0 <= j < self.n_post for j in row), f"{at}: target out of range in row {i}: {row}"
                for k, j in enumerate(row):  # each synapse still carries its own values (new ones: u == 0)
                    assert u[i, k] == 0 or u[i, k] == F32(_encoded(i, j, w[i, k])), \
                        f"{at}: synapse ({i}, {j}) in slot {k} carries w={w[i, k]}, u={u[i, k]}"
            assert rows == want_rows, f"{at}: rows differ from the reference model"
            valid = np.arange(self.stride)[None, :] < rowlen[:, None]
            np.testing.assert_array_equal(w[valid], ref.flat("w").astype(F32), err_msg=f"{at}: w")
            np.testing.assert_array_equal(u[valid], ref.flat("u").astype(F32), err_msg=f"{at}: u")
            np.testing.assert_array_equal(sim.get("ageing", "age"), ref.flat("age"), err_msg=f"{at}: age")
            got_pre, got_post = sim.connectivity("ab")
            want_pre, want_post = ref.connectivity()
            np.testing.assert_array_equal(got_pre, want_pre, err_msg=at)
            np.testing.assert_array_equal(got_post, want_post, err_msg=at)
            np.testing.assert_array_equal(sim.get("ab", "w"), ref.flat("w").astype(F32), err_msg=at)
            for var, upd in ROW_VARS.items():
                np.testing.assert_array_equal(sim.get(upd, var), self.row_vars[var], err_msg=f"{at}: {upd}.{var}")
            for upd in UPDATES:
                assert sim.update_stats(upd) == self.totals[upd], f"{at}: update_stats({upd!r})"
            assert_column_view(sim, "ab")


_OPS = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2**31 - 1)),
    st.tuples(st.just("prune"), st.integers(0, 64)),
    st.tuples(st.just("rprune"), st.sampled_from([0.0, 0.3, 0.6, 1.0])),
    st.tuples(st.just("grow"), st.integers(0, 4), st.integers(0, 63)),
    st.tuples(st.just("age")),
    st.tuples(st.just("run"), st.integers(1, 3)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_pre=st.integers(1, 7), n_post=st.integers(1, 9), stride=st.integers(1, 7), seed=st.integers(0, 2**31 - 1),
       ops=st.lists(_OPS, min_size=1, max_size=10))
def test_random_rewiring_matches_plain_python_model(n_pre, n_post, stride, seed, ops):
    h = _Harness(n_pre, n_post, stride)
    h.check("build")
    h.set(seed)
    h.check("set_connectivity")
    for op in ops:
        getattr(h, op[0])(*op[1:])
        h.check(repr(op))


def test_sample_free_and_random_prune_statistics():
    """sample_free draws uniformly among the unconnected targets; rng.uniform() < prob removes about prob of
    the synapses; both are identical in serial and parallel kernels and differ from step to step."""
    n_pre, n_post = 3000, 6
    h = _Harness(n_pre, n_post, 6)
    pre = np.repeat(np.arange(n_pre), 3)
    post = np.tile([0, 2, 4], n_pre)
    for sim in h.sims.values():
        sim.set_connectivity("ab", pre, post, w=0.5)
        _set_update_param(sim, "grow", "n", 1)
        assert sim.custom_update("grow")["grow"]["added"] == n_pre
    rows = {m: _rows(s, "ab") for m, s in h.sims.items()}
    assert rows["serial"] == rows["parallel"]
    new = np.array([r[3] for r in rows["serial"]])
    counts = np.bincount(new, minlength=n_post)
    assert counts[[0, 2, 4]].sum() == 0
    chi2 = sum((c - n_pre / 3) ** 2 / (n_pre / 3) for c in counts[[1, 3, 5]])
    assert chi2 < 13.8, f"sample_free not uniform over the free targets: {counts}"  # p = 0.001, 2 dof
    # a second draw at a later step is a different one
    for sim in h.sims.values():
        sim.set_connectivity("ab", pre, post, w=0.5)
        sim.run(1)
        sim.custom_update("grow")
    again = np.array([r[3] for r in _rows(h.sims["serial"], "ab")])
    assert np.mean(again == new) < 0.5
    # random prune at prob 0.3
    removed = {}
    for mode, sim in h.sims.items():
        sim.set_connectivity("ab", pre, post, w=0.5)
        _set_update_param(sim, "rprune", "prob", 0.3)
        removed[mode] = sim.custom_update("rprune")["rprune"]["removed"]
        np.testing.assert_array_equal(sim.get("rprune", "visits"), np.full(n_pre, 3))
    assert removed["serial"] == removed["parallel"]
    assert abs(removed["serial"] / pre.size - 0.3) < 0.03
    np.testing.assert_array_equal(h.sims["serial"].ragged("ab")["ind"], h.sims["parallel"].ragged("ab")["ind"])


# ---------------------------------------------------------------------------------------------------------
# 2. GeNN-style scenarios
# ---------------------------------------------------------------------------------------------------------
def _remove_diagonal(row):
    for s in row.synapses:
        if s.j == row.index:
            s.remove()


def _add_diagonal(row, p):
    row.add(row.index, weight=p.wd)


def _remove_flagged(row):
    for s in row.synapses:
        if s.remove_flag != 0:
            s.remove()


def _remove_rows_of_driven_pre(row, p, pre):
    if pre.drive > p.x:
        for s in row.synapses:
            s.remove()
        pre.drive = 0.0


def _remove_to_depolarised_post(row, p, post):
    for s in row.synapses:
        if post.vpost > p.y:
            s.remove()


def _remove_diagonal_then_add_it(row, p):
    for s in row.synapses:
        if s.j == row.index:
            s.remove()
    row.add(row.index, weight=p.wd)


def _add_to_row_target(row, p):
    row.add(row.tgt, weight=p.w0)


def _remove_target_zero(row):
    for s in row.synapses:
        if s.j == 0:
            s.remove()


REMOVE_DIAGONAL = px.ConnectivityUpdateModel(name="remove_diagonal", row_update=_remove_diagonal)
ADD_DIAGONAL = px.ConnectivityUpdateModel(name="add_diagonal", params={"wd": 0.25}, var_refs=("weight",),
                                          row_update=_add_diagonal)
REDIAGONAL = px.ConnectivityUpdateModel(name="rediagonal", params={"wd": 0.5}, var_refs=("weight",),
                                        row_update=_remove_diagonal_then_add_it)
REMOVE_FLAGGED = px.ConnectivityUpdateModel(name="remove_flagged", vars={"remove_flag": px.Var(0, "int32")},
                                            row_update=_remove_flagged)
REMOVE_DRIVEN = px.ConnectivityUpdateModel(name="remove_driven", params={"x": 1.0}, pre_var_refs=("drive",),
                                           row_update=_remove_rows_of_driven_pre)
REMOVE_DEPOLARISED = px.ConnectivityUpdateModel(name="remove_depolarised", params={"y": -60.0},
                                                post_var_refs=("vpost",), row_update=_remove_to_depolarised_post)
ADD_TO_TARGET = px.ConnectivityUpdateModel(name="add_to_target", params={"w0": 0.75}, var_refs=("weight",),
                                           row_vars={"tgt": px.Var(0, "int32")}, row_update=_add_to_row_target)
REMOVE_TARGET_ZERO = px.ConnectivityUpdateModel(name="remove_target_zero", row_update=_remove_target_zero)

N = 8  # scenario population size
SCENARIO_VARS = ("w", "u", "remove_flag")


def _scenario_net() -> px.Network:
    net = px.Network(dt=1.0, seed=5)
    a = net.add_population("a", N, px.neurons.lif())
    b = net.add_population("b", 5, px.neurons.lif())
    aa = net.add_projection("aa", a, a, connectivity=px.connect.AllToAll(), weight_update=TWO_VARS, row_stride=N)
    ab = net.add_projection("ab", a, b, connectivity=px.connect.AllToAll(), init={"w": 0.5}, row_stride=5)
    net.add_connectivity_update("nodiag", aa, REMOVE_DIAGONAL)
    net.add_connectivity_update("diag", aa, ADD_DIAGONAL, var_refs={"weight": "w"})
    net.add_connectivity_update("rediag", aa, REDIAGONAL, var_refs={"weight": "w"})
    net.add_connectivity_update("flagged", aa, REMOVE_FLAGGED)
    net.add_connectivity_update("driven", aa, REMOVE_DRIVEN, pre_var_refs={"drive": "i_offset"})
    net.add_connectivity_update("depolarised", aa, REMOVE_DEPOLARISED, post_var_refs={"vpost": "v"})
    net.add_connectivity_update("addj", aa, ADD_TO_TARGET, var_refs={"weight": "w"})
    net.add_connectivity_update("cut_aa", aa, REMOVE_TARGET_ZERO, group="cut")
    net.add_connectivity_update("cut_ab", ab, REMOVE_TARGET_ZERO, group="cut")
    return net


def _scenario(mode):
    """A scenario simulation with ``aa`` all-to-all, ``w`` / ``u`` encoding each synapse, and its model."""
    sim = make_sim(_scenario_net(), mode)
    pre, post = np.repeat(np.arange(N), N), np.tile(np.arange(N), N)
    w = (pre * 8 + post) / 64.0
    sim.set_connectivity("aa", pre, post, w=w, u=_encoded(pre, post, w))
    ref = RaggedReference(N, N, N, SCENARIO_VARS)
    ref.set_connectivity(pre, post, w=w, u=_encoded(pre, post, w))
    return sim, ref


def _assert_aa(sim, ref, what):
    r = sim.ragged("aa", "w")
    rows = ragged_rows(r["ind"], r["row_length"])
    assert rows == [ref.targets(i) for i in range(N)], f"{what}: rows differ"
    np.testing.assert_array_equal(sim.get("aa", "w"), ref.flat("w").astype(F32), err_msg=what)
    np.testing.assert_array_equal(sim.get("aa", "u"), ref.flat("u").astype(F32), err_msg=what)
    np.testing.assert_array_equal(sim.get("flagged", "remove_flag"), ref.flat("remove_flag"), err_msg=what)
    assert_column_view(sim, "aa")


def test_remove_then_add_diagonal(cpu_mode):
    sim, ref = _scenario(cpu_mode)
    got = sim.custom_update("nodiag")["nodiag"]
    removed = ref.remove_where(lambda i, s: s["j"] == i)
    assert (got["removed"], got["added"], got["failed_adds"]) == (N, 0, 0)
    _assert_aa(sim, ref, "remove diagonal")
    # swap-remove: row i's last synapse (target N-1) took slot i
    assert ref.targets(2) == [0, 1, N - 1, 3, 4, 5, 6] and removed == [1] * N
    got = sim.custom_update("diag")["diag"]
    assert (got["removed"], got["added"], got["failed_adds"]) == (0, N, 0)
    for i in range(N):
        assert ref.append(i, i, w=0.25)
    _assert_aa(sim, ref, "add diagonal")
    ind = sim.ragged("aa")["ind"]
    np.testing.assert_array_equal(ind[:, N - 1], np.arange(N))  # appended at the end of each row
    # the diagonal is back: the set of synapses equals all-to-all again
    pre, post = sim.connectivity("aa")
    assert sorted(zip(pre.tolist(), post.tolist())) == [(i, j) for i in range(N) for j in range(N)]


def test_remove_and_add_in_one_rule(cpu_mode):
    """One rule removing the diagonal and appending it again (no sample_free in the rule)."""
    sim, ref = _scenario(cpu_mode)
    got = sim.custom_update("rediag")["rediag"]
    assert (got["removed"], got["added"], got["failed_adds"]) == (N, N, 0)
    ref.remove_where(lambda i, s: s["j"] == i)
    for i in range(N):
        assert ref.append(i, i, w=0.5)
    _assert_aa(sim, ref, "remove and re-add the diagonal")


def test_remove_synapses_flagged_from_python(cpu_mode):
    sim, ref = _scenario(cpu_mode)
    rng = np.random.default_rng(4)
    for round_ in range(3):
        n = len(ref.flat("w"))
        flags = (rng.uniform(size=n) < 0.3).astype(np.int32) * rng.integers(1, 5, n).astype(np.int32)
        sim.set("flagged", "remove_flag", flags)
        for row, f in zip((s for r in ref.rows for s in r), flags):
            row["remove_flag"] = float(f)
        got = sim.custom_update("flagged")["flagged"]
        removed = ref.remove_where(lambda i, s: s["remove_flag"] != 0)
        assert got["removed"] == sum(removed) == int(np.count_nonzero(flags))
        _assert_aa(sim, ref, f"flag round {round_}")
        assert not ref.flat("remove_flag").any()


def test_remove_rows_by_presynaptic_variable(cpu_mode):
    sim, ref = _scenario(cpu_mode)
    drive = np.array([0.0, 2.0, 0.5, 1.5, 1.0, 3.0, -1.0, 1.01], np.float32)
    sim.set("a", "i_offset", drive)
    got = sim.custom_update("driven")["driven"]
    driven = drive > 1.0
    removed = ref.remove_where(lambda i, s: bool(driven[i]))
    assert got["removed"] == sum(removed) == N * int(driven.sum())
    _assert_aa(sim, ref, "remove driven rows")
    np.testing.assert_array_equal(sim.ragged("aa")["row_length"], np.where(driven, 0, N))
    # pre.<ref> is writable: the rule reset the drive of the rows it emptied
    np.testing.assert_array_equal(sim.get("a", "i_offset"), np.where(driven, 0.0, drive).astype(F32))
    assert sim.custom_update("driven")["driven"]["removed"] == 0


def test_remove_synapses_by_postsynaptic_variable(cpu_mode):
    sim, ref = _scenario(cpu_mode)
    v = np.array([-70.0, -50.0, -60.0, -59.5, -65.0, -40.0, -70.0, -61.0], np.float32)
    sim.set("a", "v", v)
    got = sim.custom_update("depolarised")["depolarised"]
    removed = ref.remove_where(lambda i, s: bool(v[s["j"]] > -60.0))
    assert got["removed"] == sum(removed) == N * int((v > -60.0).sum())
    _assert_aa(sim, ref, "remove synapses onto depolarised targets")
    np.testing.assert_array_equal(sim.get("a", "v"), v)  # post vars are read-only


def test_group_runs_every_member(cpu_mode):
    """A group spanning two projections runs both members and reports each."""
    sim, ref = _scenario(cpu_mode)
    got = sim.custom_update("cut")
    assert set(got) == {"cut_aa", "cut_ab"}
    assert got["cut_aa"]["removed"] == N and got["cut_ab"]["removed"] == N
    ref.remove_where(lambda i, s: s["j"] == 0)
    _assert_aa(sim, ref, "cut")
    _, post = sim.connectivity("ab")
    assert post.size == N * 4 and 0 not in post
    np.testing.assert_array_equal(sim.get("ab", "w"), np.full(N * 4, 0.5, F32))
    assert sim.update_stats("cut_ab") == {"removed": N, "added": 0, "failed_adds": 0}
    assert set(sim.update_timings()) >= {"cut_aa", "cut_ab"}
    assert set(sim.update_timings("cut_ab")) == {"row_s", "global_s", "columns_s"}


# ---------------------------------------------------------------------------------------------------------
# 3. A network keeps simulating correctly through repeated rewiring
# ---------------------------------------------------------------------------------------------------------
def _rewire_rule(row, p, rng):
    for s in row.synapses:
        if s.weight < p.thr or rng.uniform() < p.prob:
            s.remove()
    k = 0
    while k < p.n:
        j = row.sample_free()
        if j >= 0:
            ok = row.add(j, weight=p.w0)  # noqa: F841 - row code: a checked add (a full row is no error)
        k += 1


REWIRE = px.ConnectivityUpdateModel(name="rewire", params={"thr": 0.0, "prob": 0.1, "n": 1.0, "w0": 1.0},
                                    var_refs=("weight",), row_update=_rewire_rule)

BOUNDARIES = (40, 80, 120, 160)  # rewiring happens when sim.step reaches these
STEPS = 200
GAP = 10  # the spike source is silent in the GAP steps before each boundary


def _rewire_net(precision):
    net = px.Network(dt=1.0, seed=13, precision=precision)
    src = net.add_population("src", 20, px.neurons.spike_source_array())
    tgt = net.add_population("tgt", 16, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0),
                             init={"v": px.init.Uniform(0.0, 5.0)})
    st_ = net.add_projection("st", src, tgt, connectivity=px.connect.FixedNumberPost(6),
                             init={"w": px.init.Uniform(2.0, 6.0)}, row_stride=10)
    stdp = px.weight_update.stdp_additive(tau_plus=10.0, tau_minus=10.0, a_plus=0.1, a_minus=0.12, w_max=2.0)
    tt = net.add_projection("tt", tgt, tgt, connectivity=px.connect.FixedNumberPost(4), weight_update=stdp,
                            init={"w": px.init.Uniform(0.0, 1.5)}, row_stride=8)
    net.add_connectivity_update("st_rw", st_, REWIRE, params={"prob": 0.2, "n": 2.0, "w0": 4.0},
                                var_refs={"weight": "w"}, group="rewire")
    net.add_connectivity_update("tt_rw", tt, REWIRE, params={"thr": 0.3, "prob": 0.1, "n": 1.0, "w0": 1.0},
                                var_refs={"weight": "w"}, group="rewire")
    return net


def _source_times():
    rng = np.random.default_rng(8)
    silent = np.zeros(STEPS, bool)
    for b in BOUNDARIES:
        silent[b - GAP: b] = True
    steps = np.flatnonzero(~silent)
    return [steps[rng.uniform(size=steps.size) < 0.12].astype(np.float64) for _ in range(20)]


def test_network_simulates_exactly_through_repeated_rewiring(cpu_mode):
    """Chunks of the compiled run between rewirings equal the numpy reference started from a snapshot.

    The reference ignores spikes emitted before its start step, so every snapshot is taken when nothing is
    in flight: the spike source is silent for GAP steps before each rewiring, the LIF targets have no drive
    of their own, and the test asserts that neither population spiked in the step before a snapshot (so no
    spike, STDP trace event or in_syn input is pending).  Serial float32 must match bit for bit; parallel
    kernels (another summation order) run in float64 and match to 1e-9."""
    precision = "float32" if cpu_mode == "serial" else "float64"
    exact = cpu_mode == "serial"
    sim = make_sim(_rewire_net(precision), cpu_mode)
    times = _source_times()
    sim.set_spike_times("src", times)
    sim.record_spikes("src")
    sim.record_spikes("tgt")
    starts = (0,) + BOUNDARIES
    stops = BOUNDARIES + (STEPS,)
    totals = {"removed": 0, "added": 0}
    tgt_spikes = 0
    for start, stop in zip(starts, stops):
        assert sim.step == start
        if start:
            got = sim.custom_update("rewire")
            assert set(got) == {"st_rw", "tt_rw"}
            for k in totals:
                totals[k] += got["st_rw"][k] + got["tt_rw"][k]
            assert_column_view(sim, "tt")  # STDP's on_post walks the column view
            for proj, stride in (("st", 10), ("tt", 8)):
                r = sim.ragged(proj)
                assert np.all(r["row_length"] <= stride)
                for row in ragged_rows(r["ind"], r["row_length"]):
                    assert len(set(row)) == len(row)
        future = {"src": [t[t >= start - 0.5] for t in times]}
        pops, projs = reference_inputs(sim, future)
        n_before = {p: len(sim.spikes(p)[0]) for p in ("src", "tgt")}
        sim.run(stop - start)
        ref = simulate(pops, projs, stop - start, 1.0, precision=precision, start_step=start)
        for p in ("src", "tgt"):
            t_ms, idx = sim.spikes(p)
            got = spike_pairs(t_ms[n_before[p]:], idx[n_before[p]:], 1.0)
            rs, ri = ref["spikes"][p]
            assert got == sorted(zip(rs.tolist(), ri.tolist())), f"{p} spikes differ in steps [{start}, {stop})"
            if stop in BOUNDARIES:
                assert all(s != stop - 1 for s, _ in got), \
                    f"{p} spiked in step {stop - 1}: a spike would be in flight at the snapshot (test design)"
        tgt_spikes += len(ref["spikes"]["tgt"][0])

        def check(got, want, what):
            if exact:
                np.testing.assert_array_equal(got, np.asarray(want, got.dtype), err_msg=f"{what} at {stop}")
            else:
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{what} at {stop}")

        for v in ("v", "refrac"):
            check(sim.get("tgt", v), ref["vars"]["tgt"][v], f"tgt.{v}")
        for q in projs:
            r = sim.ragged(q["name"], "w")
            valid = np.arange(r["w"].shape[1])[None, :] < q["row_length"][:, None]
            check(r["w"][valid], ref["syn_vars"][q["name"]]["w"][valid], f"{q['name']}.w")
            check(sim.get(q["name"], "in_syn"), ref["in_syn"][q["name"]], f"{q['name']}.in_syn")
        check(sim.get("tt", "x"), ref["pre_vars"]["tt"]["x"], "tt.x")
        check(sim.get("tt", "y"), ref["post_vars"]["tt"]["y"], "tt.y")
    assert tgt_spikes > 100, "too little activity to be a meaningful test"
    assert totals["removed"] > 20 and totals["added"] > 20, f"rewiring did too little: {totals}"


# ---------------------------------------------------------------------------------------------------------
# 4. Scheduled updates (every=...) equal manual custom_update calls
# ---------------------------------------------------------------------------------------------------------
def _prune_weak(row, p):
    for s in row.synapses:
        if s.weight < p.thr:
            s.remove()


def _regrow_fixed(row, p):
    j = row.index
    while row.length < p.target_len:
        j = (j + 7) % row.num_post
        row.add(j, weight=p.w0)


PRUNE_WEAK = px.ConnectivityUpdateModel(name="prune_weak", params={"thr": 0.6}, var_refs=("weight",),
                                        row_update=_prune_weak)
REGROW_FIXED = px.ConnectivityUpdateModel(name="regrow_fixed", params={"target_len": 8.0, "w0": 1.0},
                                          var_refs=("weight",), row_update=_regrow_fixed)


def _scheduled_net(scheduled: bool) -> px.Network:
    """Scheduled (every=5) and unscheduled copies of the same two rules; one simulation uses the scheduled
    pair, the other switches it off by its parameters (prune nothing, regrow to length 0) and calls the
    unscheduled pair from Python.  Both networks have one structure, so they share compiled kernels."""
    net = px.Network(dt=1.0, seed=21)
    inp = net.add_population("in", 30, px.neurons.poisson(), init={"rate": 120.0})
    out = net.add_population("out", 20, px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=10.0))
    stdp = px.weight_update.stdp_additive(tau_plus=10.0, tau_minus=10.0, a_plus=0.05, a_minus=0.08, w_max=2.0)
    io = net.add_projection("io", inp, out, connectivity=px.connect.FixedNumberPost(8), weight_update=stdp,
                            init={"w": px.init.Uniform(0.5, 1.5)}, row_stride=12)
    on, off = {"thr": 0.6}, {"thr": -1.0}
    grow_on, grow_off = {"target_len": 8.0, "w0": 1.0}, {"target_len": 0.0, "w0": 1.0}
    net.add_connectivity_update("prune_s", io, PRUNE_WEAK, var_refs={"weight": "w"}, every=5,
                                params=on if scheduled else off)
    net.add_connectivity_update("regrow_s", io, REGROW_FIXED, var_refs={"weight": "w"}, every=5,
                                params=grow_on if scheduled else grow_off)
    net.add_connectivity_update("prune", io, PRUNE_WEAK, var_refs={"weight": "w"}, params=on)
    net.add_connectivity_update("regrow", io, REGROW_FIXED, var_refs={"weight": "w"}, params=grow_on)
    return net


def test_scheduled_updates_equal_manual_custom_update(cpu_mode):
    """every=5 runs the groups at the end of steps 4, 9, ... inside the compiled loop, whatever the run
    chunks; that equals run(5) + custom_update from Python (the rules draw no random numbers: a scheduled
    update at the end of step s uses step s for its counters, a manual one after run() uses sim.step = s+1)."""
    sched = make_sim(_scheduled_net(True), cpu_mode)
    manual = make_sim(_scheduled_net(False), cpu_mode)
    for sim in (sched, manual):
        sim.record_spikes("in")
        sim.record_spikes("out")
    for n in (7, 18, 3, 22):  # 50 steps in chunks that do not line up with the schedule
        sched.run(n)
    totals = {u: {"removed": 0, "added": 0, "failed_adds": 0} for u in ("prune", "regrow")}
    for _ in range(10):
        manual.run(5)
        for group in ("prune", "regrow"):
            got = manual.custom_update(group)[group]
            for k in totals[group]:
                totals[group][k] += got[k]
    assert sched.step == manual.step == 50
    for p in ("in", "out"):
        a, b = sched.spikes(p), manual.spikes(p)
        np.testing.assert_array_equal(a[0], b[0], err_msg=f"{p} spike times")
        np.testing.assert_array_equal(a[1], b[1], err_msg=f"{p} spike neurons")
    assert len(sched.spikes("out")[0]) > 50
    a_, b_ = sched.connectivity("io"), manual.connectivity("io")
    np.testing.assert_array_equal(a_[0], b_[0])
    np.testing.assert_array_equal(a_[1], b_[1])
    for var in ("w", "x", "y"):
        np.testing.assert_array_equal(sched.get("io", var), manual.get("io", var), err_msg=var)
    np.testing.assert_array_equal(sched.get("out", "v"), manual.get("out", "v"))
    for u in ("prune", "regrow"):
        assert sched.update_stats(f"{u}_s") == manual.update_stats(u) == totals[u]
        assert manual.update_stats(f"{u}_s") == sched.update_stats(u) == {"removed": 0, "added": 0,
                                                                          "failed_adds": 0}
    assert totals["prune"]["removed"] > 10 and totals["regrow"]["added"] == totals["prune"]["removed"]
    assert_column_view(sched, "io")
    assert_column_view(manual, "io")


# ---------------------------------------------------------------------------------------------------------
# 5. Bad input
# ---------------------------------------------------------------------------------------------------------
def test_strict_add_on_full_row_raises_capacity_error(cpu_mode):
    sim, _ = _scenario(cpu_mode)
    sim.set("addj", "tgt", np.zeros(N, np.int32))
    with pytest.raises(px.CapacityError, match=r"'addj': 8 row.add calls found their row full \(row_stride 8\)"):
        sim.custom_update("addj")
    np.testing.assert_array_equal(sim.ragged("aa")["row_length"], np.full(N, N))  # nothing was added
    assert sim.update_stats("addj") == {"removed": 0, "added": 0, "failed_adds": 0}  # strict: not counted as failed


def test_out_of_range_add_raises_state_error(cpu_mode):
    sim, ref = _scenario(cpu_mode)
    sim.custom_update("nodiag")
    ref.remove_where(lambda i, s: s["j"] == i)
    tgt = np.array([-1, N, 0, 1, N + 5, 2, 3, 4], np.int32)
    sim.set("addj", "tgt", tgt)
    with pytest.raises(px.StateError, match=r"'addj': 3 row.add calls had a target outside \[0, 8\)"):
        sim.custom_update("addj")
    for i, j in enumerate(tgt):  # the bad adds were not applied, the others were
        if 0 <= j < N:
            ref.append(i, int(j), w=0.75)
    r = sim.ragged("aa")
    assert ragged_rows(r["ind"], r["row_length"]) == [ref.targets(i) for i in range(N)]


def _writes_post(row, post):
    for s in row.synapses:
        post.vpost = 1.0


def _writes_j(row):
    for s in row.synapses:
        s.j = 3


def _reads_post_outside_loop(row, post):
    x = post.vpost  # noqa: F841


def _unknown_synapse_var(row):
    for s in row.synapses:
        s.nope += 1.0


def _nested_synapse_loops(row):
    for s in row.synapses:
        for s2 in row.synapses:
            s2.remove()


def _writes_row_index(row):
    row.index = 3


def _add_as_condition(row):
    if row.add(0):
        row.index2 = 1


def _remove_weakest_in_loop(row):
    for s in row.synapses:
        row.remove_weakest("w", 1)


def _remove_weakest_in_expression(row):
    x = 1 + row.remove_weakest("w", 1)  # noqa: F841


@pytest.mark.parametrize("fn, message", [
    (_writes_post, r"post.vpost is read-only"),
    (_writes_j, r"s.j is read-only"),
    (_reads_post_outside_loop, r"post.vpost is only defined inside the synapse loop"),
    (_unknown_synapse_var, r"unknown name s.nope"),
    (_nested_synapse_loops, r"synapse loops cannot be nested"),
    (_writes_row_index, r"row.index is read-only"),
    (_add_as_condition, r"row.add\(\) must be a statement"),
    (_remove_weakest_in_loop, r"row.remove_weakest cannot be used inside a synapse loop"),
    (_remove_weakest_in_expression, r"row.remove_weakest\(...\) must be a statement"),
])
def test_bad_row_code_raises_model_error(fn, message):
    model = px.ConnectivityUpdateModel(name="bad", post_var_refs=("vpost",), row_update=fn)
    net = px.Network()
    a = net.add_population("a", 4, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.AllToAll())
    net.add_connectivity_update("bad_update", "aa", model, post_var_refs={"vpost": "v"})
    with pytest.raises(px.ModelError, match=message) as e:
        px.Simulation(net, backend="cpu").build()
    assert "bad_update" in str(e.value)


def test_bad_model_declarations():
    with pytest.raises(px.ModelError, match="needs a row_update"):
        px.ConnectivityUpdateModel(name="empty")
    with pytest.raises(px.ModelError, match=r"\['w'\] are both own vars and var_refs"):
        px.ConnectivityUpdateModel(name="clash", vars={"w": 0.0}, var_refs=("w",), row_update=_ageing_rule)
    with pytest.raises(px.ModelError, match="must be a Python identifier"):
        px.ConnectivityUpdateModel(name="bad", var_refs=("1w",), row_update=_ageing_rule)


def test_bad_network_wiring_raises_network_error():
    net = px.Network()
    a = net.add_population("a", 4, px.neurons.lif())
    proj = net.add_projection("aa", a, a, connectivity=px.connect.AllToAll())
    dense = net.add_projection("dense", a, a, connectivity=px.connect.Dense())
    with pytest.raises(px.NetworkError, match=r"'u1'.*var_ref 'weight' -> 'nope'.*no such variable"):
        net.add_connectivity_update("u1", proj, PRUNE, var_refs={"weight": "nope"})
    with pytest.raises(px.NetworkError, match=r"'u1'.*var_ref 'weight' -> 'weight'"):  # default: same name
        net.add_connectivity_update("u1", proj, PRUNE)
    with pytest.raises(px.NetworkError, match=r"'u1'.*var_refs \['speed'\] are not declared"):
        net.add_connectivity_update("u1", proj, PRUNE, var_refs={"weight": "w", "speed": "w"})
    with pytest.raises(px.NetworkError, match=r"'u1'.*pre_var_ref 'drive' -> 'current'.*population 'a'"):
        net.add_connectivity_update("u1", proj, REMOVE_DRIVEN, pre_var_refs={"drive": "current"})
    with pytest.raises(px.NetworkError, match=r"'u1'.*post_var_ref 'vpost' -> 'vpost'"):
        net.add_connectivity_update("u1", proj, REMOVE_DEPOLARISED)
    with pytest.raises(px.NetworkError, match=r"'u1'.*is not a projection of this network"):
        net.add_connectivity_update("u1", "nope", PRUNE, var_refs={"weight": "w"})
    with pytest.raises(px.NetworkError, match=r"'u1'.*projection 'dense' is dense"):
        net.add_connectivity_update("u1", dense, AGEING)
    with pytest.raises(px.NetworkError, match=r"'u1'.*model must be a ConnectivityUpdateModel"):
        net.add_connectivity_update("u1", proj, TWO_VARS)
    with pytest.raises(px.NetworkError, match="every must be a positive integer"):
        net.add_connectivity_update("u1", proj, AGEING, every=0)
    net.add_connectivity_update("g1", proj, AGEING, group="g")
    with pytest.raises(px.NetworkError, match=r"group 'g' already updates projection 'aa' \(with 'g1'\)"):
        net.add_connectivity_update("g2", proj, PRUNE, var_refs={"weight": "w"}, group="g")
    with pytest.raises(px.NetworkError, match=r"per-synapse vars \['age'\] already exist"):
        net.add_connectivity_update("g3", proj, AGEING)
    with pytest.raises(px.NetworkError, match="already used"):
        net.add_connectivity_update("g1", proj, PRUNE, var_refs={"weight": "w"})
    b = net.add_population("b", 3, px.neurons.lif())
    ab = net.add_projection("ab", a, b, connectivity=px.connect.AllToAll())
    with pytest.raises(px.NetworkError, match="all members of group 'g' need the same 'every'"):
        net.add_connectivity_update("g4", ab, PRUNE, var_refs={"weight": "w"}, group="g", every=3)
    with pytest.raises(px.NetworkError, match=r"'g5'.*params \['thr'\]"):
        net.add_connectivity_update("g5", ab, PRUNE, var_refs={"weight": "w"}, params={"thr": 1.0})
    # another update's own per-synapse var is reachable through var_refs
    net.add_connectivity_update("reads_age", proj, PRUNE, var_refs={"weight": "age"})


def test_unknown_group_and_update_names_raise_state_error():
    sim, _ = _scenario("serial")
    with pytest.raises(px.StateError,
                       match=r"no connectivity or custom updates in group 'nope'; groups: \[.*'cut'.*\]"):
        sim.custom_update("nope")
    with pytest.raises(px.StateError, match="unknown connectivity update 'cut'"):  # a group, not an update
        sim.update_stats("cut")
    with pytest.raises(px.StateError, match="unknown connectivity update 'nope'"):
        sim.update_timings("nope")
    with pytest.raises(px.StateError, match=r"connectivity update 'flagged' has no variable 'flag'"):
        sim.get("flagged", "flag")


# ---------------------------------------------------------------------------------------------------------
# Regression tests for bugs found while this file was written (all fixed)
# ---------------------------------------------------------------------------------------------------------
def test_set_param_reaches_connectivity_update_params():
    h = _Harness(3, 4, 4)
    sim = h.sims["serial"]
    sim.set_connectivity("ab", [0, 0, 1], [0, 1, 2], w=[0.1, 0.9, 0.4])
    sim.set_param("prune", "threshold", 0.5)
    assert sim.custom_update("prune")["prune"]["removed"] == 2


def _sample_free_in_condition(row):
    if row.sample_free() >= 0:
        row.count += 1


SAMPLE_FREE_IN_IF = px.ConnectivityUpdateModel(name="sf_if", row_vars={"count": px.Var(0, "int32")},
                                               row_update=_sample_free_in_condition)


def test_sample_free_in_if_condition():
    net = px.Network(dt=1.0, seed=1)
    a = net.add_population("a", 4, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(2), row_stride=4)
    net.add_connectivity_update("sf_if", "aa", SAMPLE_FREE_IN_IF)
    sim = px.Simulation(net, backend="cpu", parallel=False)
    sim.custom_update("sf_if")
    np.testing.assert_array_equal(sim.get("sf_if", "count"), np.ones(4))


def _continue_in_inner_while(row):
    for s in row.synapses:
        m = 0
        while m < 2:
            m += 1
            if m == 1:
                continue
            s.weight += 1.0


def _continue_in_inner_for(row):
    for s in row.synapses:
        for m in range(2):
            if m == 0:
                continue
            s.weight += 1.0


def _break_in_inner_for(row):
    for s in row.synapses:
        for m in range(3):
            s.weight += 1.0
            break


@pytest.mark.parametrize("fn", [_continue_in_inner_while, _continue_in_inner_for, _break_in_inner_for])
def test_continue_and_break_in_inner_loops(fn):
    model = px.ConnectivityUpdateModel(name=fn.__name__.strip("_"), var_refs=("weight",), row_update=fn)
    net = px.Network(dt=1.0, seed=1)
    a = net.add_population("a", 6, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(4), init={"w": 0.0}, row_stride=6)
    net.add_connectivity_update("inc", "aa", model, var_refs={"weight": "w"})
    sim = px.Simulation(net, backend="cpu", parallel=False)
    sim.custom_update("inc")
    np.testing.assert_array_equal(sim.get("aa", "w"), np.ones(24, F32))  # every synapse incremented once


def test_column_view_consistent_after_failed_custom_update():
    sim, _ = _scenario("serial")  # aa all-to-all: every row full
    flags = np.zeros(N * N, np.int32)
    flags[[0, N, 2 * N, 3 * N]] = 1  # first synapse of rows 0-3
    sim.set("flagged", "remove_flag", flags)
    assert sim.custom_update("flagged")["flagged"]["removed"] == 4
    sim.set("addj", "tgt", np.full(N, 3, np.int32))
    with pytest.raises(px.CapacityError):
        sim.custom_update("addj")  # rows 0-3 get a synapse onto target 3, rows 4-7 are full
    assert sim.ragged("aa")["row_length"].tolist() == [N] * N
    assert_column_view(sim, "aa")


def test_unknown_projection_name_is_named_in_the_error():
    net = px.Network()
    a = net.add_population("a", 4, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.AllToAll())
    with pytest.raises(px.NetworkError) as e:
        net.add_connectivity_update("u1", "nope", AGEING)
    assert "nope" in str(e.value)


def test_projections_with_sample_free_rules_stay_duplicate_free():
    """The target bitmask behind sample_free needs duplicate-free rows: duplicates are refused up front
    (instead of sample_free later returning a target that is still connected)."""
    n_pre = 200
    h = _Harness(n_pre, 3, 4)
    sim = h.sims["serial"]
    with pytest.raises(px.StateError, match="duplicate synapses"):
        sim.set_connectivity("ab", np.repeat(np.arange(n_pre), 3), np.tile([1, 1, 2], n_pre),
                             w=np.tile([0.1, 0.9, 0.9], n_pre))


# ---------------------------------------------------------------------------------------------------------
# SET: exact removal of each row's weakest synapses (row.remove_weakest), fast sample_free
# ---------------------------------------------------------------------------------------------------------
def test_weakest_slots_selection_matches_numpy():
    """_weakest_slots (counting bracket from a sample or the previous row's threshold, candidate
    compaction, whole-row fallback) returns exactly the n smallest |values|, ties by lowest slot (NaN
    counts as +inf), in ascending slot order: every distribution and size that exercises its paths,
    float32 and float64."""
    import inspect

    import numba

    from plastix.kernels import sampling

    ns = {"np": np}
    for name in sampling.KERNEL_FUNCTIONS:  # compiled the way generated modules compile them
        exec(inspect.getsource(getattr(sampling, name)), ns)
        ns[name] = numba.njit(ns[name])
    weakest = ns["_weakest_slots"]
    rng = np.random.default_rng(5)
    dists = {"normal": lambda n: rng.normal(size=n), "ties": lambda n: rng.integers(-3, 4, n).astype(float),
             "skewed": lambda n: rng.exponential(size=n) ** 6,
             "zeros": lambda n: np.where(rng.random(n) < 0.1, 0.0, rng.normal(size=n)),
             "constant": lambda n: np.full(n, 2.5),
             "inf": lambda n: np.where(rng.random(n) < 0.2, np.inf, rng.normal(size=n)),
             "nan": lambda n: np.where(rng.random(n) < 0.3, np.nan,
                                       np.where(rng.random(n) < 0.1, -np.inf, rng.normal(size=n))),
             "bimodal": lambda n: rng.normal(size=n) * 1e-3 + np.where(rng.random(n) < 0.5, 5.0, 0.0),
             "tiny": lambda n: rng.normal(size=n) * 1e-30}
    for trial in range(900):
        rl = int(rng.choice([1, 2, 7, 100, 511, 512, 600, 1000, 2048]))
        spare = int(rng.choice([0, 1, 5, 300, 2000]))  # scratch longer than the row: the fast path's room
        dist = list(dists)[trial % len(dists)]
        arr = np.zeros((3, rl + spare), np.float32 if trial % 2 else np.float64)
        arr[1, :rl] = dists[dist](rl)
        n = int(rng.integers(-1, rl + 2)) if trial % 3 else max(1, rl // 10)
        scratch = np.full(rl + spare, -7.0)
        if trial % 4:  # the previous row's threshold (another distribution) is the first guess
            arr[0, :rl] = dists[list(dists)[(trial // 4) % len(dists)]](rl)
            weakest(arr, 0, rl, max(1, n), scratch)
        count = weakest(arr, 1, rl, n, scratch)
        key = np.where(np.isnan(arr[1, :rl]), np.inf, np.abs(arr[1, :rl]))
        want = np.sort(np.lexsort((np.arange(rl), key))[: min(max(n, 0), rl)])
        assert count == want.size, (rl, spare, dist, n)
        np.testing.assert_array_equal(scratch[:count].astype(np.int64), want, err_msg=f"{(rl, spare, dist, n)}")


@pytest.mark.parametrize("weights", ["normal", "ties"])
def test_set_rewire_removes_exactly_the_weakest(weights):
    """SET on rows long enough for the sampled selection: exactly floor(F K) synapses per row go, the
    weakest (ties: lowest slots first), every per-synapse array moves with its synapse, new targets are
    free and zeroed; results do not depend on the kernel variant, partitions or threads, also on the
    second rewire (the first one's new synapses all tie at w = 0)."""
    from plastix.bench import rewire

    n_pre, k, frac = 1200, 600, 0.1
    n = int(frac * k)
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=n_pre * k) if weights == "normal" else rng.integers(-4, 5, n_pre * k) / 4.0
    runs = []
    for kw in ({"parallel": False}, {"parallel": True, "partitions": 2},
               {"parallel": True, "partitions": 3, "threads": 1}):
        sim = px.Simulation(rewire.build(n_pre, k, frac, seed=2), backend="cpu", **kw)
        sim.set("proj", "w", w0)
        states = [sim.ragged("proj", "w")]
        states[0]["trace"] = sim.ragged("proj", "trace")["trace"]
        for _ in range(2):
            sim.custom_update("set")
            states.append(sim.ragged("proj", "w"))
            states[-1]["trace"] = sim.ragged("proj", "trace")["trace"]
        before, after = states[0], states[1]
        check = rewire.check_invariants(before, after, frac, n_pre)
        assert check["invariants_ok"], check["problems"]
        # the removed original slots are the n smallest by (|w|, slot)
        absw = np.abs(before["w"].astype(np.float64))
        kept = np.zeros((n_pre, k), bool)  # trace = original slot in the row + 1
        rows = np.nonzero(after["trace"] != 0)[0]
        kept[rows, after["trace"][after["trace"] != 0].astype(np.int64) - 1] = True
        for i in range(n_pre):
            want = np.sort(np.lexsort((np.arange(k), absw[i]))[:n])
            np.testing.assert_array_equal(np.nonzero(~kept[i])[0], want, err_msg=f"row {i}")
        second = states[2]
        assert np.all(second["row_length"] == k)
        if weights == "normal":  # second rewire: the new synapses (w = 0, tied) are the weakest and go
            assert np.all((second["trace"] != 0).sum(axis=1) == k - n)
            def ids(tr):  # (row, original slot) of the kept synapses
                return np.nonzero(tr != 0)[0] * (k + 1) + tr[tr != 0].astype(np.int64)

            assert np.all(np.isin(ids(second["trace"]), ids(after["trace"])))
        runs.append(states)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_rewire_invariant_check_catches_a_synapse_that_lost_its_state():
    """The bench's independent check fails when a kept synapse's weight or trace is swapped with
    another's, when a kept synapse appears twice, and when a strong synapse went instead of a weak one."""
    from plastix.bench import rewire

    n_pre, k, frac = 40, 20, 0.25
    sim = px.Simulation(rewire.build(n_pre, k, frac, seed=5), backend="cpu", parallel=False)
    before = sim.ragged("proj", "w")
    before["trace"] = sim.ragged("proj", "trace")["trace"]
    sim.custom_update("set")
    after = sim.ragged("proj", "w")
    after["trace"] = sim.ragged("proj", "trace")["trace"]
    assert rewire.check_invariants(before, after, frac, n_pre)["invariants_ok"]
    kept = np.nonzero(after["trace"][3] != 0)[0]
    swapped = {key: v.copy() for key, v in after.items()}
    swapped["w"][3, kept[[0, 1]]] = swapped["w"][3, kept[[1, 0]]]
    twice = {key: v.copy() for key, v in after.items()}
    twice["trace"][3, kept[1]] = twice["trace"][3, kept[0]]
    for bad in (swapped, twice):
        got = rewire.check_invariants(before, bad, frac, n_pre)
        assert "a kept synapse lost its own target, weight or trace" in got["problems"]
    strong = {key: v.copy() for key, v in before.items()}
    strong["w"][3, after["trace"][3, kept[0]].astype(int) - 1] = 0.0  # a kept synapse was the weakest
    assert "a stronger synapse was removed while a weaker one was kept" in \
        rewire.check_invariants(strong, after, frac, n_pre)["problems"]
