"""Argument validation shared by the connectivity initialisers, the ragged layout and grid geometry:
each check raises ``ValueError`` naming the parameter and the allowed range."""
from __future__ import annotations

import operator

import numpy as np


def check_size(name: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0), got {v}")
    return int(v)


def check_sizes(num_pre, num_post) -> tuple[int, int]:
    return check_size("num_pre", num_pre), check_size("num_post", num_post)


def check_probability(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def empty_synapses() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def check_shape(name: str, shape) -> tuple[int, int]:
    try:
        rows, cols = shape
        rows, cols = operator.index(rows), operator.index(cols)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"{name} must be a pair of positive integers (rows, cols), got {shape!r}")
    return int(rows), int(cols)



def as_index_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = np.nonzero(~np.isfinite(arr) | (arr != np.round(arr)))[0]
        if bad.size:
            raise ValueError(f"{name} must hold integer indices, but {name}[{bad[0]}] = {arr[bad[0]]!r}")
    elif arr.dtype == np.uint64 and arr.max() > np.iinfo(np.int64).max:
        bad = int(np.argmax(arr > np.iinfo(np.int64).max))
        raise ValueError(f"{name}[{bad}] = {arr[bad]} is too large")
    return arr.astype(np.int64)


def check_range(name: str, arr: np.ndarray, limit: int, limit_name: str | None) -> None:
    bad = np.nonzero((arr < 0) | (arr >= limit))[0]
    if bad.size:
        i = int(bad[0])
        where = f"[0, {limit})" if limit_name is None else f"[0, {limit_name}) with {limit_name} = {limit}"
        raise ValueError(f"{name}[{i}] = {int(arr[i])} is out of range {where} ({bad.size} out-of-range entries)")
