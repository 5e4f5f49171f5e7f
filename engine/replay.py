"""Replay: order events, pair moving reallocs, apply them to a HeapState.

Two stages sit between a reader and :class:`~heaplint.engine.state.HeapState`:

**Reordering.**  Per-CPU buffers make file order differ slightly from time
order.  Events are held in a min-heap until the newest time seen is more than
the reorder window ahead of them, then released in (time, input order).  An
event older than one already released cannot be put back in place: it is
released at once and counted (``out_of_order``), never a crash.  Memory is the
number of events inside one window.

**Realloc pairing** (``realloc_mode``):

``auto`` (default)
    A moving ReAlloc (new address != old address) may come alone, or together
    with the inner HeapAlloc(new) and HeapFree(old) that some capture paths also
    log on the same thread at (nearly) the same time, before or after the
    ReAlloc record.  Both inner records, on the same process, thread and heap,
    within ``pair_window`` and forming one unbroken run of the thread's records
    with the ReAlloc, are recognised and dropped (counted in ``paired_inner``);
    see :mod:`heaplint.engine.pairing`.  The ReAlloc alone then performs the
    move, so both shapes give the same state and the move is counted once,
    while a free or allocation that reuses one of the addresses right after
    (or before) the move is kept.
``standalone``
    Every record is applied as it stands (for traces known to carry no inner
    events).
``paired``
    Moving ReAllocs are counted but change nothing; the inner Alloc/Free records
    carry the move (PerfView's reading).  Use it when the inner records are
    known to be present but too far apart in time for ``auto``.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Iterable, Iterator

from heaplint.engine.errors import UsageError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.pairing import ReallocPairer
from heaplint.engine.state import DEFAULT_ABSURD_SIZE, OUT_OF_ORDER, Anomaly, HeapState, ProcessState

REALLOC_MODES = ("auto", "standalone", "paired")
DEFAULT_REORDER_WINDOW_NS = 10_000_000  # 10 ms
DEFAULT_PAIR_WINDOW_NS = 1_000_000  # 1 ms

_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)
_REALLOC = int(Kind.REALLOC)
_BEFORE_ALL = -(1 << 256)  # before any trace time
#: the end of the input: at an infinite time, it releases everything buffered
_END = (HeapEvent(-1, float("inf"), 0),)  # type: ignore[arg-type]
#: released entries at the buffer's front are dropped in batches of at least
#: this many, and once they are at least as many as the buffered ones (memory
#: stays within twice the window's events, the memmove amortised O(1))
_COMPACT_AT = 256

@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How the replay orders and pairs events."""

    reorder_window_ns: int = DEFAULT_REORDER_WINDOW_NS
    pair_window_ns: int = DEFAULT_PAIR_WINDOW_NS
    realloc_mode: str = "auto"
    absurd_size: int = DEFAULT_ABSURD_SIZE

    def __post_init__(self) -> None:
        if self.realloc_mode not in REALLOC_MODES:
            raise UsageError(f"unknown realloc mode '{self.realloc_mode}'; known: {', '.join(REALLOC_MODES)}")
        if self.reorder_window_ns < 0 or self.pair_window_ns < 0:
            raise UsageError("reorder and pair windows must not be negative")


@dataclass
class ReplayCounters:
    """What the ordering and pairing stages did."""

    events_in: int = 0
    out_of_order: int = 0  # disorder beyond the reorder window
    reordered: int = 0  # events the window put back in place
    paired_inner: int = 0  # inner Alloc/Free of a moving realloc, dropped
    max_buffered: int = 0


def ordered(
    events: Iterable[HeapEvent],
    options: ReplayOptions,
    counters: ReplayCounters,
    on_out_of_order: Callable[[HeapEvent, int], None] | None = None,
) -> Iterator[HeapEvent]:
    """Yield ``events`` in time order (within the reorder window), with the
    inner records of moving reallocs dropped in ``auto`` mode (see
    :mod:`heaplint.engine.pairing`).

    Events are released in (time, input order) once the newest time seen is
    more than the hold time ahead of them.  The buffer is a list kept in that
    order from ``head`` on: an event at or after the newest time is appended
    (input already in order costs an append and a comparison, no heap), one
    within the window is inserted by bisection, one older than the last
    released goes out at once.  A sentinel at an infinite time ends the input,
    so that one loop releases both during the input and at its end.  Most
    released records cannot concern realloc pairing (see
    :meth:`~heaplint.engine.pairing.ReallocPairer.quiet_check`): those skip
    the pairer.
    """
    pairer = ReallocPairer(options.pair_window_ns, counters) if options.realloc_mode == "auto" else None
    hold = max(options.reorder_window_ns, options.pair_window_ns if pairer is not None else 0)
    if pairer is not None:
        buffered, release, flushed = pairer.buffered, pairer.release, pairer.flushed
        runs, watched, named = pairer.quiet_check()
    buf: list[tuple[int, int, HeapEvent]] = []  # (time, input number, event), sorted from head on
    head = 0
    newest = released = limit = _BEFORE_ALL
    seq = 0
    max_buffered = before = counters.max_buffered
    ended = False
    try:
        for ev in chain(events, _END):
            t = ev.time
            seq += 1
            if t < newest:
                if t < released:
                    counters.out_of_order += 1
                    if on_out_of_order is not None:
                        on_out_of_order(ev, released)
                    yield ev
                    continue
                counters.reordered += 1
                insort(buf, (t, seq, ev), head)
            else:
                buf.append((t, seq, ev))
                if t > newest:
                    newest = t
                    limit = t - hold
            if pairer is not None and ev.kind == _REALLOC:
                buffered(ev, seq)
            # the event holding the newest time is never below the limit: the
            # loop needs no bound check
            while buf[head][0] < limit:
                released, out_seq, out = buf[head]
                head += 1
                if pairer is None:
                    yield out
                    continue
                kind = out.kind
                if kind == _ALLOC or kind == _FREE:
                    quiet = out.address not in named and (
                        (not runs and not watched)
                        or (
                            out.time <= pairer.deadline
                            and (out.pid, out.tid) not in runs
                            and (out.pid, out.address) not in watched
                        )
                    )
                else:
                    quiet = kind != _REALLOC and not runs and not watched
                if quiet:
                    yield out
                    continue
                keep = release(out, out_seq)
                if flushed:
                    yield from flushed
                    flushed.clear()
                if keep:
                    yield out
            if head >= _COMPACT_AT and head + head >= len(buf):
                del buf[:head]
                head = 0
            if len(buf) - head > max_buffered:
                max_buffered = counters.max_buffered = len(buf) - head
        ended = True
    finally:
        counters.events_in += seq - 1 if ended else seq  # the sentinel is no event
    if seq == 1:  # no event: only the sentinel was buffered
        counters.max_buffered = before
    if pairer is not None:
        yield from pairer.finish()


@dataclass
class Replay:
    """One trace's replay: the ordering/pairing stages feeding a HeapState.

    ``on_process_end(process, time)`` is called before a process's heaps are
    dropped (at its end record, or at :meth:`finish` for processes still
    alive), so that end-of-process rules see its live blocks.
    """

    options: ReplayOptions = field(default_factory=ReplayOptions)
    on_process_end: Callable[[ProcessState, int], None] | None = None
    counters: ReplayCounters = field(default_factory=ReplayCounters)
    out_of_order: list[Anomaly] = field(default_factory=list)
    last_time: int | None = None  # the latest record time, once run

    def __post_init__(self) -> None:
        self.state = HeapState(
            absurd_size=self.options.absurd_size,
            realloc_moves=self.options.realloc_mode != "paired",
            on_process_end=self.on_process_end,
        )

    def _note_out_of_order(self, ev: HeapEvent, released: int) -> None:
        # keep a bounded sample; the count is in counters.out_of_order
        if len(self.out_of_order) < 100:
            self.out_of_order.append(Anomaly(OUT_OF_ORDER, ev, ev.pid, ev.heap, ev.address, 0, 0, 0, released - ev.time))
        proc = self.state.processes.get(ev.pid)
        if proc is not None:
            proc.anomalies[OUT_OF_ORDER] = proc.anomalies.get(OUT_OF_ORDER, 0) + 1

    def events(self, events: Iterable[HeapEvent]) -> Iterator[HeapEvent]:
        """The ordered, paired event stream (without applying it)."""
        return ordered(events, self.options, self.counters, self._note_out_of_order)

    def run(
        self,
        events: Iterable[HeapEvent],
        on_event: Callable[[HeapEvent, tuple[Anomaly, ...] | list[Anomaly]], None] | None = None,
    ) -> HeapState:
        """Replay every event; call ``on_event(event, anomalies)`` after each
        is applied (``state.ended`` then holds the block it ended).  Ends with
        :meth:`finish`."""
        apply = self.state.apply
        if on_event is None:
            for ev in self.events(events):
                apply(ev)
        else:
            for ev in self.events(events):
                on_event(ev, apply(ev))
        # the trace's latest time (records beyond the reorder window may have
        # been applied after later ones)
        self.last_time = max((p.last_time for p in self.state.all_processes()), default=None)
        self.finish()
        return self.state

    def finish(self) -> None:
        """Run the end hook for every process still alive at the end of the
        trace.  Their heaps stay in place (a trace end is not a process end)."""
        if self.on_process_end is None:
            return
        end = self.last_time if self.last_time is not None else 0
        for proc in list(self.state.processes.values()):
            self.on_process_end(proc, end)
