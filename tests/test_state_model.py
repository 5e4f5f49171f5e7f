"""Property tests: HeapState against the plain-dict reference model.

Random event sequences in a tiny address space (so overlaps, interior
pointers, reuse of addresses, handles and pids all happen), applied one by one
to both; after every event the live blocks, live bytes, peaks, the ended block,
the anomaly kinds and HeapState's own invariants (``_check``) must agree.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from state_reference import Model, indexed, state_blocks
from state_traces import build, chaotic_ops, op_event, paired_shape, shape_draws, shape_stream

from heaplint.engine.state import HeapState

SETTINGS = settings(max_examples=100, deadline=None)


def blocks_of(proc) -> dict[int, dict[int, int]]:
    return {h: {a: b.size for a, b in heap.blocks.items()} for h, heap in proc.heaps.items()}


def series_values(series) -> set[int]:
    return {v for b in series.snapshot() for v in (b.low, b.high, b.last)}


def compare_step(state: HeapState, model: Model) -> None:
    assert state_blocks(state) == model.live_blocks()
    assert set(state.processes) == set(model.procs)
    for pid, mproc in model.procs.items():
        proc = state.processes[pid]
        assert set(proc.heaps) == set(mproc.heaps), pid
        assert proc.live_bytes == mproc.live()
        assert proc.live_blocks == sum(len(h.blocks) for h in mproc.heaps.values())
        assert (proc.peak_bytes, proc.peak_time) == (mproc.peak, mproc.peak_time)
        assert proc.start_seen == mproc.start_seen
        # a series shows only values live bytes had between events
        assert series_values(proc.series) <= mproc.values | {0}
        for handle, mheap in mproc.heaps.items():
            heap = proc.heaps[handle]
            assert heap.created == mheap.created
            assert heap.live_bytes == mheap.live()
            assert heap.live_blocks == len(mheap.blocks)
            assert (heap.peak_bytes, heap.peak_time) == (mheap.peak, mheap.peak_time), hex(handle)
            assert series_values(heap.series) <= mheap.values | {0}, hex(handle)


def run_against_model(events, realloc_moves: bool = True) -> tuple[HeapState, Model]:
    hook_calls: list = []
    state = HeapState(realloc_moves=realloc_moves, on_process_end=lambda p, t: hook_calls.append((p.pid, t, blocks_of(p))))
    model = Model(realloc_moves=realloc_moves)
    for ev in events:
        got = state.apply(ev)
        want = model.apply(ev)
        assert [a.kind for a in got] == want, ev
        for a in got:
            assert a.event is ev and a.pid == ev.pid
        state._check()
        assert (state.ended.size if state.ended is not None else None) == model.ended_size, ev
        compare_step(state, model)
    assert hook_calls == model.process_ends
    return state, model


def timed(ops, gap: int = 1_000):
    return build(ops, gap)


@SETTINGS
@given(chaotic_ops)
def test_state_matches_model_standalone(ops):
    run_against_model(timed(ops))


@settings(max_examples=50, deadline=None)
@given(chaotic_ops)
def test_state_matches_model_paired_mode(ops):
    # paired reading: moving ReAllocs are counted only
    run_against_model(timed(ops), realloc_moves=False)


@settings(max_examples=40, deadline=None)
@given(chaotic_ops, shape_draws)
def test_state_matches_model_on_paired_shape_read_literally(ops, draws):
    # the inner Alloc/Free applied as they stand (what happens without pairing)
    events = indexed(paired_shape(timed(ops, 10_000), shape_stream(draws)))
    run_against_model(events)


@settings(max_examples=30, deadline=None)
@given(chaotic_ops)
def test_anomaly_counters_match_returned_anomalies(ops):
    state = HeapState()
    seen: dict[tuple[int, str], int] = {}
    for ev in timed(ops):
        for a in state.apply(ev):
            seen[(a.pid, a.kind)] = seen.get((a.pid, a.kind), 0) + 1
    counted: dict[tuple[int, str], int] = {}
    for proc in state.all_processes():
        for kind, n in proc.anomalies.items():
            counted[(proc.pid, kind)] = counted.get((proc.pid, kind), 0) + n
        per_heap: dict[str, int] = {}
        for heap in proc.all_heaps():
            for kind, n in heap.anomalies.items():
                per_heap[kind] = per_heap.get(kind, 0) + n
        if not proc.retired_dropped:
            assert per_heap == proc.anomalies
    assert counted == seen


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from((1, 8, 16)), min_size=1, max_size=30))
def test_freed_table_stays_bounded(sizes):
    # a small table: double frees are still found for recent frees
    state = HeapState(freed_memory=4)
    for i, size in enumerate(sizes):
        a = 0x10000 + 0x100 * i
        state.apply(op_event(("alloc", 1, 1, 0xA0, a, size, 3), 2 * i))
        state.apply(op_event(("free", 1, 1, 0xA0, a, 3), 2 * i + 1))
        state._check()
    assert len(state.processes[1].freed) == min(4, len(sizes))
    last = 0x10000 + 0x100 * (len(sizes) - 1)
    kinds = [a.kind for a in state.apply(op_event(("free", 1, 1, 0xA0, last, 3), 10**6))]
    assert kinds == ["double-free"]
