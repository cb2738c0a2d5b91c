"""Statistics of connectivity shared by every part of plastix that rewires: degrees and their summary,
and the synapses formed and eliminated between two snapshots (pure numpy; never imports numba or
matplotlib).  Grid-specific measures of topographic maps build on these in :mod:`plastix.topomap.analysis`."""
from .connectivity import degree_summary, degrees, json_float, multiset_minus, synapse_indices, turnover

__all__ = ["degrees", "degree_summary", "turnover", "multiset_minus", "synapse_indices", "json_float"]
