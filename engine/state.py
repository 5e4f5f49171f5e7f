"""Replayed heap state: per (process, heap) maps of live blocks.

``HeapState.apply(event)`` applies one (already ordered and realloc-paired)
event and returns the anomalies it revealed as values; it never raises on odd
input.  Each heap keeps its live blocks in a :class:`sortedcontainers.SortedDict`
keyed by address: exact-address look-ups are plain dict look-ups (O(1)), range
questions (overlap, interior pointers) are a bisection (O(log n)).

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

from bisect import bisect_left as _bisect_left
from collections import OrderedDict
from typing import Callable, NamedTuple

from sortedcontainers import SortedDict

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.series import Series

# --- anomaly kinds (stable strings: rules and reports use them) -------------
UNKNOWN_FREE = "unknown-free"
INTERIOR_FREE = "interior-free"  # free of an address inside a live block
DOUBLE_FREE = "double-free"
OVERLAP = "overlap"
WRONG_HEAP_FREE = "wrong-heap-free"
REALLOC_UNKNOWN_OLD = "realloc-unknown-old"
REALLOC_SIZE_MISMATCH = "realloc-size-mismatch"
ZERO_SIZE = "zero-size"
ABSURD_SIZE = "absurd-size"
NULL_ADDRESS = "null-address"
DESTROY_WITH_LIVE_BLOCKS = "destroy-with-live-blocks"
UNKNOWN_HEAP = "unknown-heap"
HANDLE_REUSE = "handle-reuse"
OUT_OF_ORDER = "out-of-order"
INVALID_SOURCE = "invalid-source"

ANOMALY_KINDS: tuple[str, ...] = (
    UNKNOWN_FREE,
    INTERIOR_FREE,
    DOUBLE_FREE,
    OVERLAP,
    WRONG_HEAP_FREE,
    REALLOC_UNKNOWN_OLD,
    REALLOC_SIZE_MISMATCH,
    ZERO_SIZE,
    ABSURD_SIZE,
    NULL_ADDRESS,
    DESTROY_WITH_LIVE_BLOCKS,
    UNKNOWN_HEAP,
    HANDLE_REUSE,
    OUT_OF_ORDER,
    INVALID_SOURCE,
)

#: sizes at or above this are taken as garbage, not tracked (1 TiB)
DEFAULT_ABSURD_SIZE = 1 << 40
#: how many freed addresses per process are remembered for double-free checks
DEFAULT_FREED_MEMORY = 1 << 16
#: at most this many retired heaps keep their own statistics per process
RETIRED_HEAPS_KEPT = 256

_SOURCE_INVALID = 5
_NO_ANOMALIES: tuple = ()


class Block(NamedTuple):
    """A live block.  ``time``/``index``/``stack`` are those of the event that
    produced the block (an alloc, or the realloc that last moved or resized
    it); ``moves`` counts moving reallocs in its history and ``copied`` the
    bytes those moves copied."""

    size: int
    time: int
    index: int
    stack: int | None
    source: int
    moves: int = 0
    copied: int = 0


class Anomaly(NamedTuple):
    """Something the trace shows that a correct program with a complete trace
    would not.  ``other`` is the related address (the live block an interior
    free points into, the block an allocation overlaps, the heap a wrong-heap
    free belongs to); ``count``/``bytes`` carry aggregate evidence (blocks and
    bytes alive at a destroy)."""

    kind: str
    event: HeapEvent
    pid: int
    heap: int
    address: int = 0
    size: int = 0
    other: int = 0
    count: int = 0
    bytes: int = 0


class HeapRecord:
    """One heap of one process: its live blocks and its statistics."""

    __slots__ = (
        "pid",
        "handle",
        "label",
        "flags",
        "created",
        "create_time",
        "end_time",
        "blocks",
        "live_bytes",
        "peak_bytes",
        "peak_time",
        "counts",
        "sources",
        "anomalies",
        "series",
        "first_time",
        "last_time",
        "serial",
    )

    def __init__(
        self, pid: int, handle: int, label: str, created: bool, time: int, flags: int = 0, serial: int = 0
    ) -> None:
        self.pid = pid
        #: unique per HeapRecord of a HeapState: tells a reused handle's heaps apart
        self.serial = serial
        self.handle = handle
        self.label = label
        self.flags = flags
        self.created = created
        self.create_time = time if created else None
        self.end_time: int | None = None
        self.blocks: SortedDict = SortedDict()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_time = time
        self.counts = [0] * 8  # by Kind value
        self.sources = [0] * 7  # by Source value
        self.anomalies: dict[str, int] = {}
        self.series = Series()
        self.first_time = time
        self.last_time = time

    @property
    def live_blocks(self) -> int:
        return len(self.blocks)

    def containing(self, address: int) -> tuple[int, Block] | None:
        """The live block whose span holds ``address`` (O(log n))."""
        blocks = self.blocks
        i = blocks.bisect_right(address)
        if i:
            start, block = blocks.peekitem(i - 1)
            if address < start + (block.size or 1):
                return start, block
        return None


class ProcessState:
    """One process: its heaps, live totals, coverage."""

    __slots__ = (
        "pid",
        "image",
        "heaps",
        "retired",
        "live_bytes",
        "peak_bytes",
        "peak_time",
        "start_seen",
        "end_seen",
        "ended",
        "first_time",
        "last_time",
        "created_heaps",
        "uncreated_heaps",
        "freed",
        "anomalies",
        "series",
        "retired_dropped",
    )

    def __init__(self, pid: int, time: int, image: str | None = None) -> None:
        self.pid = pid
        self.image = image
        self.heaps: dict[int, HeapRecord] = {}
        self.retired: list[HeapRecord] = []
        self.retired_dropped = 0
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_time = time
        self.start_seen = False
        self.end_seen = False
        self.ended = False
        self.first_time = time
        self.last_time = time
        self.created_heaps = 0
        self.uncreated_heaps = 0
        #: address -> serial of the heap record it was freed from, for recent
        #: frees, oldest first (bounded; an OrderedDict because evicting the
        #: oldest entry of a plain dict used as a queue costs O(size))
        self.freed: OrderedDict[int, int] = OrderedDict()
        self.anomalies: dict[str, int] = {}
        self.series = Series()

    @property
    def live_blocks(self) -> int:
        return sum(len(h.blocks) for h in self.heaps.values())

    def all_heaps(self) -> list[HeapRecord]:
        """Retired heaps first (in retirement order), then live ones."""
        return [*self.retired, *self.heaps.values()]


class HeapState:
    """The replayed state of every process and heap of one trace.

    ``apply`` expects events in time order with moving reallocs already paired
    (see :mod:`heaplint.engine.replay`).  After each call, ``ended`` holds the
    block the event freed or moved away from (``None`` otherwise), so that
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
        self.ended: Block | None = None
        self.events = 0
        self._serial = 0  # last HeapRecord serial handed out
        self._dispatch = {
            Kind.ALLOC: self._alloc,
            Kind.FREE: self._free,
            Kind.REALLOC: self._realloc,
            Kind.HEAP_CREATE: self._create,
            Kind.DESTROY: self._destroy,
            Kind.PROCESS_START: self._process_start,
            Kind.PROCESS_END: self._process_end,
        }

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
        return self.block(pid, handle, address) is not None

    def all_processes(self) -> list[ProcessState]:
        """Finished processes, then live ones, in order of first appearance."""
        return [*self.finished, *self.processes.values()]

    # --- the event entry point -------------------------------------------
    def apply(self, ev: HeapEvent) -> tuple[Anomaly, ...] | list[Anomaly]:
        """Apply one event; return the anomalies it revealed (often ``()``).

        Cost: O(1) dict work plus O(log n) in the heap's sorted map for allocs
        and growing reallocs (overlap check) and frees of unknown addresses.
        """
        self.ended = None
        self.events += 1
        proc = self.processes.get(ev.pid)
        if proc is None:
            proc = self.processes[ev.pid] = ProcessState(ev.pid, ev.time)
        # coverage is the span of the process's records, whatever order the
        # (out-of-order beyond the window) records came in
        t = ev.time
        if t > proc.last_time:
            proc.last_time = t
        elif t < proc.first_time:
            proc.first_time = t
        return self._dispatch[ev.kind](proc, ev)

    # --- helpers -----------------------------------------------------------
    def _heap(self, proc: ProcessState, ev: HeapEvent, out: list[Anomaly]) -> HeapRecord:
        heap = proc.heaps.get(ev.heap)
        if heap is None:
            proc.uncreated_heaps += 1
            n = proc.uncreated_heaps
            label = "process-heap" if n == 1 else f"preexisting#{n}"
            self._serial += 1
            heap = proc.heaps[ev.heap] = HeapRecord(proc.pid, ev.heap, label, False, ev.time, 0, self._serial)
            self._note(proc, heap, Anomaly(UNKNOWN_HEAP, ev, proc.pid, ev.heap), out)
        heap.last_time = ev.time
        return heap

    @staticmethod
    def _note(proc: ProcessState, heap: HeapRecord | None, anomaly: Anomaly, out: list[Anomaly]) -> None:
        out.append(anomaly)
        kind = anomaly.kind
        proc.anomalies[kind] = proc.anomalies.get(kind, 0) + 1
        if heap is not None:
            heap.anomalies[kind] = heap.anomalies.get(kind, 0) + 1

    def _grow(self, proc: ProcessState, heap: HeapRecord, delta: int, time: int) -> None:
        live = heap.live_bytes = heap.live_bytes + delta
        if live > heap.peak_bytes:
            heap.peak_bytes = live
            heap.peak_time = time
        heap.series.add(time, live)
        plive = proc.live_bytes = proc.live_bytes + delta
        if plive > proc.peak_bytes:
            proc.peak_bytes = plive
            proc.peak_time = time
        proc.series.add(time, plive)

    def _insert(
        self,
        proc: ProcessState,
        heap: HeapRecord,
        ev: HeapEvent,
        block: Block,
        out: list[Anomaly] | None,
        replaced: int = 0,
    ) -> list[Anomaly] | None:
        """Add ``block`` at ``ev.address``, ending any blocks it overlaps; the
        overlap anomalies go to ``out`` (made when ``None`` and needed), which
        is returned.  ``replaced`` is the size of the block a realloc just took
        out, so that live bytes change once per event (series never show a
        transient dip)."""
        blocks = heap.blocks
        address = ev.address
        end = address + (block.size or 1)
        if blocks:
            # neighbours by bisecting the SortedDict's own key lists (C-level
            # bisect, no Python-level positional index): the common case, no
            # overlap, costs two bisects and two dict look-ups
            keys = blocks._list
            maxes = keys._maxes
            pos = _bisect_left(maxes, address)
            if pos == len(maxes):
                sub = keys._lists[-1]
                prev_start, next_start = sub[-1], None
            else:
                sub = keys._lists[pos]
                j = _bisect_left(sub, address)
                next_start = sub[j]
                prev_start = sub[j - 1] if j else (keys._lists[pos - 1][-1] if pos else None)
            if (prev_start is None or prev_start + (blocks[prev_start].size or 1) <= address) and (
                next_start is None or next_start >= end
            ):
                blocks[address] = block
                if proc.freed:
                    proc.freed.pop(address, None)
                self._grow(proc, heap, block.size - replaced, ev.time)
                return out
        i = blocks.bisect_left(address)
        removed = 0
        if i:
            start, prev = blocks.peekitem(i - 1)
            if start + (prev.size or 1) > address:
                del blocks[start]
                removed += prev.size
                i -= 1
                if out is None:
                    out = []
                self._note(proc, heap, Anomaly(OVERLAP, ev, proc.pid, ev.heap, address, block.size, start), out)
        while i < len(blocks):
            start, old = blocks.peekitem(i)
            if start >= end:
                break
            del blocks[start]
            removed += old.size
            if out is None:
                out = []
            self._note(proc, heap, Anomaly(OVERLAP, ev, proc.pid, ev.heap, address, block.size, start), out)
        blocks[address] = block
        if proc.freed:
            proc.freed.pop(address, None)
        self._grow(proc, heap, block.size - removed - replaced, ev.time)
        return out

    def _remember_free(self, proc: ProcessState, address: int, heap: HeapRecord) -> None:
        freed = proc.freed
        freed[address] = heap.serial
        if len(freed) > self.freed_memory:
            freed.popitem(last=False)

    def _check_size(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, size: int, out: list[Anomaly]) -> bool:
        """Note zero and absurd sizes; False when the size is too absurd to track."""
        if size == 0:
            self._note(proc, heap, Anomaly(ZERO_SIZE, ev, proc.pid, ev.heap, ev.address, 0), out)
        elif size >= self.absurd_size or size < 0:
            self._note(proc, heap, Anomaly(ABSURD_SIZE, ev, proc.pid, ev.heap, ev.address, size), out)
            return False
        return True

    # --- per-kind handlers ---------------------------------------------------
    # Each of alloc, free and realloc has a fast path for the regular record
    # (known heap, valid source, non-null address, sane size, known block) that
    # builds no anomaly list, and falls back to the ``_checked`` variant, which
    # handles every case, as soon as anything is irregular.  The fast paths
    # change nothing before they have decided, so the fallback starts clean.

    def _alloc(self, proc: ProcessState, ev: HeapEvent):
        heap = proc.heaps.get(ev.heap)
        size = ev.size
        source = ev.source
        if heap is None or not ev.address or not 0 < size < self.absurd_size or not (0 <= source < 5 or source == 6):
            return self._alloc_checked(proc, ev)
        heap.last_time = ev.time
        heap.counts[2] += 1
        heap.sources[source] += 1
        block = Block(size, ev.time, ev.index, ev.stack, source)
        return self._insert(proc, heap, ev, block, None) or _NO_ANOMALIES

    def _alloc_checked(self, proc: ProcessState, ev: HeapEvent):
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[2] += 1
        source = ev.source
        if 0 <= source < _SOURCE_INVALID or source == 6:
            heap.sources[source] += 1
        else:
            self._invalid_source(proc, heap, ev, out)
        if ev.address == 0:
            self._note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, 0, ev.size), out)
            return out
        if not self._check_size(proc, heap, ev, ev.size, out):
            return out
        self._insert(proc, heap, ev, Block(ev.size, ev.time, ev.index, ev.stack, ev.source), out)
        return out or _NO_ANOMALIES

    def _free(self, proc: ProcessState, ev: HeapEvent):
        heap = proc.heaps.get(ev.heap)
        source = ev.source
        address = ev.address
        if heap is not None and address and (0 <= source < 5 or source == 6):
            block = heap.blocks.pop(address, None)
            if block is not None:
                heap.last_time = ev.time
                heap.counts[4] += 1
                heap.sources[source] += 1
                self.ended = block
                self._remember_free(proc, address, heap)
                self._grow(proc, heap, -block.size, ev.time)
                return _NO_ANOMALIES
        return self._free_checked(proc, ev)

    def _free_checked(self, proc: ProcessState, ev: HeapEvent):
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[4] += 1
        source = ev.source
        if 0 <= source < _SOURCE_INVALID or source == 6:
            heap.sources[source] += 1
        else:
            self._invalid_source(proc, heap, ev, out)
        address = ev.address
        if address == 0:
            self._note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, 0), out)
            return out
        block = heap.blocks.pop(address, None)
        if block is not None:
            self.ended = block
            self._remember_free(proc, address, heap)
            self._grow(proc, heap, -block.size, ev.time)
            return out or _NO_ANOMALIES
        self._unknown_address(proc, heap, ev, address, UNKNOWN_FREE, out)
        return out

    def _invalid_source(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, out: list[Anomaly]) -> None:
        """Source 5 (INVALID), or a value outside 0-6 (a corrupt record): both
        are counted as INVALID, never used as a list index."""
        heap.sources[_SOURCE_INVALID] += 1
        self._note(proc, heap, Anomaly(INVALID_SOURCE, ev, proc.pid, ev.heap, ev.address, ev.size), out)

    def _unknown_address(
        self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, address: int, default: str, out: list[Anomaly]
    ) -> None:
        """Classify a free (or realloc) of an address not live on its heap."""
        inside = heap.containing(address)
        if inside is not None:
            start, block = inside
            self._note(proc, heap, Anomaly(INTERIOR_FREE, ev, proc.pid, ev.heap, address, block.size, start), out)
            return
        for other in proc.heaps.values():
            if other is not heap and address in other.blocks:
                self._note(
                    proc,
                    heap,
                    Anomaly(WRONG_HEAP_FREE, ev, proc.pid, ev.heap, address, other.blocks[address].size, other.handle),
                    out,
                )
                return
        if proc.freed.get(address) == heap.serial:
            self._note(proc, heap, Anomaly(DOUBLE_FREE, ev, proc.pid, ev.heap, address), out)
            return
        self._note(proc, heap, Anomaly(default, ev, proc.pid, ev.heap, address, ev.old_size or 0), out)

    def _realloc(self, proc: ProcessState, ev: HeapEvent):
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
        prior = blocks.get(old)
        if prior is None or (ev.old_size is not None and ev.old_size != prior.size):
            return self._realloc_checked(proc, ev)
        del blocks[old]
        heap.last_time = ev.time
        heap.counts[3] += 1
        heap.sources[source] += 1
        self.ended = prior
        if new != old:
            self._remember_free(proc, old, heap)
            block = Block(size, ev.time, ev.index, ev.stack, source, prior.moves + 1, prior.copied + prior.size)
        else:
            block = Block(size, ev.time, ev.index, ev.stack, source, prior.moves, prior.copied)
        return self._insert(proc, heap, ev, block, None, prior.size) or _NO_ANOMALIES

    def _realloc_checked(self, proc: ProcessState, ev: HeapEvent):
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[3] += 1
        source = ev.source
        if 0 <= source < _SOURCE_INVALID or source == 6:
            heap.sources[source] += 1
        else:
            self._invalid_source(proc, heap, ev, out)
        new, old, size = ev.address, ev.old_address, ev.size
        if new == 0 or old == 0:
            self._note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, new, size, old), out)
            return out
        moving = new != old
        if moving and not self.realloc_moves:
            return out or _NO_ANOMALIES  # paired mode: the inner Alloc/Free carry the move
        if not self._check_size(proc, heap, ev, size, out):
            return out
        blocks = heap.blocks
        prior = blocks.pop(old, None)
        if prior is None:
            self._realloc_unknown(proc, heap, ev, out)
            moves, copied = (1, ev.old_size or 0) if moving else (0, 0)
            self._insert(proc, heap, ev, Block(size, ev.time, ev.index, ev.stack, ev.source, moves, copied), out)
            return out
        self.ended = prior
        if ev.old_size is not None and ev.old_size != prior.size:
            self._note(
                proc, heap, Anomaly(REALLOC_SIZE_MISMATCH, ev, proc.pid, ev.heap, old, ev.old_size, 0, 0, prior.size), out
            )
        if moving:
            self._remember_free(proc, old, heap)
            block = Block(size, ev.time, ev.index, ev.stack, ev.source, prior.moves + 1, prior.copied + prior.size)
        else:
            block = Block(size, ev.time, ev.index, ev.stack, ev.source, prior.moves, prior.copied)
        self._insert(proc, heap, ev, block, out, prior.size)
        return out or _NO_ANOMALIES

    def _realloc_unknown(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, out: list[Anomaly]) -> None:
        before = len(out)
        self._unknown_address(proc, heap, ev, ev.old_address, REALLOC_UNKNOWN_OLD, out)
        # whatever the finer class, a realloc of an unknown old address is also
        # reported as such, so that one rule can catch every variant
        if out[before:] and out[-1].kind != REALLOC_UNKNOWN_OLD:
            self._note(
                proc, heap, Anomaly(REALLOC_UNKNOWN_OLD, ev, proc.pid, ev.heap, ev.old_address, ev.old_size or 0), out
            )

    def _create(self, proc: ProcessState, ev: HeapEvent):
        out: list[Anomaly] = []
        old = proc.heaps.get(ev.heap)
        if old is not None:
            self._note(proc, old, Anomaly(HANDLE_REUSE, ev, proc.pid, ev.heap, 0, 0, 0, len(old.blocks), old.live_bytes), out)
            self._retire(proc, old, ev.time)
        proc.created_heaps += 1
        label = f"heap#{proc.created_heaps}/flags=0x{ev.flags:x}"
        self._serial += 1
        heap = proc.heaps[ev.heap] = HeapRecord(proc.pid, ev.heap, label, True, ev.time, ev.flags, self._serial)
        heap.counts[1] += 1
        return out or _NO_ANOMALIES

    def _destroy(self, proc: ProcessState, ev: HeapEvent):
        out: list[Anomaly] = []
        heap = proc.heaps.get(ev.heap)
        if heap is None:
            # destroying a heap created before the trace began: normal when attached
            heap = self._heap(proc, ev, out)
        heap.counts[5] += 1
        if heap.blocks:
            self._note(
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
            heap.blocks = SortedDict()
        heap.end_time = time
        del proc.heaps[heap.handle]
        if len(proc.retired) >= RETIRED_HEAPS_KEPT:
            proc.retired.pop(0)
            proc.retired_dropped += 1
        proc.retired.append(heap)
        # addresses freed on the retired heap need no purge from proc.freed: a
        # heap later created under the same handle has another serial

    def _process_start(self, proc: ProcessState, ev: HeapEvent):
        if proc.heaps or proc.end_seen or proc.start_seen or proc.retired:
            # pid reuse: the earlier process is over
            self._finish(proc, ev.time)
            proc = self.processes[ev.pid] = ProcessState(ev.pid, ev.time)
        proc.start_seen = True
        if ev.image:
            proc.image = ev.image
        return _NO_ANOMALIES

    def _process_end(self, proc: ProcessState, ev: HeapEvent):
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
        for proc in self.processes.values():
            total = 0
            for heap in proc.heaps.values():
                prev_end = None
                size_sum = 0
                for address, block in heap.blocks.items():
                    assert block.size >= 0, (address, block)
                    if prev_end is not None:
                        assert address >= prev_end, f"overlap at 0x{address:x} in heap 0x{heap.handle:x}"
                    prev_end = address + (block.size or 1)
                    size_sum += block.size
                assert size_sum == heap.live_bytes, (heap.label, size_sum, heap.live_bytes)
                assert heap.peak_bytes >= heap.live_bytes
                _check_series(heap.series, heap.live_bytes, heap.peak_bytes)
                total += heap.live_bytes
            assert total == proc.live_bytes, (proc.pid, total, proc.live_bytes)
            assert proc.peak_bytes >= proc.live_bytes
            _check_series(proc.series, proc.live_bytes, proc.peak_bytes)
            by_serial = {h.serial: h for h in proc.heaps.values()}
            assert len(by_serial) == len(proc.heaps)
            for address, serial in proc.freed.items():
                h = by_serial.get(serial)
                assert h is None or address not in h.blocks, f"freed 0x{address:x} is live"
            assert len(proc.freed) <= self.freed_memory


def _check_series(series: Series, live: int, peak: int) -> None:
    """A live-bytes series ends at the current value and peaks at the peak."""
    buckets = series.snapshot()
    if buckets:
        assert buckets[-1].last == live, (buckets[-1], live)
        assert max(b.high for b in buckets) == peak, (peak, buckets)
