"""PTX size, registers per thread and spills of every CUDA kernel plastix launches in its tests, per kernel
family, for compute capabilities 8.0 and 9.0 -- without a GPU.

Records the kernel launches of the CUDA simulator tests (``pytest -k "cuda and not ptx"`` with
tests/kernel_launches.py recording), compiles each recorded (kernel, argument types) with numba-cuda to PTX
and assembles it with ``ptxas -v`` (tests/ptx_compile.py), then prints a markdown table and writes the raw
per-kernel results as JSON::

    .venv/bin/python benchmarks/ptx_kernels.py --out benchmarks/results/ptx_kernels.json
    .venv/bin/python benchmarks/ptx_kernels.py --records launches.json   # reuse a recording

Needs the test extra (numba-cuda, nvidia-cuda-nvcc-cu12, nvidia-cuda-nvrtc-cu12).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CCS = ("8.0", "9.0")


def record(out: Path) -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PLASTIX_RECORD_KERNEL_LAUNCHES=str(out))
    env.pop("PLASTIX_TEST_REAL_CUDA", None)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda and not ptx",
                    str(TESTS)], cwd=ROOT, env=env, check=True)


def compile_all(records: Path, workdir: Path) -> tuple[dict[str, list[dict]], float]:
    """Both compute capabilities in parallel; (results per cc, wall seconds)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    t0 = time.perf_counter()
    procs = {cc: subprocess.Popen([sys.executable, str(TESTS / "ptx_compile.py"), str(records), "--cc", cc,
                                   "--out", str(workdir / f"{cc}.json"), "--ptxas"], cwd=ROOT, env=env)
             for cc in CCS}
    for cc, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"ptx_compile.py --cc {cc} failed (exit {p.returncode})")
    wall = time.perf_counter() - t0
    return {cc: json.loads((workdir / f"{cc}.json").read_text()) for cc in CCS}, wall


def _span(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def table(results: dict[str, list[dict]]) -> str:
    fams: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for cc, res in results.items():
        for r in res:
            fams[r["family"]][cc].append(r)
    head = ["family", "launched variants (distinct)"]
    for cc in CCS:
        head += [f"PTX KiB {cc}", f"registers {cc}", f"spill stores / loads B {cc}", f"stack B {cc}"]
    head += ["FP64 / FP32 ops, float32 variants"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (4 * len(CCS) + 1)]
    failed = []
    for fam in sorted(fams):
        rs0 = fams[fam][CCS[0]]
        row = [f"`{fam}`", f"{len(rs0)} ({sum('same_as' not in r for r in rs0)})"]
        for cc in CCS:
            rs = fams[fam][cc]
            failed += [f"{r['module']}.{r['qualname']} cc {cc}" for r in rs if "error" in r or "ptxas_error" in r]
            ok = [r for r in rs if "ptx_bytes" in r]
            row += [_span([round(r["ptx_bytes"] / 1024, 1) for r in ok]), _span([r.get("registers") for r in ok]),
                    _span([r.get("spill_store_bytes") for r in ok]) + " / "
                    + _span([r.get("spill_load_bytes") for r in ok]),
                    _span([r.get("stack_bytes") for r in ok])]
        f32 = [r for r in fams[fam][CCS[-1]] if r.get("float32") and "fp64_ops" in r]
        fp = f"{_span([r['fp64_ops'] for r in f32])} / {_span([r['fp32_ops'] for r in f32])}"
        row.append(fp if f32 else "–")
        lines.append("| " + " | ".join(row) + " |")
    if failed:
        lines.append("\nFAILED: " + ", ".join(failed))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, help="recorded launches (default: record them now)")
    ap.add_argument("--out", type=Path, help="write the per-kernel results here (JSON)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        records = args.records
        if records is None:
            records = work / "launches.json"
            record(records)
        results, wall = compile_all(records, work)
    n = len(results[CCS[0]])
    compile_s = {cc: round(sum(r["seconds"] for r in res), 1) for cc, res in results.items()}
    print(table(results))
    print(f"\n{n} recorded (kernel, argument types) per compute capability; compile + ptxas wall {wall:.1f} s "
          f"for both in parallel (per-kernel sums: {compile_s})")
    if args.out:  # without the machine-specific file paths (the module names identify the kernels)
        slim = {cc: [{k: v for k, v in r.items() if k != "file"} for r in res] for cc, res in results.items()}
        args.out.write_text(json.dumps({"compile_wall_s": round(wall, 2), "results": slim}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
