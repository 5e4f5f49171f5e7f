"""Window rules and kind-specialised closures against straightforward models.

The runtime files window events through closures built per rule and event
kind (rules/windowstep.py), with ``where`` conditions folded for that kind
(``CompiledRule.for_kind``).  These tests compare, after every event, the
aggregate values those closures leave for the rule's condition with a naive
model that keeps every event in a list; and kind-specialised expressions
with the general ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import compile_expr, load

from heaplint.engine.errors import RuleError
from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.rules.context import Ctx
from heaplint.rules.operators import window_reader
from heaplint.rules.windows import BUCKETS, WindowState

MS = 1_000_000
KINDS = [int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)]
WHERES = [None, "kind == alloc", "kind == free", "kind != alloc", "size >= 100", "kind == alloc and size < 500",
          "kind in [alloc, realloc] or size == 7", "moving", "not (kind == free)", "false", "true"]
AGGS = ["count", "sum", "avg", "min", "max", "rate"]


def _agg_text(name: str, where: str | None) -> str:
    value = "" if name in ("count", "rate") else "size"
    if where is None:
        return f"{name}({value})"
    return f"{name}({value} where {where})".replace("( where", "(where")


def _naive(filed: list[tuple[int, list[bool], int]], t: int, width: int, aggs, over: int) -> list:
    """Aggregates of the events still in the window at time ``t``, recomputed
    from the list of every filed event (time, taken per aggregate, size)."""
    b = t // width
    inside = [(took, size) for tt, took, size in filed if tt // width > b - BUCKETS]
    out = []
    for i, a in enumerate(aggs):
        vals = [size for took, size in inside if took[i]]
        if a.name == "count":
            out.append(len(vals))
        elif a.name == "rate":
            out.append(len(vals) * (1_000_000_000 / over))
        elif a.name == "sum":
            out.append(sum(vals))
        elif a.name == "avg":
            out.append(sum(vals) / len(vals) if vals else 0)
        elif a.name == "min":
            out.append(min(vals) if vals else 0)
        else:
            out.append(max(vals) if vals else 0)
    return out


events_st = st.lists(
    st.tuples(st.integers(0, 3 * MS), st.sampled_from(KINDS), st.integers(0, 1000), st.integers(0, 1)),
    min_size=1, max_size=60,
)
aggs_st = st.lists(st.tuples(st.sampled_from(AGGS), st.sampled_from(WHERES)), min_size=1, max_size=4, unique=True)


@settings(max_examples=150, deadline=None)
@given(aggs_st, events_st, st.booleans(), st.booleans())
def test_window_aggregates_match_a_list_model(tmp_path_factory, aggs, items, specialised, inline_key):
    tmp = tmp_path_factory.mktemp("w")
    body = " + ".join(_agg_text(n, w) for n, w in aggs)
    rs = load(tmp, f"id: W010\nname: w\nwhen: {body} over 1ms by heap >= 0\n")
    (rule,) = rs.rules
    ws = WindowState(rule.aggs, rule.grouping.over, 10_000)
    seen: list = []
    steps = {}
    for k in KINDS:
        k_aggs = rule.for_kind(k)[1] if specialised else rule.aggs
        readers = [window_reader(a) for a in k_aggs]
        steps[k] = ws.make_step(k_aggs, lambda c: (c.ev.pid, c.ev.heap), lambda c, r=readers: seen.append(
            [f(c) for f in r]), lambda c, g, key: None,
            key_items=(HeapEvent._fields.index("heap"),) if inline_key else None)  # the key built in the step
    wheres = {w: (compile_expr(w).fn if w else None) for _, w in aggs}
    any_where = any(w is not None for _, w in aggs)
    filed: dict[int, list] = {}
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    width = max(1, MS // BUCKETS)
    for i, (t, kind, size, heap) in enumerate(sorted(items)):
        c.ev = ev = HeapEvent(kind, t, 1, heap=heap, address=0x1000 + i, old_address=0x1000 + i * (i % 2),
                              size=size, index=i)
        hits = [bool(wheres[w](c)) if w else None for _, w in aggs]
        before = len(seen)
        if steps[kind] is not None:
            pred, act = steps[kind]
            if pred(c):
                act(c)
        if any_where and not any(hits):
            assert len(seen) == before  # not filed
            continue
        filed.setdefault(heap, []).append((t, [h is not False for h in hits], size))
        assert seen[before:] == [_naive(filed[heap], t, width, rule.aggs, rule.grouping.over)], ev


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5 * MS), st.integers(1, 1000)), min_size=1, max_size=50))
def test_window_min_max_sum_match_reference(tmp_path_factory, items):
    """max/min/sum of sizes in the window after every event (no where)."""
    tmp = tmp_path_factory.mktemp("m")
    rs = load(tmp, "id: W002\nname: w\nwhen: max(size) + min(size) + sum(size) over 1ms by heap > 0\n")
    (rule,) = rs.rules
    ws = WindowState(rule.aggs, rule.grouping.over, 10)
    got: list = []
    readers = [window_reader(a) for a in rule.aggs]
    pred, act = ws.make_step(rule.aggs, lambda c: (1,), lambda c: got.append([f(c) for f in readers]),
                             lambda c, g, k: None)
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    items = sorted(items)
    width = max(1, MS // BUCKETS)
    for i, (t, size) in enumerate(items):
        c.ev = HeapEvent(int(Kind.ALLOC), t, 1, heap=0x10, size=size)
        if pred(c):
            act(c)
        inside = [s for tt, s in items[: i + 1] if tt // width > t // width - BUCKETS]
        assert dict(zip([a.name for a in rule.aggs], got[-1])) == {"max": max(inside), "min": min(inside),
                                                                   "sum": sum(inside)}


ATOMS = ["kind == alloc", "kind != free", "kind in [alloc, realloc]", "kind not in [free]", "size > 100",
         "moving", "address == old_address", "true", "false", "kind == realloc and moving"]
expr_st = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(expr_st, st.sampled_from(KINDS), st.integers(0, 300), st.integers(0, 2))
def test_kind_specialised_expressions_agree(expr, kind, size, moved):
    general = compile_expr(expr)
    special = compile_expr(expr, known_kind=kind)
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.ev = HeapEvent(kind, 0, 1, heap=1, address=0x1000, old_address=0x1000 + 16 * moved, size=size)
    assert bool(special.fn(c)) == bool(general.fn(c))
    assert special.const or general.kinds is None or kind in general.kinds or not general.fn(c)


def test_kind_folding_removes_kind_tests(tmp_path):
    rs = load(tmp_path, "id: K001\nname: k\nwhen: kind == alloc and size > 10\n")
    (rule,) = rs.rules
    assert rule.for_kind(int(Kind.FREE))[0].const and not rule.for_kind(int(Kind.FREE))[0].value
    when = rule.for_kind(int(Kind.ALLOC))[0]
    assert not when.const and when.text == rule.when.text


event_st = st.builds(
    HeapEvent, st.sampled_from([int(k) for k in Kind]), st.integers(0, 10**12), st.integers(0, 9), st.integers(0, 9),
    st.integers(0, 2**48), st.integers(0, 2**48), st.integers(0, 2**40), st.integers(0, 2**48),
    st.none() | st.integers(0, 2**40), st.integers(0, 6), st.none() | st.integers(0, 50), st.integers(0, 7),
    st.none(), st.integers(0, 10**6),
)


@settings(max_examples=100, deadline=None)
@given(event_st)
def test_event_items_are_the_registry_getters(ev):
    """Comparisons read c.ev[i] for the fields of compiler.EVENT_ITEMS: the
    same values as the registry's getters."""
    from heaplint.rules import registry as R
    from heaplint.rules.compiler import EVENT_ITEMS, op_fn

    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.ev = ev
    compared = 0
    for name, i in EVENT_ITEMS.items():
        value = R.FIELDS[name].getter(R.EVENT)(c)
        assert ev[i] == value, name
        const = {"kind": ("alloc", 2), "source": ("LFH", 2), "time": ("5ns", 5)}.get(name, ("5", 5))
        for op in ("==", "!=", "<", "<=", ">", ">="):
            if name == "stack" and op not in ("==", "!="):
                continue  # stacks are only compared for equality
            try:
                fn = compile_expr(f"{name} {op} {const[0]}").fn
            except RuleError:
                continue
            assert fn(c) == op_fn(op)(value, const[1]), (name, op)
            compared += 1
    assert compared >= 60


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=3, max_size=3), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
       st.integers(0, 50))
def test_window_comparisons_read_the_totals(totals, op, n):
    """count()/sum() compared with a constant, and a share of two counts,
    read ctx.win in place: the same as computing them from the readers."""
    from heaplint.rules.compiler import op_fn

    texts = ["count(where size > 1)", "sum(size)", "count()"]
    exprs = {f"{texts[0]} {op} {n}": lambda w: op_fn(op)(w[0], n),
             f"{texts[1]} {op} {n}": lambda w: op_fn(op)(w[1], n),
             f"{texts[0]} / {texts[2]} {op} 0.5": lambda w: op_fn(op)(w[0] / w[2] if w[2] else 0, 0.5)}
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.win = totals
    for text, expected in exprs.items():
        # the aggregates first, so that they take positions 0, 1, 2
        got = compile_expr(f"({' + '.join(texts)} >= 0) and {text}", agg_mode="window", inner_scope="event")
        assert got.fn(c) == expected(totals), text


class _PoisonedEnded(Ctx):
    """A context whose ``ended`` must not be read."""

    __slots__ = ()

    @property  # type: ignore[override]
    def ended(self):
        raise AssertionError("read ctx.ended")


@given(event_st)
@settings(max_examples=30, deadline=None)
def test_only_the_listed_fields_read_the_ended_block(ev):
    """The runtime looks the ended block up only for rules naming a field of
    registry.READS_ENDED: no other event field may read it."""
    from heaplint.engine.state import HeapState
    from heaplint.rules import registry as R

    c = _PoisonedEnded(HeapState(), TraceInfo("t", "x"))
    c.ev = ev
    checked = 0
    for f in R.FIELD_LIST:
        getter = f.getters.get(R.EVENT)
        if getter is not None and f.name not in R.READS_ENDED:
            getter(c)
            checked += 1
    assert checked > 20


def test_a_message_may_name_an_ended_field_the_condition_does_not(tmp_path):
    from rules_kit import run

    rs = load(tmp_path, "id: M001\nname: m\nwhen: kind == free and size == 0\nmessage: 'lived {lifetime}'\n")
    (f,) = run(rs, "alloc 0x1000 16", "free 0x1000 t=+5ms")
    assert f.message == "lived 5.0 ms"


@given(st.lists(st.tuples(st.none() | st.integers(0, 2**40), st.integers(0, 2**40)), max_size=50))
@settings(max_examples=50, deadline=None)
def test_cached_site_strings(pairs):
    from heaplint.rules import registry as R

    for stack, size in pairs:
        want = f"stack#{stack}" if stack is not None else f"size:{1 << (size - 1).bit_length() if size else 0}"
        assert R.site(stack, size) == want
    assert len(R._STACK_SITES) <= R._MAX_STACK_SITES
