"""Golden files and determinism for the json, sarif and junit reports.

The golden files under tests/data_reports/ are compared byte for byte.  After
an intended change of a format, regenerate them and review the diff:

    HEAPLINT_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report_golden.py
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import random
from pathlib import Path

import pytest

from heaplint.engine.baseline import Baseline, BaselineEntry, apply_baseline
from heaplint.engine.commands.report_options import add_report_arguments, emit_reports
from heaplint.engine.findings import Severity
from heaplint.engine.reports import ReportOptions, get_formatter
from heaplint.engine.suppressions import apply_suppressions, parse_suppressions
from report_sample import sample_result

DATA = Path(__file__).resolve().parent / "data_reports"
GOLDEN = {"json": "report.json", "sarif": "report.sarif", "junit": "report.junit.xml"}
TODAY = datetime.date(2025, 6, 1)


def golden_result(seed: int | None = None):
    """The sample with a suppression, an unused suppression and a baseline
    (one new, one absent finding) applied; ``seed`` shuffles every input list."""
    result = sample_result()
    if seed is not None:
        rng = random.Random(seed)
        for t in result.traces:
            rng.shuffle(t.findings)
        rng.shuffle(result.rules)
    entries = parse_suppressions(
        "suppressions:\n"
        "  - rule: realloc-churn\n    reason: churn is accepted until the cache rewrite\n"
        "  - image: retired.exe\n    reason: old service\n",
        "heaplint-suppressions.yaml",
    )
    result = apply_suppressions(result, entries, today=TODAY)
    recorded = [f for f in sample_result().findings if f.rule_id != "HL002"]
    baseline = [BaselineEntry(f.fingerprint, f.rule_id, f.severity, f.rule_name, f.message, f.trace, f.image, f.heap_label, f.count) for f in recorded]
    baseline.append(BaselineEntry("0" * 32, "HL030", Severity.WARNING, "heap-growth", "heap grew 5 MiB", "traces/app.etl", "app.exe", "heap#1/flags=0x2"))
    if seed is not None:
        random.Random(seed).shuffle(baseline)
    return apply_baseline(result, Baseline("heaplint-baseline.json", baseline))


@pytest.mark.parametrize("fmt", sorted(GOLDEN))
def test_matches_golden_file(fmt):
    data = get_formatter(fmt).render(golden_result(), ReportOptions())
    path = DATA / GOLDEN[fmt]
    if os.environ.get("HEAPLINT_REGENERATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    if not path.is_file():
        pytest.fail(f"{path} missing; regenerate with HEAPLINT_REGENERATE_GOLDEN=1 (see this module's docstring)")
    assert data == path.read_bytes(), f"{fmt} report differs from {path}; if intended, regenerate and review the diff"


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "html", "text", "github"])
def test_input_order_does_not_change_the_bytes(fmt):
    formatter = get_formatter(fmt)
    reference = formatter.render(golden_result(), ReportOptions())
    for seed in range(5):
        assert formatter.render(golden_result(seed), ReportOptions()) == reference


def test_two_cli_runs_write_byte_identical_files(tmp_path):
    import argparse

    outputs = []
    for run in ("one", "two"):
        folder = tmp_path / run
        folder.mkdir()
        argv = []
        for fmt, name in GOLDEN.items():
            argv += ["--format", fmt, "-o", str(folder / name)]
        parser = argparse.ArgumentParser()
        add_report_arguments(parser)
        emit_reports(golden_result(), parser.parse_args(argv), env={}, today=TODAY)
        outputs.append({name: (folder / name).read_bytes() for name in GOLDEN.values()})
    assert outputs[0] == outputs[1]
    assert all(b"2025" not in data for data in outputs[0].values())  # no date or time crept in


def test_timestamps_appear_only_when_asked():
    stamped = ReportOptions(timestamps=True, generated_at="2030-01-02T03:04:05Z")
    for fmt in GOLDEN:
        formatter = get_formatter(fmt)
        assert b"2030-01-02T03:04:05Z" in formatter.render(golden_result(), stamped)
        assert b"2030-01-02" not in formatter.render(golden_result(), ReportOptions())


def test_golden_result_covers_every_state():
    result = golden_result()
    assert [f.baseline_state for f in result.findings] == ["new"]
    assert len(result.baseline.absent) == 1 and len(result.baseline.unchanged) == 3
    assert len(result.suppressed) == 1 and result.suppressions[1].unused
    assert dataclasses.replace(result, errors=["x"]).exit_status == 2
    sarif = json.loads(get_formatter("sarif").render(result, ReportOptions()))
    states = [(r["ruleId"], r.get("baselineState"), "suppressions" in r) for r in sarif["runs"][0]["results"]]
    assert ("HL010", "unchanged", True) in states  # suppressed results carry a baseline state too
    assert all(state is not None for _, state, _ in states)  # SARIF: all results or none
