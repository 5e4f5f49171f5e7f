"""Detecting .etl content, bad input, and the CLI on .etl files."""

from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_writer import Record, write_etl
from heaplint.engine.cli import main
from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers import ReaderOptions, detect_format, open_trace
from heaplint.engine.readers.etl import EtlReader
from heaplint.engine.readers.etl_container import FLAG_COMPRESSED
from etl_impl import etl_implementation  # noqa: F401  (each test runs with C and pure Python)

EVENTS = [
    HeapEvent(Kind.PROCESS_START, 100, 50, 7, image="app.exe"),
    HeapEvent(Kind.HEAP_CREATE, 200, 50, 7, heap=0x1000),
    *(HeapEvent(Kind.ALLOC, 300 + 100 * i, 50, 8, 0x1000, 0x2000 + 16 * i, 16, source=2) for i in range(200)),
    *(HeapEvent(Kind.FREE, 40_000 + 100 * i, 50, 8, 0x1000, 0x2000 + 16 * i, source=2) for i in range(150)),
    HeapEvent(Kind.PROCESS_END, 90_000, 50, 7, image="app.exe"),
]


def etl_bytes(**options) -> bytes:
    fh = io.BytesIO()
    write_etl(fh, EVENTS, cpus=2, buffer_size=1024, **options)
    return fh.getvalue()


def _corruptible(compress: bool) -> bytes:
    fh = io.BytesIO()
    records = [Record(e, frames=(0x7FF600001000,) if e.kind == Kind.ALLOC else ()) for e in EVENTS[:60]]
    write_etl(fh, records, cpus=2, buffer_size=1024, noise=True, compress=compress, stack_mode="key", key_cache_size=3)
    return fh.getvalue()


CORRUPTIBLE = [_corruptible(False), _corruptible(True)]


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "capture.bin"  # the name says nothing
    path.write_bytes(etl_bytes())
    return path


def test_detected_by_content_whatever_the_name(trace: Path) -> None:
    assert detect_format(trace.read_bytes()[:65536], str(trace)) == "etl"
    reader, trace_input = open_trace(str(trace))
    with trace_input:
        assert isinstance(reader, EtlReader)
        assert sum(1 for _ in reader.events()) == len(EVENTS)


@pytest.mark.parametrize(
    "text",
    [
        b'{"kind": "alloc", "time": 1, "pid": 1}\n' * 100,
        b"kind,time,pid,heap,address,size\nalloc,1,1,0x10,0x20,16\n" * 50,
        b"  BeginHeader\nHeapAlloc,  TimeStamp,     Process Name ( PID),  ThreadID\n" * 40,
        b"Process,Type,Thread,Stack,Is Realloc,Source,AllocTime,FreeTime,Count,Size\n" * 40,
        bytes(4096),
        b"\xff" * 4096,
    ],
)
def test_text_and_junk_never_sniff_as_etl(text: bytes) -> None:
    assert not EtlReader.sniff(text)


def test_sniff_needs_the_logfile_header_record() -> None:
    data = bytearray(etl_bytes())
    assert EtlReader.sniff(bytes(data[:4096]))
    data[72 + 6] = 0x01  # hook id of the first record is no longer 0 (the logfile header)
    assert not EtlReader.sniff(bytes(data[:4096]))
    assert not EtlReader.sniff(bytes(etl_bytes()[:100]))  # too short to tell


def test_forced_format_on_text_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"not an etl file at all\n" * 20)
    reader, trace_input = open_trace(str(path), "etl")
    with trace_input, pytest.raises(TraceError) as err:
        list(reader.events())
    assert err.value.path == str(path)


def truncated(tmp_path: Path) -> Path:
    data = etl_bytes()
    path = tmp_path / "cut.etl"
    path.write_bytes(data[: len(data) - 700])
    return path


def test_truncated_file_fails_cleanly_or_is_skipped(tmp_path: Path, capsys) -> None:
    path = truncated(tmp_path)
    assert main(["stats", str(path)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert main(["stats", "--skip-bad-records", "--format", "json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["traces"][0]["format"] == "etl"


def test_corrupt_compressed_buffer(tmp_path: Path) -> None:
    data = bytearray(etl_bytes(compress=True))
    # find the first compressed buffer and break its first match token
    off = 0
    while True:
        size, saved = struct.unpack_from("<II", data, off)
        if struct.unpack_from("<H", data, off + 0x34)[0] & FLAG_COMPRESSED:
            break
        off += size
    data[off + 72 : off + 76] = b"\xff\xff\xff\xff"  # every token a match
    data[off + 76 : off + 78] = b"\xf8\xff"  # distance 8192 before the start
    path = tmp_path / "corrupt.etl"
    path.write_bytes(bytes(data))
    reader, trace_input = open_trace(str(path))
    with trace_input, pytest.raises(TraceError, match="corrupt"):
        list(reader.events())


def test_stats_on_etl_gzip_and_stdin(trace: Path, tmp_path: Path, capsys) -> None:
    assert main(["stats", "--format", "json", str(trace)]) == 0
    doc = json.loads(capsys.readouterr().out)["traces"][0]
    assert doc["format"] == "etl"
    (proc,) = doc["processes"]
    assert (proc["pid"], proc["image"], proc["live_blocks"]) == (50, "app.exe", 0)  # process end: heaps retired
    gz = tmp_path / "t.etl.gz"
    gz.write_bytes(gzip.compress(trace.read_bytes()))
    assert main(["stats", "--format", "json", str(gz)]) == 0
    assert json.loads(capsys.readouterr().out)["traces"][0]["events"] == doc["events"]
    # stdin cannot seek: the reader spools it
    out = subprocess.run(
        [sys.executable, "-m", "heaplint.engine", "stats", "--format", "json", "-"],
        input=trace.read_bytes(), capture_output=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["traces"][0]["events"] == doc["events"]


def test_records_of_other_kinds_do_not_disturb(tmp_path: Path) -> None:
    fh = io.BytesIO()
    write_etl(fh, [Record(e) for e in EVENTS], cpus=3, buffer_size=1024, noise=True)
    fh.seek(0)
    reader = EtlReader(fh, "noisy.etl")  # type: ignore[arg-type]
    assert [e._replace(index=0) for e in reader.events()] == [e._replace(index=0) for e in EVENTS]
    for kind in ("compact64", "perfinfo64", "full64", "instance64", "event_header64", "message"):
        assert reader.record_counts[kind] > 0, kind
    assert reader.heap_opcode_counts[37] > 0  # Expand: counted, not replayed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_files_fail_cleanly(data) -> None:
    """Flipped bytes anywhere: the reader yields events or raises TraceError,
    and with skip_bad_records it never raises at all (except for an unreadable
    logfile header, which is not a record)."""
    raw = bytearray(data.draw(st.sampled_from(CORRUPTIBLE)))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    for skip in (False, True):
        reader = EtlReader(io.BytesIO(bytes(raw)), "fuzz.etl", ReaderOptions(skip_bad_records=skip))  # type: ignore[arg-type]
        try:
            for ev in reader.events():
                assert isinstance(ev, HeapEvent)
        except TraceError:
            pass




def test_zero_padding_after_the_last_buffer_is_the_end(tmp_path: Path) -> None:
    # EVENT_TRACE_FILE_MODE_PREALLOCATE leaves the unused end of the file zeroed
    path = tmp_path / "prealloc.etl"
    path.write_bytes(etl_bytes() + bytes(64 * 1024))
    reader, trace_input = open_trace(str(path))
    with trace_input:
        assert sum(1 for _ in reader.events()) == len(EVENTS)
        assert reader.info.bad_records == 0


def test_heap_record_with_unusual_marker_bits_is_still_decoded() -> None:
    fh = io.BytesIO()
    write_etl(fh, [HeapEvent(Kind.ALLOC, 100, 1, 2, 3, 0x40, 8, source=1)], cpus=1, buffer_size=1024)
    data = bytearray(fh.getvalue())
    record = 1024 + 72  # the first record of the first data buffer
    assert data[record + 6 : record + 8] == b"\x21\x10"  # hook 0x1021: Alloc
    data[record + 3] = 0xC4  # marker flags other than exactly 0xC0
    reader = EtlReader(io.BytesIO(bytes(data)), "marker.etl")  # type: ignore[arg-type]
    assert [e._replace(index=0) for e in reader.events()] == [HeapEvent(Kind.ALLOC, 100, 1, 2, 3, 0x40, 8, source=1)]
