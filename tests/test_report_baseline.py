"""Baselines: file round trip, new / unchanged / absent, and how reports mark them."""

from __future__ import annotations

import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heaplint.engine.baseline import Baseline, BaselineEntry, apply_baseline, load_baseline, render_baseline
from heaplint.engine.errors import UsageError
from heaplint.engine.findings import AnalysisResult, Finding, Severity, Suppressed
from heaplint.engine.reports import ReportOptions, get_formatter
from report_sample import RULES, sample_result


def write_baseline(tmp_path, result) -> str:
    path = tmp_path / "heaplint-baseline.json"
    path.write_bytes(render_baseline(result))
    return str(path)


def test_baseline_file_is_sorted_versioned_and_reproducible(tmp_path):
    data = render_baseline(sample_result())
    assert data == render_baseline(sample_result())
    doc = json.loads(data)
    assert doc["heaplint_baseline"] == 1
    fps = [e["fingerprint"] for e in doc["findings"]]
    assert fps == sorted(fps) and len(fps) == 5
    assert set(doc["findings"][0]) == {
        "fingerprint", "rule_id", "rule_name", "severity", "message", "trace", "image", "heap_label", "count"
    }
    assert b"generated" not in data and b"time" not in data
    entries = load_baseline(write_baseline(tmp_path, sample_result())).entries
    assert Counter(e.fingerprint for e in entries) == Counter(f.fingerprint for f in sample_result().findings)


def test_same_findings_are_all_unchanged(tmp_path):
    path = write_baseline(tmp_path, sample_result())
    out = apply_baseline(sample_result(), load_baseline(path))
    assert out.findings == [] and out.exit_status == 0
    assert len(out.baseline.unchanged) == 5 and out.baseline.absent == []
    assert {f.baseline_state for f in out.baseline.unchanged} == {"unchanged"}


def test_new_and_absent_findings(tmp_path):
    old = sample_result()
    del old.traces[0].findings[1]  # HL002 is new in the current run
    path = write_baseline(tmp_path, old)
    current = sample_result()
    gone = current.traces[1].findings.pop()  # HL020 fixed since the baseline
    out = apply_baseline(current, load_baseline(path))
    assert [(f.rule_id, f.baseline_state) for f in out.findings] == [("HL002", "new")]
    assert out.exit_status == 1
    assert [f.rule_id for f in out.baseline.absent] == ["HL020"]
    absent = out.baseline.absent[0]
    assert absent.baseline_state == "absent" and absent.fingerprint == gone.fingerprint
    assert absent.message == gone.message and absent.severity == Severity.NOTE


def test_fingerprints_match_as_a_multiset(tmp_path):
    path = write_baseline(tmp_path, sample_result())
    current = sample_result()
    dup = current.traces[0].findings[0]
    current.traces[0].findings.append(dataclasses.replace(dup, first_index=99))  # the same problem once more
    out = apply_baseline(current, load_baseline(path))
    assert [(f.rule_id, f.first_index) for f in out.findings] == [("HL001", 99)]


def test_suppressed_findings_are_not_reported_absent():
    current = sample_result()
    hidden = current.traces[0].findings.pop(0)
    current.suppressed.append(Suppressed(hidden, "s.yaml:1", "r"))
    entries = [BaselineEntry(hidden.fingerprint, hidden.rule_id, hidden.severity)]
    out = apply_baseline(current, Baseline("b.json", entries))
    assert out.baseline.absent == [] and len(out.findings) == 4


def test_reports_mark_baseline_states(tmp_path):
    old = sample_result()
    del old.traces[0].findings[1]
    path = write_baseline(tmp_path, old)
    current = sample_result()
    current.traces[1].findings.pop()
    out = apply_baseline(current, load_baseline(path))
    sarif = json.loads(get_formatter("sarif").render(out, ReportOptions()))
    states = Counter(r["baselineState"] for r in sarif["runs"][0]["results"])
    assert states == {"new": 1, "unchanged": 3, "absent": 1}
    doc = json.loads(get_formatter("json").render(out, ReportOptions()))
    assert Counter(f["baseline_state"] for f in doc["findings"]) == {"new": 1, "unchanged": 3}
    assert doc["summary"]["reported"] == 1 and doc["baseline"]["absent"][0]["rule_id"] == "HL020"
    text = get_formatter("text").render(out, ReportOptions()).decode()
    assert "HL002 double-free" in text and "new since the baseline" in text
    assert "HL001 leak-at-exit" not in text  # unchanged ones are not reported
    assert "3 unchanged (not reported), 1 absent, 1 new" in text
    root = ET.fromstring(get_formatter("junit").render(out, ReportOptions()))
    assert root.get("failures") == "1"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "baseline is not valid JSON"),
        (b"\xff\xfe", "baseline is not UTF-8 text"),
        (b"[]", "not a heaplint baseline"),
        (b"[" * 100_000 + b"]" * 100_000, "baseline is not valid JSON: nested too deeply"),  # RecursionError
        (b'{"heaplint_baseline": ' + b"9" * 5000 + b"}", "baseline is not valid JSON: a number is too long"),
        (b'{"heaplint_baseline": 99, "findings": []}', "baseline version 99 is not supported"),
        (b'{"heaplint_baseline": 1, "findings": {}}', "'findings' must be a list"),
        (b'{"heaplint_baseline": 1, "findings": [{"rule_id": "x", "severity": "error"}]}',
         "findings[0]: 'fingerprint' must be a non-empty string"),
        (b'{"heaplint_baseline": 1, "findings": [{"fingerprint": "f", "rule_id": "x", "severity": "fatal"}]}',
         "findings[0]: unknown severity 'fatal'"),
    ],
)
def test_bad_baseline_files_are_usage_errors(tmp_path, content, message):
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as err:
        load_baseline(str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_baseline_file_says_how_to_make_one(tmp_path):
    with pytest.raises(UsageError) as err:
        load_baseline(str(tmp_path / "none.json"))
    assert "heaplint baseline create" in str(err.value)


_FP = st.sampled_from(["a", "b", "c", "d"])


@given(old=st.lists(_FP, max_size=8), new=st.lists(_FP, max_size=8))
def test_new_unchanged_absent_agree_with_multiset_arithmetic(old, new):
    findings = [
        Finding("R", "r", Severity.ERROR, "m", "t.etl", first_index=i, fingerprint=fp) for i, fp in enumerate(new)
    ]
    from report_sample import replay

    trace = replay("t.etl", [])
    trace.findings = findings
    result = AnalysisResult(traces=[trace], rules=list(RULES))
    entries = [BaselineEntry(fp, "R", Severity.ERROR) for fp in old]
    out = apply_baseline(result, Baseline("b.json", entries))
    o, n = Counter(old), Counter(new)
    assert Counter(f.fingerprint for f in out.findings) == n - o
    assert Counter(f.fingerprint for f in out.baseline.unchanged) == n & o
    assert Counter(f.fingerprint for f in out.baseline.absent) == o - n


def test_baseline_command_writes_the_file(tmp_path):
    from heaplint.engine.commands.baseline import write_baseline_file

    out = tmp_path / "heaplint-baseline.json"
    stderr = io.StringIO()
    assert write_baseline_file(sample_result(), str(out), stderr=stderr) == 0
    assert out.read_bytes() == render_baseline(sample_result())
    assert "recorded 5 finding(s) from 2 trace(s)" in stderr.getvalue()


def test_baseline_command_refuses_a_run_with_errors(tmp_path):
    from heaplint.engine.commands.baseline import write_baseline_file

    out = tmp_path / "heaplint-baseline.json"
    out.write_text("previous")
    result = sample_result()
    result.errors.append("traces/app.etl: truncated")
    stderr = io.StringIO()
    assert write_baseline_file(result, str(out), stderr=stderr) == 2
    assert out.read_text() == "previous" and "baseline not written" in stderr.getvalue()


def test_cli_baseline_create_on_a_missing_trace_exits_2(tmp_path, capsys):
    from heaplint.engine.cli import main

    code = main(["baseline", "create", str(tmp_path / "missing.etl"), "-o", str(tmp_path / "b.json")])
    assert code == 2  # no trace (or, in a build without the rule engine, no analyze): never a baseline
    assert not (tmp_path / "b.json").exists()
    assert capsys.readouterr().err
