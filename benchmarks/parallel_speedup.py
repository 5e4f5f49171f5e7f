"""Speed-up of ``heaplint check --jobs N`` over ``--jobs 1`` (docs/performance.md,
"Parallel replay").

    python benchmarks/parallel_speedup.py TRACE... [--jobs 2] [--runs 3] [--cpu-runs 3] [--cpu-only]
                                          [--stages] [-- CHECK OPTIONS...]

(With several traces, only the wall clock is measured: one trace per worker.)

Two measurements, because the machine may be shared:

* wall clock of the real command, ``--jobs 1`` and ``--jobs N`` alternated,
  median of ``--runs``, with the load average before and after;
* CPU seconds of each part done in one process (the whole replay; each
  partition; the least of ``--cpu-runs``): with N idle cores the parallel run takes about the parent's
  share (loading rules, merging) plus its slowest partition, so
  ``whole / (parent + slowest partition)`` is the speed-up the design allows
  whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def cpu_estimate(trace: str, jobs: int, check_args: list[str], runs: int = 3) -> dict[str, float]:
    """CPU seconds, the least of ``runs`` (alternated): rules loading
    (parent), whole replay, each partition, merge."""
    from heaplint.engine.analyze import analyze_trace
    from heaplint.engine.commands.check import add_arguments
    from heaplint.engine.commands.common import reader_options, replay_options
    from heaplint.engine.commands.rule_options import load_rules
    from heaplint.engine.partition import is_trace_scope, replay_partition
    from heaplint.engine.partition_merge import merge_parts

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([trace, *check_args])
    t0 = time.process_time()
    rules = load_rules(args)
    t1 = time.process_time()
    kw = dict(input_format=args.input_format, reader_options=reader_options(args), replay_options=replay_options(args))
    whole, parts, merge = [], [[] for _ in range(jobs)], []
    for _ in range(runs):
        s = time.process_time()
        analyze_trace(rules, trace, **kw)
        whole.append(time.process_time() - s)
        results = []
        for i in range(jobs):
            s = time.process_time()
            results.append(replay_partition(trace, i, jobs, rules=rules.enabled, **kw))
            parts[i].append(time.process_time() - s)
        s = time.process_time()
        merged = merge_parts(results, [r for r in rules.enabled if is_trace_scope(r)])
        merge.append(time.process_time() - s)
        assert merged is not None, "the merge declined: the trace is replayed whole"
    times = [min(p) for p in parts]
    return {"rules": t1 - t0, "whole": min(whole), "parts": times, "slowest": max(times), "sum": sum(times),
            "merge": min(merge)}


def stage_costs(trace: str, jobs: int, runs: int = 3) -> dict[str, list[float]]:
    """CPU seconds (least of ``runs``) of reading alone and of ordering alone
    (records read beforehand), for the whole trace and each partition."""
    from heaplint.engine.partition import PidPartition
    from heaplint.engine.partition_order import PartitionOrder
    from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
    from heaplint.engine.replay import ReplayCounters, ReplayOptions, ordered

    def read(options: ReaderOptions) -> list:
        reader, trace_input = open_trace(trace, None, options)
        with trace_input:
            return list(guarded_events(reader))

    options = [ReaderOptions()] + [ReaderOptions(pids=PidPartition(i, jobs), pid_stubs=True) for i in range(jobs)]
    items = [read(o) for o in options]
    order = [lambda: ordered(items[0], ReplayOptions(), ReplayCounters())]
    order += [lambda i=i: PartitionOrder(ReplayOptions(), ReplayCounters()).events(items[i]) for i in range(1, jobs + 1)]
    reading: list[list[float]] = [[] for _ in options]
    ordering: list[list[float]] = [[] for _ in options]
    for _ in range(runs):
        for i, o in enumerate(options):
            s = time.process_time()
            read(o)
            reading[i].append(time.process_time() - s)
            s = time.process_time()
            for _ev in order[i]():
                pass
            ordering[i].append(time.process_time() - s)
    return {"reading": [min(r) for r in reading], "ordering": [min(r) for r in ordering]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", metavar="TRACE")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu-runs", type=int, default=3, help="runs of the CPU measurement (least taken)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the wall-clock runs")
    parser.add_argument("--stages", action="store_true",
                        help="also CPU of reading alone and ordering alone, whole trace and partitions")
    argv = sys.argv[1:]
    check_args = argv[argv.index("--") + 1:] if "--" in argv else []
    opts = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    opts.check_args = check_args
    base = [sys.executable, "-m", "heaplint.engine", "check", *opts.traces, "-o", os.devnull, *opts.check_args]
    if opts.cpu_only:
        opts.runs = 0
    load_before = os.getloadavg()
    one, many = [], []
    for _ in range(opts.runs):
        one.append(wall([*base, "--jobs", "1"]))
        many.append(wall([*base, "--jobs", str(opts.jobs)]))
    load_after = os.getloadavg()
    if opts.runs:
        m1, mn = statistics.median(one), statistics.median(many)
        print(f"wall clock, median of {opts.runs}: --jobs 1 {m1:.2f} s, --jobs {opts.jobs} {mn:.2f} s, "
              f"speed-up {m1 / mn:.2f}x")
        print(f"  runs: jobs 1 {[round(x, 2) for x in one]}, jobs {opts.jobs} {[round(x, 2) for x in many]}")
        print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    if len(opts.traces) > 1:
        return 0
    cpu = cpu_estimate(opts.traces[0], opts.jobs, opts.check_args, opts.cpu_runs)
    serial = cpu["rules"] + cpu["whole"]
    parallel = cpu["rules"] + cpu["slowest"] + cpu["merge"]
    print(f"CPU seconds (least of {opts.cpu_runs}): rules {cpu['rules']:.2f}, whole replay {cpu['whole']:.2f}, "
          f"partitions {' + '.join(f'{t:.2f}' for t in cpu['parts'])} = {cpu['sum']:.2f} "
          f"({cpu['sum'] / cpu['whole']:.2f}x the whole), merge {cpu['merge']:.3f}; "
          f"speed-up on {opts.jobs} idle cores about {serial / parallel:.2f}x")
    if opts.stages:
        for stage, times in stage_costs(opts.traces[0], opts.jobs, opts.cpu_runs).items():
            print(f"  {stage} alone: whole {times[0]:.3f} s, partitions "
                  f"{' + '.join(f'{t:.3f}' for t in times[1:])} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
