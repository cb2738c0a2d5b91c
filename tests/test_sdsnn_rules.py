"""SD-SNN's structural development (plastix.structural.sdsnn) against an independent dense-mask reference.

The reference below re-implements the specification's pseudo-code (SDSNN.md section 6) the way the
authors' code holds its data: one dense weight matrix per layer, ``W[unit, fan_in]`` (fc: W[post, pre];
conv: the kernel ``[c_out, c_in, kh, kw]`` as ``[c_out, c_in*kh*kw]``), a dense mask, and per-element
state arrays.  The product stores fc layers as ragged rows by *presynaptic* neuron in a shuffled slot
order, so every comparison goes through the (pre, post) pair.

``sparse=True`` gives the reference plastix's sparse semantics (docs/sdsnn.md): masked elements do not
train, importance is normalised over active elements, the regeneration value of a masked element is its
unclipped would-be weight (the probe), and regrown elements restart from fresh spines (+-r0).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from plastix.errors import CapacityError
from plastix.structural.sdsnn import (SDSNN, ArrayBias, Candidates, KernelArrays, LayerRule, Outgoing, RaggedArrays,
                                      SDSNNConfig, SDSNNSchedule, sdsnn_variant)

STATE = ("r_plus", "r_minus", "cnt_plus", "sum_plus", "prev_plus", "cnt_minus", "sum_minus", "prev_minus",
         "cnt_in", "prev_in", "w_abs_prev")


# ---------------------------------------------------------------------------------------------------------
# The reference (dense, one layer = one matrix)
# ---------------------------------------------------------------------------------------------------------
class RefLayer:
    def __init__(self, kind, W, rule, group=1, sparse=False):
        self.kind, self.W, self.rule, self.sparse = kind, W.astype(np.float64).copy(), rule, sparse
        self.N, self.fan = W.shape
        self.group = group                      # conv: entries per (c_out, c_in) kernel (kh*kw)
        self.mask = np.ones_like(self.W)
        self.hist = set()
        self.p = rule.p_init
        n_groups = self.W.size // group
        self.gcnt = np.zeros(n_groups, int)
        self.gprev = np.zeros(n_groups, bool)

    def init(self):
        r0 = self.W.max()
        self.r0 = r0
        self.rp = np.full(self.W.shape, r0)
        self.rm = np.full(self.W.shape, -r0)
        for a in ("cp", "sp", "cm", "sm", "ci"):
            setattr(self, a, np.zeros(self.W.shape))
        self.pp = np.zeros(self.W.shape, bool)
        self.pm = np.zeros(self.W.shape, bool)
        self.pi = np.zeros(self.W.shape, bool)
        self.wprev = np.abs(self.W)

    def ranges(self, theta, shrink):
        w = self.W * self.mask
        P = w >= self.rp
        both = P & self.pp
        self.cp = np.where(both, self.cp + 1, 0)
        self.sp = np.where(both, self.sp + (w - self.rp), 0)
        hit = self.cp >= theta
        self.rp = np.where(hit, self.rp + self.sp / theta, self.rp)
        self.cp[hit] = 0
        self.sp[hit] = 0
        self.pp = P
        Nt = w <= self.rm
        both = Nt & self.pm
        self.cm = np.where(both, self.cm + 1, 0)
        self.sm = np.where(both, self.sm + (w - self.rm), 0)
        hit = self.cm >= theta
        self.rm = np.where(hit, self.rm + self.sm / theta, self.rm)
        self.cm[hit] = 0
        self.sm[hit] = 0
        self.pm = Nt
        D = np.abs(w) < self.wprev
        both = D & self.pi
        self.ci = np.where(both, self.ci + 1, 0)
        hit = self.ci >= theta
        self.rp = np.where(hit, self.rp * shrink, self.rp)
        self.rm = np.where(hit, self.rm * shrink, self.rm)
        self.ci[hit] = 0
        self.pi = D
        self.wprev = np.abs(w)

    def clip(self):
        clipped = np.clip(self.W, self.rm, self.rp)
        self.W = np.where(self.mask > 0, clipped, self.W) if self.sparse else clipped

    def regrow(self, t, base_q):
        q = min(99.0, self.rule.percentile_base + 1.1 ** (t - 37)) if base_q is None else base_q
        flatW, flatM = self.W.reshape(-1, self.group), self.mask.reshape(-1, self.group)
        v = flatW.sum(axis=1)
        pruned = flatM.sum(axis=1) == 0
        g = np.percentile(v, q)
        G = (v > g) & pruned
        self.gcnt = np.where(G & self.gprev, self.gcnt + 1, 0)
        regrow = self.gcnt > self.rule.regrow_after
        self.gcnt[regrow] = 0
        self.gprev = G
        el = np.repeat(regrow, self.group).reshape(self.W.shape)
        self.mask[el] = 1
        if self.sparse:     # fresh spines, probe value clipped into them
            self.W[el] = np.clip(self.W[el], -self.r0, self.r0)
            self.rp[el], self.rm[el] = self.r0, -self.r0
            for a in ("cp", "sp", "cm", "sm", "ci"):
                getattr(self, a)[el] = 0
            self.pp[el] = self.pm[el] = self.pi[el] = False
            self.wprev[el] = np.abs(self.W[el])
        return int(regrow.sum())

    def importance(self):
        width = self.rp + np.abs(self.rm)
        over = self.mask > 0 if self.sparse else np.ones(width.shape, bool)
        lo, hi = width[over].min(), width[over].max()
        unit = np.full(width.shape, 0.5) if hi == lo else (width - lo) / (hi - lo)
        return (unit * self.mask).sum(axis=1)

    def prune(self):
        score = self.importance()
        k = math.floor(self.N * self.p / 100)
        lowest = list(np.argsort(score, kind="stable")[:k])
        new = [j for j in lowest if j not in self.hist] if self.rule.history else lowest
        for j in new:
            self.mask[j, :] = 0
        self.hist |= set(int(j) for j in new)
        self.W = self.W * self.mask
        return len(new)

    def P(self):
        return int(((self.mask.sum(axis=1)) < self.rule.min_active).sum())


def ref_step(t, layers, order, sched=SDSNNSchedule()):
    """Section 2.6 over the reference layers (dict name -> RefLayer, in network order)."""
    if t == 0:
        for L in layers.values():
            L.init()
        return {}
    out = {}
    for L in layers.values():
        if L.rule.update_ranges:
            L.ranges(sched.count_thre, sched.shrink)
    if t > sched.clip_after:
        for L in layers.values():
            if L.rule.clip:
                L.clip()
    if t > sched.prune_after:
        for n, L in layers.items():
            if L.rule.regrow:
                out[n] = L.regrow(t, None)
        for i, n in enumerate(order):
            L = layers[n]
            L.prune()
            if i + 1 < len(order):
                nxt = layers[order[i + 1]]
                denom = (L.rule.target_size or nxt.N) - nxt.P()
            else:
                denom = L.rule.target_size
            if L.kind == "conv":
                alpha = math.exp(-(t - 37) / 5)
            else:
                alpha = L.rule.fc_alpha_scale * math.exp(-(t - 37)) if t <= 60 else L.rule.fc_alpha_floor
            L.p += alpha * ((L.rule.size or L.N) - L.P()) / denom
    return out


# ---------------------------------------------------------------------------------------------------------
# Building the same network for product and reference
# ---------------------------------------------------------------------------------------------------------
def ragged_from_dense(W, rng, stride_extra=0):
    """Ragged rows by pre (W is [post, pre]) with slots shuffled inside each row."""
    n_post, n_pre = W.shape
    stride = n_post + stride_extra
    ind = np.zeros((n_pre, stride), np.int32)
    w = np.zeros((n_pre, stride))
    for i in range(n_pre):
        perm = rng.permutation(n_post)
        ind[i, :n_post] = perm
        w[i, :n_post] = W[perm, i]
    return RaggedArrays(ind, np.full(n_pre, n_post, np.int32), n_post, {"w": w})


def conv_synapses(c_in, c_out, size, kernel_shape):
    """A real 3x3 'same' convolution's synapses (pre = ci*H*W + y*W + x, post likewise), with kidx."""
    pre, post, kidx = [], [], []
    for co in range(c_out):
        for ci in range(c_in):
            for oy in range(size):
                for ox in range(size):
                    for dy in range(3):
                        for dx in range(3):
                            y, x = oy + dy - 1, ox + dx - 1
                            if 0 <= y < size and 0 <= x < size:
                                pre.append(ci * size * size + y * size + x)
                                post.append(co * size * size + oy * size + ox)
                                kidx.append(np.ravel_multi_index((co, ci, dy, dx), kernel_shape))
    pre, post, kidx = map(np.array, (pre, post, kidx))
    n_pre = c_in * size * size
    counts = np.bincount(pre, minlength=n_pre)
    stride = int(counts.max())
    ind = np.zeros((n_pre, stride), np.int32)
    kx = np.zeros((n_pre, stride), np.int64)
    fill = np.zeros(n_pre, int)
    for p, q, k in zip(pre, post, kidx):
        ind[p, fill[p]] = q
        kx[p, fill[p]] = k
        fill[p] += 1
    return RaggedArrays(ind, counts.astype(np.int32), c_out * size * size, {"kidx": kx})


def rules(regrow_fc=True):
    conv = LayerRule("conv", p_init=20.0, min_active=10, regrow_after=18, percentile_base=65.0, history=False)
    fc1 = LayerRule("fc", p_init=30.0, min_active=6, regrow_after=10, percentile_base=60.0, regrow=regrow_fc,
                    target_size=3)
    fc2 = LayerRule("fc", update_ranges=False, clip=True, prune=False, regrow=False)
    return {"conv": conv, "fc1": fc1, "fc2": fc2}


def trajectory_kinds(shape, rng):
    """Per-element training behaviour: 0 noise, 1 rises, 2 falls, 3 decays toward 0."""
    return rng.choice(4, size=shape, p=[0.4, 0.2, 0.2, 0.2])


def delta(W, kinds, pressure, mask, rng):
    """One epoch of 'training': what the weights move by (per kind); masked elements (restarting from 0
    every epoch) get a steady push where ``pressure`` is set, so that some of them qualify for regrowth."""
    d = rng.normal(0, 0.004, W.shape)
    d = np.where(kinds == 1, 0.03 + d * 0.1, d)
    d = np.where(kinds == 2, -0.03 + d * 0.1, d)
    d = np.where(kinds == 3, -0.08 * W, d)
    return np.where(mask > 0, d, np.where(pressure, 0.06 + d, d))


def fc_view(store, n_post, n_pre, names):
    """Dense [post, pre] arrays of the ragged storage's variables, NaN where absent, and presence."""
    pre, post = store.pairs()
    vals = store.read(names)
    out = {}
    for n in names:
        a = np.full((n_post, n_pre), np.nan)
        a[post, pre] = vals[n]
        out[n] = a
    present = np.zeros((n_post, n_pre), bool)
    present[post, pre] = True
    return out, present


def ref_fc_state(L):
    return {"w": L.W, "r_plus": L.rp, "r_minus": L.rm, "cnt_plus": L.cp, "sum_plus": L.sp, "prev_plus": L.pp,
            "cnt_minus": L.cm, "sum_minus": L.sm, "prev_minus": L.pm, "cnt_in": L.ci, "prev_in": L.pi,
            "w_abs_prev": L.wprev}


class Net:
    """conv (c_in 4 -> c_out 5, 3x3 on 4x4) -> fc1 (12 -> 16) -> fc2 (16 -> 3), product and reference."""

    def __init__(self, mode, seed=0, regrow_fc=True):
        rng = np.random.default_rng(seed)
        self.rng, self.mode = rng, mode
        sparse = mode == "sparse"
        kshape = (5, 4, 3, 3)
        K = rng.normal(0, 0.1, kshape)
        W1 = rng.normal(0, 0.1, (16, 12))
        W2 = rng.normal(0, 0.1, (3, 16))
        self.kinds = {"conv": trajectory_kinds(kshape, rng).reshape(5, -1), "fc1": trajectory_kinds(W1.shape, rng),
                      "fc2": trajectory_kinds(W2.shape, rng)}
        self.pressure = {"conv": np.repeat(rng.random(20) < 0.5, 9).reshape(5, -1), "fc1": rng.random(W1.shape) < 0.5,
                         "fc2": np.zeros(W2.shape, bool)}
        r = rules(regrow_fc)
        self.config = SDSNNConfig(SDSNNSchedule(), r)
        self.ref = {"conv": RefLayer("conv", K.reshape(5, -1), r["conv"], group=9, sparse=sparse),
                    "fc1": RefLayer("fc", W1, r["fc1"], sparse=sparse),
                    "fc2": RefLayer("fc", W2, r["fc2"], sparse=sparse)}
        self.kernel = K.copy()
        self.syn = conv_synapses(4, 5, 4, kshape) if sparse else None
        if sparse:
            self.full_conv = (*self.syn.pairs(), self.syn.read(["kidx"])["kidx"])
        self.conv = KernelArrays(self.kernel, synapses=self.syn)
        self.fc1 = ragged_from_dense(W1, rng, stride_extra=2)
        self.fc2 = ragged_from_dense(W2, rng)
        self.bias = np.ones(16)
        kw = {}
        if sparse:
            kw = dict(outgoing={"fc1": Outgoing(self.fc2)}, biases={"fc1": ArrayBias(self.bias)})
        self.sd = SDSNN(self.config, {"conv": self.conv, "fc1": self.fc1, "fc2": self.fc2}, mode, **kw)
        self.dormant_fc2 = np.zeros(16, bool)    # reference: fc2 columns of dead fc1 neurons (sparse)

    def train(self):
        """Apply one epoch of weight change to both (sparse: only existing synapses move)."""
        sparse = self.mode == "sparse"
        dK, d1, d2 = (delta(self.ref[n].W, self.kinds[n], self.pressure[n], self.ref[n].mask, self.rng)
                      for n in ("conv", "fc1", "fc2"))
        self.probe = {}
        dK_kernel = dK
        if sparse:   # absent synapses do not train: the probe carries their would-be (from 0) values
            mK = self.ref["conv"].mask
            self.probe["conv"] = np.where(mK > 0, 0.0, dK).reshape(self.kernel.shape)
            dK_kernel = dK * mK
            self.probe["fc1"] = np.where(self.ref["fc1"].mask > 0, 0.0, d1)   # [post, pre]
            d2 = d2 * ~self.dormant_fc2[None, :]
        R = self.ref
        R["conv"].W += dK
        R["fc1"].W += d1
        R["fc2"].W += d2
        self.kernel += dK_kernel.reshape(self.kernel.shape)
        for store, d in ((self.fc1, d1), (self.fc2, d2)):
            pre, post = store.pairs()
            w = store.read(["w"])["w"]
            store.write({"w": w + d[post, pre]})

    def step(self, t):
        probes = None
        if self.mode == "sparse" and t > 36:
            probes = {"conv": self.probe["conv"], "fc1": self.probe["fc1"].T}   # product: [pre, post]
        rep = self.sd.structure_step(t, probes)
        ref = ref_step(t, self.ref, ["conv", "fc1"])
        if self.mode == "sparse":
            dead = np.array([j in self.ref["fc1"].hist for j in range(16)]) & (self.ref["fc1"].mask.sum(1) == 0)
            self.dormant_fc2 = dead
        return rep, ref


def assert_fc_equal(store, L, n_post, n_pre, sparse, dormant=None):
    names = ["w"] + list(STATE)
    view, present = fc_view(store, n_post, n_pre, names)
    ref = ref_fc_state(L)
    expect = (L.mask > 0) if sparse else np.ones((n_post, n_pre), bool)
    if dormant is not None:
        expect = expect & ~dormant[None, :]
    np.testing.assert_array_equal(present, expect)
    for n in names:
        np.testing.assert_allclose(view[n][expect], np.asarray(ref[n], float)[expect], rtol=1e-12, atol=1e-14,
                                   err_msg=n)
    if not sparse:
        m, _ = fc_view(store, n_post, n_pre, ["mask", "grow_cnt", "grow_prev"])
        np.testing.assert_array_equal(m["mask"], L.mask)
        np.testing.assert_array_equal(m["grow_cnt"], L.gcnt.reshape(L.W.shape))
        np.testing.assert_array_equal(m["grow_prev"], L.gprev.reshape(L.W.shape))


def assert_conv_equal(conv, L, sparse):
    np.testing.assert_array_equal(conv.vars["mask"].reshape(L.W.shape), L.mask)
    act = L.mask.reshape(-1) > 0 if sparse else np.ones(L.W.size, bool)
    np.testing.assert_allclose(conv.kernel.reshape(-1)[act], L.W.reshape(-1)[act], rtol=1e-12, atol=1e-14)
    if sparse:
        assert (conv.kernel.reshape(-1)[~act] == 0).all()
    for n, a in (("r_plus", L.rp), ("r_minus", L.rm), ("cnt_in", L.ci), ("w_abs_prev", L.wprev)):
        np.testing.assert_allclose(conv.vars[n][act], a.reshape(-1)[act], rtol=1e-12, atol=1e-14, err_msg=n)


# ---------------------------------------------------------------------------------------------------------
# Faithful and sparse modes against the reference, epoch by epoch
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["faithful", "sparse"])
def test_matches_the_dense_mask_reference_over_the_development(mode):
    net = Net(mode, seed=1)
    sparse = mode == "sparse"
    regrown = {"conv": 0, "fc1": 0}
    bounds_moved = revived = 0
    ever_dead = np.zeros(16, bool)
    for t in range(80):
        if t > 0:
            net.train()
        rep, ref = net.step(t)
        for n in ref:
            assert rep[n]["regrown"] == ref[n], (t, n)
            regrown[n] += ref[n]
        assert_fc_equal(net.fc1, net.ref["fc1"], 16, 12, sparse)
        assert_fc_equal(net.fc2, net.ref["fc2"], 3, 16, sparse, dormant=net.dormant_fc2 if sparse else None)
        assert_conv_equal(net.conv, net.ref["conv"], sparse)
        for n in ("conv", "fc1"):
            assert net.sd.p[n] == pytest.approx(net.ref[n].p, rel=1e-12)
            assert rep[n]["pruned_units"] == net.ref[n].P()
            # the authors' if_zero: elements without weight (exact zeros; sparse: absent or zero)
            L = net.ref[n]
            assert (rep[n]["zeros"], rep[n]["elements"]) == (int(((L.W * L.mask) == 0).sum()), L.W.size)
        if t > 0:
            bounds_moved += int((net.ref["fc1"].rp != net.ref["fc1"].r0).sum())
        if sparse:
            # the conv projection holds exactly the synapses of unmasked kernel entries
            pre, post = net.syn.pairs()
            kidx = net.syn.read(["kidx"])["kidx"]
            have = set(zip(pre.tolist(), post.tolist(), kidx.tolist()))
            keep = net.conv.vars["mask"][net.full_conv[2]] == 1
            assert have == set(zip(*(a[keep].tolist() for a in net.full_conv)))
            dead = net.sd.dead_units("fc1")
            np.testing.assert_array_equal(dead, net.dormant_fc2)
            ever_dead |= dead   # a dead unit's bias is held at 0; revived, it restarts from 0
            assert (net.bias[ever_dead] == 0).all() and (net.bias[~ever_dead] == 1).all()
            revived += int((ever_dead & ~dead).sum())
    # the run exercised what it claims to compare
    assert regrown["fc1"] > 0 and regrown["conv"] > 0
    assert bounds_moved > 0
    assert net.ref["fc1"].hist and net.ref["conv"].hist
    if sparse:
        assert ever_dead.any() and revived > 0



# ---------------------------------------------------------------------------------------------------------
# In a Simulation: the engine's removal / addition rules give what the numpy storage gives
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend, mode", [("cpu", "sparse"), ("cuda", "sparse"), ("cpu", "faithful")])
def test_simulation_storage_matches_numpy_storage(backend, mode):
    """The CUDA case runs on numba-cuda's simulator in CI (tests/conftest.py)."""
    import plastix as px
    from plastix.backends import cuda_available
    from plastix.structural.sdsnn.engine import SimulationArrays, SimulationBias, attach_sdsnn

    if backend == "cuda" and not cuda_available():
        pytest.skip("needs numba-cuda (simulator or GPU)")

    n_pre, n_post = 6, 8
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.1, (n_post, n_pre))
    net = px.Network(dt=1.0, seed=1)
    a = net.add_population("a", n_pre, px.neurons.lif())
    b = net.add_population("b", n_post, px.neurons.lif())
    net.add_projection("ab", a, b, connectivity=px.connect.AllToAll(), weight_update=px.weight_update.static(),
                       row_stride=n_post)
    state, grow = attach_sdsnn(net, "ab", mode)
    sparse = mode == "sparse"
    sim = px.Simulation(net, backend=backend)
    pre, post = sim.connectivity("ab")
    sim.set("ab", "w", W[post, pre])
    ref = ragged_from_dense(W, rng)
    rule = LayerRule("fc", p_init=30.0, min_active=3, regrow_after=10, percentile_base=60.0, target_size=3)
    config = SDSNNConfig(SDSNNSchedule(), {"fc": rule}).scaled(1 / 6)
    ref_bias = sim.get("b", "v") + 1.0   # a neuron variable standing in for a bias
    sim.set("b", "v", ref_bias)
    on_sim = SDSNN(config, {"fc": SimulationArrays(sim, "ab", state, grow)}, mode,
                   biases={"fc": SimulationBias(sim, "b", "v")} if sparse else None)
    on_np = SDSNN(config, {"fc": ref}, mode, biases={"fc": ArrayBias(ref_bias)} if sparse else None)
    names = ["w"] + list(STATE) + ([] if sparse else ["mask", "grow_cnt", "grow_prev"])
    kinds = trajectory_kinds(W.shape, rng)
    pressure = rng.random(W.shape) < 0.6
    added = 0
    for t in range(24):
        if t > 0:   # same training on both: existing synapses move, absent ones only in the probe
            full, present = fc_view(ref, n_post, n_pre, ["w"] + ([] if sparse else ["mask"]))
            d = delta(np.nan_to_num(full["w"]), kinds, pressure, present if sparse else full["mask"], rng)
            for store in (on_np.layers["fc"].storage, on_sim.layers["fc"].storage):
                p_, q_ = store.pairs()
                store.write({"w": store.read(["w"])["w"] + d[q_, p_]})
            probe = np.where(present, 0.0, d).T
        probes = {"fc": probe} if t > config.schedule.prune_after and sparse else None
        r_sim = on_sim.structure_step(t, probes)
        r_np = on_np.structure_step(t, probes)
        added += r_np["fc"]["regrown"]
        assert r_sim == r_np
        view_sim, present_sim = fc_view(on_sim.layers["fc"].storage, n_post, n_pre, names)
        view_np, present_np = fc_view(ref, n_post, n_pre, names)
        np.testing.assert_array_equal(present_sim, present_np)
        for k in view_np:
            np.testing.assert_allclose(view_sim[k][present_np], view_np[k][present_np], rtol=1e-6, atol=1e-7,
                                       err_msg=k)
        np.testing.assert_allclose(sim.get("b", "v"), ref_bias, rtol=1e-6)
        # ragged invariants of the engine's rows
        rag = sim.ragged("ab")
        assert (rag["row_length"] <= rag["ind"].shape[1]).all()
        p_, q_ = sim.connectivity("ab")
        assert len(set(zip(p_.tolist(), q_.tolist()))) == p_.size
    stats = sim.update_stats(state)
    assert added > 0 and on_np.layers["fc"].history.any()
    # the engine removed and added synapses only in the sparse mode (faithful: masks only)
    assert (stats["removed"] > 0) == sparse
    assert sim.update_stats(grow)["added"] == (added if sparse else 0)


# ---------------------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------------------
def _three_synapse_layer():
    """One presynaptic neuron, three synapses; w = (1.0, 0.0, 0.5): r0 = 1."""
    ind = np.array([[0, 1, 2]], np.int32)
    return RaggedArrays(ind, np.array([3], np.int32), 3, {"w": np.array([[1.0, 0.0, 0.5]])})


def _four_synapse_layer():
    """As :func:`_three_synapse_layer` plus a fourth synapse at w = 1.0 (exactly r0)."""
    ind = np.array([[0, 1, 2, 3]], np.int32)
    return RaggedArrays(ind, np.array([4], np.int32), 4, {"w": np.array([[1.0, 0.0, 0.5, 1.0]])})


def _bounds_run(config, steps, counts=None):
    """Hold synapse 0 above r+ (by 0.5), synapse 1 below r- (by 0.25), shrink |w_2| by 10 % per step,
    keep synapse 3 exactly at r+ (w >= r+ counts); return r+ and r- after each step (and synapse 3's
    cnt_plus in ``counts``)."""
    store = _four_synapse_layer()
    sd = SDSNN(config, {"fc": store})
    rp, rm = [], []
    for t in range(steps):
        if t > 0:
            d = store.read(["r_plus", "r_minus"])
            store.write({"w": np.array([d["r_plus"][0] + 0.5, d["r_minus"][1] - 0.25, 0.5 * 0.9 ** t,
                                        d["r_plus"][3]])})
        sd.structure_step(t)
        d = store.read(["r_plus", "r_minus", "cnt_plus"])
        rp.append(d["r_plus"].copy())
        rm.append(d["r_minus"].copy())
        if counts is not None:
            counts.append(int(d["cnt_plus"][3]))
    return np.array(rp), np.array(rm)


RANGES_ONLY = LayerRule("fc", update_ranges=True, clip=False, prune=False, regrow=False)


def test_bounds_first_move_at_step_19_and_then_every_18_steps():
    counts = []
    rp, rm = _bounds_run(SDSNNConfig(SDSNNSchedule(), {"fc": RANGES_ONLY}), 60, counts)
    # w == r+ exceeds (">="): counting starts at step 2 (step 1 has no previous set), resets at 18
    assert counts[:21] == [0, 0] + list(range(1, 18)) + [0, 1]
    assert rp[59, 3] == 1.0     # its excess is 0: the trigger leaves r+ where it is
    moved_up = [t for t in range(1, 60) if rp[t, 0] != rp[t - 1, 0]]
    moved_down = [t for t in range(1, 60) if rm[t, 1] != rm[t - 1, 1]]
    shrunk = [t for t in range(1, 60) if rp[t, 2] != rp[t - 1, 2]]
    assert moved_up == moved_down == shrunk == [19, 37, 55]
    # 18 counted excesses of 0.5 each, divided by theta = 18: +0.5 per trigger (and -0.25 below)
    assert rp[[19, 37, 55], 0] == pytest.approx([1.5, 2.0, 2.5])
    assert rm[[19, 37, 55], 1] == pytest.approx([-1.25, -1.5, -1.75])
    # shrink: both bounds times 0.75 per trigger
    assert rp[[19, 37, 55], 2] == pytest.approx([0.75, 0.75 ** 2, 0.75 ** 3])
    assert rm[[19, 37, 55], 2] == pytest.approx([-0.75, -0.75 ** 2, -0.75 ** 3])


def test_scaled_schedule_stretches_and_compresses_the_timing():
    base = SDSNNConfig(SDSNNSchedule(), {"fc": RANGES_ONLY})
    for factor, expect in ((1 / 6, [4, 7, 10]), (2, [37, 73])):
        cfg = base.scaled(factor)
        rp, _ = _bounds_run(cfg, expect[-1] + 2)
        assert [t for t in range(1, len(rp)) if rp[t, 0] != rp[t - 1, 0]] == expect
    s = base.scaled(1 / 6).schedule
    assert (s.count_thre, s.clip_after, s.prune_after, s.t0) == (3, 3, 6, 7.0)
    assert s.rate_scale == pytest.approx(6.0) and s.fc_alpha_switch == pytest.approx(7 + 23 / 6)
    # the decaying increments keep their total: sum_k alpha(t0 + k) of the scaled schedule = the authors'
    authors, fast = SDSNNSchedule(), s
    for alpha in (lambda sc, t: sc.fc_alpha(t, 1.0, 0.0), lambda sc, t: sc.conv_alpha(t)):
        total = sum(alpha(authors, authors.t0 + k) for k in range(2000))
        assert sum(alpha(fast, fast.t0 + k) for k in range(2000)) == pytest.approx(total, rel=1e-9)
        slow = base.scaled(12).schedule
        assert sum(alpha(slow, slow.t0 + k) for k in range(20000)) == pytest.approx(total, rel=1e-9)
    assert sdsnn_variant("mnist").scaled(1 / 6).layers["fc1"].regrow_after == 2
    with pytest.raises(ValueError, match="factor"):
        base.scaled(0)


def _mnist_sized(mode="faithful"):
    """The MNIST variant's unit counts (conv2: 40 filters of 15x3x3; fc1: 300 neurons, here 25 inputs
    each; fc2: 10 classes) with constant weights: every spine width is 2 * r0, so importance is
    0.5 * (active inputs) and ties go to the lowest index."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.1, (40, 15, 3, 3))
    fc1 = ragged_from_dense(rng.normal(0, 0.1, (300, 25)), rng)
    fc2 = ragged_from_dense(rng.normal(0, 0.1, (10, 300)), rng)
    return SDSNN(sdsnn_variant("mnist"), {"conv2": KernelArrays(kernel), "fc1": fc1, "fc2": fc2}, mode)


def test_rate_formula_and_cumulative_targets_by_hand():
    sd = _mnist_sized()
    for t in range(37):
        sd.structure_step(t)
    assert sd.p == {"conv2": 5.0, "fc1": 35.0}
    r = sd.structure_step(37)
    # conv2: floor(40 * 5 %) = 2 filters; its rate sees fc1 before fc1 prunes (P_fc1 = 0)
    assert r["conv2"]["pruned_units"] == 2
    assert sd.p["conv2"] == pytest.approx(5 + 1.0 * (40 - 2) / (300 - 0))
    # fc1: floor(300 * 35 %) = 105 neurons (the lowest indices: all tie), p = 35 + (300 - 105) / 10 = 54.5
    assert r["fc1"]["newly_pruned"] == r["fc1"]["pruned_units"] == 105
    assert sd.p["fc1"] == pytest.approx(54.5)
    mask = sd.layers["fc1"].storage.read(["mask"])["mask"]
    _, post = sd.layers["fc1"].storage.pairs()
    assert set(post[mask == 0].tolist()) == set(range(105))
    r = sd.structure_step(38)
    # cumulative target floor(300 * 54.5 %) = 163: 58 new; conv2 (no history) re-prunes its 2 lowest
    assert r["fc1"]["newly_pruned"] == 58 and r["fc1"]["pruned_units"] == 163
    assert sd.p["fc1"] == pytest.approx(54.5 + math.exp(-1) * (300 - 163) / 10)
    assert r["conv2"]["newly_pruned"] == 2 and r["conv2"]["pruned_units"] == 2
    assert sd.p["conv2"] == pytest.approx(5 + 38 / 300 + math.exp(-1 / 5) * (40 - 2) / (300 - 105))
    # compression: 105 + 58 rows of 25 synapses and 2 filters of 135 entries are zero
    comp = sd.compression()
    assert comp["fc1"]["zeros"] == 163 * 25 and comp["conv2"]["zeros"] == 2 * 135
    assert comp["total"]["elements"] == 5400 + 7500 + 3000


def test_earliest_regrowth_is_R_plus_one_steps_after_the_first_qualification():
    ind = np.array([[0, 1], [0, 0]], np.int32)
    store = RaggedArrays(ind, np.array([2, 1], np.int32), 2, {"w": np.array([[0.3, -0.2], [0.1, 0.0]])})
    rule = LayerRule("fc", prune=False, regrow=True, regrow_after=10, percentile_base=60.0)
    sd = SDSNN(SDSNNConfig(SDSNNSchedule(), {"fc": rule}), {"fc": store}, "sparse")
    grown = []
    for t in range(60):
        probes = {"fc": Candidates([1], [1], [5.0])} if t > 36 and store.row_length[1] == 1 else None
        if probes is None and t > 36:
            probes = {"fc": Candidates([], [], [])}
        if sd.structure_step(t, probes)["fc"]["regrown"]:
            grown.append(t)
    assert grown == [48]                      # qualifies from 37, counter 1 at 38, > 10 at 48
    d = store.read(["w", "r_plus", "r_minus", "cnt_plus"])
    pre, post = store.pairs()
    k = int(np.nonzero((pre == 1) & (post == 1))[0][0])
    # the probe's 5.0 clipped into the fresh range +-r0 (r0 = 0.3), fresh spines
    assert d["w"][k] == pytest.approx(0.3) and d["r_plus"][k] == pytest.approx(0.3)
    assert d["r_minus"][k] == pytest.approx(-0.3)


# ---------------------------------------------------------------------------------------------------------
# Ragged invariants and errors
# ---------------------------------------------------------------------------------------------------------
def test_ragged_remove_and_add_keep_every_value_with_its_synapse():
    rng = np.random.default_rng(4)
    n_pre, n_post, stride = 7, 9, 11
    W = rng.normal(size=(n_post, n_pre))
    store = ragged_from_dense(W, rng, stride_extra=stride - n_post)
    store.write({"u": 1000.0 * store.pairs()[0] + store.pairs()[1]})    # encodes (pre, post)
    flag = rng.random(n_pre * n_post) < 0.4
    pre0, post0 = store.pairs()
    gone = set(zip(pre0[flag].tolist(), post0[flag].tolist()))
    assert store.remove(flag) == int(flag.sum())
    pre, post = store.pairs()
    assert set(zip(pre.tolist(), post.tolist())) == set(zip(pre0.tolist(), post0.tolist())) - gone
    d = store.read(["w", "u"])
    np.testing.assert_array_equal(d["w"], W[post, pre])
    np.testing.assert_array_equal(d["u"], 1000.0 * pre + post)
    assert (store.row_length <= stride).all()
    assert (store.ind[~store.valid()] == 0).all() and (store.vars["w"][~store.valid()] == 0).all()
    new = sorted(gone)[:5]
    a, b = np.array([x for x, _ in new]), np.array([y for _, y in new])
    store.add(a, b, {"w": -1.0})
    pre, post = store.pairs()
    assert len(set(zip(pre.tolist(), post.tolist()))) == pre.size
    d = store.read(["w", "u"])
    added = np.isin(pre * n_post + post, a * n_post + b)
    assert (d["w"][added] == -1.0).all() and (d["u"][added] == 0).all()
    with pytest.raises(ValueError, match="already exists"):
        store.add(a[:1], b[:1])
    with pytest.raises(ValueError, match="duplicate"):
        store.add(np.array([a[0], a[0]]), np.array([b[0], b[0]]))


def test_regrowth_that_does_not_fit_is_reported_and_nothing_is_added():
    ind = np.array([[0, 1], [0, 0]], np.int32)
    w = np.array([[0.3, -0.2], [0.1, 0.0]])
    store = RaggedArrays(ind, np.array([2, 1], np.int32), 3, {"w": w})
    rule = LayerRule("fc", prune=False, regrow=True, regrow_after=0, percentile_base=0.0)
    sd = SDSNN(SDSNNConfig(SDSNNSchedule(prune_after=0, clip_after=0, t0=1.0), {"fc": rule}), {"fc": store}, "sparse")
    sd.structure_step(0)
    sd.structure_step(1, {"fc": Candidates([0, 1, 1], [2, 1, 2], [1.0, 1.0, 1.0])})   # qualify once
    before = (store.ind.copy(), store.row_length.copy(), store.vars["w"].copy())
    with pytest.raises(CapacityError, match=r"row_stride 2 \(rows 0, 1\)"):
        sd.structure_step(2, {"fc": Candidates([0, 1, 1], [2, 1, 2], [1.0, 1.0, 1.0])})
    for x, y in zip(before, (store.ind, store.row_length, store.vars["w"])):
        np.testing.assert_array_equal(x, y)


def test_bad_input_is_named():
    store = _three_synapse_layer()
    cfg = SDSNNConfig(SDSNNSchedule(), {"fc": RANGES_ONLY})
    with pytest.raises(ValueError, match="mode must be one of"):
        SDSNN(cfg, {"fc": store}, "masks")
    with pytest.raises(ValueError, match="storages must name exactly"):
        SDSNN(cfg, {"fc1": store})
    with pytest.raises(TypeError, match="KernelArrays"):
        SDSNN(SDSNNConfig(SDSNNSchedule(), {"c": LayerRule("conv", prune=False, regrow=False)}), {"c": store})
    with pytest.raises(ValueError, match="target_size"):
        SDSNN(SDSNNConfig(SDSNNSchedule(), {"fc": LayerRule("fc")}), {"fc": store})
    sd = SDSNN(cfg, {"fc": store})
    with pytest.raises(ValueError, match="expected t=0, got t=1"):
        sd.structure_step(1)
    sd.structure_step(0)
    with pytest.raises(ValueError, match="expected t=1, got t=0"):
        sd.structure_step(0)
    with pytest.raises(ValueError, match="take none"):
        sd.structure_step(1, {"fc": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="shape"):
        RaggedArrays(np.zeros((2, 3), np.int32), np.array([1, 1], np.int32), 3, {"w": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="row_length"):
        RaggedArrays(np.zeros((2, 3), np.int32), np.array([4, 1], np.int32), 3)
    with pytest.raises(ValueError, match=r"\[c_out, c_in, kh, kw\]"):
        KernelArrays(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="p_init must be in"):
        LayerRule("fc", p_init=120.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        LayerRule("lstm")
    with pytest.raises(ValueError, match="variant must be one of"):
        sdsnn_variant("imagenet")
    with pytest.raises(ValueError, match="count_thre"):
        SDSNNSchedule(count_thre=0)
    # a sparse regrowing layer without a probe, and a probe of the wrong shape
    rule = LayerRule("fc", prune=False, regrow=True)
    sd = SDSNN(SDSNNConfig(SDSNNSchedule(prune_after=0, t0=1.0), {"fc": rule}), {"fc": _three_synapse_layer()},
               "sparse")
    sd.structure_step(0)
    with pytest.raises(ValueError, match="needs a probe"):
        sd.structure_step(1)
    sd2 = SDSNN(SDSNNConfig(SDSNNSchedule(prune_after=0, t0=1.0), {"fc": rule}), {"fc": _three_synapse_layer()},
                "sparse")
    sd2.structure_step(0)
    with pytest.raises(ValueError, match=r"shape \(num_pre, num_post\) = \(1, 3\)"):
        sd2.structure_step(1, {"fc": np.zeros((3, 1))})


def test_cifar_variant_static_conv_ranges_break_ties_by_index():
    """BC-CIFAR's quirk: conv ranges never update, so every conv filter scores 0.5 * (active entries) and
    pruning takes the lowest channel indices; conv rates chain to the next conv layer, the last one to
    fc_prun (hard-coded 512 units)."""
    rng = np.random.default_rng(5)
    cfg = sdsnn_variant("bc_cifar")
    kernels = {f"conv{i}": KernelArrays(rng.normal(0, 0.1, (200, 3, 3, 3))) for i in range(6)}
    fc = ragged_from_dense(rng.normal(0, 0.1, (64, 60)), rng)
    sd = SDSNN(cfg, {**kernels, "fc_prun": fc})
    for t in range(38):
        if t > 0:
            for k in kernels.values():
                k.kernel += rng.normal(0, 0.01, k.kernel.shape)
            pre, post = fc.pairs()
            fc.write({"w": fc.read(["w"])["w"] + rng.normal(0, 0.01, pre.size)})
        rep = sd.structure_step(t)
    for i in range(6):
        k = kernels[f"conv{i}"]
        assert (k.vars["r_plus"] == k.vars["r_plus"][0]).all()     # static
        # floor(200 * 0.5 %) = 1 filter: all tie, so channel 0
        assert np.nonzero(k.vars["mask"].reshape(200, -1).sum(1) == 0)[0].tolist() == [0]
        assert rep[f"conv{i}"]["pruned_units"] == 1
    for i in range(5):   # the next conv layer has not pruned yet when this one's rate updates
        assert sd.p[f"conv{i}"] == pytest.approx(0.5 + (200 - 1) / (200 - 0))
    assert sd.p["conv5"] == pytest.approx(0.5 + (200 - 1) / (512 - 0))
    # fc_prun: floor(64 * 2 %) = 1 neuron; p += 0.5 * (512 - 1) / 10
    assert rep["fc_prun"]["pruned_units"] == 1
    assert sd.p["fc_prun"] == pytest.approx(2.0 + 0.5 * (512 - 1) / 10)
