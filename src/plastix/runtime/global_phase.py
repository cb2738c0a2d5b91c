"""Running a connectivity update's global phase in ``global_mode="python"``: the user's plain function
called on numpy views of the host state (``rows.<name>`` arrays written in place, ``glob.<name>``
scalars, ``p.<name>`` params, ``rng.uniform(n)`` / ``rng.normal(n)``)."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np

class _Rows:
    """``rows`` of a Python-mode global phase: attribute reads give the arrays, assignments write in place."""

    def __init__(self, arrays: dict, extra: dict):
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_extra", extra)

    def __getattr__(self, name):
        if name in self._extra:
            return self._extra[name]
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(f"rows has no {name!r}; known: {sorted(self._arrays) + sorted(self._extra)}") from None

    def __setattr__(self, name, value):
        if name not in self._arrays:
            raise AttributeError(f"rows.{name} cannot be assigned (row vars: {sorted(self._arrays)})")
        self._arrays[name][...] = value


class _ArrayRng:
    """``rng`` of a Python-mode global phase: the same ``uniform(n)`` / ``normal(n)`` as compiled code,
    from a numpy Generator seeded by (seed, step, stream)."""

    def __init__(self, gen: np.random.Generator):
        self._gen = gen

    def uniform(self, n):
        return self._gen.random(int(n))

    def normal(self, n):
        return self._gen.standard_normal(int(n))


def run_python_global(fn, state: dict, keys, seed: int, step: int, stream: int, dt: float) -> list[str]:
    """Run a Python-mode global phase on the host state (``keys``: the update's ``GlobalKeys``); returns
    the keys it may have written."""
    rows = _Rows({n: state[k] for n, k in keys.rows.items()},
                 {"length": state[keys.rowlen].copy(), "count": state[keys.ind].shape[0],
                  "capacity": state[keys.ind].shape[1], "parts": keys.parts})
    glob = SimpleNamespace(**{n: state[k][0].item() for n, k in keys.glob.items()})
    p = SimpleNamespace(**{n: float(state[k]) for n, k in keys.params.items()})
    rng = _ArrayRng(np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, int(step), stream]))
    avail = {"glob": glob, "rows": rows, "p": p, "rng": rng, "dt": dt, "t": step * dt}
    params = list(inspect.signature(fn).parameters)
    fn(**{a: avail[a] for a in params})
    for n, k in keys.glob.items():
        state[k][0] = getattr(glob, n)
    return list(keys.rows.values()) + list(keys.glob.values())

