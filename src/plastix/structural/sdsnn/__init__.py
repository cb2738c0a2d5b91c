"""SD-SNN's structural development (dendritic-spine ranges, neuron pruning with an
adaptive "neurotrophic" rate, synaptic regeneration) as plastix rules, in the authors' ``faithful``
semantics on masks or plastix's ``sparse`` semantics with real removal.  docs/sdsnn.md describes it;
each module documents its part."""
from .driver import SDSNN
from .engine import SimulationArrays, SimulationBias, attach_sdsnn
from .layers import MODES, ArrayBias, ConvLayer, FCLayer, Outgoing
from .probe import Candidates
from .schedule import LayerRule, SDSNNConfig, SDSNNSchedule, sdsnn_variant
from .storage import KernelArrays, RaggedArrays

__all__ = ["MODES", "SDSNN", "ArrayBias", "Candidates", "ConvLayer", "FCLayer", "KernelArrays", "LayerRule",
           "Outgoing", "RaggedArrays", "SDSNNConfig", "SDSNNSchedule", "SimulationArrays", "SimulationBias",
           "attach_sdsnn", "sdsnn_variant"]
