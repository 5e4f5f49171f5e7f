"""Report options and CI gating, shared by ``heaplint check`` (and anything
else that produces an :class:`AnalysisResult`).

Use::

    add_report_arguments(parser)          # when building the subcommand
    ...
    return emit_reports(result, args)     # at the end of run(args)

``--format`` and ``--output`` pair up in command-line order: each ``--format``
starts a report, and the next ``--output`` (before another ``--format``) says
where it goes.  A report without ``--output`` goes to stdout, and only one may.
An ``--output`` before any ``--format`` belongs to the default format (text, or
github under GitHub Actions).  docs/cli.md, "Exit codes and reports", has the
whole story.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
from typing import Mapping, TextIO

from heaplint.engine.baseline import apply_baseline, load_baseline
from heaplint.engine.errors import UsageError
from heaplint.engine.findings import AnalysisResult, Severity
from heaplint.engine.output import write_atomic
from heaplint.engine.reports import FORMATS, ReportOptions, get_formatter
from heaplint.engine.reports.github import job_summary
from heaplint.engine.suppressions import apply_suppressions, load_suppressions

FAIL_ON_CHOICES = ("note", "warning", "error", "never")
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _FormatAction(argparse.Action):
    """``--format NAME``: start a new report."""

    def __call__(self, parser, namespace, value, option_string=None):  # type: ignore[override]
        if value not in FORMATS:
            parser.error(f"argument --format: unknown format '{value}'; known: {', '.join(FORMATS)}")
        _reports(namespace).append([value, None])


class _OutputAction(argparse.Action):
    """``--output FILE``: where the report of the preceding ``--format`` goes."""

    def __call__(self, parser, namespace, value, option_string=None):  # type: ignore[override]
        reports = _reports(namespace)
        if not reports:
            reports.append([None, value])  # the default format
        elif reports[-1][1] is not None:
            fmt = reports[-1][0] or "the default format"
            parser.error(
                f"argument {option_string}: a second output for {fmt}; "
                "give each --format its own --output right after it"
            )
        else:
            reports[-1][1] = value


def _reports(namespace: argparse.Namespace) -> list[list[str | None]]:
    reports = getattr(namespace, "reports", None)
    if reports is None:
        reports = []
        namespace.reports = reports
    return reports


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the report and gating options to a subcommand's parser."""
    g = parser.add_argument_group("reports")
    g.add_argument(
        "--format",
        dest="reports",
        action=_FormatAction,
        metavar="FORMAT",
        help=f"report format, repeatable: {', '.join(FORMATS)} (default text; github under GitHub Actions)",
    )
    g.add_argument(
        "-o",
        "--output",
        dest="reports",
        action=_OutputAction,
        metavar="FILE",
        help="where the preceding --format's report goes (default stdout; '-' is stdout); written atomically",
    )
    g.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours in the text report: auto = on a terminal unless NO_COLOR is set (default auto)",
    )
    g.add_argument(
        "--timestamps",
        action="store_true",
        help="stamp json, sarif, junit and html reports with the time (off: reports are byte-identical across runs)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no warnings on stderr")
    gate = parser.add_argument_group("gating")
    gate.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="error",
        help="exit 1 when a finding has this severity or worse (default error; never: only errors fail)",
    )
    gate.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings would fail (errors still exit 2)")
    gate.add_argument("--baseline", metavar="FILE", help="report only findings not recorded in this baseline file")
    gate.add_argument("--suppressions", metavar="FILE", help="YAML file of suppressions (docs/ci.md)")
    gate.add_argument(
        "--fail-on-expired", action="store_true", help="an expired suppression is an error (exit 2), not a warning"
    )


def parse_fail_on(text: str | None) -> Severity | None:
    """``"never"`` -> None; a severity name -> that severity."""
    if text is None or text == "never":
        return None
    try:
        return Severity.parse(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


def resolve_reports(args: argparse.Namespace, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (format, destination) pairs to write, defaults filled in and checked."""
    default = "github" if env.get("GITHUB_ACTIONS") == "true" else "text"
    pairs = [(fmt or default, out or "-") for fmt, out in (getattr(args, "reports", None) or [])]
    if not pairs:
        pairs = [(default, "-")]
    to_stdout = [fmt for fmt, out in pairs if out == "-"]
    if len(to_stdout) > 1:
        raise UsageError(
            f"{' and '.join(to_stdout)} reports would both go to stdout; give all but one --output FILE after its --format"
        )
    seen: dict[str, str] = {}
    for fmt, out in pairs:
        if out == "-":
            continue
        key = os.path.abspath(out)
        if key in seen:
            raise UsageError(f"{seen[key]} and {fmt} reports would both be written to {out}")
        seen[key] = fmt
    return pairs


def use_color(choice: str, destination: str, env: Mapping[str, str], stdout: TextIO | None = None) -> bool:
    """--color always/never, or auto: stdout is a terminal, NO_COLOR unset or empty, TERM not dumb."""
    if choice == "always":
        return True
    if choice == "never" or destination != "-":
        return False
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    stream = stdout if stdout is not None else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def prepare_result(
    result: AnalysisResult, args: argparse.Namespace, today: datetime.date | None = None
) -> AnalysisResult:
    """Apply --fail-on, --suppressions (with --fail-on-expired) and --baseline."""
    result = dataclasses.replace(result, fail_on=parse_fail_on(getattr(args, "fail_on", "error")))
    if getattr(args, "suppressions", None):
        entries = load_suppressions(args.suppressions)
        result = apply_suppressions(
            result, entries, today=today, fail_on_expired=bool(getattr(args, "fail_on_expired", False))
        )
    if getattr(args, "baseline", None):
        result = apply_baseline(result, load_baseline(args.baseline))
    return result


def emit_reports(
    result: AnalysisResult,
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    stderr: TextIO | None = None,
    today: datetime.date | None = None,
) -> int:
    """Apply suppressions and baseline, write every report, return the exit code.

    Every report is rendered before any is written, and each is written
    atomically, so a failing formatter leaves existing report files untouched.
    Exit code: 0 = nothing at or above --fail-on, 1 = such findings (0 with
    --exit-zero), 2 = errors (unreadable trace, expired suppression under
    --fail-on-expired); --exit-zero never hides a 2.
    """
    env = os.environ if env is None else env
    err = stderr if stderr is not None else sys.stderr
    result = prepare_result(result, args, today)
    pairs = resolve_reports(args, env)
    stamp = ReportOptions(timestamps=True).timestamp() if getattr(args, "timestamps", False) else None
    rendered: list[tuple[str, bytes]] = []
    for fmt, destination in pairs:
        options = ReportOptions(
            color=use_color(getattr(args, "color", "auto"), destination, env) if fmt == "text" else False,
            timestamps=stamp is not None,
            generated_at=stamp,
        )
        rendered.append((destination, get_formatter(fmt).render(result, options)))
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    summary = job_summary(result, ReportOptions()) if summary_path and any(f == "github" for f, _ in pairs) else None

    for destination, data in rendered:
        write_atomic(destination, data)
    if summary is not None and summary_path:
        try:
            with open(summary_path, "ab") as f:  # appended, as GitHub expects: other steps share the file
                f.write(summary)
        except OSError as error:
            err.write(f"heaplint: warning: cannot write the job summary to {summary_path}: {error.strerror}\n")

    shown_on_stdout = any(f in ("text", "github") and d == "-" for f, d in pairs)
    if not getattr(args, "quiet", False) and not shown_on_stdout:
        for w in result.warnings:
            err.write(f"heaplint: warning: {w}\n")
    for e in result.errors:  # always: a run that exits 2 says why on stderr
        err.write(f"heaplint: error: {e}\n")
    status = result.exit_status
    if status == EXIT_FINDINGS and getattr(args, "exit_zero", False):
        return EXIT_OK
    return status
