"""The canonical heaplint trace format, version 1: constants, trace facts, and
the record decoder shared by the JSON Lines and CSV readers.

docs/trace-format.md is the user-facing reference; this module is its
executable form.  The decoder is the hot path of the JSONL reader, so
:meth:`RecordDecoder.decode` handles the common shapes (integers, ``"0x..."``
strings) inline and calls a helper only for the rest (floats, CSV text, errors).
A bad value raises :class:`BadRecord` with a message naming the record kind,
the field and what was expected; the reader adds the location.
"""

from __future__ import annotations

import json
import math
from typing import Any

from heaplint.engine.events import (
    KIND_BY_NAME,
    KIND_NAMES,
    SOURCE_BY_NAME,
    TIME_UNITS_NS,
    HeapEvent,
    Kind,
    ProcessFacts,
    Source,
    StackTable,
    TraceInfo,
)

FORMAT_NAME = "heaplint-trace"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

#: the longest line a reader accepts (bytes, newline excluded).  A longer line
#: is a bad record; the reader never holds more than this much of it.
MAX_LINE_BYTES = 1024 * 1024

#: CSV column order as written.  Readers map columns by name, so only ``kind``
#: (the first column) is fixed.
CSV_COLUMNS: tuple[str, ...] = (
    "kind", "time", "pid", "tid", "heap", "address", "size", "new_address", "new_size",
    "old_address", "old_size", "source", "stack", "flags", "image", "id", "frame", "facts",
)  # fmt: skip

#: the optional trace facts of a header (and of a ``facts`` record)
FACT_KEYS = (
    "pointer_size", "events_lost", "buffers_lost", "capture_start", "capture_end",
    "start_wall_time", "clock", "timer_frequency", "processes",
)  # fmt: skip

_STACK = 100
_FACTS = 101
#: record-kind name -> code (event kinds are Kind values)
_KIND_CODE: dict[str, int] = {**{name: int(k) for name, k in KIND_BY_NAME.items()}, "stack": _STACK, "facts": _FACTS}
KNOWN_KINDS = ", ".join(_KIND_CODE)

_ALLOC = int(Kind.ALLOC)
_FREE = int(Kind.FREE)
_REALLOC = int(Kind.REALLOC)
_CREATE = int(Kind.HEAP_CREATE)
_DESTROY = int(Kind.DESTROY)

#: source value -> Source code; both names and numbers (bools are rejected apart)
_SOURCES: dict[Any, int] = {**{name: int(s) for name, s in SOURCE_BY_NAME.items()}, **{int(s): int(s) for s in Source}}
_SOURCE_TEXT: dict[str, int] = {**{name: int(s) for name, s in SOURCE_BY_NAME.items()}, **{str(int(s)): int(s) for s in Source}}
SOURCE_NAMES = ", ".join(s.name for s in Source if s)

UINT = "a non-negative integer"
ADDR = 'a hex string like "0x7ff0" or a non-negative integer'


class BadRecord(Exception):
    """A record (or header) that breaks the format; the message says why."""


def _show(value: Any) -> str:
    """A short rendering of an offending value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(kind: str, field: str, expected: str, rec: dict) -> BadRecord:
    if field not in rec:
        return BadRecord(f"{kind} record: missing required field '{field}' ({expected})")
    return BadRecord(f"{kind} record: field '{field}': expected {expected}, got {_show(rec[field])}")


def _text_uint(value: Any) -> int | None:
    """A non-negative integer from a JSON int or CSV decimal/hex text, else None."""
    if type(value) is int:
        return value if value >= 0 else None
    if type(value) is str:
        if value.isdigit():
            try:
                return int(value)
            except ValueError:  # non-ASCII digits
                return None
    return None


def _addr_value(value: Any, text: bool) -> int | None:
    """An address or handle: int >= 0 or "0x..." (CSV: also decimal text)."""
    if type(value) is int:
        return value if value >= 0 else None
    if type(value) is str:
        if value[:2] in ("0x", "0X") and len(value) > 2:
            try:
                return int(value, 16)
            except ValueError:
                return None
        if text:
            return _text_uint(value)
    return None


def _number(value: Any, mult: int, text: bool) -> int | None:
    """A time in ``mult`` ns units -> int ns; None when not a finite number."""
    if type(value) is int:
        return value * mult
    if type(value) is float:
        return round(value * mult) if math.isfinite(value) else None
    if text and type(value) is str:
        try:
            return int(value) * mult
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            return None
        return round(number * mult) if math.isfinite(number) else None
    return None


def parse_facts(obj: dict, mult: int, what: str) -> dict[str, Any]:
    """Validate the trace facts in ``obj`` (a header or ``facts`` record).

    Returns attribute -> value for :class:`TraceInfo`, times converted to ns,
    ``processes`` as a list of :class:`ProcessFacts`.  Unknown keys are ignored.
    """
    out: dict[str, Any] = {}
    for key in ("pointer_size", "events_lost", "buffers_lost", "timer_frequency"):
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is not int or value < 0:
            raise BadRecord(f"{what}: '{key}': expected {UINT}, got {_show(value)}")
        if key == "pointer_size" and value not in (4, 8):
            raise BadRecord(f"{what}: 'pointer_size': expected 4 or 8, got {value}")
        out[key] = value
    for key in ("capture_start", "capture_end"):
        value = obj.get(key)
        if value is None:
            continue
        ns = _number(value, mult, False)
        if ns is None or type(value) is bool:
            raise BadRecord(f"{what}: '{key}': expected a number (in the header's time_unit), got {_show(value)}")
        out[key] = ns
    for key in ("start_wall_time", "clock"):
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is not str:
            raise BadRecord(f"{what}: '{key}': expected a string, got {_show(value)}")
        out[key] = value
    procs = obj.get("processes")
    if procs is not None:
        if type(procs) is not list:
            raise BadRecord(f"{what}: 'processes': expected a list of objects, got {_show(procs)}")
        out["processes"] = [_process_facts(p, f"{what}: 'processes'[{i}]") for i, p in enumerate(procs)]
    return out


def _process_facts(obj: Any, what: str) -> ProcessFacts:
    if type(obj) is not dict:
        raise BadRecord(f"{what}: expected an object, got {_show(obj)}")
    pid = obj.get("pid")
    if type(pid) is not int or pid < 0:
        raise BadRecord(f"{what}: 'pid': expected {UINT}, got {_show(pid)}")
    facts = ProcessFacts(pid)
    image = obj.get("image")
    if image is not None:
        if type(image) is not str:
            raise BadRecord(f"{what}: 'image': expected a string, got {_show(image)}")
        facts.image = image
    for key in ("start_seen", "end_seen"):
        value = obj.get(key)
        if value is not None:
            if type(value) is not bool:
                raise BadRecord(f"{what}: '{key}': expected true or false, got {_show(value)}")
            setattr(facts, key, value)
    lost = obj.get("events_lost")
    if lost is not None:
        if type(lost) is not int or lost < 0:
            raise BadRecord(f"{what}: 'events_lost': expected {UINT}, got {_show(lost)}")
        facts.events_lost = lost
    return facts


def apply_facts(info: TraceInfo, facts: dict[str, Any]) -> None:
    """Set parsed facts on ``info``; listed processes replace that pid's facts."""
    for key, value in facts.items():
        if key == "processes":
            for proc in value:
                info.processes[proc.pid] = proc
        else:
            setattr(info, key, value)


def parse_header(obj: Any) -> tuple[int, dict[str, Any]]:
    """Check a header object; return (time-unit multiplier in ns, parsed facts)."""
    if type(obj) is not dict or obj.get("format") != FORMAT_NAME:
        raise BadRecord(
            f'expected the header object {{"format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, '
            f'"time_unit": "ns", ...}} as the first record, got {_show(obj)}'
        )
    version = obj.get("version")
    if version not in SUPPORTED_VERSIONS or type(version) is not int:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise BadRecord(
            f"unsupported {FORMAT_NAME} format version {_show(version)}; "
            f"this heaplint reads version {supported}"
        )
    unit = obj.get("time_unit")
    if type(unit) is not str or unit not in TIME_UNITS_NS:
        raise BadRecord(f"header: 'time_unit': expected one of {', '.join(TIME_UNITS_NS)}, got {_show(unit)}")
    mult = TIME_UNITS_NS[unit]
    return mult, parse_facts(obj, mult, "header")


def facts_object(info: TraceInfo, mult: int) -> dict[str, Any]:
    """The trace facts of ``info`` as a header/``facts`` object (defaults left out)."""
    out: dict[str, Any] = {}
    if info.pointer_size is not None:
        out["pointer_size"] = info.pointer_size
    if info.events_lost:
        out["events_lost"] = info.events_lost
    if info.buffers_lost:
        out["buffers_lost"] = info.buffers_lost
    for key in ("capture_start", "capture_end"):
        ns = getattr(info, key)
        if ns is not None:
            out[key] = ns // mult if ns % mult == 0 else ns / mult
    for key in ("start_wall_time", "clock", "timer_frequency"):
        value = getattr(info, key)
        if value is not None:
            out[key] = value
    if info.processes:
        procs = []
        for pid in sorted(info.processes):
            p = info.processes[pid]
            obj: dict[str, Any] = {"pid": p.pid}
            if p.image is not None:
                obj["image"] = p.image
            if p.start_seen is not None:
                obj["start_seen"] = p.start_seen
            if p.end_seen is not None:
                obj["end_seen"] = p.end_seen
            if p.events_lost:
                obj["events_lost"] = p.events_lost
            procs.append(obj)
        out["processes"] = procs
    return out


class RecordDecoder:
    """Turns one parsed record (a dict) into a :class:`HeapEvent`, or applies a
    ``stack`` / ``facts`` record to the reader's stacks and info.

    ``text`` is set for CSV, whose values all arrive as (non-empty) strings.
    """

    def __init__(self, info: TraceInfo, stacks: StackTable, mult: int, *, text: bool) -> None:
        self.info = info
        self.stacks = stacks
        self.mult = mult
        self.text = text
        self._sources = _SOURCE_TEXT if text else _SOURCES

    def decode(self, rec: dict, index: int, line: int) -> HeapEvent | None:
        """The event of ``rec`` (None for stack and facts records).  Raises
        :class:`BadRecord`.  O(1) apart from a stack's frames."""
        kind = rec.get("kind")
        code = _KIND_CODE.get(kind) if type(kind) is str else None
        if code is None:
            raise self._bad_kind(rec)
        if code >= _STACK:
            self._meta(code, rec)
            return None
        get = rec.get
        t = get("time")
        if type(t) is int:
            t *= self.mult
        else:
            t = self._time(rec, code)
        pid = get("pid")
        if type(pid) is not int or pid < 0:
            pid = self._uint(rec, code, "pid", True)
        tid = get("tid", 0)
        if type(tid) is not int or tid < 0:
            tid = self._uint(rec, code, "tid", False) or 0
        if code == _ALLOC or code == _FREE or code == _REALLOC:
            # the common shapes inline: ints and "0x..." strings; any ValueError
            # from int() is re-diagnosed precisely by the slow path below.
            try:
                heap = get("heap")
                if type(heap) is str and heap[:2] == "0x":
                    heap = int(heap, 16)
                elif type(heap) is not int or heap < 0:
                    heap = self._addr(rec, code, "heap")
                field = "new_address" if code == _REALLOC else "address"
                addr = get(field)
                if type(addr) is str and addr[:2] == "0x":
                    addr = int(addr, 16)
                elif type(addr) is not int or addr < 0:
                    addr = self._addr(rec, code, field)
            except ValueError:
                heap = self._addr(rec, code, "heap")
                addr = self._addr(rec, code, "new_address" if code == _REALLOC else "address")
            source = get("source")
            if source is None:
                source = 0
            elif type(source) is str or type(source) is int:  # no bools, floats, lists
                source = self._sources.get(source)
                if source is None:
                    raise self._bad_source(rec, code)
            else:
                raise self._bad_source(rec, code)
            if code == _FREE:
                return HeapEvent(code, t, pid, tid, heap, addr, 0, 0, None, source, None, 0, None, index, line)
            stack = get("stack")
            if stack is not None and (type(stack) is not int or stack < 0):
                stack = self._uint(rec, code, "stack", False)
            if code == _ALLOC:
                size = get("size")
                if type(size) is not int or size < 0:
                    size = self._uint(rec, code, "size", True)
                return HeapEvent(code, t, pid, tid, heap, addr, size, 0, None, source, stack, 0, None, index, line)
            size = get("new_size")
            if type(size) is not int or size < 0:
                size = self._uint(rec, code, "new_size", True)
            old = get("old_address")
            if type(old) is str and old[:2] == "0x":
                try:
                    old = int(old, 16)
                except ValueError:
                    old = self._addr(rec, code, "old_address")
            elif type(old) is not int or old < 0:
                old = self._addr(rec, code, "old_address")
            old_size = get("old_size")
            if old_size is not None and (type(old_size) is not int or old_size < 0):
                old_size = self._uint(rec, code, "old_size", False)
            return HeapEvent(code, t, pid, tid, heap, addr, size, old, old_size, source, stack, 0, None, index, line)
        if code == _CREATE or code == _DESTROY:
            heap = self._addr(rec, code, "heap")
            flags = 0
            if code == _CREATE and get("flags") is not None:
                flags = self._addr(rec, code, "flags", "a hex string like \"0x2\" or a non-negative integer")
            return HeapEvent(code, t, pid, tid, heap, 0, 0, 0, None, 0, None, flags, None, index, line)
        image = get("image")
        if image is not None and type(image) is not str:
            raise _got(KIND_NAMES[Kind(code)], "image", "a string", rec)
        # an empty name is as good as none (and CSV cannot tell them apart)
        return HeapEvent(code, t, pid, tid, 0, 0, 0, 0, None, 0, None, 0, image or None, index, line)

    # -- the slow paths: unusual shapes and precise errors -------------------

    def _time(self, rec: dict, code: int) -> int:
        value = rec.get("time")
        ns = _number(value, self.mult, self.text)
        if ns is None or type(value) is bool:
            raise _got(KIND_NAMES[Kind(code)], "time", "a number (in the header's time_unit)", rec)
        return ns

    def _uint(self, rec: dict, code: int, field: str, required: bool) -> int | None:
        value = rec.get(field)
        if value is None and not required:
            return None
        number = _text_uint(value) if self.text or type(value) is int else None
        if number is None:
            raise _got(KIND_NAMES[Kind(code)], field, UINT, rec)
        return number

    def _addr(self, rec: dict, code: int, field: str, expected: str = ADDR) -> int:
        number = _addr_value(rec.get(field), self.text)
        if number is None:
            raise _got(KIND_NAMES[Kind(code)], field, expected, rec)
        return number

    def _bad_source(self, rec: dict, code: int) -> BadRecord:
        return _got(KIND_NAMES[Kind(code)], "source", f"one of {SOURCE_NAMES} or a number 0-6", rec)

    def _bad_kind(self, rec: dict) -> BadRecord:
        if "kind" not in rec:
            return BadRecord(f"record without a 'kind' field (expected one of {KNOWN_KINDS})")
        return BadRecord(f"unknown record kind {_show(rec['kind'])}; known kinds: {KNOWN_KINDS}")

    def _meta(self, code: int, rec: dict) -> None:
        if code == _FACTS:
            raw = rec.get("facts") if self.text else rec
            if self.text:
                try:
                    raw = json.loads(raw) if raw is not None else {}
                except ValueError as err:
                    raise BadRecord(f"facts record: column 'facts': expected a JSON object ({err})") from None
                if type(raw) is not dict:
                    raise BadRecord(f"facts record: column 'facts': expected a JSON object, got {_show(raw)}")
            apply_facts(self.info, parse_facts(raw, self.mult, "facts record"))
            return
        ident = _text_uint(rec.get("id")) if self.text or type(rec.get("id")) is int else None
        if ident is None:
            raise _got("stack", "id", UINT, rec)
        if self.text:
            # CSV: one row per frame, appended in file order; a row without a
            # frame declares the stack (possibly empty)
            frame = rec.get("frame")
            frames = self.stacks.get(ident, ())
            self.stacks[ident] = frames + (frame,) if frame is not None else frames
            return
        frames = rec.get("frames")
        if type(frames) is not list or not all(type(f) is str and f for f in frames):
            raise _got("stack", "frames", "a list of non-empty strings (innermost frame first)", rec)
        new = tuple(frames)
        old = self.stacks.get(ident)
        if old is not None and old != new:
            raise BadRecord(f"stack record: stack {ident} is already defined with different frames")
        self.stacks[ident] = new
