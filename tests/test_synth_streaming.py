"""The generator streams: memory follows the live set, not the event count."""

from __future__ import annotations

import gc
import sys
import tracemalloc
import types

from synth_support import make


def test_events_is_a_lazy_iterator() -> None:
    stream = make("steady", events=1000).events()
    assert isinstance(stream, types.GeneratorType)
    first = next(stream)
    assert first.index == 0


def test_200k_events_without_holding_them() -> None:
    trace = make("steady", events=200_000, seed=3)
    gc.collect()
    base = sys.getallocatedblocks()
    most = n = 0
    for n, _ in enumerate(trace.events(), 1):
        if n % 5000 == 0:
            most = max(most, sys.getallocatedblocks() - base)
    assert n > 180_000
    # holding the events would take at least one object per event; the
    # steady preset's live set is under a thousand blocks
    assert most < 30_000, most


def test_tracemalloc_peak_is_small() -> None:
    trace = make("steady", events=30_000, seed=3)
    tracemalloc.start()
    try:
        n = sum(1 for _ in trace.events())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n > 25_000
    assert peak < 1_500_000, peak  # 30k HeapEvents in a list alone would be ~6 MB
