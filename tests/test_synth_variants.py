"""Attach mode, lost events, per-CPU disorder, scale knobs."""

from __future__ import annotations

from collections import Counter

import pytest
from heaplint.engine.errors import UsageError
from heaplint.engine.events import Kind
from heaplint.engine.state import UNKNOWN_FREE
from heaplint.engine.synth import ProcessSpec, SynthSpec, WorkloadSpec, synthesize
from synth_support import INTEGRITY, make, replay


def _key(e):
    return (e.time, e.kind, e.pid, e.tid, e.heap, e.address, e.size, e.old_address)


def test_attach_mode() -> None:
    trace = make("attach", events=6000, processes=3)
    events = list(trace.events())
    kinds = Counter(e.kind for e in events)
    assert kinds[Kind.PROCESS_START] == 0
    assert kinds[Kind.PROCESS_END] == 3  # they still exit inside the capture
    assert min(e.time for e in events) >= 0
    assert all(f.start_seen is False and f.end_seen for f in trace.info.processes.values())
    # the process heaps were created before the capture: never created in it
    created = {(e.pid, e.heap) for e in events if e.kind == Kind.HEAP_CREATE}
    for p in trace.truth["processes"]:
        process_heap = next(h for h in p["heaps"] if h["name"] == "process")
        assert (p["pid"], int(process_heap["handle"], 16)) not in created
        assert not process_heap["created_in_trace"]
    r = replay(trace)
    assert r.kinds()[UNKNOWN_FREE] > 10  # frees of blocks allocated before the capture
    assert r.replay.counters.events_in == len(events)


def test_lost_events_are_really_dropped() -> None:
    full = make("healthy-cache", events=6000, seed=9)
    lossy = make("healthy-cache", events=6000, seed=9, lost_events=120)
    a, b = list(full.events()), list(lossy.events())
    assert len(a) - len(b) == 120 == lossy.info.events_lost
    assert sum(f.events_lost for f in lossy.info.processes.values()) == 120
    missing = Counter(map(_key, a)) - Counter(map(_key, b))
    assert sum(missing.values()) == 120
    assert {k[1] for k in missing} <= {Kind.ALLOC, Kind.REALLOC, Kind.FREE}
    assert not Counter(map(_key, b)) - Counter(map(_key, a))  # nothing invented
    truth = lossy.truth["coverage"]
    assert truth["events_lost"] == 120 and truth["expect_unknown_frees"]
    r = replay(lossy)
    assert any(a.kind in INTEGRITY for a in r.anomalies)  # lost allocs => unknown frees


def test_lossy_preset_declares_its_losses() -> None:
    trace = make("lossy", events=8000)
    n = sum(1 for _ in trace.events())
    assert trace.info.events_lost == 8000 * 5 // 1000
    assert n < 9000


def test_disorder_is_bounded_and_per_thread_order_kept() -> None:
    period = 3_000_000
    calm = list(make("mixed", events=5000, seed=4).events())
    busy = list(make("mixed", events=5000, seed=4, disorder_ns=period).events())
    assert sorted(map(_key, busy)) == sorted(map(_key, calm))  # a permutation
    times = [e.time for e in busy]
    assert times != sorted(times)
    running = 0
    worst = 0
    for t in times:
        running = max(running, t)
        worst = max(worst, running - t)
    assert 0 < worst <= period
    threads: dict = {}
    for e in busy:
        threads.setdefault((e.pid, e.tid), []).append(e.time)
    assert all(ts == sorted(ts) for ts in threads.values())
    r = replay(make("mixed", events=5000, seed=4, disorder_ns=period))
    assert r.replay.counters.reordered > 0 and r.replay.counters.out_of_order == 0
    assert not [a for a in r.anomalies if a.kind in INTEGRITY]


def test_high_live_set_ends_with_the_asked_live_blocks() -> None:
    trace = make("high-live-set", events=None, live_blocks=5000)
    r = replay(trace)
    live = sum(p.live_blocks for p in r.replay.state.processes.values())
    assert 5000 <= live <= 5500, live
    assert not trace.info.processes[next(iter(trace.info.processes))].end_seen


def test_busy_two_processes_are_equally_busy() -> None:
    counts = Counter(e.pid for e in make("busy-2proc", events=20_000).events())
    (a, b) = counts.values()
    assert len(counts) == 2 and abs(a - b) < 0.1 * (a + b)


def test_event_count_and_duration_knobs() -> None:
    for n in (2000, 20_000):
        events = list(make("mixed", events=n, duration_ns=10_000_000_000).events())
        assert 0.85 * n <= len(events) <= 1.15 * n, (n, len(events))
        assert max(e.time for e in events) <= 10_000_000_000
        assert max(e.time for e in events) > 9_000_000_000


def test_several_threads_per_process() -> None:
    events = list(make("mixed", events=5000).events())
    threads = Counter((e.pid, e.tid) for e in events)
    for pid in {e.pid for e in events}:
        assert sum(1 for p, _ in threads if p == pid) >= 3
    assert all(tid % 4 == 0 and pid % 4 == 0 for pid, tid in threads)


@pytest.mark.parametrize("preset", ["mixed", "attach", "leak", "high-live-set"])
def test_tiny_traces_stay_inside_the_capture(preset: str) -> None:
    kw = {"live_blocks": 3} if preset == "high-live-set" else {}
    trace = make(preset, events=5, duration_ns=100_000_000, lost_events=2, **kw)
    events = list(trace.events())
    assert events and all(0 <= e.time <= 100_000_000 for e in events)
    replay(trace)  # and it replays (HeapState._check holds)


def test_bad_specs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="at least 100ms"):
        make("mixed", duration_ns=1_000)
    with pytest.raises(UsageError, match="unknown defect 'leek'"):
        make("mixed", inject=("leek",))
    with pytest.raises(UsageError, match="unknown realloc shape"):
        make("mixed", realloc_shape="both")
    with pytest.raises(UsageError, match="unknown workload 'cash'"):
        SynthSpec(processes=(ProcessSpec("a.exe", (WorkloadSpec("cash"),)),))
    with pytest.raises(UsageError, match="unknown parameter"):
        synthesize(SynthSpec(processes=(ProcessSpec("a.exe", (WorkloadSpec("cache", params={"capacty": 3}),)),)))
    with pytest.raises(UsageError, match="positive weight"):
        SynthSpec(processes=(ProcessSpec("a.exe", (WorkloadSpec("slowpath-burst", 0.0),)),))
