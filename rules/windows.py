"""Sliding windows in trace time with bounded per-group state.

A window rule keeps one :class:`Group` per group key (the ``by`` fields, always
within one process).  A group stores its window as at most :data:`BUCKETS`
time buckets of width ``over / BUCKETS``: an event is counted while it is
less than ``over`` old, to within one bucket (1/256 of the window).  So a
group's memory is bounded whatever the event rate, and each event costs O(1)
amortised: additive aggregates (count, sum, avg, rate) keep running totals,
min/max keep monotonic deques.

Groups idle for a whole window are evicted (their totals are zero anyway);
at most ``max_groups`` live at once, and events that would need a new group
beyond the cap are counted and reported as a trace note.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Sequence

BUCKETS = 256
SWEEP_EVERY = 4096

_ADDITIVE = ("count", "sum", "rate", "avg")
_ONE_HIT = (True,)


class Group:
    """The window of one group key."""

    __slots__ = ("buckets", "totals", "extrema", "last", "active")

    def __init__(self, n_totals: int, n_extrema: int) -> None:
        self.buckets: deque[list] = deque()  # [bucket index, contributions...]
        self.totals = [0] * n_totals
        self.extrema: list[deque] = [deque() for _ in range(n_extrema)]
        self.last = 0  # bucket index of the newest event
        self.active = False  # the condition held at the previous event of the group


class WindowState:
    """Bounded sliding-window aggregation for one rule.

    ``aggs`` are the rule's :class:`~heaplint.rules.compiler.AggSpec` values.
    :meth:`add` files one event and returns the group with its current
    aggregate values, or None when the event is no window event (no
    ``where`` holds) or the group cap is hit.
    """

    def __init__(self, aggs: Sequence[Any], over: int, max_groups: int) -> None:
        self.over = over
        self.width = max(1, over // BUCKETS)
        self.max_groups = max_groups
        self.groups: dict[tuple, Group] = {}
        self.dropped = 0  # events that found the group table full
        self.peak_groups = 0
        self._adds = 0
        # per aggregate: (kind, total slot or extremum slot)
        self.layout: list[tuple[str, int]] = []
        n_tot = n_ext = 0
        for spec in aggs:
            if spec.name in _ADDITIVE:
                self.layout.append((spec.name, n_tot))
                n_tot += 2 if spec.name == "avg" else 1
            else:
                self.layout.append((spec.name, n_ext))
                n_ext += 1
        self.n_totals, self.n_extrema = n_tot, n_ext
        self.wheres: list[Callable | None] = [s.where for s in aggs]
        self.values_of: list[Callable | None] = [s.value for s in aggs]
        self.any_where = any(w is not None for w in self.wheres)
        self.rate_factor = 1_000_000_000 / over
        #: the commonest shape, one count(where ...), takes a leaner path
        self._single_count = len(aggs) == 1 and self.layout[0][0] in ("count", "rate")

    def add(self, ctx: Any, key_of: Callable[[Any], tuple], time: int) -> tuple[Group, tuple] | None:
        """File the event in ``ctx`` under the group ``key_of(ctx)`` names
        (computed only for window events); return the group and its key, or
        None (see the class docstring)."""
        if self._single_count:
            where = self.wheres[0]
            if where is not None and not where(ctx):
                return None
            hits = _ONE_HIT
        else:
            hits = [w(ctx) if w is not None else None for w in self.wheres]
            if self.any_where and not any(hits):
                return None
        key = key_of(ctx)
        groups = self.groups
        g = groups.get(key)
        b = time // self.width
        if g is None:
            if len(groups) >= self.max_groups:
                self.sweep(b)
                if len(groups) >= self.max_groups:
                    self.dropped += 1
                    return None
            g = groups[key] = Group(self.n_totals, self.n_extrema)
            if len(groups) > self.peak_groups:
                self.peak_groups = len(groups)
        elif g.last < b - BUCKETS + 1:
            # idle for a whole window: start afresh, exactly as if a sweep had
            # evicted it, so that results never depend on when sweeps run
            # (every SWEEP_EVERY events of this rule, a count that differs
            # between a whole replay and a parallel partition)
            g = groups[key] = Group(self.n_totals, self.n_extrema)
        self._expire(g, b)
        if b > g.last:
            g.last = b
        row = None
        buckets = g.buckets
        if buckets and buckets[-1][0] >= b:
            row = buckets[-1]
        for (kind, slot), hit, value in zip(self.layout, hits, self.values_of):
            if hit is False:
                continue
            if kind == "count" or kind == "rate":
                amount = 1
            else:
                v = value(ctx)
                if kind in ("min", "max"):
                    dq = g.extrema[slot]
                    if kind == "min":
                        while dq and dq[-1][1] >= v:
                            dq.pop()
                    else:
                        while dq and dq[-1][1] <= v:
                            dq.pop()
                    dq.append((b, v))
                    continue
                amount = v
            if row is None:
                row = [b] + [0] * self.n_totals
                buckets.append(row)
            row[1 + slot] += amount
            g.totals[slot] += amount
            if kind == "avg":
                row[2 + slot] += 1
                g.totals[slot + 1] += 1
        self._adds += 1
        if self._adds % SWEEP_EVERY == 0:
            self.sweep(b)
        return g, key

    def _expire(self, g: Group, b: int) -> None:
        low = b - BUCKETS + 1
        buckets = g.buckets
        totals = g.totals
        while buckets and buckets[0][0] < low:
            row = buckets.popleft()
            for i in range(len(totals)):
                totals[i] -= row[i + 1]
        for dq in g.extrema:
            while dq and dq[0][0] < low:
                dq.popleft()

    def values(self, g: Group) -> list:
        """Current aggregate values of a group, in the rule's slot order."""
        out = []
        totals = g.totals
        for kind, slot in self.layout:
            if kind == "count" or kind == "sum":
                out.append(totals[slot])
            elif kind == "rate":
                out.append(totals[slot] * self.rate_factor)
            elif kind == "avg":
                n = totals[slot + 1]
                out.append(totals[slot] / n if n else 0)
            else:
                dq = g.extrema[slot]
                out.append(dq[0][1] if dq else 0)
        return out

    def sweep(self, b: int) -> None:
        """Evict groups whose newest event left the window."""
        low = b - BUCKETS + 1
        stale = [k for k, g in self.groups.items() if g.last < low]
        for k in stale:
            del self.groups[k]


class BlockGroups:
    """Aggregation over live blocks at the end (no time window), per group."""

    def __init__(self, aggs: Sequence[Any]) -> None:
        self.kinds = [s.name for s in aggs]
        self.wheres = [s.where for s in aggs]
        self.values_of = [s.value for s in aggs]
        self.any_where = any(w is not None for w in self.wheres)
        self.groups: dict[tuple, list] = {}  # key -> [acc per agg..., block sample list]

    def add(self, ctx: Any, key: tuple) -> list | None:
        hits = [w(ctx) if w is not None else None for w in self.wheres]
        if self.any_where and not any(hits):
            return None
        acc = self.groups.get(key)
        if acc is None:
            acc = self.groups[key] = [[0, 0] if k == "avg" else (None if k in ("min", "max") else 0)
                                      for k in self.kinds] + [[]]
        for i, (kind, hit, value) in enumerate(zip(self.kinds, hits, self.values_of)):
            if hit is False:
                continue
            if kind == "count":
                acc[i] += 1
                continue
            v = value(ctx)
            if kind == "sum":
                acc[i] += v
            elif kind == "avg":
                acc[i][0] += v
                acc[i][1] += 1
            elif kind == "min":
                acc[i] = v if acc[i] is None or v < acc[i] else acc[i]
            else:
                acc[i] = v if acc[i] is None or v > acc[i] else acc[i]
        return acc

    def values(self, acc: list) -> list:
        out = []
        for kind, a in zip(self.kinds, acc):
            if kind == "avg":
                out.append(a[0] / a[1] if a[1] else 0)
            else:
                out.append(a if a is not None else 0)
        return out
