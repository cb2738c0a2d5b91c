"""Structural plasticity rules written as connectivity updates (library code: read it, copy it)."""
from .rules import distributed_regrow, magnitude_prune, random_prune, random_regrow, random_replace, set_rewire

__all__ = ["distributed_regrow", "magnitude_prune", "random_prune", "random_regrow", "random_replace", "set_rewire"]
