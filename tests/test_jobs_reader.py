"""The reader-level pid filter (``ReaderOptions.pids``): the canonical JSONL
reader's raw-byte fast path against decoding everything and filtering, the
generic filter of the other readers, stubs, and the partition assignment."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_support import HEADER, record, write_lines

from heaplint.engine.errors import TraceError
from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
from heaplint.engine.partition import PidPartition

PIDS = (1, 2, 3, 40)


def read(path: str, fmt: str | None = None, **options) -> tuple[list, object, dict]:
    reader, trace_input = open_trace(path, fmt, ReaderOptions(**options))
    with trace_input:
        events = list(guarded_events(reader))
    return events, reader.info, reader.stacks


# --- lines: canonical ones, odd but valid ones, broken ones ------------------------------------
def _odd(kind: str, t: int, pid: int, other: int, style: str) -> bytes:
    """Valid JSON records that a byte scan could misread; json.loads is the truth."""
    base = {"kind": kind, "time": t, "pid": pid, "heap": "0x10", "address": "0x1000", "size": 8}
    if kind == "free":
        del base["size"]
    if style == "spaces":
        return json.dumps(base).encode()
    if style == "pid-first":
        return json.dumps({"pid": pid, **base}, separators=(",", ":")).encode()
    if style == "float-time":
        return json.dumps({**base, "time": t + 0.5}, separators=(",", ":")).encode()
    if style == "duplicate-pid":  # the last "pid" wins
        return json.dumps(base, separators=(",", ":")).encode()[:-1] + b',"pid":%d}' % other
    if style == "escaped-pid":  # "p\\u0069d" is "pid" too
        return json.dumps(base, separators=(",", ":")).encode()[:-1] + b',"p\\u0069d":%d}' % other
    if style == "nested":
        return json.dumps({**base, "x": {"pid": other}}, separators=(",", ":")).encode()
    if style == "escaped-kind":
        return json.dumps(base, separators=(",", ":")).encode()[:-1] + b',"\\u006bind":"facts"}'
    if style == "unknown-key":
        return json.dumps({**base, "zz": [1, 2]}, separators=(",", ":")).encode()
    raise AssertionError(style)


STYLES = ["spaces", "pid-first", "float-time", "duplicate-pid", "escaped-pid", "nested", "escaped-kind", "unknown-key"]
BROKEN = [
    b'{"kind":"alloc","time":5,"pid":1',
    b"not json",
    b'{"kind":"alloc","time":5,"pid":2,"heap":"0xZZ","address":"0x1","size":1}',
    b'{"kind":"alloc","time":5,"pid":3,"heap":"0x10","address":"0x1","size":-1}',
    b'{"kind":"bogus","time":5,"pid":1}',
    b'{"kind":"alloc","time":5,"pid":01,"heap":"0x10","address":"0x1","size":1}',
    b'{"kind":"free","time":5,"pid":1,"heap":"0x10","address":"0x1","source":"NOPE"}',
    b"[1, 2]",
]


@st.composite
def lines(draw, broken: bool) -> list[bytes]:
    out: list[bytes] = []
    for i in range(draw(st.integers(0, 40))):
        t = draw(st.integers(0, 10**6))
        pid = draw(st.sampled_from(PIDS))
        choice = draw(st.sampled_from(["event", "event", "event", "odd", "stack", "facts", "blank"]
                                      + (["broken"] if broken else [])))
        if choice == "event":
            kind = draw(st.sampled_from(["alloc", "free", "realloc", "create", "destroy", "process_start"]))
            fields = {"alloc": dict(tid=1, heap="0x10", address="0x1000", size=8, source="LFH", stack=1),
                      "free": dict(tid=1, heap="0x10", address="0x1000"),
                      "realloc": dict(heap="0x10", new_address="0x2000", new_size=16, old_address="0x1000"),
                      "create": dict(heap="0x10", flags="0x2"),
                      "destroy": dict(heap="0x10"),
                      "process_start": dict(image=draw(st.sampled_from(["a.exe", "C:\\\\x\\\\b.exe", "é.exe"])))}
            out.append(record(kind, t, pid, **fields[kind]))
        elif choice == "odd":
            out.append(_odd(draw(st.sampled_from(["alloc", "free"])), t, pid, draw(st.sampled_from(PIDS)),
                            draw(st.sampled_from(STYLES))))
        elif choice == "stack":
            out.append(json.dumps({"kind": "stack", "id": i, "frames": [f"m!f{i}"]}).encode())
        elif choice == "facts":
            out.append(json.dumps({"kind": "facts", "events_lost": i,
                                   "processes": [{"pid": pid, "image": "x.exe", "events_lost": 1}]}).encode())
        elif choice == "blank":
            out.append(b"")
        else:
            out.append(draw(st.sampled_from(BROKEN)))
    return out


def read_stubbed(path: str, wanted: frozenset, skip: bool) -> tuple[list, object, bool]:
    """Own events and other processes' runs of times, the trace facts, and
    whether the reader found the claims it checked exact."""
    reader, trace_input = open_trace(path, None, ReaderOptions(skip_bad_records=skip, pids=wanted, pid_stubs=True))
    with trace_input:
        items = list(guarded_events(reader))
    return items, reader.info, reader.claims_exact


def flatten(items: list) -> list:
    """(other process?, time, index) of every record: own events as they
    are, runs of times one by one (numbered by position)."""
    out = []
    for item in items:
        if type(item) is list:
            out += [(True, t, len(out) + k) for k, t in enumerate(item)]
        else:
            out.append((False, item.time, item.index))
    return out


def _check_filter(tmp_path, body: list[bytes], wanted: frozenset, skip: bool) -> None:
    path = write_lines(tmp_path / "t.jsonl", body)
    everything, info, stacks = read(path, skip_bad_records=skip)
    kept, kinfo, kstacks = read(path, skip_bad_records=skip, pids=wanted)
    assert kept == [ev for ev in everything if ev.pid in wanted]
    assert kinfo == info and kstacks == stacks  # trace facts cover the whole trace
    # With stubs, other processes' records are taken from their first bytes;
    # the reader of the other processes (their partition) decodes them and
    # says whether they were what they seemed.  If so, the stream is exact:
    # own events as decoded, every other event's time in place.
    stubbed, sinfo, _ = read_stubbed(path, wanted, skip)
    _, _, others_exact = read_stubbed(path, frozenset(PIDS) - wanted, skip)
    if skip:
        assert others_exact  # nothing is taken on trust when skipping
    if others_exact:
        assert flatten(stubbed) == [(e.pid not in wanted, e.time, e.index) for e in everything]
        assert [e for e in stubbed if type(e) is not list] == kept and sinfo == info


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=lines(broken=False), wanted=st.frozensets(st.sampled_from(PIDS)))
def test_pid_filter_matches_decoding_everything(tmp_path, body, wanted):
    _check_filter(tmp_path, body, wanted, skip=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=lines(broken=True), wanted=st.frozensets(st.sampled_from(PIDS)))
def test_pid_filter_with_skipped_bad_records(tmp_path, body, wanted):
    """Skipping bad records: a skipped record must not count as an event
    anywhere, so nothing is claimed from its bytes and bad records are
    counted (and indexes kept) as without the filter."""
    _check_filter(tmp_path, body, wanted, skip=True)


def test_strict_reading_leaves_other_processes_records_to_their_owner(tmp_path):
    """A malformed record claimed for another process is not validated here:
    the partition that owns that process reports it (test_jobs_errors)."""
    bad = b'{"kind":"alloc","time":5,"pid":2,"heap":"0xZZ","address":"0x1","size":1}'
    path = write_lines(tmp_path / "t.jsonl", [record("alloc", 1, 1, heap="0x10", address="0x10", size=1), bad])
    with pytest.raises(TraceError) as err:
        read(path)
    assert err.value.line == 3
    events, _, _ = read(path, pids=frozenset({1}))
    assert [e.pid for e in events] == [1]
    with pytest.raises(TraceError) as again:
        read(path, pids=frozenset({2}))
    assert str(again.value) == str(err.value)


@pytest.mark.parametrize("style", ["duplicate-pid", "escaped-pid", "escaped-kind"])
def test_a_record_that_is_not_what_it_starts_as_is_caught_by_its_owner(tmp_path, style):
    """Partition stubs trust a record's first bytes; the partition owning the
    pid they name decodes the record and notices (the analysis then replays
    the trace whole)."""
    body = [record("alloc", 1, 1, heap="0x10", address="0x10", size=1), _odd("alloc", 5, 1, 2, style)]
    path = write_lines(tmp_path / "t.jsonl", body)
    assert read_stubbed(path, frozenset({1}), False)[2] is False
    assert read_stubbed(path, frozenset({2}), False)[2] is True


def test_unclaimable_lines_are_decoded_to_find_their_process(tmp_path):
    body = [_odd("alloc", 5, 1, 2, "duplicate-pid"), _odd("alloc", 6, 1, 2, "escaped-pid"),
            _odd("free", 7, 2, 1, "nested")]
    path = write_lines(tmp_path / "t.jsonl", body)
    assert [e.pid for e in read(path, pids=frozenset({2}))[0]] == [2, 2, 2]
    assert [e.pid for e in read(path, pids=frozenset({1}))[0]] == []


def test_time_units_apply_to_stubs(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [record("alloc", 7, 1, heap="0x10", address="0x10", size=1)],
                       header={**HEADER, "time_unit": "us"})
    (run,), _, _ = read(path, pids=frozenset(), pid_stubs=True)
    assert run == [7000]


@pytest.mark.parametrize("fmt,name", [("xperf", "xperf_basic.txt"), ("wpa-csv", "wpa_basic.csv")])
def test_other_readers_filter_after_decoding(fmt, name):
    from jobs_support import ROOT

    path = str(ROOT / "tests" / "data_text_exports" / name)
    everything, info, _ = read(path, fmt)
    pids = sorted({e.pid for e in everything})
    assert pids, "the sample has events"
    wanted = frozenset(pids[:1])
    kept, kinfo, _ = read(path, fmt, pids=wanted)
    assert kept == [e for e in everything if e.pid in wanted] and kinfo == info
    stubbed, _, _ = read(path, fmt, pids=wanted, pid_stubs=True)
    assert [e if type(e) is list else e.time for e in stubbed] == \
        [[e.time] if e.pid not in wanted else e.time for e in everything]


def test_canonical_csv_filters_too(tmp_path):
    from heaplint.engine.events import HeapEvent, Kind, TraceInfo
    from heaplint.engine.writers import write_trace

    events = [HeapEvent(int(Kind.ALLOC), i, 1 + i % 3, heap=0x10, address=0x100 * (i + 1), size=8) for i in range(9)]
    path = str(tmp_path / "t.csv")
    write_trace(path, events, TraceInfo(path, "csv"))
    kept, _, _ = read(path, pids=frozenset({2}))
    assert [e.time for e in kept] == [1, 4, 7]


def test_partitions_assign_processes_round_robin_in_order_of_appearance():
    part = [PidPartition(i, 3) for i in range(3)]
    order = [50, 7, 50, 9, 1000, 7, 3]
    owners = [[p for p in range(3) if pid in part[p]] for pid in order]
    assert owners == [[0], [1], [0], [2], [0], [1], [1]]
    with pytest.raises(ValueError):
        PidPartition(3, 3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=lines(broken=False), wanted=st.frozensets(st.sampled_from(PIDS)), block=st.integers(1, 400))
def test_pid_filter_across_block_boundaries(tmp_path, body, wanted, block):
    """The stubbed reader scans blocks of decompressed bytes: lines cut at
    any point between blocks read the same."""
    from heaplint.engine.readers import canonical_partition

    saved = canonical_partition._BLOCK
    canonical_partition._BLOCK = block
    try:
        _check_filter(tmp_path, body, wanted, skip=False)
    finally:
        canonical_partition._BLOCK = saved


@pytest.mark.parametrize("where", [1, 2])
def test_over_long_lines_are_the_same_error(tmp_path, where):
    from heaplint.engine.readers.canonical_format import MAX_LINE_BYTES

    body = [record("alloc", 1, 1, heap="0x10", address="0x10", size=1)] * 3
    body[where] = b'{"kind":"free","time":2,"pid":2,"heap":"0x10","address":"0x10","x":"' + b"y" * MAX_LINE_BYTES + b'"}'
    path = write_lines(tmp_path / "t.jsonl", body)
    with pytest.raises(TraceError) as whole:
        read(path)
    for wanted in (frozenset({1}), frozenset({2})):
        with pytest.raises(TraceError) as part:
            read_stubbed(path, wanted, False)
        assert str(part.value) == str(whole.value)
