"""Saving and loading a simulation's complete state (.npz with a JSON metadata entry)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..codegen.names import SCRATCH_SUFFIXES, is_recording
from ..codegen.plan import build_plan
from ..errors import StateError

FORMAT_VERSION = 1


def fingerprint(network) -> str:
    """What a saved state must match: generated code, dt, seed, population sizes and projection names."""
    net = network
    # the variables updates over the tape read are recorded by every simulation of the network
    tapes = sorted({(pop, v) for cu in net.custom_updates.values() for _, pop, v in cu.tape_refs.values()})
    key = build_plan(net, tapes).source_key() + f"\ndt={net.dt} seed={net.seed} " + repr(
        [(p.name, p.size) for p in net.populations.values()]) + repr(
        [(q.name, q.pre.name, q.post.name) for q in net.projections.values()])
    return hashlib.sha256(key.encode()).hexdigest()


def save(path, state: dict, step: int, network) -> None:
    """Write ``state`` (host arrays, up to date) and ``step`` to ``path``; recordings and backend scratch
    arrays are not part of the state."""
    meta = {"format": FORMAT_VERSION, "step": step, "fingerprint": fingerprint(network)}
    arrays = {k: v for k, v in state.items() if not is_recording(k) and not k.endswith(SCRATCH_SUFFIXES)}
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)


def load(path, state: dict, network) -> int:
    """Restore into ``state`` (in place, dtypes kept) what :func:`save` wrote from a simulation of the same
    network; returns the saved step."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved state at {path}")
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data:
            raise StateError(f"{path} is not a plastix state file (no metadata)")
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != FORMAT_VERSION:
            raise StateError(f"{path}: state format {meta.get('format')} is not supported ({FORMAT_VERSION})")
        if meta["fingerprint"] != fingerprint(network):
            raise StateError(f"{path} was saved from a different network (models, sizes, names, dt or seed "
                             "differ)")
        for k in data.files:
            if k == "__meta__":
                continue
            if k not in state:
                raise StateError(f"{path}: unexpected array {k!r}")
            arr = data[k]
            state[k] = np.array(arr, dtype=state[k].dtype) if arr.ndim else state[k].dtype.type(arr)
    return int(meta["step"])
