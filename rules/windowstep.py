"""The per-event steps of window rules (built by
:meth:`heaplint.rules.windows.WindowState.make_step`).

One step per rule and event kind files the event in its group, expires the
buckets that left the window, leaves the group's totals in ``ctx.win`` (the
aggregates' compiled readers index them in place) and evaluates the rule's
condition.  The steps that run are generated per rule and kind
(rules/windowgen.py: bookkeeping inlined, aggregates unrolled, wheres shared
and nested).  The closure here, :func:`_general`, is the plain reference
they are compared with (tests/test_rules_windowgen.py); both are checked
against a naive list model (tests/test_rules_windows.py).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from heaplint.rules import registry as R
from heaplint.engine.events import HeapEvent
from heaplint.rules.fastcompare import EVENT_ITEMS
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
    one kind: ``(step, never)`` (a step returns None).  None when no event of that kind can be filed (every ``where``
    is false for it).  ``key_items``: when the group key is ``(pid, ev[i])`` or
    ``(pid, ev[i], ev[j])``, ``(i,)`` or ``(i, j)``: the steps build it without calling ``key_of``."""
    if GENERATED:
        return generate_step(ws, aggs, key_of, when, on_rise, key_items)
    filing = classify(ws, aggs)
    if filing is None:
        return None
    always, uncond, conds = filing
    tests = [(w, tuple(_item(a) for a in items)) for w, items, _ in conds.values()]
    key_of = _inline_key(key_of, key_items)
    return _general(ws, tests, tuple(_item(a) for a in uncond), always, key_of, when, on_rise), _never


def classify(ws: WindowState, aggs: Sequence[Any]) -> tuple[bool, list, dict] | None:
    """Sort one kind's aggregates for filing: ``(always, uncond, conds)``,
    ``always`` when every event of the kind is filed, ``uncond`` the
    aggregates that take every filed event, ``conds`` where text -> (test,
    its aggregates, its and-terms).  None when no event of the kind can be
    filed (every ``where`` is false for it).  Sets the rates' window first."""
    set_rate(aggs, ws.over)
    always = ws.file_all  # no where at all: every event is filed
    uncond: list[Any] = []
    conds: dict[str, tuple[Callable, list[Any], tuple]] = {}
    for a in aggs:
        if a.where is None:
            uncond.append(a)
        elif a.where_const is True:
            always = True
            uncond.append(a)
        elif a.where_const is None:
            conds.setdefault(a.where_text, (a.where, [], a.where_terms))[1].append(a)
    if not always and not conds:
        return None
    return always, uncond, conds


def _item(a: Any) -> tuple:
    """An aggregate as the reference step reads it: (position, op, value, event item)."""
    return (a.pos, _OPS[a.name], a.value, _item_of(a.value))


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
