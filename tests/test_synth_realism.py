"""Addresses, sizes, stacks and timing look like a real heap trace; the heap
model never hands out overlapping blocks."""

from __future__ import annotations

import re
from random import Random

from heaplint.engine.events import Kind, Source
from heaplint.engine.synth_heap import HEADER, HEAP_SPAN, LARGE_MIN, HeapAllocator, size_class
from hypothesis import given, settings
from hypothesis import strategies as st
from synth_support import make

FRAME = re.compile(r"^[\w.]+\.(exe|dll)!.+\+0x[0-9a-f]+$")


def test_addresses_are_heap_based_aligned_and_reused() -> None:
    events = list(make("mixed", events=8000).events())
    heaps = {(e.pid, e.heap) for e in events if e.kind == Kind.HEAP_CREATE}
    allocs = [e for e in events if e.kind == Kind.ALLOC]
    for e in allocs:
        assert e.address % 16 == 0 and e.address > 1 << 40
        assert e.heap <= e.address < e.heap + HEAP_SPAN
        assert (e.pid, e.heap) in heaps
        assert e.heap % 0x10000 == 0
    addresses = [e.address for e in allocs]
    assert len(set(addresses)) < 0.7 * len(addresses)  # free lists reuse slots


def test_sizes_follow_a_realistic_distribution() -> None:
    sizes = [e.size for e in make("mixed", events=20_000).events() if e.kind == Kind.ALLOC]
    small = sum(1 for s in sizes if s <= 1024)
    assert small > 0.6 * len(sizes)
    assert any(s > 64 * 1024 for s in sizes) and min(sizes) > 0
    lfh = [e for e in make("lfh-churn", events=4000).events() if e.kind == Kind.ALLOC]
    assert sum(1 for e in lfh if e.source == Source.LFH) > 0.8 * len(lfh)


def test_stacks_are_symbolized_frames_referenced_by_allocations() -> None:
    trace = make("mixed", events=6000)
    events = list(trace.events())
    used = {e.stack for e in events if e.kind in (Kind.ALLOC, Kind.REALLOC)}
    assert None not in used and used <= set(trace.stacks)
    assert all(e.stack is None for e in events if e.kind == Kind.FREE)
    images = {p["image"] for p in trace.truth["processes"]}
    assert images == {"render.exe", "netsvc.exe", "indexer.exe"}
    for frames in trace.stacks.values():
        assert all(FRAME.match(f) for f in frames), frames
        assert frames[0].startswith("ntdll.dll!Rtlp")  # innermost first
        assert frames[-1].startswith("ntdll.dll!RtlUserThreadStart")
    assert any(f.startswith("render.exe!TextureCache::Load+0x") for s in trace.stacks.values() for f in s)


def test_timestamps_are_ns_with_microsecond_scale_gaps() -> None:
    events = list(make("busy-2proc", events=20_000, duration_ns=2_000_000_000).events())
    times = [e.time for e in events]
    assert times == sorted(times)
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    median = gaps[len(gaps) // 2]
    assert 1_000 <= median <= 500_000  # 10k events/s: tens of microseconds apart
    per_pid: dict = {}
    for e in events:
        per_pid.setdefault(e.pid, []).append(e.time)
    assert all(len(set(ts)) == len(ts) for ts in per_pid.values())  # strictly increasing


def test_process_records_and_heap_lifecycle() -> None:
    events = list(make("mixed", events=8000).events())
    starts = [e for e in events if e.kind == Kind.PROCESS_START]
    assert {e.image for e in starts} == {"render.exe", "netsvc.exe", "indexer.exe"}
    creates = [e for e in events if e.kind == Kind.HEAP_CREATE]
    destroys = [e for e in events if e.kind == Kind.DESTROY]
    assert len(creates) > len(starts) and destroys  # private and scratch heaps come and go
    handles = [(e.pid, e.heap) for e in creates]
    assert len(set(handles)) < len(handles)  # a destroyed heap's handle is reused


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.tuples(st.integers(0, 3), st.integers(1, 700_000)), max_size=300))
def test_allocator_never_hands_out_overlapping_live_slots(seed: int, ops: list[tuple[int, int]]) -> None:
    rng = Random(seed)
    alloc = HeapAllocator(0x2000_0000_0000, rng)
    live: dict[int, int] = {}  # address -> slot capacity
    now = 0
    for op, size in ops:
        now += 1000
        if op == 0 or not live:
            a = alloc.alloc(size, now)
        elif op == 1:
            a = alloc.alloc(size, now, aged=now - 5000)
        else:
            victim = sorted(live)[size % len(live)]
            cap = live.pop(victim)
            # release under the block's own size (shrinks keep their slot)
            if op == 2:
                alloc.release(victim, cap, now)
            else:
                alloc.quarantine(victim, cap, now + 3000)
            continue
        assert a % 16 == 0 and a not in live
        cap = size_class(size)
        for b, c in live.items():
            assert a + cap <= b - HEADER or b + c <= a - HEADER, (hex(a), cap, hex(b), c)
        assert alloc.base <= a < alloc.base + HEAP_SPAN
        live[a] = cap


def test_allocator_reuses_the_most_recent_free_slot() -> None:
    alloc = HeapAllocator(0x2000_0000_0000, Random(1))
    a, b = alloc.alloc(40, 0), alloc.alloc(40, 1)
    alloc.release(a, 40, 2)
    alloc.release(b, 40, 3)
    assert alloc.alloc(48, 4) == b  # same bucket, LIFO
    assert alloc.alloc(48, 5, aged=4) == a
    big = alloc.alloc(LARGE_MIN + 1, 6)
    assert big >= alloc.base + 0x1_0000_0000
    assert alloc.unused_address() >= alloc.base + 0x1_C000_0000
