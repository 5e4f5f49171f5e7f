"""Both realloc shapes are generated, and the replay pairs the inner records
of exactly the moves the truth says were logged with them."""

from __future__ import annotations

import pytest
from heaplint.engine.replay import ReplayOptions
from synth_support import INTEGRITY, make, replay


def _moves(truth: dict) -> tuple[int, int, int]:
    r = [p["realloc"] for p in truth["processes"]]
    return (sum(x["moves_standalone"] for x in r), sum(x["moves_paired"] for x in r), sum(x["in_place"] for x in r))


def test_mixed_shape_has_both_and_pairs_each_inner_record() -> None:
    r = replay(make("mixed", events=8000, realloc_shape="mixed"))
    standalone, paired, in_place = _moves(r.trace.truth)
    assert standalone > 20 and paired > 20 and in_place > 20
    # every paired move logs one inner Alloc and one inner Free: both dropped
    assert r.replay.counters.paired_inner == 2 * paired
    orders = {}
    for p in r.trace.truth["processes"]:
        for k, v in p["realloc"]["paired_orders"].items():
            orders[k] = orders.get(k, 0) + v
    assert set(orders) == {"before", "after", "around"}
    assert not [a for a in r.anomalies if a.kind in INTEGRITY]


def test_shapes_in_the_event_stream() -> None:
    events = list(make("lfh-churn", events=6000, realloc_shape="paired").events())
    reallocs = [e for e in events if e.kind == 3]
    moving = [e for e in reallocs if e.address != e.old_address]
    in_place = [e for e in reallocs if e.address == e.old_address]
    assert moving and in_place
    by_thread: dict = {}
    for e in events:
        by_thread.setdefault((e.pid, e.tid), []).append(e)
    for r in moving:
        seq = by_thread[(r.pid, r.tid)]
        i = seq.index(r)
        near = [e for e in seq[max(0, i - 2) : i + 3] if abs(e.time - r.time) < 10_000 and e is not r]
        assert any(e.kind == 2 and e.address == r.address for e in near), r
        assert any(e.kind == 4 and e.address == r.old_address for e in near), r
        assert r.old_size is not None


@pytest.mark.parametrize("shape,mode", [("standalone", "standalone"), ("paired", "paired"), ("standalone", "auto")])
def test_single_shape_traces_replay_cleanly_in_their_mode(shape: str, mode: str) -> None:
    r = replay(make("healthy-cache", events=5000, realloc_shape=shape), ReplayOptions(realloc_mode=mode))
    assert not [a for a in r.anomalies if a.kind in INTEGRITY], r.kinds()
    standalone, paired, _ = _moves(r.trace.truth)
    assert (standalone > 0) == (shape == "standalone") and (paired > 0) == (shape == "paired")
    if mode == "auto":
        assert r.replay.counters.paired_inner == 0


def test_slowpath_bursts() -> None:
    events = list(make("mixed", events=8000).events())
    slow = [e for e in events if e.kind == 3 and e.source == 4]
    assert len(slow) >= 10
    assert all(e.size >= 256 * 1024 for e in slow)
