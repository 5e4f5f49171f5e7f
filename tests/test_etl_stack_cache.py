"""The C walk's known-stack cache (etlfast_stacks.c) against the pure-Python
reader: traces whose StackWalk records repeat, share and nearly share frames
across processes and pointer sizes read the same (events with their stack
ids, the stack table, the counters) with and without the accelerator, and
in --jobs partitions.

Hypothesis draws the stacks from a small pool of frames, so that the same
frame bytes come back often (cache hits), under another pid (a different
key), and as prefixes of each other (same hash input but for the length);
more than 256 distinct stacks make the table grow.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_impl import c_module
from etl_writer import Record, write_etl
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.partition import PidPartition
from heaplint.engine.readers import etl_native
from heaplint.engine.readers.base import ReaderOptions
from heaplint.engine.readers.etl import EtlReader

C = c_module()
pytestmark = pytest.mark.skipif(C is None, reason="the C accelerator is not built (a pure-Python install)")

_POOL = [0x7FF600001000 + 0x10 * i for i in range(6)] + [0x10000, 0x7FF6FFFF0000FFFF]


def _trace(stacks: list[tuple[int, tuple[int, ...]]], pointer_size: int) -> bytes:
    """One alloc per (pid, frames), each with its StackWalk record; the first
    record of each pid starts its process."""
    mask = (1 << (8 * pointer_size)) - 1
    records: list = []
    seen: set[int] = set()
    t = 100
    for i, (pid, frames) in enumerate(stacks):
        if pid not in seen:
            seen.add(pid)
            records.append(HeapEvent(Kind.PROCESS_START, t, pid, 1, image=f"p{pid}.exe"))
            t += 100
        ev = HeapEvent(Kind.ALLOC, t, pid, 2 + i % 3, 0x1000, 0x2000 + 16 * i, 16)
        records.append(Record(ev, frames=tuple(f & mask for f in frames)) if frames else ev)
        t += 100
    fh = io.BytesIO()
    write_etl(fh, records, cpus=2, buffer_size=4096, pointer_size=pointer_size)
    return fh.getvalue()


def _read(raw: bytes, native, pids=None) -> tuple:
    saved, etl_native.NATIVE = etl_native.NATIVE, native
    try:
        reader = EtlReader(io.BytesIO(raw), "s.etl", ReaderOptions(pids=pids, pid_stubs=pids is not None))  # type: ignore[arg-type]
        items = list(reader.events())
    finally:
        etl_native.NATIVE = saved
    return items, reader.stacks, reader.record_counts, reader._kernel.unmatched_stacks


_stacks = st.lists(
    st.tuples(st.sampled_from([40, 41, 77]), st.lists(st.sampled_from(_POOL), min_size=0, max_size=5).map(tuple)),
    min_size=1, max_size=120,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stacks, st.sampled_from([4, 8]))
def test_stacks_read_alike(stacks, pointer_size: int) -> None:
    raw = _trace(stacks, pointer_size)
    expected = _read(raw, None)
    assert _read(raw, C) == expected
    for index in (0, 1):
        assert _read(raw, C, PidPartition(index, 2)) == _read(raw, None, PidPartition(index, 2))


def test_table_grows_past_its_first_size() -> None:
    """600 distinct stacks, each seen three times: ids as in pure Python."""
    stacks = [(40 + i % 2, (0x7FF600000000 + i, 0x7FF600100000 + i // 7)) for i in range(600)] * 3
    raw = _trace(stacks, 8)
    items, table, _, unmatched = _read(raw, C)
    assert (items, table) == _read(raw, None)[:2]
    assert unmatched == 0
    assert len({e.stack for e in items if e.kind == Kind.ALLOC}) == 600
