"""``plastix topomap``: topographic map refinement by STDP and structural plasticity (Bamford et al. 2010).

Under an MPI launcher (``mpiexec -n R plastix topomap ...``) the network is partitioned over the R ranks
(docs/mpi.md); only rank 0 prints and writes, and the JSON reports ``ranks``."""
from __future__ import annotations

from pathlib import Path

from .arguments import UsageError, integer, number, on_ranks, seed


def add_arguments(p) -> None:
    p.add_argument("--scale", type=integer(1, 7), default=1, help="grid side 16 x scale (1..7; default 1)")
    # the upper bound keeps the input drive allocatable; 1e6 s would take days to simulate anyway
    p.add_argument("--seconds", type=number(0, 1e6, low_open=True), default=10.0,
                   help="model time in s (default 10; at most 1e6)")
    p.add_argument("--input", choices=("correlated", "uncorrelated"), default="correlated")
    p.add_argument("--fan-in-cap", type=integer(1), default=None, help="Bamford's s_max (default: no cap)")
    p.add_argument("--record-every", type=number(0, low_open=True), default=1.0,
                   help="analysis interval in s (default 1)")
    p.add_argument("--backend", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--out", type=Path, default=Path("out/topomap"), help="results.json and figures go here")
    p.add_argument("--breakdown", action="store_true",
                   help="also measure the time breakdown (neurons, propagation, STDP, rewiring) by ablation: three "
                        "more networks to compile and run")
    p.add_argument("--no-breakdown", action="store_true",
                   help="no time breakdown (the default; kept so that earlier command lines still run)")
    p.add_argument("--breakdown-steps", type=integer(1), default=2000,
                   help="with --breakdown: steps per ablation run, each run 3 times (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object (without the history)")


def run(args) -> dict | None:
    return on_ranks(args, _topomap)


def _topomap(args, comm) -> dict:
    from ..topomap import model
    from ..topomap import run as topo_run

    if args.breakdown and args.no_breakdown:
        raise UsageError("--breakdown and --no-breakdown contradict each other")
    params = model.TopomapParams(scale=args.scale, correlated=args.input == "correlated",
                                 fan_in_cap=args.fan_in_cap, seed=args.seed)
    res = topo_run.run(params, args.seconds, backend=args.backend, record_every_s=args.record_every, out=args.out,
                       progress=not args.json, breakdown_steps=args.breakdown_steps if args.breakdown else None,
                       comm=comm)
    return {k: v for k, v in res.items() if k not in ("history", "params")} | {"out": str(args.out)}
