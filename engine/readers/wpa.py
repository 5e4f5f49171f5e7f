"""Reader for CSV exports of WPA's "Heap Allocations" table (wpaexporter or
WPA's own export).

Each row is a *lifetime*, not an event: the allocation's Type says whether it
was allocated inside or outside the exported range and freed inside or
outside it (AIFI, AIFO, AOFI, AOFO).  Rows become events:

====  =====================================================================
AIFI  alloc at AllocTime, free at FreeTime
AIFO  alloc at AllocTime (still live at the end)
AOFI  free at FreeTime (allocated before the trace: the process is marked
      as not start-seen)
AOFO  nothing observable; counted in the trace notes
====  =====================================================================

Columns are found by header name (aliases in ``COLUMNS``).  Times are seconds.

**Order with bounded memory.**  Rows are not events in time order: a row's
free comes long after its allocation.  When the input can be read twice (a
plain file, not a compressed or piped one) a first pass checks that the rows are in AllocTime order and that no
free-only row goes back before the allocations already seen; if so the second
pass streams, allocations in row order and frees from a min-heap released as
the allocation time passes them (memory: the blocks alive at that moment).
Otherwise (unsorted rows, or stdin) every event goes through an external sort
(:class:`~heaplint.engine.readers.spill.ExternalSorter`, at most
``sort_chunk`` events in memory, sorted runs in temporary files).  Both paths
give the same order: by time; at equal times frees of earlier allocations
first, then allocations in row order, each directly followed by its own free
when its lifetime is zero.
"""

from __future__ import annotations

import csv
import io
import heapq
import itertools
from typing import Iterator

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent
from heaplint.engine.readers.base import ReaderOptions, TraceReader
from heaplint.engine.readers.spill import ExternalSorter
from heaplint.engine.readers.tabular import StackInterner, decode_head, describe_missing, find_columns, text_stream
from heaplint.engine.readers.wpa_rows import (
    COLUMNS,
    PROCESS,
    RowDecoder,
    is_wpa_header,
    lifetime_times,
)

_FIELD_LIMIT = 1 << 24  # stacks can make very long cells


def _rewindable(stream) -> bool:
    """Whether ``stream`` is a plain file that can be read a second time.

    Only a buffered :class:`io.FileIO` qualifies: a gzip stream claims to be
    seekable but its rewind needs the compressed file to seek, which the
    input layer's byte counter does not, and a failed rewind would lose data."""
    raw = getattr(stream, "raw", None)
    try:
        return isinstance(raw, io.FileIO) and raw.seekable()
    except (OSError, ValueError):
        return False


class WpaCsvReader(TraceReader):
    """WPA "Heap Allocations" CSV export (see the module docstring)."""

    name = "wpa-csv"
    description = "CSV export of WPA's Heap Allocations table (wpaexporter)"
    #: events held in memory by the external sort before a run is spilled
    sort_chunk = 100_000

    def __init__(self, stream, path: str, options: ReaderOptions | None = None) -> None:
        super().__init__(stream, path, options)
        self.order_mode: str | None = None  # "streamed" or "sorted", once known
        self.max_in_memory = 0  # pending frees (streamed) or buffered events (sorted)
        self.spilled_runs = 0

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """The first row names an allocation-time column and a Type or free-time column."""
        lines = decode_head(head).splitlines()
        for raw in lines[:3]:
            if not raw.strip() or raw.strip().lower().startswith("sep="):
                continue
            try:
                labels = next(csv.reader([raw]))
            except (csv.Error, StopIteration):
                return False
            return is_wpa_header(labels)
        return False

    # --- reading -----------------------------------------------------------
    def events(self) -> Iterator[HeapEvent]:
        """Yield alloc/free events in time order (see the module docstring)."""
        if csv.field_size_limit() < _FIELD_LIMIT:
            csv.field_size_limit(_FIELD_LIMIT)
        stream = self.stream
        start = stream.tell() if _rewindable(stream) else None
        text = text_stream(stream, newline="")
        if start is not None:
            in_order = self._in_order(self._rows(text, None))
            text.detach()  # keep the binary stream open for the second pass
            stream.seek(start)
            text = text_stream(stream, newline="")
        else:
            in_order = False
        decoder = RowDecoder(self, StackInterner(self.stacks))
        rows = self._rows(text, decoder)
        if in_order:
            self.order_mode = "streamed"
            yield from self._streamed(rows, decoder)
        else:
            self.order_mode = "sorted"
            yield from self._sorted(rows, decoder)
        self.info.notes.extend(decoder.notes())
        if self.order_mode == "sorted":
            why = (
                "rows were not in AllocTime order"
                if start is not None
                else "the input could not be read twice (compressed or piped)"
            )
            self.info.notes.append(
                f"{why}: events were sorted in bounded memory ({self.spilled_runs} temporary run(s))"
            )

    def _rows(self, text, decoder: RowDecoder | None) -> Iterator[tuple[int, list[str]]]:
        """``(line, fields)`` of every data row; reads and checks the header first."""
        reader = csv.reader(text)
        line = 0
        header = None
        try:
            for fields in reader:
                row_line, line = line + 1, reader.line_num
                if not fields or not any(f.strip() for f in fields):
                    continue
                if header is None:
                    if fields[0].strip().lower().startswith("sep="):
                        continue
                    header = fields
                    self._header(fields, row_line, decoder)
                    continue
                yield row_line, fields
        except csv.Error as err:
            raise TraceError(f"malformed CSV: {err}", path=self.path, line=line + 1) from err
        if header is None:
            raise TraceError("no header row: the file is empty or holds only blank lines", path=self.path)

    def _header(self, labels: list[str], line: int, decoder: RowDecoder | None) -> None:
        found, missing = find_columns(labels, COLUMNS)
        if "process" not in found and "pid" not in found:
            missing.append(PROCESS)
        if missing:
            raise TraceError(
                describe_missing(missing, [l.strip() for l in labels], "WPA Heap Allocations header row"),
                path=self.path,
                line=line,
            )
        self._cols = found
        if decoder is not None:
            decoder.bind(found, labels, line)

    def _in_order(self, rows: Iterator[tuple[int, list[str]]]) -> bool:
        """First pass: may the rows be streamed?  Stops at the first row that
        proves they may not.  Malformed rows are left for the second pass."""
        first = next(rows, None)  # reads the header, which sets self._cols
        if first is None:
            return True
        cols = self._cols
        type_i, alloc_i, free_i = cols["type"], cols["alloc_time"], cols["free_time"]
        watermark = None
        for _line, fields in itertools.chain((first,), rows):
            try:
                cls, alloc, free = lifetime_times(fields, type_i, alloc_i, free_i)
            except (ValueError, IndexError):
                continue
            if alloc is not None:
                if watermark is not None and alloc < watermark:
                    return False
                watermark = alloc
            elif free is not None and watermark is not None and free < watermark:
                return False
        return True

    def _streamed(self, rows, decoder: RowDecoder) -> Iterator[HeapEvent]:
        pending: list[tuple[int, int, int, HeapEvent]] = []
        push, pop = heapq.heappush, heapq.heappop
        decode = decoder.decode
        seq = 0
        for line, fields in rows:
            out = decode(fields, line)
            if out is None:
                continue
            alloc, free = out
            if alloc is not None:
                t = alloc.time
                while pending and pending[0][0] <= t:
                    yield pop(pending)[3]
                yield alloc
                if free is not None and free.time == t:
                    yield free  # a zero-length lifetime ends right after its own start
                    continue
            if free is not None:
                push(pending, (free.time, 0, seq, free))
                seq += 1
                if len(pending) > self.max_in_memory:
                    self.max_in_memory = len(pending)
        while pending:
            yield pop(pending)[3]

    def _sorted(self, rows, decoder: RowDecoder) -> Iterator[HeapEvent]:
        sorter = ExternalSorter(self.sort_chunk)
        decode = decoder.decode
        seq = 0
        try:
            for line, fields in rows:
                out = decode(fields, line)
                if out is None:
                    continue
                alloc, free = out
                if alloc is not None:
                    sorter.add((alloc.time, 1, seq, 0, tuple(alloc)))
                if free is not None:
                    if alloc is not None and free.time == alloc.time:
                        sorter.add((free.time, 1, seq, 1, tuple(free)))  # right after its own alloc
                    else:
                        sorter.add((free.time, 0, seq, 0, tuple(free)))
                seq += 1
            self.spilled_runs = sorter.runs
            self.max_in_memory = sorter.max_buffered
            make = HeapEvent._make
            for item in sorter.sorted():
                yield make(item[4])
        finally:
            sorter.close()

