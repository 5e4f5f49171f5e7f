"""The benchmark report: Markdown tables, the machine, docs/performance.md.

:func:`render` turns the results of one run of the harness into Markdown;
:func:`update_region` puts it between ``<!-- bench:begin:SIZE -->`` and
``<!-- bench:end:SIZE -->`` in docs/performance.md, leaving every other part
of that page (sections written by hand or by other tools) as it was.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.measure import StageResult

ROOT = Path(__file__).resolve().parent.parent
PAGE_HEAD = """# Performance

How fast heaplint replays traces and how much memory it needs. The tables
between the `bench` markers are written by `python benchmarks/run.py` (see
benchmarks/README.md); do not edit them by hand, re-run the command.
"""
#: ratio targets of issue 7 (stage -> minimum of stage/(b))
TARGETS = {"s": None, "c": None, "d": 0.5, "e": 0.33}
MAX_RSS_GROWTH = 1.10
MAX_BYTES_PER_BLOCK = 300


@dataclass
class Report:
    """Everything one harness run measured (filled by benchmarks.run)."""

    size: str
    command: str
    machine: dict
    inputs: dict[str, str] = field(default_factory=dict)  # name -> description
    throughput: dict[str, list[StageResult]] = field(default_factory=dict)  # input name -> stages
    memory: dict = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)  # input name -> measure_jobs() result
    notes: list[str] = field(default_factory=list)


# --- the machine ----------------------------------------------------------------------
def machine() -> dict:
    """CPU count and model, Python, OS, commit and load of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu": model or "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "commit": _commit(),
        "load_start": load_average(),
    }


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT)  # fmt: skip
    except OSError:
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return commit + (" + uncommitted changes" if dirty.stdout.strip() else "")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# --- formatting -----------------------------------------------------------------------
def rate(eps: float) -> str:
    """Events per second, short (``1.23 M``, ``456 k``)."""
    if eps >= 1e6:
        return f"{eps / 1e6:.2f} M"
    return f"{eps / 1e3:.1f} k"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def count(n: int) -> str:
    """An event count, short (``100k``, ``1M``, ``2.4M``)."""
    if n >= 1_000_000:
        return f"{n / 1e6:g}M"
    if n >= 1_000:
        return f"{n / 1e3:g}k"
    return str(n)


def _ratio(stage: StageResult, floor: StageResult | None, clock: str) -> str:
    if floor is None or not floor.runs or not stage.runs:
        return "–"
    return f"{stage.rate(clock) / floor.rate(clock):.2f}"


def _rate(r: StageResult, clock: str) -> str:
    return f"{rate(r.rate(clock))} ±{r.spread(clock):.0%}"


def throughput_table(results: list[StageResult]) -> list[str]:
    """One row per stage: rates (wall and CPU, with the runs' spread), ratio
    to (b), RSS, setup."""
    floor = next((r for r in results if r.key == "b" and r.runs), None)
    lines = [
        "| stage | events/s (wall) | events/s (CPU) | ÷ (b) wall | ÷ (b) CPU | peak RSS | setup | rules | findings |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        label = f"({r.key}) {r.title}"
        if not r.runs:
            lines.append(f"| {label} | not available: {r.skipped} | | | | | | | |")
            continue
        out = r.output
        rules = "–" if out.get("rules") is None else str(out["rules"])
        findings = "–" if out.get("findings") is None else str(out["findings"])
        lines.append(
            f"| {label} | {_rate(r, 'wall_s')} | {_rate(r, 'cpu_s')} | {_ratio(r, floor, 'wall_s')} "
            f"| {_ratio(r, floor, 'cpu_s')} | {mib(r.peak_rss)} | {r.median('setup_s'):.2f} s | {rules} | {findings} |"
        )
    return lines


def ratio_table(throughput: dict[str, list[StageResult]]) -> list[str]:
    """The issue's ratios (c)/(b), (d)/(b), (e)/(b) per input, against the targets."""
    names = list(throughput)
    lines = ["| ratio | " + " | ".join(f"{n} (wall / CPU)" for n in names) + " | target |",
             "|---|" + "--:|" * len(names) + "---|"]  # fmt: skip
    for key, target in TARGETS.items():
        cells = []
        for name in names:
            by_key = {r.key: r for r in throughput[name]}
            stage, floor = by_key.get(key), by_key.get("b")
            if stage is None or not stage.runs:
                stand_in = by_key.get("e0") if key == "e" else None
                if stand_in is not None and stand_in.runs:
                    wall, cpu = _ratio(stand_in, floor, "wall_s"), _ratio(stand_in, floor, "cpu_s")
                    cells.append(f"n/a (e0 alone: {wall} / {cpu})")
                else:
                    cells.append("n/a")
                continue
            cells.append(f"{_ratio(stage, floor, 'wall_s')} / {_ratio(stage, floor, 'cpu_s')}")
        lines.append(f"| ({key})/(b) | " + " | ".join(cells) + f" | {'≥ ' + str(target) if target else '–'} |")
    return lines


def memory_lines(memory: dict) -> list[str]:
    """The RSS-versus-trace-length and bytes-per-live-block rows."""
    if not memory:
        return []
    lines = ["| measurement | value | target |", "|---|--:|---|"]
    short, long_ = memory.get("short"), memory.get("long")
    if short and long_:
        growth = long_["rss"] / short["rss"]
        verdict = "met" if growth <= MAX_RSS_GROWTH else "NOT met"
        lines += [
            f"| peak RSS of (c), steady, {short['events']:,} events | {mib(short['rss'])} | |",
            f"| peak RSS of (c), steady, {long_['events']:,} events | {mib(long_['rss'])} | |",
            f"| ratio | {growth:.3f} | ≤ {MAX_RSS_GROWTH:.2f} ({verdict}) |",
        ]
    if memory.get("empty_rss"):
        lines.append(f"| peak RSS of an empty replay (imports, no events) | {mib(memory['empty_rss'])} | |")
    for key in ("b", "c"):
        live = memory.get(f"live_{key}", {})
        full, base = live.get("live"), live.get("live-base")
        if not full or not base:
            continue
        per_block = (full["rss"] - base["rss"]) / max(full["blocks"] - base["blocks"], 1)
        target = ""
        if key == "c":
            target = f"≤ {MAX_BYTES_PER_BLOCK} B ({'met' if per_block <= MAX_BYTES_PER_BLOCK else 'NOT met'})"
        lines += [
            f"| ({key}) peak RSS, high-live-set, {base['blocks']:,} / {full['blocks']:,} live blocks at the end "
            f"| {mib(base['rss'])} / {mib(full['rss'])} | |",
            f"| ({key}) bytes per live block: RSS difference ÷ live-block difference "
            f"| {per_block:,.0f} B | {target} |",
        ]
    return lines


def jobs_lines(jobs: dict) -> list[str]:
    if not jobs:
        return []
    if not jobs.get("available"):
        return [f"Not available: {jobs.get('reason')}."]
    same = "byte-identical" if jobs["identical"] else "**DIFFERENT** (must be byte-identical)"
    return [
        "| command | wall time (median) |",
        "|---|--:|",
        f"| `heaplint check --jobs 1` | {jobs['jobs1_s']:.2f} s |",
        f"| `heaplint check --jobs 2` | {jobs['jobs2_s']:.2f} s |",
        f"| speed-up | {jobs['speedup']:.2f}× (target ≥ 1.7×) |",
        "",
        f"Outputs of --jobs 1 and --jobs 2: {same}. Times include interpreter start-up.",
    ]


def render(rep: Report) -> str:
    """The whole report as Markdown (the body of the docs region)."""
    m = rep.machine
    out = [
        f"## Benchmarks ({rep.size} size)",
        "",
        f"Command: `{rep.command}`",
        "",
        f"Machine: {m['nproc']} CPUs usable ({m['cpu']}), {m['python']}, {m['os']}; "
        f"heaplint commit {m['commit']}. Load average (1/5/15 min) at start {m['load_start']}, "
        f"at end {m.get('load_end', 'unknown')}: wall-clock rates suffer when other work shares the CPUs, "
        "CPU-time rates much less.",
        "",
        "Events per second are the events of the trace divided by the median time of the runs (± half "
        "the range of the run times, relative to the median); each run is a fresh process, runs of the "
        "stages are interleaved, and every stage includes decoding. Peak RSS is the highest of the runs.",
    ]
    for name, results in rep.throughput.items():
        out += ["", f"### Throughput: {name}", "", f"Input: {rep.inputs.get(name, name)}", ""]
        out += throughput_table(results)
    if rep.throughput:
        out += ["", "### Ratios to the minimal replay (b)", ""] + ratio_table(rep.throughput)
        if any(r.key == "s" and r.runs for results in rep.throughput.values() for r in results):
            out += ["", "(s) is (b) with a SortedDict per heap in place of the dict, nothing else: the least any "
                    "replay pays that keeps the sorted map current event by event, as issue 7 requires "
                    "(it is the source of truth for the overlap check at every allocation); "
                    "(c), (d) and (e) do all of that and more, so (s)/(b) bounds what their ratios can reach."]
    if rep.memory:
        out += ["", "### Memory", ""] + memory_lines(rep.memory)
    for name, jobs in rep.jobs.items():
        out += ["", f"### Parallel replay (`--jobs`): {name}", ""]
        if "input" in jobs:
            out += [f"Input: {jobs['input']}", ""]
        out += jobs_lines(jobs)
    if rep.notes:
        out += ["", "### Notes", ""] + [f"- {n}" for n in rep.notes]
    return "\n".join(out) + "\n"


# --- docs/performance.md -------------------------------------------------------------
def markers(size: str) -> tuple[str, str]:
    return f"<!-- bench:begin:{size} -->", f"<!-- bench:end:{size} -->"


def update_region(page: str, size: str, body: str) -> str:
    """``page`` with the region of ``size`` replaced by ``body`` (appended when
    the page has no such region; a new page when ``page`` is empty)."""
    begin, end = markers(size)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if not page.strip():
        return PAGE_HEAD + "\n" + block + "\n"
    start = page.find(begin)
    stop = page.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return page[:start] + block + page[stop + len(end):]
    return page.rstrip("\n") + "\n\n" + block + "\n"


def write_docs(path: Path, size: str, body: str) -> None:
    """Update the ``size`` region of the page at ``path`` (created if missing)."""
    page = path.read_text(encoding="utf-8") if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(update_region(page, size, body), encoding="utf-8")
    os.replace(tmp, path)
