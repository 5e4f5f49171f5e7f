"""Helpers shared by the test_synth_* files: replay a synthetic trace and
collect what the replay saw."""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass, field

import pytest
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.state import (
    ABSURD_SIZE,
    DESTROY_WITH_LIVE_BLOCKS,
    DOUBLE_FREE,
    HANDLE_REUSE,
    INTERIOR_FREE,
    INVALID_SOURCE,
    NULL_ADDRESS,
    OUT_OF_ORDER,
    OVERLAP,
    REALLOC_SIZE_MISMATCH,
    REALLOC_UNKNOWN_OLD,
    UNKNOWN_FREE,
    UNKNOWN_HEAP,
    WRONG_HEAP_FREE,
    ZERO_SIZE,
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
#: everything a healthy trace with full coverage must not show
NEVER_HEALTHY = INTEGRITY | {
    DESTROY_WITH_LIVE_BLOCKS,
    INVALID_SOURCE,
    ZERO_SIZE,
    ABSURD_SIZE,
    NULL_ADDRESS,
    HANDLE_REUSE,
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
    #: (event, block) for every free or moving realloc: the block it ended
    ended: list = field(default_factory=list)

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
    state = r.state

    def on_event(ev, anomalies) -> None:
        if anomalies:
            out.anomalies.extend(anomalies)
        if state.ended is not None:
            out.ended.append((ev, state.ended))

    r.run(trace.events(), on_event)
    state._check()
    out.anomalies.extend(r.out_of_order)
    return out


def make(preset: str, events: int = 6000, seed: int = 7, **kw) -> SynthTrace:
    return synthesize(build_spec(preset, seed=seed, events=events, **kw))


def has_module(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_writer = pytest.mark.skipif(
    not has_module("heaplint.engine.writers"), reason="the canonical writer (heaplint.engine.writers) is not merged yet"
)
