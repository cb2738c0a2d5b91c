"""Propagation of a convolution's events through its kernel taps (plastix.codegen.taps): bitwise the
propagation through the rows (the same network with the tap path switched off), against numpy
cross-correlation, for spiking and graded events, strides, padding, batches and pruned channels; the kernel
read back from the synapses (kernels.conv_taps.kernel_from_synapses) against numpy, and every way the
synapses can stop being the geometry's whole kernel entries (the rows are then used, with the same result)."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px
import plastix.conv as pc
from plastix.kernels import conv_taps

from test_conv import CONFIGS, _conv_net, _forward, _pair, xcorr

VA = px.VarAccess
_KIDX = px.Var(0, "int32", access=VA.READ_ONLY)


def _info(sim, proj="conv"):
    q = sim.plan.projs[sim.network.projections[proj].index]
    return sim.state[q.keys.taps("info")]


def _both_ways(sim, run):
    """``run(sim)`` with the tap path on, then off (the rows), from the same state; and the tap arrays'
    ``info`` of the first run (``info[INFO_OK]``: the taps were used)."""
    sim.build()
    saved = {k: v.copy() for k, v in sim.state.items() if isinstance(v, np.ndarray)}
    sim.backend.conv_taps = "always"   # tiny layers: every step with an event (the default needs more)
    a = run(sim)
    info = _info(sim).copy()
    for k, v in saved.items():
        sim.state[k] = v.copy()
    sim.backend.conv_taps = False
    b = run(sim)
    sim.backend.conv_taps = True
    return a, b, info


@pytest.mark.parametrize("cfg", CONFIGS)
def test_taps_equal_the_rows_bit_for_bit_and_numpy(cfg):
    in_shape, channels, kernel, stride, padding = cfg
    conv = pc.Conv2D(in_shape, channels, kernel=kernel, stride=stride, padding=padding)
    rng = np.random.default_rng(sum(in_shape) + channels + 1)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False).build()
    assert sim.plan.projs[0].taps
    frame = rng.random(in_shape) < 0.5
    a, b, info = _both_ways(sim, lambda s: _forward(s, frame).copy())
    assert info[conv_taps.INFO_OK]
    np.testing.assert_array_equal(a, b)
    ref = xcorr(frame.astype(float), k, _pair(stride), _pair(padding))
    np.testing.assert_allclose(a, ref.ravel(), rtol=1e-12, atol=1e-12)


def _graded_sim(n):
    n.x = n.drive
    n.drive = 0.0


def _graded_threshold(n):
    return n.x != 0.0


def _scaled_sum(n, i_syn):
    n.v += i_syn * n.scale


def _transmit_value(s, pre):
    add_to_post(s.w * pre.x)  # noqa: F821 - provided by the engine


def _graded_net(conv, kernel):
    """Graded events: the presynaptic neuron sends its value x (it fires when x != 0), float32."""
    net = px.Network(dt=1.0, precision="float32", seed=5)
    src = px.NeuronModel(name="graded", vars={"x": 0.0, "drive": 0.0}, sim=_graded_sim, threshold=_graded_threshold)
    inp = net.add_population("inp", conv.num_pre, src)
    out = net.add_population("out", conv.num_post, px.NeuronModel(name="acc", vars={"v": 0.0, "scale": 1.0},
                                                                  sim=_scaled_sum))
    wu = px.WeightUpdateModel(name="graded_conv", vars={"w": 0.0, "kidx": _KIDX}, on_pre=_transmit_value)
    net.add_projection("conv", inp, out, connectivity=conv, weight_update=wu, init=conv.synapse_init(kernel))
    return net


def test_graded_events_in_a_batch_equal_the_rows_and_numpy():
    conv = pc.Conv2D((3, 7, 6), 5, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(11)
    k = rng.normal(size=conv.kernel_shape)
    B, steps = 4, 5
    sim = px.Simulation(_graded_net(conv, k), backend="cpu", batch_size=B, check_finite=False)
    drives = rng.normal(size=(steps, B, conv.num_pre)) * (rng.random((steps, B, conv.num_pre)) < 0.3)

    def run(s):
        s.reset_trial()
        for t in range(steps):
            s.set("inp", "drive", drives[t])
            s.run(1)
        s.run(2)
        return s.get("out", "v").copy()

    a, b, info = _both_ways(sim, run)
    assert info[conv_taps.INFO_OK]
    np.testing.assert_array_equal(a, b)
    ref = np.stack([sum(xcorr(drives[t, e].reshape(conv.in_shape), k, (1, 1), (1, 1)) for t in range(steps))
                    for e in range(B)]).reshape(B, -1)
    np.testing.assert_allclose(a, ref, rtol=1e-4, atol=1e-4)


def test_pruned_channels_are_skipped_and_a_regrown_slice_comes_back():
    conv = pc.Conv2D((2, 5, 6), 4, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(13)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False)
    frame = rng.random(conv.in_shape) < 0.5
    pc.prune_channel(sim, "conv", [1, 2])
    a, b, info = _both_ways(sim, lambda s: _forward(s, frame).copy())
    assert info[conv_taps.INFO_OK] and info[conv_taps.INFO_CHANNELS] == 2
    np.testing.assert_array_equal(a, b)
    zeroed = k.copy()
    zeroed[[1, 2]] = 0.0
    np.testing.assert_allclose(a, xcorr(frame.astype(float), zeroed, (1, 1), (1, 1)).ravel(), rtol=1e-12, atol=1e-12)
    pc.regrow_slice(sim, "conv", k, 2, 1)   # one whole slice K[2, 1] back: its entries are whole
    a, b, info = _both_ways(sim, lambda s: _forward(s, frame).copy())
    assert info[conv_taps.INFO_OK] and info[conv_taps.INFO_CHANNELS] == 3
    np.testing.assert_array_equal(a, b)
    zeroed[2, 1] = k[2, 1]
    np.testing.assert_allclose(a, xcorr(frame.astype(float), zeroed, (1, 1), (1, 1)).ravel(), rtol=1e-12, atol=1e-12)


def _edited(sim, edit):
    pre, post = sim.connectivity("conv")
    w, kidx = sim.get("conv", "w"), sim.get("conv", "kidx")
    pre, post, w, kidx = edit(pre.copy(), post.copy(), w.copy(), kidx.copy())
    sim.set_connectivity("conv", pre, post, w=w, kidx=kidx)


@pytest.mark.parametrize("case", ["partial_entry", "unequal_weights", "wrong_target", "kidx_out_of_range"])
def test_synapses_that_are_not_whole_kernel_entries_use_the_rows(case):
    conv = pc.Conv2D((2, 5, 5), 3, kernel=3, stride=1, padding=1)
    rng = np.random.default_rng(17)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False)
    frame = rng.random(conv.in_shape) < 0.6

    def edit(pre, post, w, kidx):
        if case == "partial_entry":
            return pre[1:], post[1:], w[1:], kidx[1:]
        if case == "unequal_weights":
            w[5] += 0.25
        elif case == "wrong_target":
            post[7] = (post[7] + 1) % conv.num_post
            keep = np.unique(np.stack([pre, post]), axis=1, return_index=True)[1]   # no duplicate pair
            return pre[np.sort(keep)], post[np.sort(keep)], w[np.sort(keep)], kidx[np.sort(keep)]
        else:
            kidx[3] = conv.num_synapses + k.size
        return pre, post, w, kidx

    _edited(sim, edit)
    a, b, info = _both_ways(sim, lambda s: _forward(s, frame).copy())
    assert not info[conv_taps.INFO_OK]
    np.testing.assert_array_equal(a, b)
    # the rows' answer, by hand from the synapse list
    pre, post = sim.connectivity("conv")
    w = sim.get("conv", "w")
    ref = np.zeros(conv.num_post)
    np.add.at(ref, post, w * frame.ravel()[pre])
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12)


def test_kernel_read_back_against_numpy():
    conv = pc.Conv2D((3, 6, 5), 4, kernel=(3, 2), stride=(2, 1), padding=(1, 0))
    rng = np.random.default_rng(19)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False)
    pc.prune_channel(sim, "conv", 1)
    sim.run(1)   # the kernel is read back before every run
    q = sim.plan.projs[0]
    kernel, chan, info = (sim.state[q.keys.taps(n)] for n in ("kernel", "chan", "info"))
    positions = conv.num_post // 4
    assert list(info[:3]) == [1, 3, positions]
    assert info[conv_taps.INFO_MIN_SPIKES] == conv_taps.min_spikes(len(conv.synapses(c_out=0)[0]), conv.num_pre,
                                                                   positions)
    live = [0, 2, 3]
    np.testing.assert_array_equal(chan[:3], live)
    np.testing.assert_array_equal(kernel[:, :3], k[live].reshape(3, -1).T)
    # the table: neuron i reaches output position out through tap, exactly the geometry's synapses
    start, tap, out = conv_taps.tap_table(conv.in_shape, conv.kernel, conv.stride, conv.padding, conv.out_shape[1:])
    pre, post, kidx = conv.synapses(c_out=0)
    n_taps = k[0].size
    got = {(i, int(tap[j]), int(out[j])) for i in range(conv.num_pre) for j in range(start[i], start[i + 1])}
    assert got == {(int(a), int(e % n_taps), int(b)) for a, b, e in zip(pre, post, kidx)}
    full = conv_taps.tap_counts(tap, n_taps, conv.channels)
    np.testing.assert_array_equal(full, np.bincount(conv.kernel_index(), minlength=k.size))


def _keep(row):
    pass


def _sum_input(n, i_syn):
    n.v += i_syn


def _transmit_times_post(s, post):
    add_to_post(s.w * post.v)  # noqa: F821 - provided by the engine


def _transmit_and_count(s):
    s.n += 1.0
    add_to_post(s.w)  # noqa: F821 - provided by the engine


def _transmit(s):
    add_to_post(s.w)  # noqa: F821 - provided by the engine


def test_only_what_the_tap_path_can_bind_propagates_by_taps():
    conv = pc.Conv2D((1, 4, 4), 2, kernel=3, padding=1)
    k = np.ones(conv.kernel_shape)

    def taps(extra=None, wu=None, batch=1):
        net = px.Network(dt=1.0, precision="float64", seed=3)
        inp = net.add_population("inp", conv.num_pre, px.neurons.spike_source_array())
        out = net.add_population("out", conv.num_post, px.NeuronModel(name="acc", vars={"v": 0.0}, sim=_sum_input))
        if wu is None:
            pc.add_conv2d(net, "conv", inp, out, conv, k)
        else:
            init = {v: a for v, a in conv.synapse_init(k).items() if v in wu.vars}
            net.add_projection("conv", inp, out, connectivity=conv, weight_update=wu, init=init)
        if extra is not None:
            extra(net)
        return px.Simulation(net, backend="cpu", parallel=False, batch_size=batch).build().plan.projs[0].taps

    assert taps() and taps(batch=3)
    assert not taps(wu=px.WeightUpdateModel(name="post_read", vars={"w": 0.0, "kidx": _KIDX},
                                            on_pre=_transmit_times_post))
    assert not taps(wu=px.WeightUpdateModel(name="writes", vars={"w": 0.0, "kidx": _KIDX, "n": 0.0},
                                            on_pre=_transmit_and_count))
    assert not taps(wu=px.WeightUpdateModel(name="per_element", vars={"w": px.Var(0.0, access=VA.READ_WRITE),
                                                                      "kidx": _KIDX}, on_pre=_transmit), batch=2)
    assert not taps(wu=px.WeightUpdateModel(name="no_kidx", vars={"w": 0.0}, on_pre=_transmit))
    keep = px.ConnectivityUpdateModel(name="keep", row_update=_keep)
    assert not taps(extra=lambda net: net.add_connectivity_update("r", "conv", keep, every=5))
    assert taps(extra=lambda net: net.add_connectivity_update("r", "conv", keep))


def test_the_default_takes_the_taps_in_busy_steps_with_the_same_result():
    conv = pc.Conv2D((4, 8, 8), 6, kernel=3, padding=1)
    rng = np.random.default_rng(23)
    k = rng.normal(size=conv.kernel_shape)
    sim = px.Simulation(_conv_net(conv, k), backend="cpu", parallel=False).build()
    fewest = conv_taps.min_spikes(len(conv.synapses(c_out=0)[0]), conv.num_pre, 64)
    assert 4 * 64 / 9 <= fewest <= 4 * 64 / 6 + 1   # mean taps per neuron lies between 6 and 9 here
    busy, quiet = rng.random(conv.in_shape) < 0.9, rng.random(conv.in_shape) < 0.05
    assert busy.sum() >= fewest > quiet.sum()
    for frame in (busy, quiet):
        sim.backend.conv_taps = True
        a = _forward(sim, frame).copy()
        sim.backend.conv_taps = False
        np.testing.assert_array_equal(a, _forward(sim, frame))
        np.testing.assert_allclose(a, xcorr(frame.astype(float), k, (1, 1), (1, 1)).ravel(), rtol=1e-12, atol=1e-12)
    sim.backend.conv_taps = "sometimes"
    with pytest.raises(ValueError, match="conv_taps must be True, False or 'always'"):
        sim.run(1)
