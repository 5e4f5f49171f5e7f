"""Findings and the result of analysing traces: the values reports consume.

Everything here is a plain value.  Rules create :class:`Finding` objects;
formatters (``heaplint.engine.reports``) turn an :class:`AnalysisResult` into
bytes; the CLI decides where those go.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from heaplint.engine.events import TraceInfo


class Severity(enum.IntEnum):
    """Finding severity; ordered so that ``>=`` means "at least as severe"."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity '{text}'; known: note, warning, error") from None


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What reports need to know about a rule (SARIF ``reportingDescriptor``)."""

    id: str
    name: str
    title: str
    description: str
    severity: Severity
    tags: tuple[str, ...] = ()
    source: str = ""  # the file the rule came from ("builtin:..." for shipped rules)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported problem, deduplicated per (rule, group).

    Times are trace-time nanoseconds; indexes are event ordinals in the input.
    ``fingerprint`` is stable across runs of the same program: it never holds
    raw addresses, pids, timestamps or heap handles (see :func:`fingerprint`).
    """

    rule_id: str
    rule_name: str
    severity: Severity
    message: str
    trace: str
    pid: int | None = None
    image: str | None = None
    heap: int | None = None
    heap_label: str | None = None  # stable heap identity, e.g. "heap#2/flags=0x2"
    addresses: tuple[int, ...] = ()
    sizes: tuple[int, ...] = ()
    first_time: int | None = None
    last_time: int | None = None
    first_index: int | None = None
    last_index: int | None = None
    count: int = 1
    stack: tuple[str, ...] | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    #: "high", or "low" when trace coverage makes the verdict inconclusive
    confidence: str = "high"

    def sort_key(self) -> tuple:
        """Deterministic report order: trace, severity (worst first), rule, place."""
        return (
            self.trace,
            -int(self.severity),
            self.rule_id,
            self.pid if self.pid is not None else -1,
            self.heap if self.heap is not None else -1,
            self.first_index if self.first_index is not None else -1,
            self.fingerprint,
        )


def fingerprint(rule_id: str, image: str | None, heap_label: str | None, *key: object) -> str:
    """A stable fingerprint from a rule id, the process image (base name,
    case-folded), the heap's stable label and further key parts (symbolized
    stack frames or a size class).  Callers must not pass raw addresses,
    pids, timestamps or heap handles."""
    image_key = (image or "").replace("\\", "/").rsplit("/", 1)[-1].casefold()
    parts = [rule_id, image_key, heap_label or "", *(str(k) for k in key)]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


@dataclass
class ProcessQuality:
    """Coverage of one process in one trace."""

    pid: int
    image: str | None
    start_seen: bool
    end_seen: bool
    events_lost: int
    first_time: int | None
    last_time: int | None


@dataclass
class TraceQuality:
    """How far a trace can be trusted.  ``inconclusive`` means integrity
    verdicts (unknown frees, overlaps...) may be artefacts of the capture."""

    events_lost: int = 0
    buffers_lost: int = 0
    bad_records: int = 0
    out_of_order_beyond_window: int = 0
    processes: list[ProcessQuality] = field(default_factory=list)

    @property
    def lossy(self) -> bool:
        return bool(
            self.events_lost
            or self.buffers_lost
            or self.out_of_order_beyond_window
            or any(p.events_lost for p in self.processes)
        )

    @property
    def inconclusive(self) -> bool:
        return self.lossy or self.bad_records > 0

    def summary(self) -> str:
        """One human line, e.g. ``complete`` or ``lossy: 12 events lost``."""
        problems = []
        if self.events_lost:
            problems.append(f"{self.events_lost} events lost")
        if self.buffers_lost:
            problems.append(f"{self.buffers_lost} buffers lost")
        if self.out_of_order_beyond_window:
            problems.append(f"{self.out_of_order_beyond_window} events out of order beyond the reorder window")
        if self.bad_records:
            problems.append(f"{self.bad_records} malformed records skipped")
        attached = [p for p in self.processes if not p.start_seen]
        if attached:
            problems.append(f"{len(attached)} process(es) started before the trace")
        if not problems:
            return "complete"
        verdict = "inconclusive" if self.inconclusive else "partial"
        return f"{verdict}: " + ", ".join(problems)


@dataclass
class TraceResult:
    """Everything one trace produced."""

    path: str
    info: TraceInfo
    quality: TraceQuality
    findings: list[Finding]
    stats: dict[str, Any]  # the `heaplint stats --format json` document of this trace
    #: (pid, heap) -> [(time_ns, live_bytes)], downsampled, for charts
    series: dict[tuple[int, int], list[tuple[int, int]]] = field(default_factory=dict)


@dataclass
class AnalysisResult:
    """The result of :func:`heaplint.engine.analyze`: findings of every trace,
    the rules that ran, and the exit status under a ``fail_on`` threshold."""

    traces: list[TraceResult]
    rules: list[RuleMeta]
    fail_on: Severity | None = Severity.ERROR  # None = never fail

    @property
    def findings(self) -> list[Finding]:
        out = [f for t in self.traces for f in t.findings]
        out.sort(key=Finding.sort_key)
        return out

    @property
    def exit_status(self) -> int:
        """0 = nothing at or above ``fail_on``; 1 = such findings."""
        if self.fail_on is None:
            return 0
        return 1 if any(f.severity >= self.fail_on for f in self.findings) else 0
