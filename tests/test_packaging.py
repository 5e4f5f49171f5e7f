"""Packaging: heaplint lives in the ``heaplint`` namespace only.

``rules`` is the import name of an unrelated PyPI project and ``engine`` is far
too generic: using heaplint must never put either into ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
from heaplint.engine.cli import main
from heaplint.engine import analyze
import heaplint.rules.ruleset, heaplint.builtin_rules
code = main(["rules", "list"])
code2 = main(["check", "--no-config", sys.argv[1]])
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("rules", "engine", "builtin_rules"))
print(json.dumps({"bad": bad, "codes": [code, code2]}))
"""


def test_no_top_level_rules_or_engine_module(tmp_path):
    # run from an empty directory so the project folders are not on sys.path
    # by accident of the working directory
    trace = ROOT / "examples" / "leaky-service.jsonl.gz"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(trace)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bad"] == []
    assert result["codes"] == [0, 1]  # the example leaks: check fails with exit 1


def test_package_dir_mapping():
    import heaplint.builtin_rules
    import heaplint.engine
    import heaplint.rules

    assert Path(heaplint.engine.__file__).resolve().parent == ROOT / "engine"
    assert Path(heaplint.rules.__file__).resolve().parent == ROOT / "rules"
    assert Path(heaplint.builtin_rules.__file__).resolve().parent == ROOT / "builtin_rules"


def test_python_dash_m_runs_the_cli(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "heaplint.engine", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("heaplint ")
