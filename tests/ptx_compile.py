"""Compiles recorded CUDA kernel launches (tests/kernel_launches.py) with the real numba-cuda compiler, to
PTX for one compute capability, and optionally assembles the PTX with ``ptxas -v`` for registers and
spills.  No GPU is needed: NVVM (``nvidia-cuda-nvcc-cu12``) and NVRTC (``nvidia-cuda-nvrtc-cu12``, which
numba-cuda loads to locate the toolkit and list its architectures) do the work.

Run as a script in a process of its own, since the simulator flag is fixed when numba.cuda is first
imported::

    NUMBA_ENABLE_CUDASIM=0 python tests/ptx_compile.py RECORDS.json --cc 9.0 --out RESULT.json [--ptxas]

(``--probe``: only check that the compiler loads.)  Exit status 0 with RESULT.json written (per launch
record: family, PTX size, errors, ptxas figures), or
:data:`EXIT_NO_COMPILER` when NVVM / NVRTC cannot be loaded (the message says what to install).

What the compile needs that a launch on a GPU would take from the driver:

* Device functions (``@cuda.jit(device=True)``) are compiled by numba-cuda 0.30 when a kernel calling them
  is typed, for ``get_current_device().compute_capability``; :func:`target_device` supplies the target's
  compute capability there instead of a driver that does not exist.  A device function is compiled once per
  process and argument types (numba-cuda's cache is not keyed by compute capability), hence one process
  per compute capability.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types as pytypes
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

EXIT_NO_COMPILER = 3
INSTALL_HINT = ("pip install nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12 (both are in plastix's `test` "
                "extra)")


def family(module: str, qualname: str) -> str:
    """Kernel family: generated kernels by phase (``p0_neuron_update`` and ``p3_neuron_update`` are one
    family, ``engine:p#_neuron_update``), shipped ones by module and name."""
    where = "engine" if module.startswith("plastix_gen_") else module
    return f"{where}:{re.sub(r'[0-9]+', '#', qualname)}"


def compiler_problem() -> str | None:
    """None when NVVM and NVRTC load, else what is missing and how to install it."""
    try:
        from numba.cuda.cudadrv import nvrtc, nvvm

        nvvm.NVVM()
        nvrtc.get_supported_ccs()
    except Exception as e:  # noqa: BLE001 - any failure to load means no compiler
        first = str(e).splitlines()[0] if str(e) else ""
        return f"the CUDA compiler libraries cannot be loaded ({type(e).__name__}: {first}); {INSTALL_HINT}"
    return None


@contextlib.contextmanager
def target_device(cc: tuple[int, int]):
    """Within the block, numba-cuda compiles device functions for compute capability ``cc`` (it would ask
    the driver for the current device's)."""
    from numba.cuda import dispatcher

    stand_in = pytypes.SimpleNamespace(compute_capability=tuple(cc))
    old = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: stand_in
    try:
        yield
    finally:
        dispatcher.get_current_device = old


def _module(file: str, name: str, cache: dict):
    """The module a kernel was recorded from: imported by name when that finds the recorded file (package
    modules), else loaded from the file (generated modules, which live in the plastix cache directory)."""
    if name not in cache:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.realpath(spec.origin) == os.path.realpath(file):
            mod = importlib.import_module(name)
        else:
            spec = importlib.util.spec_from_file_location(name, file)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        cache[name] = mod
    return cache[name]


def _py_func(mod, qualname: str):
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    fn = getattr(obj, "py_func", obj)   # a cuda.jit dispatcher, or a plain function jitted on first use
    if fn.__globals__.get("cuda", False) is None:   # numba.cuda bound lazily by the module
        from numba import cuda

        fn.__globals__["cuda"] = cuda
    return fn


_FLOAT_OP = r"^\s+(?:add|sub|mul|fma|div|rcp|sqrt|neg|abs|min|max|setp|ex2|lg2|sin|cos)\.[a-z0-9.]*"


def float_ops(ptx: str) -> dict:
    """Static counts of float32 / float64 arithmetic instructions in ``ptx`` (FP64 runs at 1/2 of the FP32
    rate on A100 / H100 and at 1/64 on consumer GPUs: float32 networks should need next to none)."""
    return {"fp32_ops": len(re.findall(_FLOAT_OP + "f32", ptx, re.M)),
            "fp64_ops": len(re.findall(_FLOAT_OP + "f64", ptx, re.M))}


def _entry_name(ptx: str) -> str:
    m = re.search(r"\.visible \.entry (\S+)\(", ptx)
    return m.group(1) if m else ""


def ptxas_figures(ptx: str, cc: tuple[int, int], ptxas: str) -> dict:
    """Registers per thread, spill stores / loads and stack frame (bytes) of the kernel entry, from
    ``ptxas -v`` assembling ``ptx`` for ``sm_<cc>``."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "k.ptx"
        src.write_text(ptx)
        arch = f"sm_{cc[0]}{cc[1]}"
        p = subprocess.run([ptxas, "-v", f"-arch={arch}", "-o", str(Path(d) / "k.cubin"), str(src)],
                           capture_output=True, text=True)
    log = p.stdout + p.stderr
    if p.returncode != 0:
        return {"ptxas_error": log.strip()[-2000:]}
    entry = _entry_name(ptx)
    # ptxas -v prints, per function: "Compiling entry function 'NAME' for 'sm_90'", "Function properties
    # for NAME", "N bytes stack frame, N bytes spill stores, N bytes spill loads", "Used N registers, ..."
    blocks = re.split(r"ptxas info\s*: Compiling entry function ", log)
    text = next((b for b in blocks if b.startswith(f"'{entry}'")), log)
    out = {}
    for key, pat in (("registers", r"Used (\d+) registers"), ("stack_bytes", r"(\d+) bytes stack frame"),
                     ("spill_store_bytes", r"(\d+) bytes spill stores"),
                     ("spill_load_bytes", r"(\d+) bytes spill loads")):
        m = re.search(pat, text)
        out[key] = int(m.group(1)) if m else None
    return out


def _names(code) -> set[str]:
    out = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            out |= _names(c)
    return out


def fingerprint(fn, _seen=None) -> str:
    """Everything compiling ``fn`` depends on besides the argument types: its code and, recursively, the
    functions and constants it refers to.  Kernels with equal fingerprints and types compile to the same
    PTX (the same ``_clear_slot`` sits in every generated module), so each is compiled once.  A global of
    a kind not listed here makes the fingerprint unique: such kernels are never merged."""
    import numpy as np

    seen = set() if _seen is None else _seen
    if id(fn) in seen:
        return f"<recursive {fn.__qualname__}>"
    seen.add(id(fn))
    code = fn.__code__
    parts = [code.co_code.hex(), repr([c for c in code.co_consts if not hasattr(c, "co_names")])]
    for name in sorted(_names(code)):
        if name not in fn.__globals__:
            parts.append(f"{name}=<builtin or attribute>")
            continue
        val = fn.__globals__[name]
        inner = getattr(val, "py_func", val)
        if isinstance(val, pytypes.ModuleType):
            parts.append(f"{name}=module {val.__name__}")
        elif isinstance(val, pytypes.BuiltinFunctionType):   # math.exp and the like
            parts.append(f"{name}=builtin {getattr(val, '__module__', '')}.{val.__qualname__}")
        elif isinstance(inner, pytypes.FunctionType):
            kind = type(val).__name__
            parts.append(f"{name}={kind}({fingerprint(inner, seen)})")
        elif isinstance(val, (bool, int, float, str, np.generic)) or (isinstance(val, type) and
                                                                      issubclass(val, np.generic)):
            parts.append(f"{name}={type(val).__name__}:{val!r}")
        else:
            parts.append(f"{name}=<unique {id(val)}>")
    return "\n".join(parts)


def compile_records(records: dict, cc: tuple[int, int], ptxas: str | None = None) -> list[dict]:
    """Compile every launch record of ``records`` (kernel_launches.snapshot()) to PTX for ``cc``; results
    in record order (a record whose kernel and types equal an earlier one's shares its result and names it
    in ``same_as``)."""
    from numba import cuda

    from kernel_launches import decode_type

    mods: dict = {}
    done: dict = {}
    results = []
    with target_device(cc):
        for rec in records["launched"]:
            res = {"family": family(rec["module"], rec["qualname"]), "module": rec["module"],
                   "qualname": rec["qualname"], "file": rec["file"], "cc": list(cc),
                   "float32": any(t[1] == "float32" for t in rec["types"])}
            t0 = time.perf_counter()
            try:
                fn = _py_func(_module(rec["file"], rec["module"], mods), rec["qualname"])
                key = (fingerprint(fn), json.dumps(rec["types"]))
                if key in done:
                    first = done[key]
                    res.update({k: v for k, v in first.items() if k not in res and k != "seconds"},
                               same_as=f"{first['module']}.{first['qualname']}")
                    res["seconds"] = 0.0
                    results.append(res)
                    continue
                sig = tuple(decode_type(t) for t in rec["types"])
                ptx, resty = cuda.compile_ptx(fn, sig, cc=cc)
                res["ptx_bytes"] = len(ptx.encode())
                res["return_type"] = str(resty)
                res.update(float_ops(ptx))
                if ptxas:
                    res.update(ptxas_figures(ptx, cc, ptxas))
                done[key] = res
            except Exception as e:  # noqa: BLE001 - every failure is reported, per kernel
                res["error"] = f"{type(e).__name__}: {e}"
            res["seconds"] = round(time.perf_counter() - t0, 3)
            results.append(res)
    return results


def find_ptxas() -> str | None:
    try:
        from cuda import pathfinder

        return pathfinder.find_nvidia_binary_utility("ptxas")
    except Exception:  # noqa: BLE001 - no ptxas: no register figures
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="?", help="JSON written by tests/kernel_launches.py")
    ap.add_argument("--cc", help="compute capability, e.g. 9.0")
    ap.add_argument("--out", help="where to write the per-kernel results (JSON)")
    ap.add_argument("--probe", action="store_true", help="only check that the compiler loads")
    ap.add_argument("--ptxas", action="store_true", help="also assemble with ptxas -v (registers, spills)")
    args = ap.parse_args(argv)
    from numba.cuda import config

    if config.ENABLE_CUDASIM:
        ap.error("run with NUMBA_ENABLE_CUDASIM=0: the simulator cannot compile")
    problem = compiler_problem()
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_NO_COMPILER
    if args.probe:
        return 0
    if not (args.records and args.cc and args.out):
        ap.error("records, --cc and --out are required")
    ptxas = None
    if args.ptxas:
        ptxas = find_ptxas()
        if ptxas is None:
            ap.error("--ptxas: no ptxas found (it ships in nvidia-cuda-nvcc-cu12)")
    cc = tuple(int(x) for x in args.cc.split("."))
    results = compile_records(json.loads(Path(args.records).read_text()), cc, ptxas)
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
