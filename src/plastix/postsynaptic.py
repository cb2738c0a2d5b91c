"""Built-in postsynaptic models (public namespace)."""
from .model.postsynaptic import delta, exp_cond, exp_curr

__all__ = ["delta", "exp_curr", "exp_cond"]
