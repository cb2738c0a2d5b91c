"""Convolution as sparse connectivity with shared weights (plastix.conv): the synapse sets against an
independent enumeration, forward runs against plain-numpy cross-correlation / pooling, the kernel
gradient against a numpy reference, channel pruning and slice regrowth, bad inputs."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import plastix as px
import plastix.conv as pc
from plastix.errors import CapacityError, NetworkError, StateError

VA = px.VarAccess


def _accumulate(n, i_syn):
    n.v += i_syn + n.bias


#: a neuron that only sums its input (plus a constant bias per step): v after a run is the total input
ACCUMULATE = px.NeuronModel(name="accumulate", vars={"v": 0.0, "bias": 0.0}, sim=_accumulate)


# --------------------------------------------------------------------------------------------------
# independent references


def reference_synapses(in_shape, c_out, kernel, stride, padding):
    """Every (pre, post, kidx) of nn.Conv2d, by looping over output positions and kernel taps."""
    c_in, h, w = in_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = []
    for co, oy, ox, ci, ky, kx in itertools.product(range(c_out), range(ho), range(wo), range(c_in), range(kh),
                                                    range(kw)):
        y, x = oy * sh - ph + ky, ox * sw - pw + kx
        if 0 <= y < h and 0 <= x < w:
            out.append(((ci * h + y) * w + x, (co * ho + oy) * wo + ox, ((co * c_in + ci) * kh + ky) * kw + kx))
    return sorted(out), (c_out, ho, wo)


def reference_pool_synapses(in_shape, pool, stride):
    c, h, w = in_shape
    (kh, kw), (sh, sw) = pool, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = []
    for ch, oy, ox, ky, kx in itertools.product(range(c), range(ho), range(wo), range(kh), range(kw)):
        y, x = oy * sh + ky, ox * sw + kx
        out.append(((ch * h + y) * w + x, (ch * ho + oy) * wo + ox))
    return sorted(out), (c, ho, wo)


def xcorr(x, kernel, stride, padding):
    """Plain-numpy 2-D cross-correlation with zero padding: x [C_in, H, W], kernel [C_out, C_in, kh, kw]."""
    (sh, sw), (ph, pw) = stride, padding
    c_out, c_in, kh, kw = kernel.shape
    _, h, w = x.shape
    xp = np.zeros((c_in, h + 2 * ph, w + 2 * pw))
    xp[:, ph:ph + h, pw:pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((c_out, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            patch = xp[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
            out[:, oy, ox] = np.tensordot(kernel, patch, axes=3)
    return out


def kernel_grad(x, g, kernel_shape, stride, padding):
    """dL/dK of the cross-correlation for output gradient g [C_out, H_out, W_out] and input x."""
    (sh, sw), (ph, pw) = stride, padding
    c_out, c_in, kh, kw = kernel_shape
    _, h, w = x.shape
    xp = np.zeros((c_in, h + 2 * ph, w + 2 * pw))
    xp[:, ph:ph + h, pw:pw + w] = x
    grad = np.zeros(kernel_shape)
    for oy, ox in itertools.product(range(g.shape[1]), range(g.shape[2])):
        patch = xp[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
        grad += g[:, oy, ox][:, None, None, None] * patch[None]
    return grad


def avg_pool(x, pool, stride):
    (kh, kw), (sh, sw) = pool, stride
    c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((c, ho, wo))
    for oy, ox in itertools.product(range(ho), range(wo)):
        out[:, oy, ox] = x[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].mean(axis=(1, 2))
    return out


def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


# --------------------------------------------------------------------------------------------------
# simulation helpers

CONFIGS = [  # in_shape, channels, kernel, stride, padding
    ((1, 5, 5), 2, 3, 1, 1),
    ((2, 6, 7), 3, (3, 2), 2, 1),
    ((3, 4, 5), 2, 2, (1, 2), (0, 1)),
    ((2, 3, 3), 2, 5, 1, 2),  # kernel larger than the input, padding makes it fit
    ((1, 2, 9), 1, (1, 4), 3, 0),
]


def _conv_net(conv, kernel, *, bias=None, extra=None):
    net = px.Network(dt=1.0, precision="float64", seed=3)
    inp = net.add_population("inp", conv.num_pre, px.neurons.spike_source_array())
    out = net.add_population("out", conv.num_post, ACCUMULATE,
                             init=None if bias is None else {"bias": conv.bias_per_neuron(bias)})
    pc.add_conv2d(net, "conv", inp, out, conv, kernel)
    if extra is not None:
        extra(net)
    return net


def _forward(sim, frame, steps=3):
    """Send one spike per active input now and return the summed input of every output neuron over
    ``steps`` steps (a new trial: neuron state restarts, connectivity and weights stay)."""
    sim.reset_trial()
    sim.set_spike_times("inp", [np.array([sim.t]) if f else np.zeros(0) for f in np.ravel(frame)])
    sim.run(steps)
    return sim.get("out", "v")


def _synapse_set(sim, proj="conv"):
    pre, post = sim.connectivity(proj)
    return set(zip(pre.tolist(), post.tolist()))


def _kidx_reference(conv):
    syn, _ = reference_synapses(conv.in_shape, conv.channels, conv.kernel, conv.stride, conv.padding)
    return {(p, q): k for p, q, k in syn}


# --------------------------------------------------------------------------------------------------
# synapse sets


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_synapses_equal_independent_enumeration(cfg):
    in_shape, channels, kernel, stride, padding = cfg
    conv = pc.Conv2D(in_shape, channels, kernel=kernel, stride=stride, padding=padding)
    ref, out_shape = reference_synapses(in_shape, channels, _pair(kernel), _pair(stride), _pair(padding))
    assert conv.out_shape == out_shape
    assert conv.kernel_shape == (channels, in_shape[0]) + _pair(kernel)
    pre, post, kidx = conv.synapses()
    assert list(zip(pre.tolist(), post.tolist(), kidx.tolist())) == ref  # also: row order, ascending post
    bpre, bpost = conv.build(conv.num_pre, conv.num_post)
    np.testing.assert_array_equal(bpre, pre)
    np.testing.assert_array_equal(bpost, post)
    assert conv.num_synapses == len(ref)
    assert conv.max_row_length(conv.num_pre, conv.num_post) == np.bincount(pre).max()
    # a slice enumeration is the matching subset
    c_out, c_in = channels - 1, in_shape[0] - 1
    spre, spost, skidx = conv.synapses(c_out=c_out, c_in=c_in)
    sub = [s for s in ref if s[1] // (conv.num_post // channels) == c_out and
           s[0] // (in_shape[1] * in_shape[2]) == c_in]
    assert list(zip(spre.tolist(), spost.tolist(), skidx.tolist())) == sub


def test_conv_and_pool_synapses_on_random_shapes():
    rng = np.random.default_rng(2024)
    for _ in range(60):
        in_shape = tuple(int(v) for v in rng.integers(1, [3, 8, 8], endpoint=True))
        padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
        kernel = tuple(int(rng.integers(1, in_shape[1 + a] + 2 * padding[a], endpoint=True)) for a in range(2))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=2, endpoint=True))
        channels = int(rng.integers(1, 3, endpoint=True))
        conv = pc.Conv2D(in_shape, channels, kernel=kernel, stride=stride, padding=padding)
        ref, out_shape = reference_synapses(in_shape, channels, kernel, stride, padding)
        assert conv.out_shape == out_shape
        assert list(zip(*(a.tolist() for a in conv.synapses()))) == ref, (in_shape, channels, kernel, stride, padding)
        pool = tuple(int(rng.integers(1, in_shape[1 + a], endpoint=True)) for a in range(2))
        p = pc.AvgPool2D(in_shape, pool, stride)
        ref_pool, _ = reference_pool_synapses(in_shape, pool, stride)
        assert list(zip(*(a.tolist() for a in p.build(p.num_pre, p.num_post)))) == ref_pool


@pytest.mark.parametrize("in_shape, pool, stride", [((2, 4, 6), 2, None), ((1, 5, 7), (2, 3), None),
                                                    ((2, 5, 5), 3, 1), ((1, 6, 4), (2, 1), (3, 2))])
def test_pool_synapses_equal_independent_enumeration(in_shape, pool, stride):
    p = pc.AvgPool2D(in_shape, pool, stride)
    ref, out_shape = reference_pool_synapses(in_shape, _pair(pool), _pair(pool if stride is None else stride))
    assert p.out_shape == out_shape
    pre, post = p.build(p.num_pre, p.num_post)
    assert list(zip(pre.tolist(), post.tolist())) == ref
    assert p.max_row_length(p.num_pre, p.num_post) == np.bincount(pre).max()
    assert p.weight == 1.0 / (_pair(pool)[0] * _pair(pool)[1])


# --------------------------------------------------------------------------------------------------
# forward runs


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv_forward_equals_numpy_cross_correlation(cfg):
    in_shape, channels, kernel, stride, padding = cfg
    conv = pc.Conv2D(in_shape, channels, kernel=kernel, stride=stride, padding=padding)
    rng = np.random.default_rng(sum(in_shape) + channels)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False)
    for _ in range(2):
        frame = rng.random(in_shape) < 0.5
        ref = xcorr(frame.astype(float), k, _pair(stride), _pair(padding))
        np.testing.assert_allclose(_forward(sim, frame), ref.ravel(), rtol=1e-12, atol=1e-12)


def test_conv_forward_with_bias_and_parallel_kernels():
    conv = pc.Conv2D((2, 6, 6), 3, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(7)
    k, bias = rng.normal(size=conv.kernel_shape), rng.normal(size=3)
    sim = px.Simulation(_conv_net(conv, k, bias=bias), backend="cpu", parallel=True, partitions=2)
    frame = rng.random(conv.in_shape) < 0.4
    steps = 3
    ref = xcorr(frame.astype(float), k, (1, 1), (1, 1)) + steps * bias[:, None, None]  # bias added every step
    np.testing.assert_allclose(_forward(sim, frame, steps), ref.ravel(), rtol=1e-12, atol=1e-12)


def test_bias_helpers_follow_the_channel_layout():
    conv = pc.Conv2D((1, 4, 4), 3, kernel=3, stride=2, padding=1)  # out (3, 2, 2)
    np.testing.assert_array_equal(conv.channel_of_post(), np.repeat([0, 1, 2], 4))
    assert conv.channel_neurons(1) == slice(4, 8)
    b = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(conv.bias_per_neuron(b).reshape(conv.out_shape),
                                  b[:, None, None] * np.ones((3, 2, 2)))
    g = np.arange(12.0)
    np.testing.assert_array_equal(conv.sum_per_channel(g), g.reshape(3, 4).sum(axis=1))


@pytest.mark.parametrize("in_shape, pool, stride", [((2, 4, 6), 2, None), ((2, 5, 5), 3, 1)])
def test_pool_forward_equals_numpy_average_pooling(in_shape, pool, stride):
    p = pc.AvgPool2D(in_shape, pool, stride)
    net = px.Network(dt=1.0, precision="float64")
    inp = net.add_population("inp", p.num_pre, px.neurons.spike_source_array())
    out = net.add_population("out", p.num_post, ACCUMULATE)
    pc.add_avg_pool2d(net, "pool", inp, out, p)
    sim = px.Simulation(net, backend="cpu", parallel=False)
    frame = np.random.default_rng(2).random(in_shape) < 0.5
    ref = avg_pool(frame.astype(float), _pair(pool), _pair(pool if stride is None else stride))
    np.testing.assert_allclose(_forward(sim, frame), ref.ravel(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# shared weights


def test_tie_and_kernel_sum_against_numpy_references():
    conv = pc.Conv2D((2, 5, 6), 3, kernel=3, stride=2, padding=1)
    rng = np.random.default_rng(11)
    sim = px.Simulation(_conv_net(conv, rng.normal(size=conv.kernel_shape)), backend="cpu", parallel=False)
    k2 = rng.normal(size=conv.kernel_shape)
    pc.tie(sim, "conv", k2)
    kernel, count = pc.kernel_from_synapses(sim, "conv")
    np.testing.assert_allclose(kernel, k2)
    frame = rng.random(conv.in_shape) < 0.5
    np.testing.assert_allclose(_forward(sim, frame), xcorr(frame.astype(float), k2, (2, 2), (1, 1)).ravel(),
                               rtol=1e-12, atol=1e-12)
    # kernel gradient of (post gradient x pre spike) products, summed by kidx
    x = rng.random(conv.in_shape)  # e.g. filtered presynaptic traces
    g = rng.normal(size=conv.out_shape)  # gradient at every output neuron
    pre, post = sim.connectivity("conv")
    per_synapse = g.ravel()[post] * x.ravel()[pre]
    ref = kernel_grad(x, g, conv.kernel_shape, (2, 2), (1, 1))
    np.testing.assert_allclose(pc.kernel_sum(sim, "conv", per_synapse), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pc.kernel_sum_outer(sim, "conv", g.ravel(), x.ravel()), ref, rtol=1e-12, atol=1e-12)
    # over time: spikes x gradients summed over steps, and pruned entries get nothing
    spikes = (rng.random((4,) + conv.in_shape) < 0.3).astype(float)
    gt = rng.normal(size=(4,) + conv.out_shape)
    ref_t = sum(kernel_grad(spikes[t], gt[t], conv.kernel_shape, (2, 2), (1, 1)) for t in range(4))
    got = pc.kernel_sum_outer(sim, "conv", gt.reshape(4, -1), spikes.reshape(4, -1))
    np.testing.assert_allclose(got, ref_t, rtol=1e-12, atol=1e-12)
    with pytest.raises(StateError, match="post_values / pre_values must have shapes"):
        pc.kernel_sum_outer(sim, "conv", gt.reshape(4, -1), spikes.reshape(4, -1)[:3])
    ragged = sim.ragged("conv")
    grid = np.zeros(ragged["ind"].shape)
    valid = np.arange(grid.shape[1])[None, :] < ragged["row_length"][:, None]
    grid[valid] = per_synapse
    np.testing.assert_allclose(pc.kernel_sum(sim, "conv", grid), ref, rtol=1e-12, atol=1e-12)
    # every kernel entry reaches as many synapses as the reference enumeration says
    ref_count = np.bincount([s[2] for s in reference_synapses(conv.in_shape, 3, (3, 3), (2, 2), (1, 1))[0]],
                            minlength=count.size)
    np.testing.assert_array_equal(count.ravel(), ref_count)


def _noop_moment(u):
    u.m = u.m


def _drop_small(row, p):
    for s in row.synapses:
        if s.w < p.threshold:
            s.remove()


def _with_rules(net):
    """A per-synapse custom update (an optimiser moment) and a pruning rule with its own synapse var."""
    net.add_custom_update("moment", "conv", px.CustomUpdateModel(name="moment", vars={"m": 0.0},
                                                                 update=_noop_moment))
    net.add_connectivity_update("drop", "conv", px.ConnectivityUpdateModel(
        name="drop", params={"threshold": -1e9}, vars={"age": 0.0}, var_refs=("w",), row_update=_drop_small))


def test_engine_rewiring_moves_kidx_with_its_synapse():
    conv = pc.Conv2D((2, 5, 5), 3, kernel=3, stride=1, padding=1)
    k = np.random.default_rng(5).normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k, extra=_with_rules), backend="cpu", parallel=False)
    sim.set_param("drop", "threshold", 0.0)  # swap-removes every negative synapse
    sim.custom_update("drop")
    ref = _kidx_reference(conv)
    pre, post = sim.connectivity("conv")
    kidx = sim.get("conv", "kidx")
    assert pre.size == int((k > 0).ravel()[list(ref.values())].sum())
    np.testing.assert_array_equal(kidx, [ref[(a, b)] for a, b in zip(pre.tolist(), post.tolist())])
    np.testing.assert_array_equal(sim.get("conv", "w"), k.ravel()[kidx])


def test_prune_channel_removes_its_synapses_and_regrowth_restores_them():
    conv = pc.Conv2D((2, 5, 6), 4, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(13)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k, extra=_with_rules), backend="cpu", parallel=False)
    full = _synapse_set(sim)
    ref_kidx = _kidx_reference(conv)
    # distinguishable per-synapse state in the custom update's and the rule's own variables
    kidx0 = sim.get("conv", "kidx")
    sim.set("moment", "m", kidx0 * 10.0 + 1.0)
    sim.set("drop", "age", -kidx0.astype(float))
    frame = rng.random(conv.in_shape) < 0.5
    plane = conv.num_post // conv.channels

    removed = pc.prune_channel(sim, "conv", 2)
    left = _synapse_set(sim)
    assert left == {s for s in full if s[1] // plane != 2}
    assert removed == len(full) - len(left)
    pre, post = sim.connectivity("conv")
    kidx = sim.get("conv", "kidx")
    np.testing.assert_array_equal(kidx, [ref_kidx[(a, b)] for a, b in zip(pre.tolist(), post.tolist())])
    np.testing.assert_array_equal(sim.get("moment", "m"), kidx * 10.0 + 1.0)  # moved with their synapses
    np.testing.assert_array_equal(sim.get("drop", "age"), -kidx.astype(float))
    rows = sim.ragged("conv")
    assert all(np.all(np.diff(r[:n]) > 0) for r, n in zip(rows["ind"], rows["row_length"]))  # order kept
    zeroed = k.copy()
    zeroed[2] = 0.0
    np.testing.assert_allclose(_forward(sim, frame), xcorr(frame.astype(float), zeroed, (1, 1), (1, 1)).ravel(),
                               rtol=1e-12, atol=1e-12)
    assert pc.kernel_from_synapses(sim, "conv")[1][2].sum() == 0
    g = rng.normal(size=conv.out_shape)
    grad = kernel_grad(frame.astype(float), g, conv.kernel_shape, (1, 1), (1, 1))
    grad[2] = 0.0  # no synapses, no gradient
    np.testing.assert_allclose(pc.kernel_sum_outer(sim, "conv", g.ravel(), frame.ravel()), grad, rtol=1e-12,
                               atol=1e-12)

    # one slice back, then the rest of the channel; a second regrowth finds everything present
    rep = pc.regrow_slice(sim, "conv", k, 2, 0)
    assert (rep.added, rep.present, rep.unfitted) == (len(conv.synapses(2, 0)[0]), 0, 0)
    rep = pc.regrow_slice(sim, "conv", k, 2)
    assert rep.added + len(conv.synapses(2, 0)[0]) == removed and rep.present == len(conv.synapses(2, 0)[0])
    assert _synapse_set(sim) == full
    pre, post = sim.connectivity("conv")
    kidx = sim.get("conv", "kidx")
    np.testing.assert_array_equal(kidx, [ref_kidx[(a, b)] for a, b in zip(pre.tolist(), post.tolist())])
    regrown = (post // plane) == 2
    np.testing.assert_array_equal(sim.get("moment", "m")[regrown], 0.0)  # update state restarts at 0
    np.testing.assert_array_equal(sim.get("moment", "m")[~regrown], kidx[~regrown] * 10.0 + 1.0)
    np.testing.assert_allclose(_forward(sim, frame), xcorr(frame.astype(float), k, (1, 1), (1, 1)).ravel(),
                               rtol=1e-12, atol=1e-12)
    assert pc.regrow_slice(sim, "conv", k, 2).added == 0

    # a slice prune removes exactly that (c_out, c_in) slice
    n = pc.prune_channel(sim, "conv", [0, 3], c_in=1)
    in_plane = conv.in_shape[1] * conv.in_shape[2]
    assert _synapse_set(sim) == {s for s in full if not (s[1] // plane in (0, 3) and s[0] // in_plane == 1)}
    assert n == len(full) - len(_synapse_set(sim))


def _per_element_trace(net):
    net.add_custom_update("trace", "conv", px.CustomUpdateModel(
        name="trace", vars={"e": px.Var(0.0, access=VA.READ_WRITE)}, update=_noop_trace))


def _noop_trace(u):
    u.e = u.e


def test_prune_and_regrow_move_per_batch_element_synapse_state():
    conv = pc.Conv2D((1, 4, 4), 3, kernel=3, stride=1, padding=1)
    k = np.random.default_rng(3).normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k, extra=_per_element_trace), backend="cpu", batch_size=2, parallel=False)
    kidx = sim.get("conv", "kidx")
    sim.set("trace", "e", np.stack([kidx + 0.5, -kidx - 0.5]))
    pc.prune_channel(sim, "conv", 1)
    kidx = sim.get("conv", "kidx")
    np.testing.assert_array_equal(sim.get("trace", "e"), np.stack([kidx + 0.5, -kidx - 0.5]))
    pc.regrow_slice(sim, "conv", k, 1)
    _, post = sim.connectivity("conv")
    kidx, e = sim.get("conv", "kidx"), sim.get("trace", "e")
    back = post // (conv.num_post // 3) == 1
    np.testing.assert_array_equal(e[:, back], 0.0)
    np.testing.assert_array_equal(e[:, ~back], np.stack([kidx + 0.5, -kidx - 0.5])[:, ~back])


def test_regrowth_into_full_rows_is_reported_never_dropped():
    conv = pc.Conv2D((1, 4, 4), 2, kernel=3, stride=1, padding=1)
    k = np.random.default_rng(1).normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False)
    pc.prune_channel(sim, "conv", 1)
    # fill row 5's freed slots with other synapses (duplicates of its channel-0 targets)
    pre, post = sim.connectivity("conv")
    stride = sim.ragged("conv")["ind"].shape[1]
    extra = stride - int((pre == 5).sum())
    fill_post = post[pre == 5][:extra]
    pre2, post2 = np.concatenate([pre, np.full(extra, 5)]), np.concatenate([post, fill_post])
    kidx = np.concatenate([sim.get("conv", "kidx"), sim.get("conv", "kidx")[pre == 5][:extra]])
    sim.set_connectivity("conv", pre2, post2, w=k.ravel()[kidx], kidx=kidx)
    before = sim.ragged("conv")
    with pytest.raises(CapacityError, match="row 5"):
        pc.regrow_slice(sim, "conv", k, 1)
    after = sim.ragged("conv")
    np.testing.assert_array_equal(after["row_length"], before["row_length"])  # nothing changed
    rep = pc.regrow_slice(sim, "conv", k, 1, strict=False)
    want = {(a, b) for a, b, _ in zip(*conv.synapses(c_out=1))}
    missed = set(zip(rep.unfitted_pre.tolist(), rep.unfitted_post.tolist()))
    assert missed == {s for s in want if s[0] == 5} and rep.unfitted == extra
    assert rep.added == len(want) - extra
    assert (want - missed) <= _synapse_set(sim) and not (missed & _synapse_set(sim))


# --------------------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize("kwargs, match", [
    ({"in_shape": (1, 4), "channels": 2}, "in_shape must be"),
    ({"in_shape": (0, 4, 4), "channels": 2}, "in_shape must be"),
    ({"in_shape": (1, 4, 4), "channels": 0}, r"channels must be a positive integer \(>= 1\)"),
    ({"in_shape": (1, 4, 4), "channels": True}, "channels must be a positive integer"),
    ({"in_shape": (1, 4, 4), "channels": 2, "kernel": 7, "padding": 1}, r"kernel height 7 .* must be in \[1, 6\]"),
    ({"in_shape": (1, 4, 8), "channels": 2, "kernel": (1, 9)}, r"kernel width 9 .* must be in \[1, 8\]"),
    ({"in_shape": (1, 4, 4), "channels": 2, "stride": 0}, "stride must be >= 1"),
    ({"in_shape": (1, 4, 4), "channels": 2, "stride": (1, -2)}, "stride must be >= 1"),
    ({"in_shape": (1, 4, 4), "channels": 2, "padding": -1}, "padding must be >= 0"),
    ({"in_shape": (1, 4, 4), "channels": 2, "kernel": (1, 2, 3)}, "kernel must be an integer or a pair"),
])
def test_conv_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pc.Conv2D(**kwargs)


def test_pool_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match=r"pool height 5 .* must be in \[1, 4\]"):
        pc.AvgPool2D((1, 4, 4), 5)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        pc.AvgPool2D((1, 4, 4), 2, 0)


def test_population_sizes_must_match_the_shapes():
    conv = pc.Conv2D((2, 4, 4), 3, kernel=3, padding=1)  # 32 -> 48 neurons
    net = px.Network()
    a = net.add_population("a", 30, px.neurons.spike_source_array())
    b = net.add_population("b", 48, ACCUMULATE)
    c = net.add_population("c", 32, px.neurons.spike_source_array())
    d = net.add_population("d", 47, ACCUMULATE)
    k = np.zeros(conv.kernel_shape)
    with pytest.raises(NetworkError, match=r"num_pre .* must be C_in \* H \* W = 32 .* got 30"):
        pc.add_conv2d(net, "x", a, b, conv, k)
    with pytest.raises(NetworkError, match=r"num_post .* must be C_out \* H_out \* W_out = 48 .* got 47"):
        pc.add_conv2d(net, "y", c, d, conv, k)
    with pytest.raises(ValueError, match=r"kernel must have shape \(C_out, C_in, kh, kw\) = \(3, 2, 3, 3\)"):
        pc.add_conv2d(net, "z", c, b, conv, np.zeros((3, 2, 3)))
    pool = pc.AvgPool2D((2, 4, 4), 2)
    with pytest.raises(NetworkError, match=r"num_post .* must be C \* H_out \* W_out = 8"):
        pc.add_avg_pool2d(net, "p", c, b, pool)
    # the plain add_projection route fails at build, naming the projection
    net.add_projection("raw", c, d, connectivity=conv, weight_update=pc.conv_synapse())
    with pytest.raises(NetworkError, match=r"'raw'.*num_post"):
        px.Simulation(net, backend="cpu").build()


def test_shared_weight_functions_reject_bad_input():
    conv = pc.Conv2D((1, 4, 4), 2, kernel=3, padding=1)
    k = np.ones(conv.kernel_shape)
    net = _conv_net(conv, k)
    net.add_population("other", 4, ACCUMULATE)
    net.add_projection("fc", "inp", "other", connectivity=px.connect.AllToAll())
    sim = px.Simulation(net, backend="cpu", parallel=False)
    with pytest.raises(ValueError, match="kernel must have shape"):
        pc.tie(sim, "conv", np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="must be finite"):
        pc.tie(sim, "conv", np.full(conv.kernel_shape, np.nan))
    with pytest.raises(StateError, match="not a Conv2D projection"):
        pc.tie(sim, "fc", k)
    with pytest.raises(StateError, match="unknown projection"):
        pc.kernel_sum(sim, "nope", np.zeros(3))
    with pytest.raises(StateError, match=r"one value per synapse \(\d+, row order\)"):
        pc.kernel_sum(sim, "conv", np.zeros(5))
    with pytest.raises(ValueError, match=r"c_out must be in \[0, 2\), got 2"):
        pc.prune_channel(sim, "conv", 2)
    with pytest.raises(ValueError, match=r"c_in must be in \[0, 1\), got -1"):
        pc.regrow_slice(sim, "conv", k, 0, -1)
    with pytest.raises(StateError, match="strict must be True or False"):
        pc.regrow_slice(sim, "conv", k, 0, strict="yes")


# --------------------------------------------------------------------------------------------------
# the CUDA backend (numba-cuda's simulator unless PLASTIX_TEST_REAL_CUDA=1): the host-side functions pull
# from and push to the device


def test_cuda_tie_prune_regrow_forward():
    pytest.importorskip("numba.cuda")
    from numba import cuda

    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" and not cuda.is_available():
        pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (numba-cuda simulator) or a CUDA GPU")
    conv = pc.Conv2D((2, 3, 3), 2, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(17)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cuda")
    frame = rng.random(conv.in_shape) < 0.6
    x = frame.astype(float)
    np.testing.assert_allclose(_forward(sim, frame), xcorr(x, k, (1, 1), (1, 1)).ravel(), rtol=1e-9, atol=1e-9)
    k2 = rng.normal(size=conv.kernel_shape)
    pc.tie(sim, "conv", k2)
    pc.prune_channel(sim, "conv", 0)
    zeroed = k2.copy()
    zeroed[0] = 0.0
    np.testing.assert_allclose(_forward(sim, frame), xcorr(x, zeroed, (1, 1), (1, 1)).ravel(), rtol=1e-9, atol=1e-9)
    assert pc.regrow_slice(sim, "conv", k2, 0).added == len(conv.synapses(c_out=0)[0])
    np.testing.assert_allclose(_forward(sim, frame), xcorr(x, k2, (1, 1), (1, 1)).ravel(), rtol=1e-9, atol=1e-9)
