"""Training plots (PNG): accuracy curves, rewirings per batch, synapse counts per epoch."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _finish(fig, ax, path: Path) -> Path:
    """Grid, legend, layout; write ``path`` and close the figure."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(results: dict, out_dir) -> list[Path]:
    """Write ``accuracy.png``, ``rewirings.png`` (with DEEP R) and ``synapses.png`` to ``out_dir``."""
    out_dir = Path(out_dir)
    written = []
    epochs = results["epochs"]
    if not epochs:
        return written
    ep = [e["epoch"] for e in epochs]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [100 * e["train_accuracy"] for e in epochs], "o-", label="train")
    ax.plot(ep, [100 * e["test_accuracy"] for e in epochs], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, not 2.5
    ax.set_ylabel("accuracy (%)")
    c = results["config"]
    layers = c["num_hidden"] if isinstance(c["num_hidden"], list) else [c["num_hidden"]]
    ax.set_title(f"{results['dataset']['name']}: {'-'.join(map(str, layers))} {c['neuron'].upper()}, "
                 f"density in {c['input_density']:g} / rec {c['recurrent_density']:g}, {c['rewiring']}")
    written.append(_finish(fig, ax, out_dir / "accuracy.png"))

    per_batch = results.get("rewirings_per_batch", {})
    if any(per_batch.values()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for proj, counts in per_batch.items():
            syn = results["synapses_initial"][proj]
            ax.plot([100.0 * n / max(syn, 1) for n in counts], label=f"{proj} ({syn} synapses)")
        ax.set_xlabel("batch")
        ax.set_ylabel("synapses rewired per batch (%)")
        ax.set_yscale("symlog", linthresh=0.1)
        written.append(_finish(fig, ax, out_dir / "rewirings.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for proj, n0 in results["synapses_initial"].items():
        ax.plot([0] + ep, [n0] + [e["synapses"][proj] for e in epochs], "o-", label=proj)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, not 2.5
    ax.set_ylabel("active synapses")
    written.append(_finish(fig, ax, out_dir / "synapses.png"))
    return written
