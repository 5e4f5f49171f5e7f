"""Memory follows the live set, not the trace length (issue 2, section 5).

A steady workload (constant live set; allocs, frees, in-place and moving
reallocs in both shapes, a short-lived heap created and destroyed over and
over) is generated lazily and replayed for N and for 10 x N events; the
tracemalloc peak of the longer run must stay within a few percent of the
shorter one's.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections import deque
from typing import Iterator

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.replay import Replay, ReplayOptions

ALLOC, FREE, REALLOC = int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)
CREATE, DESTROY = int(Kind.HEAP_CREATE), int(Kind.DESTROY)
MAIN, TEMP = 0x10000, 0x20000
LIVE = 500  # blocks alive at any time once warmed up
STEP = 500_000  # ns between records: even N records fill the series (512 buckets)


def steady(n: int, seed: int = 1) -> Iterator[HeapEvent]:
    """``n`` records of a program whose live set stays at LIVE blocks."""
    rng = random.Random(seed)
    free_slots = deque(0x7F0000000000 + 64 * k for k in range(LIVE + LIVE // 4))  # LFH-like reuse
    live: deque[tuple[int, int]] = deque()  # (address, size), oldest first
    t = 0
    emitted = 0

    def ev(kind: int, heap: int = MAIN, address: int = 0, size: int = 0, old: int = 0, old_size=None, tid: int = 1,
           dt: int = STEP):  # fmt: skip
        nonlocal t, emitted
        t += dt
        emitted += 1
        return HeapEvent(kind, t, 4, tid, heap, address, size, old, old_size, 2, None, 0, None, emitted)

    yield ev(CREATE, MAIN)
    while emitted < n:
        if len(live) < LIVE:
            address, size = free_slots.popleft(), rng.randrange(1, 64)
            live.append((address, size))
            yield ev(ALLOC, address=address, size=size, tid=rng.randrange(1, 5))
            continue
        op = rng.randrange(10)
        if op < 5:  # free the oldest, allocate anew
            address, _ = live.popleft()
            free_slots.append(address)
            yield ev(FREE, address=address)
        elif op == 5:  # grow in place
            address, size = live.popleft()
            live.append((address, size + 1 if size < 63 else 1))
            yield ev(REALLOC, address=address, size=live[-1][1], old=address, old_size=size)
        elif op in (6, 7):  # move: alone, or with its inner records (paired shape)
            old, size = live.popleft()
            new = free_slots.popleft()
            free_slots.append(old)
            live.append((new, size))
            tid = rng.randrange(1, 5)
            if op == 7:
                yield ev(ALLOC, address=new, size=size, tid=tid)
                yield ev(FREE, address=old, tid=tid, dt=1_000)
            yield ev(REALLOC, address=new, size=size, old=old, old_size=size, tid=tid, dt=1_000)
        else:  # a short-lived heap (create, use, destroy), as per request or per task
            yield ev(CREATE, TEMP)
            yield ev(ALLOC, TEMP, 0x500000, 32)
            yield ev(FREE, TEMP, 0x500000)
            yield ev(DESTROY, TEMP)


def replay_peak(n: int) -> tuple[int, Replay]:
    """The tracemalloc peak while replaying ``n`` steady records."""
    gc.collect()
    tracemalloc.start()
    try:
        rp = Replay(ReplayOptions())
        rp.run(steady(n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, rp


def test_memory_stays_within_the_live_set():
    n = 5_000
    small, short = replay_peak(n)
    large, long = replay_peak(10 * n)
    # the workload really is steady and really was replayed
    for rp, records in ((short, n), (long, 10 * n)):
        proc = rp.state.process(4)
        assert LIVE - 1 <= proc.live_blocks <= LIVE  # the last step may stop between free and alloc
        assert rp.counters.events_in >= records
        assert rp.counters.paired_inner > 0 and proc.retired_dropped > 0
        assert sum(proc.anomalies.values()) == 0, proc.anomalies
    assert large <= small * 1.15, (small, large)
