"""codegen.merge: one compiled function per distinct piece of generated code."""
import ast
import gc

import numba
import numpy as np

from plastix.codegen.merge import merge_identical

SOURCE = '''
from numba import njit

@njit(cache=False)
def q0_on_pre(p_w, s_w):
    return s_w * p_w

@njit(cache=False)
def q1_on_pre(p_w, s_w):
    return s_w * p_w

@njit(cache=False)
def q2_on_pre(p_w, s_w):
    return s_w * p_w + 1.0

@njit(cache=False)
def q0_propagate(q0_w, q0_out, q0_p):
    for k in range(q0_w.shape[0]):
        q0_out[k] += q0_on_pre(q0_p, q0_w[k])

@njit(cache=False)
def q1_propagate(q1_w, q1_out, q1_p):
    for k in range(q1_w.shape[0]):
        q1_out[k] += q1_on_pre(q1_p, q1_w[k])

@njit(cache=False)
def q2_propagate(q2_w, q2_out, q2_p):
    for k in range(q2_w.shape[0]):
        q2_out[k] += q2_on_pre(q2_p, q2_w[k])

@njit(cache=False, inline="always")
def q3_on_pre(p_w, s_w):
    return s_w * p_w

def helper(a):
    return a

def helper2(a):
    return a
'''


def _load(source):
    ns = {}
    exec(compile(source, "<generated>", "exec"), ns)
    return ns


def test_same_code_is_bound_to_the_first_definition():
    out = merge_identical(SOURCE)
    ns = _load(out)
    assert ns["q1_on_pre"] is ns["q0_on_pre"]
    assert ns["q1_propagate"] is ns["q0_propagate"]   # its callee merged too: the same code
    assert ns["q2_on_pre"] is not ns["q0_on_pre"]     # a different body
    assert ns["q2_propagate"] is not ns["q0_propagate"]  # the same text, but it calls different code
    assert ns["q3_on_pre"] is not ns["q0_on_pre"]     # another decorator
    assert ns["helper2"] is not ns["helper"]          # undecorated functions are left alone
    defs = [n.name for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)]
    assert "q1_on_pre" not in defs and "q1_propagate" not in defs


def test_merged_module_computes_what_the_original_does():
    a, b = _load(SOURCE), _load(merge_identical(SOURCE))
    for name in ("q0_propagate", "q1_propagate", "q2_propagate"):
        w = np.arange(5.0)
        out_a, out_b = np.zeros(5), np.zeros(5)
        a[name](w, out_a, 3.0)
        b[name](w, out_b, 3.0)
        np.testing.assert_array_equal(out_a, out_b)
    # another argument type: its own specialisation of the one merged function, same results
    out = np.zeros(3, np.float32)
    b["q1_propagate"](np.ones(3, np.float32), out, np.float32(2.0))
    np.testing.assert_array_equal(out, [2.0, 2.0, 2.0])


def test_source_without_duplicates_comes_back_unchanged():
    src = SOURCE.split("@njit(cache=False)\ndef q1_on_pre")[0]
    assert merge_identical(src) == src


def test_a_simulation_with_two_identical_projections_compiles_their_kernels_once():
    import plastix
    from plastix import Network, Simulation

    net = Network(dt=1.0, seed=3)
    src = net.add_population("src", 20, plastix.neurons.poisson(), init={"rate": 200.0})
    post = net.add_population("post", 10, plastix.neurons.lif())
    for name in ("a", "b"):
        net.add_projection(name, src, post, connectivity=plastix.connect.FixedProbability(0.5), init={"w": 0.5})
    sim = Simulation(net, backend="cpu", parallel=False)
    sim.build()
    mod = sim.backend.module
    assert mod.q1_propagate is mod.q0_propagate
    sim.run(20)
    assert len(mod.q0_propagate.signatures) == 1


def test_garbage_collection_thresholds_are_raised_only_while_compiling():
    from numba.core import event

    import plastix  # noqa: F401  registers the listener
    from plastix.compile_gc import COMPILING_THRESHOLDS

    before = gc.get_threshold()
    seen = []

    class Probe(event.Listener):  # numba:compile starts inside the compiler lock
        def on_start(self, ev):
            seen.append(gc.get_threshold())

        def on_end(self, ev):
            pass

    @numba.njit
    def f(x):
        return x + 1

    with event.install_listener("numba:compile", Probe()):
        f(1)
    assert seen and all(t[0] >= COMPILING_THRESHOLDS[0] for t in seen)
    assert gc.get_threshold() == before
