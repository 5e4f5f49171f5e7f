"""Reading the canonical format: accepted value forms, header facts, stacks,
CSV flexibility, sniffing, gzip by magic and stdin."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from canonical_support import HEADER, read_all, run_cli
from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind, ProcessFacts, Source
from heaplint.engine.readers import detect_format
from heaplint.engine.readers.canonical import CsvReader, JsonlReader


def jsonl(tmp_path: Path, *records: dict | str, header: dict | None = None, name: str = "t.jsonl") -> Path:
    head = json.dumps(header).encode() + b"\n" if header is not None else HEADER
    body = b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in records)
    path = tmp_path / name
    path.write_bytes(head + body)
    return path


def test_value_forms_are_normalized(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {"kind": "alloc", "time": 2.5, "pid": 4, "heap": "0x10", "address": 4096, "size": 8, "source": "LFH"},
        {"kind": "alloc", "time": 3, "pid": 4, "tid": None, "heap": 16, "address": "0X2000", "size": 0, "source": 6},
        {"kind": "free", "time": 4, "pid": 4, "heap": "0x10", "address": "0x1000", "source": 0, "stack": None},
        {"kind": "create", "time": 5, "pid": 4, "heap": "0x20", "flags": "0x1002"},
        {"kind": "create", "time": 6, "pid": 4, "heap": "0x30"},
        {"kind": "process_end", "time": 7, "pid": 4, "image": ""},
        header={"format": "heaplint-trace", "version": 1, "time_unit": "us"},
    )
    got, _, _ = read_all(str(path))
    assert got[0][:10] == (int(Kind.ALLOC), 2500, 4, 0, 0x10, 0x1000, 8, 0, None, int(Source.LFH))
    assert (got[1].time, got[1].tid, got[1].address, got[1].size, got[1].source) == (3000, 0, 0x2000, 0, 6)
    assert (got[2].kind, got[2].address, got[2].source) == (int(Kind.FREE), 0x1000, 0)
    assert (got[3].heap, got[3].flags) == (0x20, 0x1002)
    assert got[4].flags == 0
    assert got[5].image is None
    assert [e.index for e in got] == list(range(6))
    assert [e.line for e in got] == list(range(2, 8))


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {"kind": "alloc", "time": 1, "pid": 1, "heap": 1, "address": 2, "size": 3, "colour": "red", "x": [1]},
        header={"format": "heaplint-trace", "version": 1, "time_unit": "ns", "future_fact": {"a": 1}},
    )
    got, _, _ = read_all(str(path))
    assert got == [HeapEvent(int(Kind.ALLOC), 1, 1, heap=1, address=2, size=3, line=2)]


def test_header_facts_and_facts_trailer(tmp_path: Path) -> None:
    header = {
        "format": "heaplint-trace", "version": 1, "time_unit": "ms", "pointer_size": 4, "events_lost": 1,
        "capture_start": 0, "capture_end": 1.5, "start_wall_time": "2024-01-01T00:00:00Z", "clock": "QPC",
        "timer_frequency": 10_000_000,
        "processes": [{"pid": 1, "image": "a.exe", "start_seen": True}, {"pid": 2, "end_seen": False}],
    }  # fmt: skip
    path = jsonl(
        tmp_path,
        {"kind": "process_start", "time": 0, "pid": 1, "image": "a.exe"},
        {"kind": "facts", "events_lost": 9, "buffers_lost": 2, "processes": [{"pid": 2, "events_lost": 5}]},
        header=header,
    )
    events, info, _ = read_all(str(path))
    assert len(events) == 1
    assert (info.pointer_size, info.events_lost, info.buffers_lost) == (4, 9, 2)
    assert (info.capture_start, info.capture_end) == (0, 1_500_000)
    assert (info.start_wall_time, info.clock, info.timer_frequency) == ("2024-01-01T00:00:00Z", "QPC", 10_000_000)
    assert info.processes == {1: ProcessFacts(1, "a.exe", True, None, 0), 2: ProcessFacts(2, None, None, None, 5)}


def test_header_is_read_when_the_reader_opens(tmp_path: Path) -> None:
    from heaplint.engine.readers import open_trace

    path = jsonl(tmp_path, header={"format": "heaplint-trace", "version": 1, "time_unit": "ns", "pointer_size": 4})
    reader, trace_input = open_trace(str(path))
    with trace_input:
        assert reader.info.pointer_size == 4
        assert list(reader.events()) == []


def test_stacks_anywhere_and_consistent_redefinition(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {"kind": "alloc", "time": 1, "pid": 1, "heap": 1, "address": 2, "size": 3, "stack": 7},
        {"kind": "stack", "id": 7, "frames": ["a!f", "b!g"]},
        {"kind": "stack", "id": 7, "frames": ["a!f", "b!g"]},
        {"kind": "stack", "id": 8, "frames": []},
        {"kind": "free", "time": 2, "pid": 1, "heap": 1, "address": 2},
    )
    events, _, stacks = read_all(str(path))
    assert stacks == {7: ("a!f", "b!g"), 8: ()}
    assert [e.index for e in events] == [0, 1]  # stack records are not events
    bad = jsonl(tmp_path, {"kind": "stack", "id": 7, "frames": ["x"]}, {"kind": "stack", "id": 7, "frames": ["y"]})
    with pytest.raises(TraceError, match="stack 7 is already defined with different frames") as err:
        read_all(str(bad))
    assert err.value.line == 3


def test_blank_lines_and_bom_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER + b"\n   \n" + b'{"kind":"destroy","time":1,"pid":1,"heap":5}\n\n')
    events, _, _ = read_all(str(path))
    assert [(e.kind, e.heap, e.line) for e in events] == [(int(Kind.DESTROY), 5, 4)]


HAND_CSV = (
    "kind,pid,time,heap,address,size,source,comment,facts\n"
    'header,,,,,,,,"{""format"": ""heaplint-trace"", ""version"": 1, ""time_unit"": ""us""}"\n'
    "alloc,9,1,0x10,4096,24,LFH,anything,\n"
    "\n"
    "free,9,2.25,16,0x1000,,3,,\n"
)


def test_hand_written_csv_with_own_column_order(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HAND_CSV)
    events, info, _ = read_all(str(path))
    assert info.format == "csv"
    assert [(e.kind, e.time, e.pid, e.heap, e.address, e.size, e.source, e.line) for e in events] == [
        (int(Kind.ALLOC), 1000, 9, 16, 4096, 24, 2, 3),
        (int(Kind.FREE), 2250, 9, 16, 4096, 0, 3, 5),
    ]


def test_csv_stack_rows_append_frames(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "kind,id,frame,facts\n"
        'header,,,"{""format"":""heaplint-trace"",""version"":1,""time_unit"":""ns""}"\n'
        "stack,3,inner!a,\nstack,3,\"outer!b, c\",\nstack,4,,\n"
    )
    _, _, stacks = read_all(str(path))
    assert stacks == {3: ("inner!a", "outer!b, c"), 4: ()}


def test_csv_rejects_a_row_wider_than_the_column_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HAND_CSV + "destroy,9,3,16,,,,,,extra\n")
    with pytest.raises(TraceError, match="row has 10 cells, but the column row names only 9") as err:
        read_all(str(path))
    assert err.value.line == 6


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (HEADER, "jsonl"),
        (b"  \n" + HEADER, "jsonl"),
        (b"\xef\xbb\xbf" + HEADER, "jsonl"),
        (b"kind,time,pid\nheader,,\n", "csv"),
        (b'"kind","time"\r\n', "csv"),
    ],
)
def test_sniffing_is_by_content(head: bytes, expected: str) -> None:
    assert detect_format(head, "x") == expected


@pytest.mark.parametrize("head", [b"[1, 2]\n", b"Process,Heap Handle\n", b"kind\n", b"\x00\x01{", b"time,kind\n"])
def test_sniffers_do_not_claim_other_content(head: bytes) -> None:
    assert not JsonlReader.sniff(head)
    assert not CsvReader.sniff(head)


def test_gzip_is_detected_by_magic_not_by_name(tmp_path: Path) -> None:
    plain = jsonl(tmp_path, {"kind": "destroy", "time": 1, "pid": 1, "heap": 5})
    disguised = tmp_path / "really-gzip.jsonl"
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    not_gzip = tmp_path / "not-gzip.jsonl.gz"
    not_gzip.write_bytes(plain.read_bytes())
    assert read_all(str(disguised))[0] == read_all(str(plain))[0] == read_all(str(not_gzip))[0]
    assert len(read_all(str(disguised))[0]) == 1


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("content", [HEADER + b'{"kind":"alloc","time":1,"pid":1,"heap":1,"address":2,"size":3}\n', HAND_CSV.encode()])
def test_stdin_is_read_with_dash(content: bytes, compress: bool) -> None:
    data = gzip.compress(content) if compress else content
    done = run_cli("stats", "-", "--format", "json", stdin=data)
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads(done.stdout)["traces"][0]
    assert doc["trace"] == "-"
    assert doc["events"] == content.count(b"\n") - (1 if content.startswith(b"{") else 3)
