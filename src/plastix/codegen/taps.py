"""Propagation of a convolution's events through its kernel taps (serial CPU kernels).

A :class:`~plastix.model.conv.Conv2D` projection whose ``on_pre`` only transmits its weight (times
something of the presynaptic neuron, e.g. a graded event's value) sends the same kernel row to every
output position a presynaptic neuron reaches.  Its serial CPU propagate kernel then runs each event
through the neuron's taps (:func:`plastix.kernels.conv_taps.tap_table`): per tap, the kernel row over the
live output channels is added to a channel-minor copy of ``in_syn`` at the tap's output position.  That
is a contiguous loop the compiler vectorises over a kernel that stays in cache, instead of a stream of
the synapse instances (measured 5.8x on SD-SNN's second Fashion-MNIST convolution).

Each target still receives its additions in spike order, from the value ``in_syn`` held before the step
(copied into the channel-minor buffer and back), so the result is bitwise the rows' result.  The backend
reads the kernel back from the synapses before every run (:func:`plastix.kernels.conv_taps.kernel_from_synapses`);
where that finds the synapses are not the geometry's whole kernel entries (a connectivity update removed
part of an entry, weights of one entry differ), the kernel runs through the rows as before.
"""
from __future__ import annotations

from ..kernels.conv_taps import INFO_CHANNELS, INFO_MIN_SPIKES, INFO_OK, INFO_POSITIONS
from ..model.conv import Conv2D
from .elements import Names, call, rng_scalars
from .names import NAMES
from .plan import Plan, ProjPlan

#: The ``on_pre`` inputs the tap path can bind once per event and tap: the weight, the presynaptic
#: neuron's (or trace's) variables, parameters and the step's time.
_SCALARS = {"t", "dt"}


def propagates_by_taps(plan: Plan, q: ProjPlan) -> bool:
    """Can ``q``'s events run through its kernel taps?  A Conv2D projection with a shared ``w`` and an int
    ``kidx``, whose only per-synapse phase is an ``on_pre`` that reads nothing of the synapse but ``w``,
    writes nothing but its input to the target and draws no random numbers; and nothing that runs
    inside the time loop (a scheduled connectivity or custom update) can change its synapses."""
    proj = q.proj
    wu = proj.weight_update
    if not isinstance(proj.connectivity, Conv2D) or proj.dense or "on_pre" not in q.funcs:
        return False
    if "dynamics" in q.funcs or "on_post" in q.funcs or "w" not in wu.vars:
        return False
    kidx = wu.vars.get("kidx")
    if kidx is None or kidx.dtype != "int32":
        return False
    if q.keys.syn("w") in plan.duplicated or q.keys.syn("kidx") in plan.duplicated:
        return False   # one kernel per batch element: the rows
    sf = q.funcs["on_pre"]
    if sf.uses_rng or sf.outputs != (("", "_to_post"),):
        return False
    for ns, name in sf.inputs:
        if (ns == "s" and name != "w") or ns == "post" or (ns == "" and name not in _SCALARS):
            return False
    net = plan.network
    for u in net.connectivity_updates.values():
        if u.projection is proj and u.every is not None:
            return False
    for c in net.custom_updates.values():
        if c.every is not None and (c.target is proj or any(g == proj.name for g, _ in c.var_refs.values())):
            return False
    return True


def tap_keys(q: ProjPlan) -> dict[str, str]:
    """The state keys of ``q``'s tap arrays: the table (``start``, ``tap``, ``out``), the kernel read back
    (``kernel``, ``chan``) and ``info`` (:data:`plastix.kernels.conv_taps.INFO_OK` ...)."""
    return {n: q.keys.taps(n) for n in ("start", "tap", "out", "kernel", "chan", "info")}


def tap_propagate(plan: Plan, q: ProjPlan, names: Names, spk: str, insyn: str, rows: list[str]) -> list[str]:
    """The serial propagate body of ``q``: by taps for the spikes ``spk[slot, :nspk]`` (``slot`` and
    ``nspk`` set; ``in_syn`` is channel-major ``[C_out, positions]``) when the backend's ``info`` says they
    apply and the step has enough of them, else ``rows`` (the body through the rows)."""
    k = {n: names(key) for n, key in tap_keys(q).items()}
    sf = q.funcs["on_pre"]
    proj = q.proj
    mapping = {("s", "w"): "_kr[_a]"}
    pre_keys = NAMES.pop(proj.pre)
    for ns, v in sf.inputs:
        if ns == "pre":
            key = q.keys.trace("pre", v) if v in proj.weight_update.pre_vars else pre_keys.var(v)
            mapping[(ns, v)] = f"{names(key)}[i]"
    mapping.update({("p", p): names(q.keys.param(p)) for p in q.wu_param_names})
    transmit = call(sf, mapping, rng_scalars("i", q.streams["on_pre"]), to_post="_to_post")
    by_taps = [
        f"_C = {k['info']}[{INFO_CHANNELS}]",
        f"_nout = {k['info']}[{INFO_POSITIONS}]",
        f"_buf = np.empty(_nout * _C, {insyn}.dtype)",   # channel-minor: a tap's channels are contiguous
        "for _a in range(_C):",
        f"    _base = {k['chan']}[_a] * _nout",
        "    for _o in range(_nout):",
        f"        _buf[_o * _C + _a] = {insyn}[_base + _o]",
        "for s in range(nspk):",
        f"    i = {spk}[slot, s]",
        f"    for _q in range({k['start']}[i], {k['start']}[i + 1]):",
        f"        _kr = {k['kernel']}[{k['tap']}[_q]]",
        f"        _o = {k['out']}[_q]",
        "        _b = _buf[_o * _C:(_o + 1) * _C]",   # a view: the channel loop vectorises
        "        for _a in range(_C):",
        f"            {transmit}",
        "            _b[_a] += _to_post",
        "for _a in range(_C):",
        f"    _base = {k['chan']}[_a] * _nout",
        "    for _o in range(_nout):",
        f"        {insyn}[_base + _o] = _buf[_o * _C + _a]",
    ]
    # steps with few events take the rows (kernels.conv_taps.TAP_WORK_RATIO); the result is the same either way
    return ([f"if {k['info']}[{INFO_OK}] != 0 and nspk >= {k['info']}[{INFO_MIN_SPIKES}]:"]
            + ["    " + x for x in by_taps] + ["else:"] + ["    " + x for x in rows])
