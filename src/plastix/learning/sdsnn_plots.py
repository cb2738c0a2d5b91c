"""Plots of an SD-SNN run (results.json of :class:`~plastix.learning.sdsnn.SDSNNTrainer`): test accuracy,
compression per layer, surviving neurons per layer, synapses and time per epoch."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(results: dict, path: str, baseline: dict | None = None) -> None:
    """Five panels over epochs; ``baseline``: an unpruned run's results drawn beside (accuracy, time)."""
    ep = results["epochs"]
    if not ep:
        return
    x = [e["epoch"] for e in ep]
    fig, axes = plt.subplots(1, 5, figsize=(22, 4))
    mode = results["settings"]["mode"]
    ax = axes[0]
    ax.plot(x, [100 * e["test_accuracy"] for e in ep], "o-", label=f"SD-SNN ({mode})")
    if baseline is not None:
        be = baseline["epochs"]
        ax.plot([e["epoch"] for e in be], [100 * e["test_accuracy"] for e in be], "s--", label="unpruned")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    ax.legend()
    ax = axes[1]
    for name in ep[-1]["compression"]:
        ax.plot(x, [100 * e["compression"].get(name, 0.0) for e in ep], label=name)
    ax.set(xlabel="epoch", ylabel="weights removed (%)", title="compression per layer")
    ax.legend()
    ax = axes[2]
    for name in ep[-1]["neurons"]:
        ax.plot(x, [e["neurons"][name] for e in ep], label=name)
    ax.set(xlabel="epoch", ylabel="neurons / channels alive", title="surviving units")
    ax.legend()
    ax = axes[3]
    for name in ep[-1]["synapses"]:
        ax.plot(x, [e["synapses"][name] for e in ep], label=name)
    ax.set(xlabel="epoch", ylabel="synapses", yscale="log", title="synapses per projection")
    ax.legend()
    ax = axes[4]
    ax.plot(x, [e["epoch_s"] for e in ep], "o-", label=mode)
    if baseline is not None:
        be = baseline["epochs"]
        ax.plot([e["epoch"] for e in be], [e["epoch_s"] for e in be], "s--", label="unpruned")
    ax.set(xlabel="epoch", ylabel="s (training, compilation excluded)", title="time per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
