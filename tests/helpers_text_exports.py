"""Writers and replay helpers for the xperf-dump and WPA-CSV reader tests.

The writers produce text in the shapes documented in docs/text-exports.md
(right-aligned event names and space-padded values for xperf, like real
``xperf -a dumper`` output; plain CSV for WPA) so that tests can generate
inputs with any column order.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

import pytest

from heaplint.engine.cli import main as cli_main
from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent
from heaplint.engine.readers import open_trace
from heaplint.engine.readers.base import ReaderOptions, TraceReader
from heaplint.engine.replay import Replay, ReplayOptions
from heaplint.engine.state import HeapState, ProcessState

DATA = Path(__file__).parent / "data_text_exports"


def xperf_text(headers: Sequence[Sequence[str]], rows: Iterable[Sequence[str]], *, markers: bool = True) -> str:
    """A dump: ``headers`` are ``[event, label, ...]``, ``rows`` ``[event, value, ...]``."""
    out: list[str] = []
    if markers:
        out.append("BeginHeader")
    for h in headers:
        out.append(", ".join([f"{h[0]:>20}"] + [f"{x:>12}" for x in h[1:]]))
    if markers:
        out.append("EndHeader")
    for r in rows:
        out.append(", ".join([f"{r[0]:>20}"] + [f"{x:>12}" for x in r[1:]]))
    return "\n".join(out) + "\n"


def wpa_text(labels: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A CSV export with header ``labels``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(labels)
    w.writerows(rows)
    return buf.getvalue()


def read_events(path: str | Path, input_format: str | None = None) -> tuple[list[HeapEvent], TraceReader]:
    """Every event of a trace file, and the reader (for info and stacks)."""
    reader, trace_input = open_trace(str(path), input_format)
    with trace_input:
        return list(reader.events()), reader


def bad_records_read(path: str | Path) -> tuple[TraceError, list[HeapEvent], int]:
    """A trace with bad records, read twice: the error a plain read raises,
    then the events and the bad-record count with ``--skip-bad-records``."""
    with pytest.raises(TraceError) as exc:
        read_events(path)
    reader, trace_input = open_trace(str(path), None, ReaderOptions(skip_bad_records=True))
    with trace_input:
        events = list(reader.events())
    return exc.value, events, reader.info.bad_records


def replay(events: Iterable[HeapEvent], **options) -> tuple[HeapState, dict[int, dict[tuple[int, int], int]]]:
    """Replay ``events``; also return, per pid, the live blocks ``{(heap, address): size}``
    seen by the end hook (at a process end, or at the end of the trace)."""
    at_end: dict[int, dict[tuple[int, int], int]] = {}

    def hook(proc: ProcessState, _time: int) -> None:
        at_end[proc.pid] = {(h.handle, a): b.size for h in proc.heaps.values() for a, b in h.blocks.items()}

    rp = Replay(ReplayOptions(**options), on_process_end=hook)
    state = rp.run(events)
    return state, at_end


def cli(args: Sequence[str]) -> int:
    """Run the real ``heaplint`` entry point in-process; returns the exit code."""
    return cli_main(list(args))
