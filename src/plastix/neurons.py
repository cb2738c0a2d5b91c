"""Built-in neuron models (public namespace)."""
from .model.neurons import alif, conductance_lif, leaky_integrator, lif, poisson, spike_source_array

__all__ = ["lif", "alif", "conductance_lif", "poisson", "spike_source_array", "leaky_integrator"]
