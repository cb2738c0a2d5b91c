"""Convolutional layers as sparse projections with shared kernel weights (docs/conv.md).

* :class:`Conv2D` / :class:`AvgPool2D` (also in :mod:`plastix.connect`): connectivities whose synapses are
  those of a 2-D cross-correlation / average pooling; :func:`add_conv2d` / :func:`add_avg_pool2d` add
  such a projection to a network (:func:`conv_synapse` weights, ``w`` and ``kidx`` filled at build).
* :func:`tie` / :func:`kernel_sum` / :func:`kernel_sum_outer` / :func:`kernel_from_synapses`: the shared
  kernel in a simulation (copy it into the synapses, sum per-synapse gradients or (post x pre) products
  into it, read it back); :func:`kernel_event_sum`: a weight gradient over presynaptic events summed by
  kernel entry straight from the tape (:func:`whole_entries` says when it applies);
  :func:`kernel_transpose_add` / :func:`pool_transpose_add`: the transposed convolution / pooling of a tape
  into the presynaptic tape (BPTT's adjoint carried down), from the geometry.
* :func:`prune_channel` / :func:`regrow_slice`: remove an output channel's (or a kernel slice's)
  synapses for real, and put a kernel slice back.
"""
from ..model.conv import AvgPool2D, Conv2D, add_avg_pool2d, add_conv2d, conv_synapse
from .channels import RegrowReport, prune_channel, regrow_slice
from .gradients import full_entry_counts, kernel_event_sum, kernel_transpose_add, pool_transpose_add, whole_entries
from .shared import kernel_from_synapses, kernel_sum, kernel_sum_outer, tie

__all__ = ["Conv2D", "AvgPool2D", "conv_synapse", "add_conv2d", "add_avg_pool2d", "tie", "kernel_sum",
           "kernel_sum_outer", "kernel_from_synapses", "kernel_event_sum", "kernel_transpose_add",
           "pool_transpose_add", "whole_entries", "full_entry_counts", "prune_channel", "regrow_slice",
           "RegrowReport"]
