"""``heaplint check TRACE...``: replay traces, evaluate the rules, report findings.

Exit status: 0 = no error-severity finding, 1 = at least one, 2 = bad input
(trace, rule or config file, command line).
"""

from __future__ import annotations

import argparse
import sys

from heaplint.engine.analyze import analyze
from heaplint.engine.commands.common import add_trace_options, reader_options, replay_options
from heaplint.engine.commands.rule_options import add_rule_options, load_rules
from heaplint.engine.findings import AnalysisResult, Finding
from heaplint.engine.units import format_duration

HELP = "replay traces and report rule findings"
DESCRIPTION = (
    "Replay each trace, evaluate the built-in rules plus any --rules files and the project "
    "configuration, and print the findings. Exit 1 when a finding has error severity."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="trace files ('-' for stdin)")
    add_rule_options(parser)
    add_trace_options(parser)


def run(args: argparse.Namespace) -> int:
    ruleset = load_rules(args)
    result = analyze(
        args.traces,
        ruleset=ruleset,
        input_format=args.input_format,
        reader_options=reader_options(args),
        replay_options=replay_options(args),
    )
    return emit(result, args)


def emit(result: AnalysisResult, args: argparse.Namespace) -> int:
    """Print the findings as text; return the exit status.  (The report
    formats replace this with ``emit_reports``.)"""
    out = sys.stdout
    for trace in result.traces:
        out.write(f"{trace.path}: trace quality: {trace.quality.summary()}\n")
        for note in trace.info.notes:
            out.write(f"{trace.path}: note: {note}\n")
        for f in trace.findings:
            out.write(format_finding(f))
    findings = result.findings
    counts = {level: sum(1 for f in findings if f.severity.label == level) for level in ("error", "warning", "note")}
    out.write(f"{len(findings)} finding(s): {counts['error']} error(s), {counts['warning']} warning(s), "
              f"{counts['note']} note(s) in {len(result.traces)} trace(s)\n")
    return result.exit_status


def format_finding(f: Finding) -> str:
    """One finding as a few lines of text."""
    where = []
    if f.pid is not None:
        where.append(f"pid {f.pid}" + (f" {f.image}" if f.image else ""))
    if f.heap_label:
        where.append(f"heap {f.heap_label}")
    if f.first_time is not None:
        where.append(f"at {format_duration(f.first_time)}")
    if f.count > 1:
        where.append(f"{f.count:,} times")
    if f.confidence != "high":
        where.append(f"{f.confidence} confidence")
    index = f":{f.first_index}" if f.first_index is not None else ""
    lines = [f"{f.trace}{index}: {f.severity.label} {f.rule_id} {f.rule_name}: {f.message}"
             + (f" [{', '.join(where)}]" if where else "")]
    for frame in (f.stack or ())[:8]:
        lines.append(f"    at {frame}")
    return "\n".join(lines) + "\n"
