"""Connectivity initialisers (public namespace)."""
from .model.connectivity import (AllToAll, FixedNumberPost, FixedProbability, FromArrays, GaussianGrid2D,
                                 OneToOne, grid_positions, periodic_distance_sq)
from .model.conv import AvgPool2D, Conv2D
from .model.network import Dense

__all__ = ["FixedProbability", "FixedNumberPost", "OneToOne", "AllToAll", "GaussianGrid2D", "FromArrays", "Dense",
           "Conv2D", "AvgPool2D", "grid_positions", "periodic_distance_sq"]
