"""What the WPA Heap Allocations CSV reader accepts, and how one lifetime row
becomes at most one allocation and one free.  Documented in
docs/text-exports.md; keep the two in step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers.tabular import (
    Column,
    StackInterner,
    find_columns,
    normalise_label,
    parse_address,
    parse_count,
    parse_decimal_ns,
    parse_process,
    parse_source,
)

if TYPE_CHECKING:
    from heaplint.engine.readers.base import TraceReader

AIFI, AIFO, AOFI, AOFO = "AIFI", "AIFO", "AOFI", "AOFO"
LIFETIME_TYPES: dict[str, str] = {
    "aifi": AIFI,
    "aifo": AIFO,
    "aofi": AOFI,
    "aofo": AOFO,
    "allocatedinsidefreedinside": AIFI,
    "allocatedinsidefreedoutside": AIFO,
    "allocatedoutsidefreedinside": AOFI,
    "allocatedoutsidefreedoutside": AOFO,
}

TYPE = Column("type", "the lifetime Type (AIFI/AIFO/AOFI/AOFO)", ("type", "lifetimetype", "allocationtype"))
ALLOC_TIME = Column("alloc_time", "the allocation time", ("alloctime", "allocationtime", "allocatedtime"))
FREE_TIME = Column("free_time", "the free time", ("freetime", "freedtime", "deallocationtime", "deallocatedtime"))
PROCESS = Column("process", "the process ('name (pid)')", ("process", "processnamepid", "processname"), required=False)
COLUMNS: tuple[Column, ...] = (
    TYPE,
    ALLOC_TIME,
    FREE_TIME,
    PROCESS,
    Column("pid", "the process id", ("pid", "processid"), required=False),
    Column("tid", "the allocating thread", ("threadid", "thread", "tid", "allocthreadid", "allocthread"), required=False),
    Column("free_tid", "the freeing thread", ("freethreadid", "freethread", "freetid"), required=False),
    Column("heap", "the heap handle", ("handle", "heaphandle", "heap"), required=False),
    Column("address", "the block address", ("address", "allocaddress", "allocationaddress", "baseaddress")),
    Column("size", "the allocation size", ("size", "allocsize", "allocationsize", "requestedsize")),
    Column("count", "the allocation count", ("count", "allocationcount"), required=False),
    Column("stack", "the allocation stack", ("stack", "allocstack", "allocationstack"), required=False),
    Column("source", "the heap source", ("source", "allocsource", "heapsource"), required=False),
    Column("realloc", "the Is Realloc flag", ("isrealloc", "realloc", "reallocated"), required=False),
)
_TRUE = frozenset({"true", "yes", "1", "x", "y"})
_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)


def is_wpa_header(labels: Sequence[str]) -> bool:
    """Whether a first row looks like a Heap Allocations export header."""
    found, _ = find_columns(labels, (TYPE, ALLOC_TIME, FREE_TIME))
    return "alloc_time" in found and ("type" in found or "free_time" in found)


def lifetime_times(fields: Sequence[str], type_i: int, alloc_i: int, free_i: int) -> tuple[str, int | None, int | None]:
    """``(type, alloc_ns, free_ns)`` of one row; the times its Type does not
    use are ``None``.  ValueError on an unknown Type or a missing/bad time."""
    raw = fields[type_i].strip()
    cls = LIFETIME_TYPES.get(raw.lower()) or LIFETIME_TYPES.get(normalise_label(raw))
    if cls is None:
        shown = f"'{raw}'" if raw else "an empty Type"
        raise ValueError(f"unknown lifetime Type {shown} (expected AIFI, AIFO, AOFI or AOFO)")
    alloc = free = None
    if cls is AIFI or cls is AIFO:
        if not fields[alloc_i].strip():
            raise ValueError(f"{cls} row without an AllocTime")
        alloc = parse_decimal_ns(fields[alloc_i], 9)
    if cls is AIFI or cls is AOFI:
        if not fields[free_i].strip():
            raise ValueError(f"{cls} row without a FreeTime")
        free = parse_decimal_ns(fields[free_i], 9)
    if alloc is not None and free is not None and free < alloc:
        raise ValueError(f"FreeTime {fields[free_i].strip()} is before AllocTime {fields[alloc_i].strip()}")
    return cls, alloc, free


def parse_stack_cell(text: str) -> list[str]:
    """Frames of an exported Stack cell, innermost first.

    Frames are separated by newlines (a multi-line quoted cell), ``|`` or
    ``/``, tried in that order.  WPA lists stacks root first, so the frames
    are reversed unless the cell ends with the ``[Root]`` marker (then it is
    already innermost first).  ``[Root]`` itself is dropped."""
    t = text.strip()
    if not t:
        return []
    for sep in ("\n", "|", "/"):
        if sep in t:
            parts = [p.strip() for p in t.split(sep)]
            break
    else:
        parts = [t]
    frames = [p for p in parts if p]
    if frames and frames[-1].lower() == "[root]":
        return frames[:-1]
    if frames and frames[0].lower() == "[root]":
        frames = frames[1:]
    frames.reverse()
    return frames


class RowDecoder:
    """Turns one lifetime row into ``(alloc event or None, free event or None)``
    and keeps the per-type counts for the trace notes."""

    def __init__(self, reader: "TraceReader", interner: StackInterner) -> None:
        self.reader = reader
        self.info = reader.info
        self.interner = interner
        self.counts = {AIFI: 0, AIFO: 0, AOFI: 0, AOFO: 0}
        self.aggregated = 0
        self.represented = 0
        self.realloc_rows = 0
        self.records = 0
        #: exported cell text -> stack id; as many entries as distinct stacks
        self.stack_of_cell: dict[str, int | None] = {}
        self.cols: dict[str, int] = {}
        self.header_len = 0
        self.header_line = 0

    def bind(self, cols: dict[str, int], labels: Sequence[str], line: int) -> None:
        """Remember where the columns are (from the header row at ``line``)."""
        self.cols = cols
        self.header_len = len(labels)
        self.header_line = line

    def decode(self, f: list[str], line: int) -> tuple[HeapEvent | None, HeapEvent | None] | None:
        """The events of row ``f`` (``None`` for AOFO and skipped bad rows)."""
        c = self.cols
        g = c.get
        try:
            cls, alloc_t, free_t = lifetime_times(f, c["type"], c["alloc_time"], c["free_time"])
            proc_i, pid_i = g("process"), g("pid")
            parsed = parse_process(f[proc_i]) if proc_i is not None else None
            if parsed is None:
                if pid_i is None:
                    raise ValueError(f"no process id in '{f[proc_i].strip()}'")  # type: ignore[index]
                parsed = (None, int(f[pid_i]))
            image, pid = parsed
            heap = parse_address(f[c["heap"]]) if "heap" in c else 0
            address = parse_address(f[c["address"]])
            tid_i, ftid_i = g("tid"), g("free_tid")
            tid = int(f[tid_i]) if tid_i is not None and f[tid_i].strip() else 0
            free_tid = int(f[ftid_i]) if ftid_i is not None and f[ftid_i].strip() else 0
            size = source = 0
            stack = None
            if alloc_t is not None:
                size = parse_count(f[c["size"]])
                if "source" in c and f[c["source"]].strip():
                    source = parse_source(f[c["source"]])
                if "count" in c and f[c["count"]].strip():
                    count = parse_count(f[c["count"]])
                    if count > 1:
                        self.aggregated += 1
                        self.represented += count
                if "stack" in c:
                    cell = f[c["stack"]]
                    stack = self.stack_of_cell.get(cell, 0)
                    if stack == 0:  # 0: not seen yet (None means an empty stack)
                        stack = self.stack_of_cell[cell] = self.interner.intern(parse_stack_cell(cell))
            if "realloc" in c and f[c["realloc"]].strip().lower() in _TRUE:
                self.realloc_rows += 1
        except (ValueError, IndexError) as err:
            if isinstance(err, IndexError):
                msg = f"row has {len(f)} values but the header row (line {self.header_line}) has {self.header_len}"
            else:
                msg = str(err)
            self.reader.bad_record(msg, line=line)
            return None
        self.counts[cls] += 1
        if cls is AOFO:
            return None
        index = self.records
        self.records += 1
        facts = self.info.process(pid)
        if image and not facts.image:
            facts.image = image
        alloc = free = None
        if alloc_t is not None:
            alloc = HeapEvent(_ALLOC, alloc_t, pid, tid, heap, address, size, 0, None, source, stack, 0, None, index, line)
            self._saw(alloc_t)
        if free_t is not None:
            free = HeapEvent(_FREE, free_t, pid, free_tid, heap, address, 0, 0, None, 0, None, 0, None, index, line)
            self._saw(free_t)
        if cls is AOFI:
            facts.start_seen = False
        return alloc, free

    def _saw(self, t: int) -> None:
        info = self.info
        if info.capture_start is None or t < info.capture_start:
            info.capture_start = t
        if info.capture_end is None or t > info.capture_end:
            info.capture_end = t

    def notes(self) -> list[str]:
        """What the rows were, for ``TraceInfo.notes``."""
        n = self.counts
        notes = [
            f"lifetime rows: AIFI {n[AIFI]:,}, AIFO {n[AIFO]:,}, AOFI {n[AOFI]:,}, AOFO {n[AOFO]:,} "
            "(AOFO rows hold nothing observable inside the trace and were skipped)"
        ]
        if "heap" not in self.cols:
            notes.append("no heap handle column: each process's blocks were put on one heap (handle 0)")
        if self.aggregated:
            notes.append(
                f"{self.aggregated:,} aggregated row(s) (Count > 1, {self.represented:,} allocations) were replayed "
                "as one block of their total Size each; export an ungrouped table to count blocks exactly"
            )
        if self.realloc_rows:
            notes.append(f"{self.realloc_rows:,} row(s) were made by a realloc (Is Realloc): replayed as free + alloc")
        return notes
