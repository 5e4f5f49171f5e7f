"""Instruction counts of ``heaplint check --jobs N`` on one trace: the whole
replay against each partition (docs/performance.md, "Parallel replay").

    python benchmarks/parallel_instructions.py TRACE [--jobs 2] [-- CHECK OPTIONS...]

Needs valgrind.  Wall clock and CPU seconds on this shared machine swing by
10-25% between runs (benchmarks/parallel_speedup.py prints both); instruction
counts do not depend on what else runs.  For the whole replay and for each
partition, valgrind's callgrind counts a child process that loads the rules
and runs it once, and one that runs it twice: the difference is one run
without the interpreter's start, the imports and the rule loading (the
"fixed" part, the first count minus one run).  ``PYTHONHASHSEED=0`` keeps
dict and set layouts, and so the counts, the same from run to run.

The speed-up it prints is ``(fixed + whole) / (fixed + slowest partition)``:
what N idle cores would give if every instruction cost the same, without
the fork and the merge (both small: see parallel_speedup.py).  Instructions
are not time: the partitions' smaller working sets make their instructions
somewhat cheaper than the whole replay's, so the CPU-second estimate of
parallel_speedup.py tends to come out a little higher than this one.
A 50k-event trace takes about 10 minutes; on so short a trace the fixed part
(about 2.6 G instructions: start, imports, compiling the built-in rules)
outweighs the replay, so ``--scale F`` also prints the speed-up of a trace
F times as long with the same event density (e.g. F = 8 for 400k events
when TRACE has 50k over an eighth of the time: per-event costs scale, the
fixed part does not).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys


def child(part: str, times: int, trace: str, check_args: list[str]) -> None:
    """Run ``part`` ("whole" or a partition index, of ``jobs``) ``times`` times."""
    from heaplint.engine.analyze import analyze_trace
    from heaplint.engine.commands.check import add_arguments
    from heaplint.engine.commands.common import reader_options, replay_options
    from heaplint.engine.commands.rule_options import load_rules
    from heaplint.engine.partition import replay_partition

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([trace, *check_args])
    rules = load_rules(args)
    kw = dict(input_format=args.input_format, reader_options=reader_options(args), replay_options=replay_options(args))
    for _ in range(times):
        if part == "whole":
            analyze_trace(rules, trace, **kw)
        else:
            index, jobs = map(int, part.split("/"))
            replay_partition(trace, index, jobs, rules=rules.enabled, **kw)


def count(part: str, times: int, trace: str, check_args: list[str]) -> int:
    """Instructions of a child running ``part`` ``times`` times."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
           "--child", part, "--times", str(times), trace, "--", *check_args]
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def one_run(part: str, trace: str, check_args: list[str]) -> tuple[int, int]:
    """(instructions of one run of ``part``, the fixed part before it)."""
    once, twice = count(part, 1, trace, check_args), count(part, 2, trace, check_args)
    return twice - once, 2 * once - twice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace", metavar="TRACE")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=None,
                        help="also the speed-up of a trace this many times as long (same density)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--times", type=int, default=1, help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    check_args = argv[argv.index("--") + 1:] if "--" in argv else []
    opts = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if opts.child:
        child(opts.child, opts.times, opts.trace, check_args)
        return 0
    whole, fixed = one_run("whole", opts.trace, check_args)
    parts = [one_run(f"{i}/{opts.jobs}", opts.trace, check_args)[0] for i in range(opts.jobs)]
    total = sum(parts)
    print(f"instructions (callgrind, one run): fixed part {fixed / 1e6:.0f}M, whole replay {whole / 1e6:.0f}M, "
          f"partitions {' + '.join(f'{p / 1e6:.0f}M' for p in parts)} = {total / 1e6:.0f}M "
          f"({total / whole:.2f}x the whole; the slowest {max(parts) / whole:.3f} of it); "
          f"speed-up on {opts.jobs} idle cores about {(fixed + whole) / (fixed + max(parts)):.2f}x")
    if opts.scale:
        k = opts.scale
        print(f"  scaled {k:g}x (fixed part unchanged): about "
              f"{(fixed + k * whole) / (fixed + k * max(parts)):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
