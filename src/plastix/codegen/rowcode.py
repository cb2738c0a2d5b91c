"""Connectivity-update row code: a Python ``row_update`` function -> the body of a per-row kernel loop.

Unlike neuron and synapse phases (compiled as scalar functions), row code manipulates the ragged arrays
themselves, so it is expanded inline: ``for s in row.synapses`` becomes a removal-safe ``while`` over the
row's slots, ``s.remove()`` a swap-remove of *every* per-synapse array of the projection, ``row.add``
an append that zeroes them, ``row.remove_weakest(var, n)`` an exact selection of the n smallest |var|
followed by swap-removes of just those slots, ``row.sample_free()`` a draw against a per-row bitmask of
targets (expanded in place: no array is passed to a function per draw), ``row.random_slot()`` a uniform
draw among the row's occupied slots.  The
emitted body runs inside ``for i in range(n_pre)`` with locals ``_rl`` (row length), ``_stride`` and
``_npost``, and counters ``_nrem``, ``_nadd``, ``_full``, ``_failed``, ``_bad`` that the kernel returns.
"""
from __future__ import annotations

import ast
import copy
import inspect
import textwrap
from dataclasses import dataclass

from ..errors import ModelError
from ..model.specs import PHASES
from .row_draws import STRUCTURAL_STREAM, PredrawnRng, hoist_draws
from .transform import ALLOWED_GLOBALS, _RngHoister, parse_function

_ROW_ATTRS = {"index": "i", "length": "_rl", "capacity": "_stride", "num_post": "_npost"}


def uses_sample_free(fn) -> bool:
    """Does a row_update function call row.sample_free()?  (Projections with such rules maintain a
    per-row target bitmask that every rule on the projection keeps up to date.)"""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        return False
    return any(isinstance(n, ast.Attribute) and n.attr == "sample_free" for n in ast.walk(tree))


@dataclass
class RowKeys:
    """State names the row code may touch (decided by the plan)."""

    ind: str
    rowlen: str
    synapse_arrays: list[str]  # every per-synapse array of the projection (moved on remove, zeroed on add)
    syn: dict[str, str]  # name seen as s.<name> -> state key (own vars and var_refs)
    row: dict[str, str]  # row var -> state key
    pre: dict[str, str]
    post: dict[str, str]
    params: dict[str, str]
    bits: str | None = None  # the projection's maintained per-row target bitmask [n_pre, words], if any
    collen: str | None = None  # the column view's per-target lengths (in-degrees), if the projection has one
    colsyn: str | None = None  # set only for row code that maintains the column view itself (serial kernels)
    part: object = None  # model.network.RowPart: a partitioned simulation's part of the projection (global ids)


@dataclass
class RowCode:
    body: list[str]
    names: set
    uses_scratch: bool = False
    row_keys: dict | None = None  # row.<name> -> state key
    # the same body for kernels that draw each row's first Philox block of each stream ahead of the row
    # (locals _pdr0-3: rng draw 0, _pds0-3: block 0 of the sample_free / random_slot stream); the
    # numbers are the same, only computed earlier (see predraw_stages)
    body_predrawn: list[str] | None = None
    predraw: tuple = ()  # the streams drawn ahead, of "rng", "structural"
    sample_free: bool = False  # the code calls row.sample_free()
    random_slot: bool = False  # the code calls row.random_slot()
    scans_row: bool = False  # a synapse loop, remove_weakest or smallest_magnitude: O(row length) per row
    edits_row: bool = False  # removes (swap-remove: reads the last slot) or adds (writes after it)
    keys: RowKeys | None = None
    stream_key: str = ""  # the state key of the rule's stream id (a kernel argument, see names.rng_stream)


class _Expr(ast.NodeTransformer):
    """Rewrites names inside expressions (and assignment targets)."""

    def __init__(self, gen: "_RowGen", in_loop: bool):
        self.g = gen
        self.in_loop = in_loop

    def visit_Attribute(self, node):
        g = self.g
        if isinstance(node.value, ast.Name):
            base, attr = node.value.id, node.attr
            store = isinstance(node.ctx, ast.Store)
            if base == "row" and "row" in g.args:
                if attr in ("total_length", "offset", "num_post") and not store:
                    return ast.copy_location(g.whole_row(attr), node)
                if attr in _ROW_ATTRS:
                    if store:
                        g.err(node, f"row.{attr} is read-only")
                    return ast.copy_location(ast.Name(_ROW_ATTRS[attr], ast.Load()), node)
                if attr in g.keys.row:
                    g.used.add(g.keys.row[attr])
                    return ast.copy_location(ast.Name(f"row_{attr}", node.ctx), node)
                if attr in ("synapses", "add", "sample_free", "smallest_magnitude", "remove_slot", "in_degree",
                            "remove_weakest", "random_slot", "owns"):
                    g.err(node, f"row.{attr} is used as 'for s in row.synapses', 'row.add(j, ...)', "
                                "'row.sample_free()' and 'row.random_slot()' only")
                g.err(node, f"unknown name row.{attr}; row has "
                            f"{sorted(list(_ROW_ATTRS) + ['offset', 'total_length'] + list(g.keys.row))}")
            if base == g.loop_var and g.loop_var:
                if not self.in_loop:
                    g.err(node, f"{base}.{attr} used outside its synapse loop")
                if attr == "j":
                    if store:
                        g.err(node, "s.j is read-only: remove the synapse and add another")
                    return ast.copy_location(g.global_target(self._sub(g.keys.ind, ("i", "_k"))), node)
                if attr not in g.keys.syn:
                    g.err(node, f"unknown name {base}.{attr}; synapses have j, remove() and "
                                f"{sorted(g.keys.syn) or 'no variables'} (declare var_refs to reach the projection's)")
                return ast.copy_location(self._sub(g.keys.syn[attr], ("i", "_k"), node.ctx), node)
            if base == "pre" and "pre" in g.args:
                if attr not in g.keys.pre:
                    g.err(node, f"unknown name pre.{attr}; pre_var_refs are {sorted(g.keys.pre)}")
                g.used.add(g.keys.pre[attr])
                return ast.copy_location(ast.Name(f"pre_{attr}", node.ctx), node)
            if base == "post" and "post" in g.args:
                if store:
                    g.err(node, f"post.{attr} is read-only in row code (many rows reach the same target)")
                if not self.in_loop:
                    g.err(node, f"post.{attr} is only defined inside the synapse loop (the synapse's target)")
                if attr not in g.keys.post:
                    g.err(node, f"unknown name post.{attr}; post_var_refs are {sorted(g.keys.post)}")
                g.used.add(g.keys.post[attr])
                tgt = self._sub(g.keys.ind, ("i", "_k"))
                return ast.copy_location(ast.Subscript(ast.Name(g.keys.post[attr], ast.Load()), tgt, ast.Load()), node)
            if base == "p" and "p" in g.args:
                if store:
                    g.err(node, f"p.{attr} is read-only")
                if attr not in g.keys.params:
                    g.err(node, f"unknown name p.{attr}; params are {sorted(g.keys.params)}")
                g.used.add(g.keys.params[attr])
                return ast.copy_location(ast.Name(g.keys.params[attr], ast.Load()), node)
            if base == "rng":
                g.err(node, f"rng.{attr} must be called, e.g. rng.uniform()")
        return self.generic_visit(node)

    def _sub(self, arr, idx, ctx=None):
        self.g.used.add(arr)
        elts = [ast.Name(x, ast.Load()) for x in idx]
        return ast.Subscript(ast.Name(arr, ast.Load()), ast.Tuple(elts, ast.Load()), ctx or ast.Load())

    def visit_Name(self, node):
        g = self.g
        if isinstance(node.ctx, ast.Store):
            if node.id in g.args or (node.id.startswith("_") and node.id != "_"):
                g.err(node, f"cannot assign to {node.id!r}")
            g.locals.add(node.id)
            return node
        if node.id in ("dt", "t") and node.id in g.args:
            return node
        if node.id in g.locals or node.id in ALLOWED_GLOBALS or node.id.startswith("_r") or node.id == "_":
            return node
        if node.id in ("row", "pre", "post", "p", "rng") or node.id == g.loop_var:
            g.err(node, f"{node.id!r} must be used through its fields")
        val = g.fn_globals.get(node.id)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            return ast.copy_location(ast.Constant(val), node)
        g.err(node, f"unknown name {node.id!r}; use params (p.name) for constants")

    def visit_Constant(self, node):
        if isinstance(node.value, float):
            return ast.copy_location(ast.Call(ast.Name("_T", ast.Load()), [node], []), node)
        return node

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            if f.value.id == "rng":
                if f.attr not in ("uniform", "normal") or node.args or node.keywords:
                    self.g.err(node, "rng offers uniform() and normal(), without arguments")
                if "rng" not in self.g.args:
                    self.g.err(node, "add 'rng' to the function's arguments to draw random numbers")
                return node  # hoisted later
            if f.value.id == "row" and f.attr == "sample_free":
                bits = self.g.keys.bits
                if bits is None:
                    self.g.err(node, "row.sample_free() needs the projection's target bitmask (internal error)")
                self.g.used.add(bits)
                # a marker, expanded in place by _hoist_draws
                lo = self.g.keys.part.post_lo if self.g.keys.part is not None else 0
                marker = f"_sample_free({bits}, {lo})" if lo else f"_sample_free({bits})"
                return ast.copy_location(ast.parse(marker, mode="eval").body, node)
            if f.value.id == "row" and f.attr == "random_slot":
                if node.args or node.keywords:
                    self.g.err(node, "row.random_slot() takes no arguments")
                # a marker, expanded in place by _hoist_draws
                return ast.copy_location(ast.parse("_random_slot()", mode="eval").body, node)
            if f.value.id == "row" and f.attr == "smallest_magnitude":
                a = node.args
                if len(a) != 2 or node.keywords or not (isinstance(a[0], ast.Constant) and isinstance(a[0].value, str)):
                    self.g.err(node, "use row.smallest_magnitude('<synapse var>', n)")
                if a[0].value not in self.g.keys.syn:
                    self.g.err(node, f"row.smallest_magnitude: unknown synapse variable {a[0].value!r}; "
                                     f"known: {sorted(self.g.keys.syn)}")
                key = self.g.keys.syn[a[0].value]
                self.g.used.add(key)
                n = ast.unparse(self.visit(a[1]))
                self.g.uses_scratch = True
                expr = ast.parse(f"_kth_magnitude({key}, i, _rl, {n}, _scratch)", mode="eval").body
                return ast.copy_location(expr, node)
            if f.value.id == "row" and f.attr == "in_degree":
                if len(node.args) != 1 or node.keywords:
                    self.g.err(node, "row.in_degree takes one argument, a target index")
                if self.g.keys.collen is None:
                    self.g.err(node, "row.in_degree(j) needs the projection's column view (a weight-update model "
                                     "with on_post code)")
                self.g.used.add(self.g.keys.collen)
                j = ast.unparse(self.visit(node.args[0]))
                part = self.g.keys.part
                if part is None:
                    return ast.copy_location(ast.parse(f"{self.g.keys.collen}[{j}]", mode="eval").body, node)
                # a partition knows the in-degrees of its own targets only; another rank's target reads 0
                expr = f"({self.g.keys.collen}[({j}) - {part.post_lo}] if 0 <= ({j}) - {part.post_lo} < _npost else 0)"
                return ast.copy_location(ast.parse(expr, mode="eval").body, node)
            if f.value.id == "row" and f.attr == "owns":
                if len(node.args) != 1 or node.keywords:
                    self.g.err(node, "row.owns takes one argument, a target index")
                j = ast.unparse(self.visit(node.args[0]))
                lo = self.g.keys.part.post_lo if self.g.keys.part is not None else 0
                # one process owns every valid target; a rank of a partitioned simulation its block
                return ast.copy_location(ast.parse(f"(0 <= ({j}) - {lo} < _npost)", mode="eval").body, node)
            if (f.value.id == "row" and f.attr == "add") or (f.value.id == self.g.loop_var and f.attr == "remove"):
                self.g.err(node, f"{f.value.id}.{f.attr}() must be a statement (or 'ok = row.add(...)')")
            if f.value.id == "row" and f.attr == "remove_weakest":
                self.g.err(node, "row.remove_weakest(...) must be a statement or 'removed = row.remove_weakest(...)'")
        return self.generic_visit(node)


class _RowGen:
    def __init__(self, fn, keys: RowKeys, where: str):
        self.keys = keys
        self.where = where
        self.fdef = parse_function(fn, where)
        phase = PHASES["row_update"]
        allowed = set(phase.namespaces) | set(phase.scalars) | {"rng"}
        self.args = [a.arg for a in self.fdef.args.args]
        for a in self.args:
            if a not in allowed:
                raise ModelError(f"{where}: unknown argument {a!r}; row code offers {sorted(allowed)}")
        self.fn_globals = dict(getattr(fn, "__globals__", {}))
        self.locals: set[str] = set()
        self.used: set[str] = {keys.rowlen}
        self.uses_scratch = False
        self.scans_row = False
        self.edits_row = False
        self.plain_loops = 0
        self.loop_var = None

    def whole_row(self, attr: str) -> ast.expr:
        """``row.num_post`` / ``row.total_length`` / ``row.offset``: of the whole row and target population.
        In one process the row is whole (total_length = length, offset 0); a partitioned simulation's part
        reads its row vars ``part.other`` / ``part.before`` (the row's synapses on the other / lower ranks)."""
        part = self.keys.part
        if part is None:
            return ast.parse({"num_post": "_npost", "total_length": "_rl", "offset": "0"}[attr], mode="eval").body
        if attr == "num_post":
            return ast.Constant(int(part.num_post))
        name = part.other if attr == "total_length" else part.before
        self.used.add(self.keys.row[name])
        return ast.parse(f"(_rl + row_{name})" if attr == "total_length" else f"row_{name}", mode="eval").body

    def global_target(self, local: ast.expr) -> ast.expr:
        """A target index as row code sees it: global under a partition (local + the rank's first target)."""
        if self.keys.part is None or not self.keys.part.post_lo:
            return local
        return ast.BinOp(local, ast.Add(), ast.Constant(int(self.keys.part.post_lo)))

    def err(self, node, msg):
        line = getattr(node, "lineno", None)
        raise ModelError(f"{self.where}: {msg}" + (f" (line {line} of the function)" if line else ""))

    # -- statements --------------------------------------------------------------------------------------
    def stmts(self, body, in_loop):
        out = []
        for st in body:
            out.extend(self.stmt(st, in_loop))
        return out

    def expr(self, node, in_loop):
        return _Expr(self, in_loop).visit(node)

    def stmt(self, st, in_loop):
        if isinstance(st, ast.For) and self._is_synapse_loop(st):
            if in_loop:
                self.err(st, "synapse loops cannot be nested")
            if not isinstance(st.target, ast.Name):
                self.err(st, "write the loop as 'for s in row.synapses:'")
            if st.orelse:
                self.err(st, "for/else is not supported on synapse loops")
            self.scans_row = True
            self.loop_var = st.target.id
            outer_plain, self.plain_loops = self.plain_loops, 0
            body = ast.parse("_rm = False").body + self.stmts(st.body, True) + self._end_of_synapse()
            self.loop_var, self.plain_loops = None, outer_plain
            return ast.parse("_k = 0").body + [ast.While(ast.parse("_k < _rl", mode="eval").body, body, [])]
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
            f = st.value.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                if in_loop and f.value.id == self.loop_var and f.attr == "remove":
                    if st.value.args or st.value.keywords:
                        self.err(st, "s.remove() takes no arguments")
                    return ast.parse("_rm = True").body  # applied when this synapse's iteration ends
                if f.value.id == "row" and f.attr == "add":
                    return self._add(st.value, in_loop, result=None)
                if f.value.id == "row" and f.attr == "remove_weakest":
                    return self._remove_weakest(st.value, in_loop, result=None)
                if f.value.id == "row" and f.attr == "remove_slot":
                    if in_loop:
                        self.err(st, "row.remove_slot(k) cannot be used inside a synapse loop; use s.remove()")
                    if len(st.value.args) != 1 or st.value.keywords:
                        self.err(st, "row.remove_slot takes one argument, the slot index in [0, row.length)")
                    return self._remove_slot(ast.unparse(self.expr(st.value.args[0], in_loop)))
        if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call):
            f = st.value.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "row" \
                    and f.attr == "remove_weakest":
                if len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name):
                    self.err(st, "write 'removed = row.remove_weakest(\"<synapse var>\", n)'")
                self.locals.add(st.targets[0].id)
                return self._remove_weakest(st.value, in_loop, result=st.targets[0].id)
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "row" \
                    and f.attr == "add":
                if len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name):
                    self.err(st, "write 'ok = row.add(j, ...)'")
                self.locals.add(st.targets[0].id)
                return self._add(st.value, in_loop, result=st.targets[0].id)
        if isinstance(st, (ast.Continue, ast.Break)) and in_loop and self.plain_loops == 0:
            return self._end_of_synapse() + [st]  # ends this synapse's iteration: apply a pending remove
        if isinstance(st, ast.If):
            test = self.expr(st.test, in_loop)
            return [ast.copy_location(ast.If(test, self.stmts(st.body, in_loop), self.stmts(st.orelse, in_loop)), st)]
        if isinstance(st, ast.While):
            test = self.expr(st.test, in_loop)
            return [ast.copy_location(ast.While(test, self._plain_loop_body(st.body, in_loop),
                                                self.stmts(st.orelse, in_loop)), st)]
        if isinstance(st, ast.For):
            new = ast.For(self.expr(st.target, in_loop), self.expr(st.iter, in_loop),
                          self._plain_loop_body(st.body, in_loop), self.stmts(st.orelse, in_loop), None)
            return [ast.copy_location(new, st)]
        if isinstance(st, (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.With,
                           ast.Try, ast.Import, ast.ImportFrom, ast.Return)):
            self.err(st, f"{type(st).__name__} is not supported in row code")
        return [self.expr(st, in_loop)]

    def _plain_loop_body(self, body, in_loop):
        """Body of an ordinary loop: its continue / break belong to it, not to an enclosing synapse loop."""
        self.plain_loops += 1
        try:
            return self.stmts(body, in_loop)
        finally:
            self.plain_loops -= 1

    @staticmethod
    def _is_synapse_loop(st):
        it = st.iter
        return (isinstance(it, ast.Attribute) and isinstance(it.value, ast.Name) and it.value.id == "row"
                and it.attr == "synapses")

    def _swap_remove(self, slot: str) -> list[str]:
        """Lines removing the synapse in ``slot``: clear its target's bit, move the row's last synapse
        (index and every per-synapse array) into the slot, shorten the row."""
        k = self.keys
        self.edits_row = True
        lines = [f"_tj = {k.ind}[i, {slot}]"]
        if k.bits:
            lines += [f"{k.bits}[i, _tj >> 5] &= ~(np.uint32(1) << np.uint32(_tj & 31))"]
            self.used.add(k.bits)
        if k.colsyn:  # keep the column view: drop this synapse's entry, renumber the one that moves here
            lines += [f"_col_remove({k.collen}, {k.colsyn}, _tj, i * _stride + {slot})"]
            self.used.update([k.collen, k.colsyn])
        lines += ["_rl -= 1"]
        if k.colsyn:
            lines += [f"if {slot} != _rl:",
                      f"    _col_replace({k.collen}, {k.colsyn}, {k.ind}[i, _rl], i * _stride + _rl, "
                      f"i * _stride + {slot})"]
        lines += [f"{k.ind}[i, {slot}] = {k.ind}[i, _rl]"]
        lines += [f"{a}[i, {slot}] = {a}[i, _rl]" for a in k.synapse_arrays]
        self.used.update([k.ind] + k.synapse_arrays)
        return lines + ["_nrem += 1"]

    def _end_of_synapse(self):
        """Apply a pending s.remove() (swap-remove: the last synapse moves into this slot and is visited
        next, with every per-synapse array), else advance to the next slot."""
        lines = ["if _rm:"] + ["    " + x for x in self._swap_remove("_k")] + ["else:", "    _k += 1"]
        return ast.parse("\n".join(lines)).body

    def _remove_slot(self, slot_expr: str):
        lines = [f"_ks = {slot_expr}", "if _ks >= 0 and _ks < _rl:"] + ["    " + x for x in self._swap_remove("_ks")]
        lines += ["else:", "    _bad += 1"]
        return ast.parse("\n".join(lines)).body

    def _remove_weakest(self, call, in_loop, result):
        """``row.remove_weakest("var", n)``: remove the n synapses with the smallest ``|s.var|`` (ties:
        lowest slots first).  _weakest_slots selects them without moving anything; they are then
        swap-removed in descending slot order, so a hole is always filled by a kept synapse (or is the
        last slot) and only those n slots and the moved synapses are touched."""
        if in_loop:
            self.err(call, "row.remove_weakest cannot be used inside a synapse loop")
        a = call.args
        if len(a) != 2 or call.keywords or not (isinstance(a[0], ast.Constant) and isinstance(a[0].value, str)):
            self.err(call, "use row.remove_weakest('<synapse var>', n)")
        if a[0].value not in self.keys.syn:
            self.err(call, f"row.remove_weakest: unknown synapse variable {a[0].value!r}; "
                           f"known: {sorted(self.keys.syn)}")
        key = self.keys.syn[a[0].value]
        self.used.add(key)
        self.uses_scratch = True
        n = ast.unparse(self.expr(a[1], in_loop))
        k = self.keys
        lines = [f"_nh = _weakest_slots({key}, i, _rl, {n}, _scratch)",
                 # the holes are spread over the row: one sequential, vectorised read of the arrays the
                 # removal touches instead of a miss per hole (a read of one value per cache line is
                 # slower: ~10 against ~21 GB/s on one core); the sum feeds a counter (always += 0) so
                 # that it is not optimised away
                 "if _nh > 0:", "    _tch = 0", "    for _tk in range(_rl):"]
        touched = [a for a in [k.ind] + k.synapse_arrays if a != key]
        lines.append("        _tch += " + " + ".join(f"({a}[i, _tk] != 0)" if a != k.ind else f"{a}[i, _tk]"
                                                         for a in touched))
        if k.bits:
            lines += [f"    for _tk in range({k.bits}.shape[1]):", f"        _tch += {k.bits}[i, _tk] != 0"]
        lines += ["    _bad += _tch < 0"]
        lines += ["_h = _nh", "while _h > 0:", "    _h -= 1", "    _ks = int(_scratch[_h])"]
        lines += ["    " + x for x in self._swap_remove("_ks")]
        if result:
            lines.append(f"{result} = _nh")
        return ast.parse("\n".join(lines)).body

    def _add(self, call, in_loop, result):
        k = self.keys
        self.edits_row = True
        if len(call.args) != 1:
            self.err(call, "row.add takes the target index and keyword values: row.add(j, w=0.1)")
        values = {}
        for kw in call.keywords:
            if kw.arg is None or kw.arg not in k.syn:
                self.err(call, f"row.add: unknown synapse variable {kw.arg!r}; known: {sorted(k.syn)}")
            values[k.syn[kw.arg]] = ast.unparse(self.expr(kw.value, in_loop))
        target = ast.unparse(self.expr(call.args[0], in_loop))
        if k.part is not None and k.part.post_lo:   # global target id -> this rank's local index
            target = f"({target}) - {k.part.post_lo}"
        self.used.update([k.ind] + k.synapse_arrays + list(values))
        fail = "_failed += 1" if result else "_full += 1"
        lines = [f"_aj = {target}", "if _aj < 0 or _aj >= _npost:", "    _bad += 1"]
        if result:
            lines.append(f"    {result} = False")
        lines += ["elif _rl >= _stride:", f"    {fail}"]
        if result:
            lines.append(f"    {result} = False")
        if k.bits:  # rows of a projection with a target bitmask stay duplicate-free
            lines += [f"elif ({k.bits}[i, _aj >> 5] >> np.uint32(_aj & 31)) & np.uint32(1):",
                      "    _failed += 1" if result else "    _dup += 1"]
            if result:
                lines.append(f"    {result} = False")
        lines += ["else:", f"    {k.ind}[i, _rl] = _aj"]
        for a in k.synapse_arrays:
            lines.append(f"    {a}[i, _rl] = {values.get(a, '0')}")
        if k.bits:
            lines += [f"    {k.bits}[i, _aj >> 5] |= np.uint32(1) << np.uint32(_aj & 31)"]
            self.used.add(k.bits)
        if k.colsyn:
            lines += [f"    if not _col_add({k.collen}, {k.colsyn}, _aj, i * _stride + _rl):", "        _colovf += 1"]
            self.used.update([k.collen, k.colsyn])
        lines += ["    _rl += 1", "    _nadd += 1"]
        if result:
            lines.append(f"    {result} = True")
        return ast.parse("\n".join(lines)).body


def row_code(fn, keys: RowKeys, where: str, stream_key: str) -> RowCode:
    """Expand ``fn`` into kernel-body lines for row ``i`` (see module docstring); ``stream_key`` names the
    state scalar holding the rule's stream id."""
    gen = _RowGen(fn, keys, where)
    stmts = [ast.fix_missing_locations(b) for b in gen.stmts(gen.fdef.body, False)]
    bodies = {}
    for predrawn in (False, True):
        body = hoist_draws(copy.deepcopy(stmts), where, predrawn)
        hoister = _RngHoister(where)
        body = hoister.body(body)
        if predrawn:
            body = [ast.fix_missing_locations(PredrawnRng().visit(b)) for b in body]
        bodies[predrawn] = ast.unparse(ast.Module(body=body, type_ignores=[])).splitlines()
    walk = [n for b in stmts for n in ast.walk(b)]
    sample_free_used = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_sample_free"
                           for n in walk)
    slot_used = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_random_slot"
                    for n in walk)
    predraw = tuple(name for name, used in (("rng", hoister.used), ("structural", sample_free_used or slot_used))
                    if used)
    # rng.* draws use (seed, row, step, _rc, stream); sample_free and random_slot take 32-bit words in
    # turn from their own stream, so the two never collide
    # the stream id is an argument, not a literal: rules of the same code on other projections then share
    # one compiled kernel (codegen.merge), and numba compiles the draws once, not once per literal value
    pro = ["_rc = np.int64(0)", "_rm = False", "_seed = seed", "_elem = i", "_step = step",
           f"_stream = {stream_key}", f"_sfstream = _stream ^ np.int64({STRUCTURAL_STREAM})",
           f"_rl = {keys.rowlen}[i]", "_k = 0", "_aj = 0"]
    pro += [f"row_{n} = {key}[i]" for n, key in keys.row.items()]
    pro += [f"pre_{n} = {key}[i]" for n, key in keys.pre.items()]
    pro += ["_tj = 0", "_ks = 0", "_nh = 0", "_h = 0"]  # _scratch: per-partition buffer set up by the kernel
    if sample_free_used or slot_used:
        # the sample_free / random_slot stream: block counter, words left in the current block, its words
        pro += ["_sfk0 = np.uint64(seed) & _MASK32", "_sfk1 = np.uint64(seed) >> _SHIFT32",
                "_sfb = 0", "_sfn = 0", "_sfq0 = np.uint64(0)", "_sfq1 = np.uint64(0)", "_sfq2 = np.uint64(0)",
                "_sfq3 = np.uint64(0)", "_sfx = np.uint64(0)", "_sfj = 0", "_sfnp = np.uint64(_npost)",
                "_sftries = 32 if _npost > 0 else 0"]
    epi = [f"{keys.rowlen}[i] = _rl"]
    epi += [f"{key}[i] = row_{n}" for n, key in keys.row.items()]
    epi += [f"{key}[i] = pre_{n}" for n, key in keys.pre.items()]
    used = gen.used | {keys.rowlen, keys.ind, stream_key} | set(keys.row.values()) | set(keys.pre.values())
    return RowCode(pro + bodies[False] + epi, used, gen.uses_scratch, dict(keys.row),
                   body_predrawn=pro + bodies[True] + epi, predraw=predraw, sample_free=sample_free_used,
                   random_slot=slot_used, scans_row=gen.scans_row or gen.uses_scratch, edits_row=gen.edits_row,
                   keys=keys, stream_key=stream_key)
