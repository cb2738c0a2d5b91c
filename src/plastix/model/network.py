"""The network graph: populations of neurons and projections between them.

A :class:`Network` only *describes*; :class:`plastix.Simulation` builds it for a backend and runs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import NetworkError
from .specs import NeuronModel, PostsynapticModel, WeightUpdateModel

PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class Dense:
    """Dense (all-to-all, stored without indices) connectivity: every pre neuron reaches every post
    neuron through its own weight; used for dense baselines and readouts."""


def _check_params(model, given: Mapping[str, float] | None, what: str) -> dict[str, float]:
    given = dict(given or {})
    unknown = set(given) - set(model.params)
    if unknown:
        raise NetworkError(f"{what}: unknown params {sorted(unknown)} for model {model.name!r}; "
                           f"known: {sorted(model.params)}")
    out = dict(model.params)
    for k, v in given.items():
        v = float(v)
        if not np.isfinite(v):
            raise NetworkError(f"{what}: param {k} must be finite, got {v}")
        out[k] = v
    return out


def _check_init(names, given: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = set(given) - set(names)
    if unknown:
        raise NetworkError(f"{what}: unknown variables {sorted(unknown)}; known: {sorted(names)}")
    return given


@dataclass(eq=False)
class Population:
    name: str
    size: int
    model: NeuronModel
    params: dict[str, float]
    init: dict[str, Any]
    index: int

    def __repr__(self):
        return f"Population({self.name!r}, size={self.size}, model={self.model.name!r})"


@dataclass(eq=False)
class Projection:
    name: str
    pre: Population
    post: Population
    weight_update: WeightUpdateModel
    postsynaptic: PostsynapticModel
    connectivity: Any
    wu_params: dict[str, float]
    psm_params: dict[str, float]
    init: dict[str, Any]
    pre_init: dict[str, Any]
    post_init: dict[str, Any]
    psm_init: dict[str, Any]
    delay: int
    row_stride: int | None
    headroom: float
    index: int

    @property
    def dense(self) -> bool:
        return isinstance(self.connectivity, Dense)

    def __repr__(self):
        return f"Projection({self.name!r}, {self.pre.name!r} -> {self.post.name!r}, {self.weight_update.name!r})"


@dataclass(eq=False)
class Network:
    """A spiking network description.

    Parameters
    ----------
    dt : float
        Time step (ms).
    seed : int
        Seeds both host-side initialisation and the counter-based random numbers of the run.
    precision : {"float32", "float64"}
        Floating type of every state variable and parameter.
    """

    dt: float = 1.0
    seed: int = 0
    precision: str = "float32"
    populations: dict[str, Population] = field(default_factory=dict)
    projections: dict[str, Projection] = field(default_factory=dict)

    def __post_init__(self):
        if not (isinstance(self.dt, (int, float)) and self.dt > 0 and np.isfinite(self.dt)):
            raise NetworkError(f"dt must be a positive number of ms, got {self.dt!r}")
        if self.precision not in PRECISIONS:
            raise NetworkError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (isinstance(self.seed, (int, np.integer)) and 0 <= self.seed < 2**64):
            raise NetworkError(f"seed must be an integer in [0, 2**64), got {self.seed!r}")
        self.dt = float(self.dt)

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise NetworkError(f"name must be a non-empty string, got {name!r}")
        if name in self.populations or name in self.projections:
            raise NetworkError(f"name {name!r} is already used by a population or projection")

    def add_population(self, name: str, size: int, model: NeuronModel, *, params: Mapping[str, float] | None = None,
                       init: Mapping[str, Any] | None = None) -> Population:
        """Add ``size`` neurons of ``model``.  ``init`` maps var names to a scalar, an initialiser
        (:mod:`plastix.init`) or an array of length ``size``."""
        self._check_new_name(name)
        if not isinstance(model, NeuronModel):
            raise NetworkError(f"population {name!r}: model must be a NeuronModel, got {type(model).__name__}")
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise NetworkError(f"population {name!r}: size must be a positive integer, got {size!r}")
        pop = Population(name, int(size), model, _check_params(model, params, f"population {name!r}"),
                         _check_init(model.vars, init, f"population {name!r}"), len(self.populations))
        self.populations[name] = pop
        return pop

    def _population(self, p, role: str, proj: str) -> Population:
        if isinstance(p, str):
            p = self.populations.get(p)
        if not isinstance(p, Population) or self.populations.get(p.name) is not p:
            raise NetworkError(f"projection {proj!r}: {role} must be a population of this network, got {p!r}")
        return p

    def add_projection(self, name: str, pre: Population | str, post: Population | str, *,
                       connectivity: Any,
                       weight_update: WeightUpdateModel | None = None,
                       postsynaptic: PostsynapticModel | None = None,
                       wu_params: Mapping[str, float] | None = None,
                       psm_params: Mapping[str, float] | None = None,
                       init: Mapping[str, Any] | None = None,
                       pre_init: Mapping[str, Any] | None = None,
                       post_init: Mapping[str, Any] | None = None,
                       psm_init: Mapping[str, Any] | None = None,
                       delay: int = 0, row_stride: int | None = None, headroom: float = 1.0) -> Projection:
        """Connect ``pre`` to ``post``.

        ``connectivity`` is an initialiser from :mod:`plastix.connect` (or :class:`Dense`).
        ``weight_update`` defaults to static synapses, ``postsynaptic`` to delta current.  ``init`` gives
        per-synapse var values (scalar, initialiser, or one value per synapse in row order).  ``delay`` is
        the axonal delay in whole steps.  ``row_stride`` fixes the ragged row capacity; otherwise it is
        derived from the connectivity, times ``headroom`` (>= 1) for synapses added later.
        """
        from ..model import postsynaptic as psm_mod, weight_update as wu_mod

        self._check_new_name(name)
        pre = self._population(pre, "pre", name)
        post = self._population(post, "post", name)
        wu = weight_update if weight_update is not None else wu_mod.static()
        psm = postsynaptic if postsynaptic is not None else psm_mod.delta()
        if not isinstance(wu, WeightUpdateModel):
            raise NetworkError(f"projection {name!r}: weight_update must be a WeightUpdateModel")
        if not isinstance(psm, PostsynapticModel):
            raise NetworkError(f"projection {name!r}: postsynaptic must be a PostsynapticModel")
        if not post.model.spikes and (wu.on_post or wu.post_spike):
            raise NetworkError(f"projection {name!r}: weight-update model {wu.name!r} needs postsynaptic spikes "
                               f"but {post.name!r} ({post.model.name}) does not spike")
        if not pre.model.spikes:
            raise NetworkError(f"projection {name!r}: presynaptic population {pre.name!r} ({pre.model.name}) "
                               "does not spike")
        if not isinstance(delay, (int, np.integer)) or not 0 <= delay <= 10_000:
            raise NetworkError(f"projection {name!r}: delay must be an integer number of steps in [0, 10000], "
                               f"got {delay!r}")
        if row_stride is not None and (not isinstance(row_stride, (int, np.integer)) or row_stride < 1):
            raise NetworkError(f"projection {name!r}: row_stride must be a positive integer, got {row_stride!r}")
        if not (isinstance(headroom, (int, float)) and headroom >= 1.0):
            raise NetworkError(f"projection {name!r}: headroom must be >= 1.0, got {headroom!r}")
        if not (isinstance(connectivity, Dense) or hasattr(connectivity, "build")):
            raise NetworkError(f"projection {name!r}: connectivity must be an initialiser from plastix.connect, "
                               f"got {connectivity!r}")
        what = f"projection {name!r}"
        proj = Projection(
            name, pre, post, wu, psm, connectivity,
            _check_params(wu, wu_params, what), _check_params(psm, psm_params, what),
            _check_init(wu.vars, init, what), _check_init(wu.pre_vars, pre_init, what + " pre_init"),
            _check_init(wu.post_vars, post_init, what + " post_init"),
            _check_init(psm.vars, psm_init, what + " psm_init"),
            int(delay), None if row_stride is None else int(row_stride), float(headroom), len(self.projections))
        self.projections[name] = proj
        return proj

    def incoming(self, pop: Population) -> list[Projection]:
        return [p for p in self.projections.values() if p.post is pop]

    def outgoing(self, pop: Population) -> list[Projection]:
        return [p for p in self.projections.values() if p.pre is pop]

    def spike_slots(self, pop: Population) -> int:
        """Rows of the population's spike ring buffer: enough for the longest outgoing delay, plus one slot
        being written and one being cleared ahead (see codegen)."""
        return max([p.delay for p in self.outgoing(pop)], default=0) + 2
