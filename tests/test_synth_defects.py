"""Every injected defect shows up in the replay where the truth says, and
nothing else does."""

from __future__ import annotations

import pytest
from heaplint.engine.state import (
    DESTROY_WITH_LIVE_BLOCKS,
    DOUBLE_FREE,
    INVALID_SOURCE,
    OVERLAP,
    REALLOC_UNKNOWN_OLD,
    UNKNOWN_FREE,
    WRONG_HEAP_FREE,
)
from heaplint.engine.synth import synthesize
from heaplint.engine.synth_defects import DEFECTS
from heaplint.engine.synth_patterns import CHAIN_MOVES, STORM_RESIZES
from heaplint.engine.synth_presets import CORPUS_BASES, corpus_specs
from synth_support import INTEGRITY, NEVER_HEALTHY, make, replay

POINT_DEFECTS = {
    "double-free": (DOUBLE_FREE, "HL006"),
    "unknown-free": (UNKNOWN_FREE, "HL007"),
    "realloc-unknown": (REALLOC_UNKNOWN_OLD, "HL001"),
    "overlap": (OVERLAP, "HL009"),
}


@pytest.mark.parametrize("defect", sorted(POINT_DEFECTS))
def test_point_defect_is_replayed_at_the_truth_addresses(defect: str) -> None:
    anomaly_kind, rule = POINT_DEFECTS[defect]
    r = replay(make(defect, events=6000, seed=21, defect_count=3))
    (truth,) = r.trace.truth["defects"]
    assert truth["kind"] == defect and truth["rule"] == rule and truth["count"] == 3
    assert r.trace.truth["expected_rules"] == [rule]
    heap = int(truth["heap"], 16)
    found = [(a.pid, a.heap, a.address) for a in r.anomalies if a.kind == anomaly_kind]
    expected = [(truth["pid"], heap, int(x, 16)) for x in truth["addresses"]]
    assert sorted(found) == sorted(expected)
    # the injected defect is the only sign of trouble in the trace
    assert {a.kind for a in r.anomalies if a.kind in NEVER_HEALTHY} == {anomaly_kind}
    # the truth's times bracket the anomalies' events
    times = [a.event.time for a in r.anomalies if a.kind == anomaly_kind]
    assert truth["first_time_ns"] == min(times) and truth["last_time_ns"] == max(times)
    image = {p["pid"]: p["image"] for p in r.trace.truth["processes"]}[truth["pid"]]
    assert truth["image"] == image


def test_overlap_names_the_overlapped_block() -> None:
    r = replay(make("overlap", events=4000, seed=2))
    (truth,) = r.trace.truth["defects"]
    pairs = {(a.address, a.other) for a in r.anomalies if a.kind == OVERLAP}
    assert pairs == {(int(o["address"], 16), int(o["overlapped"], 16)) for o in truth["occurrences"]}


def test_leak_blocks_are_exactly_what_is_live_at_process_end() -> None:
    r = replay(make("leak", events=8000, seed=4))
    (truth,) = r.trace.truth["defects"]
    assert truth["rules"] == ["HL003", "HL004"] and truth["count"] > 20
    assert not truth["addresses_truncated"]
    live = r.live_at_end[(truth["pid"], int(truth["heap"], 16))]
    assert set(live) == {int(a, 16) for a in truth["addresses"]}
    assert sum(live.values()) == truth["bytes"]
    # all from the one leaking stack, whose frames the truth spells out
    last_alloc = {}
    for ev in r.trace.events():  # addresses are reused: the last allocation counts
        if ev.kind == 2 and ev.address in live and ev.pid == truth["pid"]:
            last_alloc[ev.address] = ev
    blocks = list(last_alloc.values())
    assert {ev.stack for ev in blocks} == {truth["stack"]}
    assert tuple(truth["frames"]) == r.trace.stacks[truth["stack"]]
    assert any("Handler::OnMessage" in f for f in truth["frames"])
    # leaked steadily: some in every quarter of the trace
    span = r.trace.spec.duration_ns
    quarters = {min(3, ev.time * 4 // span) for ev in blocks}
    assert quarters == {0, 1, 2, 3}
    # and nothing else is wrong with the trace
    assert not [a for a in r.anomalies if a.kind in INTEGRITY]


def test_all_defects_at_once_each_visible() -> None:
    r = replay(make("mixed", events=8000, inject=("leak", "double-free", "unknown-free", "realloc-unknown", "overlap")))
    truth = r.trace.truth
    assert truth["expected_rules"] == ["HL001", "HL003", "HL004", "HL006", "HL007", "HL009"]
    kinds = r.kinds()
    for defect, (anomaly_kind, _) in POINT_DEFECTS.items():
        assert kinds[anomaly_kind] == 2, (defect, kinds)


def test_defects_survive_attach_mode() -> None:
    r = replay(make("attach", events=8000, inject=("double-free", "overlap")))
    found = {(a.kind, a.address) for a in r.anomalies}
    for d in r.trace.truth["defects"]:
        for address in d["addresses"]:
            assert (POINT_DEFECTS[d["kind"]][0], int(address, 16)) in found


def test_wrong_heap_free_names_both_heaps() -> None:
    r = replay(make("healthy-cache", events=5000, inject=("wrong-heap-free",)))
    (truth,) = r.trace.truth["defects"]
    assert truth["rule"] == "HL008"
    found = sorted((a.heap, a.address, a.other) for a in r.anomalies if a.kind == WRONG_HEAP_FREE)
    expected = sorted(
        (int(o["heap"], 16), int(o["address"], 16), int(o["owner_heap"], 16)) for o in truth["occurrences"]
    )
    assert found == expected and len(found) == 2
    assert {a.kind for a in r.anomalies if a.kind in NEVER_HEALTHY} == {WRONG_HEAP_FREE}


def test_invalid_source() -> None:
    r = replay(make("lfh-churn", events=5000, inject=("invalid-source",)))
    (truth,) = r.trace.truth["defects"]
    found = sorted(a.address for a in r.anomalies if a.kind == INVALID_SOURCE)
    assert found == sorted(int(x, 16) for x in truth["addresses"])
    assert {a.kind for a in r.anomalies if a.kind in NEVER_HEALTHY} == {INVALID_SOURCE}


def test_destroy_live() -> None:
    r = replay(make("healthy-warmup", events=5000, inject=("destroy-live",)))
    (truth,) = r.trace.truth["defects"]
    found = sorted((a.heap, a.count, a.bytes) for a in r.anomalies if a.kind == DESTROY_WITH_LIVE_BLOCKS)
    expected = sorted((int(o["heap"], 16), o["blocks"], o["size"]) for o in truth["occurrences"])
    assert found == expected and len(found) == 2
    assert {a.kind for a in r.anomalies if a.kind in NEVER_HEALTHY} == {DESTROY_WITH_LIVE_BLOCKS}


def test_realloc_chain_block_history() -> None:
    r = replay(make("healthy-cache", events=6000, inject=("realloc-chain",)))
    (truth,) = r.trace.truth["defects"]
    assert truth["rule"] == "HL010"
    pid, heap = truth["pid"], int(truth["heap"], 16)
    for occ in truth["occurrences"]:
        (block,) = [
            b
            for ev, b in r.ended
            if ev.kind == 4
            and ev.pid == pid
            and ev.heap == heap
            and ev.address == int(occ["address"], 16)
            and b.moves > 8
        ]
        assert block.moves == occ["moves"] == CHAIN_MOVES
        assert block.copied == occ["bytes_copied"] > 40_000
    assert not [a for a in r.anomalies if a.kind in NEVER_HEALTHY]


def test_slowpath_storm() -> None:
    r = replay(make("healthy-sawtooth", events=6000, inject=("slowpath-storm",)))
    (truth,) = r.trace.truth["defects"]
    assert truth["rule"] == "HL002" and truth["count"] == 2
    heap = int(truth["heap"], 16)
    for occ in truth["occurrences"]:
        slow = [
            e
            for e in r.trace.events()
            if e.kind == 3 and e.source == 4 and e.heap == heap and occ["time_ns"] <= e.time <= occ["last_time_ns"]
        ]
        assert len(slow) == occ["reallocs"] == STORM_RESIZES
        assert slow[-1].time - slow[0].time < 1_500_000_000
    assert not [a for a in r.anomalies if a.kind in NEVER_HEALTHY]


def test_labelled_corpus() -> None:
    cases = dict(corpus_specs(events=3000))
    assert len(cases) == len(CORPUS_BASES) * (1 + len(DEFECTS))
    assert not cases["attach"].inject and cases["lossy"].lost_events > 0
    for name in ("healthy-warmup+realloc-chain", "attach+double-free", "lossy+leak"):
        truth = synthesize(cases[name]).truth
        defect = name.split("+")[1]
        assert [d["kind"] for d in truth["defects"]] == [defect]
        assert truth["expected_rules"] == sorted(DEFECTS[defect][1])
