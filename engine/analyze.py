"""The public Python API: replay traces and evaluate rules on them.

    from heaplint.engine import analyze
    result = analyze(["run1.jsonl.gz"], rule_paths=["ci/rules/"], params={"HL002.threshold": "100"})
    for finding in result.findings: ...
    sys.exit(result.exit_status)

Rules are loaded and compiled once (:func:`heaplint.rules.ruleset.load_ruleset`)
and reused for every trace; pass ``ruleset=`` to reuse them across calls.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent
from heaplint.engine.findings import AnalysisResult, Finding, Severity, TraceResult
from heaplint.engine.progress import Progress
from heaplint.engine.readers import ReaderOptions, guarded_events, open_trace
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.stats import stats_document, trace_quality


def analyze(
    traces: Sequence[str],
    *,
    rule_paths: Sequence[str] = (),
    no_builtin: bool = False,
    config_path: str | None = None,
    use_config: bool = True,
    enable: Sequence[str] = (),
    disable: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    input_format: str | None = None,
    reader_options: ReaderOptions | None = None,
    replay_options: ReplayOptions | None = None,
    fail_on: Severity | None = Severity.ERROR,
    ruleset=None,
    progress: bool = False,
) -> AnalysisResult:
    """Analyse each trace with the configured rules.

    ``params`` maps ``RULE.NAME`` (rule id or name) to a value as text.
    ``use_config`` looks for heaplint.yaml / [tool.heaplint] upward from the
    current directory when ``config_path`` is not given.  Raises
    ErrorCollection for rule or config problems.  A trace that cannot be read
    whole does not stop the others: its error goes to ``result.errors``, which
    makes the exit status 2."""
    from heaplint.rules.ruleset import load_ruleset

    if ruleset is None:
        ruleset = load_ruleset(
            rule_paths, no_builtin=no_builtin, config_path=config_path, use_config=use_config,
            enable=enable, disable=disable, params=params or {},
        )
    results: list[TraceResult] = []
    errors: list[str] = []
    for path in traces:
        try:
            results.append(analyze_trace(ruleset, path, input_format=input_format, reader_options=reader_options,
                                         replay_options=replay_options, progress=progress))
        except TraceError as err:
            errors.append(str(err))
    return AnalysisResult(results, ruleset.meta, fail_on, errors=errors)


def analyze_trace(
    ruleset,
    path: str,
    *,
    input_format: str | None = None,
    reader_options: ReaderOptions | None = None,
    replay_options: ReplayOptions | None = None,
    progress: bool = False,
) -> TraceResult:
    """Replay one trace with the enabled rules of ``ruleset``.  With
    ``progress``, a bar on stderr shows how far reading is once the trace has
    taken more than a couple of seconds (the caller decides: a terminal and
    no --quiet)."""
    from heaplint.rules.runtime import RuleRun

    reader, trace_input = open_trace(path, input_format, reader_options)
    with trace_input, Progress.for_input(trace_input, progress, label=path) as bar:
        run = RuleRun(ruleset.enabled, reader.info, reader.stacks, trace=path)
        replay = Replay(replay_options or ReplayOptions(), on_process_end=run.on_process_end)
        run.attach(replay)
        events = guarded_events(reader)
        replay.run(_ticking(events, bar) if progress else events, run.on_event)
        findings = run.finish(reader.stacks)
    findings.sort(key=Finding.sort_key)
    info = reader.info
    return TraceResult(
        path=path, info=info, quality=trace_quality(info, replay), findings=findings,
        stats=stats_document(info, replay), series=heap_series(replay),
    )


def _ticking(events: Iterable[HeapEvent], bar: Progress) -> Iterator[HeapEvent]:
    """``events`` unchanged, telling the progress bar every 65,536 events."""
    n = 0
    for ev in events:
        n += 1
        if not n & 0xFFFF:
            bar.tick(n)
        yield ev


def heap_series(replay: Replay) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Live bytes over time per (pid, heap handle), from the bounded series."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for proc in replay.state.all_processes():
        for heap in proc.all_heaps():
            points = [(b.start, b.last) for b in heap.series.snapshot()]
            if points:
                out[(proc.pid, heap.handle)] = points
    return out
