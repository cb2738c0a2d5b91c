"""AEDAT 3.1 files (iniVation / jAER event-camera recordings): the polarity events of one file.

Format (little-endian throughout):

* An ASCII header of lines that each start with ``#`` and end with ``\\r\\n``; the first line names the
  version, ``#!AER-DAT3.1``, and the last is ``#!END-HEADER``.
* Then event packets back to back.  Each starts with a 28-byte header of eight fields: ``eventType``
  (int16), ``eventSource`` (int16), ``eventSize`` (int32, bytes per event), ``eventTSOffset`` (int32),
  ``eventTSOverflow`` (int32), ``eventCapacity`` (int32), ``eventNumber`` (int32) and ``eventValid``
  (int32).  ``eventCapacity * eventSize`` bytes of events follow; the first ``eventNumber`` of the
  ``eventCapacity`` slots hold events.
* Polarity events are packets of ``eventType`` 1 with ``eventSize`` 8: a uint32 data word and an int32
  timestamp (us).  In the data word bit 0 is the valid mark, bit 1 the polarity (1 = ON, 0 = OFF), bits
  2-16 the y address and bits 17-31 the x address (15 bits each).  The full timestamp is
  ``eventTSOverflow << 31 | timestamp`` (us).  Packets of other types (special events, frames, IMU) are
  skipped.

:func:`read_aedat` parses a whole file with numpy: the packet headers are walked in Python (one step
per packet, a few thousand events each in recorded files), the events of all polarity packets are
gathered with one concatenation and their bit fields decoded vectorised.  A header or packet that
breaks the format raises :class:`~plastix.datasets.DatasetError` naming the file, the byte offset and
what was expected there.

Invalid events (valid mark 0) are left out by default and counted (``valid_only=False`` keeps them, as
SpikingJelly's reader does; recorded files such as DVS128 Gesture's mark every event valid).
"""
from __future__ import annotations

import os
import struct
from typing import NamedTuple

import numpy as np

from .base import DatasetError, DatasetNotFoundError

#: Bytes of an event packet header, and its layout (little-endian int16 x2, int32 x6).
PACKET_HEADER_BYTES = 28
_PACKET_HEADER = struct.Struct("<hhiiiiii")
#: eventType of polarity packets, and the bytes of one polarity event.
POLARITY_EVENT = 1
POLARITY_EVENT_BYTES = 8
#: Shift of the event-packet overflow counter in the full timestamp.
TS_OVERFLOW_SHIFT = 31
END_HEADER = b"#!END-HEADER"
VERSION_PREFIX = b"#!AER-DAT"


class AedatEvents(NamedTuple):
    """Polarity events of one AEDAT file in file order: ``x``, ``y`` (uint16), ``polarity`` (uint8, 1 =
    ON), ``t_us`` (int64 microseconds, overflow applied), plus ``header`` (the header lines, decoded,
    without ``#`` and line ends), ``invalid`` (invalid events left out) and ``packets`` (polarity
    packets read)."""

    x: np.ndarray
    y: np.ndarray
    polarity: np.ndarray
    t_us: np.ndarray
    header: tuple
    invalid: int
    packets: int


def _read_header(buf: bytes, source: str) -> tuple[tuple, int]:
    """The header lines and the byte offset of the first packet."""
    first_end = buf.find(b"\n")
    first = buf[:first_end if first_end >= 0 else min(len(buf), 64)].rstrip(b"\r\n")
    if not first.startswith(VERSION_PREFIX):
        raise DatasetError(f"{source}: not an AEDAT file: expected a first line '#!AER-DAT3.1', found "
                           f"{first[:40]!r}")
    version = first[len(VERSION_PREFIX):].decode("ascii", "replace")
    if not version.startswith("3."):
        raise DatasetError(f"{source}: AEDAT version {version} is not supported: expected AEDAT 3.x "
                           "('#!AER-DAT3.1' on the first line)")
    lines, pos = [], 0
    while True:
        end = buf.find(b"\n", pos)
        if end < 0:
            raise DatasetError(f"{source}: corrupt header: no '#!END-HEADER' line (the header ends at byte "
                               f"{pos} without it)")
        line = buf[pos:end].rstrip(b"\r")
        if not line.startswith(b"#"):
            raise DatasetError(f"{source}: corrupt header: the line at byte {pos} does not start with '#' and "
                               f"comes before '#!END-HEADER' (found {line[:40]!r})")
        lines.append(line[1:].decode("ascii", "replace"))
        pos = end + 1
        if line == END_HEADER:
            return tuple(lines), pos


def decode_aedat(buf: bytes, source: str = "data", *, valid_only: bool = True) -> AedatEvents:
    """Polarity events of an AEDAT 3.1 byte string (see the module text); ``source`` names it in errors."""
    header, pos = _read_header(buf, source)
    size = len(buf)
    starts, counts, overflows = [], [], []
    while pos < size:
        if size - pos < PACKET_HEADER_BYTES:
            raise DatasetError(f"{source}: truncated packet header at byte {pos}: {size - pos} bytes left, a "
                               f"packet header has {PACKET_HEADER_BYTES}")
        etype, _src, esize, _tsoff, overflow, capacity, number, _valid = _PACKET_HEADER.unpack_from(buf, pos)
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity or overflow < 0:
            raise DatasetError(f"{source}: corrupt packet header at byte {pos}: eventSize {esize}, "
                               f"eventCapacity {capacity}, eventNumber {number}, eventTSOverflow {overflow} "
                               "(expected eventSize > 0, 0 <= eventNumber <= eventCapacity, overflow >= 0)")
        data = pos + PACKET_HEADER_BYTES
        end = data + capacity * esize
        if end > size:
            raise DatasetError(f"{source}: truncated packet at byte {pos}: its header announces {capacity} "
                               f"events of {esize} bytes ({capacity * esize} bytes) but {size - data} follow")
        if etype == POLARITY_EVENT:
            if esize != POLARITY_EVENT_BYTES:
                raise DatasetError(f"{source}: polarity packet at byte {pos} has eventSize {esize}; polarity "
                                   f"events are {POLARITY_EVENT_BYTES} bytes")
            if number:
                starts.append(data)
                counts.append(number)
                overflows.append(overflow)
        pos = end
    if starts:
        words = np.concatenate([np.frombuffer(buf, dtype="<u4", count=2 * n, offset=s)
                                for s, n in zip(starts, counts)])
    else:
        words = np.zeros(0, np.uint32)
    data_word, stamp = words[0::2], words[1::2]
    if np.any(stamp >> 31):
        k = int(np.argmax(stamp >> 31))
        raise DatasetError(f"{source}: polarity event {k} has a negative 32-bit timestamp ({stamp[k].view(np.int32)}); "
                           "AEDAT 3.1 timestamps are non-negative (the overflow counter carries bit 31)")
    t_us = stamp.astype(np.int64)
    # the overflow counter changes rarely: OR it into runs of packets rather than a per-event array
    ends = np.cumsum(counts)
    run_start, run_value = 0, overflows[0] if overflows else 0
    for k in range(1, len(overflows) + 1):
        if k == len(overflows) or overflows[k] != run_value:
            if run_value:
                t_us[(ends[run_start - 1] if run_start else 0):ends[k - 1]] |= run_value << TS_OVERFLOW_SHIFT
            if k < len(overflows):
                run_start, run_value = k, overflows[k]
    invalid = 0
    if valid_only:
        valid = (data_word & 1).astype(bool)
        invalid = int(valid.size - np.count_nonzero(valid))
        if invalid:
            data_word, t_us = data_word[valid], t_us[valid]
    # narrow first, mask after: fewer and smaller temporaries on files of tens of millions of events
    x = (data_word >> 17).astype(np.uint16)                  # bits 17-31: 15 bits, nothing above
    y = (data_word >> 2).astype(np.uint16)
    y &= 0x7FFF
    polarity = (data_word >> 1).astype(np.uint8)
    polarity &= 1
    return AedatEvents(x, y, polarity, t_us, header, invalid, len(starts))


def read_aedat(path, *, valid_only: bool = True) -> AedatEvents:
    """The polarity events of AEDAT 3.1 file ``path`` (see :func:`decode_aedat`)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file (expected an AEDAT 3.1 recording)") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    return decode_aedat(buf, path, valid_only=valid_only)


def encode_aedat(x, y, polarity, t_us, *, packet_events: int = 4096, valid=None,
                 header_lines=("!AER-DAT3.1", "Format: RAW", "Source 1: DVS128")) -> bytes:
    """An AEDAT 3.1 byte string holding the given polarity events (one source, ``packet_events`` events a
    packet, overflow counters from ``t_us >> 31``): for writing test files and converting recordings.
    ``valid`` (default all True) sets each event's valid mark.  Events must be in time order within a
    packet's overflow epoch; ``x``, ``y`` must fit 15 bits."""
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    polarity, t_us = np.asarray(polarity, np.int64), np.asarray(t_us, np.int64)
    valid = np.ones(x.size, bool) if valid is None else np.asarray(valid, bool)
    if not (x.shape == y.shape == polarity.shape == t_us.shape == valid.shape):
        raise DatasetError("x, y, polarity, t_us (and valid) must have the same length")
    if x.size and (x.min() < 0 or y.min() < 0 or max(x.max(), y.max()) > 0x7FFF or t_us.min() < 0):
        raise DatasetError("x and y must lie in 0..32767 and t_us must be >= 0")
    if int(packet_events) < 1:
        raise DatasetError(f"packet_events must be >= 1, got {packet_events}")
    words = (x << 17) | (y << 2) | ((polarity & 1) << 1) | valid.astype(np.int64)
    overflow = t_us >> TS_OVERFLOW_SHIFT
    low = t_us & 0x7FFFFFFF
    parts = [b"".join(b"#" + line.encode("ascii") + b"\r\n" for line in header_lines) + END_HEADER + b"\r\n"]
    # a packet never spans two overflow epochs: its header holds one counter
    cuts = np.flatnonzero(np.diff(overflow)) + 1
    for seg in np.split(np.arange(x.size), cuts):
        for a in range(0, seg.size, int(packet_events)):
            idx = seg[a:a + int(packet_events)]
            n = idx.size
            ev = np.empty((n, 2), "<u4")
            ev[:, 0], ev[:, 1] = words[idx], low[idx]
            parts.append(_PACKET_HEADER.pack(POLARITY_EVENT, 1, POLARITY_EVENT_BYTES, 4, int(overflow[idx[0]]), n, n,
                                             int(valid[idx].sum())))
            parts.append(ev.tobytes())
    return b"".join(parts)
