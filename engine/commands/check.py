"""``heaplint check TRACE...``: replay traces, evaluate the rules, report findings.

Exit status: 0 = no reported finding at or above ``--fail-on``, 1 = such
findings, 2 = bad input (trace, rule or config file, command line).  Reports
and gating options come from :mod:`heaplint.engine.commands.report_options`.
"""

from __future__ import annotations

import argparse

from heaplint.engine.analyze import analyze
from heaplint.engine.commands.common import add_trace_options, jobs_option, reader_options, replay_options
from heaplint.engine.commands.report_options import add_report_arguments, emit_reports
from heaplint.engine.commands.rule_options import add_rule_options, load_rules
from heaplint.engine.findings import AnalysisResult
from heaplint.engine.progress import progress_wanted

HELP = "replay traces and report rule findings"
DESCRIPTION = (
    "Replay each trace, evaluate the built-in rules plus any --rules files and the project "
    "configuration, and report the findings. Exit 1 when a finding reaches --fail-on (default error)."
)

#: the rule options, shared with ``heaplint baseline create``
add_rule_arguments = add_rule_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="trace files ('-' for stdin)")
    add_rule_arguments(parser)
    add_trace_options(parser)
    add_report_arguments(parser)


def analyze_args(args: argparse.Namespace) -> AnalysisResult:
    """The analysis the options describe (also used by ``baseline create``)."""
    ruleset = load_rules(args)
    return analyze(
        args.traces,
        ruleset=ruleset,
        input_format=args.input_format,
        reader_options=reader_options(args),
        replay_options=replay_options(args),
        jobs=jobs_option(args),
        progress=progress_wanted(getattr(args, "quiet", False)),
    )


def run(args: argparse.Namespace) -> int:
    return emit_reports(analyze_args(args), args)
