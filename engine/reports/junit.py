"""JUnit XML, as GitLab (``artifacts:reports:junit``) and Jenkins read it.

One ``<testsuite>`` per trace, one ``<testcase>`` per trace x rule:

* ``classname`` is ``heaplint.<trace>`` with the trace's dots replaced (Jenkins
  splits package and class at the last dot), ``name`` is ``<rule id> <rule name>``,
  ``file`` is the trace path (GitLab shows it);
* a rule with findings at or above ``--fail-on`` gets a ``<failure>`` whose
  ``message`` is a one-line summary, ``type`` the worst severity and whose text
  lists every finding;  findings below the threshold, suppressed ones and
  baseline-matched ones are listed in ``<system-out>`` and the test passes, so
  the JUnit verdict agrees with the exit code;
* a disabled rule is ``<skipped>``; run errors are one ``<error>`` test case.

No ``time`` attributes and no timestamps (unless ``--timestamps``), so the
report is byte-identical across runs.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from heaplint.engine.findings import AnalysisResult, Finding, RuleMeta, Severity
from heaplint.engine.reports.base import Formatter, ReportOptions, display_path, plural, where

# characters XML 1.0 cannot hold, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class JunitFormatter(Formatter):
    name = "junit"
    extension = "xml"
    description = "JUnit XML (GitLab, Jenkins): one test case per trace x rule"

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        root = ET.Element("testsuites", name="heaplint")
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        stamp = options.timestamp()
        rules = {r.id: r for r in result.rules}
        quiet: dict[str, list[tuple[Finding, str]]] = {}
        if result.baseline is not None:
            for f in result.baseline.unchanged:
                quiet.setdefault(f.trace, []).append((f, "unchanged since the baseline"))
        for s in result.suppressed:
            quiet.setdefault(s.finding.trace, []).append((s.finding, f"suppressed by {s.source}: {s.reason}"))

        for trace in result.traces:
            shown = display_path(trace.path, options.base_dir)
            suite = ET.SubElement(root, "testsuite", name=_clean(shown))
            counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", name="format", value=_clean(trace.info.format))
            ET.SubElement(props, "property", name="trace_quality", value=_clean(trace.quality.summary()))
            rule_ids = sorted(set(rules) | {f.rule_id for f in trace.findings})
            for rule_id in rule_ids:
                meta = rules.get(rule_id)
                found = [f for f in trace.findings if f.rule_id == rule_id]
                others = [(f, why) for f, why in quiet.get(trace.path, []) if f.rule_id == rule_id]
                _testcase(suite, shown, rule_id, meta, found, others, result, counts)
            for key, value in counts.items():
                suite.set(key, str(value))
                totals[key] += value
            if stamp:
                suite.set("timestamp", stamp)
        if result.errors:
            suite = ET.SubElement(root, "testsuite", name="heaplint", tests="1", failures="0", errors="1", skipped="0")
            case = ET.SubElement(suite, "testcase", classname="heaplint.run", name="analysis")
            err = ET.SubElement(case, "error", message=_clean(result.errors[0]), type="error")
            err.text = _clean("\n".join(result.errors))
            totals["tests"] += 1
            totals["errors"] += 1
        for key, value in totals.items():
            root.set(key, str(value))
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8", "backslashreplace")


def _testcase(
    suite: ET.Element,
    shown: str,
    rule_id: str,
    meta: RuleMeta | None,
    found: list[Finding],
    others: list[tuple[Finding, str]],
    result: AnalysisResult,
    counts: dict[str, int],
) -> None:
    name = f"{rule_id} {meta.name}" if meta is not None else rule_id
    classname = "heaplint." + re.sub(r"[.\s]+", "_", shown)
    case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name), file=_clean(shown))
    counts["tests"] += 1
    threshold = result.fail_on
    failing = [f for f in found if threshold is not None and f.severity >= threshold]
    passing = [(f, f"{f.severity.label}, below --fail-on") for f in found if threshold is None or f.severity < threshold]
    if meta is not None and not meta.enabled and not found:
        ET.SubElement(case, "skipped", message="rule disabled")
        counts["skipped"] += 1
        return
    if failing:
        worst = max(f.severity for f in failing)
        first = failing[0].message.splitlines()[0] if failing[0].message else ""
        message = f"{plural(len(failing), 'finding')}: {first}"
        failure = ET.SubElement(case, "failure", message=_clean(message), type=Severity(worst).label)
        failure.text = _clean("\n".join(_describe(f) for f in failing))
        counts["failures"] += 1
    listed = passing + others
    if listed:
        out = ET.SubElement(case, "system-out")
        out.text = _clean("\n".join(f"{_describe(f)}\n  ({why})" for f, why in listed))


def _describe(f: Finding) -> str:
    place = where(f)
    lines = [f"{f.severity.label} {f.rule_id} {f.rule_name}{' ' + place if place else ''}: {f.message}"]
    if f.stack:
        lines.extend(f"  at {frame}" for frame in f.stack)
    return "\n".join(lines)


def _clean(text: str) -> str:
    """Text safe for XML 1.0 (ElementTree escapes <, >, &, quotes itself)."""
    return _INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
