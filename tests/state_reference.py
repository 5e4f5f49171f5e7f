"""A plain-dict reference model of HeapState's documented semantics, and
event builders, for the state and replay tests (generators: state_traces.py).

The model is written from the documented semantics (issue 2, DESIGN.md), not
from engine/state.py: one ``dict`` address -> size per (pid, heap), linear
scans for every range question.  Slow and obviously right is the point.

Semantics modelled (standalone realloc reading):

* alloc: zero size is noted and tracked as a 1-byte span; negative or absurd
  sizes are noted and not tracked; address 0 is noted and not tracked.  Live
  blocks the new span overlaps are removed, one ``overlap`` each (ascending).
* free of a live address removes it.  Otherwise, in this order: inside a live
  block of the same heap -> interior-free; live at that exact address on another
  heap of the process -> wrong-heap-free; freed earlier on this heap and not
  allocated (anywhere in the process) since -> double-free; else unknown-free.
* realloc: in place resizes; moving = free(old) + alloc(new).  An unknown old
  address is classified like a free, and realloc-unknown-old is always reported
  too; the new block is tracked anyway.  OldSize disagreeing with the tracked
  size -> realloc-size-mismatch.  In paired mode a moving realloc changes nothing.
* destroy ends all blocks of the heap (noted when there were any); a create of
  a live handle ends the old heap (handle-reuse).  Any heap event on a heap the
  trace never created notes unknown-heap once per heap record.
* process end ends the process; a process start on a pid with any history ends
  the old process first (pid reuse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from heaplint.engine.events import HeapEvent, Kind

ABSURD = 1 << 40

ALLOC, FREE, REALLOC = int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)
CREATE, DESTROY = int(Kind.HEAP_CREATE), int(Kind.DESTROY)
START, END = int(Kind.PROCESS_START), int(Kind.PROCESS_END)


def span(size: int) -> int:
    """Bytes an address range covers: a zero-size block still occupies one."""
    return size if size > 0 else 1


@dataclass
class MHeap:
    created: bool
    time: int
    blocks: dict[int, int] = field(default_factory=dict)
    peak: int = 0
    peak_time: int = 0
    #: every value live bytes took between events (what a series may show)
    values: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.peak_time = self.time

    def live(self) -> int:
        return sum(self.blocks.values())


@dataclass
class MProc:
    time: int
    heaps: dict[int, MHeap] = field(default_factory=dict)
    freed: dict[int, int] = field(default_factory=dict)  # address -> handle
    start_seen: bool = False
    history: bool = False  # any heap event or a start seen
    peak: int = 0
    peak_time: int = 0
    values: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.peak_time = self.time

    def live(self) -> int:
        return sum(h.live() for h in self.heaps.values())


class Model:
    """The reference model.  ``apply`` returns the anomaly kinds of one event."""

    def __init__(self, realloc_moves: bool = True, absurd: int = ABSURD) -> None:
        self.procs: dict[int, MProc] = {}
        self.realloc_moves = realloc_moves
        self.absurd = absurd
        self.ended_size: int | None = None
        #: (pid, time, {handle: {address: size}}) for every process that ended
        self.process_ends: list[tuple[int, int, dict[int, dict[int, int]]]] = []

    # -- helpers ---------------------------------------------------------------
    def _end_process(self, pid: int, time: int) -> None:
        proc = self.procs.pop(pid)
        self.process_ends.append((pid, time, {h: dict(x.blocks) for h, x in proc.heaps.items()}))

    def _end_heap(self, proc: MProc, handle: int) -> None:
        del proc.heaps[handle]
        proc.freed = {a: h for a, h in proc.freed.items() if h != handle}

    def _heap(self, proc: MProc, ev: HeapEvent, out: list[str]) -> MHeap:
        heap = proc.heaps.get(ev.heap)
        if heap is None:
            heap = proc.heaps[ev.heap] = MHeap(False, ev.time)
            out.append("unknown-heap")
        return heap

    def _size_ok(self, size: int, out: list[str]) -> bool:
        if size == 0:
            out.append("zero-size")
        elif size < 0 or size >= self.absurd:
            out.append("absurd-size")
            return False
        return True

    def _place(self, proc: MProc, heap: MHeap, address: int, size: int, out: list[str]) -> None:
        end = address + span(size)
        for start in sorted(heap.blocks):
            if start < end and address < start + span(heap.blocks[start]):
                del heap.blocks[start]
                out.append("overlap")
        heap.blocks[address] = size
        proc.freed.pop(address, None)

    def _classify(self, proc: MProc, heap: MHeap, handle: int, address: int, default: str, out: list[str]) -> None:
        for start, size in heap.blocks.items():
            if start <= address < start + span(size):
                out.append("interior-free")
                return
        for h, other in proc.heaps.items():
            if other is not heap and address in other.blocks:
                out.append("wrong-heap-free")
                return
        if proc.freed.get(address) == handle:
            out.append("double-free")
            return
        out.append(default)

    # -- the entry point -----------------------------------------------------------
    def apply(self, ev: HeapEvent) -> list[str]:
        out: list[str] = []
        self.ended_size = None
        proc = self.procs.get(ev.pid)
        if proc is None:
            proc = self.procs[ev.pid] = MProc(ev.time)
        kind = ev.kind
        if kind == START:
            if proc.history:
                self._end_process(ev.pid, ev.time)
                proc = self.procs[ev.pid] = MProc(ev.time)
            proc.start_seen = proc.history = True
            return out
        if kind == END:
            self._end_process(ev.pid, ev.time)
            return out
        proc.history = True
        if kind == CREATE:
            if ev.heap in proc.heaps:
                out.append("handle-reuse")
                self._end_heap(proc, ev.heap)
            proc.heaps[ev.heap] = MHeap(True, ev.time)
        elif kind == DESTROY:
            heap = self._heap(proc, ev, out)
            if heap.blocks:
                out.append("destroy-with-live-blocks")
            self._end_heap(proc, ev.heap)
        else:
            heap = self._heap(proc, ev, out)
            source = ev.source
            if source == 5 or not 0 <= source <= 6:
                out.append("invalid-source")
            if kind == ALLOC:
                self._alloc(proc, heap, ev, out)
            elif kind == FREE:
                self._free(proc, heap, ev, out)
            else:
                self._realloc(proc, heap, ev, out)
        self._peaks(proc, ev.time)
        return out

    def _alloc(self, proc: MProc, heap: MHeap, ev: HeapEvent, out: list[str]) -> None:
        if ev.address == 0:
            out.append("null-address")
        elif self._size_ok(ev.size, out):
            self._place(proc, heap, ev.address, ev.size, out)

    def _free(self, proc: MProc, heap: MHeap, ev: HeapEvent, out: list[str]) -> None:
        if ev.address == 0:
            out.append("null-address")
        elif ev.address in heap.blocks:
            self.ended_size = heap.blocks.pop(ev.address)
            proc.freed[ev.address] = ev.heap
        else:
            self._classify(proc, heap, ev.heap, ev.address, "unknown-free", out)

    def _realloc(self, proc: MProc, heap: MHeap, ev: HeapEvent, out: list[str]) -> None:
        new, old = ev.address, ev.old_address
        if new == 0 or old == 0:
            out.append("null-address")
            return
        if new != old and not self.realloc_moves:
            return
        if not self._size_ok(ev.size, out):
            return
        if old in heap.blocks:
            prior = self.ended_size = heap.blocks.pop(old)
            if ev.old_size is not None and ev.old_size != prior:
                out.append("realloc-size-mismatch")
            if new != old:
                proc.freed[old] = ev.heap
        else:
            before = len(out)
            self._classify(proc, heap, ev.heap, old, "realloc-unknown-old", out)
            if out[before:] != ["realloc-unknown-old"]:
                out.append("realloc-unknown-old")
        self._place(proc, heap, new, ev.size, out)

    def _peaks(self, proc: MProc, time: int) -> None:
        for heap in proc.heaps.values():
            live = heap.live()
            heap.values.add(live)
            if live > heap.peak:
                heap.peak, heap.peak_time = live, time
        live = proc.live()
        proc.values.add(live)
        if live > proc.peak:
            proc.peak, proc.peak_time = live, time

    # -- views for comparisons ----------------------------------------------------
    def live_blocks(self) -> dict[tuple[int, int], dict[int, int]]:
        """(pid, heap) -> {address: size}, only heaps with live blocks."""
        return {(pid, h): dict(x.blocks) for pid, p in self.procs.items() for h, x in p.heaps.items() if x.blocks}


def state_blocks(state) -> dict[tuple[int, int], dict[int, int]]:
    """The same view of a real HeapState."""
    return {
        (pid, h): {a: b.size for a, b in heap.blocks.items()}
        for pid, p in state.processes.items()
        for h, heap in p.heaps.items()
        if heap.blocks
    }


def anomaly_view(anomalies: Iterable) -> list[tuple]:
    """Anomalies without the event's position in the input (index/line/seq)."""
    return [(a.kind, a.event.kind, a.event.time, a.pid, a.heap, a.address, a.size, a.other, a.count, a.bytes) for a in anomalies]


# ---------------------------------------------------------------------------
# event builders
# ---------------------------------------------------------------------------
def alloc(t: int, pid: int, heap: int, address: int, size: int, tid: int = 1, source: int = 3) -> HeapEvent:
    return HeapEvent(ALLOC, t, pid, tid, heap, address, size, source=source)


def free(t: int, pid: int, heap: int, address: int, tid: int = 1, source: int = 3) -> HeapEvent:
    return HeapEvent(FREE, t, pid, tid, heap, address, source=source)


def realloc(
    t: int, pid: int, heap: int, new: int, old: int, size: int, old_size: int | None = None, tid: int = 1, source: int = 3
) -> HeapEvent:
    return HeapEvent(REALLOC, t, pid, tid, heap, new, size, old, old_size, source)


def create(t: int, pid: int, heap: int, flags: int = 0) -> HeapEvent:
    return HeapEvent(CREATE, t, pid, 1, heap, flags=flags)


def destroy(t: int, pid: int, heap: int) -> HeapEvent:
    return HeapEvent(DESTROY, t, pid, 1, heap)


def start(t: int, pid: int, image: str | None = None) -> HeapEvent:
    return HeapEvent(START, t, pid, image=image)


def end(t: int, pid: int) -> HeapEvent:
    return HeapEvent(END, t, pid)


def indexed(events: Iterable[HeapEvent]) -> list[HeapEvent]:
    """Number events in input order (``index``), as a reader would."""
    return [ev._replace(index=i) for i, ev in enumerate(events)]
