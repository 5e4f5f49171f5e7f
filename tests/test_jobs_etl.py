"""The .etl reader's process filter (``ReaderOptions.pids``, used by
``--jobs`` partitions) under both decoders: the partitioned stream against
the whole-trace reader, and ``--jobs 2`` against ``--jobs 1`` on .etl input.

Every test runs with the C accelerator and in pure Python (etl_impl); the
reference is always the pure-Python whole-trace reader."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from etl_impl import etl_implementation  # noqa: F401 - runs every test under both decoders
from etl_writer import Record, write_etl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_support import ROOT, heap_records, write_lines

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.partition import PidPartition
from heaplint.engine.readers import ReaderOptions, etl_native, guarded_events, open_trace
from heaplint.engine.readers.etl import EtlReader
from heaplint.engine.readers.etl_partition import split_round

PIDS = (11, 22, 33)
FRAMES = [(), (), (0x7FF600001000,), (0x7FF600001000, 0x7FF600002000), (0x7FF600003000, 0x7FF600001000)]


@st.composite
def etl_traces(draw) -> bytes:
    """Several processes' heap and process records, times with ties (also
    across processors), stacks direct or by key, every header kind, noise,
    small buffers (many merge rounds), plain or compressed."""
    records = []
    t = 0
    for _ in range(draw(st.integers(0, 80))):
        t += draw(st.sampled_from([0, 0, 100, 300, 20_000]))
        pid, tid = draw(st.sampled_from(PIDS)), draw(st.integers(1, 4))
        kind = draw(st.sampled_from(["alloc", "alloc", "free", "realloc", "create", "destroy", "start", "end"]))
        address = draw(st.sampled_from([0x1000, 0x2000, 0x3000]))
        if kind == "start" or kind == "end":
            ev = HeapEvent(Kind.PROCESS_START if kind == "start" else Kind.PROCESS_END, t, pid, tid, image=f"p{pid}.exe")
            records.append(Record(ev))
            continue
        ev = {"alloc": HeapEvent(Kind.ALLOC, t, pid, tid, 0x10, address, 24, source=draw(st.integers(0, 7))),
              "free": HeapEvent(Kind.FREE, t, pid, tid, 0x10, address),
              "realloc": HeapEvent(Kind.REALLOC, t, pid, tid, 0x10, address + 0x100, 48, address, 24),
              "create": HeapEvent(Kind.HEAP_CREATE, t, pid, tid, 0x10, flags=2),
              "destroy": HeapEvent(Kind.DESTROY, t, pid, tid, 0x10)}[kind]
        header = draw(st.sampled_from(["system", "system", "system", "compact", "classic", "event_header"]))
        records.append(Record(ev, frames=draw(st.sampled_from(FRAMES)), header=header,
                              cpu=draw(st.none() | st.integers(0, 3))))
    fh = io.BytesIO()
    write_etl(fh, records, cpus=draw(st.integers(1, 4)), buffer_size=draw(st.sampled_from([1024, 4096])),
              compress=draw(st.booleans()), stack_mode=draw(st.sampled_from(["direct", "key"])),
              noise=draw(st.booleans()), rundown={11: "p11.exe"})
    return fh.getvalue()


def read(raw: bytes, **options) -> tuple[list, EtlReader]:
    reader = EtlReader(io.BytesIO(raw), "t.etl", ReaderOptions(**options))  # type: ignore[arg-type]
    return list(guarded_events(reader)), reader


def reference(raw: bytes) -> tuple[list, EtlReader]:
    """The whole trace, read by the pure-Python reader."""
    saved, etl_native.NATIVE = etl_native.NATIVE, None
    try:
        return read(raw)
    finally:
        etl_native.NATIVE = saved


def flatten(items: list) -> list:
    """Own events as they are, runs of other processes' times one by one."""
    out: list = []
    for item in items:
        out += [("other", t) for t in item] if type(item) is list else [item]
    return out


def facts(reader: EtlReader) -> tuple:
    return reader.info, reader.stacks, reader.record_counts, reader.heap_opcode_counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=etl_traces(), wanted=st.frozensets(st.sampled_from(PIDS)))
def test_partitioned_stream_is_the_whole_streams_own_events_and_other_times(raw, wanted):
    """Own events exactly as the whole reader gives them (index and stack
    included), every other event's time in its place, and the same trace
    facts (stack ids are numbered over the whole trace)."""
    whole, ref = reference(raw)
    items, reader = read(raw, pids=wanted, pid_stubs=True)
    assert flatten(items) == [e if e.pid in wanted else ("other", e.time) for e in whole]
    assert all(type(item) is not list or item for item in items)  # no empty runs
    assert facts(reader) == facts(ref)
    kept, reader = read(raw, pids=wanted)
    assert kept == [e for e in whole if e.pid in wanted] and facts(reader) == facts(ref)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=etl_traces(), count=st.integers(2, 3))
def test_partitions_share_out_every_process_once(raw, count):
    """PidPartition is asked in the order the records come out, as the
    generic filter asks: each process goes to exactly one partition."""
    whole, _ = reference(raw)
    owned = []
    for index in range(count):
        items, _ = read(raw, pids=PidPartition(index, count), pid_stubs=True)
        owned += [e for e in items if type(e) is not list]
    assert sorted(owned, key=whole.index) == whole
    first = list(dict.fromkeys(e.pid for e in whole))
    for index in range(count):
        part = PidPartition(index, count)
        mine = [pid for pid in first if pid in part]
        items, _ = read(raw, pids=PidPartition(index, count))
        assert {e.pid for e in items} == set(mine) & {e.pid for e in whole}


def read_or_error(raw: bytes, native, **options) -> tuple:
    saved, etl_native.NATIVE = etl_native.NATIVE, native
    try:
        items, reader = read(raw, **options)
        return items, facts(reader)
    except TraceError as err:
        return ("error", str(err))
    finally:
        etl_native.NATIVE = saved


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=etl_traces(), wanted=st.frozensets(st.sampled_from(PIDS)), skip=st.booleans(), data=st.data())
def test_corrupted_traces_partition_alike(raw, wanted, skip, data):
    """Bytes changed anywhere: a partition's stream (or error) is the same
    with the C walk as in pure Python."""
    native = etl_native.NATIVE
    if native is None or len(raw) <= 1024:
        return
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(1024, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255) | st.sampled_from([0, 0xFF, 0x10, 0x0B, 0x16, 0xC0, 0x18, 0x20]))
    options = dict(pids=wanted, pid_stubs=True, skip_bad_records=skip)
    assert read_or_error(bytes(raw), native, **options) == read_or_error(bytes(raw), None, **options)


def test_split_round_in_c_and_python():
    """The C split against the Python one, including a pid asked about for
    the first time, runs at the ends, and dropping (no stubs)."""
    native = etl_native.NATIVE
    if native is None:
        pytest.skip("pure Python: nothing to compare")
    evs = [HeapEvent(Kind.ALLOC, t, pid, 1) for t, pid in enumerate([2, 2, 1, 3, 3, 1, 2, 1 << 70, 2])]
    for stubs in (False, True):
        ours_py: dict = {}
        expected = split_round(evs, ours_py, frozenset({1, 1 << 70}), stubs)
        reader = EtlReader(io.BytesIO(), "x.etl", ReaderOptions(pids=frozenset({1})))  # type: ignore[arg-type]
        decoder = native.Decoder(HeapEvent, 0, 1, 1, {}, (1, 2, 3, 4, 5), bytes(16))
        decoder.partition(reader._ours)
        assert decoder.split(evs, frozenset({1, 1 << 70}), stubs) == expected
        assert reader._ours == ours_py
    with pytest.raises(TypeError):
        decoder.split([(1, 2)], frozenset(), True)


def _busy_etl(path, events: int) -> str:
    """A two-process synth workload with allocation stacks, written as .etl
    the way benchmarks/inputs.py writes its .etl input."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from inputs import write_etl_trace
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from heaplint.engine.synth import synthesize
    from heaplint.engine.synth_presets import build_spec

    write_etl_trace(synthesize(build_spec("busy-2proc", events=events, seed=3)), path)
    return str(path)


def test_jobs_2_is_byte_identical_on_etl(tmp_path, etl_implementation):  # noqa: F811
    """`heaplint check` of a busy two-process .etl trace (default profile),
    every report format, with --jobs 1 and --jobs 2; the workers run the
    same decoder as this test (HEAPLINT_PURE_PYTHON)."""
    trace = _busy_etl(tmp_path / "busy.etl", 6000)
    env = {k: v for k, v in os.environ.items() if k != "HEAPLINT_PURE_PYTHON"}
    if etl_implementation == "python":
        env["HEAPLINT_PURE_PYTHON"] = "1"
    outputs = []
    for jobs in ("1", "2"):
        reports = [a for f in ("json", "sarif", "text") for a in ("--format", f, "-o", str(tmp_path / f"{jobs}.{f}"))]
        done = subprocess.run([sys.executable, "-m", "heaplint.engine", "check", trace, "--jobs", jobs, "--no-config",
                               *reports], capture_output=True, cwd=ROOT, env=env, timeout=300)
        outputs.append((done.returncode, done.stderr, [(tmp_path / f"{jobs}.{f}").read_bytes()
                                                       for f in ("json", "sarif", "text")]))
    assert outputs[0][0] in (0, 1) and outputs[0] == outputs[1]
    assert b'"findings"' in outputs[0][2][0]
    # and the partitions merged (no fallback to a whole replay)
    from heaplint.engine.analyze import analyze_trace
    from heaplint.engine.parallel import RuleSetArgs
    from heaplint.engine.partition import is_trace_scope, replay_partition
    from heaplint.engine.partition_merge import merge_parts
    from jobs_support import as_plain

    rules = RuleSetArgs.of(use_config=False).load()
    parts = [replay_partition(trace, i, 2, rules=rules.enabled) for i in range(2)]
    merged = merge_parts(parts, [r for r in rules.enabled if is_trace_scope(r)])
    assert merged is not None and as_plain(merged) == as_plain(analyze_trace(rules, trace))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=heap_records)
def test_positions_told_by_the_ordering_stage(tmp_path, body):
    """The .etl reader's index is not the input position, so a partition
    learns each own event's position from the ordering stage (top, or
    marks for what pairing held).  On canonical JSONL, whose index is the
    position, both ways give the same process order keys."""
    from heaplint.engine.partition import replay_partition

    from heaplint.engine.partition_order import PartitionOrder
    from heaplint.engine.replay import ReplayCounters, ReplayOptions

    path = write_lines(tmp_path / "t.jsonl", body)
    for index in range(2):
        by_index, told = (replay_partition(path, index, 2, index_is_position=flag) for flag in (True, False))
        assert [p.key for p in told.processes] == [p.key for p in by_index.processes]
        assert told.order_exact == by_index.order_exact
        # every own event's position, as PartitionReplay._special reads it
        reader, trace_input = open_trace(path, None, ReaderOptions(pids=PidPartition(index, 2), pid_stubs=True))
        with trace_input:
            order = PartitionOrder(ReplayOptions(), ReplayCounters(), by_index=False)
            for ev in order.events(guarded_events(reader)):
                mark = order.marks.pop(id(ev), None)
                assert (mark[1] if mark is not None else (None if order.flushing else order.top[1])) == ev.index
                assert order.own_top() >= (ev.time, ev.index)
