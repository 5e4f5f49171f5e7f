"""Smoke test of benchmarks/parallel_instructions.py's child mode (what it
runs under valgrind): the whole replay and a partition run and exit 0.
Counting itself needs valgrind and minutes: not tested here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "parallel_instructions.py"
TRACE = ROOT / "examples" / "leaky-service.jsonl.gz"


@pytest.mark.parametrize("part", ["whole", "1/2"])
def test_child_runs(part: str) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--child", part, "--times", "2", str(TRACE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_child_rejects_a_missing_trace(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--child", "whole", str(tmp_path / "none.jsonl")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
