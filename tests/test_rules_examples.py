"""Rule examples: the mini-trace syntax, the runner's verdicts, and the
sketches of the built-in pack (tests/data_rules) passing their own examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import DATA_RULES, load, trace

from heaplint.engine.events import Kind
from heaplint.rules.minitrace import number, _Error
from heaplint.rules.ruleset import load_ruleset
from heaplint.rules.testing import run_examples


def test_data_rules_sketch_every_builtin_rule():
    rs = load_ruleset([str(DATA_RULES)], no_builtin=True, use_config=False)
    assert sorted(r.id for r in rs.rules) == [f"HL{i:03d}" for i in range(1, 15)]
    results = run_examples(rs)
    assert [r for r in results if not r.passed] == []
    for rule in rs.rules:
        verdicts = {ex.expect > 0 for ex in rule.spec.examples}
        assert verdicts == {True, False}, f"{rule.id} needs must-fire and must-not-fire examples"


def test_minitrace_records():
    events, info, stacks = trace(
        "start app.exe", "create heap=0x20 flags=2", "alloc 0x1000 64KiB heap=0x20 source=lfh stack=a!f;a!main",
        "realloc 0x1000 -> 0x2000 128 old_size=65536 heap=0x20 t=+5ms tid=3", "free 0x2000 heap=0x20 t=1s",
        "destroy 0x20", "end pid=1",
    )
    kinds = [Kind(e.kind) for e in events]
    assert kinds == [Kind.PROCESS_START, Kind.HEAP_CREATE, Kind.ALLOC, Kind.REALLOC, Kind.FREE, Kind.DESTROY,
                     Kind.PROCESS_END]
    alloc, realloc, free = events[2], events[3], events[4]
    assert (alloc.size, alloc.source, alloc.heap, alloc.stack) == (65536, 2, 0x20, 1)
    assert stacks == {1: ("a!f", "a!main")}
    assert (realloc.old_address, realloc.address, realloc.size, realloc.old_size, realloc.tid) == \
        (0x1000, 0x2000, 128, 65536, 3)
    assert [e.time for e in events] == [0, 1_000_000, 2_000_000, 7_000_000, 1_000_000_000, 1_001_000_000,
                                        1_002_000_000]
    assert events[1].flags == 2 and info.processes[1].image == "app.exe" and info.processes[1].start_seen


def test_minitrace_repeat_and_numbers():
    events, _, _ = trace("alloc 0x1000 8", {"repeat": 3, "events": ["alloc 0x2000+i*0x10 8+i t=+1s"]})  # type: ignore[arg-type]
    assert [(e.address, e.size) for e in events[1:]] == [(0x2000, 8), (0x2010, 9), (0x2020, 10)]
    assert number("2*3+4") == 10 and number("1KiB+i", 5) == 1029 and number("1ms*2") == 2_000_000
    for bad in ("1+", "+1", "2 3", "x", "1zz"):
        with pytest.raises(_Error):
            number(bad)


def test_facts():
    _, info, _ = trace("alloc 0x1 1 pid=2", facts={"attach": True, "events_lost": 2, "buffers_lost": 1,
                                                   "bad_records": 3, "image": "svc.exe", "end_seen": True})
    p = info.processes[2]
    assert (p.start_seen, p.end_seen, p.image) == (False, True, "svc.exe")
    assert (info.events_lost, info.buffers_lost, info.bad_records) == (2, 1, 3)


RULE = """
id: X001
name: big
params: {limit: 100}
when: kind == alloc and size > $limit
message: "big block of {size:d} bytes"
examples:
  - name: fires
    expect: 1
    trace: ["alloc 0x1000 200"]
  - name: counts every group
    expect: 2
    trace: ["alloc 0x1000 200", "alloc 0x2000 300 stack=x"]
  - name: wrong count
    expect: 2
    trace: ["alloc 0x1000 200"]
  - name: wrong severity
    expect: 1
    severity: error
    trace: ["alloc 0x1000 200"]
  - name: wrong message
    expect: 1
    message: "huge"
    trace: ["alloc 0x1000 200"]
  - name: params apply
    expect: 0
    params: {limit: 1000}
    trace: ["alloc 0x1000 200"]
  - name: bad param
    expect: 0
    params: {limt: 1000}
    trace: ["alloc 0x1000 200"]
  - name: must not fire
    expect: 0
    trace: ["alloc 0x1000 50"]
"""


def test_runner_verdicts(tmp_path):
    rs = load(tmp_path, RULE, params={"X001.limit": "1"})  # config overrides do not change examples
    results = {r.example: r for r in run_examples(rs)}
    assert {n for n, r in results.items() if r.passed} == {"fires", "counts every group", "params apply",
                                                           "must not fire"}
    assert results["wrong count"].detail == "expected 2 finding(s), got 1: big block of 200 bytes"
    assert results["wrong severity"].detail == "expected severity error, got warning"
    assert "does not contain 'huge'" in results["wrong message"].detail
    assert "unknown parameter 'limt'" in results["bad param"].detail
    assert results["fires"].source.endswith("rules.yaml:8")


class _Forgetful(dict):
    """A MiniTrace record cache that keeps nothing: every record is read afresh."""

    def __setitem__(self, key, value):
        pass


def _minitrace(items, cache=True):
    import json

    from heaplint.rules.minitrace import MiniTrace
    from heaplint.rules.yamlsrc import SourceText, load_yaml

    yfile = load_yaml(SourceText("<test>", "trace: " + json.dumps(items) + "\n"))
    doc = yfile.documents[0]
    mt = MiniTrace(yfile)
    if not cache:
        mt._records = _Forgetful()
    mt.add_items(doc["trace"], doc.nodes["trace"][1])
    return mt


_TERMS = st.sampled_from(["i", "2", "0x10", "3", "1ms", "16", "1KiB"])
_EXPR = st.lists(st.lists(_TERMS, min_size=1, max_size=2), min_size=1, max_size=3)  # a sum of products


def _spell(expr, i="i"):
    """``expr`` as text, with ``i`` written as ``i`` or as a number."""
    return "+".join("*".join(i if term == "i" else term for term in product) for product in expr)


@st.composite
def _records(draw):
    """(template, fields): a record text with {0}... holes for expressions that may use i."""
    kind = draw(st.sampled_from(["alloc {0} {1}", "realloc {0} -> {1} {2}", "free {0}", "create {0}", "start"]))
    holes = kind.count("{")
    extras = draw(st.lists(st.sampled_from(["t=+{}", "t={}", "pid={}", "tid={}", "stack=f;g", "stack=h", "old_size={}",
                                            "source=LFH", "image=a.exe", "flags={}"]), max_size=3))
    text = kind.format(*[f"{{{k}}}" for k in range(holes)])
    for extra in extras:
        if "{}" in extra:
            extra = extra.replace("{}", f"{{{holes}}}")
            holes += 1
        text += " " + extra
    return text, [draw(_EXPR) for _ in range(holes)]


@settings(max_examples=150, deadline=None)
@given(st.lists(_records(), min_size=1, max_size=3), st.integers(1, 4), st.lists(_records(), max_size=2))
def test_repeat_records_match_records_read_one_by_one(body, count, plain):
    """Records read once and built per ``i`` (the cache of MiniTrace._compile)
    equal the same records written out with each ``i`` and read afresh."""
    written = [text.format(*map(_spell, exprs)) for text, exprs in plain]
    repeat = {"repeat": count, "events": [text.format(*map(_spell, exprs)) for text, exprs in body]}
    spelt = [text.format(*[_spell(e, str(k)) for e in exprs]) for k in range(count) for text, exprs in body]
    fast = _minitrace(written + [repeat] + written)
    slow = _minitrace(written + spelt + written, cache=False)
    assert fast.events == slow.events
    assert (fast.stacks, fast.pids, fast.time) == (slow.stacks, slow.pids, slow.time)
