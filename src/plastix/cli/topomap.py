"""``plastix topomap``: topographic map refinement by STDP and structural plasticity (Bamford et al. 2010)."""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--scale", type=int, default=1, help="grid side 16 x scale (1..7; default 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="model time in s (default 10)")
    p.add_argument("--input", choices=("correlated", "uncorrelated"), default="correlated")
    p.add_argument("--fan-in-cap", type=int, default=None, help="Bamford's s_max (default: no cap)")
    p.add_argument("--record-every", type=float, default=1.0, help="analysis interval in s (default 1)")
    p.add_argument("--backend", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("out/topomap"), help="results.json and figures go here")
    p.add_argument("--no-breakdown", action="store_true", help="skip the ablation runs of the time breakdown")
    p.add_argument("--breakdown-steps", type=int, default=2000,
                   help="steps per ablation run of the time breakdown, each run 3 times (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object (without the history)")


def run(args) -> dict:
    from ..topomap import model
    from ..topomap import run as topo_run

    if not 1 <= args.scale <= 7:
        raise SystemExit(f"--scale must be in 1..7, got {args.scale}")
    if args.breakdown_steps < 1:
        raise SystemExit(f"--breakdown-steps must be >= 1, got {args.breakdown_steps}")
    if args.fan_in_cap is not None and args.fan_in_cap < 1:
        raise SystemExit(f"--fan-in-cap must be >= 1, got {args.fan_in_cap}")
    params = model.TopomapParams(scale=args.scale, correlated=args.input == "correlated",
                                 fan_in_cap=args.fan_in_cap, seed=args.seed)
    res = topo_run.run(params, args.seconds, backend=args.backend, record_every_s=args.record_every, out=args.out,
                       progress=not args.json, breakdown_steps=None if args.no_breakdown else args.breakdown_steps)
    return {k: v for k, v in res.items() if k not in ("history", "params")} | {"out": str(args.out)}
