"""Generated per-event steps of window rules (the steps that run; windowstep.py keeps the reference).

:func:`generate_step` writes the Python source of one function per rule and
event kind that does what the reference closure of rules/windowstep.py does (file the
event, expire buckets, update the totals, evaluate the condition, report a
rise), with everything that is known when the rule is compiled written into
the code: the aggregates' positions and operations unrolled, the group key
built from the event's items (or its site) in place, and the ``where`` and
``when`` conditions pasted in when their closures carry their source
(rules/inline.py).  On a steady trace nearly every filed event opens a bucket
and expires one, so what is left per event is that bookkeeping, without the
calls and loops around it.

The results are those of the reference: tests/test_rules_windowgen.py runs
both on random events and rules, tests/test_rules_windows.py checks them
against a list model.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from heaplint.engine.events import HeapEvent
from heaplint.rules import registry as R
from heaplint.rules.inline import Inliner
from heaplint.rules.windows import _MAX_AGE, SWEEP_EVERY, WindowState
from heaplint.rules.windowstep import _GETTER_ITEMS, _never, classify, nested_where

_PID = HeapEvent._fields.index("pid")
_TIME = HeapEvent._fields.index("time")
#: what pasted conditions read, and the step's locals that hold it
_EV = (("c.ev[", "ev["),)
_EV_WIN = (("c.ev[", "ev["), ("c.win", "totals"))


def generate_step(ws: WindowState, aggs: Sequence[Any], key_of: Callable, when: Callable, on_rise: Callable,
                  key_items: tuple | None = None) -> tuple[Callable, Callable] | None:
    """The ``(step, never)`` pair for events of one kind, as
    :func:`heaplint.rules.windowstep.build_step` (None when no event of the
    kind can be filed)."""
    filing = classify(ws, aggs)
    if filing is None:
        return None
    always, uncond, conds = filing
    tests = [(w, items) for w, items, _ in conds.values()]
    nested = nested_where([terms for _, _, terms in conds.values()])

    def emit(inl: Inliner, pad: str | None, local: tuple = ()) -> list[str]:
        """The step's lines: a function (``pad`` None) or, indented by
        ``pad``, a body to paste where ``c`` and ``ev`` are set (and the
        locals of ``local``, ``(text, name)`` pairs as Inliner.expr takes)."""
        gen = _Gen(ws, key_of, key_items, inl, pad, local)
        gen.filing(tests, always, nested)
        gen.group()
        gen.expire()
        gen.updates(uncond, tests)
        gen.finish(when, on_rise)
        return gen.lines

    inl = Inliner()
    source = "\n".join(emit(inl, None)) + "\n"
    step = inl.compile(source, "step")
    step.source = source  # for tests and debugging
    step.emit = emit  # the fused plan pastes the body (rules/fusedplan.py)
    return step, _never


class _Gen:
    """The source of one step, line by line."""

    def __init__(self, ws: WindowState, key_of: Callable, key_items: tuple | None, inl: Inliner,
                 pad: str | None, local: tuple = ()) -> None:
        self.ws = ws
        self.ev_local = _EV + local
        self.win_local = _EV_WIN + local
        self.ended = dict(local).get("c.ended", "c.ended")  # how the code reads ctx.ended
        self.inl = inl
        #: a function returns where the step ends early; a pasted body nests
        #: the rest under the opposite test instead, one level deeper each time
        self.function = pad is None
        self.pad = "" if pad is None else pad
        self.lines: list[str] = ["def step(c):", "    ev = c.ev"] if pad is None else []
        self.key_of = key_of
        self.key_items = key_items if key_items is not None and len(key_items) <= 2 else None
        self.additive = list(ws.additive)
        self.extrema = list(ws.extrema)
        self.size = ws.size
        self.sure: int | None = None  # the where that every filed event passes

    def add(self, *lines: str) -> None:
        self.lines.extend(self.pad + line for line in lines)

    def go_on_if(self, test: str) -> None:
        """The rest runs only when ``test`` holds."""
        if self.function:
            self.add(f"    if not ({test}):", "        return")
        else:
            self.add(f"    if {test}:")
            self.pad += "    "

    # --- the parts, in the order they run -----------------------------------------------
    def filing(self, conds: list, always: bool, nested: tuple | None) -> None:
        """Evaluate each distinct where once (``h0``, ``h1``...); return when
        none holds.  ``nested``: two wheres, one the other plus more terms
        (windowstep.nested_where): the longer one tests only those terms."""
        if nested is not None:
            outer, rest = nested
            inner = 1 - outer
            self.add(f"    h{outer} = {self.inl.expr(conds[outer][0], self.ev_local)}")
            if not always:
                self.go_on_if(f"h{outer}")
            self.add(f"    h{inner} = h{outer} and {self.inl.expr(rest, self.ev_local)}")
            self.sure = None if always else outer
            return
        for i, (test, _) in enumerate(conds):
            self.add(f"    h{i} = {self.inl.expr(test, self.ev_local)}")
        # one where and no event filed without it: whoever gets past the test takes it
        self.sure = 0 if not always and len(conds) == 1 else None
        if not always:
            self.go_on_if(" or ".join(f"h{i}" for i in range(len(conds))))

    def group(self) -> None:
        """The bucket, the key and the group (admitted when new or idle for a whole window)."""
        n = self.inl.name
        self.add(f"    b = ev[{_TIME}] // {self.ws.width}")
        items = self.key_items
        if items is not None:
            key = ", ".join(f"ev[{i}]" for i in (_PID, *items))
            self.add(f"    key = ({key})")
        elif self.key_of is R.site_key:  # (pid, site) as registry.site_key builds it
            self.add(f"    blk = {self.ended}",
                     "    if blk is None:",
                     "        blk = ev",
                     "    stk = blk.stack",
                     f"    site_ = {n(R._STACK_SITES.get, 'sites')}(stk) if stk is not None else None",
                     "    if site_ is None:",
                     f"        site_ = {n(R.site, 'site')}(stk, blk.size)",
                     f"    key = (ev[{_PID}], site_)")
        else:
            self.add(f"    key = {n(self.key_of, 'key')}(c)")
        self.add(f"    g = {n(self.ws.groups.get, 'get')}(key)",
                 f"    if g is None or g.last < b - {_MAX_AGE}:",
                 f"        g = {n(self.ws.admit, 'admit')}(key, b, g)")
        if self.function:
            self.add("        if g is None:",
                     "            return")
        else:
            self.go_on_if("g is not None")
        self.add("    totals = g.totals")

    def expire(self) -> None:
        """Drop the buckets (and extrema) that left the window."""
        self.add(f"    low = b - {_MAX_AGE}")
        if self.additive:
            self.add("    buckets = g.buckets",
                     "    while buckets and buckets[0][0] < low:",
                     "        row = buckets.popleft()")
            self.add(*(f"        totals[{p}] -= row[{p + 1}]" for p in self.additive))
        for p in self.extrema:
            self.add(f"    dq = totals[{p}]",
                     "    while dq and dq[0][0] < low:",
                     "        dq.popleft()")
        self.add("    if b > g.last:",
                 "        g.last = b")

    def updates(self, uncond: list, conds: list) -> None:
        """Each aggregate takes the event (under its where's ``h``).  The
        bucket row is made when an aggregate needs it, at once when every
        filed event has one that does (a row of zeros would do no harm)."""
        first = uncond or (conds[self.sure][1] if self.sure is not None else [])
        eager = any(a.name not in ("min", "max") for a in first)
        if eager:
            zeros = ", ".join("0" for _ in range(self.size))
            self.add("    if buckets and buckets[-1][0] >= b:",
                     "        row = buckets[-1]",
                     "    else:",
                     f"        row = [b, {zeros}]",
                     "        buckets.append(row)")
        elif self.additive:
            self.add("    row = buckets[-1] if buckets and buckets[-1][0] >= b else None")
        if uncond:
            self._take(uncond, "    ", eager)
        for i, (_, items) in enumerate(conds):
            if i == self.sure:
                self._take(items, "    ", eager)
            else:
                self.add(f"    if h{i}:")
                self._take(items, "        ", eager)

    def _take(self, aggs: list, ind: str, eager: bool) -> None:
        if not eager and any(a.name not in ("min", "max") for a in aggs):
            zeros = ", ".join("0" for _ in range(self.size))
            self.add(f"{ind}if row is None:",
                     f"{ind}    row = [b, {zeros}]",
                     f"{ind}    buckets.append(row)")
        for a in aggs:
            p = a.pos
            if a.name in ("count", "rate"):
                self.add(f"{ind}row[{p + 1}] += 1", f"{ind}totals[{p}] += 1")
                continue
            self.add(f"{ind}v = {self._value(a.value)}")
            if a.name in ("sum", "avg"):
                self.add(f"{ind}row[{p + 1}] += v", f"{ind}totals[{p}] += v")
                if a.name == "avg":
                    self.add(f"{ind}row[{p + 2}] += 1", f"{ind}totals[{p + 1}] += 1")
                continue
            # min, max: a monotonic deque whose head is the window's extreme
            drop = ">=" if a.name == "min" else "<="
            self.add(f"{ind}dq = totals[{p}]",
                     f"{ind}while dq and dq[-1][1] {drop} v:",
                     f"{ind}    dq.pop()",
                     f"{ind}dq.append((b, v))")

    def _value(self, value: Callable) -> str:
        vi = _GETTER_ITEMS.get(value)
        return f"ev[{vi}]" if vi is not None else self.inl.expr(value, self.ev_local)

    def finish(self, when: Callable, on_rise: Callable) -> None:
        """Count the filing (sweeping now and then), evaluate the condition, report a rise."""
        n = self.inl.name
        ws = n(self.ws, "ws")
        self.add(f"    n = {ws}._adds = {ws}._adds + 1",
                 f"    if not n % {SWEEP_EVERY}:",
                 f"        {n(self.ws.sweep, 'sweep')}(b)",
                 "    c.win = totals",
                 f"    if {self.inl.expr(when, self.win_local)}:",
                 "        if not g.active:",
                 "            g.active = True",
                 f"            {n(on_rise, 'rise')}(c, g, key)",
                 "    elif g.active:",
                 "        g.active = False")
