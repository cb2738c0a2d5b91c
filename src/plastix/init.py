"""Variable initialisers (public namespace)."""
from .model.init import Constant, Normal, Uniform

__all__ = ["Constant", "Uniform", "Normal"]
