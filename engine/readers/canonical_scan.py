"""The block scan of a ``--jobs`` partition reading canonical JSON Lines
(:mod:`heaplint.engine.readers.canonical_partition`): which lines of a block
of decompressed bytes are this partition's events, which are other known
processes' events (only their times are needed), and which need a closer
look.

A line is *claimed* when it starts as the canonical writer writes an event
(``{"kind":"<event kind>","time":<1-19 digits>,"pid":<1-19 digits>`` then
``,`` or ``}``), as :data:`canonical_partition._EVENT_HEAD` reads it.  Then

1. with a pid of this partition and a ``,`` after it, it is an *own* line:
   decoded by :meth:`_Lines.own_event` (which checks that decoding says the
   same time and pid, else hands the line to :meth:`_Lines.line`);
2. with a pid of another known process, its time joins a run: the runs of
   times between own events are what the partition's ordering stage needs;
3. anything else (a process seen for the first time, stack and facts
   records, blank, odd or broken lines) goes to :meth:`_Lines.line`, one
   line at a time.  A line that makes a process known changes what 1 and 2
   match: the rest of the block is scanned again.

Two implementations, the same classification: the optional C accelerator
``heaplint.engine.readers._jsonlscan`` (engine/readers/_jsonlscan.c, built by
setup.py when a C compiler is present; measured in docs/performance.md,
"Parallel replay"), and one ``findall`` of a regular expression per block in
pure Python, used without the accelerator or with ``HEAPLINT_PURE_PYTHON``
set.  :data:`NATIVE` is read per block, so tests switch implementations by
setting it; both are checked against decoding every record
(tests/test_jobs_reader.py, tests/test_jobs_scan.py).
"""

from __future__ import annotations

import os
import re
from types import ModuleType
from typing import TYPE_CHECKING, Iterator, Union

from heaplint.engine.events import HeapEvent

if TYPE_CHECKING:
    from heaplint.engine.readers.canonical_partition import _Lines

#: the event kinds, as a pattern
KINDS = rb"(?:alloc|free|realloc|create|destroy|process_start|process_end)"
#: the C module's API version this code expects (``_jsonlscan.API``)
API = 1

Item = Union[HeapEvent, list]


def _load() -> ModuleType | None:
    if os.environ.get("HEAPLINT_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from heaplint.engine.readers import _jsonlscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _jsonlscan if getattr(_jsonlscan, "API", None) == API else None


#: the C module as loaded (None: not built, stale, or switched off)
LOADED = _load()
#: the C module in use, or None for the pure-Python scan
NATIVE = LOADED


def block(lines: _Lines, buf: bytes, end: int, line_no: int) -> Iterator[Item]:
    """The items of the lines of ``buf[1:end]`` (``buf[0]`` is a newline,
    ``buf[end-1]`` the last one): own events, runs of other processes'
    times (lists) and whatever :meth:`_Lines.line` makes of the other lines.
    Returns the last line number."""
    if NATIVE is not None:
        return _native(NATIVE.scan, lines, buf, end, line_no)
    return _python(lines, buf, end, line_no)


def _native(scan, lines: _Lines, buf: bytes, end: int, line_no: int) -> Iterator[Item]:
    own_event = lines.own_event
    line = lines.line
    mult = lines.mult
    owners = lines.ours
    pos = 0  # the newline before the next line
    last = end - 1
    while pos < last:
        items, stop = scan(buf, pos, end, owners)
        for item in items:
            if type(item) is list:
                n = len(item)
                lines.index += n
                line_no += n
                yield item if mult == 1 else [t * mult for t in item]
                continue
            raw, t, pid, at = item
            line_no += 1
            ev = own_event(raw, t, pid, line_no)
            if ev is not None:
                yield ev
                continue
            version = lines.version
            out = line(raw, line_no)
            if out is not None:
                yield [out] if type(out) is int else out
            if lines.version != version:  # scan the rest again
                pos = at
                break
        else:
            pos = stop
            if pos < last:  # a line the scan leaves to _Lines.line
                at = buf.find(b"\n", pos + 1)
                line_no += 1
                out = line(buf[pos + 1: at + 1], line_no)
                if out is not None:
                    yield [out] if type(out) is int else out
                pos = at
    return line_no


def pattern(lines: _Lines) -> re.Pattern:
    """The pure-Python scan's pattern for the processes known now (kept
    until a new one appears): at each newline it matches the line after it
    as one of 1. an own line (the line, its time and pid texts), 2. another
    process's event (its time text; the match ends after the pid, the search
    skips the rest of the line), 3. anything else (the line)."""
    if lines.pattern_version != lines.version or lines.pattern is None:
        # (pids of up to 19 digits, as the C scan and _EVENT_HEAD read them;
        # longer ones go line by line)
        texts = {pid: str(pid).encode() for pid in lines.ours}
        mine = b"|".join(t for p, t in texts.items() if lines.ours[p] and len(t) <= 19) or rb"(?!)"
        others = b"|".join(t for p, t in texts.items() if not lines.ours[p] and len(t) <= 19) or rb"(?!)"
        lines.pattern = re.compile(
            rb'\n(?:(\{"kind":"' + KINDS + rb'","time":(\d{1,19}),"pid":(' + mine + rb'),.*)'
            rb'|\{"kind":"' + KINDS + rb'","time":(\d{1,19}),"pid":(?:' + others + rb")[,}]"
            rb"|(.*))"
        )
        lines.pattern_version = lines.version
    return lines.pattern


def _python(lines: _Lines, buf: bytes, end: int, line_no: int) -> Iterator[Item]:
    own_event = lines.own_event
    line = lines.line
    mult = lines.mult
    pos = 0  # the newline before the next line
    last = end - 1
    while pos < last:
        version = lines.version
        first = line_no
        run: list[bytes] = []
        for own, own_t, own_pid, t, rest in pattern(lines).findall(buf, pos, last):
            line_no += 1
            if t:
                run.append(t)
                continue
            if run:
                lines.index += len(run)
                yield list(map(int, run)) if mult == 1 else [int(x) * mult for x in run]
                run = []
            if own:
                ev = own_event(own, int(own_t), int(own_pid), line_no)
                if ev is not None:
                    yield ev
                    continue
                rest = own
            out = line(rest + b"\n", line_no)
            if out is not None:
                yield [out] if type(out) is int else out
            if lines.version != version:  # scan the rest again
                break
        else:
            if run:
                lines.index += len(run)
                yield list(map(int, run)) if mult == 1 else [int(x) * mult for x in run]
            return line_no
        for _ in range(line_no - first):  # to the newline after the line that changed the pattern
            pos = buf.find(b"\n", pos + 1)
    return line_no
