"""The human report: findings grouped by trace and severity, then a summary.

Colours (ANSI) only when ``ReportOptions.color`` is set; the CLI sets it for a
terminal without NO_COLOR, or for ``--color always``.
"""

from __future__ import annotations

from heaplint.engine.findings import AnalysisResult, Finding, Severity
from heaplint.engine.reports.base import Formatter, ReportOptions, display_path, plural, where
from heaplint.engine.units import format_duration, format_size

_COLORS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.NOTE: "36"}


class TextFormatter(Formatter):
    name = "text"
    extension = "txt"
    description = "human-readable, grouped by trace and severity (default)"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        paint = _painter(options.color)
        lines: list[str] = []
        by_trace: dict[str, list[Finding]] = {t.path: [] for t in result.traces}
        for f in result.findings:
            by_trace.setdefault(f.trace, []).append(f)
        quality = {t.path: t.quality for t in result.traces}
        for path, found in by_trace.items():
            q = quality.get(path)
            qtext = q.summary() if q is not None else "unknown"
            head = f"{_one_line(display_path(path, options.base_dir))}: {plural(len(found), 'finding')}, trace quality {qtext}"
            lines.append(paint("1", head))
            for sev in sorted(Severity, reverse=True):
                group = [f for f in found if f.severity == sev]
                if not group:
                    continue
                lines.append(f"  {paint(_COLORS[sev], sev.label)} ({len(group)})")
                for f in group:
                    lines.extend(_finding_lines(f, options, paint))
            lines.append("")
        lines.extend(_tail(result, paint))
        return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")


def _finding_lines(f: Finding, options: ReportOptions, paint) -> list[str]:
    place = _one_line(where(f))
    head = f"    {paint(_COLORS[f.severity], _one_line(f.rule_id))} {_one_line(f.rule_name)}"
    if place:
        head += f" {place}"
    lines = [head, f"      {_one_line(f.message)}"]
    details = []
    if f.count > 1:
        details.append(f"{f.count:,} occurrences")
    if f.total_bytes:
        details.append(format_size(f.total_bytes))
    if f.first_time is not None:
        details.append(f"first at {format_duration(f.first_time)}")
    if f.first_index is not None:
        details.append(f"event #{f.first_index}")
    if f.confidence != "high":
        details.append(f"confidence {f.confidence}")
    if f.baseline_state == "new":
        details.append("new since the baseline")
    if details:
        lines.append("      " + paint("2", ", ".join(details)))
    if f.stack:
        shown = f.stack[: options.max_frames]
        lines.extend(f"        at {_one_line(fr)}" for fr in shown)
        if len(f.stack) > len(shown):
            lines.append(f"        ... {len(f.stack) - len(shown)} more frames")
    return lines


def _tail(result: AnalysisResult, paint) -> list[str]:
    lines = []
    for u in result.suppressions:
        state = "expired" if u.expired else ("unused" if u.unused else f"hid {plural(u.findings, 'finding')}")
        size = f", {format_size(u.bytes)}" if u.bytes else ""
        lines.append(f"suppression {u.source}: {state}{size} ({_one_line(u.reason)})")
    if result.baseline is not None:
        b = result.baseline
        lines.append(
            f"baseline {b.path}: {len(b.unchanged)} unchanged (not reported), "
            f"{len(b.absent)} absent, {sum(len(t.findings) for t in result.traces)} new"
        )
    lines.extend(paint("33", f"warning: {_one_line(w)}") for w in result.warnings)
    lines.extend(paint("31", f"error: {_one_line(e)}") for e in result.errors)
    counts = result.counts()
    total = sum(counts.values())
    summary = f"{plural(total, 'finding')} (" + ", ".join(plural(n, label) for label, n in counts.items()) + ")"
    summary += f" in {plural(len(result.traces), 'trace')}"
    if result.suppressed:
        summary += f", {len(result.suppressed)} suppressed"
    status = result.exit_status
    threshold = "never" if result.fail_on is None else result.fail_on.label
    verdict = "pass" if status == 0 else ("fail" if status == 1 else "error")
    lines.append(paint("1", f"{summary}; fail-on {threshold}: {verdict}"))
    return lines


def _one_line(text: str) -> str:
    """Untrusted text on one line: control characters shown escaped so a trace
    cannot move the cursor or fake report lines."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _painter(enabled: bool):
    if not enabled:
        return lambda _code, text: text
    return lambda code, text: f"\x1b[{code}m{text}\x1b[0m"
