"""Helpers shared by the test_synth_* files: replay a synthetic trace and
collect what the replay saw."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.state import (
    DOUBLE_FREE,
    INTERIOR_FREE,
    OUT_OF_ORDER,
    OVERLAP,
    REALLOC_SIZE_MISMATCH,
    REALLOC_UNKNOWN_OLD,
    UNKNOWN_FREE,
    UNKNOWN_HEAP,
    WRONG_HEAP_FREE,
    Anomaly,
    ProcessState,
)
from heaplint.engine.synth import SynthTrace, synthesize
from heaplint.engine.synth_presets import build_spec

#: anomalies a complete trace of a correct program never shows
INTEGRITY = {
    UNKNOWN_FREE,
    INTERIOR_FREE,
    DOUBLE_FREE,
    OVERLAP,
    WRONG_HEAP_FREE,
    REALLOC_UNKNOWN_OLD,
    REALLOC_SIZE_MISMATCH,
    UNKNOWN_HEAP,
    OUT_OF_ORDER,
}


@dataclass
class Replayed:
    trace: SynthTrace
    replay: Replay
    anomalies: list[Anomaly] = field(default_factory=list)
    #: (pid, heap handle) -> {address: size} live when the process ended
    live_at_end: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)
    #: (pid, heap handle) -> series buckets at process end
    series: dict[tuple[int, int], list] = field(default_factory=dict)

    def kinds(self) -> Counter:
        return Counter(a.kind for a in self.anomalies)


def replay(trace: SynthTrace, options: ReplayOptions | None = None) -> Replayed:
    """Replay ``trace`` and keep every anomaly plus the state at process ends."""
    out: Replayed

    def on_end(proc: ProcessState, time: int) -> None:
        for heap in proc.all_heaps():
            out.live_at_end[(proc.pid, heap.handle)] = {a: b.size for a, b in heap.blocks.items()}
            out.series[(proc.pid, heap.handle)] = heap.series.snapshot()

    r = Replay(options or ReplayOptions(), on_process_end=on_end)
    out = Replayed(trace, r)
    r.run(trace.events(), lambda ev, an: out.anomalies.extend(an))
    r.state._check()
    out.anomalies.extend(r.out_of_order)
    return out


def make(preset: str, events: int = 6000, seed: int = 7, **kw) -> SynthTrace:
    return synthesize(build_spec(preset, seed=seed, events=events, **kw))
