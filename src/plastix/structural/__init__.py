"""Structural plasticity rules written as connectivity updates (library code: read it, copy it)."""
from .deep_r import deep_r_prune, deep_r_regrow
from .rules import distributed_regrow, magnitude_prune, random_prune, random_regrow, random_replace, set_rewire

__all__ = ["deep_r_prune", "deep_r_regrow", "distributed_regrow", "magnitude_prune", "random_prune", "random_regrow",
           "random_replace", "set_rewire"]
