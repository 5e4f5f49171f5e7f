"""The WPA Heap Allocations CSV reader on hand-written exports (tests/data_text_exports/wpa_*.csv).

The fixtures use the column names WPA shows in its Heap Allocations table and
the heap glossary's lifetime classes (AIFI, AIFO, AOFI, AOFO); the exact
export spellings are unconfirmed, so the reader looks columns up by header and
the permuted fixture uses other spellings of the same columns.
"""

from __future__ import annotations

import io

import pytest

from heaplint.engine.errors import TraceError
from heaplint.engine.events import Kind
from heaplint.engine.readers.wpa import WpaCsvReader
from heaplint.engine.readers.wpa_rows import parse_stack_cell
from helpers_text_exports import DATA, bad_records_read, cli, read_events, replay, wpa_text

APP_HEAP = 0x21F3A5D0000
LABELS = ["Process", "Handle", "Type", "Thread ID", "Address", "Size", "AllocTime", "FreeTime"]


def _shape(events):
    return [(Kind(e.kind).name, e.time, e.address) for e in events]


def test_all_four_lifetime_types():
    events, reader = read_events(DATA / "wpa_basic.csv")
    assert reader.name == "wpa-csv"
    assert _shape(events) == [
        ("FREE", 1_500_000, 0x21F3A5C0000),  # AOFI: free only
        ("ALLOC", 1_700_000, 0x21F3A5D1000),  # AIFI
        ("ALLOC", 1_710_000, 0x21F3A5D2000),  # AIFO: alloc only
        ("FREE", 1_800_000, 0x21F3A5D1000),  # AIFI's free comes before the realloc row's alloc at the same time
        ("ALLOC", 1_800_000, 0x21F3A5D1000),
        ("FREE", 2_000_000, 0x21F3A5D1000),
    ]
    alloc = events[2]
    assert (alloc.pid, alloc.tid, alloc.heap, alloc.size, alloc.source) == (4242, 5000, APP_HEAP, 1024, 2)
    assert reader.stacks[alloc.stack] == (
        "ntdll.dll!RtlAllocateHeap", "ucrtbase.dll!malloc", "app.exe!leak_here", "app.exe!main", "ntdll.dll!RtlUserThreadStart")
    facts = reader.info.processes[4242]
    assert facts.image == "My Leaky App.exe" and facts.start_seen is False  # an AOFI row: allocated before the trace
    notes = " ".join(reader.info.notes)
    assert "AIFI 2, AIFO 1, AOFI 1, AOFO 1" in notes and "Is Realloc" in notes
    assert reader.order_mode == "sorted"  # the AOFI free goes back before an earlier allocation


def test_all_four_types_replay_to_the_live_blocks():
    events, _ = read_events(DATA / "wpa_basic.csv")
    state, at_end = replay(events)
    assert at_end[4242] == {(APP_HEAP, 0x21F3A5D2000): 1024}
    heap = state.heap(4242, APP_HEAP)
    assert heap.anomalies == {"unknown-free": 1, "unknown-heap": 1}  # only the AOFI free is unknown


def test_permuted_columns_and_spellings_give_the_same_events():
    base, r1 = read_events(DATA / "wpa_basic.csv")
    perm, r2 = read_events(DATA / "wpa_permuted.csv")
    assert perm == base
    assert r1.stacks == r2.stacks


def test_sorted_export_is_streamed_and_stack_cells_parse():
    events, reader = read_events(DATA / "wpa_sorted.csv")
    assert reader.order_mode == "streamed"
    times = [e.time for e in events]
    assert times == sorted(times)
    assert events[0].kind == Kind.FREE and events[0].address == 0x1E5000  # AOFI at 0.1 ms
    stacks = {e.address: reader.stacks.get(e.stack) for e in events if e.kind == Kind.ALLOC}
    session = ("ntdll.dll!RtlAllocateHeap", "server.exe!Session::open", "server.exe!main")
    assert stacks[0x1E5000] == session  # '/'-separated, [Root] last: already innermost first
    assert reader.stacks[next(e.stack for e in events if e.address == 0x1E7000 and e.stack)] == session + (
        "ntdll.dll!RtlUserThreadStart",)  # '|'-separated, root first
    assert stacks[0x1E8000][1] == "server.exe!Cache::grow"  # newline-separated inside quotes
    big = next(e for e in events if e.address == 0x1E9000)
    assert (big.size, big.source) == (4096, 4)  # "4,096" with grouping; Count 8 is an aggregate
    last = events[-1]
    assert (last.time, last.kind) == (1_000_500_000_000, Kind.FREE)  # "1,000.500000000" s
    assert events[-2].time == 1_000_000_000_001
    assert any("1 aggregated row(s)" in n and "8 allocations" in n for n in reader.info.notes)


def test_sorted_export_replays_with_free_before_alloc_at_equal_times():
    events, _ = read_events(DATA / "wpa_sorted.csv")
    _state, at_end = replay(events)
    assert at_end[1808] == {(0x1E0000, 0x1E8000): 2048, (0x1E0000, 0x1E9000): 4096, (0x1E0000, 0x1E7000): 64}


class _Pipe(io.RawIOBase):
    """A non-seekable byte source, like stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_input_is_sorted_in_bounded_memory():
    data = (DATA / "wpa_sorted.csv").read_bytes()
    reference, _ = read_events(DATA / "wpa_sorted.csv")

    class Small(WpaCsvReader):
        sort_chunk = 3

    reader = Small(io.BufferedReader(_Pipe(data)), "-")
    events = list(reader.events())
    assert events == reference
    assert reader.order_mode == "sorted" and reader.spilled_runs == 3
    assert reader.max_in_memory <= 3
    assert any("could not be read twice" in n for n in reader.info.notes)


def test_unsorted_rows_spill_runs_and_come_out_in_time_order(tmp_path):
    rows = []
    for i in range(200):
        j = (i * 37) % 200  # a permutation: rows not in AllocTime order
        rows.append(["p.exe (5)", "0x10", "AIFI", "1", hex(0x1000 + 0x100 * j), "16", f"{j}.0", f"{j}.5"])
    p = tmp_path / "shuffled.csv"
    p.write_text(wpa_text(LABELS, rows))

    class Small(WpaCsvReader):
        sort_chunk = 32

    with open(p, "rb") as f:
        reader = Small(f, str(p))
        events = list(reader.events())
    assert reader.order_mode == "sorted" and reader.spilled_runs == 400 // 32
    assert reader.max_in_memory <= 32
    assert [(e.time, e.kind) for e in events] == sorted(
        [(j * 10**9, Kind.ALLOC) for j in range(200)] + [(j * 10**9 + 5 * 10**8, Kind.FREE) for j in range(200)])
    _state, at_end = replay(events)
    assert at_end[5] == {}


def test_streamed_mode_holds_only_the_blocks_alive_at_once(tmp_path):
    rows = [["p.exe (5)", "0x10", "AIFI", "1", hex(0x1000 + 0x100 * (j % 8)), "16", f"{j}.0", f"{j}.5"] for j in range(500)]
    p = tmp_path / "sorted.csv"
    p.write_text(wpa_text(LABELS, rows))
    with open(p, "rb") as f:
        reader = WpaCsvReader(f, str(p))
        events = list(reader.events())
    assert reader.order_mode == "streamed" and reader.max_in_memory == 1
    assert len(events) == 1000 and [e.time for e in events] == sorted(e.time for e in events)


def test_missing_address_column_is_exit_2_with_location(capsys):
    path = str(DATA / "wpa_missing_address.csv")
    assert cli(["stats", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:1: WPA Heap Allocations header row: no column for the block address")
    assert "columns seen: 'Process', 'Handle', 'Type', 'Thread ID', 'Size', 'Count', 'AllocTime', 'FreeTime'" in err


def test_bad_rows_are_located_or_skipped(tmp_path):
    rows = [
        ["p.exe (5)", "0x10", "AIFI", "1", "0x100", "16", "1.0", "2.0"],
        ["p.exe (5)", "0x10", "ZZZZ", "1", "0x200", "16", "1.0", "2.0"],
        ["p.exe (5)", "0x10", "AIFI", "1", "0x300", "16", "3.0", "2.0"],
        ["p.exe (5)", "0x10", "AIFO", "1", "0x400", "16", "", ""],
        ["p.exe (5)", "0x10", "AIFO", "1", "0x500", "16"],
        ["p.exe (5)", "0x10", "AIFO", "1", "0x600", "16", "4.0", ""],
    ]
    p = tmp_path / "bad.csv"
    p.write_text(wpa_text(LABELS, rows))
    err, events, bad = bad_records_read(p)
    assert err.line == 3 and "unknown lifetime Type 'ZZZZ'" in err.message
    assert [e.address for e in events] == [0x100, 0x100, 0x600]
    assert bad == 4  # unknown Type, free before alloc, no AllocTime, short row


def test_header_only_and_empty_files(tmp_path):
    p = tmp_path / "hdr.csv"
    p.write_text(wpa_text(LABELS, []))
    events, reader = read_events(p)
    assert events == [] and reader.order_mode == "streamed"
    q = tmp_path / "blank.csv"
    q.write_text("\n\n")
    with pytest.raises(TraceError):
        read_events(q, "wpa-csv")


@pytest.mark.parametrize(
    ("cell", "frames"),
    [
        ("", []),
        ("a.dll!f", ["a.dll!f"]),
        ("[Root]/a!main/b!g", ["b!g", "a!main"]),
        ("b!g/a!main/[Root]", ["b!g", "a!main"]),
        ("[Root] | a!main | b!g", ["b!g", "a!main"]),
        ("[Root]\r\na!main\r\nb!g\r\n", ["b!g", "a!main"]),
    ],
)
def test_stack_cell_separators_and_orientation(cell, frames):
    assert parse_stack_cell(cell) == frames
