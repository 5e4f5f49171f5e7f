"""``heaplint stats TRACE...``: replay traces and summarise them (no rules)."""

from __future__ import annotations

import argparse
import json

from heaplint.engine.commands.common import add_trace_options, jobs_option, reader_options, replay_options
from heaplint.engine.output import write_atomic
from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.stats import STATS_SCHEMA_VERSION, stats_document
from heaplint.engine.units import format_duration, format_size

HELP = "replay traces and print per-process and per-heap statistics"
DESCRIPTION = (
    "Replay each trace and report, per process and heap: event counts by kind and source, "
    "live blocks and bytes at the end, peak live bytes and when, anomaly counts, and coverage."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="trace files ('-' for stdin)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    parser.add_argument("-o", "--output", default="-", metavar="FILE", help="write here instead of stdout")
    add_trace_options(parser)


def replay_trace(path: str, args: argparse.Namespace) -> dict:
    """Replay one trace with the command-line options; return its stats document."""
    return replay_trace_with(path, args.input_format, reader_options(args), replay_options(args))


def replay_trace_with(
    path: str, input_format: str | None, ropts: ReaderOptions | None, options: ReplayOptions | None
) -> dict:
    """Replay one trace; return its stats document."""
    reader, trace_input = open_trace(path, input_format, ropts)
    with trace_input:
        replay = Replay(options or ReplayOptions())
        replay.run(guarded_events(reader))
        return stats_document(reader.info, replay)


def stats_documents(args: argparse.Namespace) -> list[dict]:
    """The stats document of every trace, replayed in ``--jobs`` processes."""
    jobs = jobs_option(args)
    if jobs == 1:
        return [replay_trace(path, args) for path in args.traces]
    from heaplint.engine.parallel import AnalysisSpec, Failed, run_traces

    spec = AnalysisSpec(None, args.input_format, reader_options(args), replay_options(args))
    docs = []
    for outcome in run_traces(args.traces, spec, jobs):
        if isinstance(outcome, Failed):
            raise outcome.error
        docs.append(outcome)
    return docs


def run(args: argparse.Namespace) -> int:
    docs = stats_documents(args)
    if args.format == "json":
        payload = {"heaplint_stats": STATS_SCHEMA_VERSION, "traces": docs}
        data = (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode()
    else:
        data = "".join(render_text(d) for d in docs).encode("utf-8", "backslashreplace")
    write_atomic(args.output, data)
    return 0


def render_text(doc: dict) -> str:
    """A human summary of one stats document."""
    lines = [f"{doc['trace']} ({doc['format']}): {doc['events']:,} events, quality: {doc['quality']['summary']}"]
    if doc["paired_realloc_records"]:
        lines.append(f"  {doc['paired_realloc_records']:,} inner records of moving reallocs paired")
    for p in doc["processes"]:
        cov = p["coverage"]
        span = ""
        if cov["first_time_ns"] is not None and cov["last_time_ns"] is not None:
            span = f", {format_duration(cov['last_time_ns'] - cov['first_time_ns'])}"
        lines.append(
            f"  process {p['pid']} {p['image'] or '(image unknown)'}: "
            f"start {'seen' if cov['start_seen'] else 'not seen'}, end {'seen' if cov['end_seen'] else 'not seen'}{span}"
        )
        lines.append(
            f"    live {p['live_blocks']:,} blocks / {format_size(p['live_bytes'])}, "
            f"peak {format_size(p['peak_live_bytes'])} at {format_duration(p['peak_time_ns'])}"
        )
        if p["anomalies"]:
            lines.append("    anomalies: " + ", ".join(f"{k} {v:,}" for k, v in p["anomalies"].items()))
        for h in p["heaps"]:
            ev = ", ".join(f"{k} {v:,}" for k, v in h["events"].items() if v)
            src = ", ".join(f"{k} {v:,}" for k, v in h["sources"].items())
            lines.append(
                f"    heap {h['handle']} {h['label']}{' (destroyed)' if h['destroyed'] else ''}: "
                f"{ev or 'no events'}; live {h['live_blocks']:,} / {format_size(h['live_bytes'])}, "
                f"peak {format_size(h['peak_live_bytes'])}"
            )
            if src:
                lines.append(f"      sources: {src}")
            if h["anomalies"]:
                lines.append("      anomalies: " + ", ".join(f"{k} {v:,}" for k, v in h["anomalies"].items()))
    return "\n".join(lines) + "\n"
