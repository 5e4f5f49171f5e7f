"""The runtime's plan fused into one generated function per run.

:class:`heaplint.rules.runtime.RuleRun` holds a *plan*: for each event kind,
the ``(predicate, action)`` pairs of the rules that can match it.  Walked
pair by pair, every rule costs a loop step and a call of its predicate even
when the predicate is a single comparison.  :func:`fused_hook` writes the
plan out as the source of one ``on_event`` function instead: a branch per
event kind, in it each rule in plan order, its predicate pasted in when its
closure carries its source (rules/inline.py), the bodies of generated window
steps pasted in (rules/windowgen.py; other steps are called, their action
never runs).  Events with anomalies then walk the anomaly plan
as before.  tests/test_rules_fusedplan.py compares it with the loop.
"""

from __future__ import annotations

from typing import Any, Callable

from heaplint.engine.events import HeapEvent, Kind
from heaplint.rules.inline import Inliner
from heaplint.rules.windowstep import _never

_KIND = HeapEvent._fields.index("kind")
#: the branches' order: the commonest kinds first (it changes nothing else)
_ORDER = [int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)]
_EV = (("c.ev[", "ev["),)
#: kinds whose rules read the ended block keep it in a local too
_EV_ENDED = (("c.ev[", "ev["), ("c.ended", "ended"))


def always(c: Any) -> bool:
    """The predicate of a rule whose condition is true for a kind."""
    return True


def fused_hook(c: Any, plan: list, reads_ended: list, aplan: dict) -> Callable[[HeapEvent, Any], None]:
    """``on_event(ev, anomalies)`` for the replay, evaluating ``plan``
    (per kind), then ``aplan`` (per anomaly kind) with context ``c``."""
    inl = Inliner()
    state = inl.name(c.state, "state")
    lines = ["def on_event(ev, anomalies, c=_c):", "    c.ev = ev", "    c.anomalies = anomalies"]
    inl.ns["_c"] = c
    kinds = [k for k in _ORDER + [k for k in range(len(plan)) if k not in _ORDER] if plan[k]]
    if kinds:
        lines.append(f"    kind = ev[{_KIND}]")
    for n, k in enumerate(kinds):
        lines.append(f"    {'if' if n == 0 else 'elif'} kind == {k}:")
        local = _EV
        if reads_ended[k]:  # a property (it may decode the block): read once, when needed
            lines.append(f"        ended = c.ended = {state}.ended")
            local = _EV_ENDED
        for pred, act in plan[k]:
            if act is _never:  # a window step: it returns None
                emit = getattr(pred, "emit", None)  # a generated step pastes its body (rules/windowgen.py)
                if emit is not None:
                    lines += emit(inl, "    ", local[1:])
                else:
                    lines.append(f"        {inl.name(pred, 'step')}(c)")
            elif pred is always:
                lines.append(f"        {inl.name(act, 'act')}(c)")
            else:
                lines += [f"        if {inl.expr(pred, local)}:", f"            {inl.name(act, 'act')}(c)"]
    if aplan:
        lines += ["    if anomalies:", f"        {inl.name(anomaly_walk(c, aplan), 'anomalies')}(anomalies)"]
    return inl.compile("\n".join(lines) + "\n", "on_event")


def anomaly_walk(c: Any, aplan: dict) -> Callable[[Any], None]:
    """``walk(anomalies)``: the rules of ``aplan`` (per anomaly kind) on each
    anomaly of one event, with context ``c`` (the generated hook and the
    reference loop share it)."""
    state = c.state

    def walk(anomalies: Any) -> None:
        c.ended = state.ended
        for a in anomalies:
            pairs = aplan.get(a.kind)
            if pairs:
                c.anom = a
                for pred, act in pairs:
                    if pred(c):
                        act(c)

    return walk
