"""The measured stages, (a) to (e), as plain functions.

Every stage reads one trace file through heaplint's reader registry (so
decoding is always included) and returns a :class:`StageOutput` with what it
saw: the number of events and the live bytes and blocks at the end of the
trace.  The outputs of stages that replay must agree with each other on a
healthy trace; the smoke test (tests/test_bench_smoke.py) checks that, so a
stage can never get faster by silently doing less.

A stage is split in two: :meth:`Stage.prepare` does the one-off work that is
not per event (importing, loading and compiling rules) and returns the
callable that is timed.  :func:`unavailable` says why a stage cannot run in
this build (the rule engine or the built-in rules not merged yet).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from sortedcontainers import SortedDict

from heaplint.engine.errors import HeaplintError
from heaplint.engine.events import Kind
from heaplint.engine.readers import guarded_events, open_trace

#: the 20 extra custom rules of stage (e)
BENCH_RULES_DIR = Path(__file__).resolve().parent / "rules"

_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)
_REALLOC = int(Kind.REALLOC)
_DESTROY = int(Kind.DESTROY)
_PROCESS_END = int(Kind.PROCESS_END)


@dataclass
class StageOutput:
    """What one stage computed.  ``live_*`` are totals over the processes
    still running at the end of the trace (None: the stage keeps no state)."""

    events: int
    live_bytes: int | None = None
    live_blocks: int | None = None
    findings: int | None = None
    rules: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- (a) decoding -------------------------------------------------------------
def decode_only(path: str) -> StageOutput:
    """(a) Iterate the reader's events and keep nothing."""
    reader, trace_input = open_trace(path)
    with trace_input:
        n = 0
        for _ev in guarded_events(reader):
            n += 1
    return StageOutput(events=n)


# --- (b) minimal replay -------------------------------------------------------
def minimal_replay(path: str) -> StageOutput:
    """(b) The floor any Python replay pays: one dict per (pid, heap) of
    address -> size and live-byte counters, updated by a plain loop.

    No reordering, no realloc pairing, no anomaly checks.  Allocations
    overwrite (so the inner Alloc/Free records that some capture paths log
    around a moving ReAlloc leave the same state as the ReAlloc alone), a
    destroy drops its heap and a process end drops the process's heaps.
    """
    return _minimal(path, dict)


def sorted_minimal_replay(path: str) -> StageOutput:
    """(s) Stage (b) with a ``SortedDict`` per heap instead of a dict, and
    nothing else: the same loop, no neighbour check, no ordering, no pairing.

    Issue 7 keeps the sorted map as the source of truth for range questions
    (overlap, interior pointers, destroy), and the overlap question is asked
    at every allocation, so any replay keeps it current event by event.  This
    stage is the cheapest way to do that with sortedcontainers, so its rate is
    a ceiling for (c), (d) and (e): it shows how much of the floor (b) a
    replay that honours that design can keep at best.
    """
    return _minimal(path, SortedDict)


def _minimal(path: str, new_map: Callable[[], dict]) -> StageOutput:
    """The loop of (b) and (s), with ``new_map()`` as each heap's block map."""
    heaps: dict[tuple[int, int], list] = {}  # (pid, heap) -> [blocks, live bytes]
    n = 0
    reader, trace_input = open_trace(path)
    with trace_input:
        for ev in guarded_events(reader):
            n += 1
            kind = ev.kind
            if kind == _ALLOC:
                rec = heaps.get((ev.pid, ev.heap))
                if rec is None:
                    rec = heaps[(ev.pid, ev.heap)] = [new_map(), 0]
                blocks = rec[0]
                rec[1] += ev.size - blocks.get(ev.address, 0)
                blocks[ev.address] = ev.size
            elif kind == _FREE:
                rec = heaps.get((ev.pid, ev.heap))
                if rec is not None:
                    rec[1] -= rec[0].pop(ev.address, 0)
            elif kind == _REALLOC:
                rec = heaps.get((ev.pid, ev.heap))
                if rec is None:
                    rec = heaps[(ev.pid, ev.heap)] = [new_map(), 0]
                blocks = rec[0]
                freed = blocks.pop(ev.old_address, 0)
                rec[1] += ev.size - freed - blocks.get(ev.address, 0)
                blocks[ev.address] = ev.size
            elif kind == _DESTROY:
                heaps.pop((ev.pid, ev.heap), None)
            elif kind == _PROCESS_END:
                for key in [k for k in heaps if k[0] == ev.pid]:
                    del heaps[key]
    return StageOutput(
        events=n,
        live_bytes=sum(rec[1] for rec in heaps.values()),
        live_blocks=sum(len(rec[0]) for rec in heaps.values()),
    )


# --- (c) heaplint's replay ------------------------------------------------------
def heaplint_replay(path: str) -> StageOutput:
    """(c) heaplint's Replay (reordering, realloc pairing, HeapState) with no rules."""
    from heaplint.engine.replay import Replay

    reader, trace_input = open_trace(path)
    with trace_input:
        replay = Replay()
        state = replay.run(guarded_events(reader))
    alive = state.processes.values()
    return StageOutput(
        events=replay.counters.events_in,
        live_bytes=sum(p.live_bytes for p in alive),
        live_blocks=sum(len(h.blocks) for p in alive for h in p.heaps.values()),
    )


def empty_replay() -> StageOutput:
    """The RSS baseline: the imports of stage (c) (every reader included) and
    a replay of no events."""
    from heaplint.engine.readers import available_readers
    from heaplint.engine.replay import Replay

    available_readers()
    Replay().run(iter(()))
    return StageOutput(events=0, live_bytes=0, live_blocks=0)


# --- (d), (e) the rule engine -----------------------------------------------------
def rule_engine_missing() -> str | None:
    """Why the rule engine cannot run here, or None when it can."""
    try:
        from heaplint.engine.analyze import analyze  # noqa: F401
        from heaplint.rules.ruleset import load_ruleset  # noqa: F401
    except ImportError as err:
        return f"the rule engine is not in this build ({err})"
    return None


def builtin_rule_count() -> int:
    """How many built-in rules the default profile enables (0 before they ship)."""
    from heaplint.rules.ruleset import load_ruleset

    return len(load_ruleset((), use_config=False).enabled)


def prepare_rules(rule_paths: tuple[str, ...], no_builtin: bool = False) -> Callable[[str], StageOutput]:
    """Load and compile the built-in rules (unless ``no_builtin``) plus
    ``rule_paths`` once, with the default profile and no project
    configuration; return the timed analysis of one trace."""
    from heaplint.engine.analyze import analyze
    from heaplint.rules.ruleset import load_ruleset

    warm_imports()
    ruleset = load_ruleset(rule_paths, no_builtin=no_builtin, use_config=False)
    count = len(ruleset.enabled)
    takes_ruleset = "ruleset" in inspect.signature(analyze).parameters

    def run(path: str) -> StageOutput:
        if takes_ruleset:
            result = analyze([path], ruleset=ruleset)
        else:  # an older API: rules are loaded inside the timed call
            result = analyze([path], rule_paths=rule_paths, no_builtin=no_builtin, use_config=False)
        trace = result.traces[0]
        procs = trace.stats.get("processes", [])
        return StageOutput(
            events=trace.stats.get("events", 0),
            live_bytes=sum(p.get("live_bytes", 0) for p in procs),
            live_blocks=sum(p.get("live_blocks", 0) for p in procs),
            findings=len(trace.findings),
            rules=count,
        )

    return run


def custom_rule_paths() -> tuple[str, ...]:
    """The rule files of stage (e) (empty until benchmarks/rules/ has them)."""
    return tuple(str(p) for p in sorted(BENCH_RULES_DIR.glob("*.yaml")))


# --- the table -----------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One measured stage.  ``prepare()`` returns the timed callable."""

    key: str
    name: str
    title: str
    prepare: Callable[[], Callable[[str], StageOutput]]


def warm_imports() -> None:
    """Import every module a timed call would otherwise import on first use
    (all readers, the replay, the rule runtime and analyze()'s lazy imports),
    so that no stage's timing includes imports: they are setup, like loading
    rules.  Every stage calls this in ``prepare()``, so all pay it alike."""
    import heaplint.engine.parallel  # noqa: F401  (analyze() imports it lazily)
    import heaplint.engine.replay  # noqa: F401
    import heaplint.rules.runtime  # noqa: F401
    import heaplint.rules.windowstep  # noqa: F401  (window rules import it lazily)
    from heaplint.engine.readers import available_readers

    available_readers()


def _plain(fn: Callable[[str], StageOutput]) -> Callable[[], Callable[[str], StageOutput]]:
    def prepare() -> Callable[[str], StageOutput]:
        warm_imports()
        return fn

    return prepare


STAGES: dict[str, Stage] = {
    s.key: s
    for s in (
        Stage("a", "decode", "decoding only", _plain(decode_only)),
        Stage("b", "minimal", "minimal replay (plain dicts)", _plain(minimal_replay)),
        Stage("s", "minimal-sorted", "(b) with a SortedDict per heap", _plain(sorted_minimal_replay)),
        Stage("c", "replay", "heaplint Replay, no rules", _plain(heaplint_replay)),
        Stage("d", "default", "default profile (built-in rules)", lambda: prepare_rules(())),
        Stage("e", "all-rules", "built-in rules + 20 custom rules", lambda: prepare_rules(custom_rule_paths())),
        # a stand-in for (e) while the built-in pack is not merged, reported as such
        Stage("e0", "custom-rules", "the 20 custom rules alone", lambda: prepare_rules(custom_rule_paths(), True)),
    )
}


def unavailable(key: str) -> str | None:
    """Why stage ``key`` cannot be measured in this build, or None."""
    if key in ("a", "b", "s", "c"):
        return None
    missing = rule_engine_missing()
    if missing:
        return missing
    try:
        builtin = builtin_rule_count()
    except HeaplintError as err:  # a broken built-in pack is a finding of its own
        return f"the built-in rules do not load: {err}"
    if key == "d" and builtin == 0:
        return "no built-in rules yet (the default profile is empty)"
    if key in ("e", "e0") and not custom_rule_paths():
        return f"no custom rules in {BENCH_RULES_DIR.name}/ yet"
    if key == "e" and builtin == 0:
        return "no built-in rules yet (stage e0 measures the custom rules alone)"
    return None
