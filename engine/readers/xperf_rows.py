"""What the xperf dumper reader accepts: event names, column aliases, and the
joining of ``Stack`` rows to the heap events they belong to.

Every table here is documented in docs/text-exports.md; keep them in step.
"""

from __future__ import annotations

from collections import deque

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers.tabular import Column, StackInterner

# --- event names (normalised: lower case, letters and digits only) -----------
#: "HeapAlloc", "Heap/Alloc", "Heap_Alloc" and "Heap Alloc" all normalise alike
HEAP_EVENT_NAMES: dict[str, Kind] = {
    "heapalloc": Kind.ALLOC,
    "heapallocate": Kind.ALLOC,
    "heapallocation": Kind.ALLOC,
    "heaprealloc": Kind.REALLOC,
    "heapreallocate": Kind.REALLOC,
    "heapreallocation": Kind.REALLOC,
    "heapfree": Kind.FREE,
    "heapcreate": Kind.HEAP_CREATE,
    "heapdestroy": Kind.DESTROY,
}
#: process records of the kernel session -> what they tell
PROCESS_EVENT_NAMES: dict[str, str] = {
    "pstart": "start",
    "pend": "end",
    "pdcstart": "dcstart",
    "pdcend": "dcend",
}
#: rows reporting lost events or buffers (unconfirmed spellings, see the docs)
LOST_EVENT_NAMES = frozenset(
    {"eventslost", "lostevent", "lostevents", "rtlostevent", "bufferslost", "lostbuffer", "lostbuffers"}
)

# --- columns -------------------------------------------------------------------
TIME = Column("time", "the timestamp", ("timestamp", "time", "timestampus"))
PROCESS = Column(
    "process", "the process ('name ( pid)')", ("processnamepid", "processpid", "processname", "process"), required=False
)
PID = Column("pid", "the process id", ("pid", "processid"), required=False)
THREAD = Column("tid", "the thread id", ("threadid", "tid", "thread"), required=False)
HEAP = Column("heap", "the heap handle", ("heaphandle", "handle", "heap", "hheap"))
SOURCE = Column("source", "the heap source", ("source", "allocsource", "heapsource", "memorysource"), required=False)
_COMMON = (TIME, PROCESS, PID, THREAD, HEAP)

HEAP_COLUMNS: dict[Kind, tuple[Column, ...]] = {
    Kind.ALLOC: _COMMON
    + (
        Column("address", "the block address", ("address", "allocaddress", "addr", "baseaddress", "ptr")),
        Column("size", "the requested size", ("size", "allocsize", "allocationsize", "requestedsize", "bytes")),
        SOURCE,
    ),
    Kind.REALLOC: _COMMON
    + (
        Column("address", "the new block address", ("newaddress", "newaddr", "newptr", "address")),
        Column("old_address", "the old block address", ("oldaddress", "oldaddr", "oldptr")),
        Column("size", "the new size", ("newsize", "size", "allocsize")),
        Column("old_size", "the old size", ("oldsize",), required=False),
        SOURCE,
    ),
    Kind.FREE: _COMMON
    + (Column("address", "the freed address", ("address", "freeaddress", "addr", "baseaddress", "ptr")), SOURCE),
    Kind.HEAP_CREATE: _COMMON + (Column("flags", "the heap flags", ("flags", "heapflags", "createflags"), required=False),),
    Kind.DESTROY: _COMMON,
}

PROCESS_COLUMNS = (TIME, Column("process", PROCESS.what, PROCESS.aliases))

STACK_COLUMNS = (
    TIME,
    Column("tid", THREAD.what, THREAD.aliases),
    Column("number", "the frame number", ("no", "number", "framenumber", "frameno", "index"), required=False),
    Column("frame", "the frame ('Image!Function')", ("imagefunction", "function", "symbol", "frame"), required=False),
    Column("address", "the frame address", ("address", "addr", "ip"), required=False),
)

LOST_COLUMNS = (
    Column("count", "how many were lost", ("eventslost", "bufferslost", "lost", "count", "number"), required=False),
    Column("process", PROCESS.what, PROCESS.aliases, required=False),
)


def summarise_skipped(skipped: dict[str, int], shown: int = 8) -> str:
    """``"skipped 1,200 rows of 3 event types heaplint does not read: CSwitch 1,000, ..."``."""
    total = sum(skipped.values())
    top = sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = ", ".join(f"{name} {n:,}" for name, n in top[:shown])
    more = f" and {len(top) - shown} more" if len(top) > shown else ""
    return f"skipped {total:,} rows of {len(top)} event type(s) heaplint does not read: {listed}{more}"


# --- stacks ---------------------------------------------------------------------
_WANTS_STACK = (int(Kind.ALLOC), int(Kind.REALLOC))


class StackJoiner:
    """Holds heap events briefly so that the ``Stack`` rows of the same
    (timestamp, thread) can be attached to them.

    Rules (documented in docs/text-exports.md):

    * consecutive Stack rows with the same (timestamp, thread) form one stack,
      innermost frame first (the dumper numbers frames from 1 at the leaf);
      a kernel part and a user part numbered separately are concatenated;
    * a stack goes to the oldest waiting Alloc/ReAlloc with that key that has
      none yet, else to any waiting event with that key that has none; when
      the numbering restarts at 1 and another such event waits, the new
      frames start that event's stack;
    * an event waits at most ``window_ns`` of trace time (measured against the
      newest timestamp seen) and at most ``cap`` events wait at once.

    When the dump has no Stack header at all (``enabled`` false) events pass
    straight through.
    """

    def __init__(self, interner: StackInterner, out: deque, window_ns: int, cap: int) -> None:
        self.interner = interner
        self.out = out
        self.window_ns = window_ns
        self.cap = cap
        self.enabled = False
        self.newest: int | None = None
        self.last_line = -1
        self._fifo: deque[list] = deque()
        self._by_key: dict[tuple[int, int], list[list]] = {}
        self._block_key: tuple[int, int] | None = None
        self._target: list | None = None
        self.attached = 0
        self.orphans = 0
        self.forced = 0
        #: the most events that ever waited at once
        self.max_waiting = 0

    def add(self, ev: HeapEvent) -> None:
        """Queue one decoded event (heap or process) in file order."""
        t = ev.time
        if self.newest is None or t > self.newest:
            self.newest = t
        if not self.enabled:
            self.out.append(ev)
            return
        entry = [ev, None]
        self._fifo.append(entry)
        if ev.kind <= int(Kind.DESTROY):  # heap kinds; process records carry no stack
            self._by_key.setdefault((t, ev.tid), []).append(entry)
        self._release()
        if len(self._fifo) > self.max_waiting:
            self.max_waiting = len(self._fifo)

    def frame(self, time: int, tid: int, number: int, frame: str, line_no: int, contiguous: bool) -> None:
        """One Stack row.  ``contiguous``: the previous record row was a Stack row."""
        if self.newest is None or time > self.newest:
            self.newest = time
        key = (time, tid)
        self.last_line = line_no
        if contiguous and key == self._block_key:
            target = self._target
            if target is None:
                return  # the rest of a stack that matched nothing
            if number == 1 and target[1]:
                other = self._frameless(key)
                if other is not None:
                    target = self._target = other
        else:
            self._block_key = key
            target = self._target = self._frameless(key) or self._last_stacked(key)
            if target is None:
                self.orphans += 1
                return
        if target[1] is None:
            target[1] = []
        target[1].append(frame)

    def _frameless(self, key: tuple[int, int]) -> list | None:
        entries = self._by_key.get(key)
        if not entries:
            return None
        fallback = None
        for entry in entries:
            if entry[1] is None:
                if entry[0].kind in _WANTS_STACK:
                    return entry
                if fallback is None:
                    fallback = entry
        return fallback

    def _last_stacked(self, key: tuple[int, int]) -> list | None:
        for entry in reversed(self._by_key.get(key, ())):
            if entry[1] is not None:
                return entry
        return None

    def _release(self) -> None:
        fifo = self._fifo
        limit = self.newest - self.window_ns  # type: ignore[operator]
        while fifo:
            if fifo[0][0].time < limit:
                self._finish(fifo.popleft())
            elif len(fifo) > self.cap:
                self.forced += 1
                self._finish(fifo.popleft())
            else:
                break

    def _finish(self, entry: list) -> None:
        ev, frames = entry
        key = (ev.time, ev.tid)
        entries = self._by_key.get(key)
        if entries is not None:
            for i, other in enumerate(entries):
                if other is entry:
                    del entries[i]
                    break
            if not entries:
                del self._by_key[key]
        if entry is self._target:
            self._target = None
            self._block_key = None
        if frames:
            self.attached += 1
            ev = ev._replace(stack=self.interner.intern(frames))
        self.out.append(ev)

    def flush(self) -> None:
        """Release every waiting event (end of input)."""
        while self._fifo:
            self._finish(self._fifo.popleft())

    def notes(self) -> list[str]:
        """What the joining did, for ``TraceInfo.notes``."""
        if not self.enabled:
            return []
        notes = [f"stacks from Stack rows attached to {self.attached:,} heap event(s)"]
        if self.orphans:
            notes.append(f"{self.orphans:,} stack(s) matched no waiting heap event (same timestamp and thread)")
        if self.forced:
            notes.append(
                f"{self.forced:,} event(s) were released before their stack window ended because "
                f"more than {self.cap:,} events waited"
            )
        return notes
