"""The xperf dumper reader on hand-written dumps (tests/data_text_exports/xperf_*.txt).

The fixtures follow the shape of real ``xperf -a dumper`` output as published
by scripts that parse it (Mozilla's xperf session parser reads the
BeginHeader/EndHeader block; UIforETW-era flame-graph scripts document the
SampledProfile and Stack rows): right-aligned event names, comma-separated
space-padded values, microsecond timestamps, ``name ( pid)`` processes.  The
heap rows' column labels are not confirmed by any public sample, which is why
the reader looks them up by header and these tests vary them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.errors import TraceError
from heaplint.engine.events import Kind
from heaplint.engine.readers.xperf import XperfReader
from helpers_text_exports import DATA, bad_records_read, read_events, replay, xperf_text

APP = "My Leaky App.exe"
HEAP = 0x21F3A5D0000


def test_basic_dump_events_and_process_facts():
    events, reader = read_events(DATA / "xperf_basic.txt")
    kinds = [Kind(e.kind).name for e in events]
    assert kinds == ["PROCESS_START", "HEAP_CREATE", "ALLOC", "ALLOC", "ALLOC", "REALLOC", "REALLOC", "FREE", "ALLOC"]
    start = events[0]
    assert (start.pid, start.image, start.time) == (4242, APP, 1_520_000)
    create = events[1]
    assert (create.heap, create.flags, create.tid) == (HEAP, 2, 5000)
    first = events[2]
    assert (first.address, first.size, first.source, first.time) == (0x21F3A5D1000, 64, 3, 1_700_000)
    in_place, moving = events[5], events[6]
    assert (in_place.address, in_place.old_address, in_place.size, in_place.old_size) == (
        0x21F3A5D1000, 0x21F3A5D1000, 96, 64)
    assert (moving.address, moving.old_address, moving.size, moving.old_size, moving.source) == (
        0x21F3A5D8000, 0x21F3A5D2000, 4096, 128, 4)
    assert [e.line for e in events[:3]] == [16, 18, 19]
    info = reader.info
    # a process name with spaces keeps them; rundown-only processes are facts, not events
    assert info.processes[4242].image == APP and info.processes[4242].start_seen is True
    assert info.processes[812].image == "svchost.exe"
    assert info.processes[812].start_seen is False and info.processes[812].end_seen is False
    assert 812 not in {e.pid for e in events}
    assert (info.capture_start, info.capture_end) == (0, 9_000_000)


def test_basic_dump_unknown_rows_are_counted_and_noted():
    _events, reader = read_events(DATA / "xperf_basic.txt")
    note = next(n for n in reader.info.notes if n.startswith("skipped"))
    assert "2 rows" in note and "CSwitch 1" in note and "T-Start 1" in note


def test_basic_dump_replays_to_the_expected_live_blocks():
    events, _ = read_events(DATA / "xperf_basic.txt")
    _state, at_end = replay(events)
    assert at_end[4242] == {
        (HEAP, 0x21F3A5D1000): 96,  # resized in place
        (HEAP, 0x21F3A5D8000): 4096,  # moved from ...2000
        (HEAP, 0x21F3A5DA000): 32,
    }


def test_both_realloc_shapes_replay_to_the_same_state():
    alone, _ = read_events(DATA / "xperf_realloc_standalone.txt")
    paired, _ = read_events(DATA / "xperf_realloc_paired.txt")
    assert len(paired) == len(alone) + 4  # two moves, each with its inner alloc and free
    s1, end1 = replay(alone)
    s2, end2 = replay(paired)
    assert end1 == end2 == {321: {(0x700000, 0x711000): 6000}}
    heap1, heap2 = s1.heap(321, 0x700000), s2.heap(321, 0x700000)
    assert heap1.counts == heap2.counts  # the inner records were not counted twice
    assert heap2.anomalies == heap1.anomalies and "realloc-unknown-old" not in heap2.anomalies


def test_paired_realloc_inner_records_are_recognised_by_the_replay():
    paired, _ = read_events(DATA / "xperf_realloc_paired.txt")
    rp_state, _ = replay(paired)
    from heaplint.engine.replay import Replay

    rp = Replay()
    rp.run(paired)
    assert rp.counters.paired_inner == 4
    assert rp_state.heap(321, 0x700000).live_bytes == 6000


def test_stack_rows_attach_to_their_events():
    events, reader = read_events(DATA / "xperf_stacks.txt")
    by_key = {(e.kind, e.time, e.tid): reader.stacks.get(e.stack) for e in events}
    assert by_key[(Kind.ALLOC, 2_000_000, 710)] == (
        "ntdll.dll!RtlpAllocateHeapInternal", "ntdll.dll!RtlAllocateHeap", "stacky.exe!make_widget", "stacky.exe!main")
    # kernel and user fragments (each numbered from 1) are one stack, innermost first
    assert by_key[(Kind.ALLOC, 2_100_000, 711)] == (
        "ntoskrnl.exe!EtwpLogKernelEvent", "ntoskrnl.exe!NtTraceEvent", "ntdll.dll!RtlAllocateHeap", "stacky.exe!worker")
    # a stack arriving after another event's stack still finds its event; commas in names survive
    assert by_key[(Kind.ALLOC, 2_105_000, 710)] == (
        "ntdll.dll!RtlAllocateHeap", "stacky.exe!Pair<int;long>::make", "stacky.exe!f(int, char)")
    # same (time, thread): the first stack goes to the realloc, the restarted numbering to the inner alloc
    assert by_key[(Kind.REALLOC, 2_300_000, 710)] == ("ntdll.dll!RtlReAllocateHeap", "stacky.exe!grow")
    assert by_key[(Kind.ALLOC, 2_300_000, 710)] == (
        "ntdll.dll!RtlAllocateHeap", "ntdll.dll!RtlReAllocateHeap", "stacky.exe!grow")
    assert by_key[(Kind.FREE, 2_200_000, 710)] is None
    assert by_key[(Kind.ALLOC, 70_000_000, 710)] is None
    assert any("1 stack(s) matched no waiting heap event" in n for n in reader.info.notes)
    assert [e.index for e in events] == sorted(e.index for e in events)  # file order kept


def test_process_end_of_a_heap_process_ends_its_heaps():
    events, reader = read_events(DATA / "xperf_stacks.txt")
    assert Kind(events[-1].kind) is Kind.PROCESS_END and events[-1].pid == 700
    state, at_end = replay(events)
    # the end hook ran at the P-End row, with the blocks alive then
    assert at_end[700] == {(0x10000, 0x10300): 48, (0x10000, 0x10400): 64, (0x10000, 0x10500): 8}
    assert 700 not in state.processes and state.finished[0].end_seen
    assert reader.info.processes[700].end_seen is True


HEADERS = [
    ["HeapAlloc", "TimeStamp", "Process Name ( PID)", "ThreadID", "HeapHandle", "Address", "Size", "Source"],
    ["Stack", "TimeStamp", "ThreadID", "No.", "Address", "Image!Function"],
]


def _alloc(t: int, tid: int, addr: int) -> list[str]:
    return ["HeapAlloc", str(t), "w.exe ( 9)", str(tid), "0x1000", hex(addr), "8", "3"]


def test_stack_window_bounds_the_wait(tmp_path):
    rows = [_alloc(10, 1, 0xA0), _alloc(20_000, 1, 0xB0), ["Stack", "10", "1", "1", "0x1", "late.dll!f"]]
    p = tmp_path / "late.txt"
    p.write_text(xperf_text(HEADERS, rows))

    class Short(XperfReader):
        stack_window_ns = 5_000_000  # 5 ms: the stack at +20 ms is too late

    with open(p, "rb") as f:
        reader = Short(f, str(p))
        events = list(reader.events())
    assert [e.stack for e in events] == [None, None]
    assert any("matched no waiting heap event" in n for n in reader.info.notes)
    with open(p, "rb") as f:  # the default 50 ms window waits long enough
        reader = XperfReader(f, str(p))
        events = list(reader.events())
    assert reader.stacks[events[0].stack] == ("late.dll!f",)


def test_waiting_events_are_capped(tmp_path):
    rows = [_alloc(5, 1, 0x100 + 16 * i) for i in range(500)]
    p = tmp_path / "many.txt"
    p.write_text(xperf_text(HEADERS, rows))

    class Tiny(XperfReader):
        stack_pending_max = 16

    with open(p, "rb") as f:
        reader = Tiny(f, str(p))
        events = list(reader.events())
    assert len(events) == 500
    assert reader._stacks.max_waiting <= 16
    assert any("released before their stack window ended" in n for n in reader.info.notes)


def test_without_stack_header_events_pass_straight_through(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text(xperf_text(HEADERS[:1], [_alloc(5, 1, 0x100 + 16 * i) for i in range(50)]))
    with open(p, "rb") as f:
        reader = XperfReader(f, str(p))
        it = reader.events()
        first = next(it)  # yielded before the rest of the file is decoded
        assert first.address == 0x100 and reader._stacks.max_waiting == 0
        assert len(list(it)) == 49


def test_utf16_dump_as_written_by_powershell_redirect(tmp_path):
    text = (DATA / "xperf_basic.txt").read_text()
    p = tmp_path / "ps.txt"
    p.write_bytes(text.encode("utf-16"))
    events, reader = read_events(p)
    ref, _ = read_events(DATA / "xperf_basic.txt")
    assert reader.name == "xperf"
    assert [e._replace(line=0) for e in events] == [e._replace(line=0) for e in ref]


def test_quoted_command_line_with_commas_does_not_shift_columns():
    events, reader = read_events(DATA / "xperf_basic.txt")
    assert reader.info.processes[4242].image == APP  # P-Start row has '--iterations=3,verbose' in quotes
    assert events[0].pid == 4242


def test_header_row_outside_the_block_redefines_columns(tmp_path):
    text = xperf_text(HEADERS[:1], [_alloc(5, 1, 0x100)]) + xperf_text(
        [["HeapAlloc", "TimeStamp", "Size", "Address", "HeapHandle", "Process Name ( PID)"]],
        [["HeapAlloc", "7", "24", "0x200", "0x1000", "w.exe ( 9)"]],
        markers=False,
    )
    p = tmp_path / "redef.txt"
    p.write_text(text)
    events, _ = read_events(p)
    assert [(e.address, e.size, e.tid) for e in events] == [(0x100, 8, 1), (0x200, 24, 0)]


def test_lost_event_rows_are_counted(tmp_path):
    headers = HEADERS[:1] + [["EventsLost", "TimeStamp", "Process Name ( PID)", "EventsLost"], ["BuffersLost", "TimeStamp", "Count"]]
    rows = [_alloc(5, 1, 0x100), ["EventsLost", "6", "w.exe ( 9)", "12"], ["BuffersLost", "7", "3"], ["EventsLost", "8", "w.exe ( 9)", "1"]]
    p = tmp_path / "lost.txt"
    p.write_text(xperf_text(headers, rows))
    _events, reader = read_events(p)
    assert (reader.info.events_lost, reader.info.buffers_lost) == (13, 3)
    assert reader.info.processes[9].events_lost == 13


def test_bad_row_is_a_located_error_or_skipped_and_counted(tmp_path):
    rows = [_alloc(5, 1, 0x100), ["HeapAlloc", "6", "w.exe ( 9)", "1", "0x1000", "0xzz", "8", "3"], _alloc(7, 1, 0x300)]
    p = tmp_path / "bad.txt"
    p.write_text(xperf_text(HEADERS[:1], rows))
    err, events, bad = bad_records_read(p)
    assert err.line == 5 and "HeapAlloc" in err.message
    assert [e.address for e in events] == [0x100, 0x300] and bad == 1


def test_a_number_past_pythons_digit_limit_is_named_plainly(tmp_path):
    p = tmp_path / "long.txt"
    p.write_text(xperf_text(HEADERS[:1], [["HeapAlloc", "6", "w.exe ( 9)", "1", "0x1000", "0x100", "9" * 5000, "3"]]))
    with pytest.raises(TraceError) as exc:
        read_events(p)
    assert "a number of more than 4300 digits" in exc.value.message and "sys." not in exc.value.message


def test_short_row_names_its_header(tmp_path):
    p = tmp_path / "short.txt"
    p.write_text(xperf_text(HEADERS[:1], [["HeapAlloc", "6", "w.exe ( 9)", "1", "0x1000", "0x100"]]))
    with pytest.raises(TraceError) as exc:
        read_events(p)
    assert "declares 7" in exc.value.message and "line 2" in exc.value.message


def test_row_without_a_header_is_an_error(tmp_path):
    p = tmp_path / "nohdr.txt"
    p.write_text(xperf_text(HEADERS[1:], [_alloc(5, 1, 0x100)]))
    with pytest.raises(TraceError) as exc:
        read_events(p, "xperf")
    assert exc.value.line == 4 and "no header row for 'HeapAlloc'" in exc.value.message


def test_windows_line_endings(tmp_path):
    p = tmp_path / "crlf.txt"
    p.write_bytes((DATA / "xperf_stacks.txt").read_bytes().replace(b"\n", b"\r\n"))
    events, reader = read_events(p)
    ref, ref_reader = read_events(DATA / "xperf_stacks.txt")
    assert events == ref and reader.stacks == ref_reader.stacks


def test_a_huge_line_is_a_located_error_not_held_whole(tmp_path):
    """A line past MAX_ROW_CHARS (a corrupt or binary file) is a bad record
    at its line: an error, or skipped and counted; the rows around it read."""
    from heaplint.engine.readers.tabular import MAX_ROW_CHARS

    p = tmp_path / "huge.txt"
    text = xperf_text(HEADERS[:1], [_alloc(5, 1, 0x100), ["HeapAlloc", "x" * (MAX_ROW_CHARS + 10)], _alloc(7, 1, 0x300)])
    p.write_text(text)
    err, events, bad = bad_records_read(p)
    assert err.line == 5 and "longer than" in err.message
    assert [e.address for e in events] == [0x100, 0x300] and bad == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab,\r\n", max_size=30), max_size=8), st.integers(1, 12))
def test_bounded_lines_are_the_lines_of_the_text(chunks, limit):
    """bounded_lines gives what iterating the text gives, with None in place
    of each line longer than the limit."""
    import io

    from heaplint.engine.readers.tabular import bounded_lines

    text = "".join(chunks)
    expected = [line if len(line) <= limit else None for line in io.StringIO(text, newline=None)]
    assert list(bounded_lines(io.StringIO(text, newline=None), limit)) == expected
