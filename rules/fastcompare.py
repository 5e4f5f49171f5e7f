"""Comparisons with a constant that read their operand in place (part of the compiler).

A comparison ``FIELD OP CONSTANT`` compiled naively is two calls per
evaluation: the comparison's closure and the field's getter.  For the
operands below the comparison reads the value itself, in one closure:

* plain event fields (:data:`EVENT_ITEMS`): item ``i`` of the HeapEvent;
* window aggregates: ``count``/``sum`` (``ctx.win[p]``), ``rate``
  (``ctx.win[p]`` times the rule's events-per-second factor), ``avg`` and a
  share of two counts (``ctx.win[p] / ctx.win[q]``, 0 when the divisor is 0);
* fields of the block an event ended (:data:`ENDED_ITEMS`, and ``lifetime``),
  0 (None for ``ended_stack``) when the event ended no block, exactly as the
  registry's getters give them.

Each builder returns the same values as ``operator.<op>(getter(ctx), v)``;
tests/test_rules_fastcompare.py checks that against the getters.
"""

from __future__ import annotations

from typing import Any, Callable

from heaplint.engine.blocks import Block
from heaplint.engine.events import HeapEvent
from heaplint.rules import registry as R

Fn = Callable[[Any], Any]

#: event fields whose registry getter is ``c.ev.<attribute>``, by the item
#: index of that attribute in the HeapEvent tuple: a comparison with a
#: constant reads ``c.ev[i]`` itself instead of calling the getter
#: (tests/test_rules_windows.py checks the table against the registry)
EVENT_ITEMS = {name: HeapEvent._fields.index(attr) for name, attr in (
    ("kind", "kind"), ("time", "time"), ("index", "index"), ("pid", "pid"), ("tid", "tid"), ("heap", "heap"),
    ("address", "address"), ("size", "size"), ("old_address", "old_address"), ("source", "source"),
    ("stack", "stack"), ("flags", "flags"), ("new_address", "address"), ("new_size", "size"))}

#: event fields that are an item of the ended block (``ctx.ended``), with the
#: value the registry gives when the event ended none
ENDED_ITEMS = {"ended_size": (Block._fields.index("size"), 0), "ended_moves": (Block._fields.index("moves"), 0),
               "ended_copied": (Block._fields.index("copied"), 0),
               "ended_stack": (Block._fields.index("stack"), None)}
#: the ``ended`` field's getter (``ctx.ended is not None``): an and-chain that
#: starts with it tests it inline (see :func:`ended_and`)
ENDED_GETTER = R.FIELDS["ended"].getter(R.EVENT)
_TIME = HeapEvent._fields.index("time")
_BLOCK_TIME = Block._fields.index("time")


def compare_const(op: Callable[[Any, Any], Any], sym: str, a: Any, v: Any, event_getter: Fn | None) -> Fn | None:
    """The one-closure form of ``a SYM v`` (``a`` a Compiled, ``v`` the
    constant), or None when ``a`` is not one of the operands above.
    ``event_getter``: the registry's event-scope getter of the field ``a``
    names (``a`` reads an ended-block field only when it is that getter)."""
    if a.ev_index is not None:
        return _item(op, sym, a.ev_index, v)
    if a.win is not None:
        shape = a.win
        if shape[0] == "total":
            return _win_total(op, sym, shape[1], v)
        if shape[0] == "rate":
            return _win_rate(op, sym, shape[1], shape[2], v)
        return _win_share(op, sym, shape[1], shape[2], v)  # "share" (avg is a share of sum and count)
    if event_getter is not None and a.fn is event_getter:
        if a.ref in ENDED_ITEMS:
            i, missing = ENDED_ITEMS[a.ref]
            return _ended_item(op, sym, i, missing, v)
        if a.ref == "lifetime":
            return _lifetime(op, sym, v)
    return None


def _item(op, sym: str, i: int, v: Any) -> Fn:
    """An event field (item ``i`` of the HeapEvent) compared with a constant."""
    if sym == "==":
        return lambda c: c.ev[i] == v
    if sym == "!=":
        return lambda c: c.ev[i] != v
    if sym == ">":
        return lambda c: c.ev[i] > v
    if sym == ">=":
        return lambda c: c.ev[i] >= v
    if sym == "<":
        return lambda c: c.ev[i] < v
    return lambda c: op(c.ev[i], v)


def _win_total(op, sym: str, p: int, v: Any) -> Fn:
    """A window count() or sum() compared with a constant."""
    if sym == ">":
        return lambda c: c.win[p] > v
    if sym == ">=":
        return lambda c: c.win[p] >= v
    if sym == "<":
        return lambda c: c.win[p] < v
    return lambda c: op(c.win[p], v)


def _win_rate(op, sym: str, p: int, cell: list, v: Any) -> Fn:
    """A window rate(): its count times the factor the rule's ``over`` set."""
    if sym == ">":
        return lambda c: c.win[p] * cell[0] > v
    if sym == ">=":
        return lambda c: c.win[p] * cell[0] >= v
    if sym == "<":
        return lambda c: c.win[p] * cell[0] < v
    return lambda c: op(c.win[p] * cell[0], v)


def _win_share(op, sym: str, p: int, q: int, v: Any) -> Fn:
    """``win[p] / win[q]`` (0 when ``win[q]`` is 0) compared with a constant."""
    if sym == ">=":
        return lambda c: ((w[p] / d) if (d := (w := c.win)[q]) else 0) >= v
    if sym == ">":
        return lambda c: ((w[p] / d) if (d := (w := c.win)[q]) else 0) > v
    if sym == "<":
        return lambda c: ((w[p] / d) if (d := (w := c.win)[q]) else 0) < v
    return lambda c: op((w[p] / d) if (d := (w := c.win)[q]) else 0, v)


def _ended_item(op, sym: str, i: int, missing: Any, v: Any) -> Fn:
    """Item ``i`` of the ended block (``missing`` when the event ended none)."""
    if sym == ">=":
        return lambda c: (e[i] if (e := c.ended) is not None else missing) >= v
    if sym == "<":
        return lambda c: (e[i] if (e := c.ended) is not None else missing) < v
    if sym == ">":
        return lambda c: (e[i] if (e := c.ended) is not None else missing) > v
    return lambda c: op(e[i] if (e := c.ended) is not None else missing, v)


def _lifetime(op, sym: str, v: Any) -> Fn:
    """Age of the ended block at the event (0 when the event ended none)."""
    t, bt = _TIME, _BLOCK_TIME
    if sym == "<=":
        return lambda c: ((c.ev[t] - e[bt]) if (e := c.ended) is not None else 0) <= v
    if sym == "<":
        return lambda c: ((c.ev[t] - e[bt]) if (e := c.ended) is not None else 0) < v
    if sym == ">=":
        return lambda c: ((c.ev[t] - e[bt]) if (e := c.ended) is not None else 0) >= v
    return lambda c: op((c.ev[t] - e[bt]) if (e := c.ended) is not None else 0, v)


def ended_and(rest: tuple) -> Fn:
    """``ended and rest[0] and ...`` (1 to 3 more terms) with ``ended`` read
    inline: the guard most rules about frees start with."""
    if len(rest) == 1:
        (f1,) = rest
        return lambda c: c.ended is not None and f1(c)
    if len(rest) == 2:
        f1, f2 = rest
        return lambda c: c.ended is not None and f1(c) and f2(c)
    f1, f2, f3 = rest
    return lambda c: c.ended is not None and f1(c) and f2(c) and f3(c)
