"""DEEP R (the mlGeNN variant and its noise / soft forms) inside e-prop training."""
import numpy as np
import pytest

from plastix.learning.eprop import EPropConfig, EPropNetwork, TrainingError


def _config(**kw):
    base = dict(num_inputs=20, num_outputs=3, num_hidden=16, input_density=0.2, recurrent_density=0.2,
                row_padding=2.0, rewiring="deep-r", seed=5, lr=0.05, l1=0.5)
    base.update(kw)
    return EPropConfig(**base)


def _data(c, batch=4, steps=25, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, c.num_inputs)) < 0.2).astype(np.uint8), rng.integers(0, c.num_outputs, batch)


def _group(proj, var):
    """Adam's moments are the optimiser update's own per-synapse variables."""
    return f"{proj}_adam" if var in ("m", "v") else proj


def _synapses(net, proj):
    pre, post = net.sim.connectivity(proj)
    vals = {v: net.sim.get(_group(proj, v), v) for v in ("w", "sign", "m", "v", "grad", "theta")}
    return {(int(i), int(j)): {v: float(a[s]) for v, a in vals.items()} for s, (i, j) in enumerate(zip(pre, post))}


def test_active_synapse_count_is_conserved_and_signs_never_change():
    c = _config()
    net = EPropNetwork(c)
    counts0 = net.synapse_counts()
    signs = {p: {k: s["sign"] for k, s in _synapses(net, p).items()} for p in net.projections}
    total_removed = 0
    for step in range(8):
        x, y = _data(c, seed=step)
        r = net.train_batch(x, y)
        assert net.synapse_counts() == counts0
        for p in net.projections:
            st = r["rewiring"][p]
            assert st["failed"] == 0 and st["added"] == st["removed"]
            total_removed += st["removed"]
            for key, s in _synapses(net, p).items():
                assert s["w"] * s["sign"] >= 0.0, "an active synapse has the wrong sign"
                # synapses grown this batch have zero Adam state (with L1 every old one has v > 0); a
                # pair can be pruned and regrown at once with a new random sign
                if key in signs[p] and s["v"] > 0.0:
                    assert s["sign"] == signs[p][key], "a surviving synapse changed sign"
            signs[p] = {k: s["sign"] for k, s in _synapses(net, p).items()}
            # rows stay duplicate-free
            pre, post = net.sim.connectivity(p)
            assert len(set(zip(pre.tolist(), post.tolist()))) == pre.size
    assert total_removed > 0, "a strong L1 and a large learning rate must make some weights cross zero"


def test_without_sign_flips_connectivity_is_untouched():
    c = _config(l1=0.0)
    net = EPropNetwork(c)
    before = {p: net.sim.ragged(p, "w") for p in net.projections}
    r = net.rewire()   # weights all agree with their signs: nothing to prune, nothing to add
    for p in net.projections:
        assert r[p] == {"removed": 0, "added": 0, "failed": 0}
        after = net.sim.ragged(p, "w")
        for k in ("ind", "row_length", "w"):
            np.testing.assert_array_equal(after[k], before[p][k])


def test_new_synapses_and_their_state_start_at_zero():
    c = _config()
    net = EPropNetwork(c)
    p = "hid_hid"
    w = net.sim.get(p, "w")
    flip = np.zeros(w.size, bool)
    flip[::3] = True
    net.sim.set(p, "w", np.where(flip, -w, w))              # these crossed zero
    for v in ("m", "v", "grad", "theta"):
        net.sim.set(_group(p, v), v, 0.7)                    # optimiser state that must not leak
    before = _synapses(net, p)
    r = net.rewire()
    assert r[p]["removed"] == int(flip.sum()) and r[p]["added"] == r[p]["removed"]
    after = _synapses(net, p)
    pruned = {k for k, s in before.items() if s["w"] * s["sign"] < 0}
    kept = (set(before) - pruned) & set(after)
    assert kept == set(before) - pruned
    new = set(after) - kept          # a pruned pair may be regrown at once: it is new too
    assert len(new) >= 1
    for key in new:
        s = after[key]
        assert s["w"] == 0.0 and s["m"] == 0.0 and s["v"] == 0.0 and s["grad"] == 0.0 and s["theta"] == 0.0
        assert s["sign"] in (-1.0, 1.0)
    for key in kept:                                         # survivors carry their own state
        assert after[key] == before[key]


def test_temperature_noise_is_reproducible_and_keeps_count():
    nets = [EPropNetwork(_config(temperature=1e-3, l1=0.01)) for _ in range(2)]
    x, y = _data(nets[0].config)
    for net in nets:
        for _ in range(3):
            net.train_batch(x, y)
    a, b = (n.sim.ragged("in_hid", "w") for n in nets)
    np.testing.assert_array_equal(a["w"], b["w"])
    assert nets[0].synapse_counts() == EPropNetwork(_config()).synapse_counts()


def test_soft_deep_r_keeps_connectivity_and_clips_theta():
    c = _config(rewiring="soft-deep-r", temperature=1e-3, theta_min=-0.05)
    net = EPropNetwork(c)
    pre0 = net.sim.connectivity("in_hid")
    x, y = _data(c)
    for _ in range(4):
        net.train_batch(x, y)
    pre1 = net.sim.connectivity("in_hid")
    np.testing.assert_array_equal(pre0[1], pre1[1])
    theta, sign, w = (net.sim.get("in_hid", v) for v in ("theta", "sign", "w"))
    assert theta.min() >= -0.05 - 1e-7
    np.testing.assert_allclose(w, sign * np.maximum(theta, 0.0), rtol=1e-6)


def test_bad_configuration_names_the_parameter():
    with pytest.raises(TrainingError, match="input_density"):
        _config(input_density=0.0)
    with pytest.raises(TrainingError, match="rewiring"):
        _config(rewiring="set")
    net = EPropNetwork(_config())
    with pytest.raises(TrainingError, match="x must be"):
        net.train_batch(np.zeros((2, 5, 3), np.uint8), np.zeros(2, int))
    with pytest.raises(TrainingError, match="labels must lie"):
        net.train_batch(np.zeros((2, 5, 20), np.uint8), np.array([0, 7]))


@pytest.mark.parametrize("init_fan_in", ["connected", "all"])
def test_initial_weight_scale_follows_the_chosen_fan_in(init_fan_in):
    # 400 inputs at density 0.05 (20 connected per neuron), 300 hidden: ~6,000 input synapses, enough to
    # tell a standard deviation of 1/sqrt(20) from 1/sqrt(400) to a few per cent.
    c = _config(num_inputs=400, num_hidden=300, input_density=0.05, recurrent_density=0.05,
                init_fan_in=init_fan_in)
    net = EPropNetwork(c)
    for proj, possible in (("in_hid", 400), ("hid_hid", 299)):
        w = net.sim.get(proj, "w")
        fan_in = possible if init_fan_in == "all" else 0.05 * possible
        assert np.std(w) == pytest.approx(1.0 / np.sqrt(fan_in), rel=0.06)
        assert abs(np.mean(w)) < 4.0 / np.sqrt(fan_in * w.size)


def test_init_fan_in_must_be_a_known_choice():
    with pytest.raises(TrainingError, match="init_fan_in must be one of"):
        _config(init_fan_in="dense")
