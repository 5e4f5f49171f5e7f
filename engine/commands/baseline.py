"""``heaplint baseline create TRACE... -o heaplint-baseline.json``.

Runs the same analysis as ``heaplint check`` (same rule and trace options) and
records the fingerprint of every finding, so that ``check --baseline FILE``
later reports only new ones.  The file has no timestamps: re-creating it from
the same traces gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from heaplint.engine.baseline import render_baseline
from heaplint.engine.commands.common import add_trace_options
from heaplint.engine.errors import UsageError
from heaplint.engine.findings import AnalysisResult
from heaplint.engine.output import write_atomic

HELP = "record current findings as a baseline, so CI fails only on new ones"
DESCRIPTION = (
    "Analyse traces with the same options as `heaplint check` and write the fingerprints of all "
    "findings to a baseline file. `heaplint check --baseline FILE` then reports only findings that "
    "are not in it."
)
DEFAULT_BASELINE = "heaplint-baseline.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="baseline_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    create = sub.add_parser("create", help="analyse traces and write a baseline file", description=DESCRIPTION)
    create.add_argument("traces", nargs="+", metavar="TRACE", help="trace files ('-' for stdin)")
    create.add_argument(
        "-o", "--output", default=DEFAULT_BASELINE, metavar="FILE", help=f"baseline file to write (default {DEFAULT_BASELINE})"
    )
    create.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary on stderr")
    add_rule_options(create)
    add_trace_options(create)


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """The rule options of ``heaplint check`` (rule files, config, enable/disable),
    so a baseline is made with exactly the rules CI runs.  They come from
    ``heaplint.engine.commands.check.add_rule_arguments`` once the rule engine
    provides it; until then the command takes trace options only."""
    try:
        from heaplint.engine.commands.check import add_rule_arguments  # type: ignore[attr-defined]
    except ImportError:
        return
    add_rule_arguments(parser)


def analyze_for_baseline(args: argparse.Namespace) -> AnalysisResult:
    """Run the analysis ``heaplint check`` would run with these options.

    Prefers ``check.analyze_args(args)`` (the check command's own translation
    of options into an ``analyze`` call); falls back to
    ``heaplint.engine.analyze.analyze(traces)`` with default rules."""
    try:
        from heaplint.engine.commands.check import analyze_args  # type: ignore[attr-defined]
    except ImportError:
        analyze_args = None
    if analyze_args is not None:
        return analyze_args(args)
    try:
        from heaplint.engine.analyze import analyze  # type: ignore[import-not-found]
    except ImportError as err:
        raise UsageError("baseline create needs the rule engine (heaplint.engine.analyze), which this build lacks") from err
    return analyze(args.traces)


def run(args: argparse.Namespace) -> int:
    if args.baseline_command != "create":  # pragma: no cover - argparse enforces the choice
        raise UsageError(f"unknown baseline action '{args.baseline_command}'")
    return write_baseline_file(analyze_for_baseline(args), args.output, quiet=args.quiet)


def write_baseline_file(result: AnalysisResult, output: str, *, quiet: bool = False, stderr: TextIO | None = None) -> int:
    """Write the baseline of ``result`` to ``output`` atomically; exit status.
    Nothing is written when the analysis had errors (exit 2): a baseline of a
    trace that was not read whole would hide findings later."""
    err = stderr if stderr is not None else sys.stderr
    if result.errors:
        for e in result.errors:
            err.write(f"heaplint: error: {e}\n")
        err.write(f"heaplint: baseline not written: {len(result.errors)} error(s)\n")
        return 2
    write_atomic(output, render_baseline(result))
    if not quiet and output != "-":
        n = len(result.findings) + len(result.suppressed)
        err.write(f"heaplint: recorded {n} finding(s) from {len(result.traces)} trace(s) in {output}\n")
    return 0
