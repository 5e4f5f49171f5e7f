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
from heaplint.engine.partition import process_series
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
    jobs: int = 1,
    progress: bool = False,
) -> AnalysisResult:
    """Analyse each trace with the configured rules.

    ``params`` maps ``RULE.NAME`` (rule id or name) to a value as text.
    ``use_config`` looks for heaplint.yaml / [tool.heaplint] upward from the
    current directory when ``config_path`` is not given.  Raises
    ErrorCollection for rule or config problems.  A trace that cannot be read
    whole does not stop the others: its error goes to ``result.errors``, which
    makes the exit status 2.

    ``jobs`` > 1 replays in that many worker processes (0: one per CPU):
    traces side by side, or the processes of a trace (see
    :mod:`heaplint.engine.parallel`); the result is the same as with 1.  A
    ``ruleset`` passed in must come from
    :meth:`heaplint.engine.parallel.RuleSetArgs.load` for workers that cannot
    inherit it (platforms without fork); otherwise the run stays in-process."""
    from heaplint.engine.parallel import AnalysisSpec, Failed, RuleSetArgs, resolve_jobs, ruleset_args, run_traces

    if ruleset is None:
        ruleset = RuleSetArgs.of(
            rule_paths, no_builtin=no_builtin, config_path=config_path, use_config=use_config,
            enable=enable, disable=disable, params=params,
        ).load()
    results: list[TraceResult] = []
    errors: list[str] = []
    jobs = resolve_jobs(jobs)
    if jobs > 1:
        spec = AnalysisSpec(ruleset_args(ruleset), input_format, reader_options, replay_options)
        for outcome in run_traces(traces, spec, jobs, ruleset):
            if isinstance(outcome, Failed):
                if not isinstance(outcome.error, TraceError):
                    raise outcome.error
                errors.append(str(outcome.error))
            else:
                results.append(outcome)
        return AnalysisResult(results, ruleset.meta, fail_on, errors=errors, warnings=empty_trace_warnings(results))
    for path in traces:
        try:
            results.append(analyze_trace(ruleset, path, input_format=input_format, reader_options=reader_options,
                                         replay_options=replay_options, progress=progress))
        except TraceError as err:
            errors.append(str(err))
    return AnalysisResult(results, ruleset.meta, fail_on, errors=errors, warnings=empty_trace_warnings(results))


def empty_trace_warnings(results: Sequence[TraceResult]) -> list[str]:
    """A warning for each trace without a single heap record: it passes every
    gate while checking nothing, which a CI job must not take for a clean run."""
    return [
        f"{r.path}: no heap events in this trace, so nothing was checked; was the Heap provider "
        "enabled for the process under test? (see docs/capturing.md)"
        for r in results
        if r.quality.empty
    ]


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
    no --quiet; parallel runs show none)."""
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
        out.update(process_series(proc))
    return out
