"""The one-closure comparisons of rules/fastcompare.py, the ``by site`` group
key and the nested-where window step, against the straightforward forms:
the registry's getters with ``operator.<op>``, ``(pid, site)`` from the
``site`` getter, and a list model of the window (as in test_rules_windows)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import compile_expr, load
from test_rules_windows import _naive

from heaplint.engine.blocks import Block
from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.rules import registry as R
from heaplint.rules.compiler import op_fn
from heaplint.rules.context import Ctx
from heaplint.rules.operators import window_reader
from heaplint.rules.windows import BUCKETS, WindowState
from heaplint.rules.windowstep import nested_where

MS = 1_000_000
OPS = ["==", "!=", "<", "<=", ">", ">="]
FREE = int(Kind.FREE)

block_st = st.none() | st.builds(Block, st.integers(0, 2**40), st.integers(0, 10**9), st.integers(0, 10**6),
                                 st.none() | st.integers(0, 60), st.integers(0, 7), st.integers(0, 40),
                                 st.integers(0, 2**30))


def _ctx(ended: Block | None, time: int, stack: int | None = None, size: int = 16, pid: int = 1) -> Ctx:
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.ev = HeapEvent(FREE, time, pid, heap=1, address=0x1000, size=size, stack=stack)
    c.ended = ended
    return c


@settings(max_examples=150, deadline=None)
@given(block_st, st.integers(0, 2 * 10**9), st.integers(-2, 2) | st.integers(0, 2**31), st.sampled_from(OPS))
def test_ended_fields_compared_in_place(ended, time, delta, op):
    """``lifetime``/``ended_*`` OP constant read ctx.ended in one closure:
    the same truth value as the registry's getter and the operator (the
    constant near the value, so that every operator's edge is hit)."""
    c = _ctx(ended, time)
    checked = 0
    for name in ("lifetime", "ended_size", "ended_moves", "ended_copied"):
        value = R.FIELDS[name].getter(R.EVENT)(c)
        const = max(0, value + delta) if -2 <= delta <= 2 else delta
        literal = f"{const}ns" if name == "lifetime" else (f"{const}B" if "size" in name or "copied" in name
                                                           else str(const))
        got = compile_expr(f"{name} {op} {literal}").fn(c)
        assert got == op_fn(op)(value, const), (name, op)
        checked += 1
    for op2 in ("==", "!="):
        got = compile_expr(f"ended_stack {op2} stack").fn(c)
        assert got == op_fn(op2)(R.FIELDS["ended_stack"].getter(R.EVENT)(c), c.ev.stack)
    assert checked == 4


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=4, max_size=4), st.sampled_from(OPS), st.integers(0, 60),
       st.sampled_from([MS, 10**9, 3 * 10**9]))
def test_window_readers_compared_in_place(totals, op, n, over):
    """rate(), avg() and a share of two counts compared with a constant read
    ctx.win in place: the same as the aggregate readers and the operator."""
    from heaplint.rules.compiler import Compiler, Env
    from heaplint.rules.expr import Expression, parse
    from heaplint.rules.windows import set_rate

    texts = ["count(where size > 1)", "count()", "rate(where size > 1)", "avg(size)"]
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.win = [*totals, totals[0]]  # avg takes two positions (sum, count)
    cases = {f"{texts[2]} {op} {n}": (2, n), f"{texts[3]} {op} {n}": (3, n), f"{texts[0]} / {texts[1]} {op} 0.5": (None, 0.5)}
    for text, (reader, right) in cases.items():
        env = Env(scope=R.EVENT, agg_mode="window", inner_scope=R.EVENT)
        # the aggregates first, so that they take positions 0, 1, 2, 3-4
        e = Expression(f"({' + '.join(texts)} over {over}ns by heap >= 0) and {text}")
        compiled = Compiler(env).compile(e, parse(e))
        set_rate(env.aggs, over)
        values = [window_reader(a)(c) for a in env.aggs]
        if reader is None:
            left = values[0] / values[1] if values[1] else 0
        else:
            left = values[reader]
        assert bool(compiled.fn(c)) == op_fn(op)(left, right), text


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000), st.sampled_from(OPS), st.integers(0, 5000), st.sampled_from(["1ms", "1s", "3s"]))
def test_rate_compared_in_place(count, op, n, over):
    """``rate(...) OP constant`` in a loaded rule (the factor set by its window)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        rs = load(Path(tmp), f"id: W020\nname: w\nwhen: rate(where size > 1) over {over} by heap {op} {n}.0\n")
    (rule,) = rs.rules
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    c.win = [count]
    assert rule.when.fn(c) == op_fn(op)(window_reader(rule.aggs[0])(c), n)


@settings(max_examples=150, deadline=None)
@given(block_st, st.none() | st.integers(0, 60), st.integers(0, 2**20), st.integers(1, 9))
def test_site_key_is_pid_and_site(ended, stack, size, pid):
    c = _ctx(ended, 0, stack=stack, size=size, pid=pid)
    assert R.site_key(c) == (pid, R.FIELDS["site"].getter(R.EVENT)(c))


NESTED_WHERES = ["moving", "moving and size >= 100", "size >= 100", "size >= 100 and size < 500",
                 "size >= 100 and size < 500 and moving", "kind == alloc", "kind == alloc and size < 300",
                 "ended", "ended and lifetime <= 1000ns", "kind == free and ended",
                 "kind == free and ended and ended_size >= 100"]


def test_nested_where_is_found_for_a_where_extending_another(tmp_path):
    rs = load(tmp_path, "id: W030\nname: w\nwhen: count(where size >= 100) + count(where size >= 100 and "
                        "size < 500) + rate(where size >= 100 and size < 500) over 1ms by heap > 0\n")
    (rule,) = rs.rules
    terms = [a.where_terms for a in rule.aggs[:2]]
    outer, rest = nested_where(terms)
    assert outer == 0 and rest is not None
    assert nested_where([terms[1], terms[0]])[0] == 1
    assert nested_where([terms[0], terms[0]]) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["count", "rate"]), st.sampled_from(NESTED_WHERES)), min_size=2, max_size=3,
                unique=True),
       st.lists(st.tuples(st.integers(0, 3 * MS), st.sampled_from([2, 3, 4]), st.integers(0, 1000),
                          st.integers(0, 1), block_st), min_size=1, max_size=60),
       st.booleans())
def test_nested_where_counts_match_a_list_model(tmp_path_factory, aggs, items, inline_key):
    """Counts and rates whose wheres extend one another (the nested-where
    step) leave the same totals as a list of every filed event."""
    tmp = tmp_path_factory.mktemp("n")
    body = " + ".join(f"{n}(where {w})" for n, w in aggs)
    rs = load(tmp, f"id: W031\nname: w\nwhen: {body} over 1ms by heap >= 0\n")
    (rule,) = rs.rules
    ws = WindowState(rule.aggs, rule.grouping.over, 10_000)
    seen: list = []
    steps = {}
    for k in (2, 3, 4):
        k_aggs = rule.for_kind(k)[1]
        readers = [window_reader(a) for a in k_aggs]
        steps[k] = ws.make_step(k_aggs, lambda c: (c.ev.pid, c.ev.heap),
                                lambda c, r=readers: seen.append([f(c) for f in r]), lambda c, g, key: None,
                                key_items=(HeapEvent._fields.index("heap"),) if inline_key else None)
    wheres = {w: compile_expr(w).fn for _, w in aggs}
    filed: dict[int, list] = {}
    c = Ctx(None, TraceInfo("t", "x"))  # type: ignore[arg-type]
    width = max(1, MS // BUCKETS)
    for i, (t, kind, size, heap, ended) in enumerate(sorted(items, key=lambda item: item[:4])):
        c.ev = HeapEvent(kind, t, 1, heap=heap, address=0x1000 + i, old_address=0x1000 + i * (i % 2), size=size,
                         index=i)
        c.ended = ended if kind != 2 else None
        hits = [bool(wheres[w](c)) for _, w in aggs]
        before = len(seen)
        if steps[kind] is not None:
            pred, act = steps[kind]
            if pred(c):
                act(c)
        if not any(hits):
            assert len(seen) == before
            continue
        filed.setdefault(heap, []).append((t, hits, size))
        assert seen[before:] == [_naive(filed[heap], t, width, rule.aggs, rule.grouping.over)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["create", "alloc", "free", "destroy", "end"]), st.integers(1, 2),
                          st.integers(1, 3), st.integers(0, 3)), max_size=40))
def test_heap_label_getter_is_the_event_heap_label(records):
    """The ``heap_label`` event getter (state.heap() inlined) gives the label
    of context.event_heap(), also at a heap's own HeapDestroy."""
    from heaplint.engine.replay import Replay
    from heaplint.rules.context import event_heap

    kinds = {"create": Kind.HEAP_CREATE, "alloc": Kind.ALLOC, "free": Kind.FREE, "destroy": Kind.DESTROY,
             "end": Kind.PROCESS_END}
    events = [HeapEvent(int(kinds[k]), i * 1000, pid, heap=0x10 * heap, address=0x1000 + 0x10 * addr, size=16,
                        index=i) for i, (k, pid, heap, addr) in enumerate(records)]
    replay = Replay()
    c = Ctx(replay.state, TraceInfo("t", "x"))
    getter = R.FIELDS["heap_label"].getter(R.EVENT)
    checked: list = []

    def hook(ev, anomalies):
        c.ev = ev
        h = event_heap(c.state, ev.pid, ev.heap)
        assert getter(c) == (h.label if h is not None else "")
        checked.append(ev)

    replay.run(iter(events), hook)
    assert len(checked) == len(events)


ENDED_TERMS = ["lifetime <= 2000ns", "ended_size >= 100B", "size > 50", "moving", "ended_moves < 3",
               "ended_stack == stack"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ENDED_TERMS), min_size=1, max_size=3), block_st, st.integers(0, 3000),
       st.integers(0, 200), st.none() | st.integers(0, 9), st.sampled_from([2, 3, 4]))
def test_ended_first_chains_agree_with_the_general_chain(terms, ended, time, size, stack, kind):
    """``ended and A and ...`` reads ended inline (fastcompare.ended_and): the
    same value as the chain with ``ended`` as an ordinary operand."""
    c = _ctx(ended, time, stack=stack, size=size)
    c.ev = c.ev._replace(kind=kind, old_address=0x1000 + 16 * (size % 2))
    fast = compile_expr(" and ".join(["ended", *terms]))
    slow = compile_expr(" and ".join(["not (not ended)", *terms]))
    assert fast.fn(c) == slow.fn(c)
    assert fast.fn is not slow.fn
