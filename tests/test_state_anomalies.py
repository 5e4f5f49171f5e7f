"""One small readable case per anomaly kind, heap labels, peaks, blocks and
the end-of-process hook.

``check(events, *expected)`` applies the events to a fresh HeapState and
compares every anomaly returned with the expected ones, in order; an expected
anomaly names its kind and only the fields the case is about.
"""

from __future__ import annotations

import pytest
from state_reference import alloc, create, destroy, end, free, indexed, realloc, start

from heaplint.engine import state as st
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.state import ANOMALY_KINDS, HeapState

H, H2 = 0xA0, 0xB0
A, B = 0x1000, 0x2000


def X(kind: str, **fields: int) -> tuple[str, dict[str, int]]:
    """An expected anomaly: its kind and the fields that matter for the case."""
    return kind, fields


def check(events: list[HeapEvent], *expected: tuple[str, dict[str, int]]) -> HeapState:
    state = HeapState()
    got = []
    for ev in indexed(events):
        got.extend(state.apply(ev))
        state._check()
    assert [a.kind for a in got] == [kind for kind, _ in expected]
    for anomaly, (kind, fields) in zip(got, expected):
        for name, value in fields.items():
            assert getattr(anomaly, name) == value, (kind, name, getattr(anomaly, name), value)
    return state


def live(state: HeapState, pid: int = 1, heap: int = H) -> dict[int, int]:
    h = state.heap(pid, heap)
    return {a: b.size for a, b in h.blocks.items()} if h is not None else {}


CREATED = [create(0, 1, H), create(0, 1, H2)]

CASES = {
    "unknown-free": (CREATED + [free(1, 1, H, A)], [X(st.UNKNOWN_FREE, address=A, heap=H)]),
    "interior-free": (
        CREATED + [alloc(1, 1, H, A, 32), free(2, 1, H, A + 0x10)],
        [X(st.INTERIOR_FREE, address=A + 0x10, size=32, other=A)],
    ),
    "double-free": (CREATED + [alloc(1, 1, H, A, 8), free(2, 1, H, A), free(3, 1, H, A)], [X(st.DOUBLE_FREE, address=A)]),
    "overlap": (
        CREATED + [alloc(1, 1, H, A, 32), alloc(2, 1, H, A + 8, 8)],
        [X(st.OVERLAP, address=A + 8, size=8, other=A)],
    ),
    "overlap-several": (
        CREATED + [alloc(1, 1, H, A, 16), alloc(2, 1, H, A + 16, 16), alloc(3, 1, H, A + 8, 16)],
        [X(st.OVERLAP, other=A), X(st.OVERLAP, other=A + 16)],
    ),
    "overlap-same-address": (CREATED + [alloc(1, 1, H, A, 8), alloc(2, 1, H, A, 8)], [X(st.OVERLAP, other=A)]),
    "wrong-heap-free": (
        CREATED + [alloc(1, 1, H, A, 24), free(2, 1, H2, A)],
        [X(st.WRONG_HEAP_FREE, heap=H2, address=A, size=24, other=H)],
    ),
    "realloc-unknown-old": (
        CREATED + [realloc(1, 1, H, B, A, 16, 8)],
        [X(st.REALLOC_UNKNOWN_OLD, address=A, size=8)],
    ),
    "realloc-of-freed": (
        CREATED + [alloc(1, 1, H, A, 8), free(2, 1, H, A), realloc(3, 1, H, B, A, 16)],
        [X(st.DOUBLE_FREE, address=A), X(st.REALLOC_UNKNOWN_OLD, address=A)],
    ),
    "realloc-interior": (
        CREATED + [alloc(1, 1, H, A, 32), realloc(2, 1, H, B, A + 8, 16)],
        [X(st.INTERIOR_FREE, address=A + 8, other=A), X(st.REALLOC_UNKNOWN_OLD, address=A + 8)],
    ),
    "realloc-size-mismatch": (
        CREATED + [alloc(1, 1, H, A, 16), realloc(2, 1, H, A, A, 32, 24)],
        [X(st.REALLOC_SIZE_MISMATCH, address=A, size=24, bytes=16)],
    ),
    "zero-size": (CREATED + [alloc(1, 1, H, A, 0)], [X(st.ZERO_SIZE, address=A, size=0)]),
    "absurd-size": (CREATED + [alloc(1, 1, H, A, 1 << 40)], [X(st.ABSURD_SIZE, size=1 << 40)]),
    "negative-size": (CREATED + [alloc(1, 1, H, A, -8)], [X(st.ABSURD_SIZE, size=-8)]),
    "null-address": (
        CREATED + [alloc(1, 1, H, 0, 8), free(2, 1, H, 0), realloc(3, 1, H, 0, A, 8), realloc(4, 1, H, A, 0, 8)],
        [X(st.NULL_ADDRESS, size=8), X(st.NULL_ADDRESS), X(st.NULL_ADDRESS, other=A), X(st.NULL_ADDRESS, address=A)],
    ),
    "destroy-with-live-blocks": (
        CREATED + [alloc(1, 1, H, A, 8), alloc(2, 1, H, B, 24), destroy(3, 1, H)],
        [X(st.DESTROY_WITH_LIVE_BLOCKS, heap=H, count=2, bytes=32)],
    ),
    "unknown-heap": ([alloc(1, 1, H, A, 8), alloc(2, 1, H, B, 8)], [X(st.UNKNOWN_HEAP, heap=H)]),
    "handle-reuse": (
        CREATED + [alloc(1, 1, H, A, 8), create(2, 1, H)],
        [X(st.HANDLE_REUSE, heap=H, count=1, bytes=8)],
    ),
    "invalid-source": (
        CREATED + [alloc(1, 1, H, A, 8, source=5), free(2, 1, H, A, source=5)],
        [X(st.INVALID_SOURCE, address=A), X(st.INVALID_SOURCE, address=A)],
    ),
    "source-out-of-range": (
        CREATED + [alloc(1, 1, H, A, 8, source=7), free(2, 1, H, A, source=-1), alloc(3, 1, H, B, 8, source=1 << 31)],
        [X(st.INVALID_SOURCE), X(st.INVALID_SOURCE), X(st.INVALID_SOURCE)],
    ),
    "double-free-forgotten-when-heap-ends": (
        CREATED + [alloc(1, 1, H, A, 8), free(2, 1, H, A), destroy(3, 1, H), create(4, 1, H), free(5, 1, H, A)],
        [X(st.UNKNOWN_FREE, address=A)],
    ),
    "clean": (CREATED + [alloc(1, 1, H, A, 8), realloc(2, 1, H, B, A, 16, 8), free(3, 1, H, B), destroy(4, 1, H)], []),
}


@pytest.mark.parametrize("events, expected", list(CASES.values()), ids=list(CASES))
def test_anomaly_cases(events, expected):
    check(events, *expected)


def test_every_state_anomaly_kind_has_a_case():
    covered = {kind for _, expected in CASES.values() for kind, _ in expected}
    assert covered == set(ANOMALY_KINDS) - {st.OUT_OF_ORDER}  # a replay anomaly: test_replay_reorder.py


def test_what_anomalies_leave_behind():
    # an interior or wrong-heap free changes nothing; an overlapping alloc
    # replaces what it overlaps; a zero-size block spans one byte
    state = check(CASES["interior-free"][0], *CASES["interior-free"][1])
    assert live(state) == {A: 32}
    state = check(CASES["wrong-heap-free"][0], *CASES["wrong-heap-free"][1])
    assert live(state) == {A: 24} and live(state, heap=H2) == {}
    state = check(CASES["overlap-several"][0], *CASES["overlap-several"][1])
    assert live(state) == {A + 8: 16}
    state = check(CREATED + [alloc(1, 1, H, A, 0), alloc(2, 1, H, A + 1, 8)], X(st.ZERO_SIZE))
    assert live(state) == {A: 0, A + 1: 8}
    state = check(CASES["absurd-size"][0], *CASES["absurd-size"][1])
    assert live(state) == {}
    state = check(CASES["realloc-unknown-old"][0], *CASES["realloc-unknown-old"][1])
    assert live(state) == {B: 16}
    state = check(CASES["handle-reuse"][0], *CASES["handle-reuse"][1])
    assert live(state) == {} and state.heap(1, H).label == "heap#3/flags=0x0"


def test_sources_are_counted_per_heap():
    state = check(CASES["source-out-of-range"][0], *CASES["source-out-of-range"][1])
    assert state.heap(1, H).sources[5] == 3  # out-of-range sources count as INVALID
    state = check(CREATED + [alloc(1, 1, H, A, 8, source=2), free(2, 1, H, A, source=0)])
    assert state.heap(1, H).sources == [1, 0, 1, 0, 0, 0, 0]


def test_heap_labels():
    state = HeapState()
    events = [
        alloc(1, 1, 0x10, A, 8),  # used before any create: the process heap
        create(2, 1, H, flags=2),
        create(3, 1, H2, flags=0x40001),
        free(4, 1, 0x20, B),  # another heap older than the trace
        create(5, 2, H),  # numbering is per process
    ]
    for ev in events:
        state.apply(ev)
    labels = {(p.pid, h.handle): h.label for p in state.all_processes() for h in p.all_heaps()}
    assert labels == {
        (1, 0x10): "process-heap",
        (1, H): "heap#1/flags=0x2",
        (1, H2): "heap#2/flags=0x40001",
        (1, 0x20): "preexisting#2",
        (2, H): "heap#1/flags=0x0",
    }
    assert [h.created for h in state.process(1).all_heaps()] == [False, True, True, False]


def test_peaks_and_their_times():
    events = [
        create(0, 1, H),
        create(0, 1, H2),
        alloc(10, 1, H, A, 100),
        alloc(20, 1, H, B, 50),  # heap peak 150 at 20
        alloc(25, 1, H2, A + 0x100, 40),  # process peak 190 at 25
        free(30, 1, H, A),
        alloc(40, 1, H, A, 100),  # back to 150: not a new peak
        free(45, 1, H2, A + 0x100),
        alloc(50, 1, H, A + 0x200, 1),  # heap 151 at 50; process 151 < 190
    ]
    state = check(events)
    heap, proc = state.heap(1, H), state.process(1)
    assert (heap.live_bytes, heap.peak_bytes, heap.peak_time) == (151, 151, 50)
    assert (state.heap(1, H2).peak_bytes, state.heap(1, H2).peak_time) == (40, 25)
    assert (proc.live_bytes, proc.peak_bytes, proc.peak_time) == (151, 190, 25)
    assert proc.live_blocks == 3 and heap.live_blocks == 3


def test_blocks_remember_their_history():
    events = [
        create(0, 1, H),
        alloc(10, 1, H, A, 8)._replace(stack=7),
        realloc(20, 1, H, A, A, 16, 8),  # in place
        realloc(30, 1, H, B, A, 32, 16)._replace(stack=9),  # moves, copies 16
        realloc(40, 1, H, A, B, 64, 32),  # moves again, copies 32
    ]
    state = HeapState()
    ended = []
    for ev in indexed(events):
        state.apply(ev)
        ended.append(state.ended.size if state.ended is not None else None)
    assert ended == [None, None, 8, 16, 32]
    block = state.block(1, H, A)
    assert (block.size, block.time, block.index, block.moves, block.copied) == (64, 40, 4, 2, 48)
    assert state.known(1, H, A) and not state.known(1, H, B) and not state.known(2, H, A)


def hook_log():
    calls = []

    def hook(proc, time):
        calls.append((proc.pid, time, {h: sorted(x.blocks) for h, x in proc.heaps.items()}, proc.ended))

    return calls, hook


def test_process_end_hook_sees_live_blocks_then_heaps_end():
    calls, hook = hook_log()
    state = HeapState(on_process_end=hook)
    for ev in [start(0, 1, "a.exe"), create(1, 1, H), alloc(2, 1, H, A, 8), alloc(3, 1, 0x10, B, 8), end(9, 1)]:
        state.apply(ev)
    assert calls == [(1, 9, {H: [A], 0x10: [B]}, False)]
    (proc,) = state.finished
    assert proc.ended and proc.end_seen and proc.start_seen and proc.image == "a.exe"
    assert proc.live_bytes == 0 and proc.heaps == {} and len(proc.retired) == 2
    assert state.process(1) is None


def test_pid_reuse_ends_the_earlier_process():
    calls, hook = hook_log()
    state = HeapState(on_process_end=hook)
    for ev in [alloc(1, 7, H, A, 8), start(5, 7, "new.exe"), alloc(6, 7, H, A, 8)]:
        assert [a.kind for a in state.apply(ev)] in (["unknown-heap"], [])
    assert calls == [(7, 5, {H: [A]}, False)]
    assert [p.image for p in state.all_processes()] == [None, "new.exe"]
    assert state.process(7).live_bytes == 8 and state.process(7).start_seen


def test_hook_runs_at_trace_end_for_live_processes():
    calls, hook = hook_log()
    rp = Replay(ReplayOptions(), on_process_end=hook)
    rp.run(indexed([alloc(10, 1, H, A, 8), alloc(20, 2, H, B, 8), end(30, 2), alloc(40, 1, H, B, 8)]))
    assert calls == [(2, 30, {H: [B]}, False), (1, 40, {H: [A, B]}, False)]
    # a trace end is not a process end: the heaps stay in place
    assert live(rp.state) == {A: 8, B: 8}


def test_anomalies_are_counted_per_heap_and_process():
    events, expected = CASES["null-address"]
    state = check(events, *expected)
    assert state.process(1).anomalies == {st.NULL_ADDRESS: 4}
    assert state.heap(1, H).anomalies == {st.NULL_ADDRESS: 4}
    assert state.heap(1, H).counts[Kind.ALLOC] == 1 and state.heap(1, H).counts[Kind.REALLOC] == 2


def test_coverage_spans_records_applied_out_of_order():
    calls, hook = hook_log()
    rp = Replay(ReplayOptions(reorder_window_ns=10 * 1_000, pair_window_ns=1_000), on_process_end=hook)
    events = indexed([alloc(100_000, 1, H, A, 8), alloc(500_000, 1, H, B, 8), alloc(200_000, 1, H, A + 64, 8),
                      alloc(50_000, 1, H, A + 128, 8)])  # fmt: skip
    rp.run(events)
    assert rp.counters.out_of_order == 1  # 50 us comes after 100 us was released
    proc = rp.state.process(1)
    assert (proc.first_time, proc.last_time) == (50_000, 500_000)
    assert rp.last_time == 500_000
    assert calls[0][1] == 500_000  # the trace-end hook gets the latest time
