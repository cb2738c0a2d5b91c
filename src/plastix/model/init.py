"""Variable initialisers: how each element of a state variable gets its starting value."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import StateError


@dataclass(frozen=True)
class Constant:
    value: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.float64)


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"Uniform needs low <= high, got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True)
class Normal:
    mean: float
    sd: float

    def __post_init__(self):
        if not self.sd >= 0:
            raise ValueError(f"Normal needs sd >= 0, got {self.sd}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.normal(self.mean, self.sd, n)


def resolve(value, rng: np.random.Generator, n: int, what: str) -> np.ndarray:
    """Turn a scalar, an initialiser or an array of length ``n`` into an array of ``n`` values."""
    if hasattr(value, "sample"):
        return np.asarray(value.sample(rng, n))
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.full(n, arr.item())
    if arr.shape != (n,):
        raise StateError(f"{what}: expected a scalar, an initialiser or an array of shape ({n},), "
                         f"got shape {arr.shape}")
    return arr
