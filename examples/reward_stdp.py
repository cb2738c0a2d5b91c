"""Reward-modulated STDP with eligibility traces (Izhikevich 2007), written as plastix models in this file.

Three factors.  (1) Pre- and postsynaptic traces ``x`` and ``y`` pair spikes as in STDP.  (2) Instead of
changing the weight, each pairing is added to a per-synapse *eligibility trace* ``c`` that decays with
``tau_c`` (about a second: it remembers which synapses took part in what the network just did).  (3) A
global reward ``r`` arrives later and turns eligibility into weight change, ``dw = r c``.

The task: random Poisson inputs drive a few LIF output neurons through all-to-all plastic synapses.  One
output is the *target*: a trial is rewarded by how many more spikes it fired than the other outputs did on
average, minus the batch mean of that number (a reward prediction error: better or worse than the batch's
typical trial).  Nothing tells a synapse which neuron is the target; only the reward, correlated over
trials with its own eligibility, does.  The target's input weights grow and the other outputs' shrink: the
target comes to fire most.  A control run with the same inputs hands each batch's rewards to its trials in
shuffled order: same rewards, no link to the eligibility, no learning.

Batched: ``Simulation(net, batch_size=B)`` runs B trials side by side, each with its own inputs, neuron
state, traces and eligibility; the weights are one copy for the batch.  After each batch the custom-update
group "reward" runs two updates in declaration order: ``dw = sum_b r_b c_b`` (a reduction over the batch
into a shared per-synapse variable), then ``w = clip(w + lr dw, w_min, w_max)``.

    pip install -e . && python examples/reward_stdp.py --out out/reward_stdp
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

import plastix as px

VA = px.VarAccess


# -- (1) + (2): the synapse: STDP pairings feed a decaying eligibility trace, not the weight ----------------
def decay_eligibility(s, p):
    """Every synapse, every step: the eligibility trace forgets with tau_c."""
    s.c = s.c * p.decay_c


def on_pre(s, p, post):
    """A presynaptic spike: transmit, and depress eligibility by the postsynaptic trace (post before pre)."""
    add_to_post(s.w)  # noqa: F821 - provided by the engine
    s.c -= p.a_minus * post.y


def on_post(s, p, pre):
    """A postsynaptic spike: potentiate eligibility by the presynaptic trace (pre before post)."""
    s.c += p.a_plus * pre.x


def decay_pre_trace(pre, p):
    pre.x = pre.x * p.decay_plus


def bump_pre_trace(pre):
    pre.x += 1.0


def decay_post_trace(post, p):
    post.y = post.y * p.decay_minus


def bump_post_trace(post):
    post.y += 1.0


def eligibility_stdp(tau_plus: float = 20.0, tau_minus: float = 20.0, a_plus: float = 1.0, a_minus: float = 1.0,
                     tau_c: float = 1000.0) -> px.WeightUpdateModel:
    """Synapse with shared weight ``w`` (nA) and per-trial eligibility ``c``; time constants in ms, ``a_plus``
    and ``a_minus`` in units of eligibility per pairing."""
    return px.WeightUpdateModel(
        name="eligibility_stdp",
        params={"tau_plus": tau_plus, "tau_minus": tau_minus, "a_plus": a_plus, "a_minus": a_minus, "tau_c": tau_c},
        # per-step decay factors, computed once on the host
        derived={"decay_plus": lambda p, dt: math.exp(-dt / p["tau_plus"]),
                 "decay_minus": lambda p, dt: math.exp(-dt / p["tau_minus"]),
                 "decay_c": lambda p, dt: math.exp(-dt / p["tau_c"])},
        # w: one copy shared by the batch (the default for synapse variables); c: one copy per batch element
        vars={"w": 0.0, "c": px.Var(0.0, access=VA.READ_WRITE, doc="eligibility trace")},
        pre_vars={"x": 0.0}, post_vars={"y": 0.0},
        dynamics=decay_eligibility, on_pre=on_pre, on_post=on_post,
        pre_dynamics=decay_pre_trace, pre_spike=bump_pre_trace,
        post_dynamics=decay_post_trace, post_spike=bump_post_trace)


# -- (3): the reward, as two custom updates run one after the other ----------------------------------------
def reward_times_eligibility(u):
    """Per synapse and batch element; the assignment to a REDUCE_SUM variable sums over the batch."""
    u.dw = u.r * u.c


REWARD = px.CustomUpdateModel(
    name="reward_times_eligibility",
    var_refs={"c": VA.READ_ONLY},
    vars={"dw": px.Var(0.0, access=VA.REDUCE_SUM, doc="sum over the batch of r_b c_b")},
    global_vars={"r": px.Var(0.0, access=VA.READ_ONLY_DUPLICATE, doc="reward of each batch element")},
    update=reward_times_eligibility)


def apply_clipped(u, p):
    u.w = min(max(u.w + p.lr * u.dw, p.w_min), p.w_max)


APPLY = px.CustomUpdateModel(name="apply_clipped", params={"lr": 1e-3, "w_min": 0.0, "w_max": 1.0},
                             var_refs={"w": VA.READ_WRITE, "dw": VA.READ_ONLY}, update=apply_clipped)


# -- the network and the task ---------------------------------------------------------------------------
def build(n_in: int = 50, n_out: int = 4, lr: float = 5e-3, w_init: tuple[float, float] = (0.15, 0.35),
          w_max: float = 0.7, tau_c: float = 1000.0, seed: int = 1, precision: str = "float64") -> px.Network:
    """Inputs "inp" (spike sources) -> outputs "out" (LIF) through R-STDP synapses "in_out"; the update
    group "reward" turns the batch's rewards and eligibilities into a weight change.  Weights in nA."""
    net = px.Network(dt=1.0, seed=seed, precision=precision)
    net.add_population("inp", n_in, px.neurons.spike_source_array())
    net.add_population("out", n_out, px.neurons.lif())
    net.add_projection("in_out", "inp", "out", connectivity=px.connect.AllToAll(),
                       weight_update=eligibility_stdp(tau_c=tau_c), postsynaptic=px.postsynaptic.exp_curr(5.0),
                       init={"w": px.init.Uniform(*w_init)})
    net.add_custom_update("gate", "in_out", REWARD, group="reward")
    net.add_custom_update("apply", "in_out", APPLY, var_refs={"dw": "gate.dw"},
                          params={"lr": lr, "w_min": 0.0, "w_max": w_max}, group="reward")
    return net


#: per-element state a trial starts from (the weights carry over from trial to trial)
TRIAL_START = {("out", "v"): -70.0, ("out", "refrac"): 0.0, ("in_out", "in_syn"): 0.0,
               ("in_out", "x"): 0.0, ("in_out", "y"): 0.0, ("in_out", "c"): 0.0}


def poisson_trains(rng: np.random.Generator, batch: int, n_in: int, rate_hz: float,
                   trial_ms: int) -> list[list[np.ndarray]]:
    """Per batch element, per input: sorted spike times (ms from the trial start) of a Poisson train on whole
    milliseconds in [0, trial_ms - 1).  The trial's last step stays silent so that no input spike is still in flight
    (delivered one step after it is emitted) when the next trial starts."""
    p = rate_hz * 1e-3
    return [[np.flatnonzero(rng.random(trial_ms - 1) < p).astype(np.float64) for _ in range(n_in)]
            for _ in range(batch)]


def start_trial(sim: px.Simulation, trains: list[list[np.ndarray]]) -> float:
    """Reset every batch element's neurons, traces and eligibility; give each its input trains (times
    relative to the trial start, ms).  Returns the trial's start time (ms)."""
    for (group, var), value in TRIAL_START.items():
        sim.set(group, var, value)
    t0 = sim.t
    shifted = [[t0 + t for t in elem] for elem in trains]
    sim.set_spike_times("inp", shifted if sim.batch_size > 1 else shifted[0])  # unbatched: one element's trains
    return t0


def spike_counts(sim: px.Simulation, t0: float) -> np.ndarray:
    """[batch, outputs] spikes of "out" since time t0 (ms)."""
    t, i, b = sim.spikes("out") if sim.batch_size > 1 else (*sim.spikes("out"), None)
    keep = t >= t0
    counts = np.zeros((sim.batch_size, sim.network.populations["out"].size), np.int64)
    np.add.at(counts, (0 if b is None else b[keep], i[keep]), 1)
    return counts


def trial_rewards(counts: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """(performance, reward) per trial from [batch, outputs] spike counts: performance is the target's
    count minus the mean of the others'; the reward is performance minus its batch mean (a baseline that
    makes the reward a prediction error: better or worse than the batch's typical trial)."""
    others = np.arange(counts.shape[1]) != target
    performance = counts[:, target] - counts[:, others].mean(axis=1)
    return performance, performance - performance.mean()


def reward(sim: px.Simulation, rewards: np.ndarray) -> None:
    """Give every batch element its reward and run the group "reward": dw = sum_b r_b c_b, then w += lr dw."""
    sim.set("gate", "r", rewards)
    sim.custom_update("reward")


def train(sim: px.Simulation, updates: int, *, target: int = 0, rate_hz: float = 20.0, trial_ms: int = 200,
          seed: int = 0, shuffle_rewards: bool = False, progress: bool = False) -> dict:
    """Run ``updates`` batches of trials, rewarding each batch and updating the weights after it.

    ``shuffle_rewards`` is the control: each batch's rewards are handed to its trials in a random order,
    which keeps their distribution but breaks their link to what each trial's synapses did.  Returns, per
    update, the mean weight onto each output (nA), the outputs' batch-mean spike counts and the batch's
    mean performance (target minus others, spikes per trial)."""
    from tqdm.auto import tqdm

    if sim.batch_size < 2:
        raise ValueError(f"the reward's baseline is the batch mean: batch_size must be >= 2, got {sim.batch_size}")
    rng = np.random.default_rng(seed)  # the inputs: the same with and without shuffled rewards
    shuffler = np.random.default_rng([seed, 1])
    n_in, n_out = sim.network.populations["inp"].size, sim.network.populations["out"].size
    _, post = sim.connectivity("in_out")
    sim.record_spikes("out")
    history = {"mean_w": [], "counts": [], "performance": []}
    for _ in tqdm(range(updates), desc="batches", disable=not progress):
        t0 = start_trial(sim, poisson_trains(rng, sim.batch_size, n_in, rate_hz, trial_ms))
        sim.run(trial_ms)
        counts = spike_counts(sim, t0)
        performance, rewards = trial_rewards(counts, target)
        reward(sim, shuffler.permutation(rewards) if shuffle_rewards else rewards)
        w = sim.get("in_out", "w")
        history["mean_w"].append(np.bincount(post, weights=w, minlength=n_out) / np.bincount(post, minlength=n_out))
        history["counts"].append(counts.mean(axis=0))
        history["performance"].append(performance.mean())
    return {k: np.asarray(v) for k, v in history.items()}


def plot(runs: dict, post: np.ndarray, target: int, batch: int, path: Path) -> None:
    """``runs``: name -> {"history", "w0", "w1"}; the first run is drawn solid, the others dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (a_w, a_n), (a_p, a_h) = axes
    for r, (name, run) in enumerate(runs.items()):
        history = run["history"]
        trials = (np.arange(len(history["performance"])) + 1) * batch
        ls = "-" if r == 0 else "--"
        for k in range(history["mean_w"].shape[1]):
            label = None
            if k == target:
                label = f"target (output {k}), {name}"
            elif k == (1 if target == 0 else 0):
                label = f"other outputs, {name}"
            style = dict(lw=2.5, color="C3") if k == target else dict(lw=1.0, color="0.45")
            a_w.plot(trials, history["mean_w"][:, k], ls=ls, label=label, **style)
            a_n.plot(trials, history["counts"][:, k], ls=ls, **style)
        a_p.plot(trials, history["performance"], ls=ls, color="C0", label=name)
    a_w.set_ylabel("mean input weight (nA)")
    a_w.legend(fontsize=8)
    a_n.set_ylabel("spikes per trial (batch mean)")
    a_p.axhline(0.0, color="0.7", lw=0.8)
    a_p.set_ylabel("target - mean(others) (spikes per trial)")
    a_p.legend(fontsize=8)
    for ax in (a_w, a_n, a_p):
        ax.set_xlabel("trials")
    first = next(iter(runs.values()))
    w0, w1 = first["w0"], first["w1"]
    bins = np.linspace(0.0, max(w0.max(), w1.max()) * 1.02, 36)
    a_h.hist(w0, bins, color="0.85", label="all, initial")
    a_h.hist(w1[post != target], bins, color="0.4", alpha=0.8, label="onto other outputs, final")
    a_h.hist(w1[post == target], bins, color="C3", alpha=0.8, label="onto the target, final")
    a_h.set_xlabel(f"weight (nA), {next(iter(runs))}")
    a_h.set_ylabel("synapses")
    a_h.legend(fontsize=8)
    fig.suptitle(f"Reward-modulated STDP with eligibility traces: {batch} trials per weight update")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1600, help="trials in all (rounded up to whole batches)")
    ap.add_argument("--batch", type=int, default=16, help="trials simulated side by side per weight update (>= 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-control", action="store_true", help="skip the control run with shuffled rewards")
    ap.add_argument("--backend", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", type=Path, default=Path("out/reward_stdp"))
    args = ap.parse_args(argv)
    if args.trials < 1:
        ap.error(f"--trials must be >= 1, got {args.trials}")
    if args.batch < 2:
        ap.error(f"--batch must be >= 2 (the reward's baseline is the batch mean), got {args.batch}")
    updates = -(-args.trials // args.batch)
    target = 0
    variants = {"rewarded": False} if args.no_control else {"rewarded": False, "control: rewards shuffled": True}
    runs, summary = {}, {"trials": updates * args.batch, "batch": args.batch, "updates": updates,
                         "target": target, "seed": args.seed}
    for name, shuffled in variants.items():
        sim = px.Simulation(build(seed=args.seed), backend=args.backend, batch_size=args.batch)
        _, post = sim.connectivity("in_out")
        w0 = sim.get("in_out", "w")
        history = train(sim, updates, target=target, seed=args.seed, shuffle_rewards=shuffled, progress=True)
        w1 = sim.get("in_out", "w")
        runs[name] = {"history": history, "w0": w0, "w1": w1}
        tenth = max(1, updates // 10)

        def split(w):
            return {"target": float(w[post == target].mean()), "others": float(w[post != target].mean())}

        summary["backend"] = sim.backend.name
        summary[name] = {
            "mean_w_initial": split(w0), "mean_w_final": split(w1),
            "spikes_per_trial_first_tenth": history["counts"][:tenth].mean(axis=0).tolist(),
            "spikes_per_trial_last_tenth": history["counts"][-tenth:].mean(axis=0).tolist(),
            "performance_first_tenth": float(history["performance"][:tenth].mean()),
            "performance_last_tenth": float(history["performance"][-tenth:].mean()),
            "history": {k: v.tolist() for k, v in history.items()},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    plot(runs, post, target, args.batch, args.out / "reward_stdp.png")
    brief = {k: ({kk: vv for kk, vv in v.items() if kk != "history"} if isinstance(v, dict) else v)
             for k, v in summary.items()}
    print(json.dumps(brief, indent=2))
    return summary


if __name__ == "__main__":
    main()
