"""``plastix`` command.

Errors a user can cause (bad arguments, plastix's own errors, files that cannot be read or written, memory
that runs out) end as the one line ``plastix <command>: error: <message>`` on stderr and exit status 2, the
way argparse reports a bad flag; ``--debug`` shows the traceback instead.  Any other exception is a bug and
keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from .._version import __version__
from ..errors import PlastixError

#: Exceptions that report a problem with the user's input or machine, not a bug of plastix.
USER_ERRORS = (PlastixError, OSError, MemoryError)

#: Exit status of an error, as argparse uses for a bad argument.
ERROR_STATUS = 2


def fail(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` to stderr and exit with :data:`ERROR_STATUS`."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(ERROR_STATUS)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the (long) usage text that ``--help`` shows."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def _add_command(sub, name: str, module, help: str) -> None:
    """Subcommand ``name`` with ``module``'s arguments and ``run``, plus ``--debug``."""
    p = sub.add_parser(name, help=help, description=help)
    module.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback (for bug reports)")
    p.set_defaults(func=module.run, prog=p.prog)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="plastix", description="Sparse spiking networks with structural plasticity.")
    p.add_argument("--version", action="version", version=f"plastix {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,sdsnn,topomap,bench,export,run}")
    from . import bench_rewire, bench_sim, bench_train, nir, sdsnn, topomap, train

    _add_command(sub, "train", train, "train a recurrent SNN classifier with e-prop (dense, sparse or DEEP R)")
    _add_command(sub, "sdsnn", sdsnn, "train a conv SNN by surrogate-gradient BPTT that prunes and regrows itself "
                 "(SD-SNN: faithful masks, truly sparse, or unpruned)")
    _add_command(sub, "topomap", topomap, "topographic map refinement by rewiring (Bamford et al. 2010)")
    for verb, helptext, module in (("export", "write a trained model to another format", nir.Export),
                                   ("run", "run a model file", nir.Run)):
        fsub = sub.add_parser(verb, help=helptext).add_subparsers(dest="format", required=True, metavar="{nir}")
        _add_command(fsub, "nir", module, f'{verb} NIR (needs pip install "plastix[nir]")')
    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True, metavar="{sim,rewire,train}")
    _add_command(bsub, "sim", bench_sim, "event-driven simulation speed (recurrent LIF network)")
    _add_command(bsub, "rewire", bench_rewire, "structural plasticity speed (SET-style rewire)")
    _add_command(bsub, "train", bench_train, "e-prop training time per epoch against connection density")
    return p


def _print_human(out: dict) -> None:
    width = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{width}}  {v}")


def _message(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return f"out of memory ({e})" if str(e) else "out of memory"
    return str(e) or type(e).__name__


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns 0, or raises SystemExit(2) on an error."""
    args, extra = _parser().parse_known_args(argv)
    if extra:  # reported by the subcommand (argparse would name only "plastix")
        fail(args.prog, f"unrecognized arguments: {' '.join(extra)}")
    try:
        out = args.func(args)
    except USER_ERRORS as e:
        if args.debug:
            raise
        fail(args.prog, _message(e))
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{args.prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    if out is None:   # nothing to print: a rank other than 0 of an MPI run
        return 0
    if getattr(args, "json", False):
        print(json.dumps(out))
    else:
        _print_human(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
