"""A trace without a single heap record: quality ``empty``, a warning, exit 0.

Such a trace passes every gate while checking nothing (most often the capture
did not enable heap tracing), so every report says so; see
docs/capturing.md#checking-a-capture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rules_kit import jsonl

from heaplint.engine import analyze
from heaplint.engine.cli import main

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "etl"


def _process_only(path: Path) -> str:
    """Two processes that start and end, and not one heap record."""
    return jsonl(
        path,
        {"kind": "process_start", "time": 0, "pid": 1, "image": "app.exe"},
        {"kind": "process_start", "time": 1, "pid": 2, "image": "other.exe"},
        {"kind": "process_end", "time": 5, "pid": 1},
    )


def _one_alloc(path: Path) -> str:
    return jsonl(path, {"kind": "alloc", "time": 5, "pid": 1, "tid": 1, "heap": "0x10", "address": "0x1000",
                        "size": 16})


def _analyze(*paths: str, jobs: int = 1):
    return analyze(list(paths), use_config=False, jobs=jobs)


@pytest.mark.parametrize("jobs", [1, 2])
def test_process_records_only_is_empty(tmp_path, jobs):
    empty = _process_only(tmp_path / "empty.jsonl")
    full = _one_alloc(tmp_path / "full.jsonl")
    result = _analyze(empty, full, jobs=jobs)
    quality = [t.quality for t in result.traces]
    assert [q.empty for q in quality] == [True, False]
    assert quality[0].summary().startswith("empty: no heap events")
    assert quality[0].inconclusive and not quality[1].inconclusive
    # the processes the trace only names are not counted as attached processes
    assert "started before the trace" not in quality[0].summary()
    assert [p.heap_events for p in quality[0].processes] == [False, False]
    assert len(result.warnings) == 1 and result.warnings[0].startswith(f"{empty}: no heap events")
    assert result.exit_status == 0


def test_heap_create_alone_is_not_empty(tmp_path):
    path = jsonl(tmp_path / "create.jsonl", {"kind": "create", "time": 1, "pid": 1, "tid": 1, "heap": "0x10"})
    result = _analyze(path)
    assert not result.traces[0].quality.empty and result.warnings == []


def test_cli_warns_and_exits_0(tmp_path, capsys):
    empty = _process_only(tmp_path / "empty.jsonl")
    report = tmp_path / "report.json"
    assert main(["check", empty, "--no-config", "--format", "json", "-o", str(report)]) == 0
    err = capsys.readouterr().err
    assert f"heaplint: warning: {empty}: no heap events in this trace" in err
    doc = json.loads(report.read_text())
    q = doc["traces"][0]["quality"]
    assert q["empty"] is True and q["summary"] == "empty: no heap events"
    assert [p["heap_events"] for p in q["processes"]] == [False, False]
    assert doc["warnings"] and "no heap events" in doc["warnings"][0]


def test_cli_quiet_keeps_stderr_clean(tmp_path, capsys):
    empty = _process_only(tmp_path / "empty.jsonl")
    assert main(["check", empty, "--no-config", "-q", "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"sample traces not present at {SAMPLES}")
def test_real_etl_without_heap_events(capsys):
    """A real capture from a public project (no heap provider in it)."""
    path = str(SAMPLES / "lxcore_kernel.etl")
    assert main(["check", path, "--no-config", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "trace quality empty: no heap events" in out
    assert "warning: " in out and "no heap events in this trace" in out
