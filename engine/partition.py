"""Replaying one partition (a subset of the processes) of a trace, and merging
partitions back into the result of replaying the whole trace.

The processes of a trace are independent: no heap, block or rule group spans
two of them.  What they share is the *order* of events: the replay's reorder
window releases an event once a newer one (of any process) is far enough
ahead, realloc pairing looks at what is buffered at that moment, disorder
beyond the window is counted trace-wide, and process-end rules at trace end
see the trace's last time.  So a partition does not simply drop the other
processes' records: its reader hands them over as runs of bare times (the
canonical JSONL reader reads them from the raw bytes without decoding the
records), and :class:`PartitionReplay` orders its own events with
:class:`~heaplint.engine.partition_order.PartitionOrder`, which lets those
times raise the reorder watermark and, where it matters (rarely), take part
in disorder counting and realloc pairing exactly as in a whole replay.  Each
partition therefore applies its events at the same points, with the same
counters, as a replay of the whole trace, and the merge is exact:

* processes are assigned to partitions round-robin in order of first
  appearance (:class:`PidPartition`; every partition reads the same input, so
  every partition makes the same assignment without a pre-pass);
* processes merge in the order the whole replay lists them (finished ones in
  the order they ended, then live ones in order of appearance), using the
  stream position at which each appeared and ended;
* counters over the whole stream (events, out of order) are the same in
  every partition; reordered events and realloc pairs are counted by their
  process's partition and summed;
* ``scope: trace`` rules run once, in the parent, on the merged facts
  (:func:`heaplint.engine.partition_merge.merge_parts`);
* findings are capped per rule and window groups per rule: when the
  partitions together come near a cap, the merge could differ from a whole
  replay, so ``merge_parts`` returns None and the caller replays the trace
  whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.engine.findings import Finding, ProcessQuality, TraceQuality
from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
from heaplint.engine.partition_order import PartitionAbandoned, PartitionOrder
from heaplint.engine.replay import Replay, ReplayCounters, ReplayOptions
from heaplint.engine.state import ProcessState
from heaplint.engine.stats import stats_document, trace_quality

_PROCESS_START = int(Kind.PROCESS_START)


class PidPartition:
    """Partition ``index`` of ``count``: ``pid in partition`` assigns each new
    pid, in the order they are asked about, to partition ``0, 1, ..., count-1,
    0, ...`` and says whether it is this one.  Readers ask once per event in
    input order, so partitions reading the same input agree without talking.
    One object per reading (it remembers the assignment)."""

    __slots__ = ("index", "count", "owners")

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"partition {index} of {count}")
        self.index = index
        self.count = count
        self.owners: dict[int, int] = {}

    def __contains__(self, pid: object) -> bool:
        owners = self.owners
        owner = owners.get(pid)  # type: ignore[call-overload]
        if owner is None:
            owner = owners[pid] = len(owners) % self.count  # type: ignore[index]
        return owner == self.index

    def __repr__(self) -> str:
        return f"PidPartition({self.index}, {self.count})"


class PartitionReplay(Replay):
    """A :class:`Replay` of one partition's items: its own events and the
    other partitions' records as runs of times, ordered by
    :class:`~heaplint.engine.partition_order.PartitionOrder`.

    For the merge it remembers, per process, where it stands in a whole
    replay's ``all_processes()`` (:meth:`order_key`), and it ends processes
    still alive at the latest time of any record, the other partitions'
    included (:attr:`last_time`).  The keys are exact unless
    :attr:`order_exact` says otherwise; the end time is checked when merging
    (:func:`heaplint.engine.partition_merge.exact_merge_possible`).

    Set :attr:`index_is_position` when the reader numbers events (``index``)
    in input order, the other partitions' records included (the canonical
    readers); otherwise the ordering stage tells each own event's position
    as it comes out (``PartitionOrder.top``, or ``marks`` for the few that
    were late or that realloc pairing held back).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.index_is_position = False
        #: False when some order key may be wrong (see :meth:`_special`)
        self.order_exact = True
        #: raise :class:`PartitionAbandoned` as soon as :attr:`order_exact`
        #: turns False in the replay (the merge would decline anyway)
        self.give_up_when_unsure = False
        self._keys: dict[int, tuple[int, int, int]] = {}  # id(ProcessState) -> order key
        self._order: PartitionOrder | None = None

    def events(self, events: Iterable[Any]) -> Iterator[HeapEvent]:
        order = self._order = PartitionOrder(self.options, self.counters, self._note_out_of_order,
                                             self.index_is_position)
        # only a process's first event and process records change the process
        # lists: the ordering stage hands those to _special, the rest straight out
        order.watch = self.state.processes
        order.on_special = self._special
        return order.events(events)

    def _special(self, ev: HeapEvent) -> Iterator[HeapEvent]:
        """Yield ``ev`` (a process record, or the first event of its pid) and,
        once the replay applied it, note the order keys it gave processes.

        The ordering stage releases events in (time, input position) order,
        except an event older than one already released, which it passes
        through at once, and records realloc pairing holds back for a while.
        So (time, position) orders the processes' first and last events across
        partitions as long as each came out in that order: one that came out
        after a later record (of any partition), or that was older than the
        reorder window allows when it went in, makes its key unsure
        (:attr:`order_exact`)."""
        order = self._order
        assert order is not None
        finished = self.state.finished
        marks = order.marks
        t = ev.time
        done = len(finished)
        mark = marks.pop(id(ev), None) if marks else None
        if self.index_is_position:
            pos = ev.index
        elif mark is not None:
            pos = mark[1]
        else:  # out of the buffer in order, or held by pairing and its mark forgotten
            pos = -1 if order.flushing else order.top[1]
        # the latest own and other records out before it (the own one may be
        # this event, or later than any out yet: see own_top; either way the
        # check below is right or says unsure)
        before = max(order.own_top(), order.foreign_top())
        yield ev
        if pos < 0 or (mark is not None and mark[2]) or (t, pos) < before:
            self.order_exact = False
            if self.give_up_when_unsure:  # the merge would decline: stop now
                raise PartitionAbandoned(f"process {ev.pid}: its first or last event came out of order, "
                                         "so its place among the processes is unsure")
        keys = self._keys
        proc = self.state.processes.get(ev.pid)
        if proc is not None and id(proc) not in keys:
            keys[id(proc)] = (1, t, pos)
        for p in finished[done:]:
            keys[id(p)] = (0, t, pos)

    def finish(self) -> None:
        if self._order is None:  # pragma: no cover - guards a change in Replay.run
            raise RuntimeError("PartitionReplay needs Replay.run to read its events through Replay.events()")
        self._order.marks.clear()
        # Replay.run ends processes at the latest time of any process: here
        # the other partitions' latest time is the latest of their records
        # (checked against their own partitions when merging)
        latest = [t for t in (self.last_time, self._order.foreign_max()) if t is not None]
        self.last_time = max(latest, default=None)
        super().finish()

    def order_key(self, proc: ProcessState) -> tuple[int, int, int]:
        """Where ``proc`` stands in a whole replay's ``all_processes()``:
        finished ones (0, ...) by their last event, then live ones (1, ...) by
        their first, each as (time, input position)."""
        return self._keys[id(proc)]


@dataclass
class ProcessPart:
    """One process of a partition, with everything the merge needs."""

    key: tuple[int, int, int]
    pid: int
    image: str | None
    start_seen: bool
    end_seen: bool
    first_time: int
    last_time: int
    stats: dict[str, Any]  # its entry of the stats document's "processes"
    quality: ProcessQuality
    series: list[tuple[tuple[int, int], list[tuple[int, int]]]]


@dataclass
class PartResult:
    """What one partition of one trace produced (picklable)."""

    path: str
    info: TraceInfo
    counters: ReplayCounters
    last_time: int | None  # the time it ended live processes at
    order_exact: bool
    quality: TraceQuality
    stats: dict[str, Any]  # the stats document without its processes
    processes: list[ProcessPart]
    findings: list[Finding] = field(default_factory=list)
    #: rule id -> (findings made, cap) and (peak window groups, cap)
    finding_caps: dict[str, tuple[int, int]] = field(default_factory=dict)
    group_caps: dict[str, tuple[int, int]] = field(default_factory=dict)


def is_trace_scope(rule: Any) -> bool:
    """Whether ``rule`` is an end rule with ``scope: trace`` (run once per trace)."""
    from heaplint.rules.model import END_RULE

    return rule.trigger == END_RULE and rule.scope == "trace"


def process_series(proc: ProcessState) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
    """Live bytes over time of each heap of ``proc`` (see ``TraceResult.series``)."""
    out = []
    for heap in proc.all_heaps():
        points = [(b.start, b.last) for b in heap.series.snapshot()]
        if points:
            out.append(((proc.pid, heap.handle), points))
    return out


def replay_partition(
    path: str,
    index: int,
    count: int,
    *,
    rules: Sequence[Any] | None = None,
    input_format: str | None = None,
    reader_options: ReaderOptions | None = None,
    replay_options: ReplayOptions | None = None,
    index_is_position: bool | None = None,
    give_up_when_unsure: bool = False,
) -> PartResult:
    """Replay partition ``index`` of ``count`` of the trace at ``path``,
    evaluating ``rules`` (compiled rules; ``scope: trace`` ones are left to
    the merge) when given.  ``index_is_position`` overrides what
    the reader says (see :class:`PartitionReplay`).  With
    ``give_up_when_unsure``, raise :class:`PartitionAbandoned` as soon as
    the result could not merge (:attr:`PartitionReplay.order_exact`)
    instead of finishing it."""
    ropts = dataclasses.replace(reader_options or ReaderOptions(), pids=PidPartition(index, count), pid_stubs=True)
    options = replay_options or ReplayOptions()
    reader, trace_input = open_trace(path, input_format, ropts)
    findings: list[Finding] = []
    finding_caps: dict[str, tuple[int, int]] = {}
    group_caps: dict[str, tuple[int, int]] = {}
    with trace_input:
        run = None
        if rules is not None:
            from heaplint.rules.runtime import RuleRun

            run = RuleRun([r for r in rules if not is_trace_scope(r)], reader.info, reader.stacks, trace=path)
        replay = PartitionReplay(options, on_process_end=run.on_process_end if run is not None else None)
        replay.index_is_position = reader.index_is_position if index_is_position is None else index_is_position
        replay.give_up_when_unsure = give_up_when_unsure
        if run is None:
            replay.run(guarded_events(reader))
        else:
            run.attach(replay)
            replay.run(guarded_events(reader), run.on_event)
            findings = run.finish(reader.stacks)
            cap = run.sink.max_per_rule
            finding_caps = {rid: (n, cap) for rid, n in run.sink.per_rule.items()}
            group_caps = {rule.spec.id: (ws.peak_groups, ws.max_groups) for rule, ws in run.windows}
    info = reader.info
    if not getattr(reader, "claims_exact", True):
        replay.order_exact = False  # some stub of another partition may be wrong
    stats = stats_document(info, replay)
    procs = replay.state.all_processes()
    parts = [
        ProcessPart(
            key=replay.order_key(p), pid=p.pid, image=p.image, start_seen=p.start_seen, end_seen=p.end_seen,
            first_time=p.first_time, last_time=p.last_time, stats=doc, quality=q, series=process_series(p),
        )
        for p, doc, q in zip(procs, stats.pop("processes"), trace_quality(info, replay).processes)
    ]
    return PartResult(
        path=path, info=info, counters=replay.counters, last_time=replay.last_time,
        order_exact=replay.order_exact, quality=trace_quality(info, replay), stats=stats, processes=parts, findings=findings,
        finding_caps=finding_caps, group_caps=group_caps,
    )
