"""Reordering: records shuffled within the reorder window (per-CPU jitter)
replay exactly as the sorted trace; disorder beyond the window is counted,
never a crash."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from state_reference import ALLOC, FREE, alloc, anomaly_view, free, indexed, state_blocks
from ordering_reference import reference_ordered
from state_traces import build, chaotic_ops, paired_shape, shape_draws, shape_stream

from heaplint.engine.replay import Replay, ReplayCounters, ReplayOptions, ordered

US = 1_000
GAP = 10 * US  # between the ops of a generated trace
WINDOW = 30 * US  # reorder window used here
PAIR = 5 * US  # pair window used here: wider than a run, narrower than GAP


def jittered(events, rng: random.Random, max_delay: int):
    """Input order as per-CPU buffers would give it: each record delayed by up
    to ``max_delay`` of trace time, then read in order of arrival."""
    delays = [rng.randint(0, max_delay) for _ in events]
    order = sorted(range(len(events)), key=lambda i: (events[i].time + delays[i], i))
    return [events[i] for i in order]


def reference_order(events, window: int) -> tuple[list, int]:
    """A plain model of the reorder buffer: a record is released once the
    newest time seen is more than ``window`` past it, in (time, arrival)
    order; a record older than one already released goes out at once and is
    counted.  Returns the output order and that count."""
    buffer: list[tuple[int, int, object]] = []
    out: list = []
    newest = released = None
    late = 0
    for arrival, ev in enumerate(events):
        if released is not None and ev.time < released:
            late += 1
            out.append(ev)
            continue
        newest = ev.time if newest is None else max(newest, ev.time)
        buffer.append((ev.time, arrival, ev))
        ready = sorted(x for x in buffer if x[0] < newest - window)
        for x in ready:
            buffer.remove(x)
            out.append(x[2])
            released = x[0]
    out.extend(x[2] for x in sorted(buffer))
    return out, late


def options(mode: str = "standalone") -> ReplayOptions:
    return ReplayOptions(reorder_window_ns=WINDOW, pair_window_ns=PAIR, realloc_mode=mode)


def result(events, mode: str) -> tuple:
    rp = Replay(options(mode))
    seen: list = []
    rp.run(events, lambda ev, anomalies: seen.extend(anomalies))
    rp.state._check()
    counts = [(p.pid, h.handle, tuple(h.counts)) for p in rp.state.all_processes() for h in p.all_heaps()]
    return state_blocks(rp.state), anomaly_view(seen), counts, rp.counters.paired_inner


@settings(max_examples=40, deadline=None)
@given(chaotic_ops, st.randoms(use_true_random=False))
def test_jitter_within_the_window_is_undone_exactly(ops, rng):
    events = build(ops, GAP)  # distinct times
    shuffled = jittered(events, rng, WINDOW)
    counters = ReplayCounters()
    out = list(ordered(shuffled, options(), counters))
    assert out == events
    assert counters.out_of_order == 0
    assert counters.reordered == sum(
        1 for i, ev in enumerate(shuffled) if any(o.time > ev.time for o in shuffled[:i])
    )
    assert counters.max_buffered <= len(events)


@settings(max_examples=40, deadline=None)
@given(chaotic_ops, shape_draws, st.randoms(use_true_random=False), st.sampled_from(["auto", "standalone", "paired"]))
def test_jittered_replay_equals_sorted_replay(ops, draws, rng, mode):
    # the paired shape in every mode; records sharing a timestamp keep their
    # arrival order, which carries no meaning, so only auto (where the order
    # inside a run does not matter) gets runs with one timestamp
    if mode != "auto":
        draws = [(order, False) for order, _ in draws]
    events = indexed(paired_shape(build(ops, GAP), shape_stream(draws), step=US))
    assert result(jittered(events, rng, WINDOW), mode) == result(events, mode)


@settings(max_examples=40, deadline=None)
@given(chaotic_ops, st.randoms(use_true_random=False), st.integers(2, 10))
def test_disorder_beyond_the_window_is_counted_not_fatal(ops, rng, factor):
    events = build(ops, GAP)
    shuffled = jittered(events, rng, factor * WINDOW)
    counters = ReplayCounters()
    out = list(ordered(shuffled, options(), counters))
    want, late = reference_order(shuffled, WINDOW)
    assert out == want
    assert counters.out_of_order == late
    assert sorted(ev.index for ev in out) == list(range(len(events)))


@settings(max_examples=30, deadline=None)
@given(chaotic_ops, shape_draws, st.randoms(use_true_random=False), st.integers(2, 10))
def test_disorder_beyond_the_window_with_pairing(ops, draws, rng, factor):
    events = indexed(paired_shape(build(ops, GAP), shape_stream(draws), step=US))
    shuffled = jittered(events, rng, factor * WINDOW)
    rp = Replay(options("auto"))
    applied: list = []
    rp.run(shuffled, lambda ev, anomalies: applied.append(ev))
    rp.state._check()
    # every record is applied once, or dropped as an inner one
    assert len(applied) + rp.counters.paired_inner == len(events)
    assert len({ev.index for ev in applied}) == len(applied)
    assert all(ev.kind in (ALLOC, FREE) for ev in events if ev.index not in {a.index for a in applied})
    # late records are noted on their process, a bounded sample kept
    assert len(rp.out_of_order) == min(100, rp.counters.out_of_order)
    noted = sum(p.anomalies.get("out-of-order", 0) for p in rp.state.all_processes())
    assert noted <= rp.counters.out_of_order


def test_a_late_record_is_reported_with_its_lateness():
    events = indexed(
        [alloc(0, 1, 0xA0, 0x1000, 8), alloc(100 * US, 1, 0xA0, 0x2000, 8), free(5 * US, 1, 0xA0, 0x1000)]
    )
    opts = ReplayOptions(reorder_window_ns=10 * US, pair_window_ns=US)
    rp = Replay(opts)
    rp.run(events)
    assert rp.counters.out_of_order == 0  # the last record flushes nothing early
    events = indexed(
        [alloc(0, 1, 0xA0, 0x1000, 8), alloc(100 * US, 1, 0xA0, 0x2000, 8), alloc(200 * US, 1, 0xA0, 0x3000, 8),
         free(5 * US, 1, 0xA0, 0x1000)]
    )  # fmt: skip
    rp = Replay(opts)
    rp.run(events)
    assert rp.counters.out_of_order == 1
    (late,) = rp.out_of_order
    assert late.kind == "out-of-order" and late.event is events[3]
    assert late.bytes == 100 * US - 5 * US  # how far behind the released records it was
    assert rp.state.process(1).anomalies["out-of-order"] == 1
    assert state_blocks(rp.state) == {(1, 0xA0): {0x2000: 8, 0x3000: 8}}


def test_zero_window_only_sorts_what_is_still_buffered():
    events = indexed([alloc(10, 1, 0xA0, 0x1000, 8), alloc(5, 1, 0xA0, 0x2000, 8), alloc(20, 1, 0xA0, 0x3000, 8),
                      alloc(7, 1, 0xA0, 0x4000, 8)])  # fmt: skip
    counters = ReplayCounters()
    out = list(ordered(events, ReplayOptions(reorder_window_ns=0, realloc_mode="standalone"), counters))
    assert [ev.time for ev in out] == [5, 10, 7, 20]
    assert counters.out_of_order == 1 and counters.reordered == 1


@settings(max_examples=60, deadline=None)
@given(
    chaotic_ops, shape_draws, st.randoms(use_true_random=False), st.integers(0, 4),
    st.sampled_from(["auto", "standalone", "paired"]), st.sampled_from([0, US, WINDOW]), st.booleans(),
)  # fmt: skip
def test_ordering_matches_the_reference(ops, draws, rng, factor, mode, window, ties):
    # jitter within and beyond the window, runs sharing timestamps, zero windows
    events = indexed(paired_shape(build(ops, GAP), shape_stream(draws), step=0 if ties else US))
    shuffled = jittered(events, rng, factor * WINDOW)
    opts = ReplayOptions(reorder_window_ns=window, pair_window_ns=min(window, PAIR), realloc_mode=mode)
    want_counters, got_counters = ReplayCounters(), ReplayCounters()
    want_late: list = []
    got_late: list = []
    want = reference_ordered(shuffled, opts, want_counters, want_late)
    got = list(ordered(shuffled, opts, got_counters, lambda ev, released: got_late.append((ev, released))))
    assert [id(ev) for ev in got] == [id(ev) for ev in want]
    assert got_counters == want_counters
    assert got_late == want_late


def test_ordering_of_nothing():
    counters = ReplayCounters()
    assert list(ordered([], ReplayOptions(), counters)) == []
    assert counters == ReplayCounters()
