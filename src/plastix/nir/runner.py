"""A loaded NIR graph as a plastix network that runs on spike input and reports in NIR time."""
from __future__ import annotations

import numpy as np

from ..model.network import Network
from ..runtime import Simulation
from .units import NIRError


class NIRModel:
    """A plastix :class:`~plastix.Network` built from a NIR graph, with its inputs and outputs.

    Attributes
    ----------
    network : Network
        One spike-source population per NIR ``Input``, one population per neuron node, one sparse
        projection per weight path.
    inputs : dict
        NIR Input name -> population.
    outputs : dict
        NIR Output name -> (population, "spikes" or "v").
    latency : dict
        Population -> steps its plastix time runs behind NIR time (docs/nir.md, "Timing").
    dt : float
        Time step (ms).
    info : dict or None
        plastix's graph metadata, when the file came from plastix.
    notes : list of str
        What the loader left out (e.g. connections whose weights are all 0).
    """

    def __init__(self, network: Network, inputs: dict, outputs: dict, latency: dict, dt: float, info, notes):
        self.network = network
        self.inputs = inputs
        self.outputs = outputs
        self.latency = latency
        self.dt = dt
        self.info = info
        self.notes = notes
        self._sim: Simulation | None = None

    def __repr__(self):
        return (f"NIRModel(inputs={self.inputs}, outputs={self.outputs}, populations={list(self.network.populations)}, "
                f"dt={self.dt} ms)")

    @property
    def simulation(self) -> Simulation:
        """The CPU simulation that :meth:`run` uses (built on first use), recording every population."""
        if self._sim is None:
            sim = Simulation(self.network, backend="cpu", parallel=False)
            for pop in self.network.populations.values():
                if pop.name in self.inputs.values():
                    continue
                if pop.model.spikes:
                    sim.record_spikes(pop.name)
                else:
                    sim.record(pop.name, "v")
            self._sim = sim.build()
        return self._sim

    def _inputs(self, x) -> dict:
        if not isinstance(x, dict):
            if len(self.inputs) != 1:
                raise NIRError(f"x: the graph has inputs {sorted(self.inputs)}; give a dict of arrays by input name")
            x = {next(iter(self.inputs)): x}
        unknown = set(x) - set(self.inputs)
        missing = set(self.inputs) - set(x)
        if unknown or missing:
            raise NIRError(f"x: inputs are {sorted(self.inputs)}; unknown {sorted(unknown)}, missing {sorted(missing)}")
        out, steps = {}, None
        for name, arr in x.items():
            arr = np.asarray(arr)
            size = self.network.populations[self.inputs[name]].size
            if arr.ndim != 2 or arr.shape[1] != size:
                raise NIRError(f"input {name!r}: expected [steps, {size}] spikes, got shape {arr.shape}")
            if arr.size and not np.all((arr == 0) | (arr == 1)):
                raise NIRError(f"input {name!r}: plastix feeds inputs as spikes, so values must be 0 or 1 per neuron "
                               f"and step (got values in [{arr.min()}, {arr.max()}])")
            if steps is not None and arr.shape[0] != steps:
                raise NIRError(f"input {name!r}: {arr.shape[0]} steps, other inputs have {steps}")
            steps = arr.shape[0]
            out[name] = arr
        return out

    def run(self, x, *, record=()) -> dict[str, np.ndarray]:
        """Run on spike input and return every output, aligned to NIR time.

        Parameters
        ----------
        x : array [steps, inputs] or [batch, steps, inputs] of 0/1, or a dict of them by input name
        record : sequence of str
            Populations to report as well (spikes, or ``v`` of non-spiking ones).

        Returns
        -------
        dict
            Output (or recorded population) name -> array [steps, neurons] (with a leading batch axis for
            batched input): spikes (0/1) of spiking nodes, the membrane potential of LI nodes after each step.
        """
        batched = (np.ndim(x) == 3) if not isinstance(x, dict) else any(np.ndim(v) == 3 for v in x.values())
        if batched:
            xs = x if isinstance(x, dict) else {None: x}
            count = {np.shape(v)[0] for v in xs.values()}
            if len(count) != 1:
                raise NIRError(f"x: inputs have different batch sizes {sorted(count)}")
            runs = [self.run({k: v[b] for k, v in xs.items()} if None not in xs else xs[None][b], record=record)
                    for b in range(count.pop())]
            return {k: np.stack([r[k] for r in runs]) for k in (runs[0] if runs else {})}
        x = self._inputs(x)
        for pop in record:
            if pop not in self.network.populations or pop in self.inputs.values():
                raise NIRError(f"record: {pop!r} is not a neuron population; known: "
                               f"{[p for p in self.network.populations if p not in self.inputs.values()]}")
        steps = next(iter(x.values())).shape[0]
        sim = self.simulation
        sim.reset()
        for name, arr in x.items():
            pop = self.inputs[name]
            sim.set_spike_times(pop, [np.nonzero(arr[:, i])[0] * self.dt for i in range(arr.shape[1])])
        wanted = {name: pop for name, (pop, _) in self.outputs.items()}
        wanted.update({pop: pop for pop in record})
        sim.run(steps + max((self.latency[p] for p in wanted.values()), default=0))
        out = {}
        for name, pop in wanted.items():
            h, size = self.latency[pop], self.network.populations[pop].size
            if self.network.populations[pop].model.spikes:
                times, idx = sim.spikes(pop)
                step = np.rint(np.asarray(times) / self.dt).astype(np.int64) - h
                keep = (step >= 0) & (step < steps)
                dense = np.zeros((steps, size), np.uint8)
                dense[step[keep], idx[keep]] = 1
                out[name] = dense
            else:
                out[name] = sim.recorded(pop, "v")[h:h + steps].copy()
        return out
