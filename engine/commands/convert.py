"""``heaplint convert TRACE -o OUT``: re-encode any readable trace in the
canonical format (no replay, no reordering: records keep their order)."""

from __future__ import annotations

import argparse
import sys

from heaplint.engine.commands.common import add_reader_options, reader_options
from heaplint.engine.events import TIME_UNITS_NS
from heaplint.engine.readers import guarded_events, open_trace
from heaplint.engine.writers import FORMATS, format_for_path, write_trace

HELP = "convert a trace to the canonical heaplint format (JSON Lines or CSV, optionally gzip)"
DESCRIPTION = (
    "Read a trace in any supported format and write it in the canonical heaplint trace format "
    "(docs/trace-format.md). The output format follows OUT's extension: .jsonl or .csv, with .gz "
    "appended for gzip; '-' writes JSON Lines to stdout. Records keep their input order; stacks the "
    "input only defines at its end are written after the events, and final trace facts (such as lost "
    "events counted at the end) as a trailing 'facts' record."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="the trace to convert ('-' for stdin)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write ('-' for stdout)")
    parser.add_argument(
        "--format", choices=FORMATS, help="output format instead of the one OUT's extension names"
    )
    parser.add_argument(
        "--time-unit",
        choices=tuple(TIME_UNITS_NS),
        default="ns",
        help="unit of the written timestamps (default ns, exact)",
    )
    add_reader_options(parser)


def run(args: argparse.Namespace) -> int:
    """Convert one trace; exit 0, or raise a located error (exit 2)."""
    fmt, _ = format_for_path(args.output, args.format)  # a bad name fails before reading
    reader, trace_input = open_trace(args.trace, args.input_format, reader_options(args))
    with trace_input:
        count = write_trace(
            args.output, guarded_events(reader), reader.info, reader.stacks, fmt, time_unit=args.time_unit
        )
    info = reader.info
    if info.bad_records:
        sys.stderr.write(f"heaplint: {args.trace}: skipped {info.bad_records:,} malformed record(s)\n")
    for note in info.notes:
        sys.stderr.write(f"heaplint: {args.trace}: {note}\n")
    if args.output != "-" and sys.stderr.isatty():
        sys.stderr.write(f"heaplint: wrote {count:,} events to {args.output}\n")
    return 0
