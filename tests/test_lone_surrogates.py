"""A JSON trace may spell a lone UTF-16 surrogate (``"\\ud800"``) in an image
name or a stack frame: valid JSON, but not encodable as UTF-8.  Found by
fuzzing: fingerprints, the stats text and ``convert`` raised
UnicodeEncodeError (exit 3).  Reports show such characters as ``\\ud800``;
``convert`` to JSON Lines writes the same escape back."""

from __future__ import annotations

import pytest

from heaplint.engine.cli import main
from heaplint.engine.readers import open_trace

HEADER = '{"format":"heaplint-trace","version":1,"time_unit":"ns","processes":[{"pid":1,"image":"a\\ud800.exe"}]}'
RECORDS = [
    '{"kind":"stack","id":1,"frames":["m\\udfff!f+0x1"]}',
    '{"kind":"process_start","time":0,"pid":1,"image":"a\\ud800.exe"}',
    '{"kind":"alloc","time":10,"pid":1,"heap":"0x10","address":"0x1000","size":16,"stack":1}',
    '{"kind":"free","time":20,"pid":1,"heap":"0x10","address":"0x1000"}',
    '{"kind":"free","time":30,"pid":1,"heap":"0x10","address":"0x1000"}',
    '{"kind":"process_end","time":40,"pid":1}',
]


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([HEADER, *RECORDS]) + "\n", encoding="ascii")
    return path


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github", "html"])
def test_reports_show_the_escape(trace, tmp_path, capsys, fmt):
    out = tmp_path / f"report.{fmt}"
    assert main(["check", "-q", "--format", fmt, "-o", str(out), str(trace)]) == 1  # the double free
    assert "Traceback" not in capsys.readouterr().err
    text = out.read_bytes().decode("utf-8")  # well-formed UTF-8
    assert fmt == "junit" or "ud800" in text  # junit names rules and traces, not images


def test_stats_baseline_and_jobs(trace, tmp_path, capsys):
    assert main(["stats", str(trace)]) == 0
    assert "a\\ud800.exe" in capsys.readouterr().out
    assert main(["baseline", "create", str(trace), "-o", str(tmp_path / "b.json")]) == 0
    assert main(["check", "-q", "--baseline", str(tmp_path / "b.json"), str(trace)]) == 0


@pytest.mark.parametrize("name", ["c.jsonl", "c.csv"])
def test_convert_keeps_the_character(trace, tmp_path, name):
    out = tmp_path / name
    assert main(["convert", str(trace), "-o", str(out)]) == 0
    reader, trace_input = open_trace(str(out))
    with trace_input:
        images = {e.image for e in reader.events() if e.image}
    # JSON Lines: the escape reads back as the same character; CSV holds the escape as text
    assert images == ({"a\ud800.exe"} if name.endswith(".jsonl") else {"a\\ud800.exe"})
