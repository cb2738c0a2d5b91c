"""Spike trains from dense per-step spike counts, in compiled code (a trial's input is rebuilt every batch)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def trains_from_counts(x, t0, dt, batch):
    """``x`` [n, steps, neurons] spike counts (uint8) -> (``times`` [total] ms, ``counts`` [batch, neurons]):
    the trains of element b, neuron i one after another (element by element, then neuron by neuron), a
    count of c at step t being c spikes at ``t0 + t dt``; elements ``n .. batch - 1`` get none."""
    n, steps, neurons = x.shape
    counts = np.zeros((batch, neurons), np.int64)
    for b in range(n):
        for t in range(steps):
            for i in range(neurons):
                counts[b, i] += x[b, t, i]
    start = np.empty((batch, neurons), np.int64)
    total = 0
    for b in range(batch):
        for i in range(neurons):
            start[b, i] = total
            total += counts[b, i]
    times = np.empty(total, np.float64)
    for b in range(n):
        for t in range(steps):  # ascending steps: each train fills in time order
            at = t0 + t * dt
            for i in range(neurons):
                for _ in range(x[b, t, i]):
                    times[start[b, i]] = at
                    start[b, i] += 1
    return times, counts
