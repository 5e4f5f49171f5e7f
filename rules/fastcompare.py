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
from heaplint.rules.inline import chain_src, src_fn

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


_FAST_SYMS = ("==", "!=", "<", "<=", ">", ">=")


def _cmp(op, sym: str, operand: str, consts: tuple, v: Any) -> Fn:
    """``OPERAND SYM v`` as a source-carrying closure (rules/inline.py);
    ``operand`` is a template over ``consts``.  Operators without a symbol
    of their own call ``op``."""
    n = len(consts)
    if sym in _FAST_SYMS:
        return src_fn(f"{operand} {sym} {{{n}}}", *consts, v)
    return src_fn(f"{{{n}}}({operand}, {{{n + 1}}})", *consts, op, v)


def compare_operand(op, sym: str, fa: Fn, v: Any) -> Fn:
    """``fa(c) SYM v`` for any operand closure: its source pasted in when it
    carries one (rules/inline.py), else a call."""
    src = getattr(fa, "src", None)
    if src is not None:
        return _cmp(op, sym, f"({src[0]})", src[1], v)
    return _cmp(op, sym, "{0}(c)", (fa,), v)


def _item(op, sym: str, i: int, v: Any) -> Fn:
    """An event field (item ``i`` of the HeapEvent) compared with a constant."""
    return _cmp(op, sym, "c.ev[{0}]", (i,), v)


def _win_total(op, sym: str, p: int, v: Any) -> Fn:
    """A window count() or sum() compared with a constant."""
    return _cmp(op, sym, "c.win[{0}]", (p,), v)


def _win_rate(op, sym: str, p: int, cell: list, v: Any) -> Fn:
    """A window rate(): its count times the factor the rule's ``over`` set."""
    return _cmp(op, sym, "c.win[{0}] * {1}[0]", (p, cell), v)


def _win_share(op, sym: str, p: int, q: int, v: Any) -> Fn:
    """``win[p] / win[q]`` (0 when ``win[q]`` is 0) compared with a constant."""
    return _cmp(op, sym, "((w[{0}] / d) if (d := (w := c.win)[{1}]) else 0)", (p, q), v)


def _ended_item(op, sym: str, i: int, missing: Any, v: Any) -> Fn:
    """Item ``i`` of the ended block (``missing`` when the event ended none)."""
    return _cmp(op, sym, "(e[{0}] if (e := c.ended) is not None else {1})", (i, missing), v)


def _lifetime(op, sym: str, v: Any) -> Fn:
    """Age of the ended block at the event (0 when the event ended none)."""
    return _cmp(op, sym, "((c.ev[{0}] - e[{1}]) if (e := c.ended) is not None else 0)", (_TIME, _BLOCK_TIME), v)


def ended_and(rest: tuple) -> Fn:
    """``ended and rest[0] and ...`` with ``ended`` read inline: the guard
    most rules about frees start with."""
    return chain_src("and", (ENDED_GETTER, *rest))
