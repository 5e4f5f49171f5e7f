"""A partition's ordering stage (``PartitionOrder``) against the whole
trace's (``replay.ordered``): same own events in the same order, with the
same trace-wide disorder count seen at every one of them, whatever the
disorder, realloc pairing and the way the other records are cut into runs."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_support import MS, heap_records, random_records, write_lines

from heaplint.engine.partition_order import PartitionOrder
from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
from heaplint.engine.replay import ReplayCounters, ReplayOptions, ordered

OPTIONS = [
    ReplayOptions(),
    ReplayOptions(reorder_window_ns=2 * MS, pair_window_ns=4 * MS),
    ReplayOptions(reorder_window_ns=0, pair_window_ns=0),
    ReplayOptions(realloc_mode="standalone"),
    ReplayOptions(realloc_mode="paired", reorder_window_ns=3 * MS),
]


def events_of(tmp_path, body: list[bytes]) -> list:
    path = write_lines(tmp_path / "t.jsonl", body)
    reader, trace_input = open_trace(path, None, ReaderOptions())
    with trace_input:
        return list(guarded_events(reader))


def as_items(events: list, own: set, rng: random.Random) -> list:
    """Own events as they are; the others' times in runs cut at random."""
    items: list = []
    for ev in events:
        if ev.pid in own:
            items.append(ev)
        elif items and type(items[-1]) is list and rng.random() < 0.7:
            items[-1].append(ev.time)
        else:
            items.append([ev.time])
    return items


def traced(stream, counters: ReplayCounters) -> list:
    """(event, out-of-order count when it came out) for each event."""
    return [(ev, counters.out_of_order) for ev in stream]


def check(events: list, own: set, options: ReplayOptions, rng: random.Random) -> None:
    whole_counters = ReplayCounters()
    late_whole: list = []
    whole = traced(ordered(events, options, whole_counters, lambda ev, rel: late_whole.append((ev, rel))),
                   whole_counters)
    counters = ReplayCounters()
    late: list = []
    order = PartitionOrder(options, counters, lambda ev, rel: late.append((ev, rel)))
    mine = traced(order.events(as_items(events, own, rng)), counters)
    assert [(id(ev), n) for ev, n in mine] == [(id(ev), n) for ev, n in whole if ev.pid in own]
    assert [(id(ev), rel) for ev, rel in late] == [(id(ev), rel) for ev, rel in late_whole if ev.pid in own]
    assert counters.events_in == whole_counters.events_in
    assert counters.out_of_order == whole_counters.out_of_order


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=heap_records, own=st.sets(st.sampled_from((11, 22, 33))), which=st.integers(0, len(OPTIONS) - 1),
       seed=st.integers(0, 1000))
def test_own_events_come_out_as_in_the_whole_ordering(tmp_path, body, own, which, seed):
    check(events_of(tmp_path, body), own, OPTIONS[which], random.Random(seed))


def test_counts_sum_to_the_whole_ones(tmp_path):
    """reordered and paired_inner are counted per partition and summed."""
    events = events_of(tmp_path, random_records(random.Random(5), max_size=400))
    whole = ReplayCounters()
    list(ordered(events, ReplayOptions(), whole))
    assert whole.reordered and whole.paired_inner and whole.out_of_order
    parts = []
    for own in ({11}, {22, 33}):
        counters = ReplayCounters()
        list(PartitionOrder(ReplayOptions(), counters).events(as_items(events, own, random.Random(1))))
        parts.append(counters)
    assert sum(c.reordered for c in parts) == whole.reordered
    assert sum(c.paired_inner for c in parts) == whole.paired_inner
    assert all(c.out_of_order == whole.out_of_order and c.events_in == whole.events_in for c in parts)


def test_long_random_traces(tmp_path):
    """Longer traces than the hypothesis examples: many runs, pairing
    windows that expire on other processes' records."""
    for seed in range(12):
        rng = random.Random(seed)
        events = events_of(tmp_path, random_records(rng, max_size=600))
        for options in OPTIONS:
            check(events, {11} if seed % 2 else {22, 33}, options, rng)


def test_other_processes_records_expire_pairing_runs_in_place():
    """An own move's run holds its inner Alloc; another process's record
    later than the pair window expires the run (releasing the Alloc) before
    an own record beyond the reorder window is passed through.  Without the
    other record's time in pairing, the Alloc would come out after it."""
    from heaplint.engine.events import HeapEvent, Kind

    def ev(kind, t, pid, i, **kw):
        return HeapEvent(int(kind), t, pid, tid=1, heap=0x10, index=i, **kw)

    events = [
        ev(Kind.REALLOC, 100, 1, 0, address=0xB0, size=8, old_address=0xA0),
        ev(Kind.ALLOC, 101, 1, 1, address=0xB0, size=8),  # its inner Alloc: held
        ev(Kind.FREE, 115, 2, 2, address=0x50),  # releases both
        ev(Kind.FREE, 130, 2, 3, address=0x60),  # releases the one at 115: the run expires
        ev(Kind.ALLOC, 50, 1, 4, address=0x70, size=8),  # beyond the window: passed through
    ]
    options = ReplayOptions(reorder_window_ns=10, pair_window_ns=5)
    whole = [e.index for e in ordered(events, options, ReplayCounters()) if e.pid == 1]
    assert whole == [0, 1, 4]
    for cut in ([[115, 130]], [[115], [130]]):
        items = [*events[:2], *cut, events[4]]
        assert [e.index for e in PartitionOrder(options, ReplayCounters()).events(items)] == whole
