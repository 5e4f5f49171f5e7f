"""GitHub Actions: workflow-command annotations plus a Markdown job summary.

The annotations (``::error file=...,title=...::message``) are the report's
bytes; the CLI writes them to stdout, where the runner picks them up.  The job
summary (:func:`job_summary`) is Markdown the CLI appends to the file named by
``$GITHUB_STEP_SUMMARY``.

Trace content is untrusted: values are escaped as the runner expects (``%``,
CR and LF in messages; additionally ``:`` and ``,`` in properties), so a
process image cannot end an annotation early or inject another command; in the
summary every value is HTML- and Markdown-escaped.
"""

from __future__ import annotations

import html
import re

from heaplint.engine.findings import AnalysisResult, Finding, Severity
from heaplint.engine.reports.base import Formatter, ReportOptions, display_path, plural, where
from heaplint.engine.units import format_size

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+\-!|~.])")
SUMMARY_ROWS = 200


def escape_data(text: str) -> str:
    """Escape a workflow-command message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (``file=``, ``title=``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubFormatter(Formatter):
    name = "github"
    extension = "txt"
    description = "GitHub Actions annotations and job summary (default when GITHUB_ACTIONS=true)"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        lines = [annotation(f, options) for f in result.findings]
        lines += [f"::warning title=heaplint::{escape_data(w)}" for w in result.warnings]
        lines += [f"::error title=heaplint::{escape_data(e)}" for e in result.errors]
        counts = result.counts()
        total = sum(counts.values())
        lines.append(
            f"heaplint: {plural(total, 'finding')} ("
            + ", ".join(plural(n, label) for label, n in counts.items())
            + f") in {plural(len(result.traces), 'trace')}"
        )
        return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")


def annotation(f: Finding, options: ReportOptions) -> str:
    """One ``::error file=...,title=...::message`` line."""
    props = f"file={escape_property(display_path(f.trace, options.base_dir))}"
    props += f",title={escape_property(f'{f.rule_id} {f.rule_name}')}"
    text = f.message
    place = where(f)
    if place:
        text += f" ({place})"
    if f.stack:
        text += "\n" + "\n".join(f"  at {fr}" for fr in f.stack[: options.max_frames])
    return f"::{_COMMANDS[f.severity]} {props}::{escape_data(text)}"


def md(text: object) -> str:
    """A value safe in a Markdown table cell: HTML-escaped, Markdown
    punctuation backslash-escaped, newlines as ``<br>``."""
    raw = "".join(ch if ch.isprintable() or ch in "\r\n" else repr(ch)[1:-1] for ch in str(text))
    escaped = html.escape(raw, quote=True)
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def job_summary(result: AnalysisResult, options: ReportOptions) -> bytes:
    """The Markdown job summary."""
    counts = result.counts()
    total = sum(counts.values())
    status = result.exit_status
    verdict = {0: "passed", 1: "failed"}.get(status, "error")
    out = [
        f"## heaplint {verdict}: {plural(total, 'finding')} in {plural(len(result.traces), 'trace')}",
        "",
        "| " + " | ".join(label for label in counts) + " | suppressed | fail-on |",
        "|" + "---|" * (len(counts) + 2),
        "| "
        + " | ".join(str(n) for n in counts.values())
        + f" | {len(result.suppressed)} | {result.fail_on.label if result.fail_on else 'never'} |",
        "",
    ]
    found = result.findings
    if found:
        out += ["| Severity | Rule | Trace | Where | Bytes | Message |", "|---|---|---|---|---|---|"]
        for f in found[:SUMMARY_ROWS]:
            out.append(
                f"| {f.severity.label} | {md(f.rule_id)} {md(f.rule_name)} | {md(display_path(f.trace, options.base_dir))}"
                f" | {md(where(f))} | {format_size(f.total_bytes) if f.total_bytes else ''} | {md(f.message)} |"
            )
        if len(found) > SUMMARY_ROWS:
            out.append(f"\n… and {len(found) - SUMMARY_ROWS} more (see the json or sarif report)")
        out.append("")
    out += ["### Trace quality", "", "| Trace | Quality |", "|---|---|"]
    out += [f"| {md(display_path(t.path, options.base_dir))} | {md(t.quality.summary())} |" for t in result.traces]
    out.append("")
    if result.baseline is not None:
        b = result.baseline
        out += [f"Baseline {md(b.path)}: {len(b.unchanged)} unchanged, {len(b.absent)} absent.", ""]
    if result.suppressions:
        out += ["### Suppressions", "", "| Entry | Hid | Bytes | State | Reason |", "|---|---|---|---|---|"]
        for u in result.suppressions:
            state = "expired" if u.expired else ("unused" if u.unused else "used")
            out.append(f"| {md(u.source)} | {u.findings} | {format_size(u.bytes)} | {state} | {md(u.reason)} |")
        out.append("")
    for w in result.warnings:
        out.append(f"> warning: {md(w)}")
    for e in result.errors:
        out.append(f"> error: {md(e)}")
    return ("\n".join(out) + "\n").encode("utf-8", "backslashreplace")
