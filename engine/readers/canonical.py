"""Readers of the canonical heaplint trace format: JSON Lines and CSV.

Both stream line by line with a hard cap on line length
(:data:`~heaplint.engine.readers.canonical_format.MAX_LINE_BYTES`), so neither
a huge trace nor a pathological single line is ever held in memory.  The
header is read when the reader is created, so ``reader.info`` carries the
header's trace facts before the first event; a ``facts`` trailer updates it
while events are read.  Gzip and stdin are undone by ``TraceInput`` before a
reader sees the bytes.
"""

from __future__ import annotations

import csv
import json
from functools import partial
from typing import BinaryIO, Iterator

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent
from heaplint.engine.readers.base import (
    COMPRESSION_ERRORS,
    ReaderOptions,
    TraceReader,
    compressed_data_error,
    value_error_text,
)
from heaplint.engine.readers.canonical_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_LINE_BYTES,
    BadRecord,
    apply_facts,
    parse_header,
)
from heaplint.engine.readers.canonical_records import RecordDecoder

_BOM = b"\xef\xbb\xbf"
_MIB = MAX_LINE_BYTES / (1024 * 1024)
_SKIP_CHUNK = 64 * 1024


def _json_error(err: Exception) -> tuple[str, int | None]:
    """A message (and column) for a line that is not JSON."""
    if isinstance(err, json.JSONDecodeError):
        # json's own text for some errors ends in " at", meant to be followed by
        # the position, which the caller reports as the column
        msg = err.msg[:-3] if err.msg.endswith(" at") else err.msg
        return f"not a valid JSON object: {msg}", err.pos + 1
    if isinstance(err, UnicodeDecodeError):
        return f"not valid UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start})", None
    if isinstance(err, RecursionError):
        return "not a valid record: JSON nested too deeply", None
    return f"not a valid JSON object: {value_error_text(err)}", None


class _CanonicalReader(TraceReader):
    """Shared line handling: the length cap, compression errors, the header."""

    index_is_position = True

    def __init__(self, stream: BinaryIO, path: str, options: ReaderOptions | None = None) -> None:
        super().__init__(stream, path, options)
        self.info.format_version = FORMAT_VERSION
        #: the physical line number of the last line read
        self.line = 0
        try:
            mult = self._read_header()
        except COMPRESSION_ERRORS as err:
            raise compressed_data_error(path, err, self.line + 1) from err
        self.decoder = RecordDecoder(self.info, self.stacks, mult, text=self.name == "csv")

    def _read_header(self) -> int:
        raise NotImplementedError

    def _apply_header(self, obj: object) -> int:
        """Take the trace facts of the header object; its time unit's ns multiplier."""
        try:
            mult, facts = parse_header(obj)
        except BadRecord as err:
            raise TraceError(str(err), path=self.path, line=self.line) from None
        apply_facts(self.info, facts)
        return mult

    def event_of(self, rec: dict, index: int, line: int) -> HeapEvent | None:
        """The event of a record (None for stack and facts records, and for a
        malformed record when skipping them: it is counted)."""
        try:
            return self.decoder.decode(rec, index, line)
        except BadRecord as err:
            self.bad_record(str(err), line=line)
            return None

    def _header_line(self) -> bytes:
        """The first non-blank line (the header must not be skipped, so every
        problem here is fatal)."""
        while True:
            raw = self.stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                raise TraceError(
                    f"no header: expected a {FORMAT_NAME} header as the first line", path=self.path, line=self.line + 1
                )
            self.line += 1
            if len(raw) > MAX_LINE_BYTES and raw[-1] != 10:
                raise TraceError(self._too_long_message(), path=self.path, line=self.line)
            if self.line == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if raw.strip():
                return raw

    def _too_long_message(self) -> str:
        return (
            f"line too long: longer than {MAX_LINE_BYTES:,} bytes ({_MIB:g} MiB), "
            "the canonical format's line limit"
        )

    def _skip_long_line(self, line: int) -> None:
        """Report an over-long line; when skipping, consume the rest of it in
        bounded chunks so that it is never held whole."""
        self.bad_record(self._too_long_message(), line=line)
        readline = self.stream.readline
        while True:
            chunk = readline(_SKIP_CHUNK)
            if not chunk or chunk[-1] == 10:
                return


class JsonlReader(_CanonicalReader):
    """The canonical format as JSON Lines: a header object, then one object per record."""

    name = "jsonl"
    description = f"{FORMAT_NAME} JSON Lines (docs/trace-format.md)"
    filters_pids = True
    #: False once a record of this partition's processes turned out to say
    #: other than its first bytes (see ``canonical_partition``)
    claims_exact = True

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """JSON Lines content starts with an object; no other format does."""
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        return head.lstrip()[:1] == b"{"

    def _read_header(self) -> int:
        raw = self._header_line()
        try:
            obj = json.loads(raw.decode())
        except (ValueError, RecursionError) as err:
            message, col = _json_error(err)
            raise TraceError(f"header: {message}", path=self.path, line=self.line, col=col) from None
        return self._apply_header(obj)

    def events(self) -> Iterator[HeapEvent]:
        """Yield the events; stack and facts records update ``stacks``/``info``.

        Per line: one bounded ``readline``, one ``json.loads``, one decode call.
        Measured on CPython 3.11 with typical alloc/free records: the decode
        adds about half of what ``json.loads`` itself costs per line.
        With ``options.pids`` set, see
        :func:`heaplint.engine.readers.canonical_partition.partition_events`.
        """
        if self.options.pids is not None:
            from heaplint.engine.readers.canonical_partition import partition_events

            return partition_events(self)
        return self._all_events()

    def record(self, raw: bytes, index: int, line: int) -> HeapEvent | None:
        """The event of one line (None for stack and facts records, blank
        lines, and malformed ones when skipping them)."""
        try:
            rec = json.loads(raw.decode())  # UTF-8 only, and no encoding guesswork
        except (ValueError, RecursionError) as err:
            if raw.strip():
                message, col = _json_error(err)
                self.bad_record(message, line=line, col=col)
            return None
        if type(rec) is not dict:
            self.bad_record(f"expected a JSON object per line, got {type(rec).__name__}", line=line)
            return None
        return self.event_of(rec, index, line)

    def _all_events(self) -> Iterator[HeapEvent]:
        record = self.record
        index = 0
        for raw, line_no in self.lines():
            ev = record(raw, index, line_no)
            if ev is not None:
                index += 1
                yield ev

    def lines(self) -> Iterator[tuple[bytes, int]]:
        """Each line after the header, with its number; an over-long one is
        reported (and skipped when skipping bad records) in bounded chunks."""
        cap = MAX_LINE_BYTES
        line_no = self.line
        try:
            for raw in iter(partial(self.stream.readline, cap + 1), b""):
                line_no += 1
                self.line = line_no
                if len(raw) > cap and raw[-1] != 10:
                    self._skip_long_line(line_no)
                    continue
                yield raw, line_no
        except COMPRESSION_ERRORS as err:
            raise compressed_data_error(self.path, err, line_no + 1) from err


class CsvReader(_CanonicalReader):
    """The canonical format as CSV: a column row, a header row, one row per record."""

    name = "csv"
    description = f"{FORMAT_NAME} CSV (docs/trace-format.md)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """A first line whose first cell is ``kind``."""
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        first = head.split(b"\n", 1)[0]
        cells = first.split(b",")
        return len(cells) > 1 and cells[0].strip(b'" \t') == b"kind"

    def _read_header(self) -> int:
        names = self._row(self._header_line())
        if not names or names[0].strip() != "kind":
            raise TraceError("expected the column row (first column 'kind') as the first line", path=self.path, line=self.line)
        self.columns = [n.strip() for n in names]
        dupes = sorted({n for n in self.columns if self.columns.count(n) > 1})
        if dupes:
            raise TraceError(f"column row: duplicate column(s) {', '.join(dupes)}", path=self.path, line=self.line)
        row = self._row(self._header_line())
        rec = dict(zip(self.columns, row))
        if rec.get("kind") != "header" or not rec.get("facts"):
            raise TraceError(
                "expected the header row after the column row: kind 'header' with the header object "
                f'(for example {{"format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, "time_unit": "ns"}}) '
                "in the 'facts' column",
                path=self.path,
                line=self.line,
            )
        try:
            obj = json.loads(rec["facts"])
        except (ValueError, RecursionError) as err:
            message, _ = _json_error(err)
            raise TraceError(f"header row: column 'facts': {message}", path=self.path, line=self.line) from None
        return self._apply_header(obj)

    def _row(self, raw: bytes) -> list[str]:
        """One header line as CSV cells (header lines must fit on one line)."""
        try:
            text = raw.decode("utf-8")
            return next(csv.reader([text], strict=True), [])
        except UnicodeDecodeError as err:
            raise TraceError(_json_error(err)[0], path=self.path, line=self.line) from None
        except csv.Error as err:
            raise TraceError(f"malformed CSV: {err}", path=self.path, line=self.line) from None

    def _lines(self) -> Iterator[str]:
        """Capped, decoded lines for ``csv.reader``; a bad line becomes a blank
        one after it has been reported (or raised)."""
        readline = self.stream.readline
        cap = MAX_LINE_BYTES
        limit = cap + 1
        while True:
            raw = readline(limit)
            if not raw:
                return
            self.line += 1
            if len(raw) > cap and raw[-1] != 10:
                self._skip_long_line(self.line)
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                self.bad_record(_json_error(err)[0], line=self.line)
                yield "\n"

    def events(self) -> Iterator[HeapEvent]:
        """Yield the events; stack and facts rows update ``stacks``/``info``."""
        names = self.columns
        ncols = len(names)
        rows = csv.reader(self._lines(), strict=True)
        first_line = self.line  # lines consumed by the header
        last = 0
        index = 0
        try:
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except csv.Error as err:
                    self.bad_record(f"malformed CSV: {err}", line=first_line + rows.line_num)
                    last = rows.line_num
                    continue
                start = first_line + last + 1
                last = rows.line_num
                if not row:
                    continue
                if len(row) > ncols:
                    self.bad_record(f"row has {len(row)} cells, but the column row names only {ncols}", line=start)
                    continue
                ev = self.event_of({k: v for k, v in zip(names, row) if v}, index, start)
                if ev is not None:
                    index += 1
                    yield ev
        except COMPRESSION_ERRORS as err:
            raise compressed_data_error(self.path, err, self.line + 1) from err
