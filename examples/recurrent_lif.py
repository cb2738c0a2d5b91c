"""Recurrent LIF network driven by Poisson input: simulate 1 s, save a spike raster (PNG), the
population rate and a JSON summary.

    pip install -e . && python examples/recurrent_lif.py --out out/recurrent_lif
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import plastix as px


def build(n_exc: int = 800, n_inh: int = 200, seed: int = 1) -> px.Network:
    net = px.Network(dt=1.0, seed=seed)
    lif = px.neurons.lif(v_rest=0.0, v_reset=0.0, v_thresh=20.0, tau_refrac=2.0)
    drive = net.add_population("drive", 200, px.neurons.poisson(), init={"rate": 20.0})  # Hz
    exc = net.add_population("exc", n_exc, lif, init={"v": px.init.Uniform(0, 20), "i_offset": 0.6})  # nA
    inh = net.add_population("inh", n_inh, lif, init={"v": px.init.Uniform(0, 20), "i_offset": 0.6})
    fast = px.postsynaptic.exp_curr(tau=5.0)
    net.add_projection("drive_exc", drive, exc, connectivity=px.connect.FixedProbability(0.1), init={"w": 0.6},
                       postsynaptic=fast)
    net.add_projection("drive_inh", drive, inh, connectivity=px.connect.FixedProbability(0.1), init={"w": 0.6},
                       postsynaptic=fast)
    for name, pre, w in (("exc_exc", exc, 0.08), ("exc_inh", exc, 0.08), ("inh_exc", inh, -0.4),
                         ("inh_inh", inh, -0.4)):
        post = exc if name.endswith("exc") else inh
        net.add_projection(name, pre, post, connectivity=px.connect.FixedProbability(0.1), init={"w": w},
                           postsynaptic=fast, delay=1)
    return net


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="1 ms steps (default 1000)")
    ap.add_argument("--backend", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", type=Path, default=Path("out/recurrent_lif"))
    args = ap.parse_args(argv)
    net = build()
    sim = px.Simulation(net, backend=args.backend)
    for pop in ("exc", "inh"):
        sim.record_spikes(pop)
    sim.run(args.steps, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = args.steps * net.dt / 1000
    summary = {"backend": sim.backend.name, "steps": args.steps,
               "rates_hz": {p: sim.spike_count(p) / net.populations[p].size / seconds for p in ("exc", "inh")}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    offset = 0
    for pop, colour in (("exc", "tab:blue"), ("inh", "tab:red")):
        t, i = sim.spikes(pop)
        ax1.scatter(t, i + offset, s=0.5, c=colour, label=f"{pop} ({summary['rates_hz'][pop]:.1f} Hz)")
        offset += net.populations[pop].size
        counts = np.bincount((t / 5).astype(int), minlength=args.steps // 5)
        ax2.plot(np.arange(counts.size) * 5, counts / net.populations[pop].size / 0.005, c=colour)
    ax1.set_ylabel("neuron")
    ax1.legend(loc="upper right", markerscale=10)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(args.out / "raster.png", dpi=120)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
