"""The trace-format registry: one table, no discovery magic.

``open_trace(path, input_format=None)`` opens a file (or ``-`` for stdin),
undoes gzip / single-member zip compression (by magic bytes, never by file
name), picks the reader by sniffing the content (or by ``input_format``) and
returns a ready :class:`TraceReader` plus the :class:`TraceInput` to close.
"""

from __future__ import annotations

import importlib
from typing import Iterator

from heaplint.engine.errors import TraceError, UsageError
from heaplint.engine.events import HeapEvent
from heaplint.engine.readers.base import (
    COMPRESSION_ERRORS,
    ReaderOptions,
    TraceInput,
    TraceReader,
    compressed_data_error,
    filter_pids,
)

#: format name -> "module:Class".  Sniffing tries them in this order, so the
#: most specific signatures (binary magic) come first.
READERS: dict[str, str] = {
    "etl": "heaplint.engine.readers.etl:EtlReader",
    "jsonl": "heaplint.engine.readers.canonical:JsonlReader",
    "csv": "heaplint.engine.readers.canonical:CsvReader",
    "xperf": "heaplint.engine.readers.xperf:XperfReader",
    "wpa-csv": "heaplint.engine.readers.wpa:WpaCsvReader",
}


def reader_class(name: str) -> type[TraceReader]:
    """The reader class registered as ``name``; a clear error names the known ones."""
    try:
        target = READERS[name]
    except KeyError:
        known = ", ".join(READERS)
        raise UsageError(f"unknown input format '{name}'; known: {known}") from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def available_readers() -> dict[str, type[TraceReader]]:
    """Every registered reader whose module imports (in sniffing order)."""
    found: dict[str, type[TraceReader]] = {}
    for name in READERS:
        try:
            found[name] = reader_class(name)
        except ImportError:  # a format still being built
            continue
    return found


def detect_format(head: bytes, path: str) -> str:
    """Name the format of content starting with ``head``."""
    if not head.strip():
        raise TraceError("empty file: no trace records", path=path, line=1)
    for name, cls in available_readers().items():
        if cls.sniff(head):
            return name
    known = ", ".join(available_readers())
    raise TraceError(
        f"unrecognised trace format; supported formats: {known} "
        "(each optionally gzip-compressed); use --input-format to force one",
        path=path,
        line=1,
    )


def open_trace(
    path: str, input_format: str | None = None, options: ReaderOptions | None = None
) -> tuple[TraceReader, TraceInput]:
    """Open ``path`` and return ``(reader, input)``; close ``input`` when done."""
    if input_format is not None:
        cls = reader_class(input_format)  # fail on a bad name before opening
    trace_input = TraceInput(path)
    try:
        head = trace_input.head()
        if input_format is None:
            cls = reader_class(detect_format(head, path))
        elif not head:
            raise TraceError("empty file: no trace records", path=path)
        reader = cls(trace_input.stream, path, options)
        return reader, trace_input
    except BaseException:
        trace_input.close()
        raise


def guarded_events(reader: TraceReader) -> Iterator[HeapEvent]:
    """``reader.events()`` with decompression failures turned into TraceErrors
    (and ``ReaderOptions.pids`` applied when the reader does not do it)."""
    events = reader.events()
    pids = reader.options.pids
    if pids is not None and not reader.filters_pids:
        events = filter_pids(events, pids, reader.options.pid_stubs)
    try:
        yield from events
    except COMPRESSION_ERRORS as err:
        raise compressed_data_error(reader.path, err) from err


__all__ = [
    "READERS",
    "ReaderOptions",
    "TraceInput",
    "TraceReader",
    "available_readers",
    "detect_format",
    "guarded_events",
    "open_trace",
    "reader_class",
]
