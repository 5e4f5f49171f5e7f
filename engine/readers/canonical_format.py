"""The canonical heaplint trace format, version 1: constants, value parsing,
the header and trace facts (both directions).

docs/trace-format.md is the user-facing reference; this module and
:mod:`~heaplint.engine.readers.canonical_records` (the per-record decoder)
are its executable form.
"""

from __future__ import annotations

import json
import math
from typing import Any

from heaplint.engine.events import TIME_UNITS_NS, ProcessFacts, Source, TraceInfo

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

SOURCE_NAMES = ", ".join(s.name for s in Source if s)

UINT = "a non-negative integer"
ADDR = 'a hex string like "0x7ff0" or a non-negative integer'


class BadRecord(Exception):
    """A record (or header) that breaks the format; the message says why."""


def show_value(value: Any) -> str:
    """A short rendering of an offending value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def field_error(kind: str, field: str, expected: str, rec: dict) -> BadRecord:
    """The error for ``rec[field]`` being absent or not ``expected``."""
    if field not in rec:
        return BadRecord(f"{kind} record: missing required field '{field}' ({expected})")
    return BadRecord(f"{kind} record: field '{field}': expected {expected}, got {show_value(rec[field])}")


def uint_value(value: Any) -> int | None:
    """A non-negative integer from a JSON int or CSV decimal text, else None."""
    if type(value) is int:
        return value if value >= 0 else None
    if type(value) is str:
        if value.isdigit():
            try:
                return int(value)
            except ValueError:  # non-ASCII digits
                return None
    return None


def address_value(value: Any, text: bool) -> int | None:
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
            return uint_value(value)
    return None


def time_ns(value: Any, mult: int, text: bool) -> int | None:
    """A time in ``mult`` ns units -> int ns; None when not a finite number."""
    if type(value) is int:
        return value * mult
    if type(value) is float:
        value *= mult  # may overflow to inf: checked after
        return round(value) if math.isfinite(value) else None
    if text and type(value) is str:
        try:
            return int(value) * mult
        except ValueError:
            pass
        try:
            number = float(value) * mult
        except ValueError:
            return None
        return round(number) if math.isfinite(number) else None
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
            raise BadRecord(f"{what}: '{key}': expected {UINT}, got {show_value(value)}")
        if key == "pointer_size" and value not in (4, 8):
            raise BadRecord(f"{what}: 'pointer_size': expected 4 or 8, got {value}")
        out[key] = value
    for key in ("capture_start", "capture_end"):
        value = obj.get(key)
        if value is None:
            continue
        ns = time_ns(value, mult, False)
        if ns is None or type(value) is bool:
            raise BadRecord(f"{what}: '{key}': expected a number (in the header's time_unit), got {show_value(value)}")
        out[key] = ns
    for key in ("start_wall_time", "clock"):
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is not str:
            raise BadRecord(f"{what}: '{key}': expected a string, got {show_value(value)}")
        out[key] = value
    procs = obj.get("processes")
    if procs is not None:
        if type(procs) is not list:
            raise BadRecord(f"{what}: 'processes': expected a list of objects, got {show_value(procs)}")
        out["processes"] = [_process_facts(p, f"{what}: 'processes'[{i}]") for i, p in enumerate(procs)]
    return out


def _process_facts(obj: Any, what: str) -> ProcessFacts:
    if type(obj) is not dict:
        raise BadRecord(f"{what}: expected an object, got {show_value(obj)}")
    pid = obj.get("pid")
    if type(pid) is not int or pid < 0:
        raise BadRecord(f"{what}: 'pid': expected {UINT}, got {show_value(pid)}")
    facts = ProcessFacts(pid)
    image = obj.get("image")
    if image is not None:
        if type(image) is not str:
            raise BadRecord(f"{what}: 'image': expected a string, got {show_value(image)}")
        facts.image = image
    for key in ("start_seen", "end_seen"):
        value = obj.get(key)
        if value is not None:
            if type(value) is not bool:
                raise BadRecord(f"{what}: '{key}': expected true or false, got {show_value(value)}")
            setattr(facts, key, value)
    lost = obj.get("events_lost")
    if lost is not None:
        if type(lost) is not int or lost < 0:
            raise BadRecord(f"{what}: 'events_lost': expected {UINT}, got {show_value(lost)}")
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
            f'"time_unit": "ns", ...}} as the first record, got {show_value(obj)}'
        )
    version = obj.get("version")
    if version not in SUPPORTED_VERSIONS or type(version) is not int:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise BadRecord(
            f"unsupported {FORMAT_NAME} format version {show_value(version)}; "
            f"this heaplint reads version {supported}"
        )
    unit = obj.get("time_unit")
    if type(unit) is not str or unit not in TIME_UNITS_NS:
        raise BadRecord(f"header: 'time_unit': expected one of {', '.join(TIME_UNITS_NS)}, got {show_value(unit)}")
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
