"""Where a ``plastix`` command's compile time goes: runs the command in this process with numba's event
listeners installed and reports the time numba held its compiler lock (compiles, cache loads and saves),
the time in LLVM (``llvm_lock_s``: optimisation, machine code, linking), self seconds per compiler pass,
per module the functions and compilations, and per compiled function (dispatcher) how often it was
compiled (one compilation per argument-type signature), its signatures, its callers, and its inclusive
and self seconds (self: less the callees compiled inside it); also imports and the whole command's wall
and CPU seconds.

    PLASTIX_CACHE_DIR=$(mktemp -d) NUMBA_CACHE_DIR=$(mktemp -d) \
        python benchmarks/compile_profile.py -- topomap --scale 1 --seconds 1 --json --out /tmp/t

Empty cache directories give a cold run (``NUMBA_CACHE_DIR`` also holds the machine code of plastix's
own ``cache=True`` kernels, which numba otherwise keeps in ``__pycache__`` beside their source).
``--json FILE`` writes everything as JSON (stderr gets all but the per-function table).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_out", default=None, help="write the table here as JSON")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the plastix command line, after --")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    t_start = time.perf_counter()
    import numba  # noqa: F401
    from numba.core import event

    t_numba = time.perf_counter()
    compiles = event.install_recorder("numba:compile")
    lock = event.install_recorder("numba:compiler_lock")
    passes = event.install_recorder("numba:run_pass")
    llvm = event.install_recorder("numba:llvm_lock")
    with compiles as rec_c, lock as rec_l, passes as rec_p, llvm as rec_llvm:
        from plastix.cli.main import main as plastix_main

        t_import = time.perf_counter()
        c_import = time.process_time()
        plastix_main(command)
        t_end = time.perf_counter()
        cpu_s = time.process_time() - c_import
    report = _report(rec_c.buffer, rec_l.buffer, t_numba - t_start, t_import - t_numba, t_end - t_import, cpu_s,
                     None)
    report["llvm_lock_s"] = _outer_seconds(rec_llvm.buffer)  # LLVM optimisation, code generation, linking
    report["passes"] = _pass_seconds(rec_p.buffer)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "functions"}, indent=1), file=sys.stderr)


def _outer_seconds(buffer) -> float:
    """Seconds covered by the outermost START..END pairs (nested acquisitions counted once)."""
    depth, total, t0 = 0, 0.0, 0.0
    for ts, ev in buffer:
        if ev.is_start:
            if depth == 0:
                t0 = ts
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                total += ts - t0
    return total


def _pass_seconds(buffer) -> dict:
    """Self seconds per compiler pass name (a pass's time less the passes of callees compiled inside it),
    largest first."""
    stack, out = [], defaultdict(float)
    for ts, ev in buffer:
        if ev.is_start:
            stack.append([ts, 0.0])
        else:
            t0, child = stack.pop()
            dur = ts - t0
            out[ev.data["name"]] += dur - child
            if stack:
                stack[-1][1] += dur
    return dict(sorted(((k, round(v, 3)) for k, v in out.items()), key=lambda kv: -kv[1]))


def _name(dispatcher) -> str:
    f = dispatcher.py_func
    mod = f.__module__
    if mod.startswith("plastix_gen_"):  # plastix_gen_<kind>_<hash>
        mod = "gen:" + mod[len("plastix_gen_"):]
    return f"{mod}.{f.__qualname__}"


def _report(compile_buf, lock_buf, import_numba_s, import_plastix_s, command_s, command_cpu_s, top):
    # self time = inclusive time less the compiles nested inside it (callees typed while compiling)
    # (callers: the functions being compiled when this one's compilation started)
    stack = []
    rows = defaultdict(lambda: {"compiles": 0, "inclusive_s": 0.0, "self_s": 0.0, "signatures": [], "callers": []})
    for ts, ev in compile_buf:
        if ev.is_start:
            stack.append([ts, 0.0, ev.data])
        else:
            t0, child, data = stack.pop()
            dur = ts - t0
            r = rows[_name(data["dispatcher"])]
            r["compiles"] += 1
            r["inclusive_s"] += dur
            r["self_s"] += dur - child
            r["signatures"].append(", ".join(str(a) for a in data["args"])[:160])
            caller = _name(stack[-1][2]["dispatcher"]) if stack else None
            if caller not in r["callers"]:
                r["callers"].append(caller)
            if stack:
                stack[-1][1] += dur
    by_module = defaultdict(lambda: {"functions": 0, "compiles": 0, "self_s": 0.0})
    for name, r in rows.items():
        m = by_module[name.rsplit(".", 1)[0]]
        m["functions"] += 1
        m["compiles"] += r["compiles"]
        m["self_s"] += r["self_s"]
    compile_s = _outer_seconds(compile_buf)
    lock_s = _outer_seconds(lock_buf)
    table = sorted(rows.items(), key=lambda kv: -kv[1]["self_s"])
    top = len(table) if top is None else top
    out = {
        "command_s": command_s, "command_cpu_s": command_cpu_s,  # CPU time: less moved by other load
        "import_numba_s": import_numba_s, "import_plastix_cli_s": import_plastix_s,
        "compiler_lock_s": lock_s, "compile_s": compile_s,
        "lock_not_compiling_s": lock_s - compile_s,  # cache loads and saves, target initialisation
        "functions_compiled": len(rows), "compiles": sum(r["compiles"] for r in rows.values()),
        "by_module": dict(sorted(by_module.items(), key=lambda kv: -kv[1]["self_s"])),
        "functions": {k: {**v, "signatures": v["signatures"][:12]} for k, v in table[:top]},
    }
    return out


if __name__ == "__main__":
    main()
