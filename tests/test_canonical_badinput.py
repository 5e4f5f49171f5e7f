"""Bad input through the real command line: exit code 2, ``path:line: reason``
on stderr, no traceback; ``--skip-bad-records`` skips, counts and reports."""

from __future__ import annotations

import gzip
import json
import random
import re
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from canonical_support import HEADER, run_cli
from heaplint.engine.cli import main
from heaplint.engine.events import HeapEvent, Kind, TraceInfo
from heaplint.engine.readers import guarded_events, open_trace
from heaplint.engine.readers.base import ReaderOptions
from heaplint.engine.readers.canonical_format import MAX_LINE_BYTES
from heaplint.engine.writers import write_trace

GOOD = b'{"kind":"alloc","time":1,"pid":1,"heap":"0x10","address":"0x1000","size":16}\n'
CSV_HEAD = (
    "kind,time,pid,tid,heap,address,size,source,facts\n"
    'header,,,,,,,,"{""format"":""heaplint-trace"",""version"":1,""time_unit"":""ns""}"\n'
).encode()
BIG = 10 * 1024 * 1024


def rec(**fields) -> bytes:
    base = {"kind": "alloc", "time": 1, "pid": 1, "heap": "0x10", "address": "0x1000", "size": 16}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode() + b"\n"


def garbage(n: int = 4096) -> bytes:
    data = bytearray(random.Random(7).randbytes(n))
    data[0] = 0  # neither '{', 'kind', gzip nor zip magic
    return bytes(data)


def big_line_file(path: Path, prefix: bytes) -> None:
    """prefix + a 10 MB JSON line + a good record, written in chunks."""
    with open(path, "wb") as f:
        f.write(prefix + b'{"kind":"alloc","pad":"')
        chunk = b"a" * (1024 * 1024)
        for _ in range(BIG // len(chunk)):
            f.write(chunk)
        f.write(b'"}\n' + GOOD)


def truncated_gzip(path: Path) -> None:
    events = [HeapEvent(int(Kind.ALLOC), i, 1, heap=16, address=4096 + 32 * i, size=16) for i in range(20_000)]
    full = path.with_suffix(".full")
    write_trace(str(full), events, TraceInfo(path="x", format="jsonl"), fmt="jsonl")
    # random-looking content so that the compressed file is large enough to cut
    data = gzip.compress(full.read_bytes(), compresslevel=1)
    path.write_bytes(data[: len(data) // 2])
    full.unlink()


def corrupt_gzip(path: Path) -> None:
    data = bytearray(gzip.compress(HEADER + GOOD * 5000))
    data[-8] ^= 0xFF  # the CRC of the content: found only at the end
    path.write_bytes(bytes(data))


#: (case id, file name, content or builder, expected line, message fragment)
CASES: list[tuple[str, str, bytes | Callable[[Path], None], int, str]] = [
    ("empty", "t.jsonl", b"", 1, "empty file: no trace records"),
    ("blank", "t.jsonl", b"\n \n", 1, "empty file"),
    ("unknown-format", "t.txt", b"hello, world\nthis is no trace\n", 1, "unrecognised trace format; supported formats: "),
    ("binary-garbage", "t.jsonl", garbage(), 1, "unrecognised trace format; supported formats: "),
    ("garbage-after-header", "t.jsonl", HEADER + garbage() + b"\n", 2, "not "),
    ("truncated-gzip", "t.jsonl.gz", truncated_gzip, 0, "truncated or corrupt compressed data"),
    ("corrupt-gzip", "t.jsonl.gz", corrupt_gzip, 0, "truncated or corrupt compressed data"),
    ("10MB-line", "t.jsonl", lambda p: big_line_file(p, HEADER), 2,
     "line too long: longer than 1,048,576 bytes (1 MiB)"),
    ("10MB-first-line", "t.jsonl", lambda p: big_line_file(p, b""), 1, "line too long"),
    ("negative-size", "t.jsonl", HEADER + GOOD + rec(size=-5), 3,
     "alloc record: field 'size': expected a non-negative integer, got -5"),
    ("string-size", "t.jsonl", HEADER + rec(size="16"), 2,
     "alloc record: field 'size': expected a non-negative integer, got \"16\""),
    ("float-size", "t.jsonl", HEADER + rec(kind="realloc", new_address="0x1", old_address="0x2", new_size=1.5), 2,
     "realloc record: field 'new_size': expected a non-negative integer, got 1.5"),
    ("non-numeric-time", "t.jsonl", HEADER + rec(time="noon"), 2,
     "alloc record: field 'time': expected a number (in the header's time_unit), got \"noon\""),
    ("unknown-kind", "t.jsonl", HEADER + rec(kind="malloc"), 2,
     'unknown record kind "malloc"; known kinds: create, alloc, realloc, free, destroy, process_start, '
     "process_end, stack, facts"),
    ("no-kind", "t.jsonl", HEADER + b'{"time":1}\n', 2, "record without a 'kind' field"),
    ("unsupported-version", "t.jsonl", b'{"format":"heaplint-trace","version":2,"time_unit":"ns"}\n' + GOOD, 1,
     "unsupported heaplint-trace format version 2; this heaplint reads version 1"),
    ("no-header", "t.jsonl", GOOD, 1, 'expected the header object {"format": "heaplint-trace"'),
    ("bad-time-unit", "t.jsonl", b'{"format":"heaplint-trace","version":1,"time_unit":"min"}\n', 1,
     "header: 'time_unit': expected one of ns, 100ns, us, ms, s, got \"min\""),
    ("bad-header-fact", "t.jsonl", b'{"format":"heaplint-trace","version":1,"time_unit":"ns","pointer_size":6}\n', 1,
     "'pointer_size': expected 4 or 8, got 6"),
    ("missing-field", "t.jsonl", HEADER + rec(size=...), 2,
     "alloc record: missing required field 'size' (a non-negative integer)"),
    ("missing-pid", "t.jsonl", HEADER + rec(pid=...), 2, "alloc record: missing required field 'pid'"),
    ("bad-hex", "t.jsonl", HEADER + rec(address="0xzz"), 2,
     "alloc record: field 'address': expected a hex string like \"0x7ff0\" or a non-negative integer, got \"0xzz\""),
    ("negative-address", "t.jsonl", HEADER + rec(kind="free", address=-1), 2, "free record: field 'address'"),
    ("bad-source", "t.jsonl", HEADER + rec(source="HEAP"), 2,
     "alloc record: field 'source': expected one of LOOKASIDE, LFH, MAINPATH, SLOWPATH, INVALID, SEGMENT or a "
     "number 0-6, got \"HEAP\""),
    ("not-an-object", "t.jsonl", HEADER + b"[1,2]\n", 2, "expected a JSON object per line, got list"),
    ("5000-digits", "t.jsonl", HEADER + b'{"kind": "alloc", "size": ' + b"9" * 5000 + b"}\n", 2,
     "not a valid JSON object: a number of more than 4300 digits"),
    ("broken-json", "t.jsonl", HEADER + b'{"kind": "alloc",\n', 2, "not a valid JSON object"),
    # a tab inside a string: json's own text ("... at") must not end the message mid-sentence
    ("control-char", "t.jsonl", HEADER + b'{"kind": "al\tloc"}\n', 2,
     "not a valid JSON object: Invalid control character\n"),
    ("csv-negative-size", "t.csv", CSV_HEAD + b"alloc,1,1,0,0x10,0x1000,-5,LFH,\n", 3,
     "alloc record: field 'size': expected a non-negative integer, got \"-5\""),
    ("csv-unknown-kind", "t.csv", CSV_HEAD + b"malloc,1,1,0,0x10,0x1000,5,,\n", 3, 'unknown record kind "malloc"'),
    ("csv-bad-version", "t.csv", CSV_HEAD.replace(b'""version"":1', b'""version"":7'), 2,
     "unsupported heaplint-trace format version 7"),
    ("csv-10MB-line", "t.csv", lambda p: big_line_file(p, CSV_HEAD), 3, "line too long"),
]  # fmt: skip


def _build(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("command", ["stats", "convert"])
@pytest.mark.parametrize(("name", "content", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_located_error(tmp_path: Path, capsys, command, name, content, line, fragment) -> None:
    path = _build(tmp_path, name, content)
    out = tmp_path / "out.jsonl"
    args = [command, str(path)] + (["-o", str(out)] if command == "convert" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # where a compressed stream breaks depends on zlib's buffering: any line then
    where = str(line) if line else r"\d+"
    assert re.match(rf"{re.escape(str(path))}:{where}(:\d+)?: ", err), err
    assert fragment in err
    if "supported formats" in fragment:  # other readers may be listed too
        assert re.search(r"supported formats: .*\bjsonl\b.*\bcsv\b", err), err
    assert not out.exists()  # convert leaves nothing half-written


def test_bad_input_through_a_subprocess(tmp_path: Path) -> None:
    path = _build(tmp_path, "t.jsonl", HEADER + rec(size=-5))
    done = run_cli("stats", str(path))
    assert done.returncode == 2
    assert done.stderr.decode() == f"{path}:2: alloc record: field 'size': expected a non-negative integer, got -5\n"


def test_skip_bad_records_skips_counts_and_reports(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.jsonl"
    big_line_file(path, HEADER + GOOD + rec(size=-5) + rec(kind="malloc") + b"not json\n" + rec(address="0xzz") + GOOD)
    # 5 bad lines (including the 10 MB one) and 3 good records, the last after the long line
    assert main(["stats", "--skip-bad-records", "--format", "json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)["traces"][0]
    assert doc["quality"]["bad_records"] == 5
    assert doc["events"] == 3
    assert main(["stats", "--skip-bad-records", str(path)]) == 0
    assert "5 malformed records skipped" in capsys.readouterr().out
    out = tmp_path / "clean.jsonl"
    assert main(["convert", "--skip-bad-records", str(path), "-o", str(out)]) == 0
    assert "skipped 5 malformed record(s)" in capsys.readouterr().err
    assert out.read_bytes().count(b"\n") == 4


def test_header_problems_are_fatal_even_when_skipping(tmp_path: Path, capsys) -> None:
    path = _build(tmp_path, "t.jsonl", b'{"format":"heaplint-trace","version":2,"time_unit":"ns"}\n' + GOOD)
    assert main(["stats", "--skip-bad-records", str(path)]) == 2
    assert "unsupported heaplint-trace format version 2" in capsys.readouterr().err


def test_a_long_line_is_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    big_line_file(path, HEADER)
    tracemalloc.start()
    try:
        reader, trace_input = open_trace(str(path), options=ReaderOptions(skip_bad_records=True))
        with trace_input:
            events = list(guarded_events(reader))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(events) == 1 and reader.info.bad_records == 1
    assert peak < 3 * MAX_LINE_BYTES  # the 10 MB line would need 10x that
