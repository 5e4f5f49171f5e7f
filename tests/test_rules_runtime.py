"""The rule runtime: findings and their fields, dedup and cooldown, kind
indexing, windows against a reference model, end rules, caps and notes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import load, run, trace

from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.engine.findings import Severity
from heaplint.engine.replay import Replay
from heaplint.rules.runtime import RuleRun, run_events
from heaplint.rules.windows import BUCKETS

MS = 1_000_000

DOUBLE_FREE = """
id: T001
name: double-free
severity: {default: warning, error: full_coverage}
confidence: {low: not full_coverage}
when: anomaly == DOUBLE_FREE
message: "{anomaly_address} freed twice on {heap_label} ({kind})"
"""


def test_finding_fields(tmp_path):
    rs = load(tmp_path, DOUBLE_FREE)
    (f,) = run(rs, "start app.exe", "alloc 0x1000 16 stack=app!make", "free 0x1000 stack=app!drop;app!main",
               "free 0x1000 stack=app!drop;app!main")
    assert (f.rule_id, f.rule_name, f.severity, f.confidence) == ("T001", "double-free", Severity.ERROR, "high")
    assert f.message == "0x1000 freed twice on process-heap (free)"
    assert (f.pid, f.image, f.heap, f.heap_label) == (1, "app.exe", 0x10, "process-heap")
    assert f.addresses == (0x1000,) and (f.first_index, f.first_time, f.count) == (3, 3 * MS, 1)
    assert f.stack == ("app!drop", "app!main") and len(f.fingerprint) == 32


def test_coverage_lowers_severity_and_confidence(tmp_path):
    rs = load(tmp_path, DOUBLE_FREE)
    (f,) = run(rs, "alloc 0x1000 16", "free 0x1000", "free 0x1000", facts={"attach": True})
    assert (f.severity, f.confidence) == (Severity.WARNING, "low")
    (f,) = run(rs, "alloc 0x1000 16", "free 0x1000", "free 0x1000", facts={"events_lost": 1})
    assert (f.severity, f.confidence) == (Severity.WARNING, "low")


def test_coverage_is_judged_at_report_time(tmp_path):
    """A trace whose lost-event count arrives at the end still lowers findings made earlier."""
    rs = load(tmp_path, DOUBLE_FREE)
    events, info, stacks = trace("alloc 0x1000 16", "free 0x1000", "free 0x1000")

    def late_loss():
        yield from events
        info.events_lost = 7  # as an .etl reader reports lost buffers at the end

    findings, _ = run_events(rs.enabled, late_loss(), info, stacks)
    assert findings[0].severity == Severity.WARNING


def test_stacks_resolved_at_report_time(tmp_path):
    rs = load(tmp_path, DOUBLE_FREE)
    events, info, _ = trace("alloc 0x1000 16", "free 0x1000", "free 0x1000 stack=x")
    stacks: dict = {}
    run_ = RuleRun(rs.enabled, info, stacks)
    replay = Replay(on_process_end=run_.on_process_end)
    run_.attach(replay)
    replay.run(events, run_.on_event)
    stacks[1] = ("late!frame",)  # the stack table arrives after the events
    assert run_.finish()[0].stack == ("late!frame",)


def test_fingerprint_ignores_addresses_pids_times_handles(tmp_path):
    rs = load(tmp_path, DOUBLE_FREE)
    a = run(rs, "alloc 0x1000 16", "free 0x1000 stack=app!drop", "free 0x1000 stack=app!drop")
    b = run(rs, "alloc 0x9000 16 pid=7 heap=0x77", "free 0x9000 pid=7 heap=0x77 stack=app!drop t=+9s",
            "free 0x9000 pid=7 heap=0x77 stack=app!drop")
    c = run(rs, "alloc 0x1000 16", "free 0x1000 stack=app!other", "free 0x1000 stack=app!other")
    assert a[0].fingerprint == b[0].fingerprint != c[0].fingerprint
    raw = run(rs, "alloc 0x1000 16", "free 0x1000 stack=0x7ff0;app!drop", "free 0x1000 stack=0x7ff0;app!drop")
    aslr = run(rs, "alloc 0x1000 16", "free 0x1000 stack=0x5550;app!drop", "free 0x1000 stack=0x5550;app!drop")
    assert raw[0].fingerprint == aslr[0].fingerprint


STORM = """
id: T002
name: realloc-storm
params: {{threshold: 3}}
when: count(where kind == realloc) over 10ms by heap > $threshold
message: "{{count(where kind == realloc)}} reallocs"
{extra}
"""


def reallocs(n: int, start: str = "+1ms", heap: int = 0x10, pid: int = 1) -> list[str]:
    out = [f"alloc 0x1000 16 heap={heap} pid={pid} t={start}"]
    out += [f"realloc 0x1000 0x1000 {17 + i} heap={heap} pid={pid}" for i in range(n)]
    return out


def test_window_episodes_per_group(tmp_path):
    rs = load(tmp_path, STORM.format(extra=""))
    (f,) = run(rs, *reallocs(5), *reallocs(5, start="+1s"))
    assert f.count == 2 and f.message == "4 reallocs" and f.heap == 0x10
    rs = load(tmp_path, STORM.format(extra="dedup: per-event"))
    assert [f.count for f in run(rs, *reallocs(5), *reallocs(5, start="+1s"))] == [1, 1]
    rs = load(tmp_path, STORM.format(extra="dedup: per-event\ncooldown: 1m"))
    assert [f.count for f in run(rs, *reallocs(5), *reallocs(5, start="+1s"))] == [2]
    rs = load(tmp_path, STORM.format(extra="cooldown: 1m"))
    assert [f.count for f in run(rs, *reallocs(5), *reallocs(5, start="+1s"))] == [1]


def test_groups_never_span_processes(tmp_path):
    rs = load(tmp_path, STORM.format(extra=""))
    findings = run(rs, *reallocs(5, pid=1), *reallocs(5, pid=2))
    assert sorted(f.pid for f in findings) == [1, 2]


def test_window_group_cap_is_reported(tmp_path):
    rs = load(tmp_path, STORM.format(extra="max_groups: 2"))
    events, info, stacks = trace(*reallocs(5, heap=0x10), *reallocs(5, heap=0x20), *reallocs(5, heap=0x30, start="+0"))
    findings, _ = run_events(rs.enabled, events, info, stacks)
    assert len(findings) == 2
    assert any("group cap of 2" in n for n in info.notes)


def test_idle_groups_are_evicted(tmp_path):
    rs = load(tmp_path, STORM.format(extra="max_groups: 2"))
    # heap 0x10 is idle for longer than the window when heap 0x30 arrives
    findings = run(rs, *reallocs(5, heap=0x10), *reallocs(5, heap=0x20), *reallocs(5, heap=0x30, start="+1s"))
    assert len(findings) == 3


def test_per_event_findings_are_capped(tmp_path):
    rs = load(tmp_path, "id: T003\nname: every\ndedup: per-event\nwhen: kind == alloc\n")
    events = [HeapEvent(int(Kind.ALLOC), i, 1, heap=0x10, address=0x1000 + 64 * i, size=8, index=i) for i in range(1100)]
    info = TraceInfo("t", "test")
    findings, _ = run_events(rs.enabled, events, info)
    assert len(findings) == 1000 and any("1000 findings" in n for n in info.notes)


def test_kind_index_limits_what_runs(tmp_path):
    rs = load(tmp_path, """
id: T004
name: reallocs
when: kind == realloc and size > 1
---
id: T005
name: any
when: size > 100000
---
id: T006
name: anomalies
when: anomaly == OVERLAP
---
id: T007
name: never
params: {limit: 0}
when: $limit > 0 and size > $limit
""")
    run_ = RuleRun(rs.enabled, TraceInfo("t", "x"), {})
    run_.attach(Replay(on_process_end=run_.on_process_end))
    assert len(run_.plan[int(Kind.REALLOC)]) == 2 and len(run_.plan[int(Kind.ALLOC)]) == 1
    assert len(run_.plan[int(Kind.FREE)]) == 1 and set(run_.anomaly_plan) == {"overlap"}
    assert all(r.id != "T007" for r in run_.rules)


def test_event_rule_groups_by_declared_keys(tmp_path):
    rs = load(tmp_path, "id: T008\nname: big\nwhen: kind == alloc and size > 10\nby: [size_class]\n"
                        "message: '{size:,} bytes'\n")
    findings = run(rs, "alloc 0x1000 20", "alloc 0x2000 30", "alloc 0x3000 100", "alloc 0x4000 5")
    assert sorted((f.count, f.message) for f in findings) == [(1, "100 bytes"), (2, "20 bytes")]
    assert findings[0].heap_label is not None


def test_evidence_keeps_the_maximum(tmp_path):
    rs = load(tmp_path, "id: T009\nname: chain\nwhen: kind == realloc and moving\nlet: {chain: moves}\n"
                        "message: 'moved {chain} times'\n")
    recs = ["alloc 0x10000 8"] + [f"realloc {0x10000 + i * 0x100} {0x10000 + (i + 1) * 0x100} 8" for i in range(5)]
    (f,) = run(rs, *recs)
    assert f.message == "moved 1 times" and f.evidence == {"chain": 5} and f.count == 5


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{address}", "0x1000"),
        ("{address:d}", "4096"),
        ("{size:x}", "0x10000"),
        ("{size}", "64.0 KiB"),
        ("{size:,}", "65,536"),
        ("{size:d}", "65536"),
        ("{time:duration}", "5.0 ms"),
        ("{size / 3:.1f}", "21845.3"),
        ("{1 / 4:.0%}", "25%"),
        ("{kind} {source}", "alloc LFH"),
        ("{{literal}} {kind == alloc}", "{literal} true"),
        ("{[alloc, free]}", "alloc, free"),
        ("{image}:{pid}", "app.exe:1"),
        ("{'a:b'}", "a:b"),
    ],
)
def test_message_formats(tmp_path, template, expected):
    rs = load(tmp_path, f"id: T010\nname: fmt\nwhen: kind == alloc\nmessage: \"{template}\"\n")
    (f,) = run(rs, "alloc 0x1000 64KiB source=LFH t=5ms")
    assert f.message == expected


END_RULES = """
id: E001
name: process-peak
at: end
scope: process
when: process_peak_live_bytes() > 100
message: "peak {process_peak_live_bytes()} ended={process_end_seen}"
---
id: E002
name: heap-live
at: end
scope: heap
when: live_blocks() > 0
message: "{live_blocks()} live on {heap_label}"
---
id: E003
name: leaks
at: end
scope: blocks
let:
  n: count(where age > 1s) by site
  bytes: sum(size where age > 1s)
when: n >= 2
message: "{n} old blocks ({bytes:d} bytes) from {site}"
---
id: E004
name: lossy
at: end
scope: trace
when: trace_lossy
message: "{events_lost} lost in {event_count} events over {trace_duration}"
"""


def test_end_rules(tmp_path):
    rs = load(tmp_path, END_RULES)
    findings = run(rs, "alloc 0x1000 64 stack=a", "alloc 0x2000 64 stack=a", "alloc 0x3000 64 stack=b",
                   "alloc 0x4000 64 pid=2", "end pid=2", "alloc 0x5000 8 stack=a t=+2s", facts={"events_lost": 4})
    got = sorted((f.rule_id, f.pid, f.message) for f in findings)
    assert got == [
        ("E001", 1, "peak 200 B ended=false"),
        ("E002", 1, "4 live on process-heap"),
        ("E002", 2, "1 live on process-heap"),
        ("E003", 1, "2 old blocks (128 bytes) from stack#1"),
        ("E004", None, "4 lost in 6 events over 2.00 s"),
    ]
    leak = next(f for f in findings if f.rule_id == "E003")
    assert leak.addresses == (0x1000, 0x2000) and leak.stack == ("a",) and leak.first_time == 0


def test_process_end_rules_see_live_blocks_before_they_are_dropped(tmp_path):
    rs = load(tmp_path, END_RULES)
    findings = run(rs, "alloc 0x1000 200 pid=3", "end pid=3 t=+5s", "alloc 0x2000 8 pid=4")
    assert [(f.rule_id, f.pid, f.message) for f in findings if f.rule_id == "E001"] == \
        [("E001", 3, "peak 200 B ended=true")]


# --- windows against a reference model -------------------------------------------
def reference_episodes(times: list[int], over: int, threshold: int) -> int:
    """Rising edges of (events in the quantised window > threshold)."""
    width = max(1, over // BUCKETS)
    seen: list[int] = []
    active = False
    episodes = 0
    for t in times:
        seen.append(t)
        b = t // width
        n = sum(1 for s in seen if s // width > b - BUCKETS)
        if n > threshold:
            if not active:
                episodes += 1
            active = True
        else:
            active = False
    return episodes


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30 * MS), min_size=1, max_size=60), st.integers(1, 6))
def test_window_count_matches_reference(tmp_path_factory, offsets, threshold):
    tmp = tmp_path_factory.mktemp("w")
    rs = load(tmp, f"id: W001\nname: w\nwhen: count(where kind == alloc) over 10ms by heap > {threshold}\n")
    times = sorted(offsets)
    events = [HeapEvent(int(Kind.ALLOC), t, 1, heap=0x10, address=0x1000 + 64 * i, size=8, index=i)
              for i, t in enumerate(times)]
    findings, _ = run_events(rs.enabled, events, TraceInfo("t", "x"))
    got = findings[0].count if findings else 0
    assert got == reference_episodes(times, 10 * MS, threshold)


def test_repeated_squaring_stays_cheap(tmp_path):
    """Numbers cannot grow without bound: wide integer products turn into floats."""
    import time as _time

    docs = ["macro: p0\nexpr: index + 3\n"] + [f"macro: p{i}\nexpr: p{i - 1} * p{i - 1}\n" for i in range(1, 11)]
    docs.append("id: N001\nname: squares\nwhen: kind == alloc and p10 > 1\nmessage: '{p10}'\n")
    rs = load(tmp_path, "---\n".join(docs))
    start = _time.perf_counter()
    (f,) = run(rs, "alloc 0x1000 8")
    assert f.message == "inf" and _time.perf_counter() - start < 5
