"""One simulated process for ``heaplint synth``: a timeline of heap events.

A :class:`ProcessSim` owns its heaps (each with a
:class:`~heaplint.engine.synth_heap.HeapAllocator`), its threads and its
workloads.  :meth:`ProcessSim.run` is a generator: it repeatedly picks a
workload by weight and lets it take one *step* (one to three events), runs
one-off actions scheduled in trace time (bursts, injected defects), and yields
events as plain tuples in strictly increasing time, so that processes can be
merged by time with :func:`heapq.merge` and nothing is held in memory.

Event tuples (internal; :mod:`heaplint.engine.synth` turns them into
``HeapEvent``): ``(time, kind, pid, tid, heap, address, size, old_address,
old_size, source, stack, flags)`` with -1 for "no old size" / "no stack", so
that tuples always compare without ``None``.
"""

from __future__ import annotations

import heapq
import math
from random import Random
from typing import Callable, Iterator

from heaplint.engine.events import Kind
from heaplint.engine.synth_heap import HEAP_SPAN, HeapAllocator, size_class, source_of

EventTuple = tuple[int, int, int, int, int, int, int, int, int, int, int, int]

_CREATE = int(Kind.HEAP_CREATE)
_ALLOC = int(Kind.ALLOC)
_REALLOC = int(Kind.REALLOC)
_FREE = int(Kind.FREE)
_DESTROY = int(Kind.DESTROY)
_START = int(Kind.PROCESS_START)
_END = int(Kind.PROCESS_END)

#: the replay pairs inner Alloc/Free records within 1 ms of a moving realloc;
#: slots involved in a move stay out of reuse for longer than that
MOVE_GUARD_NS = 3_000_000
SHUTDOWN_MODES = ("clean", "exit", "none")
REALLOC_SHAPES = ("standalone", "paired", "mixed")
PAIRED_ORDERS = ("before", "after", "around")


def pick_base(rng: Random, taken: list[int]) -> int:
    """A heap base in the usual user-mode heap range (0x1_0000_0000_00 ..
    0x3_0000_0000_00), 64 KiB aligned, whose window is clear of ``taken``;
    the new base is appended to ``taken``."""
    while True:
        base = (0x100_0000_0000 + rng.randrange(0x200_0000_0000)) & ~0xFFFF
        if all(abs(base - b) >= HEAP_SPAN for b in taken):
            taken.append(base)
            return base


class HeapSim:
    """One heap instance of a simulated process."""

    __slots__ = ("name", "handle", "flags", "private", "alloc", "created_at", "destroyed_at")

    def __init__(self, name: str, handle: int, flags: int, private: bool, rng: Random) -> None:
        self.name = name
        self.handle = handle
        self.flags = flags
        self.private = private
        self.alloc = HeapAllocator(handle, rng)
        self.created_at: int | None = None
        self.destroyed_at: int | None = None


class ProcessSim:
    """The event timeline of one process (see the module docstring).

    ``start`` may be negative: in attach mode the process runs from before
    the capture and only events at or after time 0 are emitted.
    """

    def __init__(
        self,
        *,
        pid: int,
        image: str,
        rng: Random,
        threads: list[int],
        start: int,
        end_main: int,
        capture_end: int,
        events: int,
        shape: str,
        shutdown: str,
        emit_process_start: bool,
    ) -> None:
        self.pid = pid
        self.image = image
        self.rng = rng
        self.threads = threads
        self.start = start
        self.end_main = end_main
        self.capture_end = capture_end
        self.shape = shape
        self.shutdown_mode = shutdown
        self.emit_process_start = emit_process_start
        self.mean_gap = max(1.0, (end_main - start) / max(1, events))
        self.t = start
        self.near_min = 200  # ns between the events of one operation
        self.near_span = 2800
        self.debt = 0.0
        self._acting = False  # inside a scheduled action
        self.out: list[EventTuple] = []
        self.heaps: dict[str, HeapSim] = {}
        self.workloads: list = []
        self.weights: list[float] = []
        self._steppers: list = []
        self._cum: list[float] = []
        self._schedule: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        # truth counters: reallocs by shape, paired moves by inner-record order
        self.in_place = 0
        self.moves_standalone = 0
        self.moves_paired = 0
        self.paired_orders: dict[str, int] = {}
        self.defects: list[dict] = []
        self._free_handles: list[int] = []
        self._bases: list[int] = []

    # --- set-up ------------------------------------------------------------------
    def add_heap(self, name: str, handle: int, flags: int, private: bool) -> HeapSim:
        """A heap created at process start (destroyed at a clean shutdown when private)."""
        heap = HeapSim(name, handle, flags, private, self.rng)
        self.heaps[name] = heap
        if handle not in self._bases:
            self._bases.append(handle)
        return heap

    def new_handle(self, reuse: float = 0.0) -> int:
        """A heap handle for a heap created later: with probability ``reuse``
        the handle of a destroyed heap (Windows reuses the address range),
        otherwise a fresh 64 KiB-aligned base whose 8 GiB window overlaps no
        other heap of this process."""
        if self._free_handles and self.rng.random() < reuse:
            return self._free_handles.pop()
        return pick_base(self.rng, self._bases)

    def handle_freed(self, handle: int) -> None:
        self._free_handles.append(handle)

    def add_workload(self, workload, weight: float) -> None:
        self.workloads.append(workload)
        if weight > 0:
            self._steppers.append(workload)
            self.weights.append(weight)

    def at(self, time: int, action: Callable[[], None]) -> None:
        """Run ``action`` once the process clock reaches ``time``."""
        self._seq += 1
        heapq.heappush(self._schedule, (time, self._seq, action))

    def frac(self) -> float:
        """How far through its main phase the process is (0..1)."""
        return (self.t - self.start) / (self.end_main - self.start)

    def thread(self, threads: list[int]) -> int:
        return threads[int(self.rng.random() * len(threads))]

    # --- emitting ------------------------------------------------------------------
    def emit(
        self,
        kind: int,
        tid: int,
        heap: int,
        address: int = 0,
        size: int = 0,
        old: int = 0,
        old_size: int = -1,
        source: int = 0,
        stack: int = -1,
        flags: int = 0,
        near: bool = False,
    ) -> None:
        """Advance the clock and record one event.  ``near`` events follow the
        previous one within microseconds (parts of one operation), as do the
        events of a scheduled action.  Actions due before the next independent
        event run first, at their own time."""
        if self._acting:
            self.t += self.near_min + int(self.rng.random() * self.near_span)
        elif near:
            self.t += self.near_min + int(self.rng.random() * self.near_span)
            # a close follower still counts against the event rate: the next
            # independent event waits that much longer
            self.debt += self.mean_gap
        else:
            nxt = self.t + 1 + int(self.debt - self.mean_gap * math.log(1.0 - self.rng.random()))
            self.debt = 0.0
            if nxt > self.end_main:  # the last step of the main phase; shutdown follows
                nxt = max(self.end_main, self.t + 1)
            if self._schedule and self._schedule[0][0] < nxt:
                self._run_due(nxt)
                if nxt <= self.t:
                    nxt = self.t + self.near_min + int(self.rng.random() * self.near_span)
            self.t = nxt
        if self.t >= 0:
            self.out.append((self.t, kind, self.pid, tid, heap, address, size, old, old_size, source, stack, flags))

    def _run_due(self, limit: int) -> None:
        """Run the scheduled actions due before ``limit``, each at its time."""
        schedule = self._schedule
        self._acting = True
        try:
            while schedule and schedule[0][0] < limit:
                when, _, action = heapq.heappop(schedule)
                if when > self.t:
                    self.t = when
                action()
        finally:
            self._acting = False

    def alloc(self, heap: HeapSim, tid: int, size: int, stack: int, near: bool = False) -> int:
        """Allocate and record a block; returns its address."""
        address = heap.alloc.alloc(size, self.t)
        self.emit(_ALLOC, tid, heap.handle, address, size, 0, -1, heap.alloc.last_source, stack, 0, near)
        return address

    def free(self, heap: HeapSim, tid: int, address: int, size: int, near: bool = False) -> None:
        """Record a free and return the slot to the heap's free list."""
        self.emit(_FREE, tid, heap.handle, address, 0, 0, -1, source_of(size), -1, 0, near)
        heap.alloc.release(address, size, self.t)

    def realloc(
        self, heap: HeapSim, tid: int, address: int, old_size: int, new_size: int, stack: int, source: int = 0
    ) -> int:
        """Resize a block: in place when it fits its slot (same size class or
        smaller: shrinking never moves), otherwise a move in this process's
        realloc shape.  Returns the new address.

        A block shrunk in place is later released under its new, smaller
        size class: its slot is then reused for smaller blocks only, which
        wastes a little room but can never overlap a neighbour."""
        if size_class(new_size) <= size_class(old_size):
            self.in_place += 1
            self.emit(
                _REALLOC, tid, heap.handle, address, new_size, address, old_size, source or source_of(new_size), stack
            )
            return address
        new = heap.alloc.alloc(new_size, self.t, aged=self.t - MOVE_GUARD_NS)
        src = source or heap.alloc.last_source
        shape = self.shape
        if shape == "mixed":
            shape = "paired" if self.rng.random() < 0.5 else "standalone"
        h = heap.handle
        if shape == "standalone":
            self.moves_standalone += 1
            self.emit(_REALLOC, tid, h, new, new_size, address, old_size, src, stack)
        else:
            self.moves_paired += 1
            order = PAIRED_ORDERS[int(self.rng.random() * 3)]
            orders = self.paired_orders
            orders[order] = orders.get(order, 0) + 1
            inner_src = heap.alloc.last_source
            if order == "before":  # Alloc(new), Free(old), ReAlloc
                self.emit(_ALLOC, tid, h, new, new_size, 0, -1, inner_src, stack)
                self.emit(_FREE, tid, h, address, 0, 0, -1, source_of(old_size), -1, 0, True)
                self.emit(_REALLOC, tid, h, new, new_size, address, old_size, src, stack, 0, True)
            elif order == "after":  # ReAlloc, Alloc(new), Free(old)
                self.emit(_REALLOC, tid, h, new, new_size, address, old_size, src, stack)
                self.emit(_ALLOC, tid, h, new, new_size, 0, -1, inner_src, stack, 0, True)
                self.emit(_FREE, tid, h, address, 0, 0, -1, source_of(old_size), -1, 0, True)
            else:  # Alloc(new), ReAlloc, Free(old)
                self.emit(_ALLOC, tid, h, new, new_size, 0, -1, inner_src, stack)
                self.emit(_REALLOC, tid, h, new, new_size, address, old_size, src, stack, 0, True)
                self.emit(_FREE, tid, h, address, 0, 0, -1, source_of(old_size), -1, 0, True)
        heap.alloc.quarantine(address, old_size, self.t + MOVE_GUARD_NS)
        return new

    def create_heap(self, heap: HeapSim, tid: int, near: bool = True) -> None:
        self.emit(_CREATE, tid, heap.handle, flags=heap.flags, near=near)
        heap.created_at = self.t

    def destroy_heap(self, heap: HeapSim, tid: int, near: bool = True) -> None:
        self.emit(_DESTROY, tid, heap.handle, near=near)
        heap.destroyed_at = self.t

    # --- the timeline ------------------------------------------------------------
    def run(self) -> Iterator[EventTuple]:
        """Generate the process's events, in strictly increasing time."""
        main = self.threads[0]
        out = self.out
        if self.emit_process_start:
            self.emit(_START, main, 0, near=True)
        for heap in self.heaps.values():
            self.create_heap(heap, main)
        total = sum(self.weights)
        acc = 0.0
        for w in self.weights:
            acc += w / total
            self._cum.append(acc)
        cum, steppers, schedule, rng = self._cum, self._steppers, self._schedule, self.rng
        last = len(steppers) - 1
        end = self.end_main
        while self.t < end:
            if schedule and schedule[0][0] <= self.t:
                self._run_due(self.t + 1)
            r = rng.random()
            i = 0
            while i < last and cum[i] < r:
                i += 1
            steppers[i].step()
            if len(out) >= 512:
                yield from out
                out.clear()
        self._shutdown(main)
        yield from out
        out.clear()

    def _shutdown(self, main: int) -> None:
        mode = self.shutdown_mode
        if mode == "none":
            return
        if mode == "clean":
            # frees follow each other closely and must all fit before capture end
            live = sum(w.live_count() for w in self.workloads) + len(self.heaps) + 2
            room = max(2, (self.capture_end - self.t) // live)
            self.near_min, self.near_span = 1, min(2800, room - 1)
            for w in self.workloads:
                w.shutdown()
            for heap in self.heaps.values():
                if heap.private:
                    self.destroy_heap(heap, main)
        self.emit(_END, main, 0, near=True)
