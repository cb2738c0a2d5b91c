"""Time and peak memory of loading an MNIST-format data set: reading the IDX files alone (the reference),
then encoding to spikes with the latency and the rate code (T = 20), each in a fresh process so that its
peak resident memory is its own.

    python benchmarks/idx_load.py --dataset fashion_mnist --json

Needs the files (for Fashion-MNIST: apt-get install dataset-fashion-mnist, or --data-dir)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CASE = r"""
import json, resource, sys, time
import plastix.datasets as pxd
from plastix.datasets import idx
name, case, data_dir, max_train = sys.argv[1], sys.argv[2], sys.argv[3] or None, int(sys.argv[4]) or None
t0 = time.perf_counter()
if case == "read":
    raw = idx.load_images(name, data_dir)
    spikes = None
else:
    ds = pxd.load(name, data_dir=data_dir, encoding=case, max_train=max_train)
    spikes = {"train": len(ds.train.times_ms), "test": len(ds.test.times_ms)}
wall = time.perf_counter() - t0
print(json.dumps({"case": case, "wall_s": wall, "spikes": spikes,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("fashion_mnist", "mnist"), default="fashion_mnist")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--max-train", type=int, default=0, help="encode only this many training images (0: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for case in ("read", "latency", "rate"):
        out = subprocess.run([sys.executable, "-c", _CASE, args.dataset, case, args.data_dir, str(args.max_train)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.splitlines()[-1]))
    ref = rows[0]["wall_s"]
    for r in rows:
        r["x_read"] = r["wall_s"] / ref
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'case':8} {'wall s':>8} {'x read':>7} {'peak GB':>8} {'spikes (train + test)':>22}")
    for r in rows:
        n = sum(r["spikes"].values()) if r["spikes"] else 0
        print(f"{r['case']:8} {r['wall_s']:8.1f} {r['x_read']:7.1f} {r['peak_rss_gb']:8.2f} {n:22,d}")


if __name__ == "__main__":
    main()
