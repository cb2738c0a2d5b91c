"""When spikes arrive: NIR's discrete-time reading against plastix's one step per projection.

Discrete-time NIR tools run a graph one step at a time: an edge passes its value on within the step,
except the edge that closes a cycle, which passes the previous step's value (one step of delay, as
snnTorch's recurrent layers do); ``Delay`` nodes add whole steps.  A plastix projection always takes at
least one step (docs/semantics.md).  Both agree if every neuron population ``v`` runs ``h_v`` steps behind
NIR time (its *latency*) and each projection ``u -> v`` with NIR delay ``delta + k`` (``delta``: cycle
steps, ``k``: Delay steps) gets the plastix delay ``D = h_v - h_u + delta + k >= 1`` steps.

* Export (:func:`export_plan`): ``D`` is given; ``h`` is the shortest path from the inputs with one step
  per edge that does not close a cycle, and ``k = D - delta - (h_v - h_u) >= 0`` becomes a Delay node.
* Load (:func:`load_plan`): ``delta`` and ``k`` are given; ``h`` is the smallest latency (>= 0) with
  ``D >= 1`` everywhere, a longest-path problem; a cycle whose NIR delay is shorter than one step per
  projection on it has no solution.
"""
from __future__ import annotations

from dataclasses import dataclass

from .units import NIRError


def back_edges(order: list[str], starts: list[str], out_edges: dict[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk from ``starts`` (then from the other nodes, in
    ``order``), following ``out_edges`` in their order."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    back = set()
    for root in list(starts) + list(order):
        if root in state:
            continue
        stack = [(root, iter(out_edges.get(root, ())))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out_edges.get(nxt, ()))))
    return back


@dataclass
class Plan:
    latency: dict[str, int]
    extra: dict[str, int]      # projection -> Delay steps (export) or plastix delay beyond one step (load)
    back: dict[str, bool]      # projection -> closes a cycle


def export_plan(populations: list[str], sources: list[str], projections: list[tuple[str, str, int, str]]) -> Plan:
    """``projections``: (pre, post, plastix delay D in steps, name)."""
    out = {p: [] for p in populations}
    for pre, post, _, _ in projections:
        out[pre].append(post)
    back = back_edges(populations, sources, out)
    inf = float("inf")
    h = {p: inf for p in populations}
    for s in sources:
        h[s] = 0
    for _ in range(len(populations) + 1):   # Bellman-Ford on weights 0 / 1
        changed = False
        for pre, post, _, _ in projections:
            w = 0 if (pre, post) in back else 1
            if h[pre] + w < h[post]:
                h[post] = h[pre] + w
                changed = True
        if not changed:
            break
    unreached = [p for p in populations if h[p] == inf]
    if unreached:
        raise NIRError(f"populations {unreached} are not reached from any spike source; a NIR graph runs from its "
                       "inputs")
    extra, is_back = {}, {}
    for pre, post, d, name in projections:
        delta = 1 if (pre, post) in back else 0
        k = d - delta - (h[post] - h[pre])
        assert k >= 0, (name, k)
        extra[name], is_back[name] = int(k), bool(delta)
    return Plan({p: int(v) for p, v in h.items()}, extra, is_back)


def load_plan(nodes: list[str], sources: list[str], connections: list[tuple[str, str, int, int, str]]) -> Plan:
    """``connections``: (source, target, delta, k, name).  ``extra`` holds the plastix delay parameter
    ``D - 1`` of each connection."""
    h = {n: 0 for n in nodes}
    for _ in range(len(nodes) + 1):
        changed = []
        for src, dst, delta, k, name in connections:
            need = h[src] + 1 - delta - k
            if dst not in sources and need > h[dst]:
                h[dst] = need
                changed.append(name)
        if not changed:
            break
    else:
        raise NIRError(f"connections {sorted(set(changed))} lie on a cycle whose delay is shorter than one step per "
                       "connection; plastix projections take at least one step each: add Delay nodes to the cycle")
    extra = {}
    for src, dst, delta, k, name in connections:
        d = h[dst] - h[src] + delta + k - 1
        if d < 0:
            raise NIRError(f"connection {name!r}: {src!r} -> input {dst!r} cannot be delivered")
        extra[name] = d
    return Plan(h, extra, {c[4]: bool(c[2]) for c in connections})
