"""Code generation from Python phase functions."""
from __future__ import annotations

import numpy as np
import pytest

from plastix.codegen.transform import Field, transform
from plastix.errors import ModelError

F = {"n": {"v": Field("scalar"), "k": Field("int")}, "p": {"tau": Field("scalar")}, "g": {}}

SCALE = 3


def _sim(n, p, dt, rng):
    if rng.uniform() < 0.5:
        n.v = n.v + 1 - p.tau * rng.normal() * SCALE
    n.k += 1


def _thr(n, p):
    return n.v > p.tau


def test_rewrites_namespaces_literals_and_rng():
    sf = transform(_sim, "sim", "f", "test", F)
    src = sf.source
    assert "n_v = n_v + _T(1)" in src  # int literal next to a float var is cast
    assert "_T(0.5)" in src and "n_k += 1" in src  # int var keeps int arithmetic
    assert src.count("_rand_") == 2 and src.count("_rc += 1") == 2  # each draw its own counter
    assert src.index("_rand_uniform") < src.index("if ")  # hoisted before the condition
    assert "* _T(3)" in src  # module constant inlined (and cast: the other side is float)
    assert sf.uses_rng and ("n", "v") in sf.writes and ("n", "k") in sf.writes
    # the names a generated module gives the function: its float type, numpy, the draws
    ns = {"_T": float, "np": np, "_rand_uniform": lambda *a: 0.1, "_rand_normal": lambda *a: 1.0}
    exec(src, ns)
    assert ns["f"](2, 1.0, 0.5, 0, 0, 0, 0) == (3, 1.0 + 1 - 0.5 * 1.0 * 3)  # (n_k, n_v)


def test_return_value_phase():
    sf = transform(_thr, "threshold", "thr", "test", F)
    ns = {"_T": float}
    exec(sf.source, ns)
    assert ns["thr"](2.0, 1.0) == (True,) and sf.outputs == (("", "_return"),)


def _bad_write(n, p):
    p.tau = 1.0


def _bad_arg(n, q):
    pass


def _rng_in_while(n, rng):
    while rng.uniform() < 0.5:
        n.v += 1.0


def test_errors():
    with pytest.raises(ModelError, match="p.tau is read-only"):
        transform(_bad_write, "sim", "f", "m", F)
    with pytest.raises(ModelError, match="unknown argument 'q'"):
        transform(_bad_arg, "sim", "f", "m", F)
    with pytest.raises(ModelError, match="while condition"):
        transform(_rng_in_while, "sim", "f", "m", F)
