"""The Bamford, Murray & Willshaw (2010) topographic-map model, built with plastix's public API.

Two square grids of side ``16 s`` with periodic boundaries: a Poisson *source* grid driven by a moving,
spatially correlated stimulus (or an uncorrelated control) and a conductance-based LIF *target* grid;
feedforward (source -> target) and lateral (target -> target) excitatory projections with Gaussian
initial connectivity, additive all-to-all STDP, and structural plasticity: every rewiring step, random
(pre, post) attempts either eliminate an existing synapse (more likely if it is weak) or form a missing
one with the Gaussian formation probability of its (periodic) distance (an attempt picks one of s_max
slots: occupied -> elimination attempt, empty -> formation attempt).  Parameters: REFERENCE.md
section 3; units ms, mV, nF, µS, Hz.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..model import connectivity as connect
from ..model import neurons, postsynaptic, weight_update
from ..model.network import Network
from ..model.specs import ConnectivityUpdateModel, NeuronModel, Var


@dataclass(frozen=True)
class TopomapParams:
    scale: int = 1
    dt: float = 0.1  # ms
    # stimulus
    correlated: bool = True
    base_rate: float = 5.0  # Hz
    peak_rate: float = 152.8  # Hz
    stim_sigma: float = 2.0  # grid units
    stim_period: float = 20.0  # ms between stimulus jumps
    uncorrelated_rate: float = 20.0  # Hz
    # target neurons
    c: float = 20.0  # nF
    tau_m: float = 20.0
    v_rest: float = -70.0
    v_thresh: float = -54.0
    tau_refrac: float = 5.0
    tau_syn: float = 5.0  # ms
    e_rev: float = 0.0  # mV
    # connectivity
    ff_p_peak: float = 0.16
    ff_sigma: float = 2.5
    lat_p_peak: float = 1.0
    lat_sigma: float = 1.0
    max_row_length: int = 64
    g_max: float = 0.2  # µS
    # STDP
    tau_plus: float = 20.0
    tau_minus: float = 64.0
    # rewiring
    rewire_every_ms: float = 1.0
    attempts_per_scale2: float = 10.0  # attempts per projection per rewiring step, times s^2
    p_elim_dep: float = 0.0245
    p_elim_pot: float = 1.36e-4
    s_max: int = 32  # synapse slots per neuron an attempt draws from (occupied: elimination, empty: formation)
    fan_in_cap: int | None = None  # Bamford's fan-in cap (his s_max, 32); None: no cap
    seed: int = 1

    @property
    def side(self) -> int:
        return 16 * self.scale

    def to_dict(self) -> dict:
        return asdict(self)


def _stimulus_sim(n, p, g, t, dt, rng):
    # the stimulus jumps every stim_period ms to the next scheduled grid point (an extra global array, so
    # rates change inside the compiled loop without any Python call).  Spikes come from exponential
    # inter-spike intervals, redrawn when the rate changes (memoryless): random numbers are drawn per
    # spike and per stimulus jump instead of per neuron and step.
    if t >= n.next_jump:  # hot path: one comparison per neuron and step
        k = int(t / p.stim_period + 0.5 * dt / p.stim_period)
        n.next_jump = (k + 1) * p.stim_period - 0.5 * dt
        if k >= len(g.stim_row):
            k = len(g.stim_row) - 1
        # distance within the 16 x 16 tile (the stimulus is tiled for scales > 1), periodic
        dr = abs(n.row % p.tile - g.stim_row[k])
        dc = abs(n.col % p.tile - g.stim_col[k])
        dr = min(dr, p.tile - dr)
        dc = min(dc, p.tile - dc)
        n.rate = p.base_rate + p.peak_rate * exp(-(dr * dr + dc * dc) / (2.0 * p.sigma * p.sigma))  # noqa: F821
        n.next_spike = t - 1000.0 * log(1.0 - rng.uniform()) / n.rate  # noqa: F821


def _stimulus_threshold(n, t, dt):
    return n.next_spike < t + 0.5 * dt


def _stimulus_reset(n, t, rng):
    n.next_spike = n.next_spike - 1000.0 * log(1.0 - rng.uniform()) / n.rate  # noqa: F821
    if n.next_spike < t:
        n.next_spike = t  # several intervals inside one step make one spike


def stimulus_poisson(params: TopomapParams) -> NeuronModel:
    """Poisson neurons on a grid whose rate (Hz) follows a Gaussian blob around the current stimulus
    point (grid units), which jumps every ``stim_period`` ms along a schedule set with ``set_egp``."""
    return NeuronModel(
        name="stimulus_poisson",
        params={"base_rate": params.base_rate, "peak_rate": params.peak_rate, "sigma": params.stim_sigma,
                "stim_period": params.stim_period, "tile": 16.0},
        vars={"row": 0.0, "col": 0.0, "rate": 0.0, "next_spike": 0.0, "next_jump": -1.0},
        egps=("stim_row", "stim_col"), sim=_stimulus_sim, threshold=_stimulus_threshold, reset=_stimulus_reset)


def _choose_rows(rows, p, rng):
    # global phase: spread exactly p.attempts attempts over uniformly random rows, so that the row phase
    # draws random numbers only in the few rows that rewire this step.  A partitioned simulation lists each
    # row's part on every rank (rows.parts of them, rank-major): every part of a chosen row makes the attempt
    rows.attempts = 0
    n = rows.count // rows.parts
    picks = (rng.uniform(int(p.attempts)) * n).astype(np.int64)
    for r in picks:
        row = min(r, n - 1)
        for k in range(rows.parts):
            rows.attempts[k * n + row] += 1


def _bamford_rewire(row, p, rng):
    # An attempt draws one of s_max synapse slots (as in Bamford et al. 2010 and SpiNNaker's version of
    # it): an occupied slot (the row's synapses in ascending target order) is an elimination attempt (weak
    # synapses are far more likely to go), an empty one a formation attempt to a random target with the
    # Gaussian probability of their periodic distance.  Turnover therefore balances where occupied / empty
    # slots = p_form / p_elim.
    # On a partitioned simulation every rank's part of the row makes the same attempts with the same random
    # numbers (keyed by the row): the occupied slots are the whole row's (row.total_length), the part holds
    # slots [row.offset, row.offset + row.length), and only the rank owning a formation's target forms it
    # (row.owns), so each attempt acts on one rank, as in one process (docs/mpi.md).
    for _ in range(row.attempts):
        slot = int(rng.uniform() * p.s_max)
        if slot < row.total_length:
            u = rng.uniform()  # drawn on every rank: the row's later draws stay the same on all of them
            k = slot - row.offset
            if k >= 0 and k < row.length:
                # occupied slot `slot` holds the row's slot-th smallest target: an order that, unlike the
                # row's storage order, is the same in one process and on a partition's ranks
                tj = -1
                for _ in range(k + 1):
                    nxt = row.num_post
                    for s in row.synapses:
                        if s.j > tj and s.j < nxt:
                            nxt = s.j
                    tj = nxt
                for s in row.synapses:
                    if s.j == tj:
                        p_elim = p.p_elim_dep if s.weight < 0.5 * p.g_max else p.p_elim_pot
                        if u < p_elim:
                            s.remove()
                        break
        else:
            j = int(rng.uniform() * row.num_post)
            if j >= row.num_post:
                j = row.num_post - 1
            # pre position mapped onto the post grid, periodic squared distance to j (integer division:
            # params are floats, and float // and % cost a libm call each)
            pre_side = int(p.pre_side)
            post_side = int(p.post_side)
            pr = (row.index // pre_side) * p.post_side / p.pre_side
            pc = (row.index % pre_side) * p.post_side / p.pre_side
            dr = abs(pr - j // post_side)
            dc = abs(pc - j % post_side)
            dr = min(dr, p.post_side - dr)
            dc = min(dc, p.post_side - dc)
            p_form = p.p_peak * exp(-(dr * dr + dc * dc) / (2.0 * p.sigma * p.sigma))  # noqa: F821
            # the formation draw comes before the look-up of j in the row: most random pairs are far apart
            # and rejected here, so the row's synapses are only read for the few accepted ones (the same
            # probabilities: form with p_form if j is not yet a target)
            if rng.uniform() < p_form and row.owns(j) and (p.fan_in_cap <= 0 or row.in_degree(j) < p.fan_in_cap):
                found = False
                for s in row.synapses:
                    if s.j == j:
                        found = True
                        break
                if not found:
                    ok = row.add(j, weight=p.g_max)
                    row.failed += 0 if ok else 1


def bamford_rewiring(params: TopomapParams, p_peak: float, sigma: float, pre_side: int, post_side: int,
                     attempts: float, n_pre: int) -> ConnectivityUpdateModel:
    """Distance-dependent formation and weight-dependent elimination by random attempts (see the row code)."""
    return ConnectivityUpdateModel(
        name="bamford_rewiring",
        params={"attempts": attempts, "p_peak": p_peak, "sigma": sigma,
                "pre_side": pre_side, "post_side": post_side, "g_max": params.g_max,
                "p_elim_dep": params.p_elim_dep, "p_elim_pot": params.p_elim_pot, "s_max": params.s_max,
                "fan_in_cap": params.fan_in_cap or 0},
        row_vars={"failed": Var(0, "int64"), "attempts": Var(0, "int32")}, var_refs=("weight",),
        row_update=_bamford_rewire, global_update=_choose_rows, active_if="attempts",
        doc=bamford_rewiring.__doc__)


def build(params: TopomapParams, *, projections: bool = True, plasticity: bool = True,
          rewiring: bool = True) -> Network:
    """The network (call :func:`stimulus_schedule` and ``Simulation.set_egp`` to drive it).  The switches
    drop parts of it for ablation timing (the time breakdown of ``plastix topomap``)."""
    side = params.side
    n = side * side
    net = Network(dt=params.dt, seed=params.seed)
    pos = connect.grid_positions((side, side))
    rng = np.random.default_rng(params.seed + 1000)
    if params.correlated:
        src = net.add_population("source", n, stimulus_poisson(params), init={"row": pos[:, 0], "col": pos[:, 1]})
    else:
        src = net.add_population("source", n, neurons.poisson(), init={"rate": params.uncorrelated_rate})
    tgt = net.add_population(
        "target", n,
        neurons.conductance_lif(C=params.c, tau_m=params.tau_m, v_rest=params.v_rest, v_reset=params.v_rest,
                                v_thresh=params.v_thresh, tau_refrac=params.tau_refrac),
        init={"v": rng.normal(-60.0, 5.0, n)})
    a_plus = 0.1 * params.g_max
    a_minus = 1.2 * a_plus * params.tau_plus / params.tau_minus
    attempts = params.attempts_per_scale2 * params.scale ** 2
    every = max(1, int(round(params.rewire_every_ms / params.dt)))
    for name, pre, p_peak, sigma in (("ff", src, params.ff_p_peak, params.ff_sigma),
                                     ("lat", tgt, params.lat_p_peak, params.lat_sigma)):
        if not projections:
            break
        stdp = weight_update.stdp_additive(tau_plus=params.tau_plus, tau_minus=params.tau_minus, a_plus=a_plus,
                                           a_minus=a_minus, w_min=0.0, w_max=params.g_max)
        if not plasticity:
            stdp = weight_update.static()
        proj = net.add_projection(
            name, pre, tgt, connectivity=connect.GaussianGrid2D(p_peak, sigma, allow_self=name != "lat"),
            weight_update=stdp, postsynaptic=postsynaptic.exp_cond(tau=params.tau_syn, e_rev=params.e_rev),
            init={"w": params.g_max}, row_stride=params.max_row_length)
        if not rewiring:
            continue
        rule = bamford_rewiring(params, p_peak, sigma, side, side, attempts, n)
        net.add_connectivity_update(f"rewire_{name}", proj, rule, var_refs={"weight": "w"}, every=every)
    return net


def stimulus_schedule(params: TopomapParams, duration_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus points (row, col within a 16 x 16 tile) for every period of the run."""
    blocks = int(math.ceil(duration_ms / params.stim_period)) + 1
    rng = np.random.default_rng(params.seed + 2000)
    return rng.integers(0, 16, blocks).astype(float), rng.integers(0, 16, blocks).astype(float)
