"""write_trace / CanonicalWriter then the readers: what goes out comes back."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical_support import (
    events_strategy,
    facts_of,
    infos,
    numbered,
    read_all,
    run_cli,
    stacks_strategy,
    without_lines,
)
from heaplint.engine.errors import UsageError
from heaplint.engine.events import TIME_UNITS_NS, HeapEvent, Kind, ProcessFacts, Source, TraceInfo
from heaplint.engine.writers import CanonicalWriter, format_for_path, write_trace

NAMES = ["t.jsonl", "t.csv", "t.jsonl.gz", "t.csv.gz"]


def sample_events() -> list[HeapEvent]:
    return [
        HeapEvent(int(Kind.PROCESS_START), 0, 42, 1, image="C:\\Program Files\\app, \"quoted\".exe"),
        HeapEvent(int(Kind.HEAP_CREATE), 10, 42, 7, heap=0x2A0000, flags=0x2),
        HeapEvent(int(Kind.ALLOC), 20, 42, 7, heap=0x2A0000, address=0x7FF0_0000_1000, size=24, source=2, stack=5),
        HeapEvent(
            int(Kind.REALLOC), 30, 42, 7, heap=0x2A0000, address=0x2000, size=48, old_address=0x7FF0_0000_1000,
            old_size=24, source=4, stack=6,
        ),
        HeapEvent(int(Kind.REALLOC), 31, 42, 7, heap=0x2A0000, address=0x2000, size=64, old_address=0x2000),
        HeapEvent(int(Kind.FREE), 40, 42, 8, heap=0x2A0000, address=0x2000, source=3),
        HeapEvent(int(Kind.DESTROY), 50, 42, 7, heap=0x2A0000),
        HeapEvent(int(Kind.PROCESS_END), 60, 42, 1),
    ]  # fmt: skip


def sample_info() -> TraceInfo:
    info = TraceInfo(path="x", format="jsonl", pointer_size=8, events_lost=2, capture_start=0, capture_end=60)
    info.processes[42] = ProcessFacts(42, image="app.exe", start_seen=True, end_seen=False, events_lost=2)
    return info


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_events_stacks_and_facts(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    stacks = {5: ("ntdll!RtlAllocateHeap", "app!Cache::fill+0x1f"), 6: ("weird, \"frame\"", " padded ")}
    events = sample_events()
    count = write_trace(str(path), events, sample_info(), stacks)
    assert count == len(events)
    got, info, got_stacks = read_all(str(path))
    assert without_lines(got) == numbered(events)
    assert got_stacks == stacks
    assert facts_of(info) == facts_of(sample_info())
    assert info.format == ("csv" if ".csv" in name else "jsonl")
    assert info.format_version == 1
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(NAMES),
    unit=st.sampled_from(list(TIME_UNITS_NS)),
    events=st.lists(events_strategy, max_size=30),
    stacks=stacks_strategy,
    info=infos(),
)
def test_property_round_trip(tmp_path: Path, name: str, unit: str, events, stacks, info) -> None:
    """Any events, stacks and facts survive a write and a read, in every
    format, compression and time unit."""
    path = tmp_path / name
    write_trace(str(path), events, info, stacks, time_unit=unit)
    got, got_info, got_stacks = read_all(str(path))
    assert without_lines(got) == numbered(events)
    assert got_stacks == stacks
    assert facts_of(got_info) == facts_of(info)


def test_line_numbers_point_at_the_records(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_trace(str(path), sample_events(), sample_info(), {5: ("a",)})
    lines = path.read_text().splitlines()
    got, _, _ = read_all(str(path))
    for ev in got:
        assert json.loads(lines[ev.line - 1])["time"] == ev.time


def test_stacks_learned_while_reading_are_written_before_use_or_at_the_end(tmp_path: Path) -> None:
    stacks: dict[int, tuple[str, ...]] = {}
    info = TraceInfo(path="x", format="jsonl")

    def lazily():
        # a reader that learns stack 1 before its event and stack 2 only at the end
        stacks[1] = ("early!f",)
        yield HeapEvent(int(Kind.ALLOC), 1, 1, heap=1, address=16, size=8, stack=1)
        yield HeapEvent(int(Kind.ALLOC), 2, 1, heap=1, address=32, size=8, stack=2)
        stacks[2] = ("late!g",)
        info.events_lost = 7

    path = tmp_path / "t.jsonl"
    write_trace(str(path), lazily(), info, stacks)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [r.get("kind") for r in records]
    assert kinds == [None, "stack", "alloc", "alloc", "stack", "facts"]
    assert records[1]["id"] == 1 and records[4]["id"] == 2
    assert records[5]["events_lost"] == 7 and "events_lost" not in records[0]
    _, got_info, got_stacks = read_all(str(path))
    assert got_stacks == {1: ("early!f",), 2: ("late!g",)}
    assert got_info.events_lost == 7


def test_no_facts_trailer_when_nothing_changed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_trace(str(path), sample_events(), sample_info())
    assert '"facts"' not in path.read_text()


def test_extra_stacks_at_end_false_leaves_late_stacks_out(tmp_path: Path) -> None:
    stacks: dict[int, tuple[str, ...]] = {}

    def late():
        yield HeapEvent(int(Kind.ALLOC), 1, 1, heap=1, address=16, size=8, stack=3)
        stacks[3] = ("late!g",)

    path = tmp_path / "t.jsonl"
    write_trace(str(path), late(), TraceInfo(path="x", format="jsonl"), stacks, extra_stacks_at_end=False)
    assert '"stack"' not in path.read_text().replace('"stack":3', "")


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_trace(str(a), sample_events(), sample_info())
    write_trace(str(b), sample_events(), sample_info())
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).startswith(b'{"format":"heaplint-trace"')


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"

    def broken():
        yield sample_events()[0]
        raise RuntimeError("reader failed")

    with pytest.raises(RuntimeError):
        write_trace(str(path), broken(), sample_info())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("x.jsonl", None, ("jsonl", False)),
        ("x.CSV", None, ("csv", False)),
        ("x.csv.gz", None, ("csv", True)),
        ("x.jsonl.gz", None, ("jsonl", True)),
        ("x.txt", "csv", ("csv", False)),
        ("x.txt.gz", "jsonl", ("jsonl", True)),
        ("-", None, ("jsonl", False)),
        ("-", "csv", ("csv", False)),
    ],
)
def test_format_for_path(path: str, fmt, expected) -> None:
    assert format_for_path(path, fmt) == expected


@pytest.mark.parametrize(("path", "fmt"), [("x.txt", None), ("x.gz", None), ("x.jsonl", "xml")])
def test_format_for_path_errors(path: str, fmt) -> None:
    with pytest.raises(UsageError) as err:
        format_for_path(path, fmt)
    assert "jsonl" in str(err.value) and "csv" in str(err.value)


def test_canonical_writer_on_a_stream_leaves_it_open() -> None:
    buf = io.BytesIO()
    writer = CanonicalWriter(buf, "csv", TraceInfo(path="x", format="csv"), time_unit="us")
    writer.event(HeapEvent(int(Kind.ALLOC), 1500, 3, heap=1, address=16, size=8, source=int(Source.LFH)))
    writer.stack(0, ())
    writer.facts(TraceInfo(path="x", format="csv", buffers_lost=1))
    writer.close()
    assert not buf.closed
    lines = buf.getvalue().decode().splitlines()
    assert lines[0].startswith("kind,time,pid")
    assert lines[2].startswith("alloc,1.5,3,0,0x1,0x10,8,")
    assert all(line.count(",") >= 17 for line in lines)


def test_writer_rejects_unknown_format_and_unit() -> None:
    with pytest.raises(UsageError):
        CanonicalWriter(io.BytesIO(), "xml", TraceInfo(path="x", format="x"))
    with pytest.raises(UsageError):
        CanonicalWriter(io.BytesIO(), "jsonl", TraceInfo(path="x", format="x"), time_unit="fortnight")


# -- heaplint convert ----------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [("a.jsonl", "b.csv.gz"), ("a.csv", "b.jsonl"), ("a.jsonl.gz", "b.csv")])
def test_convert_round_trips(tmp_path: Path, src: str, dst: str) -> None:
    from heaplint.engine.cli import main

    stacks = {5: ("m!f",), 6: ("m!g", "m!h")}
    write_trace(str(tmp_path / src), sample_events(), sample_info(), stacks)
    assert main(["convert", str(tmp_path / src), "-o", str(tmp_path / dst)]) == 0
    back = tmp_path / ("back." + src.split(".", 1)[1])
    assert main(["convert", str(tmp_path / dst), "-o", str(back)]) == 0
    got, info, got_stacks = read_all(str(back))
    assert without_lines(got) == numbered(sample_events())
    assert got_stacks == stacks
    assert facts_of(info) == facts_of(sample_info())


def test_convert_format_option_and_time_unit(tmp_path: Path) -> None:
    from heaplint.engine.cli import main

    write_trace(str(tmp_path / "a.jsonl"), sample_events(), sample_info())
    out = tmp_path / "out.txt"
    assert main(["convert", str(tmp_path / "a.jsonl"), "-o", str(out), "--format", "csv", "--time-unit", "us"]) == 0
    assert out.read_text().startswith("kind,")
    got, _, _ = read_all(str(out))
    assert without_lines(got) == numbered(sample_events())


def test_convert_stdin_to_stdout_subprocess(tmp_path: Path) -> None:
    src = tmp_path / "a.csv.gz"
    write_trace(str(src), sample_events(), sample_info(), {5: ("m!f",)})
    done = run_cli("convert", "-", "-o", "-", stdin=src.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    out = tmp_path / "out.jsonl"
    out.write_bytes(done.stdout)
    got, info, stacks = read_all(str(out))
    assert without_lines(got) == numbered(sample_events())
    assert stacks == {5: ("m!f",)}
    assert info.processes[42].image == "app.exe"
