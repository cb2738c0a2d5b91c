"""A/B timing of two plastix source trees in the same minutes: each command runs alternately under the
``--old`` and the ``--new`` tree (``PYTHONPATH``) for ``--rounds`` rounds, after one warm-up run of each
(so neither pays compilation), and the median of each chosen JSON figure is reported with new / old.

    python benchmarks/ab.py --old /tmp/old/src --new src --rounds 3 \\
        --case "sim:bench sim --parallel on --repeats 3 --json:seconds" ...

A case is ``name:plastix arguments:key[,key...]``; the keys are read from the command's last JSON line
(dotted keys reach into nested objects and lists: ``results.0.epoch_s``).  Machines here are shared
and noisy: alternating the trees spreads the noise over both.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys


def _run(src: str, args: list[str], cache: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), PLASTIX_CACHE_DIR=cache)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    res = subprocess.run([sys.executable, "-m", "plastix.cli.main", *args], env=env, capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise SystemExit(f"{src}: plastix {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _get(obj: dict, key: str) -> float:
    for part in key.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return float(obj)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="source folder of the reference tree (holds plastix/)")
    p.add_argument("--new", required=True, help="source folder of the tree under test")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--case", action="append", required=True, help="name:arguments:key[,key...]")
    p.add_argument("--cache", default="/tmp/plastix-ab-cache", help="generated-code caches (one per tree)")
    args = p.parse_args()
    out = {}
    for case in args.case:
        name, cmd, keys = case.split(":", 2)
        argv, keys = shlex.split(cmd), keys.split(",")
        trees = {"old": args.old, "new": args.new}
        for tree, src in trees.items():  # warm-up: compile into each tree's cache
            _run(src, argv, f"{args.cache}-{tree}")
        vals = {t: {k: [] for k in keys} for t in trees}
        for _ in range(args.rounds):
            for tree, src in trees.items():
                res = _run(src, argv, f"{args.cache}-{tree}")
                for k in keys:
                    vals[tree][k].append(_get(res, k))
        out[name] = {"command": f"plastix {cmd}", "rounds": args.rounds}
        for k in keys:
            old, new = statistics.median(vals["old"][k]), statistics.median(vals["new"][k])
            out[name][k] = {"old": old, "new": new, "new_over_old": new / old if old else None,
                            "old_all": vals["old"][k], "new_all": vals["new"][k]}
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
