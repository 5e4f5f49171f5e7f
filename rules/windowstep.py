"""The per-event closures of window rules (built by
:meth:`heaplint.rules.windows.WindowState.make_step`).

One closure per rule and event kind files the event in its group, expires
the buckets that left the window, leaves the group's totals in ``ctx.win``
(the aggregates' compiled readers index them in place) and evaluates the
rule's condition.  Aggregates whose ``where`` is the same condition test it
once.  The commonest shape, one count/rate/sum, has its own closure with the
bookkeeping inlined; its results are those of the general one (the
property tests in tests/test_rules_windows.py compare both with a naive
list model).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from heaplint.rules import registry as R
from heaplint.engine.events import HeapEvent
from heaplint.rules.fastcompare import ENDED_GETTER, EVENT_ITEMS
from heaplint.rules.operators import chain_fn
from heaplint.rules.windows import _MAX_AGE, SWEEP_EVERY, Group, WindowState, set_rate

_COUNT, _SUM, _AVG, _MIN, _MAX = range(5)
_OPS = {"count": _COUNT, "rate": _COUNT, "sum": _SUM, "avg": _AVG, "min": _MIN, "max": _MAX}

Step = Callable[[Any], bool]
#: registry getters that read one item of the HeapEvent, by that item
_PID = HeapEvent._fields.index("pid")
_GETTER_ITEMS = {R.FIELDS[name].getters[R.EVENT]: i for name, i in EVENT_ITEMS.items()}
OnRise = Callable[[Any, Group, tuple], None]
#: build generated steps (rules/windowgen.py); False: the closures below, the
#: reference the tests compare the generated steps with
GENERATED = True


def build_step(ws: WindowState, aggs: Sequence[Any], key_of: Callable[[Any], tuple], when: Callable[[Any], Any],
               on_rise: OnRise, key_items: tuple | None = None) -> tuple[Callable[[Any], Any], Step] | None:
    """The ``(predicate, action)`` pair of the runtime's plan for events of
    one kind: ``(where, step)`` for one aggregate with a where, otherwise
    ``(step, never)`` (a step returns None).  None when no event of that kind can be filed (every ``where``
    is false for it).  ``key_items``: when the group key is ``(pid, ev[i])`` or
    ``(pid, ev[i], ev[j])``, ``(i,)`` or ``(i, j)``: the steps build it without calling ``key_of``."""
    if GENERATED:
        return generate_step(ws, aggs, key_of, when, on_rise, key_items)
    key_of = _inline_key(key_of, key_items)
    set_rate(aggs, ws.over)
    always = ws.file_all  # no where at all: every event is filed
    uncond: list[tuple] = []  # aggregates that take every filed event
    conds: dict[str, tuple[Callable, list[tuple], tuple]] = {}  # where text -> (test, its aggregates, its terms)
    for a in aggs:
        item = (a.pos, _OPS[a.name], a.value, _item_of(a.value))
        if a.where is None:
            uncond.append(item)
        elif a.where_const is True:
            always = True
            uncond.append(item)
        elif a.where_const is None:
            conds.setdefault(a.where_text, (a.where, [], a.where_terms))[1].append(item)
    if not always and not conds:
        return None
    tests = [(w, tuple(items)) for w, items, _ in conds.values()]
    if len(aggs) == 1 and _OPS[aggs[0].name] in (_COUNT, _SUM):
        test = tests[0][0] if tests else None
        pos, op, value, vi = (uncond or tests[0][1])[0]
        step = _single(ws, value if op == _SUM else None, vi, key_of, when, on_rise)
        return (test, step) if test is not None else (step, _never)
    if all(_OPS[a.name] == _COUNT for a in aggs):
        nested = nested_where([terms for _, _, terms in conds.values()])
        # positions as (position in totals, position in a bucket row) pairs
        tests = [(w, tuple((item[0], item[0] + 1) for item in items)) for w, items in tests]
        uncond_pairs = tuple((item[0], item[0] + 1) for item in uncond)
        return _counts(ws, tests, uncond_pairs, always, nested, key_of, when, on_rise), _never
    return _general(ws, tests, tuple(uncond), always, key_of, when, on_rise), _never


def _inline_key(key_of: Callable, key_items: tuple | None) -> Any:
    """``key_of``, or ``(i, j)`` (``j`` None for one item) for a key the steps build inline."""
    if key_items is None or len(key_items) > 2:
        return key_of
    return (key_items[0], key_items[1] if len(key_items) > 1 else None)


def _item_of(value: Callable | None) -> int | None:
    """The HeapEvent item an aggregate's value is (``sum(size)``), or None."""
    return _GETTER_ITEMS.get(value) if value is not None else None


def nested_where(terms: list[tuple]) -> tuple[int, Callable] | None:
    """For two wheres whose and-chains are ``A`` and ``A and R`` (the same
    leading operands, by canonical text, compiled for the same rule and
    kind): ``(index of A, R's closure)``, so that an event tests A once and
    R only when A holds.  None otherwise."""
    if len(terms) != 2:
        return None
    texts = [tuple(t.text for t in ts) for ts in terms]
    for outer, inner in ((0, 1), (1, 0)):
        short, long = texts[outer], texts[inner]
        if len(short) < len(long) <= len(short) + 4 and long[:len(short)] == short:
            return outer, chain_fn("and", tuple(t.fn for t in terms[inner][len(short):]))
    return None


def _never(c: Any) -> None:  # pragma: no cover - steps return None, so their action never runs
    return None


def _single(ws: WindowState, value: Callable | None, vi: int | None, key_of: Callable, when: Callable,
            on_rise: OnRise) -> Step:
    """One count, rate or sum (position 0), its where tested before: everything inlined.
    ``vi``: the sum's value is item ``vi`` of the event (read without a call)."""
    groups = ws.groups
    get = groups.get
    k1, k2 = key_of if isinstance(key_of, tuple) else (None, None)
    width = ws.width
    admit = ws.admit
    sweep = ws.sweep

    def step(c: Any) -> None:
        b = c.ev.time // width
        if k1 is None:
            key = key_of(c)
        elif k2 is None:
            key = ((ev := c.ev)[_PID], ev[k1])
        else:
            key = ((ev := c.ev)[_PID], ev[k1], ev[k2])
        g = get(key)
        if g is None or g.last < b - _MAX_AGE:
            g = admit(key, b, g)
            if g is None:
                return
        totals = g.totals
        buckets = g.buckets
        if buckets:
            low = b - _MAX_AGE
            while buckets and buckets[0][0] < low:
                totals[0] -= buckets.popleft()[1]
        if b > g.last:
            g.last = b
        if value is None:
            amount = 1
        elif vi is not None:
            amount = c.ev[vi]
        else:
            amount = value(c)
        if buckets and buckets[-1][0] >= b:
            buckets[-1][1] += amount
        else:
            buckets.append([b, amount])
        totals[0] += amount
        n = ws._adds = ws._adds + 1
        if not n % SWEEP_EVERY:
            sweep(b)
        c.win = totals
        if when(c):
            if not g.active:
                g.active = True
                on_rise(c, g, key)
        elif g.active:
            g.active = False

    return step


def _counts(ws: WindowState, tests: list, uncond: tuple, always: bool, nested: tuple | None, key_of: Callable,
            when: Callable, on_rise: OnRise) -> Step:
    """Counts and rates only: a filed event adds 1 at the positions whose where holds
    (``tests``, ``uncond``: positions as ``(p, p + 1)``, in totals and in a bucket row).
    ``nested``: see :func:`nested_where` (two wheres, one extending the other)."""
    groups = ws.groups
    get = groups.get
    k1, k2 = key_of if isinstance(key_of, tuple) else (None, None)
    width = ws.width
    admit = ws.admit
    sweep = ws.sweep
    zeros = [0] * ws.size
    all_positions = tuple((p, p + 1) for p in range(ws.size))
    miss = uncond if always else None  # positions taken when no where holds
    n_tests = len(tests)
    w0 = tests[0][0] if tests else None
    w1 = tests[1][0] if n_tests > 1 else None
    # the positions an event takes, by which of the first two wheres hold (bit 0, bit 1)
    table = [miss, tests[0][1] + uncond if tests else None, None, None]
    if n_tests > 1:
        table[2] = tests[1][1] + uncond
        table[3] = tests[0][1] + tests[1][1] + uncond

    def classify(c: Any) -> tuple | None:  # three or more distinct wheres
        hit = [p for w, ps in tests if w(c) for p in ps]
        return tuple(hit) + uncond if hit else miss

    rest = w_outer = outer_only = None
    if nested is not None:
        outer, rest = nested
        w_outer, outer_only = tests[outer][0], table[1 << outer]
        n_tests = -2 if w_outer is ENDED_GETTER else -1

    def step(c: Any) -> None:
        if n_tests == -2:  # as -1, the outer where being `ended`, read inline
            positions = (table[3] if rest(c) else outer_only) if c.ended is not None else miss
        elif n_tests == -1:  # the inner where holds when the outer one and `rest` do
            positions = (table[3] if rest(c) else outer_only) if w_outer(c) else miss
        elif n_tests == 1:
            positions = table[1] if w0(c) else miss
        elif n_tests == 2:
            positions = table[(1 if w0(c) else 0) + (2 if w1(c) else 0)]
        elif n_tests:
            positions = classify(c)
        else:
            positions = uncond
        if positions is None:
            return
        b = c.ev.time // width
        if k1 is None:
            key = key_of(c)
        elif k2 is None:
            key = ((ev := c.ev)[_PID], ev[k1])
        else:
            key = ((ev := c.ev)[_PID], ev[k1], ev[k2])
        g = get(key)
        if g is None or g.last < b - _MAX_AGE:
            g = admit(key, b, g)
            if g is None:
                return
        totals = g.totals
        buckets = g.buckets
        if buckets:
            low = b - _MAX_AGE
            while buckets and buckets[0][0] < low:
                row = buckets.popleft()
                for p, q in all_positions:
                    totals[p] -= row[q]
        if b > g.last:
            g.last = b
        if buckets and buckets[-1][0] >= b:
            row = buckets[-1]
        else:
            row = [b, *zeros]
            buckets.append(row)
        for p, q in positions:
            row[q] += 1
            totals[p] += 1
        n = ws._adds = ws._adds + 1
        if not n % SWEEP_EVERY:
            sweep(b)
        c.win = totals
        if when(c):
            if not g.active:
                g.active = True
                on_rise(c, g, key)
        elif g.active:
            g.active = False

    return step


def _general(ws: WindowState, tests: list, uncond: tuple, always: bool, key_of: Callable, when: Callable,
             on_rise: OnRise) -> Step:
    groups = ws.groups
    get = groups.get
    k1, k2 = key_of if isinstance(key_of, tuple) else (None, None)
    width = ws.width
    admit = ws.admit
    sweep = ws.sweep
    size = ws.size
    additive = tuple(ws.additive)
    extrema = tuple(ws.extrema)
    static_hit = [uncond] if uncond else []

    def step(c: Any) -> None:
        if tests:
            hit = [items for w, items in tests if w(c)]
            if not hit and not always:
                return
            if uncond:
                hit.append(uncond)
        else:
            hit = static_hit
        b = c.ev.time // width
        if k1 is None:
            key = key_of(c)
        elif k2 is None:
            key = ((ev := c.ev)[_PID], ev[k1])
        else:
            key = ((ev := c.ev)[_PID], ev[k1], ev[k2])
        g = get(key)
        if g is None or g.last < b - _MAX_AGE:
            g = admit(key, b, g)
            if g is None:
                return
        totals = g.totals
        buckets = g.buckets
        low = b - _MAX_AGE
        if buckets and buckets[0][0] < low:
            while buckets and buckets[0][0] < low:
                row = buckets.popleft()
                for p in additive:
                    totals[p] -= row[p + 1]
        for p in extrema:
            dq = totals[p]
            while dq and dq[0][0] < low:
                dq.popleft()
        if b > g.last:
            g.last = b
        row = buckets[-1] if buckets and buckets[-1][0] >= b else None
        for items in hit:
            for p, op, value, vi in items:
                if op == _COUNT:
                    amount = 1
                else:
                    amount = c.ev[vi] if vi is not None else value(c)
                    if op >= _MIN:  # a monotonic deque: its head is the window's min (max)
                        dq = totals[p]
                        if op == _MIN:
                            while dq and dq[-1][1] >= amount:
                                dq.pop()
                        else:
                            while dq and dq[-1][1] <= amount:
                                dq.pop()
                        dq.append((b, amount))
                        continue
                if row is None:
                    row = [b] + [0] * size
                    buckets.append(row)
                row[p + 1] += amount
                totals[p] += amount
                if op == _AVG:
                    row[p + 2] += 1
                    totals[p + 1] += 1
        n = ws._adds = ws._adds + 1
        if not n % SWEEP_EVERY:
            sweep(b)
        c.win = totals
        if when(c):
            if not g.active:
                g.active = True
                on_rise(c, g, key)
        elif g.active:
            g.active = False

    return step


from heaplint.rules.windowgen import generate_step  # noqa: E402 - it imports this module's tables
