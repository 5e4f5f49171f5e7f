"""The generator streams: memory follows the live set, not the event count."""

from __future__ import annotations

import tracemalloc
import types

from synth_support import make


def _peak(preset: str, events: int) -> tuple[int, int]:
    trace = make(preset, events=events, seed=3)
    tracemalloc.start()
    try:
        n = sum(1 for _ in trace.events())
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_events_is_a_lazy_iterator() -> None:
    stream = make("steady", events=1000).events()
    assert isinstance(stream, types.GeneratorType)
    first = next(stream)
    assert first.index == 0


def test_200k_events_in_bounded_memory() -> None:
    n_small, peak_small = _peak("steady", 20_000)
    n_big, peak_big = _peak("steady", 200_000)
    assert n_big > 180_000
    # 200k HeapEvents held in a list would take ~40 MB; the live set of the
    # steady preset is fixed, so ten times the events may not cost more memory
    assert peak_big < 3_000_000, peak_big
    assert peak_big < 2 * peak_small + 500_000, (peak_small, peak_big)
