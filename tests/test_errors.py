"""Bad input gets a clear error naming what is wrong."""
from __future__ import annotations

import numpy as np
import pytest

import plastix as px


def _small():
    net = px.Network(dt=1.0, seed=1)
    a = net.add_population("a", 10, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(3))
    return net


def test_bad_sizes_and_names():
    net = px.Network()
    with pytest.raises(px.NetworkError, match="size must be a positive integer"):
        net.add_population("a", -5, px.neurons.lif())
    with pytest.raises(px.NetworkError, match="size must be a positive integer"):
        net.add_population("a", 0, px.neurons.lif())
    net.add_population("a", 5, px.neurons.lif())
    with pytest.raises(px.NetworkError, match="already used"):
        net.add_population("a", 5, px.neurons.lif())
    with pytest.raises(px.NetworkError, match="dt must be a positive"):
        px.Network(dt=-1.0)
    with pytest.raises(px.NetworkError, match="precision must be one of"):
        px.Network(precision="float16")


def test_unknown_params_and_vars():
    net = px.Network()
    with pytest.raises(px.NetworkError, match=r"unknown params \['tau'\].*known"):
        net.add_population("a", 5, px.neurons.lif(), params={"tau": 3.0})
    with pytest.raises(px.NetworkError, match=r"unknown variables \['u'\]"):
        net.add_population("a", 5, px.neurons.lif(), init={"u": 3.0})
    a = net.add_population("a", 5, px.neurons.lif())
    with pytest.raises(px.NetworkError, match=r"unknown variables \['weight'\]"):
        net.add_projection("aa", a, a, connectivity=px.connect.AllToAll(), init={"weight": 1.0})
    with pytest.raises(px.NetworkError, match="delay must be an integer"):
        net.add_projection("aa", a, a, connectivity=px.connect.AllToAll(), delay=-1)
    sim = px.Simulation(_small(), backend="cpu")
    with pytest.raises(px.StateError, match=r"population 'a' has no variable 'vv'; known"):
        sim.get("a", "vv")
    with pytest.raises(px.StateError, match="unknown population, projection, connectivity or custom update .b."):
        sim.set("b", "v", 1.0)
    with pytest.raises(px.StateError, match="has no param 'tau'"):
        sim.set_param("a", "tau", 1.0)


def test_wrong_shapes_and_nan_on_set():
    sim = px.Simulation(_small(), backend="cpu")
    with pytest.raises(px.StateError, match=r"a.v: expected shape \(10,\), got \(3,\)"):
        sim.set("a", "v", np.zeros(3))
    with pytest.raises(px.StateError, match=r"aa.w: expected shape \(30,\)"):
        sim.set("aa", "w", np.zeros((10, 3)))
    with pytest.raises(px.StateError, match="finite"):
        sim.set("a", "v", np.full(10, np.nan))
    net = px.Network()
    with pytest.raises(px.StateError, match=r"expected a scalar, an initialiser or an array of shape \(4,\)"):
        net.add_population("a", 4, px.neurons.lif(), init={"v": np.zeros(5)})
        px.Simulation(net, backend="cpu").build()


def test_row_overflow_in_initialiser():
    net = px.Network()
    a = net.add_population("a", 50, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(10), row_stride=4)
    with pytest.raises((px.NetworkError, ValueError), match="row_stride"):
        px.Simulation(net, backend="cpu").build()
    net = px.Network()
    a = net.add_population("a", 5, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FromArrays([0, 0, 0], [1, 2, 3]), row_stride=2)
    with pytest.raises(px.NetworkError, match="projection 'aa': row_stride is 2 but FromArrays has rows of 3"):
        px.Simulation(net, backend="cpu").build()
    net = px.Network()  # a random rule overflowing a too-small explicit stride
    a = net.add_population("a", 50, px.neurons.lif())
    net.add_projection("aa", a, a, connectivity=px.connect.FixedProbability(0.9), row_stride=30)
    with pytest.raises(px.NetworkError, match=r"row \d+ of projection 'aa' needs \d+ synapses but row_stride is 30"):
        px.Simulation(net, backend="cpu").build()


def _blowup_sim(n, p):
    n.v = n.v * p.gain


def test_nan_in_state_after_run_is_reported():
    lif = px.neurons.lif()
    model = px.NeuronModel(name="unstable", params={"gain": 1e30}, vars={"v": 1.0}, sim=_blowup_sim)
    net = px.Network()
    net.add_population("bad", 3, model)
    sim = px.Simulation(net, backend="cpu")
    with pytest.raises(px.StateError, match="population 'bad': variable 'v' is not finite at neuron 0"):
        sim.run(10)
    assert lif.name == "lif_to_reset"


def _writes_post(s, post):
    post.y = 1.0


def _unknown_name(n, p):
    n.v = undefined_thing  # noqa: F821


def _unknown_field(n):
    n.voltage = 1.0


def test_model_code_errors_name_the_problem():
    with pytest.raises(px.ModelError, match=r"post.y is read-only"):
        wu = px.WeightUpdateModel(name="bad", vars={"w": 0.0}, post_vars={"y": 0.0}, on_pre=_writes_post)
        net = px.Network()
        a = net.add_population("a", 3, px.neurons.lif())
        net.add_projection("aa", a, a, connectivity=px.connect.AllToAll(), weight_update=wu)
        px.Simulation(net, backend="cpu").build()
    for fn, msg in ((_unknown_name, "unknown name 'undefined_thing'"), (_unknown_field, r"unknown name n.voltage")):
        net = px.Network()
        net.add_population("a", 3, px.NeuronModel(name="m", vars={"v": 0.0}, sim=fn))
        with pytest.raises(px.ModelError, match=msg):
            px.Simulation(net, backend="cpu").build()
    net = px.Network()
    net.add_population("a", 3, px.NeuronModel(name="m", vars={"v": 0.0}, sim=lambda n: None))
    with pytest.raises(px.ModelError, match="lambda"):
        px.Simulation(net, backend="cpu").build()


def test_recording_and_backend_errors():
    sim = px.Simulation(_small(), backend="cpu")
    with pytest.raises(px.StateError, match="not recorded"):
        sim.spikes("a")
    with pytest.raises(px.StateError, match="has no variable 'x'"):
        sim.record("a", "x")
    net = px.Network()
    net.add_population("li", 3, px.neurons.leaky_integrator())
    with pytest.raises(px.NetworkError, match="does not spike"):
        px.Simulation(net, backend="cpu").record_spikes("li")
    with pytest.raises(px.BackendError, match="backend must be one of"):
        px.Simulation(_small(), backend="tpu")
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        sim.run(-3)
    with pytest.raises(px.StateError, match="expected 10 arrays"):
        net2 = px.Network()
        net2.add_population("s", 10, px.neurons.spike_source_array())
        px.Simulation(net2, backend="cpu").set_spike_times("s", [[1.0]])
