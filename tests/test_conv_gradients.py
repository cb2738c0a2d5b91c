"""The backward pass of conv and pooling layers from their geometry (plastix.conv.gradients) against the
engine's per-synapse updates on the same tape: the kernel gradient summed by kernel entry
(kernel_event_sum against the per-synapse weight gradient + kernel_sum), the transposed convolution and
pooling (kernel_transpose_add / pool_transpose_add against the per-synapse backward scans).  The whole BPTT
pass that uses them is checked against a plain-numpy BPTT in tests/test_bptt_network.py.  Plus pruned
channels, a partial kernel entry (a clear error; the trainer falls back), thread-count independence and
bad input."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from plastix.codegen.names import NAMES
from plastix.conv import (kernel_event_sum, kernel_sum, kernel_transpose_add, pool_transpose_add, prune_channel,
                          whole_entries)
from plastix.errors import StateError
from plastix.learning.bptt import BPTTConfig, BPTTNetwork, bernoulli_counts

CASES = {   # spec, input shape: graded (input, pool) and spiking (conv) presynaptic events, stride, padding
    "conv_pool_conv": ("conv3-pool2-conv4k3s1p1-fc3", (2, 6, 6)),
    "strided_padded": ("conv3-conv4k3s2p1-fc3", (1, 7, 7)),
    "conv_conv": ("conv3-conv2k2s1p0-pool2-fc3", (1, 6, 6)),
}


def _trained(case, seed=1, dtype="float64"):
    spec, shape = CASES[case]
    cfg = BPTTConfig(input_shape=shape, layers=spec, steps=6, loss="ce_rate", dtype=dtype, seed=seed)
    net = BPTTNetwork(cfg, batch_size=3)
    for L in net.layers:
        if L.kind == "conv":
            k, b = net.conv_parameters(L.name)
            net.set_conv_parameters(L.name, 3.0 * k, b)
    rng = np.random.default_rng(seed)
    x = bernoulli_counts(rng.uniform(0.3, 0.9, (3, int(np.prod(shape)))), cfg.steps, rng)
    net.gradients(x, np.array([0, 1, 2]))   # leaves the forward run's tape and the adjoints on it
    return net


def _convs(net):
    return [(L, f"{L.name}_syn", net.projections[f"{L.name}_syn"][2]) for L in net.layers if L.kind == "conv"]


def _per_synapse_kernel_gradient(net, proj):
    net.sim.custom_update(f"{proj}_gw")
    return kernel_sum(net.sim, proj, net.sim.get(f"{proj}_gw", "gw"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_event_sum_equals_the_per_synapse_gradient(case):
    net = _trained(case)
    for L, proj, graded in _convs(net):
        assert whole_entries(net.sim, proj)
        ref = _per_synapse_kernel_gradient(net, proj)
        got = kernel_event_sum(net.sim, proj, "du", "cnt" if graded else None)
        assert np.abs(ref).max() > 1e-6, f"{L.name}: vanishing gradient, the comparison would be vacuous"
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13, err_msg=L.name)


def test_float32_kernel_event_sum_sums_each_element_in_float32_like_the_synapses():
    """A float32 network's per-element sums are float32 (as the per-synapse update's): the two agree to
    float32 rounding."""
    net = _trained("conv_pool_conv", dtype="float32")
    for L, proj, graded in _convs(net):
        ref = _per_synapse_kernel_gradient(net, proj)
        got = kernel_event_sum(net.sim, proj, "du", "cnt" if graded else None)
        assert got.dtype == np.float64 and np.abs(ref).max() > 1e-4
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6 * np.abs(ref).max(), err_msg=L.name)


def _tape_key(sim, pop, var):
    return NAMES.rec_var(sim.plan.recorded_vars.index((pop, var)))


def _both_ways(net, name, host):
    """The presynaptic tape the transposed update ``name`` writes, from the engine and from ``host``."""
    sim, (L, into) = net.sim, net._conv_backs[name]
    key = _tape_key(sim, net.projections[f"{L.name}_syn"][0], into)
    out = []
    for run in (lambda: sim.custom_update(name), host):
        sim.state[key][:] = 0.0
        run()
        out.append(sim.state[key].copy())
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_transposes_equal_the_per_synapse_scans(case):
    net = _trained(case)
    seen = set()
    for name, (L, into) in net._conv_backs.items():
        proj = f"{L.name}_syn"
        if L.kind == "conv":
            kernel = net.conv_parameters(L.name)[0]
            ref, got = _both_ways(net, name, lambda: kernel_transpose_add(net.sim, proj, "du", into, kernel))
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13, err_msg=name)
        else:
            ref, got = _both_ways(net, name, lambda: pool_transpose_add(net.sim, proj, "du", into))
            np.testing.assert_array_equal(got, ref, err_msg=name)   # same additions, same order
        assert np.abs(ref).max() > 1e-6, f"{name}: nothing carried down, the comparison would be vacuous"
        seen.add(L.kind)
    assert seen == ({"conv", "pool"} if "pool" in CASES[case][0] else {"conv"})


def test_pruned_channels_are_skipped_and_give_zero():
    net = _trained("conv_pool_conv")
    proj = "conv2_syn"
    prune_channel(net.sim, proj, c_out=[0, 2])
    prune_channel(net.sim, proj, c_out=1, c_in=0)   # one kernel slice
    assert whole_entries(net.sim, proj)
    ref = _per_synapse_kernel_gradient(net, proj)
    got = kernel_event_sum(net.sim, proj, "du", "cnt")
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
    assert np.all(got[[0, 2]] == 0.0) and np.all(got[1, 0] == 0.0) and np.abs(got[3]).max() > 0
    kernel = net.conv_parameters("conv2")[0]
    ref, got = _both_ways(net, "conv2_syn_back", lambda: kernel_transpose_add(net.sim, proj, "du", "du", kernel))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


def test_a_partial_kernel_entry_is_an_error_and_the_trainer_falls_back():
    net = _trained("strided_padded")
    proj = "conv1_syn"
    pre, post = net.sim.connectivity(proj)
    values = {v: net.sim.get(proj, v) for v in ("w", "kidx")}
    net.sim.set_connectivity(proj, pre[1:], post[1:], **{v: a[1:] for v, a in values.items()})
    assert not whole_entries(net.sim, proj)
    with pytest.raises(StateError, match=r"kernel entry .* synapses"):
        kernel_event_sum(net.sim, proj, "du", "cnt")
    with pytest.raises(StateError, match=r"kernel entry .* synapses"):
        kernel_transpose_add(net.sim, proj, "du", "du", net.conv_parameters("conv1")[0])
    assert not net._by_entry(proj)
    rng = np.random.default_rng(3)
    x = bernoulli_counts(rng.uniform(0.3, 0.9, (3, 49)), 6, rng)
    g = net.gradients(x, np.array([0, 1, 2]))["conv1"]["kernel"]   # the per-synapse way
    assert np.isfinite(g).all() and np.abs(g).max() > 0


def test_results_do_not_depend_on_the_thread_count():
    most = numba.config.NUMBA_NUM_THREADS
    if most < 2:
        pytest.skip("numba has one thread here: nothing to compare")
    net = _trained("conv_pool_conv")
    sim, before = net.sim, numba.get_num_threads()
    kernel = net.conv_parameters("conv2")[0]
    key = _tape_key(sim, "pool1", "du")
    out = []
    try:
        for threads in (1, most):
            numba.set_num_threads(threads)
            sim.state[key][:] = 0.0
            kernel_transpose_add(sim, "conv2_syn", "du", "du", kernel)
            out.append((kernel_event_sum(sim, "conv2_syn", "du", "cnt"), sim.state[key].copy()))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_bad_input():
    net = _trained("conv_pool_conv")
    sim = net.sim
    with pytest.raises(StateError, match="not a Conv2D"):
        kernel_event_sum(sim, "pool1_syn", "du")
    with pytest.raises(StateError, match="unknown projection"):
        kernel_event_sum(sim, "nope", "du")
    with pytest.raises(StateError, match="post_var 'v' is not a variable"):
        kernel_event_sum(sim, "conv2_syn", "v")
    with pytest.raises(StateError, match="kernel_event_sum: post_var conv2.age is not on the tape"):
        kernel_event_sum(sim, "conv2_syn", "age")
    with pytest.raises(StateError, match="pool_transpose_add: pre_var conv1.age is not on the tape"):
        pool_transpose_add(sim, "pool1_syn", "du", "age")
    with pytest.raises(StateError, match="not an AvgPool2D"):
        pool_transpose_add(sim, "conv2_syn", "du", "du")
    with pytest.raises(ValueError, match="kernel must have shape"):
        kernel_transpose_add(sim, "conv2_syn", "du", "du", np.zeros((1, 1, 3, 3)))


# -- the kernels against numpy over the geometry's synapse lists (no simulation) -------------------------
GEOMETRIES = [((2, 5, 6), 3, 3, 1, 1), ((3, 7, 5), 2, (3, 2), (2, 1), (1, 0)), ((1, 4, 4), 2, 2, 2, 0)]


@pytest.mark.parametrize("in_shape,channels,kernel,stride,padding", GEOMETRIES)
def test_tap_kernels_equal_sums_over_the_synapse_list(in_shape, channels, kernel, stride, padding):
    from plastix.conv import Conv2D
    from plastix.conv.events import event_tap_sums, tap_table, tap_transpose_add, transpose_table

    conv = Conv2D(in_shape, channels, kernel=kernel, stride=stride, padding=padding)
    pre, post, kidx = conv.synapses()
    rng = np.random.default_rng(5)
    B, ntape, n_pre, n_post = 2, 5, conv.num_pre, conv.num_post
    du = rng.standard_normal((B, ntape, n_post))
    x = rng.integers(0, 3, (B, ntape, n_pre)).astype(np.float64)
    K = rng.standard_normal(conv.kernel_shape)
    ref_gw = np.zeros(K.size)   # events: every nonzero x at a step whose arrival (+1) is on the tape
    ref_gz = np.zeros((B, ntape, n_pre))
    for b in range(B):
        for te in range(ntape - 1):
            np.add.at(ref_gw, kidx, x[b, te, pre] * du[b, te + 1, post])
            np.add.at(ref_gz[b, te], pre, K.ravel()[kidx] * du[b, te + 1, post])
    events = [np.nonzero(x[b] != 0) for b in range(B)]   # the spike record: time order, then neuron order
    cap = max(e[0].size for e in events)
    rec_step = np.zeros((B, cap), np.int32)
    rec_idx = np.zeros((B, cap), np.int32)
    rec_n = np.array([[e[0].size] for e in events], np.int32)
    for b, (t, i) in enumerate(events):
        rec_step[b, :t.size], rec_idx[b, :t.size] = t + 10, i   # tape row 0 is step 10
    start, tap, tap_out = tap_table(conv.in_shape, conv.kernel, conv.stride, conv.padding, conv.out_shape[1:])
    out = np.empty((B, int(np.prod(conv.kernel_shape[1:])), channels))
    event_tap_sums(rec_step, rec_idx, rec_n, 10, 1, du, x, True, np.arange(channels, dtype=np.int64),
                   conv.out_shape[1] * conv.out_shape[2], start, tap, tap_out, out)
    got = out.sum(axis=0).T.reshape(conv.kernel_shape)
    np.testing.assert_allclose(got.ravel(), ref_gw, rtol=1e-12, atol=1e-12)
    gz = np.zeros((B, ntape, n_pre))
    tap_transpose_add(du, 1, np.ascontiguousarray(K.reshape(channels, -1)), conv.in_shape[1] * conv.in_shape[2],
                      transpose_table(conv.in_shape, conv.kernel, conv.stride, conv.padding, conv.out_shape[1:]), gz)
    np.testing.assert_allclose(gz, ref_gz, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_shape,pool,stride", [((2, 6, 6), 2, None), ((2, 7, 5), 3, 2), ((1, 5, 7), 2, 3)])
def test_pool_transpose_kernel_equals_the_synapse_list(in_shape, pool, stride):
    from plastix.conv import AvgPool2D
    from plastix.conv.events import pool_window_transpose

    geo = AvgPool2D(in_shape, pool=pool, stride=stride)
    pre, post = geo.build(geo.num_pre, geo.num_post)
    rng = np.random.default_rng(2)
    du = rng.standard_normal((2, 4, geo.num_post))
    ref = np.zeros((2, 4, geo.num_pre))
    for b in range(2):
        for u in range(3):
            np.add.at(ref[b, u], pre, geo.weight * du[b, u + 1, post])
    gz = np.zeros_like(ref)
    pool_window_transpose(du, 1, geo.weight, np.array(geo.in_shape, np.int64), np.array(geo.out_shape[1:], np.int64),
                          *geo._windows.axes(), gz)
    np.testing.assert_allclose(gz, ref, rtol=1e-13, atol=1e-14)
    assert np.abs(ref).max() > 0
