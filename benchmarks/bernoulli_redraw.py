"""Cost of SD-SNN's Bernoulli code redrawn at every presentation (``redraw=True``,
:class:`plastix.datasets.BernoulliFrames`) per epoch, against the two ways of the load-time rate code
measured in the same run: encoding the images once (``idx`` ``encoding="rate"``) and making dense
batches from the stored spikes every epoch.

    python benchmarks/bernoulli_redraw.py [--images 6000] [--batch 100]

Images: random 28 x 28 uint8 with 60 % blank pixels (MNIST-like density), T = 20.  Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from plastix.datasets import idx
from plastix.datasets.frames import BernoulliFrames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (args.images, 28, 28)).astype(np.uint8)
    img[rng.random(img.shape) < 0.6] = 0
    labels = np.zeros(args.images, np.int64)
    redrawn = BernoulliFrames(img[:, None], labels, steps=20, num_classes=10)
    t0 = time.perf_counter()
    for _ in redrawn.batches(args.batch, seed=1, epoch=0):
        pass
    redraw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    stored = idx._rate_split(img.reshape(args.images, -1), np.arange(args.images), labels, 0, seed=0, steps=20,
                             dt=1.0)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in stored.batches(args.batch, seed=1, dense=True):
        pass
    dense_s = time.perf_counter() - t0
    us = 1e6 / args.images
    print(json.dumps({"images": args.images, "batch": args.batch, "steps": 20,
                      "redraw_epoch_us_per_image": round(redraw_s * us, 1),
                      "load_time_encode_us_per_image": round(encode_s * us, 1),
                      "stored_dense_batches_us_per_image": round(dense_s * us, 1),
                      "redraw_vs_stored_batches": round(redraw_s / dense_s, 2)}))


if __name__ == "__main__":
    main()
