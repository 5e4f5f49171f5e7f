"""SARIF 2.1.0, as GitHub code scanning and other SARIF viewers read it.

Mapping (docs/reports.md has the table):

* each rule that ran is a ``reportingDescriptor`` in ``tool.driver.rules``
  (title as short description, description as full description and help,
  severity as ``defaultConfiguration.level``, tags in properties);
* each finding is a ``result``: level from its severity; one location whose
  physical part is the trace file and whose logical parts are the process
  (``image[pid]``), the heap (its stable label) and the first block address;
* ``partialFingerprints`` carry the rule engine's stable fingerprint, both under
  ``heaplint/v1`` and as ``primaryLocationLineHash`` (GitHub otherwise hashes
  lines of the located file, which for a binary trace means nothing);
* suppressed findings are results with ``suppressions`` (kind ``external``,
  the reason as justification); with a baseline, results carry
  ``baselineState`` new / unchanged, and absent entries appear as results too.

Traces are not source files: the region is line 1, which GitHub requires.
"""

from __future__ import annotations

import json
import re
from typing import Any

from urllib.parse import quote

from heaplint.engine.findings import AnalysisResult, Finding, RuleMeta, Severity
from heaplint.engine.reports.base import (
    TOOL_NAME,
    TOOL_URI,
    Formatter,
    ReportOptions,
    display_path,
    image_name,
    json_safe,
    tool_version,
)
from heaplint.engine.reports.json_report import quality_dict

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
_DRIVE = re.compile(r"^[A-Za-z]:/")
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


class SarifFormatter(Formatter):
    name = "sarif"
    extension = "sarif"
    description = "SARIF 2.1.0 (GitHub code scanning, IDE viewers)"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        doc = sarif_document(result, options)
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def sarif_document(result: AnalysisResult, options: ReportOptions) -> dict[str, Any]:
    """The SARIF log as plain data."""
    rules = sorted(result.rules, key=lambda r: r.id)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    artifacts: list[dict[str, Any]] = []
    artifact_index: dict[str, int] = {}

    def artifact(path: str) -> dict[str, Any]:
        uri = _uri(path, options)
        if uri not in artifact_index:
            artifact_index[uri] = len(artifacts)
            artifacts.append({"location": _artifact_location(uri), "roles": ["analysisTarget"]})
        return {**_artifact_location(uri), "index": artifact_index[uri]}

    for t in result.traces:  # traces first, in input order, so indexes are stable
        loc = artifact(t.path)
        artifacts[loc["index"]]["properties"] = {"format": t.info.format, "traceQuality": quality_dict(t.quality)}

    results = []
    with_baseline = result.baseline is not None
    for f in result.findings:
        results.append(_result(f, rule_index, artifact, with_baseline))
    if result.baseline is not None:
        results.extend(_result(f, rule_index, artifact, True) for f in result.baseline.unchanged)
        results.extend(_result(f, rule_index, artifact, True) for f in result.baseline.absent)
    for s in result.suppressed:
        r = _result(s.finding, rule_index, artifact, with_baseline)
        r["suppressions"] = [{"kind": "external", "status": "accepted", "justification": s.reason}]
        r["properties"]["suppressedBy"] = s.source
        results.append(r)
    results.sort(key=_result_order)

    invocation: dict[str, Any] = {"executionSuccessful": not result.errors}
    notes = [_notification(w, "warning") for w in result.warnings]
    notes += [_notification(e, "error") for e in result.errors]
    if notes:
        invocation["toolConfigurationNotifications"] = notes
    stamp = options.timestamp()
    if stamp:
        invocation["endTimeUtc"] = stamp
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": tool_version(),
                "semanticVersion": tool_version(),
                "informationUri": TOOL_URI,
                "rules": [_rule(r) for r in rules],
            }
        },
        "invocations": [invocation],
        "artifacts": artifacts,
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {
            "failOn": result.fail_on.label if result.fail_on is not None else "never",
            "exitStatus": result.exit_status,
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _rule(r: RuleMeta) -> dict[str, Any]:
    description = r.description or r.title or r.name
    return {
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.title or r.name},
        "fullDescription": {"text": description},
        "help": {"text": description},
        "defaultConfiguration": {"level": _LEVELS[r.severity], "enabled": r.enabled},
        "properties": {"tags": list(r.tags), "problem.severity": _LEVELS[r.severity], "source": r.source},
    }


def _result(f: Finding, rule_index: dict[str, int], artifact, with_baseline: bool) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": artifact(f.trace), "region": {"startLine": 1}},
    }
    logical = _logical_locations(f)
    if logical:
        location["logicalLocations"] = logical
    out: dict[str, Any] = {"ruleId": f.rule_id}
    if f.rule_id in rule_index:
        out["ruleIndex"] = rule_index[f.rule_id]
    out["level"] = _LEVELS[f.severity]
    out["message"] = {"text": f.message or f.rule_name or f.rule_id}
    out["locations"] = [location]
    if f.fingerprint:
        out["partialFingerprints"] = {"heaplint/v1": f.fingerprint, "primaryLocationLineHash": f.fingerprint}
    if with_baseline and f.baseline_state:
        out["baselineState"] = f.baseline_state
    if f.stack:
        out["stacks"] = [_stack(f.stack)]
    if f.count > 1:
        out["occurrenceCount"] = f.count
    out["properties"] = {
        "ruleName": f.rule_name,
        "pid": f.pid,
        "image": f.image,
        "heap": None if f.heap is None else f"0x{f.heap:x}",
        "heapLabel": f.heap_label,
        "addresses": [f"0x{a:x}" for a in f.addresses],
        "sizes": list(f.sizes),
        "bytes": f.total_bytes,
        "count": f.count,
        "firstTimeNs": f.first_time,
        "lastTimeNs": f.last_time,
        "firstIndex": f.first_index,
        "lastIndex": f.last_index,
        "confidence": f.confidence,
        "evidence": json_safe(dict(f.evidence)),
    }
    return out


def _logical_locations(f: Finding) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    process = None
    if f.pid is not None or f.image:
        pid = f.pid if f.pid is not None else "?"
        process = f"{image_name(f.image)}[{pid}]"
        out.append({"name": image_name(f.image), "fullyQualifiedName": process, "kind": "process"})
    heap = f.heap_label or (f"0x{f.heap:x}" if f.heap is not None else None)
    if heap is not None:
        out.append({"name": heap, "fullyQualifiedName": f"{process or '?'}/{heap}", "kind": "heap"})
    if f.addresses:
        block = f"0x{f.addresses[0]:x}"
        out.append({"name": block, "fullyQualifiedName": f"{process or '?'}/{heap or '?'}/{block}", "kind": "block"})
    return out


def _stack(frames: tuple[str, ...]) -> dict[str, Any]:
    out = []
    for frame in frames:
        entry: dict[str, Any] = {"location": {"logicalLocations": [{"fullyQualifiedName": frame, "kind": "function"}]}}
        if "!" in frame:
            entry["module"] = frame.split("!", 1)[0]
        out.append(entry)
    return {"message": {"text": "allocation stack"}, "frames": out}


def _notification(text: str, level: str) -> dict[str, Any]:
    return {"message": {"text": text}, "level": level}


def _uri(path: str, options: ReportOptions) -> str:
    shown = display_path(path, options.base_dir)
    if shown == "<stdin>":
        return "stdin"
    # percent-encode what a URI reference cannot hold (spaces, '#', '%', ...)
    if shown.startswith("/"):
        return "file://" + quote(shown, safe="/")
    if _DRIVE.match(shown):
        return "file:///" + quote(shown, safe="/:")
    return quote(shown, safe="/")  # ':' quoted so "a:b.etl" cannot read as a scheme


def _artifact_location(uri: str) -> dict[str, Any]:
    if uri.startswith("file://"):
        return {"uri": uri}
    return {"uri": uri, "uriBaseId": SRCROOT}


def _result_order(r: dict[str, Any]) -> tuple:
    loc = r["locations"][0]["physicalLocation"]["artifactLocation"]
    props = r["properties"]
    return (
        loc.get("index", -1),
        {"error": 0, "warning": 1, "note": 2}[r["level"]],
        r["ruleId"],
        props["pid"] if props["pid"] is not None else -1,
        props["heap"] or "",
        props["firstIndex"] if props["firstIndex"] is not None else -1,
        r.get("partialFingerprints", {}).get("heaplint/v1", ""),
        r.get("baselineState", ""),
        "suppressions" in r,
        r["message"]["text"],
    )
