"""Built-in weight-update models (public namespace)."""
from .model.weight_update import stdp_additive, static

__all__ = ["static", "stdp_additive"]
