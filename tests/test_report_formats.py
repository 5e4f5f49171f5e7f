"""Each report format on real AnalysisResult objects: content, structure, escaping."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from heaplint.engine.errors import UsageError
from heaplint.engine.findings import Severity
from heaplint.engine.reports import FORMATS, ReportOptions, get_formatter
from heaplint.engine.reports.github import escape_data, escape_property, job_summary, md
from report_sample import HOSTILE_FRAME, HOSTILE_IMAGE, HOSTILE_MESSAGE, sample_result

ROOT = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def render(fmt: str, result=None, **options) -> bytes:
    return get_formatter(fmt).render(result or sample_result(), ReportOptions(**options))


# ---------------------------------------------------------------- registry


def test_registry_lists_every_format_and_unknown_names_what_exists():
    assert list(FORMATS) == ["text", "json", "sarif", "junit", "github", "html"]
    with pytest.raises(UsageError) as err:
        get_formatter("sarf")
    assert err.value.message == "unknown format 'sarf'; known: text, json, sarif, junit, github, html"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_renders_bytes_with_and_without_findings(fmt):
    result = sample_result()
    assert isinstance(render(fmt, result), bytes)
    for t in result.traces:
        t.findings = []
    out = render(fmt, result)
    assert isinstance(out, bytes) and out


# ---------------------------------------------------------------- text


def test_text_groups_by_trace_then_severity_and_ends_with_counts():
    text = render("text").decode()
    a, b = text.index("traces/app.etl:"), text.index("traces/svc.etl:")
    assert a < b
    first = text[a:b]
    assert first.index("  error (2)") < first.index("  warning (1)")
    assert "HL020" not in first and "HL020" in text[b:]
    assert "trace quality complete" in first
    last = text.rstrip("\n").splitlines()[-1]
    assert last == "5 findings (3 errors, 1 warning, 1 note) in 2 traces; fail-on error: fail"
    assert "\x1b[" not in text


def test_text_colours_only_when_asked_and_control_characters_are_neutralised():
    assert "\x1b[31m" in render("text", color=True).decode()
    hostile = render("text", sample_result(hostile=True)).decode()
    assert "\x1b" not in hostile  # the message's ESC is shown as \x1b text
    assert "\\x1b[31m" in hostile
    assert "\r" not in hostile and "\\r\\n::error" in hostile


def test_text_shows_trace_quality_of_a_lossy_trace():
    result = sample_result()
    result.traces[1].quality.events_lost = 12
    assert "trace quality inconclusive: 12 events lost" in render("text", result).decode()


# ---------------------------------------------------------------- json


def test_json_document_holds_findings_rules_quality_stats():
    doc = json.loads(render("json"))
    assert doc["heaplint_report"] == 1
    assert doc["generated_at"] is None
    assert doc["exit_status"] == 1 and doc["fail_on"] == "error"
    assert doc["summary"]["by_severity"] == {"error": 3, "warning": 1, "note": 1}
    assert [r["id"] for r in doc["rules"]] == ["HL001", "HL002", "HL010", "HL020", "HL030", "HL099"]
    assert doc["traces"][0]["quality"]["summary"] == "complete"
    assert doc["traces"][0]["stats"]["processes"][0]["pid"] == 100
    leak = doc["findings"][0]
    assert leak["rule_id"] == "HL001" and leak["heap"] == "0x5000" and leak["addresses"] == ["0x10000", "0x10400"]
    assert leak["bytes"] == 1200 and leak["stack"][0] == "app!Cache::Insert+0x2a"
    assert leak["evidence"] == {"blocks": 3, "bytes": 1200}
    assert len(leak["fingerprint"]) == 32 and leak["baseline_state"] is None
    assert doc["baseline"] is None and doc["suppressed"] == [] and doc["suppressions"] == []


def test_json_keeps_hostile_strings_intact():
    doc = json.loads(render("json", sample_result(hostile=True)))
    assert doc["findings"][0]["message"] == HOSTILE_MESSAGE
    assert doc["findings"][0]["image"] == HOSTILE_IMAGE


def test_json_timestamp_only_on_request():
    doc = json.loads(render("json", timestamps=True, generated_at="2024-01-02T03:04:05Z"))
    assert doc["generated_at"] == "2024-01-02T03:04:05Z"
    stamped = json.loads(render("json", timestamps=True))["generated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamped)


# ---------------------------------------------------------------- sarif


def _sarif_validator():
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SARIF_SCHEMA} (the shared schemas folder is absent)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


@pytest.mark.parametrize("hostile", [False, True])
def test_sarif_validates_against_the_2_1_0_schema(hostile):
    validator = _sarif_validator()
    doc = json.loads(render("sarif", sample_result(hostile=hostile)))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_sarif_rules_results_locations_and_fingerprints():
    doc = json.loads(render("sarif"))
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    rules = run["tool"]["driver"]["rules"]
    leak_rule = rules[0]
    assert leak_rule["id"] == "HL001" and leak_rule["defaultConfiguration"]["level"] == "error"
    assert leak_rule["help"]["text"] == "Blocks still live when the process ended."
    assert {r["id"]: r["defaultConfiguration"]["level"] for r in rules}["HL010"] == "warning"
    results = run["results"]
    assert [r["level"] for r in results] == ["error", "error", "warning", "error", "note"]
    first = results[0]
    assert first["ruleId"] == "HL001" and rules[first["ruleIndex"]]["id"] == "HL001"
    loc = first["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "traces/app.etl"
    assert loc["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    logical = {ll["kind"]: ll for ll in loc["logicalLocations"]}
    assert logical["process"]["fullyQualifiedName"] == "app.exe[100]"
    assert logical["heap"]["name"] == "process-heap"
    assert logical["block"]["name"] == "0x10000"
    finding = sample_result().findings[0]
    assert first["partialFingerprints"]["heaplint/v1"] == finding.fingerprint
    assert first["stacks"][0]["frames"][0]["module"] == "app"
    assert "baselineState" not in first and "suppressions" not in first


def test_sarif_absolute_paths_outside_the_base_are_file_uris(tmp_path):
    result = sample_result(trace_a=str(tmp_path / "my trace#1.etl"))
    doc = json.loads(render("sarif", result, base_dir=str(tmp_path / "elsewhere")))
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///") and uri.endswith("/my%20trace%231.etl")
    inside = json.loads(render("sarif", result, base_dir=str(tmp_path)))
    assert inside["runs"][0]["artifacts"][0]["location"]["uri"] == "my%20trace%231.etl"


# ---------------------------------------------------------------- junit


def test_junit_one_testcase_per_trace_and_rule():
    root = ET.fromstring(render("junit"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["traces/app.etl", "traces/svc.etl"]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "HL001 leak-at-exit", "HL002 double-free", "HL010 realloc-churn",
        "HL020 large-alloc", "HL030 heap-growth", "HL099 disabled-rule",
    ]
    assert {c.get("classname") for c in cases} == {"heaplint.traces/app_etl"}
    assert {c.get("file") for c in cases} == {"traces/app.etl"}
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"HL001 leak-at-exit", "HL002 double-free"}  # the warning is below --fail-on error
    assert failed["HL001 leak-at-exit"].get("type") == "error"
    assert failed["HL001 leak-at-exit"].get("message").startswith("1 finding: 3 blocks")
    assert "app!Cache::Insert+0x2a" in failed["HL001 leak-at-exit"].text
    churn = cases[2]
    assert churn.find("failure") is None and "below --fail-on" in churn.find("system-out").text
    assert cases[5].find("skipped").get("message") == "rule disabled"
    assert suites[0].get("tests") == "6" and suites[0].get("failures") == "2" and suites[0].get("skipped") == "1"
    assert root.get("tests") == "12" and root.get("failures") == "3"
    assert "time" not in root.attrib and "timestamp" not in suites[0].attrib


def test_junit_fail_on_warning_fails_the_warning_too_and_errors_become_an_error_case():
    result = sample_result()
    result.fail_on = Severity.WARNING
    result.errors.append("traces/bad.etl: truncated record at byte 4096")
    root = ET.fromstring(render("junit", result))
    assert root.get("failures") == "4" and root.get("errors") == "1"
    err = root.find("testsuite[@name='heaplint']/testcase/error")
    assert "truncated record" in err.get("message")


def test_junit_survives_hostile_and_invalid_xml_characters():
    result = sample_result(hostile=True)
    result.traces[0].findings[1] = type(result.traces[0].findings[1])(
        **{**{f: getattr(result.traces[0].findings[1], f) for f in result.traces[0].findings[1].__dataclass_fields__},
           "message": "nul\x00 bell\x07 lone\ud800"}
    )
    data = render("junit", result)
    root = ET.fromstring(data)  # parses: no raw control characters
    texts = " ".join(e.get("message", "") + (e.text or "") for e in root.iter())
    assert HOSTILE_FRAME in texts and "<script>" in texts  # kept as text, escaped in the XML
    assert b"<script>" not in data and b"\\x00" in data


# ---------------------------------------------------------------- github


def test_github_escaping_rules():
    assert escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_annotations_one_line_each_and_cannot_inject_commands():
    lines = render("github", sample_result(hostile=True)).decode().splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert len(annotations) == 5
    assert annotations[0].startswith("::error file=traces/app.etl,title=HL001 leak-at-exit::")
    assert annotations[2].startswith("::warning ") and annotations[4].startswith("::notice ")
    # the hostile message's CRLF and '%' are encoded, so '::error file=x::pwned' stays inside one message
    assert not any(line.startswith("::error file=x") for line in lines)
    assert "100%25%0D%0A::error file=x::pwned" in annotations[0]
    hostile_props = render("github", sample_result(hostile=True, trace_a="a,b:c.etl")).decode()
    assert "::error file=a%2Cb%3Ac.etl,title=" in hostile_props


def test_github_job_summary_markdown_is_escaped():
    summary = job_summary(sample_result(hostile=True), ReportOptions()).decode()
    assert summary.startswith("## heaplint failed: 5 findings in 2 traces")
    assert "<script>" not in summary and "<img" not in summary
    assert "&lt;script&gt;" in summary
    table_rows = [line for line in summary.splitlines() if line.startswith("| error | HL")]
    assert len(table_rows) == 3 and "\x1b" not in summary
    assert all(line.count(" | ") == 5 for line in table_rows)  # no cell broke out of the table
    assert md("a|b\nc") == "a\\|b<br>c"


# ---------------------------------------------------------------- html


def test_html_is_self_contained_and_escapes_everything():
    page = render("html", sample_result(hostile=True)).decode()
    assert "<script" not in page.lower()
    assert "<img" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;svg onload=alert(3)&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in html.unescape(page)


def test_html_has_one_chart_per_process_and_heap_with_finding_markers():
    result = sample_result()
    page = render("html", result).decode()
    assert page.count('<svg class="chart"') == sum(len(t.series) for t in result.traces) == 2
    points = [int(n) for n in re.findall(r'class="live-bytes" data-points="(\d+)"', page)]
    assert points == [len(result.traces[0].series[(100, 0x5000)]), len(result.traces[1].series[(200, 0x7000)])]
    assert page.count('class="finding-marker') == 5
    assert "Top outstanding stacks" in page and "app!Cache::Insert+0x2a" in page
    stacks = page[page.index("Top outstanding stacks"):page.index("<h2>Findings")]
    assert stacks.index("1.2 KiB") < stacks.index("640 B")  # ranked by bytes


def test_display_paths_are_relative_to_the_base_dir(tmp_path):
    trace = tmp_path / "sub" / "t.etl"
    result = sample_result(trace_a=str(trace))
    doc = json.loads(render("json", result, base_dir=str(tmp_path)))
    assert doc["traces"][0]["path"] == "sub/t.etl"
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert json.loads(render("json", result))["traces"][0]["path"] == "sub/t.etl"
    finally:
        os.chdir(cwd)


def test_top_stacks_merge_finding_stacks_and_evidence_stacks():
    from heaplint.engine.reports.html import stack_totals

    result = sample_result()
    growth = dataclasses.replace(
        result.traces[1].findings[0],
        rule_id="HL030", rule_name="heap-growth", stack=None,
        evidence={"stacks": [
            {"frames": ["svc!Worker::Run+0x44", "svc!main+0x8"], "bytes": 5000, "count": 7},
            {"frames": ["svc!Other+0x1"], "bytes": 10, "count": 1},
            {"frames": "not a list"},
        ]},
    )
    result.traces[1].findings.append(growth)
    ranked = stack_totals(result)
    assert ranked[0] == (("svc!Worker::Run+0x44", "svc!main+0x8"), 5640, 17, ["HL001 leak-at-exit", "HL030 heap-growth"])
    assert ranked[1][0][0] == "app!Cache::Insert+0x2a" and ranked[-1] == (("svc!Other+0x1",), 10, 1, ["HL030 heap-growth"])
