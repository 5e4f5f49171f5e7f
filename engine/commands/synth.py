"""``heaplint synth``: write a deterministic synthetic trace (and its truth)."""

from __future__ import annotations

import argparse
import json

from heaplint.engine.commands.common import duration_arg
from heaplint.engine.errors import HeaplintError, UsageError
from heaplint.engine.output import write_atomic
from heaplint.engine.synth import synthesize
from heaplint.engine.synth_defects import DEFECTS
from heaplint.engine.synth_presets import PRESETS, build_spec

HELP = "generate a realistic synthetic heap trace (seeded), optionally with injected defects"
DESCRIPTION = (
    "Generate a synthetic heap trace in the canonical format: several processes and heaps, LFH churn, "
    "caches, sawtooth batches, warm-up ramps, buffers grown by realloc (both realloc shapes), "
    "attach-mode and lost-event variants, and optional injected defects. The same arguments and seed "
    "always give the same bytes. --truth writes the ground truth (what was injected, where, and which "
    "built-in rule should catch it). Presets: " + ", ".join(PRESETS) + "."
)


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: '{text}'")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", default="mixed", metavar="NAME", help="workload preset (default mixed; --list-presets)"
    )
    parser.add_argument("--list-presets", action="store_true", help="list the presets and defects, then exit")
    parser.add_argument("--seed", type=_positive, default=0, help="random seed (default 0)")
    parser.add_argument("--events", type=_positive, metavar="N", help="approximate number of events (preset default)")
    parser.add_argument("--processes", type=_positive, metavar="N", help="number of processes (preset default)")
    parser.add_argument(
        "--duration", type=duration_arg, metavar="DURATION", help="capture length, e.g. 60s (default 60s)"
    )
    parser.add_argument(
        "--inject",
        default="",
        metavar="DEFECTS",
        help=f"comma-separated defects to inject into the first process ({', '.join(DEFECTS)})",
    )
    parser.add_argument(
        "--defect-count", type=_positive, metavar="N", help="occurrences of each point defect (default 2)"
    )
    parser.add_argument(
        "--attach", action="store_true", default=None, help="the capture starts while the processes run"
    )
    parser.add_argument(
        "--lost-events", type=_positive, metavar="N", help="drop N events in bursts and declare them lost"
    )
    parser.add_argument("--disorder", type=duration_arg, metavar="DURATION", help="per-CPU buffer disorder, e.g. 2ms")
    parser.add_argument("--live-blocks", type=_positive, metavar="N", help="high-live-set: live blocks at the end")
    parser.add_argument(
        "--realloc-shape", choices=("standalone", "paired", "mixed"), help="how moving reallocs are logged"
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="trace file (.jsonl or .csv, .gz to compress)")
    parser.add_argument("--truth", metavar="TRUTH.json", help="write the ground truth JSON here")


def _inject(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if n not in DEFECTS:
            raise UsageError(f"unknown defect '{n}' in --inject; known: {', '.join(DEFECTS)}")
    return names


def list_presets() -> str:
    """The --list-presets text."""
    width = max(map(len, PRESETS))
    lines = ["presets:"]
    lines += [f"  {name:<{width}}  {p.description}" for name, p in PRESETS.items()]
    lines.append("defects (--inject):")
    lines += [f"  {name:<{width}}  {what} [{rule}]" for name, (rule, _, what) in DEFECTS.items()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        write_atomic("-", list_presets().encode())
        return 0
    if not args.output:
        raise UsageError("an output file is required: -o OUT (.jsonl, .csv, optionally .gz)")
    spec = build_spec(
        args.preset,
        seed=args.seed,
        events=args.events,
        processes=args.processes,
        duration_ns=args.duration,
        inject=_inject(args.inject),
        attach=args.attach,
        lost_events=args.lost_events,
        disorder_ns=args.disorder,
        live_blocks=args.live_blocks,
        realloc_shape=args.realloc_shape,
        defect_count=args.defect_count or None,
    )
    try:
        from heaplint.engine.writers import write_trace
    except ModuleNotFoundError as err:
        if err.name not in ("heaplint.engine.writers",):
            raise
        raise HeaplintError("the canonical trace writer (heaplint.engine.writers) is not part of this build") from err
    trace = synthesize(spec)
    write_trace(args.output, trace.events(), trace.info, trace.stacks)
    if args.truth:
        write_atomic(args.truth, (json.dumps(trace.truth, indent=1) + "\n").encode())
    return 0
