"""Plain-numpy reference simulator implementing ``docs/semantics.md``.

This module deliberately does not import plastix.  It is written for clarity: every
formula is evaluated in the operation order written in ``docs/semantics.md``, in the
network's floating-point dtype, so that plastix's compiled backends can be compared
against it (bit-for-bit on the CPU where the backend does not contract to FMA).

Public entry point: :func:`simulate`.

Conventions chosen where docs/semantics.md leaves room:

* Every parameter and state variable is cast to the dtype.  Python literals appearing
  in the equations (``1``, ``1000``, ``0.5``) are dtype scalars.
* Derived parameters (``alpha = exp(-dt/tau_m)``, ``gain = (1 - alpha) tau_m / C``, ``rho``,
  synaptic and trace decay factors) are computed in float64 from the *host* (Python) values
  of ``dt`` and the parameters, and then cast to the dtype.
* The time seen by model code in step ``s`` is ``t = dtype(s * dt)`` (product in float64
  on the host, then cast).
* Spikes emitted before ``start_step`` are unknown to the reference and treated as absent.
* ``conductance_lif`` uses the ``to_reset`` reset.
* Weight-update and postsynaptic model parameters have no documented defaults, so they
  are all required.
* Poisson uniforms come from the caller's numpy Generator (not Philox), so Poisson
  populations can only be compared statistically.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["simulate", "NEURON_MODELS", "NEURON_PARAM_DEFAULTS"]

_DTYPES = {"float32": np.float32, "float64": np.float64}

# --------------------------------------------------------------------------------------
# Defaults from docs/semantics.md
# --------------------------------------------------------------------------------------
_LIF_PARAMS = {"C": 1.0, "tau_m": 20.0, "v_rest": -70.0, "v_reset": -70.0,
               "v_thresh": -50.0, "tau_refrac": 2.0}
_COND_LIF_PARAMS = {"C": 20.0, "tau_m": 20.0, "v_rest": -70.0, "v_reset": -70.0,
                    "v_thresh": -54.0, "tau_refrac": 5.0}

NEURON_PARAM_DEFAULTS = {
    "lif": _LIF_PARAMS,
    "lif_subtract": _LIF_PARAMS,
    "conductance_lif": _COND_LIF_PARAMS,
    "alif": {"tau_m": 20.0, "tau_adapt": 2000.0, "v_thresh": 0.6, "beta": 0.0174,
             "tau_refrac": 5.0},
    "poisson": {},
    "spike_source_array": {},
    "leaky_integrator": {"tau_m": 20.0},
}
NEURON_MODELS = tuple(NEURON_PARAM_DEFAULTS)

# Float state variables and their defaults; a string default names a parameter.
_NEURON_VAR_DEFAULTS = {
    "lif": {"v": "v_rest", "refrac": 0.0, "i_offset": 0.0},
    "lif_subtract": {"v": "v_rest", "refrac": 0.0, "i_offset": 0.0},
    "conductance_lif": {"v": "v_rest", "refrac": 0.0, "i_offset": 0.0},
    "alif": {"v": 0.0, "a": 0.0, "refrac": 0.0},
    "poisson": {"rate": 0.0},
    "spike_source_array": {},  # start_spike / end_spike are built from spike_times
    "leaky_integrator": {"v": 0.0, "bias": 0.0},
}

# semantics.md gives no defaults for the weight-update and postsynaptic model parameters,
# so the reference requires all of them (a silent default could disagree with plastix).
_WU_PARAMS = {
    "static": (),
    "stdp_additive": ("tau_plus", "tau_minus", "a_plus", "a_minus", "w_min", "w_max"),
}
_PSM_PARAMS = {
    "delta": (),
    "exp_curr": ("tau",),
    "exp_cond": ("tau", "e_rev"),
}


def _checked_params(kind, model, given, required):
    given = dict(given or {})
    missing = [k for k in required if k not in given]
    extra = sorted(set(given) - set(required))
    if missing or extra:
        raise ValueError(f"{kind} {model!r}: missing params {missing}, unknown params {extra}")
    return given


# --------------------------------------------------------------------------------------
# Internal state containers
# --------------------------------------------------------------------------------------
class _Population:
    def __init__(self, name, spec, dt, dtype):
        model = spec["model"]
        params_in = dict(spec.get("params", {}))
        if model == "lif" and params_in.pop("reset", "to_reset") == "subtract":
            model = "lif_subtract"
        if model not in NEURON_PARAM_DEFAULTS:
            raise ValueError(f"unknown neuron model {model!r}")
        unknown = set(params_in) - set(NEURON_PARAM_DEFAULTS[model])
        if unknown:
            raise ValueError(f"{name}: unknown params {sorted(unknown)} for {model}")
        self.name = name
        self.model = model
        self.n = n = int(spec["n"])
        self.dtype = dtype

        host = {**NEURON_PARAM_DEFAULTS[model], **params_in}  # host (python) values
        # parameters in the dtype (scalars, or per-neuron arrays if given as arrays)
        self.p = {k: _cast(v, dtype) for k, v in host.items()}

        # derived parameters: float64 on the host, then cast
        self.d = {}
        if model in ("lif", "lif_subtract", "conductance_lif"):
            self.d["alpha"] = _cast(np.exp(-dt / np.asarray(host["tau_m"], np.float64)), dtype)
            a64 = np.exp(-dt / np.asarray(host["tau_m"], np.float64))
            self.d["gain"] = _cast((1.0 - a64) * np.asarray(host["tau_m"], np.float64)
                                   / np.asarray(host["C"], np.float64), dtype)
        elif model == "alif":
            self.d["alpha"] = _cast(np.exp(-dt / np.asarray(host["tau_m"], np.float64)), dtype)
            self.d["rho"] = _cast(np.exp(-dt / np.asarray(host["tau_adapt"], np.float64)), dtype)
        elif model == "leaky_integrator":
            self.d["alpha"] = _cast(np.exp(-dt / np.asarray(host["tau_m"], np.float64)), dtype)

        # state variables
        vars_in = dict(spec.get("vars", {}))
        self.vars = {}
        for var, default in _NEURON_VAR_DEFAULTS[model].items():
            if var in vars_in:
                value = vars_in.pop(var)
            elif isinstance(default, str):
                value = host[default]
            else:
                value = default
            self.vars[var] = _full(value, n, dtype)

        if model == "spike_source_array":
            times = spec.get("spike_times", [[] for _ in range(n)])
            if len(times) != n:
                raise ValueError(f"{name}: spike_times needs one array per neuron")
            flat, start, end = [], [], []
            for tlist in times:
                tarr = np.asarray(tlist, np.float64).ravel()
                if np.any(np.diff(tarr) < 0):
                    raise ValueError(f"{name}: spike_times must be sorted per neuron")
                start.append(len(flat))
                flat.extend(tarr.tolist())
                end.append(len(flat))
            self.spike_times = np.asarray(flat, np.float64).astype(dtype)
            self.vars["start_spike"] = np.asarray(vars_in.pop("start_spike", start), np.int64).copy()
            self.vars["end_spike"] = np.asarray(vars_in.pop("end_spike", end), np.int64).copy()
        if vars_in:
            raise ValueError(f"{name}: unknown vars {sorted(vars_in)} for {model}")

        self.incoming = []  # projections whose post is this population (creation order)
        self.outgoing = []  # projections whose pre is this population (creation order)
        self.spikes_by_step = {}  # step -> ascending int array of neurons that spiked


class _Projection:
    def __init__(self, spec, pops, dt, dtype):
        self.name = spec["name"]
        self.pre = pops[spec["pre"]]
        self.post = pops[spec["post"]]
        self.dtype = dtype
        self.ind = np.asarray(spec["ind"], np.int64)
        if self.ind.ndim != 2 or self.ind.shape[0] != self.pre.n:
            raise ValueError(f"{self.name}: ind must have shape [n_pre, row_stride]")
        self.row_length = np.asarray(spec["row_length"], np.int64).reshape(self.pre.n)
        n_pre, stride = self.ind.shape
        if np.any(self.row_length > stride) or np.any(self.row_length < 0):
            raise ValueError(f"{self.name}: row_length out of range")
        self.valid = np.arange(stride)[None, :] < self.row_length[:, None]
        if np.any((self.ind[self.valid] < 0) | (self.ind[self.valid] >= self.post.n)):
            raise ValueError(f"{self.name}: target index out of range")
        # rows whose targets are all distinct can be delivered with one fancy-indexed add
        # (each target receives exactly one addition from that row, so the per-target
        # order of additions equals the serial loop's).
        self.row_unique = np.array(
            [len(np.unique(self.ind[i, :self.row_length[i]])) == self.row_length[i]
             for i in range(n_pre)], dtype=bool)
        self.delay = int(spec.get("delay", 0))
        if self.delay < 0:
            raise ValueError(f"{self.name}: negative delay")

        # weight update model
        self.wu = spec.get("wu", "static")
        if self.wu not in _WU_PARAMS:
            raise ValueError(f"unknown weight update model {self.wu!r}")
        wu_host = _checked_params("weight update model", self.wu, spec.get("wu_params"),
                                  _WU_PARAMS[self.wu])
        self.wu_p = {k: _cast(v, dtype) for k, v in wu_host.items()}
        syn_in = spec.get("syn_vars", {})
        w = np.asarray(syn_in["w"], np.float64) if "w" in syn_in else np.zeros(self.ind.shape)
        self.syn_vars = {"w": np.broadcast_to(w, self.ind.shape).astype(dtype)}
        self.pre_vars, self.post_vars = {}, {}
        if self.wu == "stdp_additive":
            self.decay_x = _cast(math.exp(-dt / float(wu_host["tau_plus"])), dtype)
            self.decay_y = _cast(math.exp(-dt / float(wu_host["tau_minus"])), dtype)
            self.pre_vars["x"] = _full(spec.get("pre_vars", {}).get("x", 0.0), self.pre.n, dtype)
            self.post_vars["y"] = _full(spec.get("post_vars", {}).get("y", 0.0), self.post.n, dtype)

        # postsynaptic model
        self.psm = spec.get("psm", "delta")
        if self.psm not in _PSM_PARAMS:
            raise ValueError(f"unknown postsynaptic model {self.psm!r}")
        psm_host = _checked_params("postsynaptic model", self.psm, spec.get("psm_params"),
                                   _PSM_PARAMS[self.psm])
        self.psm_p = {k: _cast(v, dtype) for k, v in psm_host.items()}
        if self.psm in ("exp_curr", "exp_cond"):
            self.psm_decay = _cast(math.exp(-dt / float(psm_host["tau"])), dtype)
        if self.psm == "exp_cond" and "v" not in self.post.vars:
            raise ValueError(f"{self.name}: exp_cond needs a target with a voltage v")
        self.in_syn = _full(spec.get("in_syn", 0.0), self.post.n, dtype)


def _cast(value, dtype):
    """Host value -> dtype scalar (or dtype array if an array was given)."""
    arr = np.asarray(value, dtype=np.float64)
    return dtype(arr) if arr.ndim == 0 else arr.astype(dtype)


def _full(value, n, dtype):
    return np.broadcast_to(np.asarray(value, np.float64), (n,)).astype(dtype)


# --------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------
def _deliver_pre_spikes(proj, step):
    """Phase 2 for one projection: on_pre of every row whose neuron spiked at step-1-delay."""
    spiking = proj.pre.spikes_by_step.get(step - 1 - proj.delay)
    if spiking is None:
        return
    w = proj.syn_vars["w"]
    in_syn = proj.in_syn
    for i in spiking:  # ascending presynaptic index
        length = proj.row_length[i]
        targets = proj.ind[i, :length]
        w_row = w[i, :length]
        # add_to_post(w), slot order
        if proj.row_unique[i]:
            in_syn[targets] = in_syn[targets] + w_row
        else:
            for k in range(length):
                in_syn[targets[k]] = in_syn[targets[k]] + w_row[k]
        if proj.wu == "stdp_additive":
            p = proj.wu_p
            y = proj.post_vars["y"]
            # w = clip(w - a_minus y, w_min, w_max)  (after add_to_post, per synapse)
            w[i, :length] = np.minimum(np.maximum(w_row - p["a_minus"] * y[targets],
                                                  p["w_min"]), p["w_max"])


def _post_spikes(proj, step):
    """Phase 3 for one projection: on_post for incoming synapses of targets spiked at step-1."""
    if proj.wu != "stdp_additive":
        return
    spiking = proj.post.spikes_by_step.get(step - 1)
    if spiking is None or len(spiking) == 0:
        return
    spiked = np.zeros(proj.post.n, dtype=bool)
    spiked[spiking] = True
    # every (row i, slot k) whose target spiked; each synapse is updated independently,
    # so this elementwise form equals the column-view loop.
    mask = proj.valid & spiked[np.where(proj.valid, proj.ind, 0)]
    p = proj.wu_p
    w = proj.syn_vars["w"]
    x = proj.pre_vars["x"]
    candidate = w + (p["a_plus"] * x)[:, None]  # w + a_plus x
    candidate = np.minimum(np.maximum(candidate, p["w_min"]), p["w_max"])
    w[mask] = candidate[mask]


def _neuron_update(pop, step, t, dt_d, rng):
    """Phase 4 for one population.  Returns the ascending array of neurons spiking at ``step``."""
    dtype = pop.dtype
    zero, one = dtype(0), dtype(1)
    v_before = pop.vars.get("v")

    # 4.1 postsynaptic models (incoming projections in creation order)
    i_syn = np.zeros(pop.n, dtype)
    for proj in pop.incoming:
        if proj.psm == "delta":
            current = proj.in_syn.copy()
            proj.in_syn[:] = zero
        elif proj.psm == "exp_curr":
            current = proj.in_syn.copy()
            proj.in_syn[:] = proj.in_syn * proj.psm_decay
        else:  # exp_cond: in_syn (e_rev - v), v before this step's sim
            current = proj.in_syn * (proj.psm_p["e_rev"] - v_before)
            proj.in_syn[:] = proj.in_syn * proj.psm_decay
        i_syn = i_syn + current

    # 4.2 trace dynamics
    for proj in pop.outgoing:
        if proj.wu == "stdp_additive":
            proj.pre_vars["x"][:] = proj.pre_vars["x"] * proj.decay_x
    for proj in pop.incoming:
        if proj.wu == "stdp_additive":
            proj.post_vars["y"][:] = proj.post_vars["y"] * proj.decay_y

    # 4.3 sim, 4.4 threshold + reset
    p, d, var = pop.p, pop.d, pop.vars
    model = pop.model
    if model in ("lif", "lif_subtract", "conductance_lif"):
        v, refrac = var["v"], var["refrac"]
        in_refrac = refrac > zero
        v_new = (p["v_rest"] + d["alpha"] * (v - p["v_rest"])
                 + d["gain"] * (i_syn + var["i_offset"]))
        var["v"] = np.where(in_refrac, v, v_new).astype(dtype)
        var["refrac"] = np.where(in_refrac, refrac - dt_d, refrac).astype(dtype)
        spiked = (var["refrac"] <= zero) & (var["v"] >= p["v_thresh"])
        if model == "lif_subtract":
            var["v"] = np.where(spiked, var["v"] - (p["v_thresh"] - p["v_reset"]), var["v"]).astype(dtype)
        else:
            var["v"] = np.where(spiked, p["v_reset"], var["v"]).astype(dtype)
        var["refrac"] = np.where(spiked, p["tau_refrac"], var["refrac"]).astype(dtype)
    elif model == "alif":
        var["v"] = d["alpha"] * var["v"] + i_syn
        var["a"] = d["rho"] * var["a"]
        refrac = var["refrac"]
        var["refrac"] = np.where(refrac > zero, refrac - dt_d, refrac).astype(dtype)
        spiked = (var["refrac"] <= zero) & (var["v"] >= p["v_thresh"] + p["beta"] * var["a"])
        var["v"] = np.where(spiked, var["v"] - p["v_thresh"], var["v"]).astype(dtype)
        var["a"] = np.where(spiked, var["a"] + one, var["a"]).astype(dtype)
        var["refrac"] = np.where(spiked, p["tau_refrac"], var["refrac"]).astype(dtype)
    elif model == "leaky_integrator":
        var["v"] = d["alpha"] * var["v"] + i_syn + var["bias"]
        spiked = np.zeros(pop.n, dtype=bool)
    elif model == "poisson":
        u = rng.random(pop.n, dtype=dtype)
        spiked = u < var["rate"] * dt_d / dtype(1000)
    elif model == "spike_source_array":
        start, end = var["start_spike"], var["end_spike"]
        limit = t + dt_d / dtype(2)
        times = pop.spike_times
        spiked = np.zeros(pop.n, dtype=bool)
        if len(times):
            has = start < end
            first = times[np.minimum(start, len(times) - 1)]
            spiked = has & (first < limit)
            for j in np.flatnonzero(spiked):  # reset: skip every time < t + dt/2
                while start[j] < end[j] and times[start[j]] < limit:
                    start[j] += 1
    else:  # pragma: no cover
        raise AssertionError(model)

    spiking = np.flatnonzero(spiked)
    # pre_spike / post_spike trace code
    if len(spiking):
        for proj in pop.outgoing:
            if proj.wu == "stdp_additive":
                proj.pre_vars["x"][spiking] = proj.pre_vars["x"][spiking] + one
        for proj in pop.incoming:
            if proj.wu == "stdp_additive":
                proj.post_vars["y"][spiking] = proj.post_vars["y"][spiking] + one
    return spiking


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------
def simulate(populations, projections, steps, dt, precision="float32", start_step=0,
             rng=None, record=None):
    """Run ``steps`` time steps of the network described by plain data.

    Parameters
    ----------
    populations : dict name -> {"model", "n", "params", "vars", "spike_times"}
        ``model`` is one of :data:`NEURON_MODELS` (``"lif"`` also accepts
        ``params={"reset": "subtract"}``).  Missing params/vars use semantics.md defaults.
    projections : list of dict (creation order) with keys ``name, pre, post, ind
        [n_pre, row_stride], row_length [n_pre], wu ("static"|"stdp_additive"),
        wu_params, syn_vars {"w"}, pre_vars {"x"}, post_vars {"y"}, psm
        ("delta"|"exp_curr"|"exp_cond"), psm_params, delay`` (steps) and optionally
        ``in_syn`` (initial accumulator).
    steps, dt : number of steps and time step (ms).
    precision : "float32" or "float64".
    start_step : the first step's index ``s`` (``t = s * dt``).  Spikes before it are
        treated as absent.
    rng : numpy Generator used by Poisson populations (default ``default_rng(0)``).
    record : list of ``(name, var)``; ``name`` is a population (any of its vars) or a
        projection (``"in_syn"`` or one of its pre/post trace names).  The value after
        each step's neuron update is returned in ``result["var_trace"][name][var]`` as an
        array ``[steps, n]``.

    Returns
    -------
    dict with ``spikes`` {pop: (step_array, neuron_array)} in emission order,
    ``vars`` {pop: {var: array}}, ``syn_vars`` {proj: {"w": [n_pre, row_stride]}},
    ``pre_vars`` / ``post_vars`` {proj: {...}}, ``in_syn`` {proj: array} and
    ``var_trace`` (empty unless ``record`` is given).
    """
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {sorted(_DTYPES)}")
    dtype = _DTYPES[precision]
    dt = float(dt)
    dt_d = dtype(dt)
    rng = np.random.default_rng(0) if rng is None else rng

    pops = {name: _Population(name, spec, dt, dtype) for name, spec in populations.items()}
    projs = []
    for spec in projections:
        proj = _Projection(spec, pops, dt, dtype)
        if any(p.name == proj.name for p in projs):
            raise ValueError(f"duplicate projection name {proj.name!r}")
        projs.append(proj)
        proj.pre.outgoing.append(proj)
        proj.post.incoming.append(proj)
    proj_by_name = {p.name: p for p in projs}

    record = list(record or [])
    traces = {}
    for name, var in record:
        if name not in pops and name not in proj_by_name:
            raise ValueError(f"cannot record unknown population/projection {name!r}")
        traces.setdefault(name, {})[var] = []

    def _lookup(name, var):
        if name in pops:
            return pops[name].vars[var]
        proj = proj_by_name[name]
        if var == "in_syn":
            return proj.in_syn
        if var in proj.pre_vars:
            return proj.pre_vars[var]
        return proj.post_vars[var]

    # The full spike history is kept (it is also the spike output), so any delay works.
    for k in range(steps):
        s = start_step + k
        t = dtype(s * dt)
        # 1. synapse dynamics: none of the built-in weight-update models has any.
        # 2. presynaptic spikes, projections in creation order
        for proj in projs:
            _deliver_pre_spikes(proj, s)
        # 3. postsynaptic spikes
        for proj in projs:
            _post_spikes(proj, s)
        # 4. neuron update, per population
        for pop in pops.values():
            pop.spikes_by_step[s] = _neuron_update(pop, s, t, dt_d, rng)
        for name, vars_ in traces.items():
            for var, rows in vars_.items():
                rows.append(_lookup(name, var).copy())

    spikes = {}
    for name, pop in pops.items():
        st, nr = [], []
        for s in range(start_step, start_step + steps):
            idx = pop.spikes_by_step[s]
            st.append(np.full(len(idx), s, np.int64))
            nr.append(np.asarray(idx, np.int64))
        spikes[name] = (np.concatenate(st) if st else np.zeros(0, np.int64),
                        np.concatenate(nr) if nr else np.zeros(0, np.int64))

    return {
        "spikes": spikes,
        "vars": {name: {k: v.copy() for k, v in pop.vars.items()} for name, pop in pops.items()},
        "syn_vars": {p.name: {k: v.copy() for k, v in p.syn_vars.items()} for p in projs},
        "pre_vars": {p.name: {k: v.copy() for k, v in p.pre_vars.items()} for p in projs},
        "post_vars": {p.name: {k: v.copy() for k, v in p.post_vars.items()} for p in projs},
        "in_syn": {p.name: p.in_syn.copy() for p in projs},
        "var_trace": {name: {var: (np.array(rows) if rows else np.zeros((0, 0)))
                             for var, rows in vars_.items()}
                      for name, vars_ in traces.items()},
    }
