"""Trace statistics and trace quality, built from a finished replay.

``stats_document`` is the versioned JSON document of ``heaplint stats --format
json`` (documented in docs/cli.md); ``trace_quality`` the coverage summary every
report shows.
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.events import KIND_NAMES, Kind, Source, TraceInfo
from heaplint.engine.findings import ProcessQuality, TraceQuality
from heaplint.engine.replay import Replay
from heaplint.engine.state import HeapRecord, ProcessState

STATS_SCHEMA_VERSION = 1
_HEAP_KINDS = (Kind.HEAP_CREATE, Kind.ALLOC, Kind.REALLOC, Kind.FREE, Kind.DESTROY)


def process_coverage(proc: ProcessState, info: TraceInfo) -> ProcessQuality:
    """Merge what the trace declared about a process with what the replay saw."""
    facts = info.processes.get(proc.pid)
    start_seen = proc.start_seen or bool(facts and facts.start_seen)
    end_seen = proc.end_seen or bool(facts and facts.end_seen)
    image = proc.image or (facts.image if facts else None)
    return ProcessQuality(
        pid=proc.pid,
        image=image,
        start_seen=start_seen,
        end_seen=end_seen,
        events_lost=facts.events_lost if facts else 0,
        first_time=proc.first_time,
        last_time=proc.last_time,
        heap_events=bool(proc.heaps or proc.retired or proc.retired_dropped),
    )


def trace_quality(info: TraceInfo, replay: Replay) -> TraceQuality:
    """The coverage summary of one replayed trace."""
    return TraceQuality(
        events_lost=info.events_lost,
        buffers_lost=info.buffers_lost,
        bad_records=info.bad_records,
        out_of_order_beyond_window=replay.counters.out_of_order,
        processes=[process_coverage(p, info) for p in replay.state.all_processes()],
    )


def _heap_doc(heap: HeapRecord) -> dict[str, Any]:
    return {
        "handle": f"0x{heap.handle:x}",
        "label": heap.label,
        "created_in_trace": heap.created,
        "flags": f"0x{heap.flags:x}",
        "destroyed": heap.end_time is not None,
        "events": {KIND_NAMES[k]: heap.counts[k] for k in _HEAP_KINDS},
        "sources": {s.name: heap.sources[s] for s in Source if heap.sources[s]},
        "live_blocks": len(heap.blocks),
        "live_bytes": heap.live_bytes,
        "peak_live_bytes": heap.peak_bytes,
        "peak_time_ns": heap.peak_time,
        "anomalies": dict(sorted(heap.anomalies.items())),
    }


def _process_doc(proc: ProcessState, info: TraceInfo) -> dict[str, Any]:
    cov = process_coverage(proc, info)
    heaps = proc.all_heaps()
    events = {KIND_NAMES[k]: sum(h.counts[k] for h in heaps) for k in _HEAP_KINDS}
    sources: dict[str, int] = {}
    for h in heaps:
        for s in Source:
            if h.sources[s]:
                sources[s.name] = sources.get(s.name, 0) + h.sources[s]
    return {
        "pid": proc.pid,
        "image": cov.image,
        "coverage": {
            "start_seen": cov.start_seen,
            "end_seen": cov.end_seen,
            "events_lost": cov.events_lost,
            "first_time_ns": cov.first_time,
            "last_time_ns": cov.last_time,
        },
        "events": events,
        "sources": dict(sorted(sources.items())),
        "live_blocks": sum(len(h.blocks) for h in heaps),
        "live_bytes": proc.live_bytes,
        "peak_live_bytes": proc.peak_bytes,
        "peak_time_ns": proc.peak_time,
        "anomalies": dict(sorted(proc.anomalies.items())),
        "heaps_dropped_from_stats": proc.retired_dropped,
        "heaps": [_heap_doc(h) for h in heaps],
    }


def stats_document(info: TraceInfo, replay: Replay) -> dict[str, Any]:
    """The JSON-ready statistics of one replayed trace."""
    c = replay.counters
    quality = trace_quality(info, replay)
    return {
        "trace": info.path,
        "format": info.format,
        "pointer_size": info.pointer_size,
        "events": c.events_in,
        "paired_realloc_records": c.paired_inner,
        "reordered_events": c.reordered,
        "quality": {
            "summary": quality.summary(),
            "inconclusive": quality.inconclusive,
            "events_lost": info.events_lost,
            "buffers_lost": info.buffers_lost,
            "bad_records": info.bad_records,
            "out_of_order_beyond_window": c.out_of_order,
        },
        "processes": [_process_doc(p, info) for p in replay.state.all_processes()],
    }
