"""plastix: sparse spiking neural networks whose connectivity changes while they run.

Describe a :class:`Network` of populations and projections with models written as Python functions,
then run it with :class:`Simulation` on the CPU (numba) or an NVIDIA GPU (numba-cuda).
"""
from __future__ import annotations

from ._version import __version__
from . import compile_gc  # noqa: F401  (fewer garbage collections while numba compiles)
from . import connect, init, neurons, postsynaptic, structural, weight_update
from .errors import BackendError, CapacityError, ModelError, NetworkError, PlastixError, StateError
from .model.network import Network, Population, Projection
from .model.specs import (ConnectivityUpdateModel, CustomUpdateModel, NeuronModel, PostsynapticModel, Var, VarAccess,
                          WeightUpdateModel)
from .runtime import Simulation

__all__ = [
    "__version__", "Network", "Population", "Projection", "Simulation",
    "NeuronModel", "PostsynapticModel", "WeightUpdateModel", "ConnectivityUpdateModel", "CustomUpdateModel",
    "Var", "VarAccess",
    "neurons", "postsynaptic", "weight_update", "connect", "init", "structural",
    "PlastixError", "ModelError", "NetworkError", "StateError", "CapacityError", "BackendError",
]
