"""``--jobs N``: replay traces, or the processes of one trace, in worker processes.

Plan: with several traces, one task per trace; with fewer traces than jobs,
each trace is split into ``jobs // traces`` partitions by process
(:mod:`heaplint.engine.partition`).  Standard input is read by the parent
only.  One task in all, or ``jobs == 1``, runs in-process.

Rule sets are compiled closures and cannot be pickled, so a task carries the
picklable :class:`RuleSetArgs` the rules were loaded from; a worker loads and
compiles them once.  Where workers are forked (Linux, single-threaded caller)
they inherit the parent's compiled rule set instead and compile nothing.

Results are merged in trace order and are identical to ``jobs=1``.  A
:class:`~heaplint.engine.errors.HeaplintError` in a worker comes back as the
same error (for a partitioned trace: the one a whole replay would have met
first); any other exception is a bug and propagates; a worker that dies
raises :class:`WorkerCrash`.  Ctrl-C terminates the workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from heaplint.engine.errors import HeaplintError
from heaplint.engine.partition import PartResult, is_trace_scope, replay_partition
from heaplint.engine.partition_merge import merge_parts
from heaplint.engine.partition_order import PartitionAbandoned
from heaplint.engine.readers import ReaderOptions
from heaplint.engine.readers.base import CompressedDataError
from heaplint.engine.replay import ReplayOptions

T = TypeVar("T")
R = TypeVar("R")


class WorkerCrash(RuntimeError):
    """A worker process ended without returning (killed, out of memory, a
    crash in C code).  Not a HeaplintError: it is reported as a bug."""


def resolve_jobs(jobs: int) -> int:
    """``jobs`` itself, or the number of CPUs this process may use for 0."""
    if jobs < 0:
        raise ValueError("jobs must be 0 (one per CPU) or more")
    if jobs == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return jobs


@dataclass(frozen=True)
class RuleSetArgs:
    """The arguments of :func:`heaplint.rules.ruleset.load_ruleset`, as a
    picklable value: what a worker needs to build the same rule set."""

    rule_paths: tuple[str, ...] = ()
    no_builtin: bool = False
    config_path: str | None = None
    use_config: bool = True
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        rule_paths: Sequence[str] = (),
        *,
        no_builtin: bool = False,
        config_path: str | None = None,
        use_config: bool = True,
        enable: Sequence[str] = (),
        disable: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
    ) -> "RuleSetArgs":
        return cls(tuple(rule_paths), no_builtin, config_path, use_config, tuple(enable), tuple(disable),
                   tuple((params or {}).items()))

    def load(self) -> Any:
        """Load and compile the rule set (ErrorCollection on problems).  The
        result remembers these arguments (:func:`ruleset_args`)."""
        from heaplint.rules.ruleset import load_ruleset

        ruleset = load_ruleset(
            list(self.rule_paths), no_builtin=self.no_builtin, config_path=self.config_path,
            use_config=self.use_config, enable=self.enable, disable=self.disable, params=dict(self.params),
        )
        ruleset.load_args = self
        return ruleset


def ruleset_args(ruleset: Any) -> RuleSetArgs | None:
    """The arguments ``ruleset`` was loaded from, when it was made by
    :meth:`RuleSetArgs.load` (None for rule sets built otherwise)."""
    return getattr(ruleset, "load_args", None)


@dataclass(frozen=True)
class AnalysisSpec:
    """Everything a worker needs besides the trace: picklable."""

    rules: RuleSetArgs | None  # None: replay only (``heaplint stats``)
    input_format: str | None = None
    reader_options: ReaderOptions | None = None
    replay_options: ReplayOptions | None = None
    #: key of the parent's compiled rule set in :data:`_INHERITED` (forked workers)
    token: int = 0


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole trace (``count == 1``) or one partition."""

    spec: AnalysisSpec
    path: str
    index: int = 0
    count: int = 1


@dataclass
class Failed:
    """A task that ended with a HeaplintError (returned, not raised)."""

    error: HeaplintError


@dataclass
class Abandoned:
    """A partition that gave up (:class:`PartitionAbandoned`): its trace is replayed whole."""

    reason: str


#: rule sets a forked worker inherits from its parent, by AnalysisSpec.token
_INHERITED: dict[int, Any] = {}
#: rule sets this process compiled, by their arguments
_COMPILED: dict[RuleSetArgs, Any] = {}


def _ruleset_for(spec: AnalysisSpec) -> Any:
    inherited = _INHERITED.get(spec.token)
    if inherited is not None:
        return inherited
    assert spec.rules is not None
    ruleset = _COMPILED.get(spec.rules)
    if ruleset is None:
        ruleset = _COMPILED[spec.rules] = spec.rules.load()
    return ruleset


def run_task(task: Task) -> Any:
    """Worker entry point: a TraceResult (whole trace with rules), a stats
    document (whole trace without rules), a PartResult (a partition), or
    :class:`Failed`."""
    spec = task.spec
    try:
        ruleset = _ruleset_for(spec) if spec.rules is not None or spec.token in _INHERITED else None
        if task.count > 1:
            return replay_partition(
                task.path, task.index, task.count, rules=ruleset.enabled if ruleset is not None else None,
                input_format=spec.input_format, reader_options=spec.reader_options,
                replay_options=spec.replay_options, give_up_when_unsure=True,
            )
        return run_whole(task.path, spec, ruleset)
    except HeaplintError as err:
        if task.count > 1 and isinstance(err, CompressedDataError):
            # a partition reads ahead in big blocks, so it meets corrupt
            # compressed data before records that --jobs 1 reports first
            return Abandoned(f"corrupt compressed data: {err.message}")
        return Failed(err)
    except PartitionAbandoned as why:
        return Abandoned(str(why))


def run_whole(path: str, spec: AnalysisSpec, ruleset: Any) -> Any:
    """One whole trace, as ``jobs=1`` does it."""
    if ruleset is None:
        from heaplint.engine.commands.stats import replay_trace_with

        return replay_trace_with(path, spec.input_format, spec.reader_options, spec.replay_options)
    from heaplint.engine.analyze import analyze_trace

    return analyze_trace(ruleset, path, input_format=spec.input_format, reader_options=spec.reader_options,
                         replay_options=spec.replay_options)


def plan(traces: Sequence[str], spec: AnalysisSpec, jobs: int) -> list[list[Task]]:
    """The tasks of each trace: one (whole) or ``jobs // len(traces)`` partitions."""
    files = [t for t in traces if t != "-"]
    parts = max(1, jobs // max(1, len(files)))
    return [[Task(spec, t)] if t == "-" or parts == 1 else [Task(spec, t, i, parts) for i in range(parts)]
            for t in traces]


def run_traces(traces: Sequence[str], spec: AnalysisSpec, jobs: int, ruleset: Any = None,
               start_method: str | None = None) -> list[Any]:
    """Per trace, in order: its result (as :func:`run_whole` returns it) or
    :class:`Failed`.  ``ruleset`` is the parent's compiled rule set (None
    for replay only); ``spec.rules`` says how workers rebuild it."""
    token = 0
    if ruleset is not None:
        token = id(ruleset)
        spec = AnalysisSpec(spec.rules, spec.input_format, spec.reader_options, spec.replay_options, token)
        _INHERITED[token] = ruleset  # before any fork; also serves in-process tasks
    try:
        method = start_method or default_start_method()
        if ruleset is not None and spec.rules is None and method != "fork":
            jobs = 1  # workers could not rebuild this rule set: stay in-process
        tasks = plan(traces, spec, jobs)
        flat = [t for ts in tasks for t in ts]
        remote = [t for t in flat if t.path != "-"]
        if jobs <= 1 or len(remote) <= 1:
            results = [run_task(t) for t in flat]
        else:
            local = [t for t in flat if t.path == "-"]
            group = {id(t): g for g, ts in enumerate(tasks) for t in ts}

            def siblings(i: int, result: Any) -> list[int]:
                """Once a partition gave up, its trace is replayed whole: the
                other partitions of that trace are not needed."""
                if not isinstance(result, Abandoned):
                    return []
                mine = group[id(remote[i])]
                return [j for j, t in enumerate(remote) if group[id(t)] == mine]

            remote_results, local_results = run_pool(
                run_task, remote, jobs, method, while_waiting=lambda: [run_task(t) for t in local],
                unneeded=siblings)
            by_task = dict(zip(map(id, remote), remote_results))
            by_task.update(zip(map(id, local), local_results))
            results = [by_task[id(t)] for t in flat]
        out = []
        i = 0
        for ts in tasks:
            mine = results[i: i + len(ts)]
            i += len(ts)
            out.append(mine[0] if len(ts) == 1 else _merge(ts, mine, ruleset))
        return out
    finally:
        _INHERITED.pop(token, None)


def _merge(tasks: list[Task], results: list[Any], ruleset: Any) -> Any:
    if any(isinstance(r, Abandoned) for r in results):  # a whole replay meets any error too
        return run_task(Task(tasks[0].spec, tasks[0].path))
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, Failed)]
    if failed:
        # the error a whole replay meets first: the smallest line (errors
        # without a line are met at the end), then the lowest partition
        return min(failed, key=lambda ir: (ir[1].error.line is None, ir[1].error.line or 0,
                                           ir[1].error.col or 0, ir[0]))[1]
    parts: list[PartResult] = results
    trace_rules = [r for r in ruleset.enabled if is_trace_scope(r)] if ruleset is not None else None
    merged = merge_parts(parts, trace_rules)
    if merged is None:  # the partitions cannot prove they match: replay it whole
        return run_task(Task(tasks[0].spec, tasks[0].path))
    if ruleset is None:
        return merged.stats
    return merged


def default_start_method() -> str:
    """``fork`` where it is safe and available (Linux, no other threads in
    this process: workers then inherit the compiled rules), else ``spawn``."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods() \
            and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (and
    # terminates the workers); workers must not print tracebacks of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pool(fn: Callable[[T], R], items: Sequence[T], jobs: int, start_method: str,
             while_waiting: Callable[[], Any] | None = None,
             unneeded: Callable[[int, R], Iterable[int]] | None = None) -> tuple[list[R | None], Any]:
    """``[fn(item) for item in items]`` in up to ``jobs`` worker processes,
    plus the value of ``while_waiting()`` run in this process meanwhile.
    ``unneeded(i, result)``, asked as each result comes in, names items whose
    results are no longer wanted: they are not waited for (their result is
    None) and their workers are stopped.  Exceptions from ``fn`` propagate
    (the first in item order); a worker that dies raises
    :class:`WorkerCrash`; on any exception, including Ctrl-C, the workers are
    terminated before it propagates."""
    ctx = multiprocessing.get_context(start_method)
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx, initializer=_worker_init)
    futures: list[Future] = []
    clean = False
    try:
        if start_method == "fork":
            # workers are forked at the first submit: keep what they inherit
            # out of their garbage collections, which would otherwise walk
            # (and so copy, page by page) all of it again in every worker
            gc.freeze()
        try:
            futures = [pool.submit(fn, item) for item in items]
        finally:
            if start_method == "fork":
                gc.unfreeze()
        extra = while_waiting() if while_waiting is not None else None
        try:
            results = _results(futures, unneeded)
        except BrokenProcessPool as err:
            raise WorkerCrash(
                "a worker process ended unexpectedly (killed, out of memory, or a crash); "
                "run again with --jobs 1 to see the problem in-process"
            ) from err
        clean = all(f.done() for f in futures)  # else stop the workers of unneeded items
        return results, extra
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            for f in futures:
                f.cancel()
            _terminate(pool)
            pool.shutdown(wait=False, cancel_futures=True)


def _results(futures: list[Future], unneeded: Callable[[int, Any], Iterable[int]] | None) -> list[Any]:
    """The futures' results (None for those ``unneeded`` dropped), taken as
    they come in.  The first exception in item order is raised once every
    item before it is done.  Waits in short slices: a wait without a timeout
    blocks in a lock that a signal delivered to one of the pool's helper
    threads never interrupts, so Ctrl-C would not reach this thread."""
    results: list[Any] = [None] * len(futures)
    waiting = dict(zip(futures, range(len(futures))))
    failed: dict[int, BaseException] = {}
    while waiting:
        done, _ = wait_futures(tuple(waiting), timeout=0.2, return_when=FIRST_COMPLETED)
        for future in done:
            i = waiting.pop(future, None)
            if i is None:  # dropped meanwhile
                continue
            err = future.exception()
            if err is not None:
                failed[i] = err
                continue
            results[i] = future.result()
            for j in unneeded(i, results[i]) if unneeded is not None else ():
                waiting.pop(futures[j], None)
        if failed and all(i > min(failed) for i in waiting.values()):
            raise failed[min(failed)]
    return results


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes now."""
    processes = getattr(pool, "_processes", None) or {}
    for proc in list(processes.values()):
        if proc.is_alive():
            proc.terminate()
    for proc in list(processes.values()):
        proc.join(timeout=5)
