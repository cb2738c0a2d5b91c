"""Regenerate the README's pictures in ``docs/img/`` by running the commands the README shows.

Run from the repository root (about 5 minutes on 2 CPU cores)::

    .venv/bin/python docs/make_images.py            # runs both commands, then writes docs/img/*.png
    .venv/bin/python docs/make_images.py --reuse    # only re-encodes the figures already in out/

It runs the main job, ``plastix train`` with its defaults (figures in ``out/train/``), and the topographic map,
``plastix topomap --scale 1 --seconds 60 --out out/topomap``, and copies the figures the README
shows: ``accuracy.png`` (train and test accuracy per epoch) and ``maps.png`` (connection probability and mean
weight against displacement, initial and final), re-compressed (same pixels; about 40 and 110 kB).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from plastix.cli.main import main as plastix

ROOT = Path(__file__).resolve().parent.parent
TRAIN_OUT = ROOT / "out" / "train"
TOPOMAP_OUT = ROOT / "out" / "topomap"

#: (command line, figure it writes, file in docs/img/)
RUNS = (
    (["train", "--out", str(TRAIN_OUT)], TRAIN_OUT / "accuracy.png", "train_accuracy.png"),
    (["topomap", "--scale", "1", "--seconds", "60", "--out", str(TOPOMAP_OUT)],
     TOPOMAP_OUT / "maps.png", "topomap_maps.png"),
)


def small_png(src: Path, dst: Path) -> int:
    """Write ``src`` to ``dst`` with the same pixels, without alpha and compressed harder; returns its bytes."""
    with Image.open(src) as im:
        im.convert("RGB").save(dst, optimize=True)
    return dst.stat().st_size


def run(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reuse", action="store_true", help="skip the runs; re-encode the figures already in out/")
    args = p.parse_args(argv)
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    for command, figure, name in RUNS:
        if not args.reuse:
            print("plastix", " ".join(command), flush=True)
            plastix(command)
        print(f"docs/img/{name}: {small_png(figure, img / name) / 1e3:.0f} kB", flush=True)


if __name__ == "__main__":
    run()
