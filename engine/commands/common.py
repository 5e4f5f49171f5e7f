"""Options shared by the commands that read traces."""

from __future__ import annotations

import argparse

from heaplint.engine.errors import UsageError
from heaplint.engine.readers import READERS, ReaderOptions
from heaplint.engine.replay import (
    DEFAULT_PAIR_WINDOW_NS,
    DEFAULT_REORDER_WINDOW_NS,
    REALLOC_MODES,
    ReplayOptions,
)
from heaplint.engine.units import parse_duration


def duration_arg(text: str) -> int:
    """argparse type: a duration with unit, in ns."""
    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_reader_options(parser: argparse.ArgumentParser, title: str = "reading") -> argparse._ArgumentGroup:
    """--input-format and --skip-bad-records, in a group named ``title`` (returned)."""
    g = parser.add_argument_group(title)
    g.add_argument(
        "--input-format",
        metavar="FORMAT",
        help=f"trace format instead of detecting it from the content ({', '.join(READERS)})",
    )
    g.add_argument(
        "--skip-bad-records",
        action="store_true",
        help="skip malformed records, count them and report them, instead of stopping with exit code 2",
    )
    return g


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    """--input-format, --skip-bad-records, --reorder-window, --pair-window, --realloc-mode, --jobs."""
    g = add_reader_options(parser, "reading and replay")
    g.add_argument(
        "--reorder-window",
        type=duration_arg,
        default=DEFAULT_REORDER_WINDOW_NS,
        metavar="DURATION",
        help="trace-time window within which out-of-order events are re-sorted (default 10ms)",
    )
    g.add_argument(
        "--pair-window",
        type=duration_arg,
        default=DEFAULT_PAIR_WINDOW_NS,
        metavar="DURATION",
        help="how close in time the inner Alloc/Free of a moving realloc must be to pair (default 1ms)",
    )
    g.add_argument(
        "--realloc-mode",
        choices=REALLOC_MODES,
        default="auto",
        help="how moving reallocs are counted: auto-detect inner Alloc/Free pairs (default), "
        "standalone (apply every record), paired (inner records carry the move)",
    )
    g.add_argument(
        "--jobs",
        type=jobs_arg,
        default=1,
        metavar="N",
        help="replay in N worker processes: one trace per process, or the processes of one trace "
        "split among them; 0 = one per CPU (default 1). The output is the same for every N",
    )


#: most worker processes --jobs may ask for: each one imports heaplint and reads
#: its share of a trace whole, so --jobs 100000 started processes until the
#: machine ran out of memory
MAX_JOBS = 256


def jobs_arg(text: str) -> int:
    """argparse type: --jobs N (0 = one per CPU, at most :data:`MAX_JOBS`)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes from 0 to {MAX_JOBS} (0 = one per CPU), got '{text}'"
        )
    return value


def jobs_option(args: argparse.Namespace) -> int:
    """The number of worker processes ``--jobs`` asks for (0 resolved to the CPU count)."""
    from heaplint.engine.parallel import resolve_jobs

    return resolve_jobs(getattr(args, "jobs", 1))


def reader_options(args: argparse.Namespace) -> ReaderOptions:
    return ReaderOptions(skip_bad_records=bool(getattr(args, "skip_bad_records", False)))


def replay_options(args: argparse.Namespace) -> ReplayOptions:
    if args.input_format is not None and args.input_format not in READERS:
        raise UsageError(f"unknown input format '{args.input_format}'; known: {', '.join(READERS)}")
    return ReplayOptions(
        reorder_window_ns=args.reorder_window,
        pair_window_ns=args.pair_window,
        realloc_mode=args.realloc_mode,
    )
