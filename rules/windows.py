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

#: a bucket this many behind the newest one is still inside the window
_MAX_AGE = BUCKETS - 1


class Group:
    """The window of one group key.

    ``totals`` has one position per additive aggregate (two for avg: sum and
    count) and one per min/max, which holds that aggregate's monotonic deque
    of ``(bucket, value)``; ``buckets`` holds ``[bucket index, contribution
    per position...]`` rows, oldest first."""

    __slots__ = ("buckets", "totals", "last", "active")

    def __init__(self, totals: list) -> None:
        self.buckets: deque[list] = deque()
        self.totals = totals
        self.last = 0  # bucket index of the newest event
        self.active = False  # the condition held at the previous event of the group


class WindowState:
    """Bounded sliding-window aggregation for one rule.

    ``aggs`` are the rule's :class:`~heaplint.rules.compiler.AggSpec` values.
    An event is filed when the rule has no ``where`` at all or when one of its
    ``where`` conditions holds; then every aggregate whose ``where`` holds (or
    that has none) takes it.  :meth:`make_step` builds the per-event closure
    for one event kind.
    """

    def __init__(self, aggs: Sequence[Any], over: int, max_groups: int) -> None:
        self.over = over
        self.width = max(1, over // BUCKETS)
        self.max_groups = max_groups
        self.groups: dict[tuple, Group] = {}
        self.dropped = 0  # events that found the group table full
        self.peak_groups = 0
        self._adds = 0
        self.aggs = list(aggs)
        self.rate_factor = 1_000_000_000 / over
        self.size = sum(2 if a.name == "avg" else 1 for a in aggs)
        self.additive = [p for a in aggs if a.name not in ("min", "max")
                         for p in ((a.pos, a.pos + 1) if a.name == "avg" else (a.pos,))]
        self.extrema = [a.pos for a in aggs if a.name in ("min", "max")]
        #: no aggregate has a where: every event of the rule's kinds is filed
        self.file_all = all(a.where is None for a in aggs)
        set_rate(aggs, over)

    # --- groups -----------------------------------------------------------------------
    def new_totals(self) -> list:
        totals: list = [0] * self.size
        for p in self.extrema:
            totals[p] = deque()
        return totals

    def admit(self, key: tuple, b: int, g: Group | None) -> Group | None:
        """The group for ``key`` when it is new or was idle for a whole window
        (``g``: the idle one), or None when the group cap is reached."""
        groups = self.groups
        if g is None:
            if len(groups) >= self.max_groups:
                self.sweep(b)
                if len(groups) >= self.max_groups:
                    self.dropped += 1
                    return None
            g = groups[key] = Group(self.new_totals())
            if len(groups) > self.peak_groups:
                self.peak_groups = len(groups)
            return g
        # idle for a whole window: start afresh, exactly as if a sweep had
        # evicted it, so that results never depend on when sweeps run
        # (every SWEEP_EVERY events of this rule, a count that differs
        # between a whole replay and a parallel partition)
        g = groups[key] = Group(self.new_totals())
        return g

    def expire(self, g: Group, b: int) -> None:
        """Drop the buckets that left the window at bucket ``b``."""
        low = b - _MAX_AGE
        buckets = g.buckets
        totals = g.totals
        if buckets and buckets[0][0] < low:
            additive = self.additive
            while buckets and buckets[0][0] < low:
                row = buckets.popleft()
                for p in additive:
                    totals[p] -= row[p + 1]
        for p in self.extrema:
            dq = totals[p]
            while dq and dq[0][0] < low:
                dq.popleft()

    def counted(self, b: int) -> None:
        """One more event filed (sweeps idle groups now and then)."""
        self._adds += 1
        if self._adds % SWEEP_EVERY == 0:
            self.sweep(b)

    def sweep(self, b: int) -> None:
        """Evict groups whose newest event left the window."""
        low = b - _MAX_AGE
        stale = [k for k, g in self.groups.items() if g.last < low]
        for k in stale:
            del self.groups[k]

    # --- the per-event closure -----------------------------------------------------------
    def make_step(self, aggs: Sequence[Any], key_of: Callable[[Any], tuple], when: Callable[[Any], Any],
                  on_rise: Callable[[Any, Group, tuple], None], key_items: tuple | None = None
                  ) -> tuple[Callable, Callable] | None:
        """The closures that file one event (of a kind for which ``aggs`` were
        compiled: same positions as the rule's, ``where`` possibly folded),
        set ``ctx.win`` to the group's totals, evaluate ``when`` and call
        ``on_rise(ctx, group, key)`` when it turns true: a ``(predicate,
        action)`` pair for the runtime's plan (see windowstep.build_step;
        ``key_items``: the event items of a key ``(pid, ev[i], ...)``)."""
        from heaplint.rules.windowstep import build_step

        return build_step(self, aggs, key_of, when, on_rise, key_items)


def set_rate(aggs: Sequence[Any], over: int) -> None:
    """Give the rate() readers of ``aggs`` their events-per-second factor."""
    for a in aggs:
        a.rate_cell[0] = 1_000_000_000 / over


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
