"""NIR interchange: export plastix networks as NIR graphs, and run NIR graphs in plastix.

NIR (the Neuromorphic Intermediate Representation, https://neuroir.org) is the file format snnTorch,
Norse, Rockpool, Sinabs, Spyx, Lava-DL and neuromorphic hardware toolchains read and write.  It needs the
optional ``nir`` package (``pip install "plastix[nir]"``); plastix imports without it and these functions
say so when it is missing.

* :func:`export` writes a trained e-prop classifier or an engine network of built-in models;
* :func:`load` turns a NIR file (from plastix or another tool) into a runnable :class:`NIRModel`.

What maps to what, the units and time-step conventions, the metadata and the limits: docs/nir.md.
"""
from __future__ import annotations

from .export import ExportResult, export, require_nir
from .load import load
from .runner import NIRModel
from .units import CONVENTIONS, NIRError

__all__ = ["export", "load", "NIRModel", "ExportResult", "NIRError", "CONVENTIONS", "require_nir"]
