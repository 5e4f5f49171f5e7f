"""Synthetic .etl files written by tests/etl_writer.py decode to what was written."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_writer import Record, write_etl
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers.etl import EtlReader
from etl_impl import etl_implementation  # noqa: F401  (each test runs with C and pure Python)

APP_BASE, APP_SIZE = 0x7FF600000000, 0x100000
APP32_BASE = 0x00400000
KERNEL_BASE, KERNEL_SIZE = 0xFFFFF80000000000, 0x800000
IMAGES = [
    (0, KERNEL_BASE, KERNEL_SIZE, r"\SystemRoot\system32\ntoskrnl.exe"),
    (100, APP_BASE, APP_SIZE, r"\Device\HarddiskVolume2\app\app.exe"),
    (200, APP32_BASE, APP_SIZE, r"C:\Windows\SysWOW64\app32.exe"),
]
PROCS = {100: ("app.exe", 8), 200: ("app32.exe", 4)}
KERNEL32_BASE = 0x80000000
IMAGES32 = [(0, KERNEL32_BASE, KERNEL_SIZE, r"\SystemRoot\system32\ntoskrnl.exe"), IMAGES[2]]


def render(pid: int, address: int) -> str:
    for ipid, base, size, path in IMAGES + IMAGES32:
        if ipid in (pid, 0) and base <= address < base + size:
            return f"{path.rsplit(chr(92), 1)[-1]}+0x{address - base:x}"
    return f"0x{address:x}"


@st.composite
def traces(draw, pointer_size: int = 8):
    """(records, options): a random heap trace in time order."""
    pids = draw(st.sampled_from([[100], [200], [100, 200]])) if pointer_size == 8 else [200]
    cpus = draw(st.integers(1, 4))
    t = 100
    records: list[Record] = []
    live: dict[int, list[int]] = {p: [] for p in pids}
    heaps = {100: 0x10000, 200: 0x20000}
    headers = draw(st.sampled_from([("system",), ("system", "compact", "classic", "event_header")]))
    for pid in pids:
        records.append(Record(HeapEvent(Kind.PROCESS_START, t, pid, 1, image=PROCS[pid][0]), cpu=0))
        t += 100
        records.append(Record(HeapEvent(Kind.HEAP_CREATE, t, pid, 1, heap=heaps[pid], flags=draw(st.integers(0, 3)))))
        t += 100
    for _ in range(draw(st.integers(0, 60))):
        pid = draw(st.sampled_from(pids))
        psize = PROCS[pid][1]
        tid = draw(st.integers(1, 6))
        base = APP_BASE if psize == 8 else APP32_BASE
        kind = draw(st.sampled_from(["alloc", "alloc", "free", "realloc-move", "realloc-inplace", "realloc-pair"]))
        source = draw(st.integers(0, 6))
        address = draw(st.integers(1, 2**24)) * 16 + (0x7F0000000000 if psize == 8 else 0)
        size = draw(st.integers(0, 2**20))
        frames = tuple(base + draw(st.integers(0, APP_SIZE - 1)) for _ in range(draw(st.integers(0, 4))))
        kbase = KERNEL_BASE if pointer_size == 8 else KERNEL32_BASE
        kernel = tuple(kbase + draw(st.integers(0, 0xFFFF)) for _ in range(draw(st.integers(0, 2))))
        common = dict(cpu=draw(st.integers(0, cpus - 1)), pointer_size=psize if pointer_size == 8 else None,
                      frames=frames, kernel_frames=kernel, header=draw(st.sampled_from(headers)))  # fmt: skip
        if kind != "alloc" and not live[pid]:
            kind = "alloc"
        if kind == "alloc":
            ev = HeapEvent(Kind.ALLOC, t, pid, tid, heaps[pid], address, size, source=source)
            live[pid].append(address)
        elif kind == "free":
            ev = HeapEvent(Kind.FREE, t, pid, tid, heaps[pid], live[pid].pop(), source=source)
        else:
            old = live[pid].pop()
            new = old if kind == "realloc-inplace" else address
            ev = HeapEvent(Kind.REALLOC, t, pid, tid, heaps[pid], new, size, old, draw(st.integers(0, 2**20)), source)
            live[pid].append(new)
            if kind == "realloc-pair":  # the inner Alloc(new)/Free(old) some capture paths also log
                t += 100
                records.append(Record(ev, **common))  # type: ignore[arg-type]
                ev = HeapEvent(Kind.ALLOC, t, pid, tid, heaps[pid], new, size, source=source)
                records.append(Record(ev, **common))  # type: ignore[arg-type]
                t += 100
                ev = HeapEvent(Kind.FREE, t, pid, tid, heaps[pid], old, source=source)
        records.append(Record(ev, **common))  # type: ignore[arg-type]
        t += 100 * draw(st.integers(1, 30))
    for pid in pids:
        if draw(st.booleans()):
            records.append(Record(HeapEvent(Kind.DESTROY, t, pid, 1, heaps[pid])))
            t += 100
        records.append(Record(HeapEvent(Kind.PROCESS_END, t, pid, 1, image=PROCS[pid][0]), cpu=cpus - 1))
        t += 100
    options = dict(
        pointer_size=pointer_size, cpus=cpus, compress=draw(st.booleans()),
        buffer_size=draw(st.sampled_from([1024, 2048, 8192])), noise=draw(st.booleans()),
        stack_mode=draw(st.sampled_from(["direct", "key"])), key_cache_size=draw(st.sampled_from([2, 1000])),
    )  # fmt: skip
    return records, options


def decode(records: list[Record], **options) -> tuple[EtlReader, list[HeapEvent]]:
    fh = io.BytesIO()
    write_etl(fh, records, images=IMAGES if options.get("pointer_size", 8) == 8 else IMAGES32, **options)
    fh.seek(0)
    reader = EtlReader(fh, "synthetic.etl")  # type: ignore[arg-type]
    return reader, list(reader.events())


def expected(rec: Record, stack_mode: str) -> tuple:
    ev = rec.event
    if rec.frames or rec.kernel_frames:
        frames = rec.kernel_frames + rec.frames
        stack = tuple(render(ev.pid, a) for a in frames)
    else:
        stack = None
    return ev._replace(stack=stack, index=0, line=0)


def comparable(reader: EtlReader, ev: HeapEvent) -> HeapEvent:
    stack = reader.stacks.get(ev.stack) if ev.stack is not None else None
    return ev._replace(stack=stack, index=0, line=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces())
def test_decoded_events_equal_written(trace) -> None:
    records, options = trace
    reader, events = decode(records, **options)
    assert [comparable(reader, e) for e in events] == [expected(r, options["stack_mode"]) for r in records]
    assert reader.info.bad_records == 0
    assert sorted(e.index for e in events) == list(range(len(events)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(pointer_size=4))
def test_32_bit_trace(trace) -> None:
    records, options = trace
    reader, events = decode(records, **options)
    assert reader.info.pointer_size == 4
    assert [comparable(reader, e) for e in events] == [expected(r, options["stack_mode"]) for r in records]


def many_events(n: int, cpus: int = 3) -> list[Record]:
    out = []
    for i in range(n):
        out.append(Record(HeapEvent(Kind.ALLOC, 100 * (i + 1), 100, i % 5, 0x10000, 0x1000 + 16 * i, 16, source=3),
                          cpu=(i * 7 // 3) % cpus))  # fmt: skip
    return out


def test_file_order_is_not_time_order_but_output_is() -> None:
    records = many_events(400)
    fh = io.BytesIO()
    write_etl(fh, records, cpus=3, buffer_size=512)
    data = fh.getvalue()
    # the first record timestamp of each data buffer, in file order
    firsts, off = [], 0
    while off < len(data):
        size = struct.unpack_from("<I", data, off)[0]
        if off:
            firsts.append(struct.unpack_from("<q", data, off + 72 + 16)[0])
        off += size
    assert len(firsts) > 10 and firsts != sorted(firsts)
    reader, events = decode(records, cpus=3, buffer_size=512)
    assert [e.time for e in events] == [r.event.time for r in records]


def test_lost_buffer_flags_and_header_counts() -> None:
    records = many_events(300)
    reader, _ = decode(records, cpus=2, buffer_size=512, events_lost=7, buffers_lost=1,
                       events_lost_buffers=[1, 3], lost_buffers=[2, 4, 5])  # fmt: skip
    assert reader.buffer_stats["events_lost_flag"] == 2
    assert reader.buffer_stats["buffer_lost_flag"] == 3
    assert reader.info.events_lost == 7
    assert reader.info.buffers_lost == 3  # more buffers flagged than the header counted


def test_events_lost_flag_without_header_count_is_reported() -> None:
    reader, _ = decode(many_events(200), buffer_size=512, events_lost_buffers=[0])
    assert reader.info.events_lost == 1
    assert any("lower bound" in note for note in reader.info.notes)


@pytest.mark.parametrize("clock_type, frequency", [(1, 10_000_000), (1, 3_579_545), (2, 10_000_000), (3, 0)])
def test_clock_types(clock_type: int, frequency: int) -> None:
    # CPU-cycle clock: the writer's CpuSpeedInMHz is 3000 -> 3 ticks per ns
    freq = {1: frequency, 2: 10_000_000, 3: 3_000_000_000}[clock_type]
    step = 1_000_000_000 // __import__("math").gcd(1_000_000_000, freq)  # ns representable exactly
    records = [Record(HeapEvent(Kind.ALLOC, step * (i + 1), 100, 1, 1, 16 * i, 8)) for i in range(20)]
    fh = io.BytesIO()
    write_etl(fh, records, clock_type=clock_type, timer_frequency=freq)
    fh.seek(0)
    reader = EtlReader(fh, "clock.etl")  # type: ignore[arg-type]
    assert [e.time for e in reader.events()] == [r.event.time for r in records]
    assert reader.info.clock == {1: "qpc", 2: "system-time", 3: "cpu-cycles"}[clock_type]


def test_rundown_processes_are_not_started_in_the_trace() -> None:
    records = [Record(HeapEvent(Kind.ALLOC, 1000, 100, 1, 1, 16, 8))]
    fh = io.BytesIO()
    write_etl(fh, records, rundown={100: "app.exe", 4: "System"}, rundown_end={100: "app.exe"})
    fh.seek(0)
    reader = EtlReader(fh, "rundown.etl")  # type: ignore[arg-type]
    events = list(reader.events())
    assert [e.kind for e in events] == [Kind.ALLOC]  # rundown is facts, not events
    facts = reader.info.processes[100]
    assert (facts.image, facts.start_seen, facts.end_seen) == ("app.exe", False, False)


def test_without_process_records() -> None:
    records = [
        Record(HeapEvent(Kind.PROCESS_START, 100, 100, 1, image="app.exe")),
        Record(HeapEvent(Kind.ALLOC, 200, 100, 1, 1, 16, 8)),
        Record(HeapEvent(Kind.PROCESS_END, 300, 100, 1, image="app.exe")),
    ]
    reader, events = decode(records, process_records=False)
    assert [e.kind for e in events] == [Kind.ALLOC]
    assert reader.info.processes == {}


def test_buffers_out_of_sequence_in_the_file_are_read_in_sequence() -> None:
    """A circular-mode file wraps: its oldest buffers come after the newest."""
    records = many_events(400)
    fh = io.BytesIO()
    write_etl(fh, records, cpus=2, buffer_size=1024)
    data = fh.getvalue()
    header, body = data[:1024], data[1024:]
    buffers = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    assert len(buffers) > 8
    half = len(buffers) // 2
    wrapped = header + b"".join(buffers[half:] + buffers[:half])
    reader = EtlReader(io.BytesIO(wrapped), "circular.etl")  # type: ignore[arg-type]
    assert [e.time for e in reader.events()] == [r.event.time for r in records]
    assert reader.buffer_stats["reordered"] == 2
    assert any("sequence" in note for note in reader.info.notes)
