"""The normalized event model every reader produces and the replay consumes.

``HeapEvent`` is a ``NamedTuple``: immutable, typed, and as cheap to create as a
tuple, because readers make one per record on the hot path.  Times are integer
nanoseconds of *trace time* (the trace's own clock, never the wall clock),
counted from an arbitrary origin chosen by the reader (usually capture start).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class Kind(enum.IntEnum):
    """What a record is.  The values are stable: they appear in compiled rules."""

    HEAP_CREATE = 1
    ALLOC = 2
    REALLOC = 3
    FREE = 4
    DESTROY = 5
    PROCESS_START = 6
    PROCESS_END = 7


#: canonical record-kind names (the ``kind`` column of the canonical format).
KIND_NAMES: dict[Kind, str] = {
    Kind.HEAP_CREATE: "create",
    Kind.ALLOC: "alloc",
    Kind.REALLOC: "realloc",
    Kind.FREE: "free",
    Kind.DESTROY: "destroy",
    Kind.PROCESS_START: "process_start",
    Kind.PROCESS_END: "process_end",
}
KIND_BY_NAME: dict[str, Kind] = {v: k for k, v in KIND_NAMES.items()}


class Source(enum.IntEnum):
    """Where the heap manager served a block from (the ETW ``Source`` field).

    ``UNKNOWN`` (0) means the record did not carry a source.
    """

    UNKNOWN = 0
    LOOKASIDE = 1
    LFH = 2
    MAINPATH = 3
    SLOWPATH = 4
    INVALID = 5
    SEGMENT = 6


SOURCE_BY_NAME: dict[str, Source] = {s.name: s for s in Source}


class HeapEvent(NamedTuple):
    """One normalized heap or process record.

    Field use by kind:

    ========== ===================================================================
    create     heap, flags
    alloc      heap, address, size, source, stack
    realloc    heap, address (new), size (new), old_address, old_size, source, stack
    free       heap, address, source
    destroy    heap
    process_*  image
    ========== ===================================================================

    ``index`` is the record's ordinal in the input (0-based, file order) and
    ``line`` its line number where the input is text (0 otherwise); both serve
    error messages and finding locations.
    """

    kind: int
    time: int
    pid: int
    tid: int = 0
    heap: int = 0
    address: int = 0
    size: int = 0
    old_address: int = 0
    old_size: int | None = None  # None: the record did not carry it
    source: int = 0
    stack: int | None = None
    flags: int = 0
    image: str | None = None
    index: int = 0
    line: int = 0


@dataclass
class ProcessFacts:
    """What a trace says about one process's coverage.

    ``None`` means the trace did not say; the replay then infers what it can
    (a process-start record seen means the start is inside the trace).
    """

    pid: int
    image: str | None = None
    start_seen: bool | None = None
    end_seen: bool | None = None
    events_lost: int = 0


@dataclass
class TraceInfo:
    """Trace-level facts.  Readers fill it as they go; it is final once the
    event iterator is exhausted (an .etl file, for instance, reports lost
    buffers per buffer)."""

    path: str
    format: str
    format_version: int | None = None
    pointer_size: int | None = None
    events_lost: int = 0
    buffers_lost: int = 0
    capture_start: int | None = None  # trace time, ns
    capture_end: int | None = None  # trace time, ns
    start_wall_time: str | None = None  # ISO 8601 UTC when known
    clock: str | None = None
    timer_frequency: int | None = None
    processes: dict[int, ProcessFacts] = field(default_factory=dict)
    bad_records: int = 0
    #: reader notes worth showing the user (assumptions, skipped record kinds)
    notes: list[str] = field(default_factory=list)

    def process(self, pid: int) -> ProcessFacts:
        """The facts for ``pid``, created empty when the trace said nothing."""
        facts = self.processes.get(pid)
        if facts is None:
            facts = self.processes[pid] = ProcessFacts(pid)
        return facts


#: stack id -> frames, innermost first.  Frames are strings: a symbol
#: (``module!function+0x12``) or ``module+0xoffset`` or a bare ``0x...`` address.
StackTable = dict[int, tuple[str, ...]]


TIME_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "100ns": 100,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
}
