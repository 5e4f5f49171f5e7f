"""A self-contained HTML report: charts, top stacks, findings, trace quality.

One file, no scripts, no external fonts, styles or images: a
Content-Security-Policy meta tag forbids every fetch and all scripts, so the
report opens offline and stays inert even if escaping were ever missed.
Every piece of trace content (images, messages, frames, paths) is untrusted
and goes through :func:`html.escape`.

Charts are inline SVG: live bytes over trace time per process and heap (from
``TraceResult.series``), with each finding of that process/heap marked at its
``first_time``.  Hovering a marker shows the finding (an SVG ``<title>``).
"""

from __future__ import annotations

import html
from collections import defaultdict

from heaplint.engine.findings import AnalysisResult, Finding, Severity, TraceResult
from heaplint.engine.reports.base import Formatter, ReportOptions, display_path, image_name, plural, where
from heaplint.engine.units import format_duration, format_size

CHART_W, CHART_H = 760, 220
PAD_L, PAD_R, PAD_T, PAD_B = 78, 16, 14, 30
TOP_STACKS = 10
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
_SEV_CLASS = {Severity.ERROR: "sev-error", Severity.WARNING: "sev-warning", Severity.NOTE: "sev-note"}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dde6}
h3{font-size:15px;margin:18px 0 4px}code,pre,.mono{font-family:ui-monospace,Consolas,monospace;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 14px;width:100%}th,td{border:1px solid #d8dde6;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f5f8}.verdict-pass{color:#17803d}.verdict-fail{color:#b42318}
.sev-error{color:#b42318;stroke:#b42318}.sev-warning{color:#a15c00;stroke:#d08000}.sev-note{color:#175cd3;stroke:#175cd3}
svg.chart{background:#fbfcfd;border:1px solid #d8dde6;max-width:100%;height:auto}
.live-bytes{fill:none;stroke:#2e6fd8;stroke-width:1.6}.live-area{fill:#2e6fd8;fill-opacity:.12;stroke:none}
.axis{stroke:#8a94a6;stroke-width:1}.tick{font:11px system-ui,sans-serif;fill:#4a5568}
.finding-marker line{stroke-width:1.4;stroke-dasharray:4 3}.finding-marker circle{stroke-width:2;fill:#fff}
.muted{color:#667085}pre{margin:2px 0;white-space:pre-wrap}
"""


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape(str(value), quote=True)


class HtmlFormatter(Formatter):
    name = "html"
    extension = "html"
    description = "self-contained HTML page with live-bytes charts (no network, no scripts)"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        counts = result.counts()
        total = sum(counts.values())
        status = result.exit_status
        verdict = {0: "pass", 1: "fail"}.get(status, "error")
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>heaplint report</title>",
            f"<style>{_STYLE}</style></head><body>",
            "<h1>heaplint report</h1>",
            f'<p><strong class="verdict-{"pass" if status == 0 else "fail"}">{verdict}</strong>: '
            f"{plural(total, 'finding')} ("
            + ", ".join(esc(plural(n, label)) for label, n in counts.items())
            + f") in {plural(len(result.traces), 'trace')}; fail-on "
            f"{esc(result.fail_on.label if result.fail_on else 'never')}"
            + (f"; {len(result.suppressed)} suppressed" if result.suppressed else "")
            + "</p>",
        ]
        stamp = options.timestamp()
        if stamp:
            parts.append(f'<p class="muted">generated {esc(stamp)}</p>')
        for message in result.errors:
            parts.append(f'<p class="sev-error">error: {esc(message)}</p>')
        for message in result.warnings:
            parts.append(f'<p class="sev-warning">warning: {esc(message)}</p>')
        parts.append("<h2>Live bytes over trace time</h2>")
        for trace in result.traces:
            parts.extend(_trace_charts(trace, result, options))
        parts.extend(_top_stacks(result, options))
        parts.extend(_findings_table(result, options))
        parts.extend(_quality_table(result, options))
        parts.extend(_suppressions(result))
        parts.append("</body></html>")
        return ("\n".join(parts) + "\n").encode("utf-8", "backslashreplace")


def _labels(trace: TraceResult) -> tuple[dict[tuple[int, int], str], dict[int, str]]:
    """(pid, heap) -> heap label and pid -> image, from the stats document and quality."""
    heaps: dict[tuple[int, int], str] = {}
    images: dict[int, str] = {p.pid: p.image for p in trace.quality.processes if p.image}
    for proc in trace.stats.get("processes", []) if isinstance(trace.stats, dict) else []:
        pid = proc.get("pid")
        if proc.get("image") and pid is not None:
            images.setdefault(pid, proc["image"])
        for h in proc.get("heaps", []):
            try:
                heaps[(pid, int(str(h.get("handle")), 0))] = str(h.get("label"))
            except (TypeError, ValueError):
                continue
    return heaps, images


def _trace_charts(trace: TraceResult, result: AnalysisResult, options: ReportOptions) -> list[str]:
    shown = display_path(trace.path, options.base_dir)
    out = [f"<h3>{esc(shown)}</h3>"]
    if not trace.series:
        out.append('<p class="muted">no live-bytes series in this trace</p>')
        return out
    heap_labels, images = _labels(trace)
    marks: dict[tuple[int, int | None], list[Finding]] = defaultdict(list)
    for f in trace.findings:
        if f.pid is not None and f.first_time is not None:
            marks[(f.pid, f.heap)].append(f)
    for (pid, heap), points in sorted(trace.series.items()):
        label = heap_labels.get((pid, heap), f"0x{heap:x}")
        findings = marks.get((pid, heap), []) + marks.get((pid, None), [])
        title = f"{image_name(images.get(pid))}[{pid}] heap {label}"
        out.append(f'<figure><figcaption class="mono">{esc(title)}</figcaption>')
        out.append(chart_svg(points, findings, title))
        out.append("</figure>")
    return out


def chart_svg(points: list[tuple[int, int]], findings: list[Finding], title: str) -> str:
    """An inline SVG line chart of (time_ns, live_bytes) with finding markers."""
    times = [t for t, _ in points] + [f.first_time for f in findings if f.first_time is not None]
    t0, t1 = (min(times), max(times)) if times else (0, 1)
    if t1 <= t0:
        t1 = t0 + 1
    top = max([v for _, v in points] + [1])
    x0, x1 = PAD_L, CHART_W - PAD_R
    y0, y1 = CHART_H - PAD_B, PAD_T

    def x(t: int) -> float:
        return round(x0 + (t - t0) * (x1 - x0) / (t1 - t0), 1)

    def y(v: int) -> float:
        return round(y0 - v * (y0 - y1) / top, 1)

    svg = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="{esc("live bytes: " + title)}">',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>',
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = int(top * frac)
        svg.append(f'<text class="tick" x="{x0 - 6}" y="{y(v) + 4}" text-anchor="end">{esc(format_size(v))}</text>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        t = t0 + int((t1 - t0) * frac)
        anchor = "start" if frac == 0 else ("end" if frac == 1 else "middle")
        svg.append(
            f'<text class="tick" x="{x(t)}" y="{y0 + 18}" text-anchor="{anchor}">{esc(format_duration(t))}</text>'
        )
    if points:
        coords = " L".join(f"{x(t)},{y(v)}" for t, v in points)
        svg.append(f'<path class="live-area" d="M{x(points[0][0])},{y0} L{coords} L{x(points[-1][0])},{y0} Z"/>')
        svg.append(f'<path class="live-bytes" data-points="{len(points)}" d="M{coords}"/>')
    for f in sorted(findings, key=Finding.sort_key):
        if f.first_time is None:
            continue
        fx = x(f.first_time)
        tip = f"{f.severity.label} {f.rule_id} {f.rule_name} at {format_duration(f.first_time)}: {f.message}"
        svg.append(
            f'<g class="finding-marker {_SEV_CLASS[f.severity]}" data-rule="{esc(f.rule_id)}">'
            f"<title>{esc(tip)}</title>"
            f'<line x1="{fx}" y1="{y0}" x2="{fx}" y2="{y1}"/><circle cx="{fx}" cy="{y1 + 5}" r="4"/></g>'
        )
    svg.append("</svg>")
    return "".join(svg)


def stack_totals(result: AnalysisResult) -> list[tuple[tuple[str, ...], int, int, list[str]]]:
    """(stack, bytes, count, rules) per distinct stack, worst first.

    Sources: a finding's own ``stack`` (its ``total_bytes`` and ``count``), and
    ``evidence["stacks"]`` — a list of ``{"frames": [...], "bytes": n,
    "count": n}`` that a rule may give (e.g. a leak rule's top stacks)."""
    totals: dict[tuple[str, ...], list] = {}

    def add(stack: tuple[str, ...], size: int, count: int, rule: str) -> None:
        entry = totals.setdefault(stack, [0, 0, set()])
        entry[0] += size
        entry[1] += count
        entry[2].add(rule)

    for f in result.findings:
        rule = f"{f.rule_id} {f.rule_name}"
        listed = f.evidence.get("stacks") if f.evidence else None
        if isinstance(listed, (list, tuple)):
            for item in listed:
                frames = item.get("frames") if isinstance(item, dict) else None
                if isinstance(frames, (list, tuple)) and frames:
                    size, count = item.get("bytes", 0), item.get("count", 1)
                    add(
                        tuple(str(fr) for fr in frames),
                        size if isinstance(size, int) else 0,
                        count if isinstance(count, int) else 1,
                        rule,
                    )
        elif f.stack:
            add(f.stack, f.total_bytes, f.count, rule)
    ranked = [(stack, v[0], v[1], sorted(v[2])) for stack, v in totals.items()]
    ranked.sort(key=lambda r: (-r[1], -r[2], r[0]))
    return ranked


def _top_stacks(result: AnalysisResult, options: ReportOptions) -> list[str]:
    ranked = stack_totals(result)
    out = ["<h2>Top outstanding stacks</h2>"]
    if not ranked:
        return out + ['<p class="muted">no finding carries an allocation stack</p>']
    out.append("<table><tr><th>Bytes</th><th>Blocks / occurrences</th><th>Rules</th><th>Stack</th></tr>")
    for stack, size, count, rules in ranked[:TOP_STACKS]:
        frames = "".join(f"<pre>{esc(fr)}</pre>" for fr in stack[: options.max_frames])
        if len(stack) > options.max_frames:
            frames += f'<pre class="muted">... {len(stack) - options.max_frames} more frames</pre>'
        out.append(
            f"<tr><td>{esc(format_size(size))}</td><td>{count:,}</td>"
            f"<td>{esc(', '.join(rules))}</td><td>{frames}</td></tr>"
        )
    out.append("</table>")
    return out


def _findings_table(result: AnalysisResult, options: ReportOptions) -> list[str]:
    out = ["<h2>Findings</h2>"]
    found = result.findings
    if not found:
        return out + ["<p>No findings.</p>"]
    out.append(
        '<table class="findings"><tr><th>Severity</th><th>Rule</th><th>Trace</th><th>Where</th>'
        "<th>Bytes</th><th>First seen</th><th>Message</th></tr>"
    )
    for f in found:
        first = format_duration(f.first_time) if f.first_time is not None else ""
        extra = " (new)" if f.baseline_state == "new" else ""
        out.append(
            f'<tr><td class="{_SEV_CLASS[f.severity]}">{esc(f.severity.label)}{extra}</td>'
            f"<td>{esc(f.rule_id)} {esc(f.rule_name)}</td><td>{esc(display_path(f.trace, options.base_dir))}</td>"
            f"<td>{esc(where(f))}</td><td>{esc(format_size(f.total_bytes)) if f.total_bytes else ''}</td>"
            f"<td>{esc(first)}</td><td>{esc(f.message)}</td></tr>"
        )
    out.append("</table>")
    return out


def _quality_table(result: AnalysisResult, options: ReportOptions) -> list[str]:
    out = ["<h2>Trace quality</h2>", "<table><tr><th>Trace</th><th>Format</th><th>Quality</th><th>Processes</th></tr>"]
    for t in result.traces:
        procs = "".join(
            f"<div>{esc(image_name(p.image))}[{p.pid}]: start {'seen' if p.start_seen else 'not seen'}, "
            f"end {'seen' if p.end_seen else 'not seen'}{f', {p.events_lost} events lost' if p.events_lost else ''}</div>"
            for p in sorted(t.quality.processes, key=lambda p: p.pid)
        )
        out.append(
            f"<tr><td>{esc(display_path(t.path, options.base_dir))}</td><td>{esc(t.info.format)}</td>"
            f"<td>{esc(t.quality.summary())}</td><td>{procs}</td></tr>"
        )
    out.append("</table>")
    return out


def _suppressions(result: AnalysisResult) -> list[str]:
    out: list[str] = []
    if result.suppressions:
        out += ["<h2>Suppressions</h2>", "<table><tr><th>Entry</th><th>Hid</th><th>Bytes</th><th>State</th><th>Reason</th></tr>"]
        for u in result.suppressions:
            state = "expired" if u.expired else ("unused" if u.unused else "used")
            out.append(
                f"<tr><td>{esc(u.source)}</td><td>{u.findings}</td><td>{esc(format_size(u.bytes))}</td>"
                f"<td>{state}</td><td>{esc(u.reason)}</td></tr>"
            )
        out.append("</table>")
    if result.baseline is not None:
        b = result.baseline
        out.append(
            f"<h2>Baseline</h2><p>{esc(b.path)}: {len(b.unchanged)} unchanged (not listed above), {len(b.absent)} absent.</p>"
        )
    return out
