"""Run one benchmark stage once or twice on a trace (for instruction counts).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/stage_twice.py d TRACE 1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/stage_twice.py d TRACE 2

The difference of the two "I refs" totals is the cost of one run without
imports, rule compilation and first-call set-up; divided by the trace's
events it is a per-event instruction count, which (unlike CPU time) does not
change when other work shares the machine.  Stages: any of stages.py's
(a, b, s, c, d, e).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stages import STAGES  # noqa: E402


def main(argv: list[str]) -> None:
    stage, trace, times = argv[0], argv[1], int(argv[2])
    fn = STAGES[stage].prepare()
    for _ in range(times):
        fn(trace)


if __name__ == "__main__":
    main(sys.argv[1:])
