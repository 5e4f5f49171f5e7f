"""Merging the partitions of a trace (see :mod:`heaplint.engine.partition`)
into the TraceResult a whole replay gives, and ``scope: trace`` rules on the
merged facts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from heaplint.engine.events import TraceInfo
from heaplint.engine.findings import Finding, TraceResult
from heaplint.engine.partition import PartResult, ProcessPart
from heaplint.engine.replay import ReplayCounters


def trace_last_time(parts: Sequence[PartResult]) -> int | None:
    """The latest time of any process of the trace (what a whole replay ends
    live processes at)."""
    return max((p.last_time for part in parts for p in part.processes), default=None)


def exact_merge_possible(parts: Sequence[PartResult]) -> bool:
    """Whether merging ``parts`` gives exactly what a whole replay gives.

    Not when the partitions together may have reached a per-rule cap
    (findings, or live window groups): a whole replay would keep or drop
    other matches.  Not when a process's first or last event did not come
    out of the ordering stage in (time, input position) order (its place
    among the processes is then unsure), or a record's fields said otherwise
    than its first bytes (so a stub may be wrong).  And not when a partition
    ended live processes at another time than the whole replay would (it
    took other processes' latest times from their stubs; realloc pairing
    may have dropped or delayed what they stand for)."""
    if not all(p.order_exact for p in parts):
        return False
    latest = trace_last_time(parts)
    if any(p.last_time != latest for p in parts):
        return False
    for caps in ("finding_caps", "group_caps"):
        totals: dict[str, int] = {}
        limits: dict[str, int] = {}
        for part in parts:
            for rid, (n, cap) in getattr(part, caps).items():
                totals[rid] = totals.get(rid, 0) + n
                limits[rid] = cap
        if any(totals[rid] >= limits[rid] for rid in totals):
            return False
    return True


def merge_parts(parts: Sequence[PartResult], trace_rules: Sequence[Any] | None = None) -> TraceResult | None:
    """The TraceResult a whole replay of the trace gives, from all of its
    partitions (in partition order); ``trace_rules`` are its ``scope: trace``
    rules.  None when :func:`exact_merge_possible` says no."""
    if not exact_merge_possible(parts):
        return None
    first = parts[0]
    procs = sorted((p for part in parts for p in part.processes), key=lambda p: p.key)
    counters = dataclasses.replace(first.counters, paired_inner=sum(p.counters.paired_inner for p in parts),
                                   reordered=sum(p.counters.reordered for p in parts))
    info = first.info
    quality = dataclasses.replace(first.quality, processes=[p.quality for p in procs])
    stats = dict(first.stats)
    stats["paired_realloc_records"] = counters.paired_inner
    stats["reordered_events"] = counters.reordered
    stats["quality"] = {**stats["quality"], "summary": quality.summary(), "inconclusive": quality.inconclusive}
    stats["processes"] = [p.stats for p in procs]
    series: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for p in procs:
        for key, points in p.series:
            series[key] = points
    findings = [f for part in parts for f in part.findings]
    if trace_rules:
        findings += trace_scope_findings(trace_rules, first.path, info, counters, trace_last_time(parts), procs)
    findings.sort(key=Finding.sort_key)
    return TraceResult(path=first.path, info=info, quality=quality, findings=findings, stats=stats, series=series)


class _MergedState:
    """What ``scope: trace`` rules read of the replay state: the processes."""

    def __init__(self, procs: list[ProcessPart]) -> None:
        self.procs = procs

    def all_processes(self) -> list[ProcessPart]:
        return self.procs


@dataclass
class _MergedReplay:
    state: _MergedState
    counters: ReplayCounters
    last_time: int | None


def trace_scope_findings(
    rules: Sequence[Any], path: str, info: TraceInfo, counters: ReplayCounters, last_time: int | None,
    procs: list[ProcessPart],
) -> list[Finding]:
    """Evaluate ``scope: trace`` rules once on the merged facts of a trace."""
    from heaplint.rules.context import Ctx
    from heaplint.rules.endrules import EndRules
    from heaplint.rules.sink import FindingSink

    sink = FindingSink()
    state = _MergedState(procs)
    ctx = Ctx(state, info, counters)  # type: ignore[arg-type]
    end = EndRules([r for r in rules if not r.never], sink)
    end.ctx = ctx
    end.trace_end(_MergedReplay(state, counters, last_time))  # type: ignore[arg-type]
    return sink.findings(ctx, {}, path)
