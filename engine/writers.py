"""Writing the canonical heaplint trace format (JSON Lines or CSV, optionally gzip).

:class:`CanonicalWriter` encodes records one at a time onto a binary stream;
:func:`write_trace` streams a whole event iterable to a file, atomically.
Records are formatted with precomputed templates rather than ``json.dumps``
per event: every event field is a number, a hex string or a source name, so
only image names and stack frames need JSON (or CSV) escaping.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any, BinaryIO, Iterable

from heaplint.engine.errors import UsageError
from heaplint.engine.events import TIME_UNITS_NS, HeapEvent, Kind, Source, StackTable, TraceInfo
from heaplint.engine.output import atomic_output
from heaplint.engine.readers.canonical_format import CSV_COLUMNS, FORMAT_NAME, FORMAT_VERSION, facts_object

FORMATS = ("jsonl", "csv")

_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)
_REALLOC = int(Kind.REALLOC)
_CREATE = int(Kind.HEAP_CREATE)
_DESTROY = int(Kind.DESTROY)
_PSTART = int(Kind.PROCESS_START)
_PEND = int(Kind.PROCESS_END)

_JSON_SOURCE = {int(s): f',"source":"{s.name}"' for s in Source if s}
_JSON_SOURCE[0] = ""
_CSV_SOURCE = {int(s): s.name for s in Source if s}
_CSV_SOURCE[0] = ""
#: empty cells after ``image`` in a CSV event row: id, frame, facts
_CSV_TAIL = ",,,\n"


def _csv_cell(text: str) -> str:
    """``text`` as one CSV cell, quoted when it must be."""
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class CanonicalWriter:
    """Encodes records of one trace onto ``stream`` in format ``fmt``
    ("jsonl" or "csv"), times in ``time_unit``.

    The header (with the facts of ``info``) is written at once.  ``close()``
    flushes but leaves ``stream`` open: the caller owns it.
    """

    def __init__(self, stream: BinaryIO, fmt: str, info: TraceInfo, time_unit: str = "ns") -> None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown trace output format '{fmt}'; known: {', '.join(FORMATS)}")
        if time_unit not in TIME_UNITS_NS:
            raise UsageError(f"unknown time unit '{time_unit}'; known: {', '.join(TIME_UNITS_NS)}")
        self.fmt = fmt
        self.time_unit = time_unit
        self._mult = TIME_UNITS_NS[time_unit]
        # backslashreplace: a lone surrogate read from a JSON trace ("\\ud800")
        # is written as that escape again (an exact round trip in JSON Lines)
        self._out = io.TextIOWrapper(stream, encoding="utf-8", errors="backslashreplace", newline="\n",
                                     write_through=False)
        self._write = self._out.write
        self.events_written = 0
        self._csv = fmt == "csv"
        self.event = self._csv_event if self._csv else self._json_event  # type: ignore[method-assign]
        header: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "time_unit": time_unit}
        header.update(facts_object(info, self._mult))
        if self._csv:
            self._write(",".join(CSV_COLUMNS) + "\n")
            self._write(self._csv_meta_row("header", header))
        else:
            self._write(json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n")

    # -- records --------------------------------------------------------------

    def event(self, ev: HeapEvent) -> None:  # replaced per format in __init__
        """Write one event record."""
        raise NotImplementedError

    def _time(self, ns: int) -> str:
        mult = self._mult
        if mult == 1:
            return str(ns)
        whole, rest = divmod(ns, mult)
        return str(whole) if rest == 0 else repr(ns / mult)

    def _json_event(self, ev: HeapEvent) -> None:
        k = ev.kind
        t = ev.time if self._mult == 1 else self._time(ev.time)
        head = f'"time":{t},"pid":{ev.pid},"tid":{ev.tid}'
        if k == _ALLOC:
            stack = "" if ev.stack is None else f',"stack":{ev.stack}'
            line = (
                f'{{"kind":"alloc",{head},"heap":"0x{ev.heap:x}","address":"0x{ev.address:x}",'
                f'"size":{ev.size}{_JSON_SOURCE[ev.source]}{stack}}}\n'
            )
        elif k == _FREE:
            line = f'{{"kind":"free",{head},"heap":"0x{ev.heap:x}","address":"0x{ev.address:x}"{_JSON_SOURCE[ev.source]}}}\n'
        elif k == _REALLOC:
            stack = "" if ev.stack is None else f',"stack":{ev.stack}'
            old_size = "" if ev.old_size is None else f',"old_size":{ev.old_size}'
            line = (
                f'{{"kind":"realloc",{head},"heap":"0x{ev.heap:x}","new_address":"0x{ev.address:x}",'
                f'"old_address":"0x{ev.old_address:x}","new_size":{ev.size}{old_size}'
                f"{_JSON_SOURCE[ev.source]}{stack}}}\n"
            )
        elif k == _CREATE:
            line = f'{{"kind":"create",{head},"heap":"0x{ev.heap:x}","flags":"0x{ev.flags:x}"}}\n'
        elif k == _DESTROY:
            line = f'{{"kind":"destroy",{head},"heap":"0x{ev.heap:x}"}}\n'
        elif k == _PSTART or k == _PEND:
            name = "process_start" if k == _PSTART else "process_end"
            image = "" if ev.image is None else f',"image":{_json_str(ev.image)}'
            line = f'{{"kind":"{name}",{head}{image}}}\n'
        else:
            raise ValueError(f"cannot write an event of unknown kind {k!r}")
        self._write(line)
        self.events_written += 1

    def _csv_event(self, ev: HeapEvent) -> None:
        # columns: kind,time,pid,tid,heap,address,size,new_address,new_size,
        #          old_address,old_size,source,stack,flags,image,id,frame,facts
        k = ev.kind
        head = f"{self._time(ev.time)},{ev.pid},{ev.tid},0x{ev.heap:x}"
        stack = "" if ev.stack is None else ev.stack
        if k == _ALLOC:
            line = f"alloc,{head},0x{ev.address:x},{ev.size},,,,,{_CSV_SOURCE[ev.source]},{stack},,{_CSV_TAIL}"
        elif k == _FREE:
            line = f"free,{head},0x{ev.address:x},,,,,,{_CSV_SOURCE[ev.source]},,,{_CSV_TAIL}"
        elif k == _REALLOC:
            old_size = "" if ev.old_size is None else ev.old_size
            line = (
                f"realloc,{head},,,0x{ev.address:x},{ev.size},0x{ev.old_address:x},{old_size},"
                f"{_CSV_SOURCE[ev.source]},{stack},,{_CSV_TAIL}"
            )
        elif k == _CREATE:
            line = f"create,{head},,,,,,,,,0x{ev.flags:x},{_CSV_TAIL}"
        elif k == _DESTROY:
            line = f"destroy,{head},,,,,,,,,,{_CSV_TAIL}"
        elif k == _PSTART or k == _PEND:
            name = "process_start" if k == _PSTART else "process_end"
            image = "" if ev.image is None else _csv_cell(ev.image)
            line = f"{name},{self._time(ev.time)},{ev.pid},{ev.tid},,,,,,,,,,,{image}{_CSV_TAIL}"
        else:
            raise ValueError(f"cannot write an event of unknown kind {k!r}")
        self._write(line)
        self.events_written += 1

    def stack(self, stack_id: int, frames: tuple[str, ...]) -> None:
        """Write a stack definition (frames innermost first; each a non-empty string)."""
        if self._csv:
            prefix = "stack" + "," * 15 + f"{stack_id},"
            if not frames:
                self._write(prefix + ",\n")
            for frame in frames:
                self._write(f"{prefix}{_csv_cell(frame)},\n")
        else:
            frames_json = json.dumps(list(frames), ensure_ascii=False, separators=(",", ":"))
            self._write(f'{{"kind":"stack","id":{stack_id},"frames":{frames_json}}}\n')

    def facts(self, info: TraceInfo) -> None:
        """Write a ``facts`` record: the final trace facts of ``info``, which
        replace the header's for a reader (a trailer for converters)."""
        obj = facts_object(info, self._mult)
        if self._csv:
            self._write(self._csv_meta_row("facts", obj))
        else:
            obj = {"kind": "facts", **obj}
            self._write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _csv_meta_row(self, kind: str, obj: dict[str, Any]) -> str:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return kind + "," * (len(CSV_COLUMNS) - 1) + _csv_cell(text) + "\n"

    def close(self) -> None:
        """Flush everything written; the underlying stream stays open."""
        if self._out is not None:
            self._out.flush()
            self._out.detach()
            self._out = None  # type: ignore[assignment]


def format_for_path(path: str, fmt: str | None = None) -> tuple[str, bool]:
    """(format, gzip?) for an output path: ``.jsonl``/``.csv``, optionally
    followed by ``.gz``; ``-`` is stdout, JSON Lines unless ``fmt`` says otherwise."""
    if path == "-":
        return fmt or "jsonl", False
    lower = path.lower()
    compressed = lower.endswith(".gz")
    stem = lower[:-3] if compressed else lower
    if fmt is None:
        for name in FORMATS:
            if stem.endswith("." + name):
                fmt = name
                break
        else:
            raise UsageError(
                "cannot tell the trace format from the file name; use a name ending in "
                ".jsonl, .csv, .jsonl.gz or .csv.gz, or choose one with --format",
                path=path,
            )
    elif fmt not in FORMATS:
        raise UsageError(f"unknown trace output format '{fmt}'; known: {', '.join(FORMATS)}")
    return fmt, compressed


def write_trace(
    path: str,
    events: Iterable[HeapEvent],
    info: TraceInfo,
    stacks: StackTable | None = None,
    fmt: str | None = None,
    extra_stacks_at_end: bool = True,
    time_unit: str = "ns",
) -> int:
    """Write ``events`` to ``path`` in the canonical format; return the event count.

    The format comes from ``fmt`` or the extension (``.jsonl``, ``.csv``, each
    optionally ``.gz`` for gzip); ``-`` writes JSON Lines to stdout.  The file
    appears atomically when everything was written.

    ``info`` and ``stacks`` may still be filled while ``events`` is consumed
    (a reader's are): the header is written after the first event has been
    pulled, a stack is written before the first event that references it when
    it is known by then, stacks learned later are written after the events
    (when ``extra_stacks_at_end``), and a ``facts`` trailer is added when the
    trace facts changed after the header was written.
    """
    fmt, compressed = format_for_path(path, fmt)
    stacks = stacks if stacks is not None else {}
    it = iter(events)
    first = next(it, None)  # lets a lazy reader fill ``info`` before the header
    with atomic_output(path) as raw:
        stream: BinaryIO = raw
        gz = None
        if compressed:
            # no name and mtime 0 in the gzip header: same input, same bytes
            gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
            stream = gz  # type: ignore[assignment]
        writer = CanonicalWriter(stream, fmt, info, time_unit)
        header_facts = facts_object(info, 1)
        written: set[int] = set()
        for stack_id in sorted(stacks):
            writer.stack(stack_id, stacks[stack_id])
            written.add(stack_id)
        count = 0
        if first is not None:
            write_event = writer.event
            write_stack = writer.stack
            for ev in _chain(first, it):
                sid = ev.stack
                if sid is not None and sid not in written and sid in stacks:
                    write_stack(sid, stacks[sid])
                    written.add(sid)
                write_event(ev)
                count += 1
        if extra_stacks_at_end:
            for stack_id in sorted(set(stacks) - written):
                writer.stack(stack_id, stacks[stack_id])
        if facts_object(info, 1) != header_facts:
            writer.facts(info)
        writer.close()
        if gz is not None:
            gz.close()
    return count


def _chain(first: HeapEvent, rest: Iterable[HeapEvent]) -> Iterable[HeapEvent]:
    yield first
    yield from rest


__all__ = ["FORMATS", "CanonicalWriter", "format_for_path", "write_trace"]
