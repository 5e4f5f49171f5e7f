"""Replayed heap state: per (process, heap) maps of live blocks.

``HeapState.apply(event)`` applies one (already ordered and realloc-paired)
event and returns the anomalies it revealed as values; it never raises on odd
input.  Each heap keeps its live blocks in a :class:`~heaplint.engine.blocks.BlockMap`
(a :class:`sortedcontainers.SortedDict` keyed by address, with compact block
records): exact-address look-ups are plain dict look-ups (O(1)), range
questions (overlap, interior pointers) are a bisection (O(log n)).  Irregular
records are classified in :mod:`heaplint.engine.anomalies`.

Invariants (checked by :meth:`HeapState._check`, which the property tests call):

* blocks of one heap never overlap (a zero-size block spans one byte);
* a heap's ``live_bytes`` is the sum of its block sizes, a process's the sum of
  its heaps'; peaks are never below the current value;
* a live-bytes series ends at the current value, and its highest bucket is
  the peak (live bytes change once per event: no transient values);
* an address in a process's recently-freed table is not live on the heap
  record it was freed from.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any, Callable

from heaplint.engine.anomalies import (  # noqa: F401 - re-exported: rules and tests import them from here
    ABSURD_SIZE,
    ANOMALY_KINDS,
    DESTROY_WITH_LIVE_BLOCKS,
    DOUBLE_FREE,
    HANDLE_REUSE,
    INTERIOR_FREE,
    INVALID_SOURCE,
    NULL_ADDRESS,
    OUT_OF_ORDER,
    OVERLAP,
    REALLOC_SIZE_MISMATCH,
    REALLOC_UNKNOWN_OLD,
    UNKNOWN_FREE,
    UNKNOWN_HEAP,
    WRONG_HEAP_FREE,
    ZERO_SIZE,
    Anomaly,
    IrregularRecords,
    note,
)
from heaplint.engine.blocks import NO_STACK, Block, BlockMap, moved, pack_plain, size_of, unpack
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.heaps import HeapRecord, ProcessState, check_invariants

#: sizes at or above this are taken as garbage, not tracked (1 TiB)
DEFAULT_ABSURD_SIZE = 1 << 40
#: how many freed addresses per process are remembered for double-free checks:
#: addresses freed and not allocated again since, the latest first (an address
#: allocated again leaves the table).  4,096 entries are about 0.5 MiB; the
#: steady benchmark workload (LFH-style reuse) fills them within ~1M events, so
#: that memory stops growing early (65,536 were still filling at 10M events).
#: A double free is recognised as such while fewer than this many other
#: not-reused addresses were freed in between; older ones are unknown frees.
DEFAULT_FREED_MEMORY = 1 << 12
#: at most this many retired heaps keep their own statistics per process
RETIRED_HEAPS_KEPT = 256

_NO_ANOMALIES: tuple = ()
_size_from = struct.Struct("<q").unpack_from


class HeapState(IrregularRecords):
    """The replayed state of every process and heap of one trace.

    ``apply`` expects events in time order with moving reallocs already paired
    (see :mod:`heaplint.engine.replay`).  After each call, :attr:`ended` holds
    the block the event freed or moved away from (``None`` otherwise), so that
    rules can ask for lifetimes without a second look-up.

    ``realloc_moves`` is False in ``paired`` realloc mode: a moving ReAlloc is
    then only counted, because its inner Alloc/Free carry the state change.
    """

    def __init__(
        self,
        *,
        absurd_size: int = DEFAULT_ABSURD_SIZE,
        freed_memory: int = DEFAULT_FREED_MEMORY,
        realloc_moves: bool = True,
        on_process_end: Callable[["ProcessState", int], None] | None = None,
    ) -> None:
        self.processes: dict[int, ProcessState] = {}
        self.finished: list[ProcessState] = []  # ended processes (pid reuse)
        self.absurd_size = absurd_size
        self.freed_memory = freed_memory
        self.realloc_moves = realloc_moves
        self.on_process_end = on_process_end
        self._ended: Any = None  # raw record of the block the last event ended
        self.events = 0
        self._serial = 0  # last HeapRecord serial handed out
        self._dispatch = {
            Kind.ALLOC: self._alloc_checked,
            Kind.FREE: self._free_checked,
            Kind.REALLOC: self._realloc,
            Kind.HEAP_CREATE: self._create,
            Kind.DESTROY: self._destroy,
            Kind.PROCESS_START: self._process_start,
            Kind.PROCESS_END: self._process_end,
        }

    @property
    def ended(self) -> Block | None:
        """The block the last event freed or moved away from (None if none)."""
        rec = self._ended
        if rec.__class__ is bytes:
            rec = self._ended = unpack(rec)
        return rec

    # --- look-ups -------------------------------------------------------
    def process(self, pid: int) -> ProcessState | None:
        return self.processes.get(pid)

    def heap(self, pid: int, handle: int) -> HeapRecord | None:
        proc = self.processes.get(pid)
        return proc.heaps.get(handle) if proc is not None else None

    def block(self, pid: int, handle: int, address: int) -> Block | None:
        h = self.heap(pid, handle)
        return h.blocks.get(address) if h is not None else None

    def known(self, pid: int, handle: int, address: int) -> bool:
        h = self.heap(pid, handle)
        return h is not None and address in h.blocks

    def all_processes(self) -> list[ProcessState]:
        """Finished processes, then live ones, in order of first appearance."""
        return [*self.finished, *self.processes.values()]

    # --- the event entry point -------------------------------------------
    def apply(self, ev: HeapEvent) -> tuple[Anomaly, ...] | list[Anomaly]:
        """Apply one event; return the anomalies it revealed (often ``()``).

        Cost: O(1) dict work plus O(log n) in the heap's sorted map for allocs
        and reallocs (overlap check, key list update), frees and frees of
        unknown addresses.

        The regular Alloc and Free (known heap, valid source, non-null address,
        sane size, known block) are handled inline here: they are most of any
        trace, and every call saved counts (measured, see docs/performance.md).
        Anything else goes to its handler unchanged.
        """
        kind, t, pid, _tid, handle, address, size, _old, _old_size, source, stack, _fl, _img, index, _ln = ev
        self._ended = None
        self.events += 1
        proc = self.processes.get(pid)
        if proc is None:
            proc = self.processes[pid] = ProcessState(pid, t)
        # coverage is the span of the process's records, whatever order the
        # (out-of-order beyond the window) records came in
        if t > proc.last_time:
            proc.last_time = t
        elif t < proc.first_time:
            proc.first_time = t
        if kind == 2:  # alloc
            heap = proc.heaps.get(handle)
            if heap is None or not address or not 0 < size < self.absurd_size or not (0 <= source < 5 or source == 6):
                return self._alloc_checked(proc, ev)
            try:  # blocks.pack inlined
                if stack is None:
                    rec = pack_plain(size, t, index, 0, source | NO_STACK)
                else:
                    rec = pack_plain(size, t, index, stack, source)
            except struct.error:  # a field out of the record's range
                rec = Block(size, t, index, stack, source)
            heap.last_time = t
            heap.counts[2] += 1
            heap.sources[source] += 1
            if not heap.blocks.place(address, address + size, rec):
                return self._insert(proc, heap, ev, rec, None) or _NO_ANOMALIES
            if proc.freed:
                proc.freed.pop(address, None)
            # _grow inlined: live bytes rise, so only the peak and the highs can move
            live = heap.live_bytes = heap.live_bytes + size
            if live > heap.peak_bytes:
                heap.peak_bytes = live
                heap.peak_time = t
            s = heap.series
            if t < s._end:
                if live > s._high:
                    s._high = live
                s._last = live
            else:
                s.add(t, live)
            live = proc.live_bytes = proc.live_bytes + size
            if live > proc.peak_bytes:
                proc.peak_bytes = live
                proc.peak_time = t
            s = proc.series
            if t < s._end:
                if live > s._high:
                    s._high = live
                s._last = live
            else:
                s.add(t, live)
            return _NO_ANOMALIES
        if kind == 4:  # free
            heap = proc.heaps.get(handle)
            if heap is not None and address and (0 <= source < 5 or source == 6):
                rec = heap.blocks.take(address)
                if rec is not None:
                    heap.last_time = t
                    heap.counts[4] += 1
                    heap.sources[source] += 1
                    self._ended = rec
                    freed = proc.freed
                    freed[address] = heap.serial
                    if len(freed) > self.freed_memory:
                        freed.popitem(last=False)
                    try:
                        size = _size_from(rec)[0]
                    except TypeError:  # a Block
                        size = rec.size
                    # _grow inlined: live bytes fall, so only the lows can move
                    live = heap.live_bytes = heap.live_bytes - size
                    s = heap.series
                    if t < s._end:
                        if live < s._low:
                            s._low = live
                        s._last = live
                    else:
                        s.add(t, live)
                    live = proc.live_bytes = proc.live_bytes - size
                    s = proc.series
                    if t < s._end:
                        if live < s._low:
                            s._low = live
                        s._last = live
                    else:
                        s.add(t, live)
                    return _NO_ANOMALIES
            return self._free_checked(proc, ev)
        return self._dispatch[kind](proc, ev)

    # --- helpers -----------------------------------------------------------
    def _heap(self, proc: ProcessState, ev: HeapEvent, out: list[Anomaly]) -> HeapRecord:
        heap = proc.heaps.get(ev.heap)
        if heap is None:
            proc.uncreated_heaps += 1
            n = proc.uncreated_heaps
            label = "process-heap" if n == 1 else f"preexisting#{n}"
            self._serial += 1
            heap = proc.heaps[ev.heap] = HeapRecord(proc.pid, ev.heap, label, False, ev.time, 0, self._serial)
            note(proc, heap, Anomaly(UNKNOWN_HEAP, ev, proc.pid, ev.heap), out)
        heap.last_time = ev.time
        return heap

    def _grow(self, proc: ProcessState, heap: HeapRecord, delta: int, time: int) -> None:
        """Live bytes of ``heap`` and ``proc`` change by ``delta`` at ``time``:
        peaks and series follow (Series.add's fast path inlined)."""
        live = heap.live_bytes = heap.live_bytes + delta
        if live > heap.peak_bytes:
            heap.peak_bytes = live
            heap.peak_time = time
        s = heap.series
        if time < s._end:
            if live < s._low:
                s._low = live
            elif live > s._high:
                s._high = live
            s._last = live
        else:
            s.add(time, live)
        live = proc.live_bytes = proc.live_bytes + delta
        if live > proc.peak_bytes:
            proc.peak_bytes = live
            proc.peak_time = time
        s = proc.series
        if time < s._end:
            if live < s._low:
                s._low = live
            elif live > s._high:
                s._high = live
            s._last = live
        else:
            s.add(time, live)

    def _insert(
        self,
        proc: ProcessState,
        heap: HeapRecord,
        ev: HeapEvent,
        rec: Any,
        out: list[Anomaly] | None,
        replaced: int = 0,
    ) -> list[Anomaly] | None:
        """Add the block record ``rec`` at ``ev.address``, ending any blocks it
        overlaps; the overlap anomalies go to ``out`` (made when ``None`` and
        needed), which is returned.  ``replaced`` is the size of the block a
        realloc just took out, so that live bytes change once per event (series
        never show a transient dip)."""
        blocks = heap.blocks
        address = ev.address
        size = size_of(rec)
        end = address + (size or 1)
        removed = 0
        if not blocks.place(address, end, rec):
            prev = blocks.floor(address - 1)
            overlapped = [] if prev is None or prev + (size_of(dict.get(blocks, prev)) or 1) <= address else [prev]
            for start in overlapped + blocks.starting_in(address, end):
                removed += size_of(blocks.take(start))
                if out is None:
                    out = []
                note(proc, heap, Anomaly(OVERLAP, ev, proc.pid, ev.heap, address, size, start), out)
            blocks.place(address, end, rec)
        if proc.freed:
            proc.freed.pop(address, None)
        self._grow(proc, heap, size - removed - replaced, ev.time)
        return out

    def _remember_free(self, proc: ProcessState, address: int, heap: HeapRecord) -> None:
        freed = proc.freed
        freed[address] = heap.serial
        if len(freed) > self.freed_memory:
            freed.popitem(last=False)

    # --- per-kind handlers ---------------------------------------------------
    def _realloc(self, proc: ProcessState, ev: HeapEvent) -> Any:
        heap = proc.heaps.get(ev.heap)
        new, old, size, source = ev.address, ev.old_address, ev.size, ev.source
        if (
            heap is None
            or not new
            or not old
            or not 0 < size < self.absurd_size
            or not (0 <= source < 5 or source == 6)
            or (new != old and not self.realloc_moves)
        ):
            return self._realloc_checked(proc, ev)
        blocks = heap.blocks
        prior = dict.get(blocks, old)
        if prior is None:
            return self._realloc_checked(proc, ev)
        prior_size = size_of(prior)
        if ev.old_size is not None and ev.old_size != prior_size:
            return self._realloc_checked(proc, ev)
        blocks.take(old)
        heap.last_time = ev.time
        heap.counts[3] += 1
        heap.sources[source] += 1
        self._ended = prior
        moving = new != old
        if moving:
            self._remember_free(proc, old, heap)
        rec = moved(prior, size, ev.time, ev.index, ev.stack, source, moving)
        if not blocks.place(new, new + size, rec):
            return self._insert(proc, heap, ev, rec, None, prior_size) or _NO_ANOMALIES
        if proc.freed:  # what _insert does when nothing overlaps
            proc.freed.pop(new, None)
        self._grow(proc, heap, size - prior_size, ev.time)
        return _NO_ANOMALIES

    def _create(self, proc: ProcessState, ev: HeapEvent) -> Any:
        out: list[Anomaly] = []
        old = proc.heaps.get(ev.heap)
        if old is not None:
            note(proc, old, Anomaly(HANDLE_REUSE, ev, proc.pid, ev.heap, 0, 0, 0, len(old.blocks), old.live_bytes), out)
            self._retire(proc, old, ev.time)
        proc.created_heaps += 1
        label = f"heap#{proc.created_heaps}/flags=0x{ev.flags:x}"
        self._serial += 1
        heap = proc.heaps[ev.heap] = HeapRecord(proc.pid, ev.heap, label, True, ev.time, ev.flags, self._serial)
        heap.counts[1] += 1
        return out or _NO_ANOMALIES

    def _destroy(self, proc: ProcessState, ev: HeapEvent) -> Any:
        out: list[Anomaly] = []
        heap = proc.heaps.get(ev.heap)
        if heap is None:
            # destroying a heap created before the trace began: normal when attached
            heap = self._heap(proc, ev, out)
        heap.counts[5] += 1
        if heap.blocks:
            note(
                proc,
                heap,
                Anomaly(DESTROY_WITH_LIVE_BLOCKS, ev, proc.pid, ev.heap, 0, 0, 0, len(heap.blocks), heap.live_bytes),
                out,
            )
        self._retire(proc, heap, ev.time)
        return out or _NO_ANOMALIES

    def _retire(self, proc: ProcessState, heap: HeapRecord, time: int) -> None:
        """End a heap: its blocks are gone, its statistics are kept."""
        if heap.live_bytes:
            self._grow(proc, heap, -heap.live_bytes, time)
        if heap.blocks:
            # a new map, not clear(): an end hook may have kept the old one
            heap.blocks = BlockMap()
        heap.end_time = time
        del proc.heaps[heap.handle]
        if len(proc.retired) >= RETIRED_HEAPS_KEPT:
            proc.retired.pop(0)
            proc.retired_dropped += 1
        proc.retired.append(heap)
        # addresses freed on the retired heap need no purge from proc.freed: a
        # heap later created under the same handle has another serial

    def _process_start(self, proc: ProcessState, ev: HeapEvent) -> Any:
        if proc.heaps or proc.end_seen or proc.start_seen or proc.retired:
            # pid reuse: the earlier process is over
            self._finish(proc, ev.time)
            proc = self.processes[ev.pid] = ProcessState(ev.pid, ev.time)
        proc.start_seen = True
        if ev.image:
            proc.image = ev.image
        return _NO_ANOMALIES

    def _process_end(self, proc: ProcessState, ev: HeapEvent) -> Any:
        if ev.image and not proc.image:
            proc.image = ev.image
        proc.end_seen = True
        self._finish(proc, ev.time)
        return _NO_ANOMALIES

    def _finish(self, proc: ProcessState, time: int) -> None:
        """A process is over: let the end hook see its live blocks, then end its heaps."""
        if self.on_process_end is not None:
            self.on_process_end(proc, time)
        for heap in list(proc.heaps.values()):
            self._retire(proc, heap, time)
        proc.ended = True
        proc.last_time = time
        proc.freed = OrderedDict()
        self.finished.append(proc)
        del self.processes[proc.pid]

    # --- invariants ------------------------------------------------------------
    def _check(self) -> None:
        """Assert the invariants in the module docstring (for tests)."""
        check_invariants(self)
