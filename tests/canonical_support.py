"""Shared helpers of the canonical-format tests (not a test module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import strategies as st

from heaplint.engine.events import HeapEvent, Kind, ProcessFacts, StackTable, TraceInfo
from heaplint.engine.readers import guarded_events, open_trace
from heaplint.engine.readers.base import ReaderOptions
from heaplint.engine.readers.canonical_format import FACT_KEYS

ROOT = Path(__file__).resolve().parent.parent

HEADER = b'{"format":"heaplint-trace","version":1,"time_unit":"ns"}\n'


def read_all(path: str, input_format: str | None = None, skip: bool = False):
    """(events, info, stacks) of a trace read with the real reader stack."""
    reader, trace_input = open_trace(str(path), input_format, ReaderOptions(skip_bad_records=skip))
    with trace_input:
        events = list(guarded_events(reader))
    return events, reader.info, reader.stacks


def without_lines(events: list[HeapEvent]) -> list[HeapEvent]:
    return [ev._replace(line=0) for ev in events]


def numbered(events: list[HeapEvent]) -> list[HeapEvent]:
    """The events as a reader must return them: index = ordinal, line unset."""
    return [ev._replace(index=i, line=0) for i, ev in enumerate(events)]


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the real ``heaplint`` command line in a subprocess."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "heaplint.engine", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


# -- hypothesis strategies: events as a reader returns them -------------------

u64 = st.integers(min_value=0, max_value=2**64 - 1)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
times = st.integers(min_value=-(2**40), max_value=2**50)
sources = st.integers(min_value=0, max_value=6)
stack_ids = st.none() | st.integers(min_value=0, max_value=2**31)
images = st.none() | st.text(min_size=1, max_size=20)


def _make(**fields) -> HeapEvent:
    # a plain function: st.builds(HeapEvent) would also draw the fields a kind
    # does not use, which the format (rightly) does not carry
    return HeapEvent(**fields)


def _event(kind: Kind, **fields) -> st.SearchStrategy[HeapEvent]:
    return st.builds(_make, kind=st.just(int(kind)), time=times, pid=u32, tid=u32, **fields)


events_strategy = st.one_of(
    _event(Kind.HEAP_CREATE, heap=u64, flags=u32),
    _event(Kind.ALLOC, heap=u64, address=u64, size=u64, source=sources, stack=stack_ids),
    _event(
        Kind.REALLOC,
        heap=u64,
        address=u64,
        size=u64,
        old_address=u64,
        old_size=st.none() | u64,
        source=sources,
        stack=stack_ids,
    ),
    _event(Kind.FREE, heap=u64, address=u64, source=sources),
    _event(Kind.DESTROY, heap=u64),
    _event(Kind.PROCESS_START, image=images),
    _event(Kind.PROCESS_END, image=images),
)

frames_strategy = st.lists(st.text(min_size=1, max_size=30), max_size=5).map(tuple)
stacks_strategy: st.SearchStrategy[StackTable] = st.dictionaries(
    st.integers(min_value=0, max_value=1000), frames_strategy, max_size=4
)

process_facts = st.builds(
    ProcessFacts,
    pid=u32,
    image=images,
    start_seen=st.none() | st.booleans(),
    end_seen=st.none() | st.booleans(),
    events_lost=st.integers(min_value=0, max_value=1000),
)


@st.composite
def infos(draw, path: str = "t", fmt: str = "jsonl") -> TraceInfo:
    """TraceInfo values whose facts the format carries."""
    info = TraceInfo(path=path, format=fmt, format_version=1)
    info.pointer_size = draw(st.none() | st.sampled_from([4, 8]))
    info.events_lost = draw(st.integers(min_value=0, max_value=10**6))
    info.buffers_lost = draw(st.integers(min_value=0, max_value=10**6))
    info.capture_start = draw(st.none() | times)
    info.capture_end = draw(st.none() | times)
    info.start_wall_time = draw(st.none() | st.just("2024-05-01T12:00:00.000000Z"))
    info.clock = draw(st.none() | st.sampled_from(["QPC", "SystemTime", "CPU cycle counter"]))
    info.timer_frequency = draw(st.none() | st.integers(min_value=1, max_value=10**10))
    for p in draw(st.lists(process_facts, max_size=3, unique_by=lambda p: p.pid)):
        info.processes[p.pid] = p
    return info


def facts_of(info: TraceInfo) -> dict:
    """The parts of a TraceInfo that the format carries."""
    return {name: getattr(info, name) for name in FACT_KEYS}
