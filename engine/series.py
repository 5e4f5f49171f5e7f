"""Bounded time series of a live-bytes counter, sampled in trace time.

A :class:`Series` keeps at most ``cap`` buckets.  Buckets start 1 ms wide; when
there are more than ``cap`` of them, neighbours are merged and the width
doubles.  So memory is O(cap) whatever the trace length, and a series always
spans the whole trace at the finest resolution that fits.

Each bucket keeps the minimum, maximum and last value seen in it: the minimum
gives the *lower envelope* (the floor a sawtooth returns to), the last value
the level, the maximum the peaks.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_CAP = 512
INITIAL_WIDTH_NS = 1_000_000
_CLOSED = -(1 << 256)  # below any trace time


class Bucket(NamedTuple):
    start: int  # trace time, ns
    low: int
    high: int
    last: int


class Series:
    """Bucketed samples of one counter.  :meth:`add` is amortised O(1)."""

    __slots__ = ("cap", "width", "buckets", "_start", "_low", "_high", "_last", "_open", "_end")

    def __init__(self, cap: int = DEFAULT_CAP, width: int = INITIAL_WIDTH_NS) -> None:
        if cap < 2:
            raise ValueError("cap must be at least 2")
        self.cap = cap
        self.width = width
        self.buckets: list[Bucket] = []
        self._open = False
        self._start = 0
        #: ``_start + width`` while a bucket is open, below any time otherwise:
        #: ``time < _end`` is the whole test of the fast path (which the replay
        #: inlines, see HeapState._grow)
        self._end = _CLOSED
        self._low = self._high = self._last = 0

    def add(self, time: int, value: int) -> None:
        """Record that the counter is ``value`` from ``time`` on.  A time
        before the open bucket (a late record) counts in the open bucket."""
        if time < self._end:
            if value < self._low:
                self._low = value
            elif value > self._high:
                self._high = value
            self._last = value
            return
        buckets = self.buckets
        if self._open:
            buckets.append(Bucket(self._start, self._low, self._high, self._last))
        # coarsen until the closed buckets plus the new one fit in ``cap``
        # (the new time may fall in the last closed slot once coarser)
        while True:
            start = time - time % self.width
            joins_last = bool(buckets) and buckets[-1].start == start
            if len(buckets) + (not joins_last) <= self.cap:
                break
            self._coarsen()
            buckets = self.buckets
        low = high = value
        if joins_last:
            m = buckets.pop()
            low, high = min(m.low, value), max(m.high, value)
        self._open = True
        self._start = start
        self._end = start + self.width
        self._low, self._high, self._last = low, high, value

    def _coarsen(self) -> None:
        """Double the width and merge the closed buckets that now share a slot."""
        self.width *= 2
        width = self.width
        merged: list[Bucket] = []
        for b in self.buckets:
            start = b.start - b.start % width
            if merged and merged[-1].start == start:
                m = merged[-1]
                merged[-1] = Bucket(start, min(m.low, b.low), max(m.high, b.high), b.last)
            else:
                merged.append(Bucket(start, b.low, b.high, b.last))
        self.buckets = merged

    def snapshot(self) -> list[Bucket]:
        """All buckets including the open one, oldest first."""
        out = list(self.buckets)
        if self._open:
            out.append(Bucket(self._start, self._low, self._high, self._last))
        return out

    def __len__(self) -> int:
        return len(self.buckets) + (1 if self._open else 0)
