#!/usr/bin/env python3
"""Write the images, labels and split of a plastix image data set to an .npz file for torch_sdsnn.py.

The PyTorch venv (``install.sh torch``) has no scikit-learn, so torch_sdsnn.py does not load data itself:
this script, run with plastix's interpreter, writes what plastix's SD-SNN loaders hold, and the PyTorch
script codes it to spikes with torch's own generator.  The samples are exactly the ones plastix trains and
tests on:

* ``digits``: scikit-learn's 8 x 8 digits (pixel values 0..16), plastix's fixed split (of each digit the last
  20 % in file order is test: 1,438 train / 359 test; :mod:`plastix.datasets.digits`);
* ``fashion_mnist``: the IDX files plastix finds (``$PLASTIX_DATA_DIR`` or Debian's
  ``/usr/share/datasets/fashion-mnist``; pixel values 0..255), the published 60,000 / 10,000 split.

``--train-limit N`` / ``--test-limit N`` keep the first N samples of a split, the rule of ``plastix sdsnn
--train-limit / --test-limit`` (:func:`plastix.learning.sdsnn.load_frames`), which the PyTorch runs are
compared with.

The file holds, per split ``s`` in (train, test): ``s_images`` uint8 ``[n, C, H, W]``, ``s_labels`` int64,
``s_ids`` int64 (each sample's index in the source file), and ``vmax`` (the brightest pixel value: spike
probability per step = pixel / vmax), ``num_classes``, ``dataset``, ``description`` (a JSON string).

    PLASTIX_CACHE_DIR=$PWD/.plastix-cache .venv/bin/python benchmarks/peers/export_images.py \
        --dataset fashion_mnist --train-limit 6000 --test-limit 1000 --out fmnist.npz
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import plastix
from plastix import datasets

#: The data sets torch_sdsnn.py trains on.
DATASETS = ("digits", "fashion_mnist")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--train-limit", type=int, default=None, metavar="N",
                   help="keep the first N training samples (default all)")
    p.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="keep the first N test samples (default all)")
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    args = p.parse_args(argv)
    for name in ("train_limit", "test_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def export(dataset: str, train_limit: int | None, test_limit: int | None) -> dict:
    """The arrays of the .npz file (see the module text)."""
    frames = datasets.load(dataset, encoding="rate", redraw=True, steps=20)
    out = {}
    kept = {}
    for name, split, limit in (("train", frames.train, train_limit), ("test", frames.test, test_limit)):
        if limit is not None and limit > len(split):
            raise datasets.DatasetError(f"--{name}-limit must be in 1..{len(split)} (the {name} samples), got {limit}")
        keep = np.arange(len(split) if limit is None else limit)
        out[f"{name}_images"] = np.ascontiguousarray(split.images[keep])
        out[f"{name}_labels"] = np.asarray(split.labels[keep], np.int64)
        out[f"{name}_ids"] = np.asarray(split.sample_ids[keep], np.int64)
        kept[name] = f"{len(keep)} of {len(split)}"
        vmax = split.vmax
    info = {key: value for key, value in frames.info.items() if key in ("source", "split")}
    description = {**info, "dataset": dataset, "plastix": plastix.__version__, "samples": kept,
                   "subset": "the first N samples of each split (plastix sdsnn --train-limit / --test-limit)"}
    out.update(vmax=np.int64(vmax), num_classes=np.int64(frames.train.num_classes), dataset=np.str_(dataset),
               description=np.str_(json.dumps(description, default=str)))
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        arrays = export(args.dataset, args.train_limit, args.test_limit)
    except datasets.DatasetError as e:
        raise SystemExit(f"export_images.py: {e}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(args.out)
    print(f"{args.out}: {arrays['description']}")


if __name__ == "__main__":
    main()
