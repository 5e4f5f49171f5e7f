"""The AnalysisResult conveniences for scripts and pytest gates."""

from __future__ import annotations

import json

import pytest

from heaplint.engine.findings import FindingsError, Severity
from report_sample import sample_result


def test_counts_filters_and_exit_status():
    r = sample_result()
    assert r.counts() == {"error": 3, "warning": 1, "note": 1}
    assert [f.rule_id for f in r.at_least("warning")] == ["HL001", "HL002", "HL010", "HL001"]
    assert len(r.at_least(Severity.NOTE)) == 5
    assert [f.rule_id for f in r.failing] == ["HL001", "HL002", "HL001"]
    assert r.exit_status == 1 and not r.ok
    r.fail_on = None
    assert r.exit_status == 0 and r.ok and r.failing == []
    r.errors.append("t.etl: truncated")
    assert r.exit_status == 2 and not r.ok


def test_summary_names_counts_threshold_and_failing_findings():
    text = sample_result().summary()
    lines = text.splitlines()
    assert lines[0] == "5 findings (3 errors, 1 warning, 1 note) in 2 trace(s); fail-on error: exit status 1"
    assert lines[1].startswith("  error HL001 leak-at-exit C:\\Program Files\\App\\app.exe[100]: 3 blocks")
    assert len(lines) == 4
    assert sample_result().summary(limit=1).splitlines()[-1] == "  ... and 2 more"


def test_raise_for_findings_is_an_assertion_with_the_summary():
    r = sample_result()
    with pytest.raises(AssertionError) as err:
        r.raise_for_findings()
    assert isinstance(err.value, FindingsError) and len(err.value.findings) == 3
    assert "fail-on error: exit status 1" in str(err.value)
    with pytest.raises(FindingsError) as err:
        r.raise_for_findings("note")
    assert len(err.value.findings) == 5
    for t in r.traces:
        t.findings = [f for f in t.findings if f.severity < Severity.ERROR]
    r.raise_for_findings()  # warnings and notes pass the default gate
    with pytest.raises(FindingsError):
        r.raise_for_findings(Severity.WARNING)


def test_report_renders_any_format():
    r = sample_result()
    assert json.loads(r.report("json"))["summary"]["reported"] == 5
    assert json.loads(r.report("json", timestamps=True, generated_at="2030-01-01T00:00:00Z"))["generated_at"].startswith("2030")
    with pytest.raises(Exception, match="unknown format 'xml'"):
        r.report("xml")


def test_total_bytes_prefers_evidence_then_sizes():
    leak, double_free = sample_result().findings[:2]
    assert leak.total_bytes == 1200  # evidence["bytes"]
    assert double_free.total_bytes == 65  # sum(sizes)
