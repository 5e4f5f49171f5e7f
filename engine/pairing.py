"""Pairing moving reallocs with their inner Alloc/Free records (``auto`` mode).

Some capture paths log a moving HeapReAlloc twice: as the ReAlloc record and
as the inner HeapAlloc(new) and HeapFree(old) the heap manager made for it, on
the same thread at (nearly) the same time, before or after the ReAlloc.  Other
paths log the ReAlloc alone.  The replay applies the ReAlloc and must drop the
inner records, but must keep a real allocation or free that merely reuses one
of the two addresses a microsecond later (LFH hands a freed block out again at
once).  The rule that tells them apart:

* the inner records are the move's Alloc(new) **and** Free(old), on its
  process, thread and heap, within the pair window of the ReAlloc;
* together with the ReAlloc they form one unbroken run of that thread's records
  in time order (any order inside the run);
* no other thread touches the new or the old address while the run is open
  (inside a realloc call no other thread can own either block).

While a run is incomplete its records are held back.  When it completes the
two inner records are dropped and the ReAlloc goes on; when it breaks (another
record of the thread, a record of another thread on one of its addresses, a
heap or process record of the process, or the pair window has passed) the held
records are released in their order, late by at most about the pair window.

Cost: O(1) dict work per record; memory is the moves inside the reorder buffer
plus one open run per thread.
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.events import HeapEvent, Kind

_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)
_REALLOC = int(Kind.REALLOC)
_NEVER = float("inf")


def is_move(ev: HeapEvent) -> bool:
    """A ReAlloc that moves the block (both addresses known and different)."""
    return ev.kind == _REALLOC and ev.address != ev.old_address and ev.address != 0 and ev.old_address != 0


class _Move:
    """A moving realloc and the run of its thread's records held with it."""

    __slots__ = ("time", "seq", "pid", "tid", "heap", "new", "old", "alloc_seen", "free_seen", "released", "held")

    def __init__(self, ev: HeapEvent, seq: int) -> None:
        self.time = ev.time
        self.seq = seq
        self.pid = ev.pid
        self.tid = ev.tid
        self.heap = ev.heap
        self.new = ev.address
        self.old = ev.old_address
        self.alloc_seen = False
        self.free_seen = False
        self.released = False  # its ReAlloc has left the reorder buffer
        #: (record, input number) held back, in thread order: candidates, and
        #: the ReAlloc itself when a candidate came before it
        self.held: list[tuple[HeapEvent, int]] = []

    def claims(self, ev: HeapEvent, window: int) -> bool:
        """Take ``ev`` as this move's inner Alloc(new) or Free(old) if it is one
        and that record is still missing (same pid and tid is the caller's)."""
        if ev.heap != self.heap or abs(ev.time - self.time) > window:
            return False
        kind = ev.kind
        if kind == _ALLOC and ev.address == self.new and not self.alloc_seen:
            self.alloc_seen = True
            return True
        if kind == _FREE and ev.address == self.old and not self.free_seen:
            self.free_seen = True
            return True
        return False


class ReallocPairer:
    """The pairing stage between the reorder buffer and the state.

    Call :meth:`buffered` for every ReAlloc entering the reorder buffer and
    :meth:`release` for every record leaving it, in time order; after each
    ``release``, first pass on the records in :attr:`flushed` (then clear it),
    then the released record itself if ``release`` returned True.  At the end,
    pass on what :meth:`finish` returns.
    """

    def __init__(self, window: int, counters: Any) -> None:
        self.window = window
        #: has a ``paired_inner`` count of the inner records dropped
        self.counters = counters
        #: held records that turned out not to be inner, to pass on now
        self.flushed: list[HeapEvent] = []
        # buffered moves by what their inner records look like:
        # (kind, pid, tid, heap, address) -> moves, in input order
        self._pending: dict[tuple, list[_Move]] = {}
        # address -> how many index entries name it: a cheap pre-check that
        # spares building the 5-tuple key for the many records no move names
        self._pending_addrs: dict[int, int] = {}
        # (pid, tid) -> the move whose run that thread's next record may extend
        self._runs: dict[tuple[int, int], _Move] = {}
        # (pid, address) -> the open run using that address as new or old
        self._watched: dict[tuple[int, int], _Move] = {}
        #: after this time some released move's run can no longer complete
        #: (the next record released after it expires runs)
        self.deadline: float = _NEVER

    def quiet_check(self) -> tuple[dict, dict, dict]:
        """The tables that say whether a released record can concern pairing:
        the open runs by (pid, tid), the watched (pid, address) pairs and the
        addresses named by buffered moves (live tables, never replaced).

        :meth:`release` returns True and changes nothing (but for an expiry
        check that finds nothing to expire) for

        * an Alloc or Free whose address no buffered move names, when no run
          is open, or when its time is not past :attr:`deadline`, its thread
          has no open run and its (pid, address) is not watched;
        * a record that is no Alloc, Free or ReAlloc, when no run is open and
          no address is watched.

        The ordering stage skips the call for those."""
        return self._runs, self._watched, self._pending_addrs

    def buffered(self, ev: HeapEvent, seq: int) -> None:
        """Note a record entering the reorder buffer (input number ``seq``)."""
        if ev.kind == _REALLOC and ev.address != ev.old_address and ev.address and ev.old_address:
            mv = _Move(ev, seq)
            pending = self._pending
            pending.setdefault((_ALLOC, ev.pid, ev.tid, ev.heap, ev.address), []).append(mv)
            pending.setdefault((_FREE, ev.pid, ev.tid, ev.heap, ev.old_address), []).append(mv)
            addrs = self._pending_addrs
            addrs[ev.address] = addrs.get(ev.address, 0) + 1
            addrs[ev.old_address] = addrs.get(ev.old_address, 0) + 1

    def release(self, ev: HeapEvent, seq: int) -> bool:
        """Pairing when ``ev`` leaves the buffer; False when it is dropped or held."""
        if ev.time > self.deadline:
            self._expire(ev.time)
        kind = ev.kind
        if self._watched:
            if _ALLOC <= kind <= _FREE:
                self._other_threads(ev, ev.address)
                if kind == _REALLOC:
                    self._other_threads(ev, ev.old_address)
            else:  # a create, destroy or process record ends the process's runs
                for mv in [m for m in self._runs.values() if m.pid == ev.pid]:
                    self._break(mv)
        if self._runs:
            return self._feed(ev, seq)
        if kind == _REALLOC or ((kind == _ALLOC or kind == _FREE) and ev.address in self._pending_addrs):
            return self._fresh(ev, seq)
        return True

    def _feed(self, ev: HeapEvent, seq: int) -> bool:
        runs = self._runs
        while runs:
            thread = (ev.pid, ev.tid)
            mv = runs.get(thread)
            if mv is None:
                break
            if mv.seq == seq:  # the move's own ReAlloc, after candidate(s)
                mv.released = True
                self._unindex(mv)
                if mv.alloc_seen and mv.free_seen:
                    self._complete(mv)
                    return True
                mv.held.append((ev, seq))  # behind the candidate held before it
                self._open(mv)
                return False
            if mv.claims(ev, self.window):
                if mv.released and mv.alloc_seen and mv.free_seen:
                    self._complete(mv)
                    self.flushed.extend(h for h, _ in mv.held if h.kind == _REALLOC)
                    return False
                mv.held.append((ev, seq))
                return False
            # the run is broken; its re-fed records may open another run on
            # this thread, which ``ev`` then extends or breaks in turn
            self._break(mv, refeed=True)
        return self._fresh(ev, seq)

    def _fresh(self, ev: HeapEvent, seq: int) -> bool:
        """A record no open run of its thread takes: it may open one."""
        kind = ev.kind
        if kind == _REALLOC:
            if ev.address != ev.old_address and ev.address and ev.old_address:
                for mv in self._pending.get((_ALLOC, ev.pid, ev.tid, ev.heap, ev.address), ()):
                    if mv.seq == seq:
                        mv.released = True
                        self._unindex(mv)
                        self._open(mv)
                        break
            return True
        if (kind == _ALLOC or kind == _FREE) and self._pending:
            moves = self._pending.get((kind, ev.pid, ev.tid, ev.heap, ev.address))
            if moves:
                for mv in moves:
                    if mv.claims(ev, self.window):
                        mv.held.append((ev, seq))
                        self._open(mv)
                        return False
        return True

    def finish(self) -> list[HeapEvent]:
        """Records still held at the end of the input (their runs never completed)."""
        for mv in list(self._runs.values()):
            self._break(mv)
        out = sorted(self.flushed, key=lambda e: e.time)
        self.flushed.clear()
        return out

    # --- runs -----------------------------------------------------------------
    def _open(self, mv: _Move) -> None:
        self._runs[(mv.pid, mv.tid)] = mv
        watched = self._watched
        for key in ((mv.pid, mv.new), (mv.pid, mv.old)):
            other = watched.get(key)
            if other is not None and other is not mv:
                self._break(other)  # two threads on one address: the older run is not a move's
            watched[key] = mv
        if mv.released and mv.time + self.window < self.deadline:
            self.deadline = mv.time + self.window

    def _close(self, mv: _Move) -> None:
        thread = (mv.pid, mv.tid)
        if self._runs.get(thread) is mv:
            del self._runs[thread]
        watched = self._watched
        for key in ((mv.pid, mv.new), (mv.pid, mv.old)):
            if watched.get(key) is mv:
                del watched[key]

    def _complete(self, mv: _Move) -> None:
        self._close(mv)
        self.counters.paired_inner += 2

    def _break(self, mv: _Move, refeed: bool = False) -> None:
        """The run is not a paired move: release what it held, in order.

        With ``refeed`` (the thread's next record did not fit), the held
        records after the first go through pairing again: they may start the
        run of a nearer move (a real Free(X) then the inner records of a move
        of X's block, say).  Each break releases at least one record, so this
        ends."""
        self._close(mv)
        mv.alloc_seen = mv.free_seen = False  # a later, adjacent record may still pair
        held = mv.held
        if not held:
            return
        mv.held = []
        if not refeed:
            self.flushed.extend(h for h, _ in held)
            return
        self.flushed.append(held[0][0])
        for h, h_seq in held[1:]:
            if self._feed(h, h_seq):
                self.flushed.append(h)

    def _other_threads(self, ev: HeapEvent, address: int) -> None:
        mv = self._watched.get((ev.pid, address))
        if mv is not None and mv.tid != ev.tid:
            self._break(mv)

    def _expire(self, now: int) -> None:
        self.deadline = _NEVER
        for mv in list(self._runs.values()):
            if mv.released:
                if now - mv.time > self.window:
                    self._break(mv)
                elif mv.time + self.window < self.deadline:
                    self.deadline = mv.time + self.window

    def _unindex(self, mv: _Move) -> None:
        """Drop ``mv`` from the look-ahead index once its ReAlloc is released."""
        pending = self._pending
        for key in ((_ALLOC, mv.pid, mv.tid, mv.heap, mv.new), (_FREE, mv.pid, mv.tid, mv.heap, mv.old)):
            moves = pending.get(key)
            if moves:
                for i, other in enumerate(moves):
                    if other is mv:
                        del moves[i]
                        addrs = self._pending_addrs
                        address = key[4]
                        if addrs[address] == 1:
                            del addrs[address]
                        else:
                            addrs[address] -= 1
                        break
                if not moves:
                    del pending[key]
