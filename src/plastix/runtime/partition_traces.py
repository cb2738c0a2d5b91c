"""Presynaptic traces on a partitioned simulation's ghosts.

A weight-update model's presynaptic traces (``pre_vars``, e.g. STDP's ``x``) depend on the presynaptic
spikes alone, so every rank keeps them for the whole source population, on its ghost.  The ghost's neuron
update runs each trace's ``pre_dynamics`` every step, as the source population does in one process, but it
never spikes; the spikes arrive with the exchange after the step.  :class:`GhostTraces` then runs each
trace's ``pre_spike`` code on them: the same compiled scalar function, on the same values, in the same
order as the one-process neuron update (dynamics, then the spike), so the traces are bitwise those of one
process.  The next step's synapse code reads them, so a network with presynaptic traces exchanges every
step (:func:`~plastix.runtime.partition_build.build_local`).
"""
from __future__ import annotations

import numpy as np

from ..codegen.cache import load_module
from ..codegen.elements import Names, call, header, indent, rng_scalars


class GhostTraces:
    """Per ghost population, a compiled kernel applying its outgoing projections' ``pre_spike`` code to the
    ids of one step's spikes (none when no projection from it has one)."""

    def __init__(self, plan, ghosts: dict[str, str]):
        self.kernels: dict[str, tuple] = {}   # ghost name -> (kernel, state keys of its arguments)
        ghost_names = set(ghosts.values())
        sources, bodies = [], []
        for pp in plan.pops:
            if pp.pop.name not in ghost_names:
                continue
            names = Names()
            body = []
            for q in plan.outgoing(pp):
                if "pre_spike" not in q.funcs:
                    continue
                tvars = q.proj.weight_update.pre_vars
                m = {("pre", v): f"{q.prefix}pre_{v}" for v in tvars}
                m.update({("p", p): names(q.keys.param(p)) for p in q.wu_param_names})
                body += [f"{q.prefix}pre_{v} = {names(q.keys.trace('pre', v))}[i]" for v in tvars]
                # the ghost holds the whole source population: its neuron i is global neuron i
                body.append(call(q.funcs["pre_spike"], m, rng_scalars("i", q.streams["pre_spike"])))
                body += [f"{names(q.keys.trace('pre', v))}[i] = {q.prefix}pre_{v}" for v in tvars]
                sources.append(q.funcs["pre_spike"].source)
            if not body:
                continue
            args = sorted(names.used)
            name = f"{pp.prefix}_ghost_spikes"
            bodies += ["@njit(cache=True)", f"def {name}(step, t, dt, seed, ids, {', '.join(args)}):",
                       "    for _s in range(ids.shape[0]):", "        i = ids[_s]"] + indent(body, 2) + [""]
            self.kernels[pp.pop.name] = (name, args)
        self.module = None
        if self.kernels:
            deco = ["@njit(cache=True)"]
            fns = [line for src in dict.fromkeys(sources) for line in deco + [src]]
            self.module = load_module("\n".join(header("cpu", plan.network.precision) + fns + bodies), "cpu_ghost")
        self.scalar = np.dtype(plan.network.precision).type

    def apply(self, state: dict, ghost: str, step: int, dt: float, seed: int, ids: np.ndarray) -> None:
        """Run the traces' spike code of ``ghost`` for ``ids`` (global ids, ascending), spikes of ``step``."""
        if ghost not in self.kernels or not ids.size:
            return
        name, args = self.kernels[ghost]
        getattr(self.module, name)(np.int64(step), self.scalar(step * dt), self.scalar(dt), np.uint64(seed),
                                   ids.astype(np.int64), *[state[a] for a in args])
