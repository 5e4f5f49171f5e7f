"""docs/trace-format.md's examples are real traces: read them, so the page
cannot drift from the readers."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from canonical_support import ROOT, facts_of, read_all, without_lines
from heaplint.engine.readers.canonical_format import CSV_COLUMNS

DOC = ROOT / "docs" / "trace-format.md"


def blocks() -> list[str]:
    """The fenced code blocks of the page, indented ones (in lists) dedented."""
    found = re.findall(r"^( *)```[a-z]*\n(.*?)^\1```$", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def block(starting: str, nth: int = 0) -> str:
    found = [b for b in blocks() if b.startswith(starting)]
    assert len(found) > nth, f"no example starting with {starting!r} in {DOC}"
    return found[nth]


def test_the_json_and_csv_examples_are_the_same_trace(tmp_path: Path) -> None:
    jsonl = tmp_path / "doc.jsonl"
    jsonl.write_text(block('{"format"'))
    csv = tmp_path / "doc.csv"
    csv.write_text(block("kind,time,pid,tid,heap", 1))
    j_events, j_info, j_stacks = read_all(str(jsonl))
    c_events, c_info, c_stacks = read_all(str(csv))
    assert len(j_events) == 7
    assert without_lines(j_events) == without_lines(c_events)
    assert j_stacks == c_stacks == {1: ("ntdll!RtlAllocateHeap+0x5a", "app!Cache::insert+0x1f", "app!main+0x88")}
    assert facts_of(j_info) == facts_of(c_info)
    assert j_events[2].time == 15_500  # 15.5 us


def test_the_column_row_is_the_one_written() -> None:
    assert block("kind,time").strip() == ",".join(CSV_COLUMNS)


def test_the_hand_written_csv_reads(tmp_path: Path) -> None:
    path = tmp_path / "hand.csv"
    path.write_text(block("kind,time,pid,heap,address,size,facts"))
    events, _, _ = read_all(str(path))
    assert [(e.time, e.address) for e in events] == [(1_000_000, 0x20000), (2_000_000, 0x21000), (3_000_000, 0x20000)]


@pytest.mark.parametrize("starting", ['{"kind": "stack"', '{"kind": "facts"'])
def test_record_examples_are_valid(tmp_path: Path, starting: str) -> None:
    path = tmp_path / "one.jsonl"
    header = {"format": "heaplint-trace", "version": 1, "time_unit": "us"}
    path.write_text(json.dumps(header) + "\n" + block(starting))
    events, info, stacks = read_all(str(path))
    assert events == []
    assert stacks or info.events_lost == 12
