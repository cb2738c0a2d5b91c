"""Kernels of custom updates, CPU and CUDA from one per-element body.

A custom update visits every element of its target (a neuron, or an existing synapse ``(i, k)`` with
target ``j``).  Per element the body loads the fields the stage functions read into locals ``u_<name>``,
calls the stages in order and stores what they wrote.  When the update runs once per batch element (it
touches per-element variables of a batched simulation), the body loops over the batch elements in order
inside the element: per-element fields are loaded and stored at ``[b, ...]``, reductions accumulate in a
local (sum, mean, max) and are stored once, after the last element -- a fixed order, so the result does
not depend on the thread count or the GPU's scheduling.

Updates over the tape add a time loop inside the batch loop: every recorded step (``scan``), or only the
steps where the synapse's presynaptic neuron spiked (``events``; the CPU sorts the recorded spikes by
neuron first, a counting sort, so each row reads its own events; the GPU runs a thread per recorded spike
and adds its reductions with atomics).  Tape values are read at ``[b, t, neuron]``; temporaries carry
over the steps.
"""
from __future__ import annotations

import re

from ..model.specs import VarAccess
from .elements import Names, call, indent, rng_scalars
from .names import TAPE_ROWS, TAPE_T0
from .plan import CustomPlan, Plan

_LOOP_SCALARS = ["step", "t", "dt", "seed"]


class _Body:
    """The per-element code of custom update ``c``: where its fields live and how to index them."""

    def __init__(self, plan: Plan, c: CustomPlan, names: Names, idx: str, elem: str, batch_loop: bool = True,
                 step_prelude=()):
        self.plan, self.c, self.names, self.idx, self.elem = plan, c, names, idx, elem
        self.batch_loop = batch_loop  # False: the caller sets _b (the GPU events kernel's grid)
        self.step_prelude = list(step_prelude)
        read = {f for sf in c.stages for ns, f in sf.inputs if ns == "u"}
        self.written = c.written
        self.fields = {n: f for n, f in c.fields.items() if n in read | self.written}
        self.red = {n: f for n, f in self.fields.items() if f.access in VarAccess.REDUCTIONS and n in self.written}
        self.m = {("u", n): f"u_{n}" for n in c.fields}
        self.m.update({("p", p): names(c.keys.param(p)) for p in c.param_names})
        self.bt = "_b, " if plan.batched else ""  # tape rows: [b, t, neuron] or [t, neuron]
        self.atomic_tapes = False  # accumulating tapes with atomics (the GPU's threads share a neuron)

    def tape_at(self, f) -> str:
        neuron = {"pre": "i", "post": "j"}.get(f.side, self.idx)
        row = "_tp" if f.side == "pre" else "_t"
        return f"{self.names(f.key)}[{self.bt}{row}, {neuron}]"

    def load(self, n, f) -> list[str]:
        if f.kind == "temp" or f.access in VarAccess.REDUCTIONS or f.access == VarAccess.ACCUMULATE:
            return [f"u_{n} = _T(0.0)"]
        if f.kind == "global":  # one scalar for the target ([1], or [batch, 1])
            return [f"u_{n} = {self.names(f.key)}[{'_b, 0' if f.per_element else '0'}]"]
        if f.kind == "tape" and f.side == "pre":
            # the value the presynaptic neuron sent 1 + delay steps ago: what reaches the synapse now
            return [f"u_{n} = {self.tape_at(f)} if _tp >= 0 else _T(0.0)"]
        if f.kind == "tape":
            return [f"u_{n} = {self.tape_at(f)}"]
        at = f"_b, {self.idx}" if f.per_element else self.idx
        return [f"u_{n} = {self.names(f.key)}[{at}]"]

    def calls(self) -> list[str]:
        seed = "batch_seed(seed, _b)" if self.c.batched else "seed"
        over_time = self.c.update.model.over_time
        sc = dict(rng_scalars(self.elem, self.c.stream), _seed="_seedb", row="_t" if over_time else "0",
                  rows="_nrec" if over_time else "1")
        key = [f"_seedb = {seed}"] if any(sf.uses_rng for sf in self.c.stages) else []  # only where drawn
        return key + [call(sf, self.m, sc) for sf in self.c.stages]

    def accumulate(self, atomic=None) -> list[str]:
        L = []
        for n, f in self.red.items():
            if atomic is not None:
                L.append(atomic(self.names(f.key), n))
            elif f.access == VarAccess.REDUCE_MAX:
                L.append(f"_red_{n} = max(_red_{n}, u_{n})")
            else:
                L.append(f"_red_{n} += u_{n}")
        return L

    def step(self, atomic=None) -> list[str]:
        """One call of the stages (at one step of the tape, or once)."""
        L = list(self.step_prelude)
        if any(f.side == "pre" for f in self.fields.values()):
            L.append(f"_tp = _t - {1 + self.c.update.target.delay}")
        for n, f in self.fields.items():
            if f.kind == "tape" or f.access in VarAccess.REDUCTIONS:
                L += self.load(n, f)
        L += self.calls()
        L += [f"{self.tape_at(f)} = u_{n}" for n, f in self.fields.items()
              if f.kind == "tape" and n in self.written and f.side != "pre"]
        for n, f in self.fields.items():  # sums into the presynaptic neurons' tapes (the GPU: atomics)
            if f.kind == "tape" and f.access == VarAccess.ACCUMULATE and n in self.written:
                if self.atomic_tapes:
                    at = f"({self.bt}_tp, i)" if self.bt else "(_tp, i)"
                    L += ["if _tp >= 0:", f"    cuda.atomic.add({self.names(f.key)}, {at}, u_{n})"]
                else:
                    L += ["if _tp >= 0:", f"    {self.tape_at(f)} += u_{n}"]
        return L + self.accumulate(atomic)

    def code(self, time_loop: list[str] | None, atomic=None) -> list[str]:
        """The element's code; ``time_loop`` is the loop header(s) over the tape (None: one call)."""
        c, names = self.c, self.names
        plain = {n: f for n, f in self.fields.items()
                 if f.kind != "temp" and f.kind != "tape" and f.access not in VarAccess.REDUCTIONS}
        shared = {n: f for n, f in plain.items() if not f.per_element}
        per = {n: f for n, f in plain.items() if f.per_element}
        L = [x for n, f in shared.items() for x in self.load(n, f)]
        if atomic is None:
            L += [f"_red_{n} = _T(-np.inf)" if f.access == VarAccess.REDUCE_MAX else f"_red_{n} = _T(0.0)"
                  for n, f in self.red.items()]
        inner = [x for n, f in per.items() for x in self.load(n, f)]
        inner += [f"u_{n} = _T(0.0)" for n, f in self.fields.items() if f.kind == "temp"]
        if time_loop is None:
            inner += self.step(atomic)
        else:
            inner += time_loop + indent(self.step(atomic), len(time_loop))
        inner += [f"{names(f.key)}[_b, {self.idx}] = u_{n}" for n, f in per.items() if n in self.written]
        if not self.batch_loop:
            L += inner
        elif c.batched:
            batch_key = names(next(f.key for f in c.fields.values() if f.per_element))
            L += [f"_B = {batch_key}.shape[0]", "for _b in range(_B):"] + indent(inner, 1)
        else:
            L += ["_B = 1", "_b = 0"] + inner
        if atomic is None:
            for n, f in self.red.items():
                value = f"_T(_red_{n} / _B)" if f.access == VarAccess.REDUCE_MEAN else f"_red_{n}"
                L.append(f"{names(f.key)}[{self.idx}] = {value}")
        L += [f"{names(f.key)}[{self.idx}] = u_{n}" for n, f in shared.items() if n in self.written]
        return L


    def code_inner(self, time_loop: list[str], head: list[str], size: str,
                   step_head: tuple = ()) -> tuple[list[str], list[str]]:
        """A scan over the tape with the elements innermost: ``for b: for t: for element``, so every step
        reads and writes one contiguous row of each tape ([b, t, :]) instead of striding by the population
        size per element.  ``head``: the element loop's header lines (they set ``_ii``, the element's slot
        in the per-loop arrays, and whatever the body indexes by); ``size``: the slots to allocate.  What
        the element form keeps in locals across the loops (shared and per-element values, temporaries,
        reductions) lives in those arrays; each element still sees its batch elements and steps in the
        same order, so the results are identical.  ``step_head``: lines run once per step before the element
        loop (an event's step).  Returns (allocations, loops)."""
        c, names = self.c, self.names
        plain = {n: f for n, f in self.fields.items()
                 if f.kind != "temp" and f.kind != "tape" and f.access not in VarAccess.REDUCTIONS}
        shared = {n: f for n, f in plain.items() if not f.per_element}
        per = {n: f for n, f in plain.items() if f.per_element}
        temps = [n for n, f in self.fields.items() if f.kind == "temp"]
        carried = list(shared) + list(per) + temps
        alloc = [f"_a_{n} = np.empty({size}, {self._dtype(self.fields[n])})" for n in carried]
        alloc += [f"_r_{n} = np.empty({size}, _T)" for n in self.red]

        def loop(lines):
            return head + indent(lines, 1)

        first = [x.replace(f"u_{n} = ", f"_a_{n}[_ii] = ", 1) for n, f in shared.items() for x in self.load(n, f)]
        first += [f"_r_{n}[_ii] = {'-np.inf' if f.access == VarAccess.REDUCE_MAX else '0.0'}"
                  for n, f in self.red.items()]
        L = loop(first + ["pass"])
        if c.batched:
            batch_key = names(next(f.key for f in c.fields.values() if f.per_element))
            L += [f"_B = {batch_key}.shape[0]", "for _b in range(_B):"]
        else:
            L += ["_B = 1", "for _b in range(1):"]
        start = [x.replace(f"u_{n} = ", f"_a_{n}[_ii] = ", 1) for n, f in per.items() for x in self.load(n, f)]
        start += [f"_a_{n}[_ii] = 0.0" for n in temps]
        body = self.step()
        for n, f in self.red.items():  # reductions accumulate into their per-element slots
            body = [ln.replace(f"_red_{n} = max(_red_{n}, u_{n})", f"_r_{n}[_ii] = max(_r_{n}[_ii], u_{n})")
                    .replace(f"_red_{n} += u_{n}", f"_r_{n}[_ii] += u_{n}") for ln in body]
        # a per-synapse scan summing into its row's presynaptic tape: the row's sum is formed in a local
        # and added once per step (one store instead of a dependent read-modify-write per synapse)
        summed = [n for n, f in self.fields.items() if f.kind == "tape" and f.access == VarAccess.ACCUMULATE
                  and n in self.written and f.side == "pre" and not self.atomic_tapes]
        for n in summed:
            f = self.fields[n]
            target = ["if _tp >= 0:", f"    {self.tape_at(f)} += u_{n}"]
            at = next(i for i in range(len(body) - 1) if body[i:i + 2] == target)
            body[at:at + 2] = [f"_acc_{n} += u_{n}"]
        step = [f"u_{n} = _a_{n}[_ii]" for n in carried] + body
        step += [f"_a_{n}[_ii] = u_{n}" for n in carried if n in self.written or n in temps]
        end = [f"{names(f.key)}[_b, {self.idx}] = _a_{n}[_ii]" for n, f in per.items() if n in self.written]
        per_step = list(step_head) + [f"_acc_{n} = _T(0.0)" for n in summed] + loop(step)
        if summed:
            per_step += [f"_tp = _t - {1 + self.c.update.target.delay}", "if _tp >= 0:"]
            per_step += [f"    {self.tape_at(self.fields[n])} += _acc_{n}" for n in summed]
        inner = loop(start + ["pass"]) + time_loop + indent(per_step, len(time_loop)) + loop(end + ["pass"])
        L += indent(inner, 1)
        last = []
        for n, f in self.red.items():
            value = f"_T(_r_{n}[_ii] / _B)" if f.access == VarAccess.REDUCE_MEAN else f"_r_{n}[_ii]"
            last.append(f"{names(f.key)}[{self.idx}] = {value}")
        last += [f"{names(f.key)}[{self.idx}] = _a_{n}[_ii]" for n, f in shared.items() if n in self.written]
        L += loop(last + ["pass"])
        return alloc, L

    @staticmethod
    def _dtype(f) -> str:
        return "_T" if f.dtype in ("scalar", None) else f"np.{f.dtype}"


def _has_tape(c: CustomPlan) -> bool:
    return any(f.kind == "tape" for f in c.fields.values())


def _tape_length(body: _Body) -> str:
    key = next(f.key for f in body.c.fields.values() if f.kind == "tape")
    return f"{body.names(key)}.shape[{1 if body.plan.batched else 0}]"


def _scan_loop(body: _Body) -> list[str] | None:
    m = body.c.update.model
    if m.scan is None:
        return None
    rng = "range(_ntape - 1, _r0 - 1, -1)" if m.scan == "backward" else "range(_r0, _ntape)"
    return [f"for _t in {rng}:"]


def _ntape(body: _Body) -> list[str]:
    """``_r0 .. _ntape - 1``: the tape rows the update visits, the recorded steps (a scan with no tape reads
    nothing per step: no steps) within the call's window (:data:`~plastix.codegen.names.TAPE_ROWS`)."""
    if not body.c.update.model.over_time:
        return []
    if body.c.update.model.events and not _has_tape(body.c):
        length = "np.iinfo(np.int64).max"
    else:
        length = _tape_length(body) if _has_tape(body.c) else "0"
    w = body.names(TAPE_ROWS)
    return [f"_nrec = {length}", f"_ntape = min(_nrec, {w}[1])", f"_r0 = min(max({w}[0], 0), _ntape)"]


def _transposable(plan: Plan, c: CustomPlan, b: _Body) -> bool:
    """A per-synapse scan that is a map over its steps: no temporaries or reductions carried from step to
    step, no per-synapse variable written, postsynaptic tapes read and presynaptic tapes only summed into
    (``VarAccess.ACCUMULATE``) -- a transposed projection such as BPTT's adjoint.  Its steps are then
    independent and :func:`_transposed_scan` runs each synapse over all of them at once."""
    if not plan.batched or b.atomic_tapes:
        return False
    tapes = [f for f in b.fields.values() if f.kind == "tape"]
    summed = [f for n, f in b.fields.items() if f.kind == "tape" and f.access == VarAccess.ACCUMULATE]
    if not summed or any(f.side != "pre" for f in summed):
        return False
    for n, f in b.fields.items():
        if f.kind == "temp" or f.access in VarAccess.REDUCTIONS:
            return False
        if f.kind == "tape":
            if f.access != VarAccess.ACCUMULATE and (f.side != "post" or n in b.written):
                return False
        elif n in b.written or f.per_element:
            return False
    return bool(tapes)


def _neuron_major(n: str, key: str, first: str = "0", width: str = "_ntape") -> list[str]:
    """``_T_<n>``: rows ``first .. first + width - 1`` of tape ``key`` ``[batch, steps, neurons]`` copied
    neuron-major, ``[neuron, batch * width]`` (``_bt = _B * width``), so that one neuron's whole series is
    contiguous."""
    return [f"_T_{n} = np.empty(({key}.shape[2], _bt), _T)",
            "for _b in range(_B):", f"    for _q in range({key}.shape[2]):", f"        for _t in range({width}):",
            f"            _T_{n}[_q, _b * {width} + _t] = {key}[_b, {first} + _t, _q]"]


def _transposed_scan(plan: Plan, c: CustomPlan, names: Names, b: _Body) -> list[str]:
    """The body of a :func:`_transposable` scan: the postsynaptic tapes are copied neuron-major
    (``[neuron, batch * steps]``), each synapse maps its target's whole series and adds the results into its
    row's buffer (contiguous loops the compiler vectorises, instead of one gathered tape read per synapse
    and step), and the buffers are added into the presynaptic tapes.  Every tape entry receives the same
    additions in the same order as the step-by-step scan (synapses in row order), so the result is bitwise
    the same."""
    shift = 1 + c.update.target.delay
    reads = {n: f for n, f in b.fields.items() if f.kind == "tape" and f.access != VarAccess.ACCUMULATE}
    sums = {n: f for n, f in b.fields.items() if f.kind == "tape" and f.access == VarAccess.ACCUMULATE}
    plain = {n: f for n, f in b.fields.items() if f.kind != "tape"}
    any_key = names(next(iter(reads.values())).key)
    # the window's target rows _w0 .. _ntape - 1 (each receives from a presynaptic row _s earlier), _W per
    # element, elements back to back in the series
    L = [f"_B = {any_key}.shape[0]", f"_s = {shift}", "_w0 = max(_r0, _s)", "_W = max(_ntape - _w0, 0)",
         "_bt = _B * _W"]
    for n, f in reads.items():
        key = names(f.key)
        L += _neuron_major(n, key, "_w0", "_W")
    L += [f"_S_{n} = np.zeros((_hi - _lo, _bt), _T)" for n in sums]
    rl = names(c.target_keys.rowlen)
    # contiguous 1-D views per synapse and batch element: what lets the compiler vectorise the step loop
    step = ["_t = _u + _w0"] + [f"u_{n} = _d_{n}[_u]" for n in reads] + [f"u_{n} = _T(0.0)" for n in sums]
    step += b.calls()
    step += [f"_v_{n}[_u] += u_{n}" for n in sums]
    loads = [x for n, f in plain.items() for x in b.load(n, f)]
    synapse = _target_j(plan, c, names) + loads + [f"_j_{n} = _T_{n}[j]" for n in reads]
    L += ["for i in range(_lo, _hi):"] + [f"    _r_{n} = _S_{n}[i - _lo]" for n in sums]
    calls = "\n".join(b.calls())
    if re.search(r"\b(_t|_b|_seedb)\b", calls):
        # the step reads its step or batch element: one loop per element, over its steps
        L += [f"    for k in range({rl}[i]):"] + indent(synapse, 2)
        per_b = ["_o = _b * _W"] + [f"_d_{n} = _j_{n}[_o:_o + _W]" for n in reads]
        per_b += [f"_v_{n} = _r_{n}[_o:_o + _W]" for n in sums]
        L += indent(["for _b in range(_B):"] + indent(per_b + ["for _u in range(_W):"], 1), 2)
        L += indent(step, 4)
        return L + _transposed_store(names, sums)
    # one loop over the whole series (all elements back to back): long enough to vectorise; each entry gets
    # the same additions in the same order as above
    views = [f"_v_{n} = _r_{n}" for n in sums]
    L += indent(views, 1)
    if not re.search(r"\b(i|j|k)\b", calls):
        # _UNROLL synapses of the row per pass over the series: each buffer entry is loaded and stored once
        # per pass and its additions chained in row order (the same sums, a fraction of the memory traffic)
        def renamed(lines, m):
            return [re.sub(r"\b(u|_d|_j)_(\w+)\b", rf"\1_\2_{m}", x) for x in lines]
        L += [f"    _kn = {rl}[i] - {rl}[i] % {_UNROLL}", f"    for _k in range(0, _kn, {_UNROLL}):"]
        for m in range(_UNROLL):
            L += indent([f"k = _k + {m}"] + renamed(synapse + [f"_d_{n} = _j_{n}" for n in reads], m), 2)
        L += indent(["for _u in range(_bt):"], 2)
        body = [f"_a_{n} = _v_{n}[_u]" for n in sums]
        for m in range(_UNROLL):
            one = [f"u_{n} = _d_{n}[_u]" for n in reads] + [f"u_{n} = _T(0.0)" for n in sums] + b.calls()
            body += renamed(one, m) + [f"_a_{n} += u_{n}_{m}" for n in sums]
        body += [f"_v_{n}[_u] = _a_{n}" for n in sums]
        L += indent(body, 3)
        L += [f"    for k in range(_kn, {rl}[i]):"]
    else:
        L += [f"    for k in range({rl}[i]):"]
    L += indent(synapse + [f"_d_{n} = _j_{n}" for n in reads] + ["for _u in range(_bt):"], 2)
    L += indent(step[1:], 3)
    return L + _transposed_store(names, sums)


#: synapses of a row that one pass of a transposed scan over the whole series serves
_UNROLL = 8
#: An event-driven weight gradient runs over whole series (:func:`_event_series`) or over event lists
#: (:func:`_event_lists`), whichever costs a chunk less, counted in additions over a series (contiguous loads):
#: an addition from an event list costs about _LIST_COST_CACHED of them while the _UNROLL postsynaptic tape
#: rows it gathers from fit in _L1_BYTES, else about _LIST_COST (cache misses), and copying a tape entry
#: neuron-major about _TRANSPOSE_COST.  Measured on SD-SNN's Fashion-MNIST network (2 threads, batch 100):
#: conv2 (7,840 targets, 17 % of steps with events) 0.94 s over lists, 0.63 s over series; conv1 (11,760
#: targets) 0.09 s against 0.23 s; fc1 (300 targets, 3.5 %) 0.02 s against 0.29 s.
_LIST_COST = 10
_LIST_COST_CACHED = 1
_L1_BYTES = 32768
_TRANSPOSE_COST = 10


def _transposed_store(names: Names, sums: dict) -> list[str]:
    # element by element, neuron by neuron: one element's window of tape rows stays in cache while the
    # buffers are read contiguously (the transposes both ways)
    L = ["for _b in range(_B):", "    for i in range(_lo, _hi):", "        for _u in range(_W):"]
    L += [f"            {names(f.key)}[_b, _w0 - _s + _u, i] += _S_{n}[i - _lo, _b * _W + _u]"
          for n, f in sums.items()]
    return L


def _event_blockable(plan: Plan, c: CustomPlan, b: _Body) -> bool:
    """A per-synapse update over presynaptic events that only sums a map of tape values into per-synapse
    reductions (``VarAccess.REDUCE_SUM``; no temporaries, nothing else written, the step reading neither its
    step, its batch element nor its indices) -- a weight gradient such as BPTT's or e-prop's.  Its events
    then run :data:`_UNROLL` at a time over the row (:func:`_event_blocks`)."""
    if not plan.batched or not c.update.model.events:
        return False
    sums = [n for n, f in b.fields.items() if f.access == VarAccess.REDUCE_SUM]
    if not sums or not any(f.kind == "tape" for f in b.fields.values()):
        return False
    for n, f in b.fields.items():
        if f.kind == "tape":
            if f.access != VarAccess.READ_ONLY or n in b.written:
                return False
        elif f.access != VarAccess.REDUCE_SUM or f.kind == "temp":
            return False
    return not re.search(r"\b(_t|_tp|_b|_seedb|i|j|k)\b", "\n".join(b.calls()))


def _event_blocks(plan: Plan, c: CustomPlan, names: Names, b: _Body) -> list[str]:
    """The body of an :func:`_event_blockable` update, one of two ways chosen per call from how dense the
    chunk's presynaptic events are: over whole series (:func:`_event_series`) or over event lists
    (:func:`_event_lists`).  Both give every synapse the same additions in the same order as the plain loop
    (batch element, then step): bitwise the same result, for a fraction of the memory traffic."""
    tapes = {n: f for n, f in b.fields.items() if f.kind == "tape"}
    sums = {n: f for n, f in b.fields.items() if f.access == VarAccess.REDUCE_SUM}
    any_key = names(next(iter(tapes.values())).key)
    arrive = 1 + c.update.target.delay
    rl = names(c.target_keys.rowlen)
    post = next((names(f.key) for f in tapes.values() if f.side != "pre"), None)
    # the chunk's work each way, in series-MAC units (see _LIST_COST)
    L = [f"_B = {any_key}.shape[0]", "_bt = _B * _ntape", "_w_list = 0", "_w_series = 0",
         "for i in range(_lo, _hi):", "    _evi = 0", "    for _b in range(_B):",
         "        _evi += _off[_b, i + 1] - _off[_b, i]",
         f"    _w_list += _evi * {rl}[i]", f"    _w_series += _bt * {rl}[i]",
         f"_w_series += {_TRANSPOSE_COST} * _bt * ({post + '.shape[2]' if post else '0'} + _hi - _lo)",
         # an event list's gathers are cheap while _UNROLL postsynaptic tape rows fit in L1
         f"_lc = {_LIST_COST_CACHED} if {_UNROLL} * {post + '.shape[2] * ' + post + '.itemsize' if post else '0'} "
         f"<= {_L1_BYTES} else {_LIST_COST}",
         "if _w_list * _lc > _w_series:"]
    L += indent(_event_series(plan, c, names, b, tapes, sums, arrive), 1)
    L += ["else:"] + indent(_event_lists(plan, c, names, b, tapes, sums, arrive), 1)
    return L


def _event_series(plan: Plan, c: CustomPlan, names: Names, b: _Body, tapes: dict, sums: dict, arrive: int):
    """:func:`_event_blocks` where presynaptic events are dense (e.g. pooled or input values): the postsynaptic
    tapes are copied neuron-major (``[neuron, batch * steps]``), the chunk's presynaptic values too (shifted to
    the step they arrive), each row's events become a mask over the same index, and
    :data:`_UNROLL` synapses of the row pass over the whole series together, each its own chain of
    additions: contiguous loads instead of a gathered tape row per event.  Steps without an event add an exact
    ``0.0`` (selected, never computed into the sum), so each synapse receives the same additions in the same
    order (batch element, then step) as from the event lists: bitwise the same."""
    rl = names(c.target_keys.rowlen)
    L = ["_mask = np.empty(_bt, np.bool_)"]
    for n, f in tapes.items():
        key = names(f.key)
        if f.side == "pre":   # the chunk's rows, neuron-major, shifted to the step their value arrives
            L += [f"_X_{n} = np.zeros((_hi - _lo, _bt), _T)",
                  "for _b in range(_B):", f"    for _t in range({arrive}, _ntape):",
                  "        for i in range(_lo, _hi):",
                  f"            _X_{n}[i - _lo, _b * _ntape + _t] = {key}[_b, _t - {arrive}, i]"]
        else:
            L += _neuron_major(n, key)
    L += ["for i in range(_lo, _hi):", f"    _nk = {rl}[i]", "    for _u in range(_bt):", "        _mask[_u] = False",
          "    for _b in range(_B):", "        for _e in range(_off[_b, i], _off[_b, i + 1]):",
          "            _t = _evt[_e]", "            if _r0 <= _t < _ntape:",
          "                _mask[_b * _ntape + _t] = True"]
    L += [f"    _x_{n} = _X_{n}[i - _lo]" for n, f in tapes.items() if f.side == "pre"]

    def pass_(width, k0):
        head = []
        for m in range(width):
            head += [f"k = {k0} + {m}"] + _target_j(plan, c, names)
            head += [f"_D_{n}_{m} = _T_{n}[j]" for n, f in tapes.items() if f.side != "pre"]
            head += [f"_a_{n}_{m} = _T(0.0)" for n in sums]
        step = [f"u_{n} = _x_{n}[_u]" for n, f in tapes.items() if f.side == "pre"]
        step += ["_ev = _mask[_u]"]
        for m in range(width):
            one = [f"u_{n} = _D_{n}_{m}[_u]" for n, f in tapes.items() if f.side != "pre"]
            one += [f"u_{n} = _T(0.0)" for n in sums] + b.calls()
            # a pre tape's value is shared by the row's synapses: not renamed per synapse
            one = [re.sub(r"\bu_(\w+)\b", lambda mm: mm.group(0) if tapes.get(mm.group(1)) is not None and
                          tapes[mm.group(1)].side == "pre" else f"u_{mm.group(1)}_{m}", x) for x in one]
            step += one
            step += [f"_a_{n}_{m} += u_{n}_{m} if _ev else _T(0.0)" for n in sums]
        store = [f"{names(f.key)}[i, {k0} + {m}] = _a_{n}_{m}" for m in range(width) for n, f in sums.items()]
        return head + ["for _u in range(_bt):"] + indent(step, 1) + store

    L += [f"    _kn = _nk - _nk % {_UNROLL}", f"    for _k in range(0, _kn, {_UNROLL}):"]
    L += indent(pass_(_UNROLL, "_k"), 2)
    L += ["    for _k in range(_kn, _nk):"] + indent(pass_(1, "_k"), 2)
    return L


def _event_lists(plan: Plan, c: CustomPlan, names: Names, b: _Body, tapes: dict, sums: dict, arrive: int):
    """:func:`_event_blocks` where presynaptic events are sparse: per row, its events of the whole batch are
    listed in the order the plain loop visits them, and :data:`_UNROLL` of them pass over the row together:
    each synapse's sum is loaded and stored once per pass and its additions chained in event order."""
    rl = names(c.target_keys.rowlen)

    def views(m):   # the event's tape rows: a presynaptic value, a postsynaptic row indexed by target
        L = [f"_b_{m} = _eb[_q + {m}]", f"_t_{m} = _et[_q + {m}]", f"_tp_{m} = _t_{m} - {arrive}"]
        for n, f in tapes.items():
            key = names(f.key)
            if f.side == "pre":
                L.append(f"u_{n}_{m} = {key}[_b_{m}, _tp_{m}, i] if _tp_{m} >= 0 else _T(0.0)")
            else:
                L.append(f"_P_{n}_{m} = {key}[_b_{m}, _t_{m}]")
        return L

    def one(m):   # the synapse's contribution from event m
        L = [f"u_{n}_{m} = _P_{n}_{m}[j]" for n, f in tapes.items() if f.side != "pre"]
        L += [f"u_{n}_{m} = _T(0.0)" for n in sums]
        return L + [re.sub(r"\bu_(\w+)\b", rf"u_\1_{m}", x) for x in b.calls()]

    L = ["_eb = np.empty(_B * _ntape, np.int64)", "_et = np.empty(_B * _ntape, np.int64)"]
    L += [f"_r_{n} = np.empty(stride, _T)" for n in sums]
    L += ["for i in range(_lo, _hi):", f"    _nk = {rl}[i]", "    for k in range(_nk):"]
    L += [f"        _r_{n}[k] = 0.0" for n in sums]
    L += ["    _ne = 0", "    for _b in range(_B):", "        for _e in range(_off[_b, i], _off[_b, i + 1]):",
          "            _t = _evt[_e]",
          # spikes that arrive after the last recorded step are not on the tape; the window's rows only
          "            if _r0 <= _t < _ntape:",
          "                _eb[_ne] = _b", "                _et[_ne] = _t", "                _ne += 1"]
    blocked = f"_ne - _ne % {_UNROLL}"
    for width, start, stop in ((_UNROLL, "0", blocked), (1, blocked, "_ne")):
        L += [f"    for _q in range({start}, {stop}, {width}):"]
        L += indent([x for m in range(width) for x in views(m)], 2)
        L += ["        for k in range(_nk):"] + indent(_target_j(plan, c, names), 3)
        body = [f"_a_{n} = _r_{n}[k]" for n in sums]
        for m in range(width):
            body += one(m) + [f"_a_{n} += u_{n}_{m}" for n in sums]
        body += [f"_r_{n}[k] = _a_{n}" for n in sums]
        L += indent(body, 3)
    L += ["    for k in range(_nk):"] + [f"        {names(f.key)}[i, k] = _r_{n}[k]" for n, f in sums.items()]
    return L


def _target_j(plan: Plan, c: CustomPlan, names: Names) -> list[str]:
    """``j``, the synapse's target, when a field is indexed by it."""
    if not any(f.side == "post" for f in c.fields.values()):
        return []
    return ["j = k"] if c.update.target.dense else [f"j = {names(c.target_keys.ind)}[i, k]"]


def _spike_keys(plan: Plan, c: CustomPlan, names: Names):
    pre = plan.pop_plan(c.update.target.pre).keys
    return names(pre.rec_step), names(pre.rec_idx), names(pre.rec_n), names(TAPE_T0)


def _cpu_events_index(plan: Plan, c: CustomPlan, names: Names) -> list[str]:
    """Counting sort of the recorded presynaptic spikes by neuron, per batch element: ``_off[b, i] ..
    _off[b, i + 1]`` index ``_evt``, the steps (tape rows) at which neuron ``i`` of element ``b`` spiked,
    ascending.  ``_evt`` holds the recorded events only, the elements one after another (not a buffer per
    element of the recording's capacity: fresh pages faulted in by every call cost more than the sort)."""
    steps, idx, count, t0 = _spike_keys(plan, c, names)
    rl = names(c.target_keys.rowlen)
    b_, n_ = ("_bb, ", f"{count}[_bb, 0]") if plan.batched else ("", f"{count}[0]")
    nb = f"{count}.shape[0]" if plan.batched else "1"
    return [f"_nb = {nb}", f"_npre = {rl}.shape[0]", f"_cap = {steps}.shape[{1 if plan.batched else 0}]",
            "_tot = 0", "for _bb in range(_nb):", f"    _tot += min({n_}, _cap)",
            "_off = np.zeros((_nb, _npre + 1), np.int64)", "_evt = np.empty(max(_tot, 1), np.int32)",
            "_fill = np.empty(_npre, np.int64)", f"_t0 = {t0}[0]", "_base = 0",
            "for _bb in range(_nb):",
            f"    _ne = min({n_}, _cap)",
            "    _off[_bb, 0] = _base",
            "    for _e in range(_ne):",
            f"        _off[_bb, {idx}[{b_}_e] + 1] += 1",
            "    for _q in range(_npre):",
            "        _off[_bb, _q + 1] += _off[_bb, _q]",
            "        _fill[_q] = _off[_bb, _q]",
            "    for _e in range(_ne):",
            f"        _q = {idx}[{b_}_e]",
            # the step the spike reaches the synapse (1 + delay after it was emitted): a tape row
            f"        _evt[_fill[_q]] = {steps}[{b_}_e] - _t0 + {1 + c.update.target.delay}",
            "        _fill[_q] += 1",
            "    _base += _ne"]


def cpu_population_kernel(plan: Plan, c: CustomPlan, name: str) -> tuple[list[str], list[str]]:
    """A per="population" update: the function's array code once per batch element (a chunk of the batch
    per call, see :func:`chunked_def`) and, with a scan, per recorded step; fields bound to the
    element's slices (views: writes go to the state)."""
    names = Names()
    body = [f"param_{p} = {names(c.keys.param(p))}" for p in sorted(c.array.params)]
    used = c.array.read | c.array.written
    fields = {n: f for n, f in c.fields.items() if n in used}
    per = [f for f in fields.values() if f.per_element]
    b = "_b, " if plan.batched else ""
    body.append(f"_B = {names(per[0].key)}.shape[0]" if c.batched else "_B = 1")
    outer, inner = [], []
    scan = c.update.model.scan
    for n, f in fields.items():
        key = names(f.key)
        if f.kind == "tape" and scan is None:  # the element's whole tape: [steps, neurons]
            outer.append(f"u_{n} = {key}[_b]" if plan.batched else f"u_{n} = {key}")
        elif f.kind == "tape":
            inner.append(f"u_{n} = {key}[{b}row]")
        elif f.kind == "global":
            outer.append(f"u_{n} = {key}[{'_b, 0' if f.per_element else '0'}]")
        else:
            outer.append(f"u_{n} = {key}[_b]" if f.per_element else f"u_{n} = {key}")
    # a chunk of the batch per call; an update that writes what the batch shares runs whole in chunk 0
    shared_write = any(not f.per_element and n in c.array.written for n, f in fields.items()
                       if f.kind not in ("tape", "global"))
    if shared_write or not c.batched:
        body += ["if _part != 0:", "    return", "_lo = 0", "_hi = _B"]
    else:
        body += chunk_bounds("_B")
    body.append("for _b in range(_lo, _hi):")
    tape = next((f for f in c.fields.values() if f.kind == "tape"), None)
    n_t = f"{names(tape.key)}.shape[{1 if plan.batched else 0}]" if tape is not None else ("0" if scan else "1")
    if scan is None:
        body += indent(outer + ["row = 0", f"rows = {n_t}"] + c.array.body, 1)
    else:   # a scan visits the call's window of rows (TAPE_ROWS)
        w = names(TAPE_ROWS)
        window = [f"_ntape = min({n_t}, {w}[1])", f"_r0 = min(max({w}[0], 0), _ntape)"]
        rng = "range(_ntape - 1, _r0 - 1, -1)" if scan == "backward" else "range(_r0, _ntape)"
        body += indent(outer + [f"rows = {n_t}"] + window + [f"for row in {rng}:"] + indent(inner + c.array.body, 1), 1)
    args = _LOOP_SCALARS + sorted(names.used)
    return chunked_def(name, args, body), args


def chunk_bounds(n: str) -> list[str]:
    """``_lo`` / ``_hi``: chunk ``_part`` of ``_parts`` of the elements ``0 .. n - 1``."""
    return [f"_n = {n}", "_lo = (_n * _part) // _parts", "_hi = (_n * (_part + 1)) // _parts"]


def chunked_def(name: str, args: list[str], body: list[str]) -> list[str]:
    """A kernel ``name(_part, _parts, *args)`` that visits chunk ``_part`` of ``_parts`` of its elements,
    serial and without the GIL: the CPU backend runs the chunks on a thread pool (one call, ``(0, 1)``,
    single-threaded).  Elements are independent, so the result does not depend on the number of chunks;
    serial kernels compile several times faster than ``parallel=True`` ones."""
    return ["@njit(cache=True, nogil=True)", f"def {name}(_part, _parts, {', '.join(args)}):"] + indent(body, 1) + [""]


def cpu_kernel(plan: Plan, c: CustomPlan, name: str, chunked: bool = True) -> tuple[list[str], list[str]]:
    """``name(_part, _parts, step, t, dt, seed, <arrays and params>)``: chunk ``_part`` of the target's
    elements (neurons or rows; see :func:`chunked_def`); ``chunked=False``: ``name(step, t, dt, seed,
    ...)`` over all of them (the copy a scheduled update runs inside the compiled time loop).  The
    argument names returned omit ``_part, _parts``."""
    if c.array is not None:
        lines, args = cpu_population_kernel(plan, c, name)
        return (lines if chunked else _unchunked(lines)), args
    names = Names()
    tk = c.target_keys
    body: list[str] = []
    if c.per_synapse:
        rl = names(tk.rowlen)
        if c.update.model.events:
            body += _cpu_events_index(plan, c, names)
            b = _Body(plan, c, names, "i, k", "i * stride + k")
            body += _ntape(b)
            # spikes that arrive after the last recorded step are not on the tape; the window's rows only
            event_head = ["_t = _evt[_e]", "if _t >= _ntape or _t < _r0:", "    continue"]
            time_loop = ["for _e in range(_off[_b, i], _off[_b, i + 1]):"]
        else:
            b = _Body(plan, c, names, "i, k", "i * stride + k")
            time_loop = _scan_loop(b)
            body += _ntape(b)
        body += [f"stride = {names(tk.ind)}.shape[1]"] + chunk_bounds(f"{rl}.shape[0]")
        if time_loop is not None and not c.update.model.events and _transposable(plan, c, b):
            body += _transposed_scan(plan, c, names, b)
        elif _event_blockable(plan, c, b):
            body += _event_blocks(plan, c, names, b)
        elif time_loop is not None and _has_tape(c):
            # a row's synapses innermost: each step (or presynaptic event) reads the row's presynaptic value
            # once and the targets' values from one contiguous tape row
            head = [f"for k in range({rl}[i]):", "    _ii = k"] + indent(_target_j(plan, c, names), 1)
            alloc, loops = b.code_inner(time_loop, head, "stride",
                                        step_head=event_head if c.update.model.events else ())
            body += alloc + ["for i in range(_lo, _hi):"] + indent(loops, 1)
        else:
            element = _target_j(plan, c, names) + b.code(time_loop)
            body += ["for i in range(_lo, _hi):", f"    for k in range({rl}[i]):"] + indent(element, 2)
    else:
        b = _Body(plan, c, names, "i", "i")
        flag = names(tk.flag)  # [neurons] or [batch, neurons]
        body = _ntape(b) + chunk_bounds(f"{flag}.shape[{flag}.ndim - 1]")
        scan = _scan_loop(b)
        if scan is not None and _has_tape(c):
            alloc, loops = b.code_inner(scan, ["for i in range(_lo, _hi):", "    _ii = i - _lo"], "_hi - _lo")
            body += alloc + loops
        else:
            body += ["for i in range(_lo, _hi):"] + indent(b.code(scan), 1)
    args = _LOOP_SCALARS + sorted(names.used)
    lines = chunked_def(name, args, body)
    return (lines if chunked else _unchunked(lines)), args


def _unchunked(lines: list[str]) -> list[str]:
    """The chunked kernel as one serial function over all elements, ``(step, t, dt, seed, ...)``."""
    head = lines[1].replace("(_part, _parts, ", "(", 1)
    return ["@njit(cache=True)", head, "    _part = 0", "    _parts = 1"] + lines[2:]


def cuda_kernel(plan: Plan, c: CustomPlan, name: str, decorator: str) -> tuple[list[str], list[str], str]:
    """The CUDA kernel, its argument names and its launch configuration expression: one thread per
    neuron, x over row slots and y striding over rows per synapse, or one thread per recorded presynaptic
    spike (z: the batch element) over presynaptic events."""
    names = Names()
    tk = c.target_keys
    if c.update.model.events:
        return _cuda_events_kernel(plan, c, name, decorator, names)
    if c.per_synapse:
        b = _Body(plan, c, names, "i, k", "i * stride + k")
        b.atomic_tapes = True
        ind, rl = names(tk.ind), names(tk.rowlen)
        body = ["_x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
                "_y0 = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y",
                "_ys = cuda.gridDim.y * cuda.blockDim.y", f"stride = {ind}.shape[1]", "k = _x",
                f"for i in range(_y0, {rl}.shape[0], _ys):", f"    if k < {rl}[i]:"]
        body = _ntape(b) + body + indent(_target_j(plan, c, names) + b.code(_scan_loop(b)), 2)
        cfg = f"_cfg2({tk.ind}.shape[1], {tk.rowlen}.shape[0])"
    else:
        b = _Body(plan, c, names, "i", "i")
        flag = names(tk.flag)
        axis = 1 if plan.batched else 0  # explicit: the simulator's device arrays take no negative indices
        body = _ntape(b) + ["i = cuda.grid(1)", f"if i < {flag}.shape[{axis}]:"]
        body += indent(b.code(_scan_loop(b)), 1)
        cfg = f"_cfg1({tk.flag}.shape[{axis}])"
    args = _LOOP_SCALARS + sorted(names.used)
    return [decorator, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args, cfg


def _cuda_events_kernel(plan, c, name, decorator, names):
    tk = c.target_keys
    steps, idx, count, t0 = _spike_keys(plan, c, names)
    rl = names(tk.rowlen)
    ind = names(tk.ind)
    # one thread per (batch element, recorded spike): the grid replaces the body's batch loop
    b = _Body(plan, c, names, "i, k", "i * stride + k", batch_loop=False)
    arrive = 1 + c.update.target.delay  # the tape row where the spike reaches the synapse
    ntape = "_ntape"
    if plan.batched:
        head = ["_b = cuda.blockIdx.z", "_e = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x",
                f"_ne = min({count}[_b, 0], {steps}.shape[1])", "_t = 0", "if _e < _ne:",
                f"    _t = {steps}[_b, _e] - {t0}[0] + {arrive}", f"if _e < _ne and _r0 <= _t < {ntape}:",
                f"    i = {idx}[_b, _e]"]
    else:
        head = ["_b = 0", "_e = cuda.grid(1)", f"_ne = min({count}[0], {steps}.shape[0])", "_t = 0", "if _e < _ne:",
                f"    _t = {steps}[_e] - {t0}[0] + {arrive}", f"if _e < _ne and _r0 <= _t < {ntape}:",
                f"    i = {idx}[_e]"]
    element = _target_j(plan, c, names) + b.code(None, atomic=lambda arr, n: f"cuda.atomic.add({arr}, (i, k), u_{n})")
    body = _ntape(b) + head + indent([f"stride = {ind}.shape[1]", f"for k in range({rl}[i]):"] + indent(element, 1), 1)
    cap = f"{steps}.shape[{1 if plan.batched else 0}]"
    cfg = f"_cfg_batch(_cfg1({cap}), {count}.shape[0])" if plan.batched else f"_cfg1({cap})"
    args = _LOOP_SCALARS + sorted(names.used)
    return [decorator, f"def {name}({', '.join(args)}):"] + indent(body, 1) + [""], args, cfg
