"""The C accelerator (engine/readers/_etlfast.c) against the pure-Python reader.

The pure-Python code is the reference: for any input, valid or hostile, both
must give the same bytes, events, counts and messages, or fail with the same
error class.  Random and mutated inputs also fuzz the C code for overreads
and crashes (a crash here takes the test process down with it).
"""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import asdict
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_impl import c_module
from etl_writer import Record, write_etl
from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers import etl_native
from heaplint.engine.readers.base import ReaderOptions
from heaplint.engine.readers.etl import EtlReader
from heaplint.engine.readers.lzxpress import DecompressionError, decompress, decompress_python
from lzxpress_compress import compress

C = c_module()
pytestmark = pytest.mark.skipif(C is None, reason="the C accelerator is not built (a pure-Python install)")


def using(native, fn: Callable, *args):
    """``fn(*args)`` with ``etl_native.NATIVE`` set to ``native``; (result, error class)."""
    saved = etl_native.NATIVE
    etl_native.NATIVE = native
    try:
        return fn(*args), None
    except (DecompressionError, TraceError) as err:
        return str(err), type(err)
    finally:
        etl_native.NATIVE = saved


def both_decompress(src: bytes, out_size: int | None) -> None:
    expected = using(None, decompress_python, src, out_size)
    assert using(C, decompress, src, out_size) == expected


# --- LZ77 decompression --------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_random_bytes_decompress_alike(src: bytes, out_size: int) -> None:
    both_decompress(src, out_size)


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_mutated_streams_decompress_alike(data) -> None:
    plain = data.draw(st.one_of(st.binary(max_size=200), st.sampled_from([b"ab" * 300, b"\0" * 5000, bytes(range(256)) * 3])))
    raw = bytearray(compress(plain))
    for _ in range(data.draw(st.integers(0, 6))):
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        at = data.draw(st.integers(0, len(raw)))
        if op == "set" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    out_size = data.draw(st.one_of(st.just(len(plain)), st.integers(0, 2 * len(plain) + 8)))
    both_decompress(bytes(raw), out_size)


@pytest.mark.parametrize(
    "src",
    [
        # one literal, then a match whose 32-bit length is 4 GiB: cut at the expected size
        bytes.fromhex("00000040") + b"a" + bytes.fromhex("0700") + b"\x0f\xff\x00\x00\xff\xff\xff\xff",
        bytes.fromhex("00000040") + b"a" + bytes.fromhex("0700") + b"\x0f\xff\x00\x00\x05\x00\x00\x00",  # below minimum
        bytes.fromhex("00000040") + b"a" + bytes.fromhex("0700") + b"\x0f\xff\x00",  # 16-bit length cut short
        bytes.fromhex("00000040") + b"a" + bytes.fromhex("0f00"),  # needs a nibble byte that is not there
        bytes.fromhex("ffffffff") + b"\x00",  # a match token cut short
    ],
)
@pytest.mark.parametrize("out_size", [0, 1, 100, 4096])
def test_hostile_match_lengths(src: bytes, out_size: int) -> None:
    both_decompress(src, out_size)


def test_c_decompress_rejects_what_python_rejects() -> None:
    assert using(C, decompress, bytes.fromhex("00000080") + b"\x08\x00", None)[1] is DecompressionError
    assert using(C, decompress, b"\x00\x00\x00\x40a\x00\x00", 3) == (b"aaa", None)


# --- the record walk ------------------------------------------------------------


def _trace(compress: bool, header: str, stack_mode: str) -> bytes:
    fh = io.BytesIO()
    events = [HeapEvent(Kind.PROCESS_START, 100, 50, 7, image="app.exe"), HeapEvent(Kind.HEAP_CREATE, 200, 50, 7, heap=0x1000)]
    t = 300
    for i in range(40):
        events.append(HeapEvent(Kind.ALLOC, t, 50, 8 + i % 3, 0x1000, 0x2000 + 16 * i, 16 + i, source=i % 7))
        t += 100
        if i % 3 == 2:
            events.append(HeapEvent(Kind.REALLOC, t, 50, 8, 0x1000, 0x9000 + 16 * i, 64, 0x2000 + 16 * i, 16 + i, 3))
            t += 100
        if i % 4 == 3:
            events.append(HeapEvent(Kind.FREE, t, 50, 9, 0x1000, 0x2000 + 16 * (i - 1), source=1))
            t += 100
    events.append(HeapEvent(Kind.DESTROY, t, 50, 7, 0x1000))
    records = [Record(e, frames=(0x7FF600001000 + 16 * (i % 3),) if e.kind == Kind.ALLOC else (), header=header)
               for i, e in enumerate(events)]  # fmt: skip
    write_etl(fh, records, cpus=2, buffer_size=1024, noise=True, compress=compress, stack_mode=stack_mode)
    return fh.getvalue()


TRACES = [_trace(c, h, s) for c in (False, True) for h in ("system", "compact") for s in ("direct", "key")]
TRACES.append(_trace(False, "event_header", "direct"))


def read_all(raw: bytes, skip: bool) -> tuple:
    """Everything a reader tells about ``raw``: events (or the error), counts, facts."""
    reader = EtlReader(io.BytesIO(raw), "fuzz.etl", ReaderOptions(skip_bad_records=skip))  # type: ignore[arg-type]
    try:
        events = list(reader.events())
    except TraceError as err:
        return ("error", str(err), reader.info.bad_records)
    return (events, reader.record_counts, reader.heap_opcode_counts, reader.stacks, asdict(reader.info),
            reader.buffer_stats, reader._kernel.other_provider_records, reader._kernel.unmatched_stacks)  # fmt: skip


def both_read(raw: bytes) -> None:
    for skip in (False, True):
        expected = using(None, read_all, raw, skip)[0]
        assert using(C, read_all, raw, skip)[0] == expected


@pytest.mark.parametrize("number", range(len(TRACES)))
def test_valid_traces_read_alike(number: int) -> None:
    both_read(TRACES[number])
    events = using(C, read_all, TRACES[number], False)[0][0]
    assert len([e for e in events if e.kind == Kind.ALLOC]) == 40
    reader = EtlReader(io.BytesIO(TRACES[number]), "t.etl")  # type: ignore[arg-type]
    saved, etl_native.NATIVE = etl_native.NATIVE, C
    try:
        list(reader.events())
    finally:
        etl_native.NATIVE = saved
    heap, other, messages, other_providers = reader._native.counts()
    assert messages and other and (heap or number == len(TRACES) - 1)  # the C side did take records


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 420), st.integers(-(2**63), 2**63 - 1), st.integers(1, 10**9),
       st.integers(1, 2**62), st.booleans())  # fmt: skip
def test_walk_survives_any_bytes(data: bytes, pos: int, origin: int, num: int, den: int, seeded: bool) -> None:
    """Random buffers straight into the C walk: it returns a position at or after
    ``pos`` and appends only HeapEvents, whatever the bytes."""
    decoder = C.Decoder(HeapEvent, origin, num, den, {}, (1, 2, 3, 4, 5), bytes(16))
    out: list = [HeapEvent(Kind.ALLOC, 0, 0, 0)] if seeded else []
    end, index = decoder.walk(data, pos, out, 7)
    assert end >= pos and index >= 7
    assert all(type(e) is HeapEvent and len(e) == 15 for e in out)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_traces_read_alike(data) -> None:
    raw = bytearray(data.draw(st.sampled_from(TRACES)))
    for _ in range(data.draw(st.integers(1, 10))):
        # mostly inside the data buffers (the first 1024 bytes are the logfile header buffer)
        at = data.draw(st.integers(1024, len(raw) - 1) | st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255) | st.sampled_from([0, 0xFF, 0x10, 0xC0, 0x12, 0x18]))
    both_read(bytes(raw))


def test_timestamps_beyond_int64_arithmetic_fall_back_to_python() -> None:
    # a huge timer frequency gives a clock ratio the C side declines per record
    fh = io.BytesIO()
    # 7 Hz: ns = ticks * 10**9 // 7, and 1.4e10 ticks * 10**9 leaves int64
    events = [HeapEvent(Kind.ALLOC, (2 * 10**9 + i) * 10**9, 1, 2, 3, 0x40 + 16 * i, 8, source=1) for i in range(5)]
    write_etl(fh, events, cpus=1, buffer_size=1024, timer_frequency=7)
    both_read(fh.getvalue())
    decoded = using(C, read_all, fh.getvalue(), False)[0][0]
    assert [e._replace(index=0) for e in decoded] == events


def test_version_says_whether_the_accelerator_is_in_use() -> None:
    out = subprocess.run([sys.executable, "-m", "heaplint.engine", "--version"], capture_output=True, text=True)
    assert ".etl reader: C accelerator" in out.stdout
    env = {"HEAPLINT_PURE_PYTHON": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "heaplint.engine", "--version"], capture_output=True, text=True, env=env)
    assert ".etl reader: pure Python, HEAPLINT_PURE_PYTHON set)" in out.stdout


def _read_wstring_reference(data: bytes, pos: int, end: int) -> str:
    stop = pos
    while stop + 1 < end and (data[stop] or data[stop + 1]):
        stop += 2
    return data[pos:stop].decode("utf-16-le", "replace")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=40).map(lambda b: b.replace(b"\x01", b"\x00")), st.integers(0, 44), st.integers(0, 44))
def test_read_wstring_finds_the_first_aligned_terminator(data: bytes, pos: int, end: int) -> None:
    from heaplint.engine.readers.etl_kernel import read_wstring

    end = min(end, len(data))
    assert read_wstring(data, pos, end) == _read_wstring_reference(data, pos, end)
