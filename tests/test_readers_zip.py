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


def _corrupt_zips(tmp_path: Path) -> list[Path]:
    """A deflated member whose first bytes are garbage (fails while sniffing)
    and a stored member with one changed byte (fails only its CRC at the end)."""
    big = TRACE + "".join(
        f'{{"kind":"alloc","time":{i},"pid":4,"heap":"0x10","address":"{0x2000 + 16 * i:#x}","size":16}}\n'
        for i in range(2, 400)
    )
    out = []
    for name, compression, corrupt in (("deflated", zipfile.ZIP_DEFLATED, lambda b: b.find(b"t.jsonl") + 40),
                                       ("stored", zipfile.ZIP_STORED, lambda b: b.find(b"0x2100") + 5)):  # fmt: skip
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            zf.writestr("t.jsonl", big)
        raw = bytearray(path.read_bytes())
        raw[corrupt(raw)] ^= 0x01  # stored: "0x2100" -> "0x2101", still a valid record
        path.write_bytes(bytes(raw))
        out.append(path)
    return out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_corrupt_zip_member_is_a_trace_error(tmp_path, capsys, jobs):
    # found by fuzzing: zlib.error while sniffing and BadZipFile (bad CRC-32)
    # at the member's end escaped as tracebacks (exit 3)
    for z in _corrupt_zips(tmp_path):
        assert main(["check", "-q", "--jobs", jobs, str(z)]) == 2, z
        err = capsys.readouterr().err
        assert "Traceback" not in err and "truncated or corrupt compressed data" in err, err


def test_corrupt_gzip_is_a_trace_error_while_sniffing(tmp_path, capsys):
    import gzip

    raw = bytearray(gzip.compress(TRACE.encode() * 20))
    raw[12] ^= 0xFF  # inside the first deflate block: fails on the first read
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(bytes(raw))
    assert main(["stats", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: truncated or corrupt compressed data") and "Traceback" not in err
