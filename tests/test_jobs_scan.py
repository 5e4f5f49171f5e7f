"""The block scan of canonical JSONL partitions (engine/readers/canonical_scan.py),
C accelerator and pure Python, against the simplest reference: decode every
line with ``json.loads`` and keep the events of the wanted processes, the
others' times in their place.  Lines are drawn to sit on the edges of what
the scan claims from bytes (leading zeros, 20-digit numbers, a record ending
at its pid, kinds that only start like event kinds, pids that are prefixes
of others, CRLF line ends, processes appearing mid-block)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_support import HEADER, record, write_lines

from heaplint.engine.errors import TraceError
from heaplint.engine.readers import ReaderOptions, canonical_partition, canonical_scan, guarded_events, open_trace

PIDS = (1, 10, 12, 100)
IMPLS = ["python"] + (["native"] if canonical_scan.LOADED is not None else [])


@pytest.fixture(params=IMPLS)
def impl(request):
    saved = canonical_scan.NATIVE
    canonical_scan.NATIVE = canonical_scan.LOADED if request.param == "native" else None
    yield request.param
    canonical_scan.NATIVE = saved


EDGES = [
    b'{"kind":"alloc","time":5,"pid":1}',  # ends at its pid: not an own line, still claimed
    b'{"kind":"alloc","time":5,"pid":01,"heap":"0x10","address":"0x1","size":1}',  # not JSON
    b'{"kind":"alloc","time":12345678901234567890,"pid":1,"heap":"0x10","address":"0x1","size":1}',
    b'{"kind":"alloc","time":5,"pid":12345678901234567890,"heap":"0x10","address":"0x1","size":1}',
    b'{"kind":"allocx","time":5,"pid":1,"heap":"0x10","address":"0x1","size":1}',
    b'{"kind":"process_startx","time":5,"pid":10}',
    b'{"kind":"alloc","time":-5,"pid":1,"heap":"0x10","address":"0x1","size":1}',
    b'{"kind":"free","time":5,"pid":1,"heap":"0x10","address":"0x1","pid":10}',  # the last pid wins
    b'{"kind":"free","time":5,"pid":1,"heap":"0x10","address":"0x1","time":9}',  # the last time wins
    b'{"kind":"free","time":5,"pid":1,"heap":"0x10","address":"0x1","kind":"stack","id":3,"frames":[]}',
    b'{"kind":"stack","id":7,"frames":["m!f"]}',
    b'{"pid":12,"kind":"free","time":5,"heap":"0x10","address":"0x1"}',
    b"",
    b"   ",
    b"not json",
]


@st.composite
def bodies(draw) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(draw(st.integers(0, 30))):
        t = draw(st.integers(0, 10**6))
        pid = draw(st.sampled_from(PIDS))
        choice = draw(st.sampled_from(["alloc", "free", "free", "process_end", "edge"]))
        if choice == "alloc":
            line = record("alloc", t, pid, tid=1, heap="0x10", address="0x1000", size=8)
        elif choice == "free":
            line = record("free", t, pid, tid=2, heap="0x10", address="0x1000")
        elif choice == "process_end":
            line = record("process_end", t, pid)
        else:
            line = draw(st.sampled_from(EDGES))
        if draw(st.integers(0, 9)) == 0:
            line += b"\r"
        out.append(line)
    return out


def read_items(path: str, wanted: frozenset) -> tuple[list, bool] | TraceError:
    reader, trace_input = open_trace(path, None, ReaderOptions(pids=wanted, pid_stubs=True))
    try:
        with trace_input:
            return list(guarded_events(reader)), reader.claims_exact
    except TraceError as err:
        return err


def reference(path: str) -> list | TraceError:
    """Every event, decoded (the whole reader)."""
    reader, trace_input = open_trace(path, None, ReaderOptions())
    try:
        with trace_input:
            return list(guarded_events(reader))
    except TraceError as err:
        return err


def check(tmp_path, body: list[bytes], wanted: frozenset, header: dict | None = None) -> None:
    path = write_lines(tmp_path / "t.jsonl", body, header)
    everything = reference(path)
    got = read_items(path, wanted)
    others = read_items(path, frozenset(PIDS) - wanted)
    if isinstance(everything, TraceError):
        # the analysis fails with the same error: in the partition that owns
        # the broken record (the others may take it for an event)
        errors = [str(r) for r in (got, others) if isinstance(r, TraceError)]
        assert str(everything) in errors
        return
    assert not isinstance(got, TraceError) and not isinstance(others, TraceError)
    items, _ = got
    if others[1]:  # the other partition found what this one read from bytes exact
        flat = []
        for item in items:
            if type(item) is list:
                flat += [(True, t) for t in item]
            else:
                flat.append((False, item))
        assert flat == [(e.pid not in wanted, e.time if e.pid not in wanted else e) for e in everything]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies(), wanted=st.frozensets(st.sampled_from(PIDS)), block=st.integers(1, 300))
def test_scan_matches_decoding_every_line(tmp_path, impl, body, wanted, block):
    saved = canonical_partition._BLOCK
    canonical_partition._BLOCK = block
    try:
        check(tmp_path, body, wanted)
        check(tmp_path, body, wanted, {**HEADER, "time_unit": "us"})
    finally:
        canonical_partition._BLOCK = saved


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies(), wanted=st.frozensets(st.sampled_from(PIDS)), block=st.integers(1, 300))
def test_both_scans_give_the_same_items(tmp_path, body, wanted, block):
    """Not only the same records: the same runs, so partitions do the same work."""
    if len(IMPLS) < 2:
        pytest.skip("the C accelerator is not built")
    path = write_lines(tmp_path / "t.jsonl", body)
    saved = canonical_scan.NATIVE, canonical_partition._BLOCK
    canonical_partition._BLOCK = block
    try:
        results = []
        for native in (canonical_scan.LOADED, None):
            canonical_scan.NATIVE = native
            got = read_items(path, wanted)
            results.append(str(got) if isinstance(got, TraceError) else got)
        assert results[0] == results[1]
    finally:
        canonical_scan.NATIVE, canonical_partition._BLOCK = saved


def test_a_process_seen_mid_block_changes_the_scan(tmp_path, impl):
    """The first record of a process goes line by line; the records of that
    process after it, in the same block, are scanned as its partition's."""
    body = [record("free", t, 1 + (t % 2) * 9, heap="0x10", address="0x1") for t in range(8)]
    path = write_lines(tmp_path / "t.jsonl", body)
    items, _ = read_items(path, frozenset({10}))
    assert [x if type(x) is list else x.time for x in items] == [[0], 1, [2], 3, [4], 5, [6], 7]
    assert [x.index for x in items if type(x) is not list] == [1, 3, 5, 7]


@pytest.mark.skipif(canonical_scan.LOADED is None, reason="the C accelerator is not built")
def test_native_scan_refuses_positions_that_are_not_newlines():
    scan = canonical_scan.LOADED.scan
    buf = b'\n{"kind":"free","time":5,"pid":1}\n'
    assert scan(buf, 0, len(buf), {1: False}) == ([[5]], len(buf) - 1)
    assert scan(buf, 0, len(buf), {}) == ([], 0)
    for pos, end in ((0, len(buf) - 1), (-1, len(buf)), (0, len(buf) + 1), (len(buf) - 1, len(buf) - 1)):
        with pytest.raises(ValueError):
            scan(buf, pos, end, {1: False})


def test_records_json_reads_otherwise_are_left_to_their_owner(tmp_path, impl):
    """A repeated time key: the owner sees it and says the claim was wrong
    (the analysis is then replayed whole)."""
    body = [record("free", 1, 1, heap="0x10", address="0x1"), EDGES[8]]
    path = write_lines(tmp_path / "t.jsonl", body)
    assert read_items(path, frozenset({1}))[1] is False
    assert json.loads(EDGES[8])["time"] == 9


def test_pids_of_twenty_digits_go_line_by_line_in_both_scans(tmp_path, impl):
    """Found by hypothesis: a known 20-digit pid was claimed by the regex
    scan but not by the C scan (same records, different runs)."""
    big = EDGES[3]
    body = [big, record("free", 0, 1, heap="0x10", address="0x1"), big, record("free", 0, 1, heap="0x10", address="0x1")]
    path = write_lines(tmp_path / "t.jsonl", body)
    items, _ = read_items(path, frozenset())
    assert items == [[5], [0], [5], [0]]
