"""The commands end to end: ``heaplint check`` and ``heaplint rules ...``, the
public analyze() API, and the hostile rule files suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from rules_kit import DATA_RULES, HOSTILE, ROOT, jsonl

from heaplint.engine import analyze
from heaplint.engine.cli import main
from heaplint.engine.findings import Severity
from heaplint.engine.readers import READERS, available_readers

RULES = ["--no-builtin", "--no-config", "--rules", str(DATA_RULES)]


@pytest.fixture(autouse=True)
def jsonl_reader(monkeypatch):
    """Use the real canonical reader when present, else a test stand-in."""
    if "jsonl" not in available_readers():
        monkeypatch.setitem(READERS, "jsonl", "rules_kit:MiniJsonlReader")


def rec(kind, time, address=None, size=None, **kw):
    r = {"kind": kind, "time": time, "pid": 1, "tid": 1, "heap": "0x10", **kw}
    if address is not None:
        r["address"] = hex(address)
    if size is not None:
        r["size"] = size
    return r


@pytest.fixture()
def double_free_trace(tmp_path):
    return jsonl(tmp_path / "df.jsonl", {"kind": "process_start", "time": 0, "pid": 1, "image": "app.exe"},
                 rec("alloc", 5, 0x1000, 16, source="LFH"), rec("free", 9, 0x1000), rec("free", 12, 0x1000))


@pytest.fixture()
def clean_trace(tmp_path):
    return jsonl(tmp_path / "ok.jsonl", rec("alloc", 5, 0x1000, 16), rec("free", 9, 0x1000))


def test_check_reports_findings_and_exits_1(double_free_trace, capsys):
    assert main(["check", double_free_trace, *RULES, "--color", "never"]) == 1
    out = capsys.readouterr().out
    assert "HL006 double-free app.exe[1] heap process-heap" in out
    assert "0x1000 freed twice on heap process-heap" in out and "trace quality complete" in out


def test_check_clean_trace_exits_0(clean_trace, capsys):
    assert main(["check", clean_trace, *RULES, "--color", "never"]) == 0
    assert "HL0" not in capsys.readouterr().out


def test_check_disable_params_and_fail_on(double_free_trace, capsys):
    assert main(["check", double_free_trace, *RULES, "--disable", "double-free"]) == 0
    capsys.readouterr()
    args = ["check", double_free_trace, *RULES, "--disable", "HL006", "--param", "HL014.limit=8", "--color", "never"]
    assert main(args) == 0
    assert "peak live bytes 16 B exceed 8 B" in capsys.readouterr().out
    assert main([*args, "--fail-on", "warning"]) == 1


def test_check_json_report(double_free_trace, tmp_path):
    import json

    out = tmp_path / "r.json"
    assert main(["check", double_free_trace, *RULES, "--format", "json", "-o", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert "HL006" in json.dumps(doc)


def test_baseline_create_uses_the_rule_options(double_free_trace, tmp_path, capsys):
    base = tmp_path / "baseline.json"
    assert main(["baseline", "create", double_free_trace, *RULES, "-o", str(base)]) == 0
    assert main(["check", double_free_trace, *RULES, "--baseline", str(base)]) == 0


def test_check_bad_rules_exit_2(double_free_trace, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: B001\nname: bad\nwhen: sise > 1\n")
    assert main(["check", double_free_trace, "--no-builtin", "--no-config", "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:7: HLR021 unknown name 'sise' (did you mean 'size'?)" in err
    assert "    when: sise > 1\n          ^^^^" in err


def test_check_bad_param_and_trace_exit_2(double_free_trace, tmp_path, capsys):
    assert main(["check", double_free_trace, *RULES, "--param", "HL014"]) == 2
    assert "RULE.NAME=VALUE" in capsys.readouterr().err
    # an unreadable trace does not hide the others' findings, but the run fails
    assert main(["check", str(tmp_path / "missing.jsonl"), double_free_trace, *RULES, "--exit-zero"]) == 2
    captured = capsys.readouterr()
    assert "missing.jsonl: no such file" in captured.err and "HL006" in captured.out


def test_analyze_api(double_free_trace, clean_trace):
    result = analyze([double_free_trace, clean_trace], rule_paths=[str(DATA_RULES)], no_builtin=True,
                     use_config=False, params={"HL014.limit": "8"})
    assert [len(t.findings) for t in result.traces] == [2, 1]
    assert {f.rule_id for f in result.findings} == {"HL006", "HL014"}
    assert result.exit_status == 1 and len(result.rules) == 14
    t = result.traces[0]
    assert t.quality.summary() == "complete" and t.stats["events"] == 4
    assert t.series[(1, 0x10)][-1] == (0, 0) or t.series[(1, 0x10)]
    relaxed = analyze([double_free_trace], rule_paths=[str(DATA_RULES)], no_builtin=True, use_config=False,
                      fail_on=None)
    assert relaxed.exit_status == 0
    broken = analyze([double_free_trace, "/nonexistent.jsonl"], rule_paths=[str(DATA_RULES)], no_builtin=True,
                     use_config=False)
    assert len(broken.traces) == 1 and broken.errors and broken.exit_status == 2
    assert analyze([double_free_trace], rule_paths=[str(DATA_RULES)], no_builtin=True, use_config=False,
                   disable=["HL006"], fail_on=Severity.WARNING).exit_status == 0


def test_rules_list(capsys):
    assert main(["rules", "list", *RULES]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SEVERITY", "ENABLED", "TAGS", "SOURCE"]
    hl1 = next(line for line in lines if line.startswith("HL001"))
    assert hl1.split()[:5] == ["HL001", "realloc-unknown-old-address", "note|error", "yes", "integrity"]
    assert len(lines) == 15


def test_rules_check(capsys, tmp_path):
    assert main(["rules", "check", "--no-builtin", "--no-config", str(DATA_RULES)]) == 0
    assert "14 rule(s), 1 macro(s), 1 list(s) in 3 file(s): OK" in capsys.readouterr().out
    (tmp_path / "a.yaml").write_text("id: A001\nname: a\nwhen: sise > 1\n")
    (tmp_path / "b.yaml").write_text("id: B001\nname: b\nwhen: knwn(1)\n")
    assert main(["rules", "check", "--no-builtin", "--no-config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a.yaml:3:7: HLR021" in err and "b.yaml:3:7: HLR022" in err and "2 error(s)" in err


def test_rules_explain(capsys):
    assert main(["rules", "explain", "slowpath-realloc-storm", *RULES, "--param", "HL002.threshold=7"]) == 0
    out = capsys.readouterr().out
    assert "trigger:  window" in out and "window:   10s by heap, stack" in out and "runs on:  realloc" in out
    assert "$threshold: int = 7 (default 50)" in out
    assert "count(where kind == realloc and source in slow_sources) over $window by heap, stack > $threshold" in out
    assert main(["rules", "explain", "HL099", *RULES]) == 2


def test_rules_test(capsys, tmp_path):
    assert main(["rules", "test", *RULES]) == 0
    assert re.search(r"\d+ passed, 0 failed, 14 rule\(s\)", capsys.readouterr().out)
    bad = tmp_path / "r.yaml"
    bad.write_text("id: T001\nname: t\nwhen: kind == alloc\nexamples:\n  - {name: nope, expect: 0, trace: ['alloc 0x1 1']}\n")
    assert main(["rules", "test", "--no-builtin", "--no-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL T001 t :: nope" in out and "expected 0 finding(s), got 1" in out


def test_rules_doc(capsys, tmp_path):
    assert main(["rules", "doc", *RULES]) == 0
    out = capsys.readouterr().out
    assert "## HL003 unbounded-heap-growth" in out and "| `min_slope` | float | `256.0` |" in out
    target = tmp_path / "lang.md"
    assert main(["rules", "doc", "--language", "-o", str(target), "--no-builtin", "--no-config"]) == 0
    assert "| `stack_has(pattern: string|list[string]) -> bool` |".replace("|l", "\\|l") in target.read_text()


def test_language_reference_in_docs_is_current():
    from heaplint.rules.docgen import BEGIN, END, language_reference

    doc = (ROOT / "docs" / "rule-language.md").read_text()
    assert BEGIN in doc and END in doc, "docs/rule-language.md lacks the generated section"
    current = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == language_reference().strip(), \
        "regenerate with: heaplint rules doc --language and paste between the markers"


# --- hostile rule files --------------------------------------------------------
HOSTILE_FILES = sorted(p.name for p in HOSTILE.glob("*.yaml"))


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_rule_file(name, capsys):
    path = HOSTILE / name
    start = time.perf_counter()
    code = main(["rules", "check", "--no-builtin", "--no-config", str(path)])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2
    first = err.splitlines()[0]
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: HLR0\d\d ", first), first
    assert "^" in err.splitlines()[2]
    assert elapsed < 1.0, f"{name} took {elapsed:.2f}s"


def test_huge_rule_file(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# padding\n" * (1 << 20))  # 10 MiB
    start = time.perf_counter()
    assert main(["rules", "check", "--no-builtin", "--no-config", str(path)]) == 2
    assert time.perf_counter() - start < 1.0
    assert re.match(rf"{re.escape(str(path))}:1:1: HLR012 file is 10,485,760 bytes", capsys.readouterr().err)


def test_hostile_file_through_the_real_entry_point(tmp_path):
    marker = tmp_path / "pwned"
    rule = tmp_path / "evil.yaml"
    rule.write_text(f"id: E001\nname: evil\nwhen: !!python/object/apply:os.system ['touch {marker}']\n")
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "-m", "heaplint.engine", "rules", "check", "--no-builtin", "--no-config",
                           str(rule)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and not marker.exists()
    assert f"{rule}:3:7: HLR011" in proc.stderr and "Traceback" not in proc.stderr
