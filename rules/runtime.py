"""Evaluating compiled rules during a replay.

:class:`RuleRun` hooks into :class:`~heaplint.engine.replay.Replay`:
``on_event(ev, anomalies)`` after each event is applied and
``on_process_end(proc, time)`` before a process's heaps are dropped.

The hot path is one list index and one tuple walk: before the run, rules are
fused into a *plan* per event kind, a tuple of ``(predicate, action)`` pairs
holding only the rules whose condition can hold for that kind (from the
compiler's kind analysis).  Rules that name ``anomaly`` fields run only for
events that revealed anomalies, indexed by anomaly kind.  Window rules appear
in the plan as a predicate that files the event in its window and returns
False.  End rules run in the process-end hook and in :meth:`RuleRun.finish`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from heaplint.engine.events import HeapEvent, Kind, StackTable, TraceInfo
from heaplint.engine.findings import Finding
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.state import ANOMALY_KINDS, ProcessState
from heaplint.rules.compiler import EVENT_ITEMS
from heaplint.rules.context import Ctx, event_heap
from heaplint.rules.endrules import EndRules
from heaplint.rules.fusedplan import always as _always
from heaplint.rules.fusedplan import anomaly_walk, fused_hook
from heaplint.rules.model import END_RULE, EVENT_RULE, WINDOW_RULE
from heaplint.rules.registry import site_key
from heaplint.rules.sink import FindingSink, stack_of_group
from heaplint.rules.windows import WindowState

Pair = tuple[Callable[[Ctx], Any], Callable[[Ctx], None]]
_N_KINDS = max(int(k) for k in Kind) + 1
_REALLOC = int(Kind.REALLOC)
_PID = HeapEvent._fields.index("pid")
#: evaluate the plan through one generated function (rules/fusedplan.py);
#: False: the loop over the pairs, the reference the tests compare it with
FUSED = True


class RuleRun:
    """The rules of a RuleSet evaluated over one trace."""

    def __init__(self, rules: Iterable[Any], info: TraceInfo, stacks: StackTable, trace: str | None = None) -> None:
        self.rules = [r for r in rules if not r.never]
        self.info = info
        self.stacks = stacks
        self.trace = trace if trace is not None else info.path
        self.sink = FindingSink()
        self.windows: list[tuple[Any, WindowState]] = []
        self.replay: Replay | None = None
        self.ctx: Ctx | None = None
        self.end = EndRules([r for r in self.rules if r.trigger == END_RULE], self.sink)
        self.plan: list[tuple[Pair, ...]] = [()] * _N_KINDS
        self.anomaly_plan: dict[str, tuple[Pair, ...]] = {}

    def attach(self, replay: Replay) -> None:
        """Bind to a replay (create it with ``on_process_end=run.on_process_end``)."""
        self.replay = replay
        ctx = self.ctx = Ctx(replay.state, self.info, replay.counters)
        ctx.stacks = self.stacks
        self.end.ctx = ctx
        plan: list[list[Pair]] = [[] for _ in range(_N_KINDS)]
        reads_ended = [False] * _N_KINDS
        any_anomaly: list[Pair] = []
        by_anomaly: dict[str, list[Pair]] = {}
        for rule in self.rules:
            if rule.trigger == EVENT_RULE:
                act = self._event_action(rule)
                if rule.uses_anomaly:
                    pair = (rule.when.fn, act)
                    if rule.anomalies is None:
                        any_anomaly.append(pair)
                    else:
                        for a in rule.anomalies:
                            by_anomaly.setdefault(a, []).append(pair)
                    continue
                for k in _kinds(rule.kinds):
                    when = rule.for_kind(k)[0]
                    reads_ended[k] |= rule.reads_ended and not (when.const and not when.value)
                    if not when.const:
                        plan[k].append((when.fn, act))
                    elif when.value:
                        plan[k].append((_always, act))
            elif rule.trigger == WINDOW_RULE:
                ws = WindowState(rule.aggs, rule.grouping.over, rule.spec.max_groups)
                self.windows.append((rule, ws))
                key_of = _key_of(rule.by, rule.by_getters)
                items = tuple(EVENT_ITEMS.get(name) for name in rule.by)
                key_items = items if items and None not in items else None
                on_rise = self._window_rise(rule)
                for k in _kinds(rule.kinds):
                    when, aggs = rule.for_kind(k)
                    pair = ws.make_step(aggs, key_of, when.fn, on_rise, key_items)
                    if pair is not None:
                        plan[k].append(pair)
                        reads_ended[k] |= rule.reads_ended
        self.plan = [tuple(p) for p in plan]
        self.reads_ended = reads_ended
        self.anomaly_plan = {a: tuple(by_anomaly.get(a, []) + any_anomaly) for a in ANOMALY_KINDS}
        self.anomaly_plan = {a: p for a, p in self.anomaly_plan.items() if p}
        self.on_event = self._event_hook()  # type: ignore[method-assign]

    # --- hooks ------------------------------------------------------------------------------
    def on_event(self, ev: HeapEvent, anomalies: Any) -> None:
        """Replay callback: evaluate the rules that can match ``ev`` (replaced
        by a closure over the plan in :meth:`attach`)."""
        raise RuntimeError("RuleRun.attach() must come before the replay")

    def _event_hook(self) -> Callable[[HeapEvent, Any], None]:
        if FUSED:
            return fused_hook(self.ctx, self.plan, self.reads_ended, self.anomaly_plan)
        return self._loop_hook()

    def _loop_hook(self) -> Callable[[HeapEvent, Any], None]:
        """The plan walked pair by pair (the reference for :func:`fused_hook`)."""
        c = self.ctx
        state = c.state
        plan = self.plan
        walk = anomaly_walk(c, self.anomaly_plan) if self.anomaly_plan else None
        reads_ended = self.reads_ended

        def on_event(ev: HeapEvent, anomalies: Any) -> None:
            c.ev = ev
            c.anomalies = anomalies
            pairs = plan[ev.kind]
            if pairs:
                if reads_ended[ev.kind]:  # a property (it may decode the block): read once, when needed
                    c.ended = state.ended
                for pred, act in pairs:
                    if pred(c):
                        act(c)
            if anomalies and walk is not None:
                walk(anomalies)

        return on_event

    def on_process_end(self, proc: ProcessState, time: int) -> None:
        """Replay callback: run process, heap and block end rules."""
        if self.end.rules:
            self.end.process_end(proc, time)

    def finish(self, stacks: StackTable | None = None) -> list[Finding]:
        """Run trace end rules; return the findings (after the replay ended).

        ``stacks``: the reader's final stack table, in case it replaced the
        table it started with (stack frames are resolved here, at report time)."""
        if stacks is not None:
            self.stacks = self.ctx.stacks = stacks
        assert self.replay is not None and self.ctx is not None
        self.end.trace_end(self.replay)
        notes = self.sink.notes()
        for rule, ws in self.windows:
            if ws.dropped:
                notes.append(f"rule {rule.id}: window group cap of {ws.max_groups:,} reached; "
                             f"{ws.dropped:,} events in further groups were not evaluated")
        for note in notes:
            if note not in self.info.notes:
                self.info.notes.append(note)
        return self.sink.findings(self.ctx, self.stacks, self.trace)

    # --- actions ------------------------------------------------------------------------------
    def _event_action(self, rule: Any) -> Callable[[Ctx], None]:
        getters = rule.by_getters
        sink = self.sink
        anomaly = rule.uses_anomaly

        def act(c: Ctx) -> None:
            ev = c.ev
            state = c.state
            heap = event_heap(state, ev.pid, ev.heap)
            addresses = [ev.address]
            sizes = []
            if ev.kind == _REALLOC:
                addresses.append(ev.old_address)
                sizes.append(ev.size)
            elif ev.size:
                sizes.append(ev.size)
            ended = state.ended
            if ended is not None and not ev.size:
                sizes.append(ended.size)
            if anomaly:
                a = c.anom
                if a.other:
                    addresses.append(a.other)
                if a.size and a.size not in sizes:
                    sizes.append(a.size)
            keys = tuple(g(c) for g in getters)
            # a free carries no stack of its own; a rule grouped by the site of the
            # block it ended (realloc chains) shows that block's stack instead
            stack = ev.stack if ev.stack is not None else stack_of_group(rule.by, keys)
            sink.match(rule, c, (ev.pid, *keys), pid=ev.pid, proc=state.processes.get(ev.pid),
                       heap=ev.heap, heap_label=heap.label if heap is not None else None, time=ev.time,
                       index=ev.index, stack=stack, addresses=addresses, sizes=sizes)

        return act

    def _window_rise(self, rule: Any) -> Callable[[Ctx, Any, tuple], None]:
        """What a window rule does when its condition turns true for a group."""
        sink = self.sink
        by_heap = "heap" in rule.by

        def on_rise(c: Ctx, group: Any, key: tuple) -> None:
            ev = c.ev
            keys = c.key = key[1:]
            heap = c.state.heap(ev.pid, ev.heap) if by_heap else None
            sink.match(rule, c, (ev.pid, *keys), pid=ev.pid, proc=c.state.processes.get(ev.pid),
                       heap=ev.heap if by_heap else None, heap_label=heap.label if heap is not None else None,
                       time=ev.time, index=ev.index, stack=stack_of_group(rule.by, keys))

        return on_rise


def _kinds(kinds: frozenset | None) -> list[int]:
    """The event kinds a rule runs for (every kind when ``kinds`` is None)."""
    return [k for k in range(1, _N_KINDS) if kinds is None or k in kinds]


def _key_of(by: tuple[str, ...], getters: list[Callable[[Ctx], Any]]) -> Callable[[Ctx], tuple]:
    """The group key of a window rule: the event's process, then the ``by``
    fields (read as items of the event where they are plain event fields)."""
    items = [EVENT_ITEMS.get(name) for name in by]
    if len(by) == 1 and items[0] is not None:
        i = items[0]
        return lambda c: ((e := c.ev)[_PID], e[i])
    if len(by) == 2 and None not in items:
        i, j = items
        return lambda c: ((e := c.ev)[_PID], e[i], e[j])
    if by == ("site",):
        return site_key
    if not getters:
        return lambda c: (c.ev.pid,)
    if len(getters) == 1:
        g0 = getters[0]
        return lambda c: (c.ev.pid, g0(c))
    if len(getters) == 2:
        g0, g1 = getters
        return lambda c: (c.ev.pid, g0(c), g1(c))
    return lambda c: (c.ev.pid, *[g(c) for g in getters])


def run_events(
    rules: Iterable[Any],
    events: Iterable[HeapEvent],
    info: TraceInfo,
    stacks: StackTable | None = None,
    options: ReplayOptions | None = None,
) -> tuple[list[Finding], Replay]:
    """Replay ``events`` with ``rules``; return findings and the finished replay."""
    run = RuleRun(rules, info, stacks if stacks is not None else {})
    replay = Replay(options or ReplayOptions(), on_process_end=run.on_process_end)
    run.attach(replay)
    replay.run(events, run.on_event)
    return run.finish(), replay
