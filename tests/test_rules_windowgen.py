"""Generated window steps (rules/windowgen.py) against the closures of
rules/windowstep.py, which tests/test_rules_windows.py checks against a list
model.  Random rules (aggregates, wheres, a real condition with a threshold,
grouped by heap, thread or site) run over random events through both; after
every event the aggregate values and every rise must be the same."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import load

from heaplint.engine.blocks import Block
from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.rules import windowstep
from heaplint.rules.context import Ctx
from heaplint.rules.operators import window_reader
from heaplint.rules.runtime import _key_of
from heaplint.rules.compiler import EVENT_ITEMS
from heaplint.rules.windows import WindowState

MS = 1_000_000
KINDS = [int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)]
WHERES = [None, "kind == alloc", "kind == free", "size >= 100", "kind == alloc and size < 500", "moving",
          "ended", "kind == free and ended", "kind == free and ended and lifetime <= 1ms",
          "ended and ended_size > 50", "source == SLOWPATH", "false", "true"]
AGGS = ["count", "sum", "avg", "min", "max", "rate"]
BYS = ["heap", "tid", "site", "heap, tid", "stack"]


def _agg_text(name: str, where: str | None) -> str:
    value = "" if name in ("count", "rate") else "size"
    if where is None:
        return f"{name}({value})"
    return f"{name}({value} where {where})".replace("( where", "(where")


event_st = st.tuples(
    st.integers(0, 3 * MS),  # time
    st.sampled_from(KINDS),
    st.integers(0, 1000),  # size
    st.integers(0, 1),  # heap
    st.integers(1, 2),  # tid
    st.none() | st.integers(1, 3),  # stack
    st.none() | st.tuples(st.integers(0, 1000), st.integers(0, 3 * MS), st.none() | st.integers(1, 3)),  # ended
    st.integers(0, 2),  # source
)


def _run(rule, events, generated: bool, threshold: int) -> tuple[list, list]:
    windowstep.GENERATED = generated
    try:
        ws = WindowState(rule.aggs, rule.grouping.over, 4)
        key_of = _key_of(rule.by, rule.by_getters)
        items = tuple(EVENT_ITEMS.get(name) for name in rule.by)
        key_items = items if items and None not in items else None
        rises: list = []
        steps = {}
        for k in KINDS:
            when, aggs = rule.for_kind(k)
            steps[k] = ws.make_step(aggs, key_of, when.fn, lambda c, g, key: rises.append((c.ev.index, key)),
                                    key_items)
    finally:
        windowstep.GENERATED = True
    readers = [window_reader(a) for a in rule.aggs]
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    seen: list = []
    for i, (t, kind, size, heap, tid, stack, ended, source) in enumerate(sorted(events, key=lambda e: e[0])):
        c.ev = HeapEvent(kind, t, 1, tid=tid, heap=heap, address=0x1000 + i, old_address=0x1000 + i * (i % 2),
                         size=size, source=source, stack=stack, index=i)
        c.ended = None if ended is None else Block(ended[0], min(ended[1], t), 0, ended[2], 0)
        c.win = None
        if steps[kind] is not None:
            pred, act = steps[kind]
            if pred(c):
                act(c)
        seen.append(None if c.win is None else [f(c) for f in readers])
    return seen, rises


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(AGGS), st.sampled_from(WHERES)), min_size=1, max_size=4, unique=True),
       st.lists(event_st, min_size=1, max_size=60), st.sampled_from(BYS), st.integers(0, 6),
       st.sampled_from([">", ">=", "<", "<=", "=="]))
def test_generated_steps_match_the_closures(tmp_path_factory, aggs, events, by, threshold, op):
    tmp = tmp_path_factory.mktemp("g")
    first = _agg_text(*aggs[0])
    rest = " + ".join(_agg_text(n, w) for n, w in aggs[1:]) or "0"
    # the condition: a comparison with a constant (pasted into the step) and a sum of the rest (called)
    when = f"{first} {op} {threshold} over 1ms by {by} and {rest} >= 0"
    rs = load(tmp, f"id: W020\nname: w\nwhen: {when}\n")
    (rule,) = rs.rules
    assert _run(rule, events, True, threshold) == _run(rule, events, False, threshold)


@pytest.mark.parametrize("when", [
    "count(where kind == free and ended) > 2 over 1ms by site",
    "count(where kind == free and ended and lifetime <= 1ms) / count(where kind == free and ended) >= 0.5"
    " over 1ms by site and count(where kind == free and ended) >= 2",
    "rate(where kind == alloc) > 2000 over 1ms by heap",
])
def test_generated_steps_paste_the_conditions(tmp_path, when):
    """The shapes of the built-in and benchmark rules read no closure but
    the rise callback: their wheres and conditions are pasted in."""
    rs = load(tmp_path, f"id: W021\nname: w\nwhen: {when}\n")
    (rule,) = rs.rules
    ws = WindowState(rule.aggs, rule.grouping.over, 4)
    for k in KINDS:
        when_k, aggs = rule.for_kind(k)
        items = tuple(EVENT_ITEMS.get(name) for name in rule.by)
        pair = ws.make_step(aggs, _key_of(rule.by, rule.by_getters), when_k.fn, lambda c, g, key: None,
                            items if None not in items else None)
        if pair is not None:
            assert "(c)" not in pair[0].source.replace("def step(c):", "").replace("(c, g, key)", "")


NESTED = [("count(where kind == free and ended)", "count(where kind == free and ended and lifetime <= 1ms)"),
          ("sum(size where ended)", "count(where ended and ended_size > 500)")]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NESTED), st.booleans(), st.lists(event_st, min_size=1, max_size=60),
       st.sampled_from(["site", "heap"]), st.integers(0, 6))
def test_generated_nested_wheres_match_the_closures(tmp_path_factory, pair, swap, events, by, threshold):
    """Two wheres, one extending the other (HL012, BENCH014): the longer one
    tests only its extra terms, after the shorter one held."""
    outer, inner = pair[::-1] if swap else pair
    rs = load(tmp_path_factory.mktemp("n"), f"id: W022\nname: w\nwhen: {inner} > {threshold} over 1ms by {by}"
                                             f" and {outer} >= 0\n")
    (rule,) = rs.rules
    assert _run(rule, events, True, threshold) == _run(rule, events, False, threshold)
