"""``heaplint synth``: a deterministic generator of realistic heap traces.

``synthesize(spec)`` returns a :class:`SynthTrace`: its ``info`` and
``stacks`` are known up front, ``events()`` streams the events (a fresh,
identical stream on every call: nothing is kept in memory but the live blocks
of the simulated processes), and ``truth`` is the ground truth of what was
injected, complete once a stream has been read to its end.

Pipeline (see docs/synth.md)::

    ProcessSim.run() per process  --heapq.merge by time-->  lost-event drop
        --> per-CPU buffer disorder --> HeapEvent(index = file order)

The same spec (seed included) always gives the same events and truth.
Presets live in :mod:`heaplint.engine.synth_presets`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from random import Random
from typing import Any, Iterable, Iterator, Mapping

from heaplint.engine.errors import UsageError
from heaplint.engine.events import HeapEvent, Kind, ProcessFacts, StackTable, TraceInfo
from heaplint.engine.synth_capture import CPUS, drop_lost, per_cpu_disorder
from heaplint.engine.synth_defects import ACTIONS, DEFECTS, RULE_NAMES, schedule_defect
from heaplint.engine.synth_patterns import PATTERN_ACTIONS, Leak
from heaplint.engine.synth_process import REALLOC_SHAPES, SHUTDOWN_MODES, EventTuple, ProcessSim, pick_base
from heaplint.engine.synth_realloc import GrowBuffer, SlowPathBurst
from heaplint.engine.synth_stacks import StackCatalogue
from heaplint.engine.synth_workloads import (
    Cache,
    LfhChurn,
    Resident,
    Sawtooth,
    ScratchHeap,
    TempChurn,
    Warmup,
    Workload,
)

SECOND = 1_000_000_000

#: workload name -> class: the one table a spec's ``kind`` is looked up in
WORKLOADS: dict[str, type[Workload]] = {
    cls.kind: cls
    for cls in (LfhChurn, TempChurn, Cache, Sawtooth, Warmup, GrowBuffer, SlowPathBurst, ScratchHeap, Resident, Leak)
}
TRUTH_VERSION = 1
#: share of the first process's steps the injected leak takes
LEAK_SHARE = 0.1


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload of a process: ``kind`` names a class in
    :data:`~heaplint.engine.synth_workloads.WORKLOADS`; ``heap`` is
    ``"process"`` (the default heap, never destroyed) or the name of a
    private heap created at process start."""

    kind: str
    weight: float = 1.0
    heap: str = "process"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessSpec:
    """One process: image name, workloads, thread count, share of the events,
    and how it ends (``clean``: frees everything, destroys its private heaps,
    exits; ``exit``: exits without freeing; ``none``: still running at the
    end of the capture)."""

    image: str
    workloads: tuple[WorkloadSpec, ...]
    threads: int = 4
    share: float = 1.0
    shutdown: str = "clean"


@dataclass(frozen=True)
class SynthSpec:
    """Everything that determines a synthetic trace."""

    processes: tuple[ProcessSpec, ...]
    seed: int = 0
    events: int = 20_000  # approximate total
    duration_ns: int = 60 * SECOND
    attach: bool = False  # the capture starts while the processes run
    lost_events: int = 0  # dropped in bursts; TraceInfo.events_lost says so
    disorder_ns: int = 0  # per-CPU buffer flush period (file order != time order)
    realloc_shape: str = "mixed"  # standalone | paired | mixed
    inject: tuple[str, ...] = ()  # defect names (DEFECTS), on the first process
    defect_count: int = 2  # occurrences of each point defect
    preset: str | None = None

    def __post_init__(self) -> None:
        if not self.processes:
            raise UsageError("a synthetic trace needs at least one process")
        if self.events < 1 or self.duration_ns < 100_000_000:
            raise UsageError("events must be at least 1 and the duration at least 100ms")
        if self.lost_events < 0 or self.disorder_ns < 0 or self.defect_count < 1:
            raise UsageError("lost events and disorder must not be negative; defect count must be >= 1")
        if self.realloc_shape not in REALLOC_SHAPES:
            raise UsageError(f"unknown realloc shape '{self.realloc_shape}'; known: {', '.join(REALLOC_SHAPES)}")
        for name in self.inject:
            if name not in DEFECTS:
                raise UsageError(f"unknown defect '{name}'; known: {', '.join(DEFECTS)}")
        for p in self.processes:
            if p.shutdown not in SHUTDOWN_MODES:
                raise UsageError(f"unknown shutdown mode '{p.shutdown}'; known: {', '.join(SHUTDOWN_MODES)}")
            if p.threads < 1 or p.share <= 0:
                raise UsageError(f"process {p.image}: threads must be >= 1 and share > 0")
            for w in p.workloads:
                if w.kind not in WORKLOADS or w.kind == "leak":
                    known = ", ".join(k for k in WORKLOADS if k != "leak")
                    raise UsageError(
                        f"unknown workload '{w.kind}'; known: {known} (inject a leak with inject=('leak',))"
                    )
            if not any(w.weight > 0 for w in p.workloads):
                raise UsageError(f"process {p.image}: needs at least one workload with a positive weight")


class SynthTrace:
    """A synthetic trace: ``info``, ``stacks``, ``events()``, ``truth``."""

    def __init__(self, spec: SynthSpec) -> None:
        self.spec = spec
        self._plan()
        sims, catalogue = self._build()
        self.stacks: StackTable = catalogue.table
        self.info = self._info(sims)
        self._truth: dict[str, Any] | None = None

    # --- planning: everything random that is not inside a process --------------
    def _plan(self) -> None:
        spec = self.spec
        rng = Random(f"heaplint-synth:{spec.seed}")
        taken: set[int] = set()
        self.pids: list[int] = []
        self.threads: list[list[int]] = []
        self.starts: list[int] = []
        for p in spec.processes:
            self.pids.append(_distinct(rng, taken, 1000, 40000))
            self.threads.append([_distinct(rng, taken, 1000, 60000) for _ in range(p.threads)])
            # processes start within the first 40 ms (or 2 % of a short capture)
            self.starts.append(1_000_000 + rng.randrange(max(1, min(40_000_000, spec.duration_ns // 50))))
        # lost events: a few bursts, each on one process
        self.bursts: list[list[int]] = []  # [time, pid, remaining]
        if spec.lost_events:
            n = min(8, max(1, spec.lost_events // 40))
            for i in range(n):
                size = spec.lost_events // n + (1 if i < spec.lost_events % n else 0)
                when = int(spec.duration_ns * (0.1 + 0.8 * rng.random()))
                self.bursts.append([when, self.pids[rng.randrange(len(self.pids))], size])
            self.bursts.sort()
        self.cpu_phase = [rng.randrange(max(1, spec.disorder_ns)) for _ in range(CPUS)]

    def _build(self) -> tuple[list[ProcessSim], StackCatalogue]:
        """Fresh process simulations (their state is consumed by a run)."""
        spec = self.spec
        catalogue = StackCatalogue()
        total_share = sum(p.share for p in spec.processes)
        sims = []
        for i, p in enumerate(spec.processes):
            rng = Random(f"heaplint-synth:{spec.seed}:{i}")
            events = max(1, round(spec.events * p.share / total_share))
            end_main = int(spec.duration_ns * (0.97 if p.shutdown == "clean" else 0.999))
            start = self.starts[i]
            if spec.attach:
                # the process has been running for a while; its pre-capture
                # events are generated (to build state) but not emitted
                start = -int(spec.duration_ns * 0.25)
                events = int(events * (end_main - start) / end_main)
            proc = ProcessSim(
                pid=self.pids[i],
                image=p.image,
                rng=rng,
                threads=list(self.threads[i]),
                start=start,
                end_main=end_main,
                capture_end=spec.duration_ns,
                events=events,
                shape=spec.realloc_shape,
                shutdown=p.shutdown,
                emit_process_start=not spec.attach,
            )
            bases: list[int] = []
            proc.add_heap("process", pick_base(rng, bases), 0x2, False)
            for w in p.workloads:
                if w.heap not in proc.heaps:
                    proc.add_heap(w.heap, pick_base(rng, bases), 0x2 if rng.random() < 0.5 else 0x3, True)
            stepping = sum(w.weight for w in p.workloads if w.weight > 0)
            for w in p.workloads:
                budget = int(events * (w.weight / stepping if w.weight > 0 else 0.02))
                proc.add_workload(
                    WORKLOADS[w.kind](proc, proc.heaps[w.heap], budget, dict(w.params), catalogue), w.weight
                )
            if i == 0:
                self._inject(proc, catalogue, stepping, events)
            sims.append(proc)
        return sims, catalogue

    def _inject(self, proc: ProcessSim, catalogue: StackCatalogue, stepping: float, events: int) -> None:
        """Add the spec's defects to ``proc`` (on its process heap)."""
        spec = self.spec
        heap = proc.heaps["process"]
        for name in spec.inject:
            if name == "leak":
                leak = Leak(proc, heap, int(events * LEAK_SHARE), {}, catalogue)
                proc.add_workload(leak, stepping * LEAK_SHARE / (1 - LEAK_SHARE))
                continue
            if name in ACTIONS:
                action, site = ACTIONS[name], "defect"
            else:
                action, site = PATTERN_ACTIONS[name]
            if name == "wrong-heap-free" and len(proc.heaps) == 1:
                proc.add_heap("aux", proc.new_handle(), 0x2, True)  # the other heap the free goes to
            stack = catalogue.site(proc.image, site, 0, worker=site != "storm")
            schedule_defect(name, action, proc, heap, spec.defect_count, stack)

    def _info(self, sims: list[ProcessSim]) -> TraceInfo:
        spec = self.spec
        info = TraceInfo(
            path=f"synth:{spec.preset or 'custom'}",
            format="synth",
            pointer_size=8,
            events_lost=spec.lost_events,
            capture_start=0,
            capture_end=spec.duration_ns,
            clock="synthetic",
        )
        for proc in sims:
            info.processes[proc.pid] = ProcessFacts(
                pid=proc.pid,
                image=proc.image,
                start_seen=not spec.attach,
                end_seen=proc.shutdown_mode != "none",
                events_lost=sum(b[2] for b in self.bursts if b[1] == proc.pid),
            )
        info.notes.append(f"synthetic trace (heaplint synth, preset {spec.preset or 'custom'}, seed {spec.seed})")
        return info

    # --- streaming ---------------------------------------------------------------
    def events(self) -> Iterator[HeapEvent]:
        """Stream the trace's events in file order (time order unless the spec
        asks for disorder); ``index`` is the file position."""
        sims, _ = self._build()
        streams = [p.run() for p in sims]
        merged: Iterable[EventTuple] = heapq.merge(*streams) if len(streams) > 1 else streams[0]
        drops: dict[int, list[int]] = {}
        if self.bursts:
            merged = drop_lost(merged, [list(b) for b in self.bursts], drops)
        if self.spec.disorder_ns:
            merged = per_cpu_disorder(merged, self.spec.disorder_ns, self.cpu_phase)
        images = {p.pid: p.image for p in sims}
        index = 0
        start, end = int(Kind.PROCESS_START), int(Kind.PROCESS_END)
        for t, kind, pid, tid, heap, addr, size, old, osz, src, stk, flags in merged:
            yield HeapEvent(
                kind,
                t,
                pid,
                tid,
                heap,
                addr,
                size,
                old,
                None if osz < 0 else osz,
                src,
                None if stk < 0 else stk,
                flags,
                images[pid] if kind == start or kind == end else None,
                index,
                0,
            )
            index += 1
        self._finish(sims, index, drops)

    @property
    def truth(self) -> dict[str, Any]:
        """The ground truth (drains a private stream first if none was read
        to its end yet)."""
        if self._truth is None:
            for _ in self.events():
                pass
        assert self._truth is not None
        return self._truth

    def _finish(self, sims: list[ProcessSim], events: int, drops: dict[int, list[int]]) -> None:
        lost = sum(d[0] for d in drops.values())
        self.info.events_lost = lost
        for pid, facts in self.info.processes.items():
            facts.events_lost = drops.get(pid, [0])[0]
        self._truth = truth_document(self.spec, sims, self.stacks, events, drops)


def synthesize(spec: SynthSpec) -> SynthTrace:
    """Plan a synthetic trace for ``spec`` (cheap; events are generated lazily)."""
    return SynthTrace(spec)


def _distinct(rng: Random, taken: set[int], lo: int, hi: int) -> int:
    """A Windows-looking id (a multiple of 4) not in ``taken``."""
    while True:
        v = rng.randrange(lo // 4, hi // 4) * 4
        if v not in taken:
            taken.add(v)
            return v


def truth_document(
    spec: SynthSpec, sims: list[ProcessSim], stacks: StackTable, events: int, drops: dict[int, list[int]]
) -> dict[str, Any]:
    """The ground-truth JSON document (docs/synth.md describes it)."""
    defects = []
    for proc in sims:
        for d in proc.defects:
            d = dict(d)
            if "stack" in d:
                d["frames"] = list(stacks.get(d["stack"], ()))
            d["addresses_truncated"] = d["count"] > len(d["addresses"])
            defects.append(d)
    return {
        "heaplint_synth_truth": TRUTH_VERSION,
        "preset": spec.preset,
        "seed": spec.seed,
        "events": events,
        "duration_ns": spec.duration_ns,
        "healthy": not spec.inject,
        "spec": {
            "events": spec.events,
            "attach": spec.attach,
            "lost_events": spec.lost_events,
            "disorder_ns": spec.disorder_ns,
            "realloc_shape": spec.realloc_shape,
            "inject": list(spec.inject),
            "defect_count": spec.defect_count,
        },
        "coverage": {
            "attach": spec.attach,
            "events_lost": sum(d[0] for d in drops.values()),
            "lost": [
                {"pid": pid, "count": d[0], "first_time_ns": d[1], "last_time_ns": d[2]}
                for pid, d in sorted(drops.items())
            ],
            "disorder_ns": spec.disorder_ns,
            # what a correct replay will report that is *not* a defect
            "expect_unknown_frees": spec.attach or spec.lost_events > 0,
        },
        "processes": [_process_doc(p, spec) for p in sims],
        "defects": defects,
        "expected_rules": sorted({r for d in defects for r in d["rules"]}),
        "rule_names": RULE_NAMES,
    }


def _process_doc(proc: ProcessSim, spec: SynthSpec) -> dict[str, Any]:
    return {
        "pid": proc.pid,
        "image": proc.image,
        "threads": proc.threads,
        "start_seen": not spec.attach,
        "end_seen": proc.shutdown_mode != "none",
        "shutdown": proc.shutdown_mode,
        "heaps": [
            {
                "name": h.name,
                "handle": f"0x{h.handle:x}",
                "private": h.private,
                "flags": f"0x{h.flags:x}",
                "created_in_trace": h.created_at is not None and h.created_at >= 0,
                "destroyed_in_trace": h.destroyed_at is not None,
            }
            for h in proc.heaps.values()
        ],
        "workloads": [w.describe() for w in proc.workloads],
        "realloc": {
            "in_place": proc.in_place,
            "moves_standalone": proc.moves_standalone,
            "moves_paired": proc.moves_paired,
            "paired_orders": dict(sorted(proc.paired_orders.items())),
        },
    }
