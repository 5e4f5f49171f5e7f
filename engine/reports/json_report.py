"""The JSON report: a versioned document (schema in docs/json-report.md).

Bump ``JSON_REPORT_VERSION`` on any incompatible change (a removed or renamed
key, a changed meaning); adding keys is compatible.
"""

from __future__ import annotations

import json
from typing import Any

from heaplint.engine.findings import AnalysisResult, RuleMeta, TraceQuality, TraceResult
from heaplint.engine.reports.base import (
    TOOL_NAME,
    Formatter,
    ReportOptions,
    display_path,
    finding_dict,
    json_safe,
    tool_version,
)

JSON_REPORT_VERSION = 1


class JsonFormatter(Formatter):
    name = "json"
    extension = "json"
    description = "versioned JSON document (docs/json-report.md)"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        doc = report_document(result, options)
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def report_document(result: AnalysisResult, options: ReportOptions) -> dict[str, Any]:
    """The report as plain data (what :class:`JsonFormatter` serialises)."""
    counts = result.counts()
    findings = result.findings
    unchanged = result.baseline.unchanged if result.baseline else []
    listed = sorted(findings + unchanged, key=lambda f: f.sort_key())
    return {
        "heaplint_report": JSON_REPORT_VERSION,
        "tool": {"name": TOOL_NAME, "version": tool_version()},
        "generated_at": options.timestamp(),
        "fail_on": result.fail_on.label if result.fail_on is not None else "never",
        "exit_status": result.exit_status,
        "summary": {
            "traces": len(result.traces),
            "reported": len(findings),
            "by_severity": counts,
            "suppressed": len(result.suppressed),
            "baseline_unchanged": len(unchanged),
            "baseline_absent": len(result.baseline.absent) if result.baseline else 0,
        },
        "rules": [rule_dict(r) for r in sorted(result.rules, key=lambda r: r.id)],
        "traces": [trace_dict(t, options) for t in result.traces],
        "findings": [finding_dict(f, options) for f in listed],
        "suppressed": [
            {**finding_dict(s.finding, options), "suppressed_by": {"source": s.source, "reason": s.reason}}
            for s in result.suppressed
        ],
        "suppressions": [
            {
                "source": u.source,
                "rule": u.rule,
                "image": u.image,
                "frame": u.frame,
                "heap": u.heap,
                "max_bytes": u.max_bytes,
                "reason": u.reason,
                "expires": u.expires,
                "expired": u.expired,
                "findings": u.findings,
                "bytes": u.bytes,
                "unused": u.unused,
            }
            for u in result.suppressions
        ],
        "baseline": None
        if result.baseline is None
        else {
            "path": display_path(result.baseline.path, options.base_dir),
            "new": len(findings),
            "unchanged": len(unchanged),
            "absent": [finding_dict(f, options) for f in result.baseline.absent],
        },
        "warnings": list(result.warnings),
        "errors": list(result.errors),
    }


def rule_dict(r: RuleMeta) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "title": r.title,
        "description": r.description,
        "severity": r.severity.label,
        "tags": list(r.tags),
        "source": r.source,
        "enabled": r.enabled,
    }


def quality_dict(q: TraceQuality) -> dict[str, Any]:
    return {
        "summary": q.summary(),
        "lossy": q.lossy,
        "inconclusive": q.inconclusive,
        "empty": q.empty,
        "events_lost": q.events_lost,
        "buffers_lost": q.buffers_lost,
        "bad_records": q.bad_records,
        "out_of_order_beyond_window": q.out_of_order_beyond_window,
        "processes": [
            {
                "pid": p.pid,
                "image": p.image,
                "start_seen": p.start_seen,
                "end_seen": p.end_seen,
                "events_lost": p.events_lost,
                "heap_events": p.heap_events,
                "first_time_ns": p.first_time,
                "last_time_ns": p.last_time,
            }
            for p in sorted(q.processes, key=lambda p: p.pid)
        ],
    }


def trace_dict(t: TraceResult, options: ReportOptions) -> dict[str, Any]:
    return {
        "path": display_path(t.path, options.base_dir),
        "format": t.info.format,
        "findings": len(t.findings),
        "quality": quality_dict(t.quality),
        "stats": json_safe(t.stats),
    }
