"""Random draws of connectivity-update row code: ``row.sample_free()`` and ``row.random_slot()``
expanded in place, and the CPU's software pipelining, which draws each row's first Philox blocks a few
rows ahead and prefetches the cache lines they point at.  The pipelined variant draws exactly the numbers
the plain one does, only earlier (see :func:`predraw_stages`)."""
from __future__ import annotations

import ast

from ..errors import ModelError

#: stream offset (xor) of the row's sample_free / random_slot words from its rng.* stream
STRUCTURAL_STREAM = 0x80000000
#: words of the pre-draw buffer per row: rng draw 0, block 0 of the sample_free / random_slot stream
_PREDRAW_COLUMNS = {"rng": 0, "structural": 4}
_PREDRAW_LOCALS = {"rng": "_pdr", "structural": "_pds"}


def _first_block(q: str, block: str, stream: str, local: str, predrawn: bool) -> str:
    """The line drawing block ``block`` of a row's stream into ``q0..q3``; with ``predrawn`` block 0
    comes from the locals ``local0..3`` the kernel filled ahead of the row (the same numbers)."""
    draw = f"philox4x32(i, step, {block}, {stream}, _sfk0, _sfk1)"
    if predrawn:
        draw = f"({local}0, {local}1, {local}2, {local}3) if {block} == 0 else {draw}"
    return f"{q}0, {q}1, {q}2, {q}3 = {draw}"


def _sample_free_lines(name: str, bits: str, predrawn: bool) -> list[str]:
    """``name = row.sample_free()`` expanded in place: rejection sampling over 32-bit candidates taken in
    turn from the row's sample_free Philox stream (counter (row, step, block, stream): each Philox call
    gives 4 candidates, kept across calls of the row), ``j = (word * num_post) >> 32``; after 32 rejected
    candidates (a nearly full row), an exact uniform pick among the free targets.  Inline, not a
    function: a call passing the bitmask costs more than the draw (numba reference-counts arrays
    passed to a function that is not inlined)."""
    return [f"{name} = -1",
            "for _sft in range(_sftries):",
            "    if _sfn == 0:",
            "        " + _first_block("_sfq", "_sfb", "_sfstream", "_pds", predrawn),
            "        _sfb += 1",
            "        _sfn = 4",
            "    _sfx = _sfq0",
            "    _sfq0 = _sfq1",
            "    _sfq1 = _sfq2",
            "    _sfq2 = _sfq3",
            "    _sfn -= 1",
            "    _sfj = np.int64((_sfx * _sfnp) >> _SHIFT32)",
            f"    if (({bits}[i, _sfj >> 5] >> np.uint32(_sfj & 31)) & np.uint32(1)) == 0:",
            f"        {name} = _sfj",
            "        break",
            f"if {name} < 0:",
            # draw numbers from 2**31 up: never a block's; _sfb grew by 8 since any earlier exact pick
            f"    {name} = _sample_free_exact({bits}[i], _npost, seed, i, step, _sfb + 2147483648, _sfstream)"]


def _random_slot_lines(name: str, predrawn: bool) -> list[str]:
    """``name = row.random_slot()``: a uniform slot in [0, row.length) (-1 for an empty row) from the
    next 32-bit word of the stream sample_free draws from (4 words per block, kept across the row's
    calls of both): ``k = (word * length) >> 32``."""
    return ["if _sfn == 0:",
            "    " + _first_block("_sfq", "_sfb", "_sfstream", "_pds", predrawn),
            "    _sfb += 1",
            "    _sfn = 4",
            "_sfx = _sfq0",
            "_sfq0 = _sfq1",
            "_sfq1 = _sfq2",
            "_sfq2 = _sfq3",
            "_sfn -= 1",
            f"{name} = np.int64((_sfx * np.uint64(_rl)) >> _SHIFT32) if _rl > 0 else -1"]


class PredrawnRng(ast.NodeTransformer):
    """``_rN = _rand_uniform(...)`` -> the same draw from the pre-drawn block when it is the row's
    first (``_rc == 0``)."""

    def visit_Assign(self, node):
        v = node.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in ("_rand_uniform", "_rand_normal"):
            first = ("_words_to_unit(_pdr0, _pdr1)" if v.func.id == "_rand_uniform"
                     else "_normal_words(_pdr0, _pdr1, _pdr2, _pdr3)")
            node.value = ast.IfExp(ast.parse("_rc == 0", mode="eval").body, ast.parse(first, mode="eval").body, v)
        return node


def hoist_draws(stmts, where, predrawn):
    """Move each ``_sample_free(bits)`` / ``_random_slot()`` marker out of its statement into
    ``_sfN = <inline draw>`` just before it (conditions included): every call draws from the row's
    stream in turn."""
    count = [0]

    def is_call(n):
        return (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id in ("_sample_free", "_random_slot"))

    def replace(node, pre):
        class Sub(ast.NodeTransformer):
            def visit_Call(self, n):
                self.generic_visit(n)
                if is_call(n):
                    name = f"_sf{count[0]}"
                    count[0] += 1
                    lines = (_sample_free_lines(name, n.args[0].id, predrawn) if n.func.id == "_sample_free"
                             else _random_slot_lines(name, predrawn))
                    if n.func.id == "_sample_free" and len(n.args) == 2:   # a partition's global target id
                        lines += [f"if {name} >= 0:", f"    {name} += {n.args[1].value}"]
                    pre.extend(ast.parse("\n".join(lines)).body)
                    return ast.Name(name, ast.Load())
                return n

        return Sub().visit(node)

    out = []
    for st in stmts:
        pre: list = []
        if isinstance(st, ast.If):
            st.test = replace(st.test, pre)
            st.body, st.orelse = hoist_draws(st.body, where, predrawn), hoist_draws(st.orelse, where, predrawn)
        elif isinstance(st, ast.For):
            st.iter = replace(st.iter, pre)
            st.body, st.orelse = hoist_draws(st.body, where, predrawn), hoist_draws(st.orelse, where, predrawn)
        elif isinstance(st, ast.While):
            if any(is_call(n) for n in ast.walk(st.test)):
                raise ModelError(f"{where}: row.sample_free() / row.random_slot() in a while condition is not "
                                 "supported; assign it to a local variable inside the loop")
            st.body, st.orelse = hoist_draws(st.body, where, predrawn), hoist_draws(st.orelse, where, predrawn)
        elif any(is_call(n) for n in ast.walk(st)):
            st = replace(st, pre)
        out.extend(pre)
        out.append(st)
    return [ast.fix_missing_locations(x) for x in out]


def predraw_stages(code, buf: str, q: str) -> tuple[list[str], list[str], list[str], set]:
    """Lines for kernels that run row ``i``'s code (a :class:`~plastix.codegen.rowcode.RowCode`) a few
    rows after drawing its first random numbers.

    Returns (draw, settle, load, used): ``draw`` computes row ``i``'s first Philox block of each stream
    in ``code.predraw`` into ``buf[q, ...]`` and prefetches the cache lines the first words point at:
    with random_slot, word 0's slot in every per-synapse array; with sample_free, the bitmask words of
    the candidates of words 0 and 1 (which one a call takes first depends on the code: both are
    hinted); and, for code that removes or adds synapses, the row's last and first free slot in every
    per-synapse array (a swap-remove moves the last synapse, an add writes after it; rows are a page
    apart, further than the hardware prefetcher follows).  ``settle``, run a few rows later, reads the
    (by then cached) target in that slot and prefetches its bitmask word, which removing it will clear;
    ``load`` sets the row's ``_pd*`` locals from the buffer; ``used`` names the state arrays these lines
    read.  The prefetches are only hints: the numbers are exactly those the row would draw."""
    k = code.keys
    draw = ["_pk0 = np.uint64(seed) & _MASK32", "_pk1 = np.uint64(seed) >> _SHIFT32"]
    streams = {"rng": code.stream_key, "structural": f"{code.stream_key} ^ np.int64({STRUCTURAL_STREAM})"}
    load, settle, used = [], [], {code.stream_key}
    for name in code.predraw:
        c, local = _PREDRAW_COLUMNS[name], _PREDRAW_LOCALS[name]
        draw.append(f"{buf}[{q}, {c}], {buf}[{q}, {c + 1}], {buf}[{q}, {c + 2}], {buf}[{q}, {c + 3}] = "
                    f"philox4x32(i, step, np.int64(0), {streams[name]}, _pk0, _pk1)")
        load += [f"{local}{w} = {buf}[{q}, {c + w}]" for w in range(4)]
    c = _PREDRAW_COLUMNS["structural"]
    if code.sample_free and k.bits:
        used.add(k.bits)
        for w in ((0, 1) if code.random_slot else (0,)):
            draw += [f"_pj = np.int64(({buf}[{q}, {c + w}] * np.uint64(_npost)) >> _SHIFT32)",
                     f"prefetch({k.bits}, i, _pj >> 5)"]
    arrays = [k.ind] + list(k.synapse_arrays)
    if code.edits_row or code.random_slot:
        draw.append(f"_prl = {k.rowlen}[i]")
        used.update(arrays + [k.rowlen])
    if code.edits_row:
        draw += ["if _prl > 0:"] + [f"    prefetch({a}, i, _prl - 1)" for a in arrays]
        draw += [f"if _prl < {k.ind}.shape[1]:"] + [f"    prefetch({a}, i, _prl)" for a in arrays]
    if code.random_slot:
        first = ["if _prl > 0:", f"    _pks = np.int64(({buf}[{q}, {c}] * np.uint64(_prl)) >> _SHIFT32)"]
        draw += first + [f"    prefetch({a}, i, _pks)" for a in arrays]
        if k.bits:
            used.add(k.bits)
            settle = [f"_prl = {k.rowlen}[i]"] + first + [f"    _pj = {k.ind}[i, _pks]",
                                                          "    if _pj >= 0 and _pj < _npost:",
                                                          f"        prefetch({k.bits}, i, _pj >> 5)"]
    return draw, settle, load, used
