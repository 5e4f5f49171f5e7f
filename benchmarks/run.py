"""heaplint benchmarks: one command, run from the project root.

    python benchmarks/run.py [--size small|full] [--runs 5] [--out docs/performance.md]
                             [--only jsonl,etl,memory,live,jobs] [--stages a,b,c,d,e]
                             [--json results.json] [--no-docs]

Generates (once, cached in benchmarks/.cache) the synthetic inputs, runs every
stage on them in fresh processes, prints the Markdown report and writes it
into its region of docs/performance.md.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report  # noqa: E402
from benchmarks.inputs import InputSpec, ensure, etl_writer_missing  # noqa: E402
from benchmarks.measure import BenchError, StageResult, disagreements, measure, measure_jobs, run_child  # noqa: E402
from benchmarks.stages import unavailable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ("jsonl", "etl", "memory", "live", "jobs")
THROUGHPUT_STAGES = ("a", "b", "s", "c", "d", "e")
JSONL = "canonical JSONL"
ETL = ".etl"


@dataclass(frozen=True)
class SizePlan:
    """Input sizes: the throughput inputs, the long trace of the memory check
    (10x the short one), the live blocks of high-live-set, the --jobs traces
    (canonical JSONL, and .etl: its events cost fewer seconds each, so the
    .etl trace is longer for a run of about the same length)."""

    events: int
    long_events: int
    live_blocks: int
    jobs_events: int
    jobs_etl_events: int


#: live blocks of the baseline of the bytes-per-live-block measurement
BASE_LIVE_BLOCKS = 1_000

SIZES = {
    "small": SizePlan(100_000, 1_000_000, 100_000, 100_000, 200_000),
    "full": SizePlan(1_000_000, 10_000_000, 1_000_000, 1_000_000, 2_000_000),
}


def inputs_for(plan: SizePlan) -> dict[str, InputSpec]:
    """The inputs of a size, by role."""

    def c(n: int) -> str:
        return report.count(n).lower()

    return {
        "jsonl": InputSpec(f"steady-{c(plan.events)}", "steady", events=plan.events),
        "etl": InputSpec(f"steady-{c(plan.events)}", "steady", events=plan.events, fmt="etl"),
        "long": InputSpec(f"steady-{c(plan.long_events)}", "steady", events=plan.long_events),
        "live": InputSpec(f"high-live-{c(plan.live_blocks)}", "high-live-set", live_blocks=plan.live_blocks),
        "live-base": InputSpec(f"high-live-{c(BASE_LIVE_BLOCKS)}", "high-live-set", live_blocks=BASE_LIVE_BLOCKS),
        "jobs": InputSpec(f"busy-2proc-{c(plan.jobs_events)}", "busy-2proc", events=plan.jobs_events),
        "jobs-etl": InputSpec(f"busy-2proc-{c(plan.jobs_etl_events)}", "busy-2proc", events=plan.jobs_etl_events,
                              fmt="etl"),
    }


def jobs(rep: report.Report, inputs: dict[str, InputSpec], runs: int) -> None:
    """The ``jobs`` group: ``--jobs 1`` against ``--jobs 2`` on each input."""
    for name, key in ((JSONL, "jobs"), (ETL, "jobs-etl")):
        missing = etl_writer_missing() if key == "jobs-etl" else None
        if missing:
            rep.notes.append(f".etl --jobs: not available: {missing}")
            continue
        log(f"jobs: {name}")
        result = measure_jobs(str(ensure(inputs[key], log=log)), runs, log)
        result["input"] = inputs[key].describe()
        rep.jobs[name] = result


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=tuple(SIZES), default="small", help="input sizes (default small)")
    p.add_argument("--runs", type=int, default=5, help="runs per stage; the median is reported (default 5)")
    p.add_argument("--out", help="Markdown page to update (default docs/performance.md)")
    p.add_argument("--no-docs", action="store_true", help="print the report only")
    p.add_argument("--only", help=f"comma-separated groups to run ({', '.join(GROUPS)}; default all)")
    p.add_argument("--stages", help="comma-separated throughput stages (default a,b,s,c,d,e)")
    p.add_argument("--json", metavar="FILE", help="also write every run's raw numbers as JSON")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.groups = _pick(p, args.only, GROUPS, "--only")
    args.stage_keys = _pick(p, args.stages, THROUGHPUT_STAGES, "--stages")
    return args


def _pick(p: argparse.ArgumentParser, text: str | None, known: tuple[str, ...], option: str) -> tuple[str, ...]:
    if not text:
        return known
    picked = tuple(x.strip() for x in text.split(",") if x.strip())
    for x in picked:
        if x not in known:
            p.error(f"{option}: unknown '{x}'; known: {', '.join(known)}")
    return picked


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def throughput(rep: report.Report, label: str, spec: InputSpec, args: argparse.Namespace) -> list[StageResult]:
    """Every throughput stage on one input; (e0) stands in for (e) when the
    built-in rules are missing but the custom ones load."""
    path = str(ensure(spec, log=log))
    rep.inputs[label] = f"{spec.describe()}, {Path(path).stat().st_size / 2**20:,.1f} MiB"
    log(f"{label}: {Path(path).name}")
    keys = list(args.stage_keys)
    if "e" in keys and unavailable("e") and not unavailable("e0"):
        keys.insert(keys.index("e") + 1, "e0")
    results = measure(keys, label, path, args.runs, log)
    for problem in disagreements(results):
        rep.notes.append(f"{label}: stage outputs disagree: {problem}")
    return results


def memory(rep: report.Report, inputs: dict[str, InputSpec], args: argparse.Namespace) -> None:
    """Peak RSS of (c) on the short and the long steady trace; bytes per live
    block of (b) and (c): high-live-set with many live blocks against the
    same workload with BASE_LIVE_BLOCKS (and, for reference, an empty replay)."""
    groups = args.groups
    if "memory" in groups:
        short = rep.throughput.get(JSONL, [])
        c_short = next((r for r in short if r.key == "c" and r.runs), None)
        if c_short is None:
            [c_short] = measure(["c"], "jsonl", str(ensure(inputs["jsonl"], log=log)), 1, log)
        log(f"memory: (c) on {inputs['long'].name}")
        [c_long] = measure(["c"], "long", str(ensure(inputs["long"], log=log)), 1, log)
        rep.memory["short"] = {"events": c_short.events, "rss": c_short.peak_rss}
        rep.memory["long"] = {"events": c_long.events, "rss": c_long.peak_rss}
        rep.inputs["long"] = inputs["long"].describe()
    if "live" in groups:
        rep.memory["empty_rss"] = run_child("empty", None)["peak_rss"]
        for role in ("live", "live-base"):
            path = str(ensure(inputs[role], log=log))
            log(f"{role}: {Path(path).name}")
            for r in measure(["b", "c"], role, path, 1, log):
                rep.memory.setdefault(f"live_{r.key}", {})[role] = {
                    "blocks": r.output["live_blocks"],
                    "rss": r.peak_rss,
                }
        rep.notes.append(
            f"high-live-set inputs: {inputs['live'].describe()}; baseline {inputs['live-base'].describe()}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = SIZES[args.size]
    inputs = inputs_for(plan)
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    rep = report.Report(size=args.size, command=command.strip(), machine=report.machine())
    raw: dict = {"size": args.size, "machine": rep.machine, "stages": []}
    try:
        if "jsonl" in args.groups:
            rep.throughput[JSONL] = throughput(rep, JSONL, inputs["jsonl"], args)
        if "etl" in args.groups:
            missing = etl_writer_missing()
            if missing:
                rep.notes.append(f".etl throughput: not available: {missing}")
                log(f"etl: not available: {missing}")
            else:
                rep.throughput[ETL] = throughput(rep, ETL, inputs["etl"], args)
        memory(rep, inputs, args)
        if "jobs" in args.groups:
            jobs(rep, inputs, args.runs)
    except BenchError as err:
        log(f"benchmark failed: {err}")
        return 1
    rep.machine["load_end"] = report.load_average()
    body = report.render(rep)
    sys.stdout.write(body)
    if args.json:
        raw["stages"] = [r.as_dict() for rs in rep.throughput.values() for r in rs]
        raw.update(memory=rep.memory, jobs=rep.jobs, notes=rep.notes)
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    partial = args.only or args.stages
    if not args.no_docs and (args.out or not partial):
        out = Path(args.out) if args.out else ROOT / "docs" / "performance.md"
        report.write_docs(out, args.size, body)
        log(f"wrote the {args.size} section of {out}")
    elif partial and not args.out:
        log("partial run (--only/--stages): docs not updated (give --out to write them anyway)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
