"""The .etl reader against real capture files (../shared/samples/etl).

Expected values come from the files themselves, through a deliberately small
decode written here (fixed offsets, its own record walk), not from the reader:
the logfile header fields at their documented offsets, and a record count per
header type.  The decompressor it uses is tested on its own against the
[MS-XCA] examples (test_etl_lzxpress.py).
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from heaplint.engine.events import Kind
from heaplint.engine.readers import open_trace
from heaplint.engine.readers.etl import EtlReader
from heaplint.engine.readers.lzxpress import decompress_python as decompress  # the reference
from etl_impl import etl_implementation  # noqa: F401  (each test runs with C and pure Python)

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "etl"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"sample traces not present at {SAMPLES}")

PLAIN = ["AMSITrace.etl", "ShutdownPerfDiagLogger.etl", "lxcore_kernel.etl", "SelfDescribingSingleEvent.etl"]
ZIPPED = ["gcevents.etl.zip", "net.4.5.2.x64.etl.zip", "net.4.5.2.x86.etl.zip"]
NAMES = {1: "system32", 2: "system64", 10: "full32", 11: "instance32", 16: "perfinfo32", 17: "perfinfo64",
         18: "event_header32", 19: "event_header64", 20: "full64", 21: "instance64", 3: "compact32", 4: "compact64"}  # fmt: skip


@functools.lru_cache(maxsize=None)
def sample_bytes(name: str) -> bytes:
    path = SAMPLES / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            (member,) = [m for m in zf.namelist() if m.endswith(".etl")]
            return zf.read(member)
    return path.read_bytes()


@functools.lru_cache(maxsize=None)
def independent_counts(data: bytes) -> Counter:
    """Records per header type: buffer sizes at offset 0/4, flag 0x40 at 0x34,
    record header type in byte 2, size in bytes 4-5 (hook-style headers) or 0-1."""
    counts: Counter = Counter()
    off = 0
    while off < len(data):
        size, saved = struct.unpack_from("<II", data, off)
        (flag,) = struct.unpack_from("<H", data, off + 0x34)
        body = decompress(data[off + 72 : off + size], saved - 72) if flag & 0x40 else data[off + 72 : off + saved]
        p = 0
        while p + 8 <= len(body):
            htype = body[p + 2]
            rsize = struct.unpack_from("<H", body, p + (4 if htype in (1, 2, 3, 4, 16, 17) else 0))[0]
            counts[NAMES[htype]] += 1
            p += (rsize + 7) & ~7
        off += size
    return counts


def independent_header(data: bytes) -> dict:
    """The logfile header of a file whose header record is 64-bit (all samples are)."""
    base = 72 + 32
    pointer_size, events_lost, mhz = struct.unpack_from("<III", data, base + 0x2C)
    assert pointer_size == 8
    freq, start, clock, buffers_lost = struct.unpack_from("<qqII", data, base + 0x100)
    return {"pointer_size": pointer_size, "events_lost": events_lost, "timer_frequency": freq,
            "clock": clock, "buffers_lost": buffers_lost, "start": start}  # fmt: skip


@functools.lru_cache(maxsize=None)
def read(name: str) -> tuple[EtlReader, list]:
    reader = EtlReader(io.BufferedReader(io.BytesIO(sample_bytes(name))), name)  # type: ignore[arg-type]
    return reader, list(reader.events())


@pytest.mark.parametrize("name", PLAIN + ZIPPED)
def test_every_sample_reads_and_counts_match(name: str) -> None:
    data = sample_bytes(name)
    reader, events = read(name)
    assert reader.info.bad_records == 0
    assert reader.record_counts == dict(independent_counts(data))
    hdr = independent_header(data)
    assert reader.info.pointer_size == hdr["pointer_size"]
    assert reader.info.events_lost == hdr["events_lost"]
    assert reader.info.buffers_lost == hdr["buffers_lost"]
    assert reader.info.timer_frequency == hdr["timer_frequency"]
    assert reader.info.clock == {1: "qpc", 2: "system-time", 3: "cpu-cycles"}[hdr["clock"]]
    assert reader.info.start_wall_time is not None and reader.info.start_wall_time.startswith("20")
    times = [e.time for e in events]
    assert times == sorted(times)


def test_amsitrace_reports_its_lost_events() -> None:
    # SOURCES.md: "the logfile header reports lost events"
    reader, _ = read("AMSITrace.etl")
    assert reader.info.events_lost > 0
    assert reader.info.events_lost == independent_header(sample_bytes("AMSITrace.etl"))["events_lost"]


def test_lxcore_header_values() -> None:
    reader, _ = read("lxcore_kernel.etl")
    header = reader.header
    assert header is not None
    assert (header.processors, header.build, header.logger_name) == (6, 19041, "lxcore_kernel")
    assert reader.info.start_wall_time == "2020-07-14T12:04:31.138736Z"


@pytest.mark.parametrize("name, image", [("net.4.5.2.x64.etl.zip", "Test.x64.exe"), ("net.4.5.2.x86.etl.zip", "Test.x86.exe")])
def test_net_samples_process_events(name: str, image: str) -> None:
    reader, events = read(name)
    starts = [e for e in events if e.kind == Kind.PROCESS_START]
    ends = [e for e in events if e.kind == Kind.PROCESS_END]
    assert [e.image for e in starts] == [image] and [e.image for e in ends] == [image]
    assert starts[0].pid == ends[0].pid and starts[0].time < ends[0].time
    facts = reader.info.processes[starts[0].pid]
    assert (facts.image, facts.start_seen, facts.end_seen) == (image, True, True)
    # processes that only appear in the rundown existed before the trace
    system = reader.info.processes[4]
    assert (system.image, system.start_seen, system.end_seen) == ("System", False, False)
    assert reader.buffer_stats["compressed"] == reader.buffer_stats["buffers"] - 1  # all but the header


def test_net_sample_is_not_in_time_order_in_the_file() -> None:
    """The merge matters: buffers of different processors overlap in time."""
    data = sample_bytes("net.4.5.2.x64.etl.zip")
    firsts = []
    off = 0
    while off < len(data):
        size, saved = struct.unpack_from("<II", data, off)
        (flag,) = struct.unpack_from("<H", data, off + 0x34)
        if flag & 0x40:
            body = decompress(data[off + 72 : off + size], saved - 72)
            ts_at = 8 if body[2] in (16, 17) else 16
            firsts.append(struct.unpack_from("<q", body, ts_at)[0])
        off += size
    assert firsts != sorted(firsts)


def test_samples_are_detected_by_content(tmp_path: Path) -> None:
    # a misleading name: detection looks at the bytes
    target = tmp_path / "trace.csv"
    target.write_bytes((SAMPLES / "lxcore_kernel.etl").read_bytes())
    reader, trace_input = open_trace(str(target))
    with trace_input:
        assert reader.name == "etl"
        assert list(reader.events()) == []
        assert reader.info.pointer_size == 8


def test_single_member_zip_is_read_through_trace_input() -> None:
    reader, trace_input = open_trace(str(SAMPLES / "gcevents.etl.zip"))
    with trace_input:
        assert reader.name == "etl"
        list(reader.events())
        assert reader.record_counts == dict(independent_counts(sample_bytes("gcevents.etl.zip")))
