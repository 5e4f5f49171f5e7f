"""Zip archives: one trace member is opened transparently, even beside a log."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from heaplint.engine.cli import main
from heaplint.engine.readers import open_trace

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "etl"
TRACE = (
    '{"format":"heaplint-trace","version":1,"time_unit":"ns"}\n'
    '{"kind":"alloc","time":1,"pid":4,"heap":"0x10","address":"0x1000","size":16}\n'
)


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_trace_beside_a_log_is_picked(tmp_path):
    z = _zip(tmp_path / "t.zip", {"notes/LogFile.txt": "not a trace", "run.jsonl": TRACE})
    reader, trace_input = open_trace(str(z))
    with trace_input:
        events = list(reader.events())
    assert [(e.pid, e.address, e.size) for e in events] == [(4, 0x1000, 16)]


def test_two_traces_are_ambiguous(tmp_path, capsys):
    z = _zip(tmp_path / "t.zip", {"a.jsonl": TRACE, "b.jsonl": TRACE})
    assert main(["stats", str(z)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{z}: a zip archive must hold exactly one trace file")
    assert "a.jsonl, b.jsonl" in err and "Traceback" not in err


def test_perfview_sample_zip_with_logfile():
    sample = SAMPLES / "net.4.5.2.x64.etl.zip"
    if not sample.exists():
        pytest.skip(f"{sample} is absent (../shared/samples is not beside the project)")
    with zipfile.ZipFile(sample) as zf:
        assert len(zf.namelist()) > 1, "the sample is expected to carry a log file beside the trace"
    reader, trace_input = open_trace(str(sample))
    with trace_input:
        assert reader.name == "etl"
        list(reader.events())
