"""emit_reports: --format/--output pairing, exit codes, atomic writes, CI integration."""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os

import pytest

from heaplint.engine.commands.report_options import add_report_arguments, emit_reports, resolve_reports, use_color
from heaplint.engine.errors import HeaplintError, UsageError
from heaplint.engine.findings import Severity
from heaplint.engine.reports import FORMATS
from heaplint.engine.reports.base import Formatter
from report_sample import sample_result

TODAY = datetime.date(2025, 6, 1)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heaplint check")
    add_report_arguments(parser)
    return parser.parse_args(list(argv))


def emit(result, *argv, env=None):
    stderr = io.StringIO()
    args = parse(*argv)
    code = emit_reports(result, args, env=env or {}, stderr=stderr, today=TODAY)
    return code, stderr.getvalue()


def only(*severities: Severity):
    result = sample_result()
    for t in result.traces:
        t.findings = [f for f in t.findings if f.severity in severities]
    return result


# ---------------------------------------------------------------- exit codes

EVERYTHING = (Severity.ERROR, Severity.WARNING, Severity.NOTE)


@pytest.mark.parametrize(
    "present, fail_on, exit_zero, expected",
    [
        (EVERYTHING, "error", False, 1),
        (EVERYTHING, "note", False, 1),
        (EVERYTHING, "never", False, 0),
        (EVERYTHING, "error", True, 0),
        ((Severity.WARNING, Severity.NOTE), "error", False, 0),
        ((Severity.WARNING, Severity.NOTE), "warning", False, 1),
        ((Severity.WARNING, Severity.NOTE), "warning", True, 0),
        ((Severity.NOTE,), "warning", False, 0),
        ((Severity.NOTE,), "note", False, 1),
        ((), "note", False, 0),
    ],
)
def test_exit_code_matrix(tmp_path, present, fail_on, exit_zero, expected):
    argv = ["--fail-on", fail_on, "-o", str(tmp_path / "r.txt")] + (["--exit-zero"] if exit_zero else [])
    code, _ = emit(only(*present), *argv)
    assert code == expected


@pytest.mark.parametrize("fail_on", ["note", "error", "never"])
@pytest.mark.parametrize("exit_zero", [False, True])
def test_errors_exit_2_whatever_fail_on_and_exit_zero_say(tmp_path, fail_on, exit_zero):
    result = only()
    result.errors.append("traces/bad.etl: truncated at byte 4096")
    argv = ["--fail-on", fail_on, "-o", str(tmp_path / "r.txt")] + (["--exit-zero"] if exit_zero else [])
    code, stderr = emit(result, *argv)
    assert code == 2
    assert "heaplint: error: traces/bad.etl: truncated at byte 4096" in stderr


def test_expired_suppression_is_exit_2_only_with_fail_on_expired(tmp_path):
    sup = tmp_path / "sup.yaml"
    sup.write_text("suppressions:\n  - rule: HL001\n    reason: old\n    expires: 2025-01-01\n")
    out = str(tmp_path / "r.json")
    code, stderr = emit(only(Severity.NOTE), "--format", "json", "-o", out, "--suppressions", str(sup))
    assert code == 0 and "suppression expired on 2025-01-01" in stderr
    code, _ = emit(only(Severity.NOTE), "--format", "json", "-o", out, "--suppressions", str(sup), "--fail-on-expired")
    assert code == 2
    assert json.loads(open(out).read())["errors"][0].endswith("no longer applies (old)")
    code, stderr = emit(only(Severity.NOTE), "-q", "--format", "json", "-o", out, "--suppressions", str(sup))
    assert code == 0 and stderr == ""  # --quiet silences warnings


def test_baseline_option_reports_only_new(tmp_path):
    from heaplint.engine.baseline import render_baseline

    base = tmp_path / "b.json"
    base.write_bytes(render_baseline(sample_result()))
    code, _ = emit(sample_result(), "--baseline", str(base), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert code == 0
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["baseline_unchanged"] == 5


def test_bad_suppressions_file_raises_located_errors(tmp_path):
    sup = tmp_path / "sup.yaml"
    sup.write_text("suppressions:\n  - reason: no pattern\n")
    with pytest.raises(HeaplintError) as err:  # the CLI prints it and exits 2
        emit(sample_result(), "--suppressions", str(sup), "-o", str(tmp_path / "r.txt"))
    assert f"{sup}:2:5:" in str(err.value)


# ---------------------------------------------------------------- pairing


def test_formats_pair_with_the_output_after_them():
    args = parse("--format", "sarif", "--output", "x.sarif", "--format", "json", "-o", "x.json", "--format", "text")
    assert resolve_reports(args, {}) == [("sarif", "x.sarif"), ("json", "x.json"), ("text", "-")]
    assert resolve_reports(parse("-o", "r.txt"), {}) == [("text", "r.txt")]
    assert resolve_reports(parse(), {}) == [("text", "-")]


def test_github_is_the_default_under_github_actions():
    env = {"GITHUB_ACTIONS": "true"}
    assert resolve_reports(parse(), env) == [("github", "-")]
    assert resolve_reports(parse("--format", "text"), env) == [("text", "-")]
    assert resolve_reports(parse(), {"GITHUB_ACTIONS": "false"}) == [("text", "-")]


def test_pairing_mistakes_are_usage_errors(capsys):
    with pytest.raises(UsageError, match="json and sarif reports would both go to stdout"):
        resolve_reports(parse("--format", "json", "--format", "sarif"), {})
    with pytest.raises(UsageError, match="json and sarif reports would both be written to same"):
        resolve_reports(parse("--format", "json", "-o", "same", "--format", "sarif", "-o", "same"), {})
    with pytest.raises(SystemExit):
        parse("--format", "json", "-o", "a", "-o", "b")
    assert "a second output for json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--format", "sarf")
    assert "unknown format 'sarf'; known: text, json, sarif, junit, github, html" in capsys.readouterr().err


# ---------------------------------------------------------------- writing


def test_every_report_is_written(tmp_path):
    argv = []
    for name in FORMATS:
        argv += ["--format", name, "-o", str(tmp_path / f"r.{name}")]
    code, _ = emit(sample_result(), *argv)
    assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"r.{n}" for n in FORMATS)
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"


def test_stdout_report(capfdbinary):
    code, _ = emit(sample_result(), "--format", "json")
    assert code == 1
    assert json.loads(capfdbinary.readouterr().out)["heaplint_report"] == 1


class _Broken(Formatter):
    name = "broken"

    def render(self, result, options):
        raise RuntimeError("formatter bug")


def test_a_failing_formatter_leaves_existing_outputs_untouched(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "broken", _Broken)
    good, bad = tmp_path / "good.json", tmp_path / "bad.out"
    good.write_text("old good")
    bad.write_text("old bad")
    with pytest.raises(RuntimeError, match="formatter bug"):
        emit(sample_result(), "--format", "json", "-o", str(good), "--format", "broken", "-o", str(bad))
    assert good.read_text() == "old good" and bad.read_text() == "old bad"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.out", "good.json"]  # no temporary files left


def test_output_into_a_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        emit(sample_result(), "--format", "json", "-o", str(tmp_path / "no" / "r.json"))


def test_github_job_summary_is_appended(tmp_path, capfdbinary):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    code, _ = emit(sample_result(), env=env)
    assert code == 1
    out = capfdbinary.readouterr().out.decode()
    assert out.startswith("::error file=traces/app.etl,title=HL001 leak-at-exit::")
    text = summary.read_text()
    assert text.startswith("# earlier step\n## heaplint failed: 5 findings in 2 traces")


def test_timestamps_only_with_the_option(tmp_path):
    out = tmp_path / "r.json"
    emit(sample_result(), "--format", "json", "-o", str(out))
    assert json.loads(out.read_text())["generated_at"] is None
    emit(sample_result(), "--format", "json", "-o", str(out), "--timestamps")
    assert json.loads(out.read_text())["generated_at"].endswith("Z")


# ---------------------------------------------------------------- colour


def test_colour_follows_terminal_no_color_and_the_option():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert tty.isatty()
            assert use_color("auto", "-", {}, tty) is True
            assert use_color("auto", "-", {"NO_COLOR": "1"}, tty) is False
            assert use_color("auto", "-", {"NO_COLOR": ""}, tty) is True  # empty means unset (no-color.org)
            assert use_color("auto", "-", {"TERM": "dumb"}, tty) is False
            assert use_color("auto", "report.txt", {}, tty) is False
            assert use_color("never", "-", {}, tty) is False
        assert use_color("auto", "-", {}, io.StringIO()) is False
        assert use_color("always", "-", {"NO_COLOR": "1"}, io.StringIO()) is True
    finally:
        os.close(master)
        os.close(slave)
