"""Run one stage on one trace in this (fresh) process; print the result as JSON.

    python benchmarks/child.py STAGE TRACE       # STAGE: a, b, c, d, e, e0
    python benchmarks/child.py empty             # the RSS baseline of an empty replay

The parent (:mod:`benchmarks.measure`) starts one child per run so that the
peak RSS (see :func:`peak_rss_bytes`) belongs to that stage alone and no run
warms the caches of the next.  Only the stage's timed callable is timed: the imports and
the one-off setup (loading and compiling rules) are reported separately as
``setup_s``.  Output: one JSON object on stdout.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stages import STAGES, empty_replay  # noqa: E402


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes.

    On Linux this is ``VmHWM`` of /proc/self/status, the high-water mark of
    this program's own memory map.  ``ru_maxrss`` is not used there: Linux
    carries it across exec, so a child started by a big parent reports at
    least the parent's peak (the harness's parent process is ~30 MiB).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def run_stage(key: str, path: str | None) -> dict:
    """Prepare, time and run stage ``key`` on ``path``; the JSON-ready result."""
    t0 = time.perf_counter()
    if key == "empty":
        fn = None
    else:
        fn = STAGES[key].prepare()
    setup = time.perf_counter() - t0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if fn is None:
        out = empty_replay()
    else:
        assert path is not None
        out = fn(path)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "stage": key,
        "trace": path,
        "wall_s": wall,
        "cpu_s": cpu,
        "setup_s": setup,
        "peak_rss": peak_rss_bytes(),
        "output": out.as_dict(),
    }


def main(argv: list[str]) -> int:
    if not argv or (argv[0] != "empty" and (argv[0] not in STAGES or len(argv) != 2)):
        sys.stderr.write(f"usage: child.py {{{','.join(STAGES)}}} TRACE | child.py empty\n")
        return 2
    result = run_stage(argv[0], argv[1] if len(argv) > 1 else None)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
