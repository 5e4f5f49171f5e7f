"""The record decoder of the canonical trace format, shared by the JSON Lines
and CSV readers.

:meth:`RecordDecoder.decode` is the hot path of the JSONL reader: it handles
the common shapes (integers, ``"0x..."`` strings) inline and calls a helper
only for the rest (floats, CSV text, errors).  A bad value raises
:class:`~heaplint.engine.readers.canonical_format.BadRecord` with a message
naming the record kind, the field and what was expected; the reader adds the
location.
"""

from __future__ import annotations

import json

from heaplint.engine.events import KIND_BY_NAME, KIND_NAMES, SOURCE_BY_NAME, HeapEvent, Kind, Source, StackTable, TraceInfo
from heaplint.engine.readers.canonical_format import (
    ADDR,
    SOURCE_NAMES,
    UINT,
    BadRecord,
    address_value,
    apply_facts,
    field_error,
    parse_facts,
    show_value,
    time_ns,
    uint_value,
)

#: builds a HeapEvent from a full field tuple without the Python-level
#: NamedTuple constructor (a third of the per-record decode time)
_new = tuple.__new__

_HEAP_CACHE_SIZE = 4096

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

#: source value -> Source code; JSON takes names and numbers (bools are
#: rejected apart), CSV the same as text
_SOURCES: dict[object, int] = {**{name: int(s) for name, s in SOURCE_BY_NAME.items()}, **{int(s): int(s) for s in Source}}
_SOURCE_TEXT: dict[object, int] = {**{name: int(s) for name, s in SOURCE_BY_NAME.items()}, **{str(int(s)): int(s) for s in Source}}


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
        #: heap handle text -> value: a trace has few heaps and names them in
        #: every record, so this saves an int() per record (bounded below)
        self._heaps: dict[str, int] = {}

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
        heaps = self._heaps
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
            # the common shapes inline (ints, "0x..." strings, known handles);
            # the slow path re-reads anything else and names what is wrong
            text = get("heap")
            heap = heaps.get(text) if type(text) is str else None
            if heap is None:
                heap = self._heap(rec, code, text)
            field = "new_address" if code == _REALLOC else "address"
            addr = get(field)
            if type(addr) is str and addr[:2] == "0x":
                try:
                    addr = int(addr, 16)
                except ValueError:
                    addr = self._addr(rec, code, field)
            elif type(addr) is not int or addr < 0:
                addr = self._addr(rec, code, field)
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
                return _new(HeapEvent, (code, t, pid, tid, heap, addr, 0, 0, None, source, None, 0, None, index, line))
            stack = get("stack")
            if stack is not None and (type(stack) is not int or stack < 0):
                stack = self._uint(rec, code, "stack", False)
            if code == _ALLOC:
                size = get("size")
                if type(size) is not int or size < 0:
                    size = self._uint(rec, code, "size", True)
                return _new(HeapEvent, (code, t, pid, tid, heap, addr, size, 0, None, source, stack, 0, None, index, line))
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
            return _new(HeapEvent, (code, t, pid, tid, heap, addr, size, old, old_size, source, stack, 0, None, index, line))
        if code == _CREATE or code == _DESTROY:
            heap = self._addr(rec, code, "heap")
            flags = 0
            if code == _CREATE and get("flags") is not None:
                flags = self._addr(rec, code, "flags", "a hex string like \"0x2\" or a non-negative integer")
            return _new(HeapEvent, (code, t, pid, tid, heap, 0, 0, 0, None, 0, None, flags, None, index, line))
        image = get("image")
        if image is not None and type(image) is not str:
            raise field_error(KIND_NAMES[Kind(code)], "image", "a string", rec)
        # an empty name is as good as none (and CSV cannot tell them apart)
        return _new(HeapEvent, (code, t, pid, tid, 0, 0, 0, 0, None, 0, None, 0, image or None, index, line))

    # -- the slow paths: unusual shapes and precise errors -------------------

    def _time(self, rec: dict, code: int) -> int:
        value = rec.get("time")
        ns = time_ns(value, self.mult, self.text)
        if ns is None or type(value) is bool:
            raise field_error(KIND_NAMES[Kind(code)], "time", "a number (in the header's time_unit)", rec)
        return ns

    def _uint(self, rec: dict, code: int, field: str, required: bool) -> int | None:
        value = rec.get(field)
        if value is None and not required:
            return None
        number = uint_value(value) if self.text or type(value) is int else None
        if number is None:
            raise field_error(KIND_NAMES[Kind(code)], field, UINT, rec)
        return number

    def _heap(self, rec: dict, code: int, value: object) -> int:
        """The handle in ``rec["heap"]``; remembers handle strings."""
        number = self._addr(rec, code, "heap")
        if type(value) is str:
            if len(self._heaps) >= _HEAP_CACHE_SIZE:
                self._heaps.clear()
            self._heaps[value] = number
        return number

    def _addr(self, rec: dict, code: int, field: str, expected: str = ADDR) -> int:
        number = address_value(rec.get(field), self.text)
        if number is None:
            raise field_error(KIND_NAMES[Kind(code)], field, expected, rec)
        return number

    def _bad_source(self, rec: dict, code: int) -> BadRecord:
        return field_error(KIND_NAMES[Kind(code)], "source", f"one of {SOURCE_NAMES} or a number 0-6", rec)

    def _bad_kind(self, rec: dict) -> BadRecord:
        if "kind" not in rec:
            return BadRecord(f"record without a 'kind' field (expected one of {KNOWN_KINDS})")
        return BadRecord(f"unknown record kind {show_value(rec['kind'])}; known kinds: {KNOWN_KINDS}")

    def _meta(self, code: int, rec: dict) -> None:
        if code == _FACTS:
            raw = rec.get("facts") if self.text else rec
            if self.text:
                try:
                    raw = json.loads(raw) if raw is not None else {}
                except ValueError as err:
                    raise BadRecord(f"facts record: column 'facts': expected a JSON object ({err})") from None
                if type(raw) is not dict:
                    raise BadRecord(f"facts record: column 'facts': expected a JSON object, got {show_value(raw)}")
            apply_facts(self.info, parse_facts(raw, self.mult, "facts record"))
            return
        ident = uint_value(rec.get("id")) if self.text or type(rec.get("id")) is int else None
        if ident is None:
            raise field_error("stack", "id", UINT, rec)
        if self.text:
            # CSV: one row per frame, appended in file order; a row without a
            # frame declares the stack (possibly empty)
            frame = rec.get("frame")
            frames = self.stacks.get(ident, ())
            self.stacks[ident] = frames + (frame,) if frame is not None else frames
            return
        frames = rec.get("frames")
        if type(frames) is not list or not all(type(f) is str and f for f in frames):
            raise field_error("stack", "frames", "a list of non-empty strings (innermost frame first)", rec)
        new = tuple(frames)
        old = self.stacks.get(ident)
        if old is not None and old != new:
            raise BadRecord(f"stack record: stack {ident} is already defined with different frames")
        self.stacks[ident] = new
