"""README's first command: `heaplint check examples/leaky-service.jsonl.gz`
reports the injected leak as an error and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

from heaplint.engine import analyze
from heaplint.engine.cli import main
from heaplint.engine.findings import Severity

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "leaky-service.jsonl.gz"
TRUTH = ROOT / "examples" / "leaky-service.truth.json"


def test_check_exits_1_on_the_example(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["check", str(EXAMPLE), "--no-config"]) == 1
    out = capsys.readouterr().out
    assert "HL003 unbounded-heap-growth" in out


def test_the_findings_are_the_injected_leak():
    (leak,) = json.loads(TRUTH.read_text(encoding="utf-8"))["defects"]
    result = analyze([str(EXAMPLE)], use_config=False)
    findings = result.findings
    errors = [f for f in findings if f.severity == Severity.ERROR]
    assert errors and all(f.rule_id == "HL003" for f in errors)
    heap = int(leak["heap"], 16)
    assert {(f.pid, f.heap) for f in errors} == {(leak["pid"], heap)}
    (hl004,) = [f for f in findings if f.rule_id == "HL004"]
    assert (hl004.pid, hl004.heap) == (leak["pid"], heap)
    assert set(hl004.addresses) <= {int(a, 16) for a in leak["addresses"]}
    assert hl004.evidence["blocks"] <= leak["count"] and hl004.stack  # grouped by the leak's stack
    # nothing is reported about the healthy process
    assert {f.pid for f in findings} == {leak["pid"]}
