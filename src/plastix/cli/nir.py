"""``plastix export nir`` and ``plastix run nir``: NIR files from trained models, and NIR files run in plastix."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def add_export_arguments(p) -> None:
    p.add_argument("model", type=Path, help="training out_dir or its checkpoint folder (plastix train --out)")
    p.add_argument("out", type=Path, help="NIR file to write (.nir)")
    p.add_argument("--convention", choices=("exact", "euler"), default="exact",
                   help="time constants for exact integration at the model's dt (default), or for a forward-Euler "
                        "tool stepping at --dt-s")
    p.add_argument("--dt-s", type=float, default=None,
                   help="with --convention euler: the reading tool's step in seconds (snnTorch: 1e-4)")
    p.add_argument("--alif-as-lif", action="store_true",
                   help="write ALIF neurons as LIF without adaptation (NIR has no adaptive threshold)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def export(args) -> dict:
    from ..nir import export as write

    res = write(args.model, args.out, convention=args.convention, dt_s=args.dt_s, alif_as_lif=args.alif_as_lif)
    out = res.summary()
    out["nodes"] = ", ".join(out["nodes"])
    out["differences"] = " | ".join(out["differences"])
    return out


def add_run_arguments(p) -> None:
    p.add_argument("file", type=Path, help="NIR file")
    p.add_argument("--input", type=Path, required=True,
                   help=".npy with 0/1 spikes [steps, inputs] or [batch, steps, inputs] (single-input graphs)")
    p.add_argument("--dt", type=float, default=None,
                   help="time step in ms (default: the file's, when plastix wrote it; snnTorch files: 0.1)")
    p.add_argument("--integration", choices=("exact", "euler"), default=None,
                   help="how NIR time constants become a step (default: the file's convention, else euler)")
    p.add_argument("--no-metadata", action="store_true", help="ignore plastix's metadata (read the NIR nodes only)")
    p.add_argument("--out", type=Path, default=None, help="write every output to this .npz")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> dict:
    from ..nir import load

    model = load(args.file, dt=args.dt, integration=args.integration, metadata=not args.no_metadata)
    x = np.load(args.input)
    outputs = model.run(x)
    if args.out is not None:
        np.savez(args.out, **outputs)
    summary = {"file": str(args.file), "dt_ms": model.dt, "steps": int(np.shape(x)[-2]),
               "populations": ", ".join(model.network.populations)}
    for name, arr in outputs.items():
        pop, kind = model.outputs[name]
        if kind == "spikes":
            summary[f"{name}_spikes"] = int(arr.sum())
        else:
            summary[f"{name}_final_v"] = np.round(arr[..., -1, :], 6).tolist()
            summary[f"{name}_argmax_summed_v"] = np.argmax(arr.sum(axis=-2), axis=-1).tolist()
    if args.out is not None:
        summary["out"] = str(args.out)
    return summary


class Export:
    """``plastix export nir``: arguments and command (registered by :mod:`plastix.cli.main`)."""

    add_arguments = staticmethod(add_export_arguments)
    run = staticmethod(export)


class Run:
    """``plastix run nir``: arguments and command (registered by :mod:`plastix.cli.main`)."""

    add_arguments = staticmethod(add_run_arguments)
    run = staticmethod(run)
