"""End rules: evaluated on the final state of each process and of the trace.

* ``scope: process`` — once per process (at its end record, or at trace end);
  series functions see the process's live-bytes series.
* ``scope: heap`` — once per heap still live when its process ends; series
  functions see that heap's series.
* ``scope: blocks`` — aggregates over the process's live blocks, grouped
  ``by`` block fields (stack, size_class, heap, source, ...); the condition is
  evaluated per group.
* ``scope: trace`` — once, after the replay (trace quality facts are final).
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.replay import Replay
from heaplint.engine.state import ProcessState
from heaplint.rules.context import Ctx
from heaplint.rules.trend import before_teardown
from heaplint.rules.sink import FindingSink, stack_of_group
from heaplint.rules.windows import BlockGroups

SAMPLE_ADDRESSES = 8


class EndRules:
    """Runs the end rules of one trace run."""

    def __init__(self, rules: list[Any], sink: FindingSink) -> None:
        self.rules = rules
        self.sink = sink
        self.ctx: Ctx | None = None
        self.by_scope: dict[str, list[Any]] = {}
        for r in rules:
            self.by_scope.setdefault(r.scope, []).append(r)

    def process_end(self, proc: ProcessState, time: int) -> None:
        c = self.ctx
        assert c is not None
        c.pid, c.proc, c.start_time, c.end_time = proc.pid, proc, proc.first_time, time
        c.heaprec = None
        c.win = c.key = None
        sink = self.sink
        # at a process end record, series functions see the run without its teardown
        series = before_teardown if proc.end_seen else list
        if "process" in self.by_scope:
            c.buckets = series(proc.series.snapshot())
            for rule in self.by_scope["process"]:
                if rule.when.fn(c):
                    sink.match(rule, c, (proc.pid,), pid=proc.pid, proc=proc, time=proc.first_time,
                               last_time=time)
        if "heap" in self.by_scope:
            for heap in list(proc.heaps.values()):
                c.heaprec = heap
                c.buckets = series(heap.series.snapshot())
                for rule in self.by_scope["heap"]:
                    if rule.when.fn(c):
                        sink.match(rule, c, (proc.pid, heap.handle, heap.label), pid=proc.pid, proc=proc,
                                   heap=heap.handle, heap_label=heap.label, time=heap.first_time, last_time=time)
            c.heaprec = None
        for rule in self.by_scope.get("blocks", ()):
            self._blocks(rule, proc)

    def _blocks(self, rule: Any, proc: ProcessState) -> None:
        """Aggregate the live blocks of ``proc`` per group, then test each group."""
        c = self.ctx
        assert c is not None
        groups = BlockGroups(rule.aggs)
        getters = rule.by_getters
        spans: dict[tuple, list] = {}  # key -> [first_time, last_time, first_index, last_index, heap, addresses, sizes]
        for heap in list(proc.heaps.values()):
            c.heaprec = heap
            for addr, block in heap.blocks.items():
                c.addr, c.block = addr, block
                key = tuple(g(c) for g in getters)
                if groups.add(c, key) is None:
                    continue
                span = spans.get(key)
                if span is None:
                    spans[key] = [block.time, block.time, block.index, block.index, heap, [addr], [block.size]]
                    continue
                if block.time < span[0]:
                    span[0], span[2] = block.time, block.index
                if block.time > span[1]:
                    span[1], span[3] = block.time, block.index
                if len(span[5]) < SAMPLE_ADDRESSES:
                    span[5].append(addr)
                    span[6].append(block.size)
        c.addr = c.block = None
        by_heap = "heap" in rule.by
        for key, acc in groups.groups.items():
            c.win = groups.values(acc)
            c.key = key
            span = spans[key]
            c.heaprec = span[4] if by_heap else None
            if not rule.when.fn(c):
                continue
            heap = span[4] if by_heap else None
            stack = stack_of_group(rule.by, key)
            self.sink.match(rule, c, (proc.pid, *key), pid=proc.pid, proc=proc,
                            heap=heap.handle if heap is not None else None,
                            heap_label=heap.label if heap is not None else None, time=span[0], index=span[2],
                            last_time=span[1], last_index=span[3], stack=stack, addresses=span[5], sizes=span[6])
        c.heaprec = None
        c.win = c.key = None

    def trace_end(self, replay: Replay) -> None:
        c = self.ctx
        assert c is not None
        rules = self.by_scope.get("trace", ())
        procs = replay.state.all_processes()
        c.trace_events = replay.counters.events_in
        c.trace_first = min((p.first_time for p in procs), default=None)
        c.trace_last = replay.last_time
        c.end_time = replay.last_time or 0
        c.pid = c.proc = None
        for rule in rules:
            if rule.when.fn(c):
                self.sink.match(rule, c, (), pid=None, proc=None, time=c.trace_first, last_time=c.trace_last)
