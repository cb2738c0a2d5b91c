"""Units, time-step conventions and the metadata plastix writes into NIR files.

NIR describes neurons as continuous-time equations with times in seconds; plastix steps discrete equations
with times in ms.  A plastix neuron's step is ``v <- v_leak + alpha (v - v_leak) + gain I`` (``I``: the
input of this step, a spike counting 1 for the one step it lasts), and the two are tied by a
*convention* at a step ``dt``:

``"exact"``
    each equation integrated exactly over the step with its input held constant: ``alpha = exp(-dt/tau)``,
    ``gain = (1 - alpha) r``.  ``tau`` is the physical time constant; a tool that integrates exactly at
    the ``dt`` in the metadata reproduces the plastix step.
``"euler"``
    one forward-Euler step: ``alpha = 1 - dt/tau``, ``gain = r dt/tau`` -- what discrete-time tools
    (snnTorch among them, at ``dt = 1e-4`` s) assume when they read a file.  ``tau`` is then
    ``dt / (1 - alpha)``, not the physical time constant.

Either way ``r = gain / (1 - alpha)``, so only ``tau`` depends on the convention.  Voltages stay in the
model's units (mV for engine LIF, dimensionless for e-prop), currents in nA (or dimensionless), ``r`` in
MOhm (mV / nA); NIR fixes only time.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..errors import PlastixError

CONVENTIONS = ("exact", "euler")
#: Version of the ``plastix`` metadata entries; a loader refuses other versions.
METADATA_FORMAT = 1
#: Graph-level metadata key holding a JSON document (dt, convention, source, what other tools miss).
GRAPH_KEY = "plastix"
#: Node-level metadata keys: a JSON document (the plastix model and parameters of a neuron node; the
#: projection of a weight node), and the ragged form of a sparse weight node.
NODE_KEY = "plastix"
RAGGED_KEYS = ("plastix_row_length", "plastix_targets", "plastix_weights")
MS_PER_S = 1000.0


class NIRError(PlastixError, ValueError):
    """A network cannot be exported to NIR, or a NIR file cannot be loaded; the message names the node."""


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise NIRError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def continuous(alpha, gain, dt_s: float, convention: str, what: str):
    """NIR ``(tau [s], r)`` of a discrete step with decay ``alpha`` and input gain ``gain`` at ``dt_s``
    seconds.  ``alpha`` must lie in (0, 1) (a leak; no leak has no finite tau)."""
    alpha = np.asarray(alpha, np.float64)
    gain = np.asarray(gain, np.float64)
    if not np.all((alpha > 0.0) & (alpha < 1.0)):
        raise NIRError(f"{what}: decay per step must lie in (0, 1) for a finite NIR time constant, got "
                       f"{np.unique(alpha)[:4]}")
    r = gain / (1.0 - alpha)
    tau = -dt_s / np.log(alpha) if convention == "exact" else dt_s / (1.0 - alpha)
    return tau, r


def discrete(tau_s, r, dt_s: float, integration: str, what: str):
    """``(alpha, gain)`` of the plastix step for NIR ``tau`` (s) and ``r`` at ``dt_s`` seconds."""
    tau = np.asarray(tau_s, np.float64)
    r = np.asarray(r, np.float64)
    if not np.all(np.isfinite(tau) & (tau > 0.0)):
        raise NIRError(f"{what}: time constants must be finite and > 0 s, got {np.unique(tau)[:4]}")
    if not np.all(np.isfinite(r)):
        raise NIRError(f"{what}: r must be finite, got {np.unique(r)[:4]}")
    if integration == "exact":
        alpha = np.exp(-dt_s / tau)
        return alpha, (1.0 - alpha) * r
    if not np.all(dt_s < tau):
        raise NIRError(f"{what}: forward Euler needs dt < tau; dt = {dt_s:g} s, smallest tau = {tau.min():g} s "
                       "(use integration='exact' or a smaller dt)")
    return 1.0 - dt_s / tau, r * dt_s / tau


def to_json(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True)


def from_json(text, what: str) -> dict:
    if isinstance(text, bytes):
        text = text.decode("utf8")
    if isinstance(text, np.ndarray) and text.ndim == 0:
        text = text.item()
        if isinstance(text, bytes):
            text = text.decode("utf8")
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as e:
        raise NIRError(f"{what}: the '{GRAPH_KEY}' metadata is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise NIRError(f"{what}: the '{GRAPH_KEY}' metadata must be a JSON object")
    return doc


def steps(seconds: float, dt_s: float, what: str) -> int:
    """A duration in whole steps; anything else is an error."""
    k = seconds / dt_s
    n = int(round(k))
    if n < 0 or not math.isclose(k, n, rel_tol=1e-6, abs_tol=1e-6):
        raise NIRError(f"{what}: delay {seconds:g} s is not a whole number of steps of {dt_s:g} s")
    return n
