"""The ordering stage of one partition of a trace (``--jobs``): its own
events, with the other partitions' records reduced to their times.

A whole replay orders every record with :func:`heaplint.engine.replay.ordered`.
A partition must hand its own events to the state at the same points, with
the same realloc pairing and the same trace-wide disorder count, without
paying per record of the other partitions.  What those records change:

* **Release.**  The reorder buffer releases a record once the newest time
  seen (of any record) is more than the hold ahead of it; released records
  come out in (time, input position) order.  The other records only raise
  that watermark.
* **Disorder.**  A record older than the last released one is passed through
  at once and counted (``out_of_order``, which rules read while the replay
  runs).  The last released time is the largest time, of any record so far,
  below the watermark minus the hold (a record passed through was older than
  that anyway), so it is needed only for a record that comes later than the
  hold allows: rare.  Such records of the other partitions are counted here
  too, one by one.
* **Pairing.**  Runs are per thread, so another process's record never
  extends or breaks a run; it matters only by its time: releasing a record
  later than :attr:`ReallocPairer.deadline` expires runs.  While a run can
  expire (seldom, and for at most about the pair window), the other records
  released since the last own output are released into the pairer as stubs,
  in (time, position) order, before the next own output.

So the reader hands over the other partitions' records as plain lists of
times, one per run of consecutive records (a :data:`ForeignRun`); a run goes
in as one step when none of its records can be beyond the window, else
record by record.  ``reordered`` counts only this partition's events (the
merge sums it); ``max_buffered`` is not kept.
"""

from __future__ import annotations

from bisect import insort
from typing import Callable, Iterable, Iterator, Union

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.pairing import ReallocPairer
from heaplint.engine.readers.base import stub_event
from heaplint.engine.replay import ReplayCounters, ReplayOptions

#: the times of consecutive records of other partitions, in input order
ForeignRun = list
Item = Union[HeapEvent, ForeignRun]

_NEG = -(1 << 80)  # before any time
_INF = float("inf")
_ALLOC, _REALLOC, _FREE = int(Kind.ALLOC), int(Kind.REALLOC), int(Kind.FREE)
_COMPACT_AT = 256  # drop released records from the buffer's front once this many
_TOP = 1 << 80  # a position after every other
_INF_KEY = (_INF, _TOP)
_MARKS_AT = 1024  # forget the marks of long released events once this many
_PROCESS_START = int(Kind.PROCESS_START)
#: runs of other records a partition may hold at once before it gives up
#: (:class:`PartitionAbandoned`); a few MiB
PENDING_LIMIT = 1 << 16


class PartitionAbandoned(Exception):
    """A partition gives up: the other records it would have to keep grow
    with the trace instead of staying within the reorder window.  That
    happens when realloc pairing has a run open that only an own record can
    settle and no own record comes any more (the partition's processes
    ended in the middle of a move).  The trace is then replayed whole
    (:func:`heaplint.engine.parallel.run_traces`), so memory stays bounded
    and the output is that of ``--jobs 1``."""


class PartitionOrder:
    """Orders one partition's items (own events and :data:`ForeignRun` lists)
    as :func:`~heaplint.engine.replay.ordered` orders the whole trace.

    For the merge's process order (see :class:`heaplint.engine.partition.PartitionReplay`)
    it tells, per own event that comes out, its input position (its index;
    else :attr:`marks` when it has the event, else :attr:`top`), whether
    it came later than the reorder window allows (:attr:`marks`), and the
    latest other record released before it (:meth:`foreign_top`).
    """

    def __init__(self, options: ReplayOptions, counters: ReplayCounters,
                 on_out_of_order: Callable[[HeapEvent, int], None] | None = None, by_index: bool = True) -> None:
        self.counters = counters
        self.on_out_of_order = on_out_of_order
        self.pairer = ReallocPairer(options.pair_window_ns, counters) if options.realloc_mode == "auto" else None
        #: the pairer's open runs (live)
        self.runs: dict = self.pairer.quiet_check()[0] if self.pairer is not None else {}
        self.hold = max(options.reorder_window_ns, options.pair_window_ns if self.pairer is not None else 0)
        self.window = options.reorder_window_ns
        #: an own event's index is its input position (else :attr:`marks` or :attr:`top` has it)
        self.by_index = by_index
        #: own (time, position, event) in that order from ``head`` on (as in ``ordered``)
        self.buf: list[tuple[int, int, HeapEvent]] = []
        self.head = 0
        #: other records that may still matter: (first position, times, latest, earliest)
        self.pending: list[tuple[int, list[int], int, int]] = []
        self.dropped_max = _NEG  # latest time of the other records dropped from pending (all released)
        #: other records before this (time, position) were handed to pairing or needed not be
        self.synced: tuple = (_NEG, -1)
        #: other records before this (time, position) were released before the last own output
        #: that was not released from the buffer in order (passed through, or held by pairing)
        self.horizon: tuple = (_NEG, -1)
        #: id(event) -> (event, position, late): own events in flight that are late (older
        #: than the reorder window when read) or, without ``by_index``, held or dropped by
        #: realloc pairing (they come out, if at all, from ``pairer.flushed``)
        self.marks: dict[int, tuple[HeapEvent, int, bool]] = {}
        #: the own (time, position, event) last taken from the buffer: the event
        #: just yielded, unless :attr:`flushing` (pairing's held records, in :attr:`marks`)
        self.top: tuple = (_NEG, -1, None)
        self.flushing = False
        #: the latest (time, position) of own events passed through beyond the window
        self.late_top: tuple = (_NEG, -1)
        self.marks_limit = _MARKS_AT
        self.newest = _NEG
        self.own_released = _NEG
        self.pos = 0  # input position of the next record
        #: with :attr:`on_special`: a dict of pids (the replay's live processes);
        #: each event out of this stage that is a process record, or whose pid
        #: is not in it, is yielded by ``on_special(event)`` (a generator that
        #: yields it and looks at the state once it was applied), the others
        #: directly: a filter without a generator step per event
        self.watch: dict | None = None
        self.on_special: Callable[[HeapEvent], Iterator[HeapEvent]] | None = None

    # --- the stream -------------------------------------------------------------------------
    def events(self, items: Iterable[Item]) -> Iterator[HeapEvent]:
        """The own events, in the order and with the pairing of a whole replay."""
        counters = self.counters
        on_out_of_order = self.on_out_of_order
        pairer = self.pairer
        hold, window = self.hold, self.window
        buf, pending, marks = self.buf, self.pending, self.marks
        by_index = self.by_index
        watch, special, first_kind = self.watch, self.on_special, _PROCESS_START
        if pairer is not None:
            buffered, release, flushed = pairer.buffered, pairer.release, pairer.flushed
            runs, watched, named = pairer.quiet_check()
        newest = own_released = limit = _NEG
        head = size = 0
        #: the last own record released while no other record before it could expire a run
        last = self.synced
        pos = 0
        reordered = 0
        for item in items:
            if type(item) is list:
                if len(item) == 1:
                    hi = lo = item[0]
                else:
                    hi, lo = max(item), min(item)
                top = hi if hi > newest else newest
                if lo >= top - hold:  # none of them can be beyond the window
                    newest = top
                    limit = top - hold
                    pending.append((pos, item, hi, lo))
                    pos += len(item)
                    if len(pending) > 64:
                        self._compact(limit, last)
                else:
                    self.newest, self.own_released, self.pos, self.head = newest, own_released, pos, head
                    yield from self._watched(self._one_by_one(item, last))
                    newest, own_released, pos, head = self.newest, self.own_released, self.pos, self.head
                    size = len(buf)
                    limit = newest - hold
                    continue
            else:
                t = item.time
                if t < newest:
                    if t < newest - window:
                        if t < limit:
                            rel = self.released(limit, own_released)
                            if t < rel:
                                counters.out_of_order += 1
                                if on_out_of_order is not None:
                                    on_out_of_order(item, rel)
                                yield from self._watched(self._sync((limit, -1), last))
                                self.horizon = (limit, -1)
                                self._mark(item, pos, True)
                                if (t, pos) > self.late_top:
                                    self.late_top = (t, pos)
                                pos += 1
                                yield from self._watched((item,))
                                continue
                        self._mark(item, pos, True)
                    reordered += 1
                    insort(buf, (t, pos, item), head)
                    size += 1
                else:
                    buf.append((t, pos, item))
                    size += 1
                    if t > newest:
                        newest = t
                        limit = t - hold
                if pairer is not None and item.kind == _REALLOC:
                    buffered(item, pos)
                pos += 1
            while head < size and buf[head][0] < limit:
                entry = buf[head]
                head += 1
                self.top = entry
                own_released, seq, out = entry
                if pairer is None:
                    if watch is None or (out.kind < first_kind and out.pid in watch):
                        yield out
                    else:
                        yield from special(out)  # type: ignore[misc]
                    continue
                kind = out.kind
                if kind == _ALLOC or kind == _FREE:  # as in ``ordered``: when release() would do nothing
                    quiet = out.address not in named and (
                        (not runs and not watched)
                        or (own_released <= pairer.deadline and (out.pid, out.tid) not in runs
                            and (out.pid, out.address) not in watched))
                else:
                    quiet = kind != _REALLOC and not runs and not watched
                if not quiet:
                    if runs and own_released > pairer.deadline:  # other records before it may expire runs
                        yield from self._watched(self._sync(entry, last))
                    else:
                        last = entry
                    keep = release(out, seq)
                    if not keep and not by_index and id(out) not in marks:
                        self._mark(out, seq, False)
                    if flushed:
                        self.horizon = entry
                        self.flushing = True
                        yield from self._watched(flushed)
                        self.flushing = False
                        flushed.clear()
                    if keep:
                        yield from self._watched((out,))
                else:  # release() would do nothing: nothing open in pairing, or nothing
                    # it touches and no expiry (the other records before it are no
                    # later than it, so they cannot expire a run either)
                    last = entry
                    if watch is None or (kind < first_kind and out.pid in watch):
                        yield out
                    else:
                        yield from special(out)  # type: ignore[misc]
            if head >= _COMPACT_AT and head + head >= size:
                del buf[:head]
                size -= head
                head = 0
        self.newest, self.own_released, self.pos, self.head = newest, own_released, pos, head
        self.synced = max(self.synced, last)
        counters.events_in += pos
        counters.reordered += reordered
        yield from self._watched(self._finish())

    def _watched(self, events: Iterable[HeapEvent]) -> Iterator[HeapEvent]:
        """``events`` through the :attr:`watch` filter (the stage's less
        common ways out; the common ones test it inline)."""
        watch, special = self.watch, self.on_special
        if watch is None or special is None:
            yield from events
            return
        for ev in events:
            if ev.kind < _PROCESS_START and ev.pid in watch:
                yield ev
            else:
                yield from special(ev)

    def _one_by_one(self, times: list[int], last: tuple) -> Iterator[HeapEvent]:
        """Other records that may be beyond the window: each as ``ordered``
        takes it.  (``last`` as in :meth:`events`.)"""
        counters = self.counters
        pending = self.pending
        for t in times:
            limit = self.newest - self.hold
            if t < limit and t < self.released(limit, self.own_released):
                counters.out_of_order += 1  # passed through: never released, so forgotten
            else:
                if t > self.newest:
                    self.newest = t
                pending.append((self.pos, [t], t, t))
                if len(pending) > 64:  # as in events(): pending stays within the window
                    self._compact(self.newest - self.hold, last)
                yield from self._drain(self.newest - self.hold)
            self.pos += 1

    def _drain(self, limit: float) -> Iterator[HeapEvent]:
        """Release own records older than ``limit`` (the loop of :meth:`events`)."""
        buf, pairer = self.buf, self.pairer
        while self.head < len(buf) and buf[self.head][0] < limit:
            entry = buf[self.head]
            self.head += 1
            self.top = entry
            self.own_released = entry[0]
            if pairer is None:
                yield entry[2]
                continue
            if self.runs and entry[0] > pairer.deadline:
                yield from self._sync(entry, self.synced)
            else:
                self.synced = max(self.synced, entry)
            keep = pairer.release(entry[2], entry[1])
            if not keep and not self.by_index and id(entry[2]) not in self.marks:
                self._mark(entry[2], entry[1], False)
            if pairer.flushed:
                self.horizon = entry
                self.flushing = True
                yield from pairer.flushed
                self.flushing = False
                pairer.flushed.clear()
            if keep:
                yield entry[2]

    def _finish(self) -> Iterator[HeapEvent]:
        yield from self._drain(_INF)
        if self.pairer is not None:
            yield from self._sync((_INF, _TOP), self.synced)
            self.horizon = (_INF, _TOP)
            self.flushing = True
            yield from self.pairer.finish()
        self.dropped_max = max([self.dropped_max, *(e[2] for e in self.pending)])
        self.pending.clear()

    # --- other partitions' records ------------------------------------------------------------
    def _sync(self, before: tuple, last: tuple) -> Iterator[HeapEvent]:
        """Release into pairing the other records released before ``before``
        (a (time, position) key) and not yet handed over, where one can
        expire a run; yield what that flushes.  (Records no later than the
        expiry change nothing in pairing: they are passed over.)"""
        pairer = self.pairer
        start = max(self.synced, last)
        self.synced = max(start, before)
        if pairer is None or before[0] <= pairer.deadline:  # no record before it can expire a run
            return
        # only a record later than the expiry can expire runs, and expiring
        # them only moves the expiry later
        expiry = pairer.deadline
        keys = sorted((t, p0 + k) for p0, times, hi, lo in self.pending if hi > expiry and lo <= before[0]
                      for k, t in enumerate(times) if t > expiry and start <= (t, p0 + k) < before)
        flushed = pairer.flushed
        for t, p in keys:
            if t > pairer.deadline:
                pairer.release(stub_event(t, -1, p, 0), p)
                if flushed:
                    self.horizon = (t, p + 1)
                    self.flushing = True
                    yield from flushed
                    self.flushing = False
                    flushed.clear()

    def _compact(self, limit: int, last: tuple) -> None:
        """Forget other records that are released and, where a run can
        expire, handed to pairing (:meth:`_sync`); give up
        (:class:`PartitionAbandoned`) when more than :data:`PENDING_LIMIT`
        runs must still be kept."""
        # a run can go once (its latest time, its end position) <= synced; the
        # comparison is spelt out so that no key tuple is built per run
        synced = max(self.synced, last) if self.runs else _INF_KEY
        s_time, s_pos = synced[0], synced[1]
        pending = self.pending
        top = self.dropped_max
        n = 0
        for p0, times, hi, _ in pending:
            if hi >= limit or hi > s_time or (hi == s_time and p0 + len(times) > s_pos):
                break
            if hi > top:
                top = hi
            n += 1
        if n:
            self.dropped_max = top
            del pending[:n]
        if len(pending) > PENDING_LIMIT:
            raise PartitionAbandoned(f"{len(pending)} runs of other records pending")

    def _mark(self, ev: HeapEvent, pos: int, late: bool) -> None:
        """Remember an own event's position (and lateness) until it comes out;
        forget those of events released long ago (they came out, or pairing
        dropped them) once there are many."""
        marks = self.marks
        marks[id(ev)] = (ev, pos, late)
        if len(marks) > self.marks_limit:
            horizon = self.top[0] - 4 * self.hold
            for k in [k for k, m in marks.items() if m[0].time < horizon]:
                del marks[k]
            self.marks_limit = max(_MARKS_AT, 2 * len(marks))

    def own_top(self) -> tuple:
        """At least the latest (time, position) of the own events out so far
        (exactly, but for records pairing holds back: those taken from the
        buffer count from then on)."""
        return max(self.top[:2], self.late_top)

    def released(self, limit: float, own_released: int) -> int:
        """The time of the last record a whole replay has released when its
        limit is ``limit``: the latest time below it."""
        best = max(own_released, self.dropped_max)
        for _, times, hi, _ in self.pending:
            cand = hi if hi < limit else max((t for t in times if t < limit), default=_NEG)
            if cand > best:
                best = cand
        return best

    def foreign_top(self) -> tuple[int, int]:
        """The latest (time, position) of the other records released before
        the own event that came out last (an upper bound for dropped ones)."""
        before = self.horizon
        best: tuple = (self.dropped_max, _TOP) if self.dropped_max > _NEG else (_NEG, -1)
        for p0, times, _, _ in self.pending:
            for k, t in enumerate(times):
                key = (t, p0 + k)
                if best < key < before:
                    best = key
        return best

    def foreign_max(self) -> int | None:
        """The latest time of the other records (None when there were none)."""
        latest = max([self.dropped_max, *(e[2] for e in self.pending)])
        return None if latest <= _NEG else latest
