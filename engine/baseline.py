"""Baselines: accept today's findings, fail only on new ones.

A baseline file (``heaplint baseline create``) is a versioned JSON document
listing the fingerprint of every current finding plus enough context to show
it again (rule, severity, message, image, heap label).  :func:`apply_baseline`
compares a run with it by fingerprint, as a multiset: a fingerprint recorded
twice absorbs two findings; a third one is new.  Unmatched entries are
*absent* (fixed, or not exercised by this trace).

Fingerprints come from the rule engine (``Finding.fingerprint``) and never hold
addresses, pids, timestamps or heap handles, so they survive re-runs.  The file
holds no timestamps either: creating it twice from the same traces gives the
same bytes, which keeps diffs of a committed baseline meaningful.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from typing import Any

from heaplint.engine.errors import UsageError
from heaplint.engine.findings import (
    AnalysisResult,
    BaselineSummary,
    Finding,
    Severity,
    fingerprint,
)
from heaplint.engine.reports.base import display_path

BASELINE_SCHEMA_VERSION = 1
_REQUIRED = ("fingerprint", "rule_id", "severity")


@dataclasses.dataclass(frozen=True)
class BaselineEntry:
    """One recorded finding."""

    fingerprint: str
    rule_id: str
    severity: Severity
    rule_name: str = ""
    message: str = ""
    trace: str = ""
    image: str | None = None
    heap_label: str | None = None
    count: int = 1

    def as_finding(self) -> Finding:
        """The entry as a finding marked ``absent`` (for reports)."""
        return Finding(
            rule_id=self.rule_id,
            rule_name=self.rule_name,
            severity=self.severity,
            message=self.message,
            trace=self.trace,
            image=self.image,
            heap_label=self.heap_label,
            count=self.count,
            fingerprint=self.fingerprint,
            baseline_state="absent",
        )


@dataclasses.dataclass
class Baseline:
    """A loaded baseline file."""

    path: str
    entries: list[BaselineEntry]


def effective_fingerprint(f: Finding) -> str:
    """The finding's fingerprint; a coarse rule+image+heap one when a rule left
    it empty (it should not), so such findings still match across runs."""
    return f.fingerprint or fingerprint(f.rule_id, f.image, f.heap_label, "<no fingerprint>")


def baseline_document(result: AnalysisResult, base_dir: str | None = None) -> dict[str, Any]:
    """The baseline of every finding in ``result`` (reported and suppressed):
    sorted, without timestamps."""
    found = result.findings + [s.finding for s in result.suppressed]
    entries = [
        {
            "fingerprint": effective_fingerprint(f),
            "rule_id": f.rule_id,
            "rule_name": f.rule_name,
            "severity": f.severity.label,
            "message": f.message,
            "trace": display_path(f.trace, base_dir),
            "image": f.image,
            "heap_label": f.heap_label,
            "count": f.count,
        }
        for f in found
    ]
    entries.sort(key=lambda e: (e["fingerprint"], e["trace"], e["rule_id"], e["message"]))
    return {"heaplint_baseline": BASELINE_SCHEMA_VERSION, "findings": entries}


def render_baseline(result: AnalysisResult, base_dir: str | None = None) -> bytes:
    """The baseline file's bytes."""
    doc = baseline_document(result, base_dir)
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def load_baseline(path: str) -> Baseline:
    """Read and validate a baseline file; problems are :class:`UsageError`s
    located in the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UsageError("baseline file not found (create one with `heaplint baseline create`)", path=path) from None
    except OSError as err:
        raise UsageError(f"cannot read baseline: {err.strerror}", path=path) from err
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise UsageError(f"baseline is not UTF-8 text: {err.reason}", path=path) from err
    except json.JSONDecodeError as err:
        raise UsageError(f"baseline is not valid JSON: {err.msg}", path=path, line=err.lineno, col=err.colno) from err
    except RecursionError as err:
        raise UsageError("baseline is not valid JSON: nested too deeply", path=path) from err
    except ValueError as err:  # an integer of more than 4300 digits
        raise UsageError("baseline is not valid JSON: a number is too long", path=path) from err
    return Baseline(path, parse_baseline(doc, path))


def parse_baseline(doc: Any, path: str) -> list[BaselineEntry]:
    """Validate a decoded baseline document."""
    if not isinstance(doc, dict) or "heaplint_baseline" not in doc:
        raise UsageError("not a heaplint baseline (no 'heaplint_baseline' version key)", path=path)
    version = doc["heaplint_baseline"]
    if version != BASELINE_SCHEMA_VERSION:
        raise UsageError(
            f"baseline version {version!r} is not supported (this heaplint reads version {BASELINE_SCHEMA_VERSION})",
            path=path,
        )
    items = doc.get("findings")
    if not isinstance(items, list):
        raise UsageError("baseline: 'findings' must be a list", path=path)
    entries = []
    for i, item in enumerate(items):
        where = f"findings[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"baseline {where}: must be an object", path=path)
        for key in _REQUIRED:
            if not isinstance(item.get(key), str) or not item[key]:
                raise UsageError(f"baseline {where}: '{key}' must be a non-empty string", path=path)
        try:
            severity = Severity.parse(item["severity"])
        except ValueError as err:
            raise UsageError(f"baseline {where}: {err}", path=path) from None
        count = item.get("count", 1)
        entries.append(
            BaselineEntry(
                fingerprint=item["fingerprint"],
                rule_id=item["rule_id"],
                severity=severity,
                rule_name=str(item.get("rule_name") or ""),
                message=str(item.get("message") or ""),
                trace=str(item.get("trace") or ""),
                image=item.get("image") if isinstance(item.get("image"), str) else None,
                heap_label=item.get("heap_label") if isinstance(item.get("heap_label"), str) else None,
                count=count if isinstance(count, int) and not isinstance(count, bool) else 1,
            )
        )
    return entries


def apply_baseline(result: AnalysisResult, baseline: Baseline) -> AnalysisResult:
    """A copy of ``result`` where findings recorded in the baseline move to
    ``baseline.unchanged``, the rest are marked ``new``, and unmatched entries
    are listed as ``baseline.absent``.  Suppressed findings still count as
    present (they are not reported absent) and get a state, but stay suppressed.  O(findings)."""
    pending: dict[str, list[BaselineEntry]] = defaultdict(list)
    for entry in baseline.entries:
        pending[entry.fingerprint].append(entry)

    summary = BaselineSummary(path=baseline.path)
    traces = []
    for trace in result.traces:
        kept = []
        for f in sorted(trace.findings, key=Finding.sort_key):
            queue = pending.get(effective_fingerprint(f))
            if queue:
                queue.pop(0)
                summary.unchanged.append(dataclasses.replace(f, baseline_state="unchanged"))
            else:
                kept.append(dataclasses.replace(f, baseline_state="new"))
        traces.append(dataclasses.replace(trace, findings=kept))
    suppressed = []
    for s in result.suppressed:
        queue = pending.get(effective_fingerprint(s.finding))
        state = "unchanged" if queue else "new"
        if queue:
            queue.pop(0)
        suppressed.append(dataclasses.replace(s, finding=dataclasses.replace(s.finding, baseline_state=state)))
    for fp in sorted(pending):
        summary.absent.extend(e.as_finding() for e in pending[fp])
    summary.unchanged.sort(key=Finding.sort_key)
    summary.absent.sort(key=Finding.sort_key)
    return dataclasses.replace(result, traces=traces, suppressed=suppressed, baseline=summary)

