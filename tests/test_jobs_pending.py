"""A partition whose processes end in the middle of a move keeps the other
partition's records pending for the rest of the trace (realloc pairing has a
run open that only an own record could settle).  Past
``partition_order.PENDING_LIMIT`` pending runs it gives up
(``PartitionAbandoned``) and the trace is replayed whole: memory stays
bounded, and the output is that of ``--jobs 1``."""

from __future__ import annotations

import pytest
from rules_kit import jsonl

from heaplint.engine import analyze, partition_order
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.parallel import Abandoned, AnalysisSpec, Task, run_task, run_traces
from heaplint.engine.partition import replay_partition
from heaplint.engine.partition_order import PartitionAbandoned, PartitionOrder
from heaplint.engine.replay import ReplayCounters, ReplayOptions, ordered


def _ended_mid_move(others: int) -> list[HeapEvent]:
    """pid 1 allocates, makes a moving realloc with its inner Alloc, then
    logs nothing more; pid 2 goes on allocating and freeing."""
    events = []
    t = 1000
    for i in range(20):
        events.append(HeapEvent(Kind.ALLOC, t, 1, 5, 0x10, 0x1000 + 16 * i, 16))
        events.append(HeapEvent(Kind.ALLOC, t + 50, 2, 6, 0x10, 0x50000 + 16 * i, 16))
        t += 100
    events.append(HeapEvent(Kind.REALLOC, t, 1, 5, 0x10, 0x9000, 32, 0x1000, 16))
    events.append(HeapEvent(Kind.ALLOC, t + 10, 1, 5, 0x10, 0x9000, 32))
    t += 100
    for _ in range(others):
        events.append(HeapEvent(Kind.ALLOC, t, 2, 6, 0x10, 0x80000, 16))
        events.append(HeapEvent(Kind.FREE, t + 50, 2, 6, 0x10, 0x80000))
        t += 20_000  # beyond the pair window: every record is its own run between own events
    return events


def _items(events: list[HeapEvent]) -> list:
    """What a partition of pid 1 reads: its events, the others as runs of times."""
    items: list = []
    for ev in events:
        if ev.pid == 1:
            items.append(ev)
        elif items and type(items[-1]) is list and len(items[-1]) < 2:
            items[-1].append(ev.time)
        else:
            items.append([ev.time])
    return items


def test_pending_runs_are_bounded(monkeypatch):
    monkeypatch.setattr(partition_order, "PENDING_LIMIT", 500)
    order = PartitionOrder(ReplayOptions(), ReplayCounters())
    with pytest.raises(PartitionAbandoned):
        for _ in order.events(_items(_ended_mid_move(2000))):
            pass
    assert len(order.pending) <= 501


def test_below_the_limit_the_stage_is_exact(monkeypatch):
    """The same shape, shorter than the limit: nothing abandoned, the own
    events come out as in the whole ordering."""
    monkeypatch.setattr(partition_order, "PENDING_LIMIT", 500)
    events = _ended_mid_move(200)
    out = list(PartitionOrder(ReplayOptions(), ReplayCounters()).events(_items(events)))
    whole = [ev for ev in ordered(events, ReplayOptions(), ReplayCounters()) if ev.pid == 1]
    assert [id(e) for e in out] == [id(e) for e in whole]


def _trace(tmp_path, others: int) -> str:
    records = []
    for ev in _ended_mid_move(others):
        r = {"kind": Kind(ev.kind).name.lower(), "time": ev.time, "pid": ev.pid, "tid": ev.tid, "heap": hex(ev.heap)}
        if ev.kind == Kind.REALLOC:
            r.update(new_address=hex(ev.address), old_address=hex(ev.old_address), new_size=ev.size)
        else:
            r["address"] = hex(ev.address)
            if ev.kind == Kind.ALLOC:
                r["size"] = ev.size
        records.append(r)
    return jsonl(tmp_path / "mid-move.jsonl", *records)


def test_an_abandoned_partition_means_a_whole_replay(tmp_path, monkeypatch):
    path = _trace(tmp_path, 300)
    monkeypatch.setattr(partition_order, "PENDING_LIMIT", 100)
    with pytest.raises(PartitionAbandoned):
        replay_partition(path, 0, 2)
    spec = AnalysisSpec(None, None, None, ReplayOptions())
    assert isinstance(run_task(Task(spec, path, 0, 2)), Abandoned)
    whole = run_traces([path], spec, 1)[0]
    assert run_traces([path], spec, 2, start_method="fork")[0] == whole
    one = analyze([path], use_config=False, jobs=1)
    two = analyze([path], use_config=False, jobs=2)
    assert [f.fingerprint for f in two.findings] == [f.fingerprint for f in one.findings]
    assert two.traces[0].stats == one.traces[0].stats


def _late_runs(runs: int, hold: int) -> list:
    """Items of a partition with one own event, then runs of the other
    partition's times, each with a record later than the window allows
    (the stage takes those record by record) and none older than the
    records released before it."""
    items: list = [HeapEvent(Kind.ALLOC, 0, 1, 5, 0x10, 0x1000, 16)]
    for k in range(1, runs + 1):
        t = 3 * hold * k
        items.append([t, t - 2 * hold])
    return items


def test_record_by_record_runs_are_bounded_too():
    """Other records taken one by one (beyond the window) are forgotten once
    released, as runs taken whole are: pending stays within the window."""
    options = ReplayOptions()
    hold = max(options.reorder_window_ns, options.pair_window_ns)
    order = PartitionOrder(options, ReplayCounters())
    peak = 0

    def feed():  # the items, noting how many runs are pending as each goes in
        nonlocal peak
        for item in _late_runs(5000, hold):
            peak = max(peak, len(order.pending))
            yield item

    out = list(order.events(feed()))
    assert [ev.time for ev in out] == [0]
    assert order.counters.out_of_order == 0 and peak <= 200
