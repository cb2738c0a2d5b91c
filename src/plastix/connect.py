"""Connectivity initialisers (public namespace)."""
from .model.connectivity import (AllToAll, FixedNumberPost, FixedProbability, FromArrays, GaussianGrid2D,
                                 OneToOne, grid_positions, periodic_distance_sq)
from .model.network import Dense

__all__ = ["FixedProbability", "FixedNumberPost", "OneToOne", "AllToAll", "GaussianGrid2D", "FromArrays", "Dense",
           "grid_positions", "periodic_distance_sq"]
