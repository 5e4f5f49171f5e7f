"""The evaluation context compiled closures read, and coverage facts.

Every compiled expression is a closure ``fn(ctx) -> value``.  The runtime keeps
one :class:`Ctx` per trace and sets only the attributes the current trigger
needs (the event and its anomalies for event rules; the process, heap or block
for end rules) before calling the closures, so nothing is allocated per event.
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.events import ProcessFacts, TraceInfo
from heaplint.engine.state import HeapState, ProcessState


class Ctx:
    """Mutable evaluation context (one per trace run)."""

    __slots__ = (
        "ev",  # HeapEvent (event scopes)
        "anom",  # Anomaly being evaluated (anomaly-driven rules)
        "anomalies",  # all anomalies of the event
        "ended",  # the block the event freed or moved (state.ended, read once per event)
        "state",  # HeapState
        "info",  # TraceInfo
        "counters",  # ReplayCounters or None
        "stacks",  # StackTable
        "pid",  # pid of the process/heap/block scopes and of severity/confidence
        "proc",  # ProcessState (end scopes, severity)
        "heaprec",  # HeapRecord (heap and block scopes)
        "addr",  # block address (block scope)
        "block",  # Block (block scope)
        "win",  # current aggregate values (window and block rules)
        "key",  # current group key (window and block rules)
        "start_time",  # first time of the process (end scopes)
        "end_time",  # time the end rule runs
        "buckets",  # series snapshot (heap and process scopes)
        "trace_events",  # events read so far (trace scope)
        "trace_first",  # time of the first event of the trace
        "trace_last",  # time of the last event seen
    )

    def __init__(self, state: HeapState, info: TraceInfo, counters: Any = None) -> None:
        for name in self.__slots__:
            setattr(self, name, None)
        self.state = state
        self.info = info
        self.counters = counters
        self.stacks = {}
        self.anomalies = ()
        self.trace_events = 0


def event_process(c: Ctx) -> ProcessState | None:
    """The process of the current event (also at its own process-end record,
    after which the state has moved it to ``finished``)."""
    proc = c.state.processes.get(c.ev.pid)
    if proc is None and c.state.finished and c.state.finished[-1].pid == c.ev.pid:
        return c.state.finished[-1]
    return proc


def event_heap(state: HeapState, pid: int, handle: int) -> Any:
    """The HeapRecord of an event's heap, also at its own HeapDestroy (after
    which the state has moved it to the process's retired heaps)."""
    h = state.heap(pid, handle)
    if h is None:
        proc = state.processes.get(pid)
        if proc is not None and proc.retired and proc.retired[-1].handle == handle:
            return proc.retired[-1]
    return h


def facts(c: Ctx, pid: int | None) -> ProcessFacts | None:
    return c.info.processes.get(pid) if pid is not None else None


def image_of(c: Ctx, pid: int | None, proc: ProcessState | None) -> str:
    """Process image name as far as known ("" when unknown)."""
    if proc is not None and proc.image:
        return proc.image
    f = facts(c, pid)
    return (f.image if f is not None else None) or ""


def start_seen(c: Ctx, pid: int | None, proc: ProcessState | None) -> bool:
    if proc is not None and proc.start_seen:
        return True
    f = facts(c, pid)
    return bool(f is not None and f.start_seen)


def end_seen(c: Ctx, pid: int | None, proc: ProcessState | None) -> bool:
    if proc is not None and proc.end_seen:
        return True
    f = facts(c, pid)
    return bool(f is not None and f.end_seen)


def events_lost(c: Ctx, pid: int | None) -> int:
    """Events lost by the trace plus those lost for process ``pid`` (for every
    process when ``pid`` is None)."""
    if pid is None:
        return c.info.events_lost + sum(p.events_lost for p in c.info.processes.values())
    f = facts(c, pid)
    return c.info.events_lost + (f.events_lost if f is not None else 0)


def trace_lossy(c: Ctx) -> bool:
    """Events or buffers lost anywhere, or disorder beyond the reorder window."""
    info = c.info
    if info.events_lost or info.buffers_lost:
        return True
    if c.counters is not None and c.counters.out_of_order:
        return True
    return any(p.events_lost for p in info.processes.values())


def full_coverage(c: Ctx, pid: int | None, proc: ProcessState | None) -> bool:
    """The process start is in the trace and nothing was lost or garbled."""
    return start_seen(c, pid, proc) and not trace_lossy(c) and not c.info.bad_records
