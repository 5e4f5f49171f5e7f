"""Healthy presets are genuinely healthy: a full-coverage trace replays with
no integrity anomaly, processes end with nothing live, growth plateaus."""

from __future__ import annotations

import pytest
from heaplint.engine.state import REALLOC_UNKNOWN_OLD, UNKNOWN_FREE, UNKNOWN_HEAP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synth_support import INTEGRITY, NEVER_HEALTHY, make, replay

FULL_COVERAGE = ["healthy-cache", "healthy-sawtooth", "healthy-warmup", "lfh-churn", "mixed", "steady", "busy-2proc"]


@pytest.mark.parametrize("preset", FULL_COVERAGE)
def test_full_coverage_preset_has_no_integrity_anomaly(preset: str) -> None:
    r = replay(make(preset, events=6000))
    bad = [a for a in r.anomalies if a.kind in NEVER_HEALTHY]
    assert not bad, [(a.kind, hex(a.address)) for a in bad[:5]]
    assert r.trace.truth["healthy"] and not r.trace.truth["defects"]
    assert r.trace.info.events_lost == 0
    assert r.replay.counters.out_of_order == 0
    # an orderly shutdown frees everything: nothing is live when a process ends
    assert r.live_at_end and not any(r.live_at_end.values())


def test_six_templated_processes_with_every_workload_are_healthy() -> None:
    # the defect presets run on the templated processes (every workload
    # kind, private and scratch heaps, handle reuse): only the injected
    # defect may show
    r = replay(make("double-free", events=8000, processes=6))
    assert [a.kind for a in r.anomalies if a.kind in INTEGRITY] == ["double-free", "double-free"]
    assert len(r.trace.truth["processes"]) == 6


def test_attach_only_shows_what_attaching_explains() -> None:
    r = replay(make("attach", events=8000))
    kinds = r.kinds()
    assert kinds[UNKNOWN_FREE] > 0 and kinds[UNKNOWN_HEAP] > 0
    # nothing a partial start can explain away as normal is beyond these
    assert set(kinds) <= {UNKNOWN_FREE, UNKNOWN_HEAP, REALLOC_UNKNOWN_OLD}
    assert r.trace.truth["coverage"]["expect_unknown_frees"]


def _window_minima(buckets: list, windows: int = 10) -> list[int]:
    t0, t1 = buckets[0].start, buckets[-1].start
    mins: list[int | None] = [None] * windows
    for b in buckets:
        i = min(windows - 1, (b.start - t0) * windows // max(1, t1 - t0 + 1))
        mins[i] = b.low if mins[i] is None else min(mins[i], b.low)
    return [m for m in mins if m is not None]


def test_cache_plateaus() -> None:
    r = replay(make("healthy-cache", events=20_000, processes=1))
    (key,) = [k for k, s in r.series.items() if s]
    mins = _window_minima(r.series[key])[:-1]  # the last window holds the shutdown
    plateau = mins[3:]
    assert max(plateau) - min(plateau) < 0.05 * max(plateau), mins
    assert mins[0] < 0.5 * max(plateau)  # it did fill first


def test_leak_heap_grows_steadily() -> None:
    r = replay(make("leak", events=20_000))
    (leak,) = r.trace.truth["defects"]
    key = (leak["pid"], int(leak["heap"], 16))
    mins = _window_minima(r.series[key])[:-1]
    thirds = len(mins) // 3
    assert min(mins[-thirds:]) > max(mins[1 : 1 + thirds]), mins
    assert mins[-1] > 1.5 * mins[1], mins


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    preset=st.sampled_from(FULL_COVERAGE),
    processes=st.integers(1, 4),
    shape=st.sampled_from(["standalone", "paired", "mixed"]),
    disorder=st.sampled_from([0, 500_000, 3_000_000]),
)
def test_any_seed_of_a_healthy_preset_is_healthy(
    seed: int, preset: str, processes: int, shape: str, disorder: int
) -> None:
    r = replay(make(preset, events=1500, seed=seed, processes=processes, realloc_shape=shape, disorder_ns=disorder))
    assert not [a for a in r.anomalies if a.kind in NEVER_HEALTHY], r.kinds()


def test_healthy_reallocs_look_nothing_like_chains_or_storms() -> None:
    r = replay(make("mixed", events=20_000))
    assert max(block.moves for _, block in r.ended) <= 8
    slow = sorted(e.time for e in r.trace.events() if e.kind == 3 and e.source == 4)
    assert slow
    # the busiest second of healthy slow-path bursts
    busiest = max(sum(1 for t in slow if s <= t < s + 1_000_000_000) for s in slow)
    assert busiest <= 30, busiest
