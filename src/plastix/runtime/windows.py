"""The tape rows an update over the tape visits: ``rows=(first, stop)`` of
:meth:`plastix.Simulation.custom_update` and of the conv layers' backward functions (:mod:`plastix.conv`)."""
from __future__ import annotations

import numpy as np

from ..codegen.names import ALL_TAPE_ROWS


def tape_rows(rows, caller: str) -> tuple[int, int]:
    """``rows`` checked: two integers ``0 <= first <= stop`` (None: every row, :data:`ALL_TAPE_ROWS`)."""
    if rows is None:
        return ALL_TAPE_ROWS
    try:
        first, stop = rows
    except (TypeError, ValueError):
        raise ValueError(f"{caller}: rows must be (first, stop), got {rows!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (first, stop)) \
            or not 0 <= first <= stop:
        raise ValueError(f"{caller}: rows must be two integers 0 <= first <= stop, got {rows!r}")
    return int(first), int(stop)
