"""The ragged layout of a sparse projection: ``ind[num_pre, row_stride]`` (int32 targets; only the first
``row_length[i]`` entries of row ``i`` are valid, padding 0), ``row_length[num_pre]`` (int32) and every
per-synapse variable in the same ``[num_pre, row_stride]`` layout.  :func:`to_ragged` lays a synapse list
out; :func:`row_stride_for` picks the stride a connectivity initialiser needs."""
from __future__ import annotations

import math
import operator

import numpy as np

from .checks import as_index_array, check_range, check_size, check_sizes


def to_ragged(pre, post, num_pre: int, row_stride: int, *, num_post: int | None = None, name: str | None = None):
    """Lay out a synapse list as a ragged matrix.

    Returns ``(ind, row_length, slot)``: ``ind`` is ``(num_pre, row_stride)`` int32 with
    ``ind[pre[s], slot[s]] == post[s]`` (padding 0), ``row_length`` is ``(num_pre,)`` int32 and ``slot``
    (int64, one per input synapse) is the column of each synapse, so per-synapse values given in input
    order scatter with ``values_2d[pre, slot] = values``.  Within a row synapses keep their input order.
    ``pre`` need not be sorted.  ``num_post`` (optional) enables a range check of ``post``; ``name``
    (optional) names the projection in error messages.

    Raises ``ValueError`` when a row has more than ``row_stride`` synapses, naming the first such row.
    """
    num_pre = check_size("num_pre", num_pre)
    row_stride = check_size("row_stride", row_stride)
    pre = as_index_array("pre", pre)
    post = as_index_array("post", post)
    if pre.shape != post.shape:
        raise ValueError(f"pre and post must have the same length, got {pre.size} and {post.size}")
    check_range("pre", pre, num_pre, "num_pre")
    if num_post is not None:
        num_post = check_size("num_post", num_post)
        check_range("post", post, num_post, "num_post")
    else:
        check_range("post", post, 2**31 - 1, None)  # must fit the int32 index array
    counts = np.bincount(pre, minlength=num_pre)
    over = np.nonzero(counts > row_stride)[0]
    if over.size:
        row = int(over[0])
        what = "projection" if name is None else f"projection {name!r}"
        extra = ""
        if over.size > 1:
            extra = f" ({over.size} rows overflow, the longest has {int(counts.max())} synapses)"
        raise ValueError(
            f"row {row} of {what} needs {int(counts[row])} synapses but row_stride is {row_stride}{extra}; "
            "pass a larger row_stride"
        )
    n = pre.size
    starts = np.zeros(num_pre, dtype=np.int64)
    if num_pre > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    if n and np.all(pre[1:] >= pre[:-1]):
        slot = np.arange(n, dtype=np.int64) - starts[pre]
    else:
        order = np.argsort(pre, kind="stable")
        slot = np.empty(n, dtype=np.int64)
        slot[order] = np.arange(n, dtype=np.int64) - starts[pre[order]]
    ind = np.zeros((num_pre, row_stride), dtype=np.int32)
    ind[pre, slot] = post
    return ind, counts.astype(np.int32), slot


def row_stride_for(init, num_pre: int, num_post: int, row_stride: int | None = None,
                   headroom: float = 1.0) -> int:
    """The row stride for a projection built with ``init`` (a
    :class:`~plastix.model.connectivity.Connectivity`).

    With ``row_stride`` given it is validated and returned: it must be >= 1, at most ``num_post`` for
    rules that cannot create duplicate synapses, and, where row lengths are not random
    (``init.exact_row_lengths``), at least the longest row.  Otherwise
    ``ceil(init.max_row_length(num_pre, num_post) * headroom)`` (at least 1; capped at ``num_post`` for
    rules without duplicates).
    """
    num_pre, num_post = check_sizes(num_pre, num_post)
    try:
        headroom = float(headroom)
    except (TypeError, ValueError):
        raise ValueError(f"headroom must be a number >= 1, got {headroom!r}") from None
    if not (1.0 <= headroom < math.inf):
        raise ValueError(f"headroom must be in [1, inf), got {headroom!r}")
    cap = math.inf if init.allows_duplicates else max(num_post, 1)
    rule = type(init).__name__
    if row_stride is not None:
        try:
            stride = operator.index(row_stride)
        except TypeError:
            raise ValueError(f"row_stride must be a positive integer, got {row_stride!r}") from None
        if stride < 1 or stride > cap:
            upper = "" if cap == math.inf else f", num_post ({cap})"
            why = "" if cap == math.inf else f" ({rule} creates no duplicate synapses)"
            raise ValueError(f"row_stride must be in [1{upper}]{why}, got {stride}")
        if init.exact_row_lengths:
            need = init.max_row_length(num_pre, num_post)
            if stride < need:
                raise ValueError(
                    f"row_stride is {stride} but {rule} has rows of {need} synapses; pass row_stride >= {need}"
                )
        return int(stride)
    base = init.max_row_length(num_pre, num_post)
    stride = math.ceil(round(base * headroom, 9))
    return int(min(max(stride, 1), cap))
