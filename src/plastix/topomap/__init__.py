"""Topographic map formation by synaptic rewiring (Bamford, Murray & Willshaw 2010): the model
(:mod:`.model`), its analyses (:mod:`.analysis`) and figures (:mod:`.plots`)."""
from . import analysis, model
from .model import TopomapParams, build, stimulus_schedule

__all__ = ["TopomapParams", "build", "stimulus_schedule", "analysis", "model"]
