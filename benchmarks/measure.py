"""Run stages in child processes and summarise the runs; the ``--jobs`` hook.

Each run of each stage is a fresh ``python benchmarks/child.py`` process (see
:mod:`benchmarks.child`).  Throughput is the number of events the stage saw
divided by its median time over the runs, both by the wall clock and by the
process's CPU time: on a machine shared with other work the CPU figure is the
steadier one, and a large gap between the two says the machine was busy.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks.stages import STAGES, unavailable

CHILD = Path(__file__).resolve().parent / "child.py"
ROOT = Path(__file__).resolve().parent.parent

Log = Callable[[str], None]


class BenchError(RuntimeError):
    """A child failed: its stderr says why."""


def run_child(stage: str, trace: str | None) -> dict:
    """One run of ``stage`` on ``trace`` in a fresh process (``stage`` may be
    ``empty``, the RSS baseline, with no trace)."""
    cmd = [sys.executable, str(CHILD), stage] + ([trace] if trace else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"stage {stage} on {trace} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class StageResult:
    """The runs of one stage on one input (``skipped`` says why there are none)."""

    key: str
    input: str
    runs: list[dict] = field(default_factory=list)
    skipped: str | None = None

    @property
    def title(self) -> str:
        return STAGES[self.key].title if self.key in STAGES else self.key

    @property
    def output(self) -> dict:
        return self.runs[0]["output"] if self.runs else {}

    @property
    def events(self) -> int:
        return self.output.get("events", 0)

    def median(self, what: str) -> float:
        """Median of ``wall_s``, ``cpu_s`` or ``setup_s`` over the runs."""
        return statistics.median(r[what] for r in self.runs)

    def rate(self, clock: str = "wall_s") -> float:
        """Events per second by the median time on ``clock``."""
        t = self.median(clock)
        return self.events / t if t > 0 else float("inf")

    def spread(self, clock: str = "wall_s") -> float:
        """Half the range of the times on ``clock``, relative to their median
        (0.05: the runs were within +-5 %)."""
        times = [r[clock] for r in self.runs]
        mid = statistics.median(times)
        return (max(times) - min(times)) / 2 / mid if mid > 0 else 0.0

    @property
    def peak_rss(self) -> int:
        """The highest peak RSS over the runs, in bytes."""
        return max(r["peak_rss"] for r in self.runs)

    def as_dict(self) -> dict:
        return {"stage": self.key, "input": self.input, "skipped": self.skipped, "runs": self.runs}


def measure(keys: list[str], name: str, trace: str, runs: int, log: Log) -> list[StageResult]:
    """``runs`` runs of each stage in ``keys`` on ``trace`` (or the reason a
    stage cannot run).  The runs are interleaved (a, b, c, a, b, c, ...) so
    that a change in the machine's load hits every stage alike."""
    results = [StageResult(k, name, skipped=unavailable(k)) for k in keys]
    for r in results:
        if r.skipped:
            log(f"  ({r.key}) {r.title}: not available: {r.skipped}")
    for i in range(runs):
        for r in results:
            if r.skipped:
                continue
            run = run_child(r.key, trace)
            r.runs.append(run)
            events = run["output"]["events"]
            log(
                f"  ({r.key}) run {i + 1}/{runs}: {events / run['wall_s'] / 1e3:,.1f} k ev/s wall, "
                f"{events / max(run['cpu_s'], 1e-9) / 1e3:,.1f} k ev/s CPU, peak RSS {run['peak_rss'] / 2**20:,.1f} MiB"
            )
    return results


def disagreements(results: list[StageResult]) -> list[str]:
    """Where the stages of one input disagree on what they computed: the
    runs of one stage with each other, the event counts of every stage, and
    the final live bytes and blocks of every stage that replays.  An empty
    list on a healthy trace."""
    done = [r for r in results if r.runs]
    problems = [f"the runs of ({r.key}) computed different outputs" for r in done
                if any(run["output"] != r.output for run in r.runs)]  # fmt: skip
    counts = {r.key: r.events for r in done}
    if len(set(counts.values())) > 1:
        problems.append(f"event counts differ: {counts}")
    for what in ("live_bytes", "live_blocks"):
        seen = {r.key: r.output.get(what) for r in done if r.output.get(what) is not None}
        if len(set(seen.values())) > 1:
            problems.append(f"final {what.replace('_', ' ')} differ: {seen}")
    return problems


# --- the --jobs hook ---------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "heaplint.engine", *args]


def check_help() -> str:
    """``heaplint check --help`` (empty when there is no check command)."""
    proc = subprocess.run(_cli("check", "--help"), capture_output=True, text=True, cwd=ROOT)
    return proc.stdout if proc.returncode == 0 else ""


def measure_jobs(trace: str, runs: int, log: Log) -> dict:
    """Wall time of ``heaplint check TRACE --jobs 1`` and ``--jobs 2`` (median
    of ``runs``, whole command including start-up) and whether their outputs
    are byte-identical.  ``available`` is False with a reason until the CLI
    has ``--jobs``."""
    text = check_help()
    if not text:
        return {"available": False, "reason": "no `heaplint check` command in this build"}
    if "--jobs" not in text:
        return {"available": False, "reason": "`heaplint check` has no --jobs option yet"}
    extra = ["--no-config"] if "--no-config" in text else []
    times: dict[int, list[float]] = {1: [], 2: []}
    outputs: dict[int, set[bytes]] = {1: set(), 2: set()}
    for i in range(runs):
        for jobs in (1, 2):  # interleaved, so that a load change hits both alike
            t0 = time.perf_counter()
            proc = subprocess.run(_cli("check", trace, "--jobs", str(jobs), *extra), capture_output=True, cwd=ROOT)
            elapsed = time.perf_counter() - t0
            if proc.returncode not in (0, 1):
                raise BenchError(f"heaplint check --jobs {jobs} failed (exit {proc.returncode}):\n"
                                 + proc.stderr.decode(errors="replace")[-2000:])  # fmt: skip
            times[jobs].append(elapsed)
            outputs[jobs].add(proc.stdout)
            log(f"  check --jobs {jobs} run {i + 1}/{runs}: {elapsed:.2f} s")
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {
        "available": True,
        "jobs1_s": one,
        "jobs2_s": two,
        "speedup": one / two if two > 0 else float("inf"),
        "identical": len(outputs[1] | outputs[2]) == 1,
        "times": {str(k): v for k, v in times.items()},
    }
