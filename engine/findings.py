"""Findings and the result of analysing traces: the values reports consume.

Everything here is a plain value.  Rules create :class:`Finding` objects;
formatters (``heaplint.engine.reports``) turn an :class:`AnalysisResult` into
bytes; the CLI decides where those go.
"""

from __future__ import annotations

import dataclasses
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
    #: set when a baseline is applied: "new", "unchanged" or "absent" (a
    #: baseline entry no finding of this run matched); None without a baseline
    baseline_state: str | None = None

    @property
    def total_bytes(self) -> int:
        """The bytes this finding is about: ``evidence["bytes"]`` when the rule
        put an integer there (leak rules should), else the sum of ``sizes``."""
        value = self.evidence.get("bytes") if self.evidence else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return sum(self.sizes)

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
    # surrogatepass: a JSON trace may carry a lone surrogate ("\\ud800") in an
    # image or frame; valid text hashes as plain UTF-8
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
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
    #: whether the trace has any heap record of this process (a process the
    #: trace only names, by its start or end, has none)
    heap_events: bool = True


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
    def empty(self) -> bool:
        """No heap record in the trace: nothing could be checked (most often a
        capture without the Heap provider, or a process filter that matched
        nothing)."""
        return not any(p.heap_events for p in self.processes)

    @property
    def inconclusive(self) -> bool:
        return self.lossy or self.bad_records > 0 or self.empty

    def summary(self) -> str:
        """One human line, e.g. ``complete``, ``inconclusive: 12 events lost``
        or ``empty: no heap events``."""
        empty = self.empty
        problems = ["no heap events"] if empty else []
        if self.events_lost:
            problems.append(f"{self.events_lost} events lost")
        if self.buffers_lost:
            problems.append(f"{self.buffers_lost} buffers lost")
        if self.out_of_order_beyond_window:
            problems.append(f"{self.out_of_order_beyond_window} events out of order beyond the reorder window")
        if self.bad_records:
            problems.append(f"{self.bad_records} malformed records skipped")
        attached = [p for p in self.processes if not p.start_seen and p.heap_events]
        if attached:
            problems.append(f"{len(attached)} process(es) started before the trace")
        if not problems:
            return "complete"
        verdict = "empty" if empty else "inconclusive" if self.inconclusive else "partial"
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


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding hidden by a suppression entry (see ``heaplint.engine.suppressions``)."""

    finding: Finding
    source: str  # "path:line" of the matching suppression entry
    reason: str


@dataclass
class SuppressionUsage:
    """One suppression entry and what it hid in this run (for reports)."""

    source: str  # "path:line" of the entry
    reason: str
    rule: str | None = None
    image: str | None = None
    frame: str | None = None
    heap: str | None = None
    max_bytes: int | None = None
    expires: str | None = None  # ISO date
    expired: bool = False
    findings: int = 0
    bytes: int = 0

    @property
    def unused(self) -> bool:
        return self.findings == 0


@dataclass
class BaselineSummary:
    """How this run compares with a baseline file.  New findings stay in the
    traces (marked ``baseline_state="new"``); ``unchanged`` ones were already in
    the baseline and are not reported as failures; ``absent`` ones are baseline
    entries no finding matched (rebuilt as findings from the baseline file)."""

    path: str
    unchanged: list[Finding] = field(default_factory=list)
    absent: list[Finding] = field(default_factory=list)


class FindingsError(AssertionError):
    """Raised by :meth:`AnalysisResult.raise_for_findings`; an ``AssertionError``
    so that pytest shows it as a plain test failure with the summary."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings


@dataclass
class AnalysisResult:
    """The result of :func:`heaplint.engine.analyze`: findings of every trace,
    the rules that ran, and the exit status under a ``fail_on`` threshold.

    ``TraceResult.findings`` are the *reported* findings: suppressed ones move
    to ``suppressed`` and baseline-matched ones to ``baseline.unchanged`` when
    those are applied (``heaplint.engine.suppressions`` / ``.baseline``).
    ``errors`` are problems that make the run untrustworthy (a trace that could
    not be read whole, an expired suppression under ``--fail-on-expired``):
    they force exit status 2.
    """

    traces: list[TraceResult]
    rules: list[RuleMeta]
    fail_on: Severity | None = Severity.ERROR  # None = never fail
    suppressed: list[Suppressed] = field(default_factory=list)
    suppressions: list[SuppressionUsage] = field(default_factory=list)
    baseline: BaselineSummary | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        out = [f for t in self.traces for f in t.findings]
        out.sort(key=Finding.sort_key)
        return out

    def at_least(self, severity: Severity | str) -> list[Finding]:
        """Reported findings of ``severity`` or worse (``"warning"`` works too)."""
        level = Severity.parse(severity) if isinstance(severity, str) else severity
        return [f for f in self.findings if f.severity >= level]

    @property
    def failing(self) -> list[Finding]:
        """The reported findings at or above ``fail_on`` (empty for never)."""
        return [] if self.fail_on is None else self.at_least(self.fail_on)

    def counts(self) -> dict[str, int]:
        """Reported findings per severity label, worst first, zeros included."""
        found = self.findings
        return {s.label: sum(1 for f in found if f.severity == s) for s in sorted(Severity, reverse=True)}

    @property
    def exit_status(self) -> int:
        """0 = nothing at or above ``fail_on``; 1 = such findings; 2 = errors."""
        if self.errors:
            return 2
        return 1 if self.failing else 0

    @property
    def ok(self) -> bool:
        """True when the exit status is 0: handy as ``assert result.ok, result.summary()``."""
        return self.exit_status == 0

    def summary(self, limit: int = 20) -> str:
        """A few human lines: counts, then up to ``limit`` failing findings."""
        counts = self.counts()
        total = sum(counts.values())
        parts = ", ".join(f"{n} {label}{'s' if n != 1 else ''}" for label, n in counts.items())
        head = f"{total} finding{'s' if total != 1 else ''} ({parts}) in {len(self.traces)} trace(s)"
        extra = []
        if self.suppressed:
            extra.append(f"{len(self.suppressed)} suppressed")
        if self.baseline is not None:
            extra.append(f"{len(self.baseline.unchanged)} unchanged from the baseline")
        if extra:
            head += "; " + ", ".join(extra)
        threshold = "never" if self.fail_on is None else self.fail_on.label
        lines = [f"{head}; fail-on {threshold}: exit status {self.exit_status}"]
        lines += [f"error: {e}" for e in self.errors]
        failing = self.failing
        for f in failing[:limit]:
            where = f" {f.image or ''}[{f.pid}]" if f.pid is not None else ""
            lines.append(f"  {f.severity.label} {f.rule_id} {f.rule_name}{where}: {f.message}")
        if len(failing) > limit:
            lines.append(f"  ... and {len(failing) - limit} more")
        return "\n".join(lines)

    def raise_for_findings(self, fail_on: Severity | str | None = None) -> None:
        """Raise :class:`FindingsError` when there are findings at or above
        ``fail_on`` (default: the result's own threshold) or errors."""
        gate = self
        if fail_on is not None:
            threshold = Severity.parse(fail_on) if isinstance(fail_on, str) else fail_on
            gate = dataclasses.replace(self, fail_on=threshold)
        if gate.exit_status:
            raise FindingsError(gate.summary(), gate.failing)

    def report(self, format_name: str, **options: Any) -> bytes:
        """Render this result in a report format (``"json"``, ``"sarif"``...);
        ``options`` are :class:`heaplint.engine.reports.ReportOptions` fields."""
        from heaplint.engine.reports import ReportOptions, get_formatter

        return get_formatter(format_name).render(self, ReportOptions(**options))
