"""Every field, function, aggregate and constant of the registry, evaluated in
real replay contexts; trend statistics and globs against reference models."""

from __future__ import annotations

import fnmatch
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import compile_expr, load, run, trace
from test_rules_expr import event_ctx

from heaplint.engine.series import Bucket
from heaplint.engine.state import HeapState
from heaplint.rules import registry as R
from heaplint.rules import trend
from heaplint.rules.context import Ctx
from heaplint.rules.globs import compile_glob

S = 1_000_000_000
MS = 1_000_000


def end_ctx(*records: str, scope: str, facts: dict | None = None) -> Ctx:
    """A context for the end scopes, after replaying ``records``."""
    events, info, stacks = trace(*records, facts=facts)
    state = HeapState()
    for ev in events:
        state.apply(ev)
    c = Ctx(state, info)
    c.stacks = stacks
    proc = state.processes[1]
    c.pid, c.proc, c.start_time, c.end_time = 1, proc, proc.first_time, events[-1].time
    if scope in (R.HEAP, R.BLOCK):
        c.heaprec = proc.heaps[0x10]
        c.buckets = c.heaprec.series.snapshot()
    if scope == R.PROCESS:
        c.buckets = proc.series.snapshot()
    if scope == R.BLOCK:
        c.addr, c.block = c.heaprec.blocks.peekitem(0)
    if scope == R.TRACE:
        c.pid = c.proc = None
        c.trace_events, c.trace_first, c.trace_last = len(events), events[0].time, events[-1].time
    return c


LEAKY = ("alloc 0x1000 16 stack=app!a", "alloc 0x2000 32", "free 0x2000", "alloc 0x3000 64 t=+1s")
EV = ("alloc 0x1000 16", "create heap=0x20 flags=2", "alloc 0x5000 8 heap=0x20",
      "realloc 0x1000 0x2000 48 old_size=16 source=SLOWPATH stack=app!grow;app!main t=+2ms")
FREE = ("alloc 0x1000 16 stack=app!mk", "free 0x1000 t=+5ms")
CHAIN = ("alloc 0x1000 16", "realloc 0x1000 0x2000 32 t=+5ms", "realloc 0x2000 0x3000 64 t=+5ms", "free 0x3000 t=+5ms")
DESTROY = ("create heap=0x20", "alloc 0x1000 16 heap=0x20", "alloc 0x2000 8 heap=0x20", "destroy 0x20")

# field -> [(scope, records, expected)]
FIELD_CASES = {
    "kind": [(R.EVENT, EV, 3)],
    "time": [(R.EVENT, EV, 4 * MS), (R.BLOCK, LEAKY, 0)],
    "index": [(R.EVENT, EV, 3), (R.BLOCK, LEAKY, 0)],
    "pid": [(R.EVENT, EV, 1), (R.PROCESS, LEAKY, 1), (R.COVERAGE, LEAKY, 1)],
    "tid": [(R.EVENT, EV, 1)],
    "image": [(R.EVENT, EV, "app.exe"), (R.PROCESS, LEAKY, "app.exe")],
    "heap": [(R.EVENT, EV, 0x10), (R.HEAP, LEAKY, 0x10), (R.BLOCK, LEAKY, 0x10)],
    "heap_label": [(R.EVENT, EV, "process-heap"), (R.HEAP, LEAKY, "process-heap")],
    "heap_created": [(R.HEAP, LEAKY, False), (R.BLOCK, LEAKY, False)],
    "address": [(R.EVENT, EV, 0x2000), (R.BLOCK, LEAKY, 0x1000)],
    "size": [(R.EVENT, EV, 48), (R.BLOCK, LEAKY, 16)],
    "size_class": [(R.EVENT, EV, 64), (R.BLOCK, LEAKY, 16), (R.EVENT, ("alloc 0x1000 0",), 0)],
    "site": [(R.EVENT, EV, "size:16"), (R.BLOCK, LEAKY, "stack#1"), (R.EVENT, FREE, "stack#1")],
    "old_address": [(R.EVENT, EV, 0x1000)],
    "old_size": [(R.EVENT, EV, 16), (R.EVENT, ("alloc 0x1 1", "realloc 0x1 0x1 2"), 0)],
    "old_size_known": [(R.EVENT, EV, True), (R.EVENT, ("alloc 0x1 1", "realloc 0x1 0x1 2"), False)],
    "new_address": [(R.EVENT, EV, 0x2000)],
    "new_size": [(R.EVENT, EV, 48)],
    "moving": [(R.EVENT, EV, True), (R.EVENT, ("alloc 0x1 1", "realloc 0x1 0x1 2"), False)],
    "source": [(R.EVENT, EV, 4), (R.BLOCK, LEAKY, 0)],
    "stack": [(R.EVENT, EV, 1), (R.BLOCK, LEAKY, 1)],
    "flags": [(R.EVENT, ("create heap=0x20 flags=2",), 2)],
    "ended": [(R.EVENT, EV, True), (R.EVENT, ("alloc 0x1 1",), False)],
    "lifetime": [(R.EVENT, FREE, 5 * MS), (R.EVENT, ("alloc 0x1 1",), 0)],
    "ended_size": [(R.EVENT, FREE, 16)],
    "ended_stack": [(R.EVENT, FREE, 1)],
    "ended_moves": [(R.EVENT, CHAIN, 2), (R.EVENT, FREE, 0)],
    "ended_copied": [(R.EVENT, CHAIN, 48), (R.EVENT, FREE, 0)],
    "moves": [(R.EVENT, EV, 1), (R.BLOCK, LEAKY, 0)],
    "copied": [(R.EVENT, EV, 16), (R.BLOCK, LEAKY, 0)],
    "age": [(R.BLOCK, LEAKY, 1002 * MS)],
    "anomaly": [(R.ANOMALY, DESTROY, "destroy-with-live-blocks")],
    "anomaly_address": [(R.ANOMALY, ("alloc 0x1 1", "free 0x1", "free 0x1"), 1)],
    "anomaly_other": [(R.ANOMALY, ("alloc 0x1000 64", "alloc 0x1010 8"), 0x1000)],
    "anomaly_size": [(R.ANOMALY, ("alloc 0x1000 64", "alloc 0x1010 8"), 8)],
    "anomaly_count": [(R.ANOMALY, DESTROY, 2)],
    "anomaly_bytes": [(R.ANOMALY, DESTROY, 24)],
    "process_start_seen": [(R.EVENT, EV, True), (R.PROCESS, LEAKY, True)],
    "process_end_seen": [(R.EVENT, ("alloc 0x1 1", "end"), True), (R.PROCESS, LEAKY, False)],
    "events_lost": [(R.EVENT, EV, 0), (R.TRACE, LEAKY, 0)],
    "trace_lossy": [(R.EVENT, EV, False), (R.TRACE, LEAKY, False)],
    "full_coverage": [(R.EVENT, EV, True), (R.COVERAGE, LEAKY, True)],
    "start_time": [(R.PROCESS, LEAKY, 0), (R.BLOCK, LEAKY, 0)],
    "end_time": [(R.PROCESS, LEAKY, 1002 * MS), (R.TRACE, LEAKY, None)],
    "buffers_lost": [(R.TRACE, LEAKY, 0)],
    "bad_records": [(R.TRACE, LEAKY, 0)],
    "out_of_order": [(R.TRACE, LEAKY, 0)],
    "event_count": [(R.TRACE, LEAKY, 4)],
    "process_count": [(R.TRACE, LEAKY, 1)],
    "attached_processes": [(R.TRACE, LEAKY, 0)],
    "trace_duration": [(R.TRACE, LEAKY, 1002 * MS)],
}


def _ctx(scope: str, records, facts=None) -> Ctx:
    if scope in (R.EVENT, R.ANOMALY):
        return event_ctx(*records, facts=facts)
    return end_ctx(*records, scope=scope, facts=facts)


def test_every_field_has_cases():
    assert set(FIELD_CASES) == set(R.FIELDS)
    for name, cases in FIELD_CASES.items():
        covered = {scope for scope, _, _ in cases}
        declared = set(R.FIELDS[name].getters)
        assert declared <= covered | {R.COVERAGE, R.HEAP, R.BLOCK, R.PROCESS, R.TRACE}, name


@pytest.mark.parametrize("name, scope, records, expected",
                         [(n, *case) for n, cases in FIELD_CASES.items() for case in cases])
def test_field(name, scope, records, expected):
    getter = R.FIELDS[name].getter(scope)
    assert getter is not None
    c = _ctx(scope, records)
    if expected is None:  # end_time at trace scope is set by the runtime
        c.end_time = 42
        expected = 42
    assert getter(c) == expected


def test_coverage_fields_follow_the_facts():
    lossy = _ctx(R.EVENT, EV, facts={"events_lost": 3, "attach": True})
    assert R.FIELDS["events_lost"].getter(R.EVENT)(lossy) == 3
    assert R.FIELDS["trace_lossy"].getter(R.EVENT)(lossy) is True
    assert R.FIELDS["process_start_seen"].getter(R.EVENT)(lossy) is False
    assert R.FIELDS["full_coverage"].getter(R.EVENT)(lossy) is False
    attached = end_ctx(*LEAKY, scope=R.TRACE, facts={"attach": True})
    assert R.FIELDS["attached_processes"].getter(R.TRACE)(attached) == 1


# function -> [(scope, records, expression, expected)]
FUNCTION_CASES = {
    "abs": [(R.EVENT, EV, "abs(1 - size)", 47)],
    "least": [(R.EVENT, EV, "least(size, 10)", 10)],
    "greatest": [(R.EVENT, EV, "greatest(size, 10)", 48)],
    "known": [(R.EVENT, EV, "known(0x2000)", True), (R.EVENT, EV, "known(0x1000)", False)],
    "block_size": [(R.EVENT, EV, "block_size(address)", 48), (R.EVENT, EV, "block_size(0x9)", 0)],
    "block_age": [(R.EVENT, ("alloc 0x1 1", "alloc 0x2 1 t=+7ms"), "block_age(0x1)", 7 * MS)],
    "has_anomaly": [(R.EVENT, ("alloc 0x1 1", "free 0x1", "free 0x1"), "has_anomaly(DOUBLE_FREE)", True),
                    (R.EVENT, EV, "has_anomaly(DOUBLE_FREE)", False)],
    "live_bytes": [(R.EVENT, EV, "live_bytes()", 48), (R.HEAP, LEAKY, "live_bytes()", 80)],
    "live_blocks": [(R.EVENT, EV, "live_blocks()", 1), (R.BLOCK, LEAKY, "live_blocks()", 2)],
    "peak_live_bytes": [(R.EVENT, EV, "peak_live_bytes()", 48), (R.HEAP, LEAKY, "peak_live_bytes()", 80)],
    "process_live_bytes": [(R.EVENT, EV, "process_live_bytes()", 56), (R.PROCESS, LEAKY, "process_live_bytes()", 80)],
    "process_live_blocks": [(R.EVENT, EV, "process_live_blocks()", 2)],
    "process_peak_live_bytes": [(R.PROCESS, LEAKY, "process_peak_live_bytes()", 80)],
    "stack_has": [(R.EVENT, EV, "stack_has(\"*!main\")", True), (R.BLOCK, LEAKY, "stack_has(\"x\")", False)],
    "top_frame": [(R.EVENT, EV, "top_frame()", "app!grow"), (R.BLOCK, LEAKY, "top_frame()", "app!a")],
    "frame": [(R.EVENT, EV, "frame(1)", "app!main")],
    "stack_depth": [(R.EVENT, EV, "stack_depth()", 2), (R.EVENT, ("alloc 0x1 1",), "stack_depth()", 0)],
    "slope": [(R.HEAP, LEAKY, "slope() > 0", True)],
    "theil_sen_slope": [(R.HEAP, LEAKY, "theil_sen_slope() >= 0", True)],
    "trend_z": [(R.HEAP, LEAKY, "trend_z() > 0", True)],
    "envelope_rising": [(R.HEAP, LEAKY, "envelope_rising(2)", True)],
    "envelope_rise_fraction": [(R.HEAP, LEAKY, "envelope_rise_fraction(2)", 1.0)],
    "envelope_growth": [(R.HEAP, LEAKY, "envelope_growth(2)", 64)],
    "growing_fraction": [(R.PROCESS, LEAKY, "growing_fraction() > 0.9", True)],
    "tail_slope": [(R.HEAP, LEAKY, "tail_slope(1.0) == slope() and slope() > 0", True), (R.HEAP, LEAKY, "tail_slope(0.5)", 0.0)],
    "series_duration": [(R.HEAP, LEAKY, "series_duration()", 1002 * MS)],
    "samples": [(R.HEAP, LEAKY, "samples()", 4)],
    "series_min": [(R.HEAP, LEAKY, "series_min()", 16)],
    "series_max": [(R.HEAP, LEAKY, "series_max()", 80)],
    "series_first": [(R.HEAP, LEAKY, "series_first()", 16)],
    "series_last": [(R.HEAP, LEAKY, "series_last()", 80)],
}


def test_every_function_has_cases():
    assert set(FUNCTION_CASES) == set(R.FUNCTIONS)


@pytest.mark.parametrize("name, scope, records, text, expected",
                         [(n, *case) for n, cases in FUNCTION_CASES.items() for case in cases])
def test_function(name, scope, records, text, expected):
    c = compile_expr(text, scope=scope)
    assert c.fn(_ctx(scope, records)) == expected


def test_every_constant_resolves_to_its_value():
    for const in R.CONSTANT_LIST:
        c = compile_expr(const.name)
        assert c.const and c.value == const.value and c.type == const.type


AGG_RULE = """
id: AGG001
name: aggregates
params: {{w: 10s}}
when: {expr} over $w by heap > {threshold}
"""


@pytest.mark.parametrize(
    "expr, threshold, fires",
    [
        ("count(where kind == alloc)", 2, True),
        ("count(where kind == alloc)", 3, False),
        ("count()", 3, True),
        ("count()", 4, False),
        ("sum(size where kind == alloc)", 59, True),
        ("sum(size where kind == alloc)", 60, False),
        ("min(size where kind == alloc)", 9, True),
        ("min(size where kind == alloc)", 10, False),
        ("max(size where kind == alloc)", 29, True),
        ("avg(size where kind == alloc)", 19, True),
        ("avg(size where kind == alloc)", 20, False),
        ("rate(where kind == alloc)", 0.29, True),
        ("rate(where kind == alloc)", 0.31, False),
    ],
)
def test_aggregates(tmp_path, expr, threshold, fires):
    rs = load(tmp_path, AGG_RULE.format(expr=expr, threshold=threshold))
    findings = run(rs, "alloc 0x1000 10", "alloc 0x2000 20", "alloc 0x3000 30", "free 0x1000")
    assert len(findings) == (1 if fires else 0)


def test_every_aggregate_is_tested():
    tested = {"count", "sum", "min", "max", "avg", "rate"}
    assert tested == set(R.AGGREGATES)


# --- trend statistics against reference models ------------------------------------
def buckets(values, step=S):
    return [Bucket(i * step, v, v, v) for i, v in enumerate(values)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=60))
def test_slope_matches_least_squares(values):
    xs = [i for i in range(len(values))]
    expected = statistics.linear_regression(xs, values).slope
    assert trend.slope(buckets(values)) == pytest.approx(expected, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=40))
def test_theil_sen_is_the_median_pairwise_slope(values):
    slopes = [(values[j] - values[i]) / (j - i) for i in range(len(values)) for j in range(i + 1, len(values))]
    assert trend.theil_sen_slope(buckets(values)) == pytest.approx(statistics.median(slopes))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=3, max_size=40))
def test_mann_kendall_sign_and_reference(values):
    n = len(values)
    s = sum((values[j] > values[i]) - (values[j] < values[i]) for i in range(n) for j in range(i + 1, n))
    z = trend.trend_z(buckets(values))
    assert (z > 0) == (s > 1) or s in (0, 1, -1)
    assert (z < 0) == (s < -1) or s in (0, 1, -1)


def test_trend_cases():
    rising = buckets(list(range(0, 100, 2)))
    flat = buckets([10] * 50)
    saw = buckets([0, 5, 10, 15, 0, 5, 10, 15] * 6)
    plateau = buckets(list(range(0, 50)) + [50] * 50)
    assert trend.trend_z(rising) > 5 and trend.trend_z(flat) == 0
    assert trend.envelope_rising(rising, 8) and not trend.envelope_rising(flat, 8)
    assert not trend.envelope_rising(saw, 6) and trend.envelope_growth(saw, 6) == 0
    assert trend.envelope_rising(plateau, 8) and trend.tail_slope(plateau, 0.33) == 0
    assert trend.envelope_rise_fraction(plateau, 8) == pytest.approx(4 / 7)
    assert trend.growing_fraction(rising) == 1.0 and trend.growing_fraction(flat) == 0.0
    assert trend.duration(rising) == 49 * S
    for fn in (trend.slope, trend.theil_sen_slope, trend.trend_z, trend.growing_fraction):
        assert fn([]) == 0 and fn(buckets([5])) == 0
    assert trend.envelope([], 4) == [] and not trend.envelope_rising(buckets([1]), 4)


def test_pairwise_statistics_are_bounded():
    big = buckets(list(range(5000)))
    assert trend.theil_sen_slope(big) == pytest.approx(1.0)
    assert trend.trend_z(big) > 10


# --- globs ---------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?!", max_size=8), st.text(alphabet="abAB!", max_size=12))
def test_glob_matches_fnmatch(pattern, text):
    expected = fnmatch.fnmatchcase(text.casefold(), pattern.casefold())
    assert compile_glob(pattern)(text) == expected


def test_glob_is_linear_on_hostile_patterns():
    evil = compile_glob("*a" * 200 + "*b")
    assert evil("a" * 5000) is False  # would take ages with a backtracking matcher
    with pytest.raises(ValueError):
        compile_glob("x" * 2000)
