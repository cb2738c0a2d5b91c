"""Parse speed of plastix's AEDAT 3.1 reader on a synthetic recording of realistic size, and the binning
of its gestures into DVS128 Gesture frames, against two references measured in the same run: reading
the file's bytes (the floor) and a per-event ``struct`` loop (how common Python readers decode it).

    python benchmarks/aedat_parse.py [--mb 256] [--repeats 3] [--loop-mb 8]

The file: 128 x 128 random polarity events with increasing timestamps crossing the 32-bit overflow,
in polarity packets of 500..8000 events with a small special-event packet after every tenth, written to
a temporary folder.  Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import tempfile
import time

import numpy as np

from plastix.datasets import aedat, dvs_gesture


def write_recording(path: str, megabytes: float, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    n = int(megabytes * 1e6 / 8)
    t = np.cumsum(rng.integers(0, 20, n)) + (2**31 - n * 5)       # ~10 us apart, crosses 2**31 halfway
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    words = (x << 17) | (y << 2) | (p << 1) | 1
    header = struct.Struct("<hhiiiiii")
    with open(path, "wb") as f:
        f.write(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n")
        i, k = 0, 0
        while i < n:
            m = int(rng.integers(500, 8001))
            epoch = int(t[i] >> 31)
            j = min(n, i + m)
            j = i + int(np.searchsorted(t[i:j] >> 31, epoch, "right"))   # a packet stays in one epoch
            ev = np.empty((j - i, 2), "<u4")
            ev[:, 0], ev[:, 1] = words[i:j], t[i:j] & 0x7FFFFFFF
            f.write(header.pack(1, 1, 8, 4, epoch, j - i, j - i, j - i) + ev.tobytes())
            k += 1
            if k % 10 == 0:
                f.write(header.pack(0, 1, 8, 4, epoch, 2, 2, 2) + bytes(16))
            i = j
    return n


def struct_loop(path: str, limit_bytes: int) -> int:
    """Per-event decoding with struct, stopping after ``limit_bytes`` of events; returns the bytes decoded."""
    used = 0
    with open(path, "rb") as f:
        line = f.readline()
        while line.startswith(b"#") and line.rstrip(b"\r\n") != b"#!END-HEADER":
            line = f.readline()
        xs, ys, ps, ts = [], [], [], []
        while used < limit_bytes:
            head = f.read(28)
            if len(head) < 28:
                break
            etype, _, size, _, overflow, capacity, number, _ = struct.unpack("<hhiiiiii", head)
            data = f.read(capacity * size)
            used += len(data)
            if etype != 1:
                continue
            for e in range(number):
                word, stamp = struct.unpack_from("<Ii", data, e * 8)
                if word & 1:
                    xs.append((word >> 17) & 0x7FFF)
                    ys.append((word >> 2) & 0x7FFF)
                    ps.append((word >> 1) & 1)
                    ts.append(stamp | overflow << 31)
    return used


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU (user + system of this process) seconds of ``fn()``: on a shared machine the
    CPU time is the steadier figure."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=256.0, help="size of the synthetic recording (MB)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-mb", type=float, default=8.0, help="MB that the struct loop decodes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "user01_synthetic.aedat")
        n = write_recording(path, args.mb)
        size_mb = os.path.getsize(path) / 1e6

        def read_bytes():
            with open(path, "rb") as f:
                f.read()

        read_s, read_cpu = median_time(read_bytes, args.repeats)
        parse_s, parse_cpu = median_time(lambda: aedat.read_aedat(path), args.repeats)
        t0, c0 = time.perf_counter(), time.process_time()
        used = struct_loop(path, int(args.loop_mb * 1e6))
        loop_mb_s = used / 1e6 / (time.perf_counter() - t0)
        loop_cpu_mb_s = used / 1e6 / (time.process_time() - c0)
        # eleven gestures over the recording, binned to SD-SNN's 64 frames of 2 x 128 x 128
        ev = aedat.read_aedat(path)
        edges = np.linspace(ev.t_us[0], ev.t_us[-1], 12).astype(np.int64)
        with open(os.path.join(tmp, "user01_synthetic_labels.csv"), "w") as f:
            f.write("class,startTime_usec,endTime_usec\n")
            f.writelines(f"{c + 1},{edges[c]},{edges[c + 1]}\n" for c in range(11))
        trials = [(path, dvs_gesture.labels_path(path))]
        t0, c0 = time.perf_counter(), time.process_time()
        frames, _, _, _ = dvs_gesture.build_split(trials, frames=64, split_by="number", downsample=1, valid_only=True)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({
        "file_mb": round(size_mb, 1), "events": n, "repeats": args.repeats,
        "read_bytes_s": round(read_s, 3), "read_bytes_mb_s": round(size_mb / read_s, 1),
        "read_aedat_s": round(parse_s, 3), "read_aedat_mb_s": round(size_mb / parse_s, 1),
        "read_bytes_cpu_s": round(read_cpu, 3), "read_aedat_cpu_s": round(parse_cpu, 3),
        "read_aedat_cpu_mb_s": round(size_mb / parse_cpu, 1),
        "struct_loop_mb_s": round(loop_mb_s, 2), "struct_loop_cpu_mb_s": round(loop_cpu_mb_s, 2),
        "parse_vs_read_bytes": round(parse_s / read_s, 2),
        "speedup_vs_struct_loop": round(size_mb / parse_s / loop_mb_s, 1),
        "speedup_vs_struct_loop_cpu": round(size_mb / parse_cpu / loop_cpu_mb_s, 1),
        "gestures_to_64_frames_s": round(build_s, 3), "gestures_to_64_frames_cpu_s": round(build_cpu, 3),
        "frames_shape": list(frames.shape), "frames_mb_s": round(size_mb / build_s, 1),
    }))


if __name__ == "__main__":
    main()
