"""CUDA backend against the serial CPU backend on tiny networks.

Runs under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``, which must be set before numba.cuda is first
imported: tests/conftest.py sets it unless ``PLASTIX_TEST_REAL_CUDA=1``) or on a real GPU; skipped
otherwise.  Blocks are shrunk to 8 threads and the spike axis to 2 blocks, so tiny inputs still take the
multi-block and strided paths.

Under the simulator the float arithmetic is plain numpy, so spikes must match the CPU exactly; state is
compared to ``rtol=1e-5`` (plus a small ``atol``) because atomics add a target's inputs in another order.
(On a real GPU, NVVM's FMA contraction can move float32 results by an ulp; with these tiny networks and
short runs a spike flip is still very unlikely.)
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("numba.cuda")
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def _gpu_available() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


if not SIMULATOR and not _gpu_available():
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (numba-cuda simulator) or a CUDA GPU", allow_module_level=True)

import plastix as px  # noqa: E402
from plastix.kernels import launch  # noqa: E402
from plastix.errors import CapacityError  # noqa: E402

RTOL = 1e-5
ATOL = 2e-5  # float32 sums of O(1) terms in another order, near cancellation
LIF = dict(v_rest=0.0, v_reset=0.0, v_thresh=20.0)


@pytest.fixture(autouse=True, scope="module")
def _small_blocks():
    old = launch.THREADS_PER_BLOCK, launch.MAX_SPIKE_BLOCKS
    launch.THREADS_PER_BLOCK, launch.MAX_SPIKE_BLOCKS = 8, 2
    # the simulator runs each block's threads as Python threads polled by a busy loop: a short GIL switch
    # interval makes it several times faster
    old_switch = sys.getswitchinterval()
    if SIMULATOR:
        sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(old_switch)
    launch.THREADS_PER_BLOCK, launch.MAX_SPIKE_BLOCKS = old


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------
def make(net, backend):
    return px.Simulation(net, backend="cpu", parallel=False) if backend == "cpu" else px.Simulation(net, backend="cuda")


def spiking(net):
    return [n for n, p in net.populations.items() if p.model.spikes]


def run_pair(build, steps, *, setup=None, record=(), every=1, chunks=None):
    """Build the same network for both backends, run ``steps`` (split into ``chunks`` if given)."""
    sims = {}
    for backend in ("cpu", "cuda"):
        net = build()
        sim = make(net, backend)
        for pop in spiking(net):
            sim.record_spikes(pop)
        for pop, var in record:
            sim.record(pop, var, every=every)
        if setup is not None:
            setup(sim)
        for n in chunks or [steps]:
            sim.run(n)
        sims[backend] = sim
    assert sims["cuda"].backend.name == "cuda"
    return sims["cpu"], sims["cuda"]


def assert_same(cpu, gpu, min_spikes=None, record=()):
    """Exact spikes, close state, equal recordings."""
    net = cpu.network
    assert cpu.step == gpu.step
    for pop in spiking(net):
        tc, ic = cpu.spikes(pop)
        tg, ig = gpu.spikes(pop)
        np.testing.assert_array_equal(tg, tc, err_msg=f"spike times of {pop}")
        np.testing.assert_array_equal(ig, ic, err_msg=f"spiking neurons of {pop}")
        assert gpu.spike_count(pop) == cpu.spike_count(pop) == len(tc)
        if min_spikes and pop in min_spikes:
            assert len(tc) >= min_spikes[pop], f"{pop}: too few spikes ({len(tc)}) for a meaningful test"
    for name, pop in net.populations.items():
        for v in pop.model.vars:
            np.testing.assert_allclose(gpu.get(name, v), cpu.get(name, v), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}.{v}")
    for name, q in net.projections.items():
        wu, psm = q.weight_update, q.postsynaptic
        for v in list(wu.vars) + list(wu.pre_vars) + list(wu.post_vars) + list(psm.vars):
            np.testing.assert_allclose(gpu.get(name, v), cpu.get(name, v), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}.{v}")
    for pop, var in record:
        rc, rg = cpu.recorded(pop, var), gpu.recorded(pop, var)
        assert rc.shape == rg.shape and rc.shape[0] > 0
        np.testing.assert_allclose(rg, rc, rtol=RTOL, atol=ATOL, err_msg=f"recorded {pop}.{var}")
    assert_same_ring(cpu, gpu)


def assert_same_ring(cpu, gpu):
    """The spike ring holds the same spikes per slot (in any order); the GPU has already cleared the
    count of the slot the next step writes, which the CPU overwrites instead."""
    for pp in cpu.plan.pops:
        if not pp.pop.model.spikes:
            continue
        names = [f"{pp.prefix}_spk", f"{pp.prefix}_spkcnt"]
        cpu.backend.pull(cpu.state, names)
        gpu.backend.pull(gpu.state, names)
        cnt_c, cnt_g = cpu.state[names[1]], gpu.state[names[1]]
        nxt = cpu.step % cnt_c.shape[0]
        assert cnt_g[nxt] == 0
        for s in range(cnt_c.shape[0]):
            if s == nxt:
                continue
            assert cnt_g[s] == cnt_c[s], f"{pp.pop.name}: spike count of slot {s}"
            c = cnt_c[s]
            np.testing.assert_array_equal(np.sort(gpu.state[names[0]][s, :c]), cpu.state[names[0]][s, :c])


def _leaky_dynamics(s, p, rng):
    s.w = s.w * p.k + p.noise * rng.normal()
    add_to_post(p.g * s.w)  # noqa: F821  (provided by code generation)


def _static_on_pre(s):
    add_to_post(s.w)  # noqa: F821


def leaky_weights():
    """A weight-update model with per-synapse dynamics that draws random numbers and adds to the target."""
    return px.WeightUpdateModel(name="leaky_w", params={"k": 0.95, "noise": 0.05, "g": 0.2}, vars={"w": 0.0},
                                on_pre=_static_on_pre, dynamics=_leaky_dynamics)


# --------------------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------------------
def lif_net(seed=3, n=30, delay=2):
    net = px.Network(dt=1.0, seed=seed)
    a = net.add_population("a", n, px.neurons.lif(**LIF), init={"v": 0.0, "i_offset": px.init.Uniform(1.0, 2.0)})
    net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(8), init={"w": px.init.Normal(0.0, 0.5)},
                       delay=delay)
    return net


def psm_net():
    net = px.Network(dt=0.5, seed=7)
    src = net.add_population("src", 18, px.neurons.poisson(), init={"rate": 150.0})
    cur = net.add_population("cur", 18, px.neurons.lif(**LIF), init={"v": px.init.Uniform(0.0, 15.0),
                                                                     "i_offset": 0.8})
    cnd = net.add_population("cnd", 18, px.neurons.conductance_lif(C=1.0), init={"v": px.init.Normal(-60.0, 4.0)})
    net.add_projection("s_cur", src, cur, connectivity=px.connect.FixedProbability(0.4),
                       postsynaptic=px.postsynaptic.exp_curr(tau=5.0), init={"w": px.init.Uniform(0.5, 1.5)})
    net.add_projection("s_cnd", src, cnd, connectivity=px.connect.FixedProbability(0.4),
                       postsynaptic=px.postsynaptic.exp_cond(tau=5.0, e_rev=0.0), init={"w": px.init.Uniform(0.0, 0.2)})
    net.add_projection("cnd_cur", cnd, cur, connectivity=px.connect.FixedNumberPost(5), delay=1,
                       postsynaptic=px.postsynaptic.exp_cond(tau=3.0, e_rev=-10.0), init={"w": 0.01})
    return net


def alif_readout_net():
    net = px.Network(dt=1.0, seed=5)
    inp = net.add_population("in", 18, px.neurons.poisson(), init={"rate": 120.0})
    hid = net.add_population("h", 22, px.neurons.alif(tau_refrac=2.0))
    out = net.add_population("out", 5, px.neurons.leaky_integrator(), init={"bias": px.init.Normal(0, 0.01)})
    net.add_projection("ih", inp, hid, connectivity=px.connect.FixedProbability(0.5),
                       init={"w": px.init.Uniform(0, 0.6)})
    net.add_projection("hh", hid, hid, connectivity=px.connect.FixedProbability(0.3),
                       init={"w": px.init.Normal(0, 0.3)})
    net.add_projection("ho", hid, out, connectivity=px.connect.Dense(), init={"w": px.init.Normal(0, 0.5)},
                       postsynaptic=px.postsynaptic.exp_curr(tau=10.0))
    return net


def stdp_net():
    net = px.Network(dt=1.0, seed=9)
    src = net.add_population("src", 22, px.neurons.poisson(), init={"rate": 80.0})
    tgt = net.add_population("tgt", 18, px.neurons.lif(**LIF), init={"v": px.init.Uniform(0.0, 19.0),
                                                                      "i_offset": 0.5})
    stdp = px.weight_update.stdp_additive(tau_plus=20.0, tau_minus=30.0, a_plus=0.05, a_minus=0.04, w_max=4.0)
    net.add_projection("ff", src, tgt, connectivity=px.connect.FixedProbability(0.4), weight_update=stdp,
                       init={"w": px.init.Uniform(1.0, 3.0)})
    net.add_projection("rec", tgt, tgt, connectivity=px.connect.FixedNumberPost(6), weight_update=stdp,
                       init={"w": px.init.Uniform(0.0, 2.0)}, delay=1)
    net.add_projection("dense", src, tgt, connectivity=px.connect.Dense(), weight_update=stdp,
                       init={"w": px.init.Uniform(0.0, 0.3)}, delay=3)
    return net


# --------------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------------
def test_lif_static_synapses_delay_2():
    cpu, gpu = run_pair(lif_net, 40, record=[("a", "v")])
    assert_same(cpu, gpu, min_spikes={"a": 25}, record=[("a", "v")])


def test_exp_curr_and_exp_cond():
    cpu, gpu = run_pair(psm_net, 40)
    assert_same(cpu, gpu, min_spikes={"src": 40, "cur": 20, "cnd": 30})


def test_alif_and_dense_leaky_integrator_readout():
    rec = [("out", "v"), ("h", "a")]
    cpu, gpu = run_pair(alif_readout_net, 30, record=rec, every=4)
    assert_same(cpu, gpu, min_spikes={"in": 40, "h": 100}, record=rec)
    assert gpu.recorded("out", "v").shape == (8, 5)


def test_spike_source_array_input():
    times = [[0.0, 3.0, 3.2, 7.0], [], [1.0], [2.0, 2.4, 2.6, 9.9], [5.0], [0.0, 1.0, 2.0, 3.0, 4.0]]
    times += [[float(i)] for i in range(10)]

    def build():
        net = px.Network(dt=1.0, seed=1)
        src = net.add_population("src", len(times), px.neurons.spike_source_array())
        tgt = net.add_population("tgt", 12, px.neurons.lif(**LIF))
        net.add_projection("st", src, tgt, connectivity=px.connect.FixedProbability(0.5), init={"w": 30.0}, delay=1)
        return net

    cpu, gpu = run_pair(build, 14, setup=lambda s: s.set_spike_times("src", times), chunks=[6, 8])
    assert_same(cpu, gpu, min_spikes={"src": 20, "tgt": 5})
    # several times inside one step make one spike at the step where t - dt/2 <= time < t + dt/2
    expected = sorted({(int(np.floor(x + 0.5)), i) for i, ts in enumerate(times) for x in ts})
    t, i = gpu.spikes("src")
    assert sorted(zip(np.rint(t).astype(int).tolist(), i.tolist())) == expected


def test_stdp_sparse_recurrent_and_dense():
    cpu, gpu = run_pair(stdp_net, 40)
    assert_same(cpu, gpu, min_spikes={"src": 40, "tgt": 30})
    w0 = px.Simulation(stdp_net(), backend="cpu", parallel=False).build().get("ff", "w")
    assert not np.allclose(gpu.get("ff", "w"), w0), "STDP did not change any weight"


def test_poisson_same_stream_as_cpu():
    def build():
        net = px.Network(dt=1.0, seed=21)
        net.add_population("p", 20, px.neurons.poisson(), init={"rate": np.linspace(50.0, 400.0, 20)})
        return net

    cpu, gpu = run_pair(build, 40, chunks=[15, 25])
    assert_same(cpu, gpu)
    n = len(gpu.spikes("p")[0])
    expected = np.linspace(50.0, 400.0, 20).sum() * 40 * 1e-3
    assert abs(n - expected) < 4 * np.sqrt(expected)


def test_synapse_dynamics_with_random_draws_and_add_to_post():
    def build():
        net = px.Network(dt=1.0, seed=4)
        a = net.add_population("a", 12, px.neurons.poisson(), init={"rate": 100.0})
        b = net.add_population("b", 10, px.neurons.lif(**LIF), init={"v": px.init.Uniform(0.0, 10.0)})
        net.add_projection("sparse", a, b, connectivity=px.connect.FixedProbability(0.5), weight_update=leaky_weights(),
                           init={"w": px.init.Uniform(0.0, 2.0)})
        net.add_projection("dense", a, b, connectivity=px.connect.Dense(), weight_update=leaky_weights(),
                           init={"w": px.init.Uniform(0.0, 1.0)}, postsynaptic=px.postsynaptic.exp_curr(tau=4.0))
        return net

    cpu, gpu = run_pair(build, 30)
    assert_same(cpu, gpu, min_spikes={"a": 20, "b": 5})


def test_split_runs_reset_and_state_access():
    whole = make(lif_net(), "cuda")
    whole.record_spikes("a")
    whole.run(40)
    parts = make(lif_net(), "cuda")
    parts.record_spikes("a")
    seen = []
    parts.run(40, callback=lambda s: seen.append(s.step), every=15)
    assert seen == [15, 30, 40]
    for a, b in zip(whole.spikes("a"), parts.spikes("a")):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(parts.get("a", "v"), whole.get("a", "v"), rtol=RTOL, atol=ATOL)
    # reset returns to the initial state on the device too
    first = whole.spikes("a")
    whole.reset()
    whole.run(40)
    for a, b in zip(first, whole.spikes("a")):
        np.testing.assert_array_equal(a, b)


def test_rebuild_for_new_recording_keeps_device_state():
    def go(backend):
        sim = px.Simulation(lif_net(), backend="cpu", parallel=False, check_finite=False) if backend == "cpu" \
            else px.Simulation(lif_net(), backend="cuda", check_finite=False)
        sim.record_spikes("a")
        sim.run(20)
        sim.record("a", "v")  # recompiles; the host state was never pulled
        sim.run(20)
        return sim

    assert_same(go("cpu"), go("cuda"), min_spikes={"a": 20}, record=[("a", "v")])


def test_set_and_set_param_between_runs():
    def setup_and_run(sim):
        sim.record_spikes("a")
        sim.run(20)
        sim.set("a", "i_offset", np.linspace(0.0, 3.0, 30))
        sim.set("aa", "w", 0.25)
        sim.set_param("a", "tau_m", 10.0)
        sim.run(20)
        return sim

    cpu = setup_and_run(make(lif_net(), "cpu"))
    gpu = setup_and_run(make(lif_net(), "cuda"))
    assert_same(cpu, gpu, min_spikes={"a": 20})


def test_structural_change_with_set_connectivity():
    """Rewiring between runs (new rows and column view) reaches the device kernels."""
    def setup_and_run(sim):
        for pop in ("src", "tgt"):
            sim.record_spikes(pop)
        sim.run(15)
        n_pre, n_post = sim.network.populations["src"].size, sim.network.populations["tgt"].size
        pairs = [(i, j) for i in range(6) for j in (0, 1)]  # crowd targets 0 and 1
        pairs += [(i, (5 * i + 3 * k) % n_post) for i in range(6, n_pre) for k in range(4)]
        pre, post = np.array(pairs).T
        sim.set_connectivity("ff", pre, post, w=np.linspace(0.5, 3.0, len(pairs)))
        sim.run(15)
        return sim

    cpu = setup_and_run(make(stdp_net(), "cpu"))
    gpu = setup_and_run(make(stdp_net(), "cuda"))
    assert_same(cpu, gpu, min_spikes={"tgt": 20})


def test_spike_recording_overflow_is_detected():
    sim = make(lif_net(), "cuda")
    sim.record_spikes("a", max_spikes=3)
    with pytest.raises(CapacityError, match="overflowed"):
        sim.run(40)


@pytest.mark.parametrize("first,second", [("cpu", "cuda"), ("cuda", "cpu")])
def test_save_load_across_backends(tmp_path, first, second):
    ref = make(stdp_net(), "cpu")
    ref.record_spikes("tgt")
    ref.run(20)
    ref_t = ref.spikes("tgt")
    path = tmp_path / "state.npz"
    a = make(stdp_net(), first)
    a.run(20)
    a.save(path)
    b = make(stdp_net(), second)
    b.load(path)
    assert b.step == 20
    for sim in (ref, b):
        sim.record_spikes("tgt")
        sim.run(20)
    t, i = b.spikes("tgt")
    np.testing.assert_array_equal(t, ref.spikes("tgt")[0][len(ref_t[0]):])
    np.testing.assert_array_equal(i, ref.spikes("tgt")[1][len(ref_t[0]):])
    assert len(t) > 5
    for v in ("w",):
        np.testing.assert_allclose(b.get("ff", v), ref.get("ff", v), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(b.get("tgt", "v"), ref.get("tgt", "v"), rtol=RTOL, atol=ATOL)


def test_float64_precision():
    def build():
        net = px.Network(dt=1.0, seed=3, precision="float64")
        a = net.add_population("a", 20, px.neurons.lif(**LIF), init={"v": 0.0, "i_offset": px.init.Uniform(1.0, 2.0)})
        net.add_projection("aa", a, a, connectivity=px.connect.FixedNumberPost(5),
                           init={"w": px.init.Normal(0.0, 0.5)})
        return net

    cpu, gpu = run_pair(build, 40)
    assert gpu.get("a", "v").dtype == np.float64
    assert_same(cpu, gpu, min_spikes={"a": 10})


def test_generated_module_launches_without_host_reads():
    sim = make(stdp_net(), "cuda").build()
    src = sim.backend.source
    run_src = src[src.index("def run("):]
    assert "copy_to_host" not in run_src and "synchronize" not in run_src
    for name in ("q0_propagate", "q0_post_learn", "q1_propagate", "q2_post_learn", "p1_neuron_update"):
        assert f"def {name}(" in src
    assert sim.backend.parallel and sim.backend.name == "cuda"
