"""``plastix`` command."""
from __future__ import annotations

import argparse
import json
import sys

from .. import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plastix", description="Sparse spiking networks with structural plasticity.")
    p.add_argument("--version", action="version", version=f"plastix {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    from . import bench_rewire, bench_sim, bench_train, nir, topomap, train

    tr = sub.add_parser("train", help="train a recurrent SNN classifier with e-prop (dense, sparse or DEEP R)")
    train.add_arguments(tr)
    tr.set_defaults(func=train.run)

    tm = sub.add_parser("topomap", help="topographic map refinement by rewiring (Bamford et al. 2010)")
    topomap.add_arguments(tm)
    tm.set_defaults(func=topomap.run)
    nir.register(sub)   # plastix export nir / plastix run nir
    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True)

    bs = bsub.add_parser("sim", help="event-driven simulation speed (recurrent LIF network)")
    bench_sim.add_arguments(bs)
    bs.set_defaults(func=bench_sim.run)
    br = bsub.add_parser("rewire", help="structural plasticity speed (SET-style rewire)")
    bench_rewire.add_arguments(br)
    br.set_defaults(func=bench_rewire.run)
    bt = bsub.add_parser("train", help="e-prop training time per epoch against connection density")
    bench_train.add_arguments(bt)
    bt.set_defaults(func=bench_train.run)
    return p


def _print_human(out: dict) -> None:
    width = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{width}}  {v}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    out = args.func(args)
    if getattr(args, "json", False):
        print(json.dumps(out))
    else:
        _print_human(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
