"""The canonical JSON Lines reader's process filter (``ReaderOptions.pids``),
used by ``--jobs`` partitions: other processes' records are dropped, or
handed over as runs of their times (``pid_stubs``), read from their first
bytes without being decoded.

With ``pid_stubs`` (and without ``skip_bad_records``) the reader works on
large blocks of the decompressed input: it finds this partition's records by
searching for their ``"pid":N`` text, and takes the lines in between, when
each is an event of another known process, with one regular-expression scan
for their times (:func:`_blocks`).  Anything else (a process seen for the
first time, stack and facts records, blank, odd or broken lines) goes line
by line through :class:`_Lines`, as without blocks."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Iterator, Union

from heaplint.engine.events import HeapEvent
from heaplint.engine.readers.base import COMPRESSION_ERRORS, compressed_data_error
from heaplint.engine.readers.canonical_format import MAX_LINE_BYTES, BadRecord
from heaplint.engine.readers.canonical_scan import KINDS as _KINDS
from heaplint.engine.readers.canonical_scan import block

if TYPE_CHECKING:
    from heaplint.engine.readers.canonical import JsonlReader

#: the start of an event record as ``heaplint convert`` and ``synth`` write
#: it (kind, integer time and pid first, compact separators): the fields the
#: pid filter reads from the bytes to skip other processes' records undecoded.
#: (At most 19 digits: longer numbers are left to the decoder and its errors.)
_EVENT_HEAD = re.compile(rb'\{"kind":"' + _KINDS + rb'","time":(\d{1,19}),"pid":(\d{1,19})[,}]')
#: the whole of such a record, with only known fields and plain values: the
#: grammar makes sure ``json.loads`` reads the same kind, time and pid (no
#: backslash, so no escaped key; no nested object; no second kind/time/pid)
_EVENT_LINE = re.compile(
    rb'\{"kind":"' + _KINDS + rb'","time":(\d{1,19}),"pid":(\d{1,19})'
    rb'(?:,"(?:tid|heap|address|size|new_address|new_size|old_address|old_size|source|stack|flags|image)"'
    rb':(?:"[^"\\]*"|\d+))*\}\r?\n?'
)
#: the kinds of event records
_EVENT_KINDS = frozenset(("alloc", "free", "realloc", "create", "destroy", "process_start", "process_end"))
#: decompressed bytes per block
_BLOCK = 256 * 1024

#: what :meth:`_Lines.line` gives: an own event, another process's record time, or nothing
Line = Union[HeapEvent, int, None]


class _Lines:
    """Line-by-line filtering, and what the block scan needs to know: which
    processes are known and whose they are.

    A record is *claimed* from its bytes when it starts as
    :data:`_EVENT_HEAD`.  Claimed records of other processes are counted
    as events (for ``index``) without being validated: a malformed one is
    reported by the partition that owns its pid, which is what makes the
    whole analysis fail.  So with ``skip_bad_records`` nothing is claimed:
    a skipped record must not count as an event anywhere.

    Without stubs the whole line must also match :data:`_EVENT_LINE`,
    which fixes kind, time and pid exactly as ``json.loads`` would read
    them.  With stubs (partitions of one analysis) the start is trusted,
    and the owner of the claimed pid, which decodes the record, checks it:
    a record whose fields say otherwise than its start (a repeated or
    escaped key) clears ``reader.claims_exact`` there, and the analysis then
    replays the trace whole.
    """

    def __init__(self, reader: JsonlReader) -> None:
        options = reader.options
        assert options.pids is not None
        self.reader = reader
        self.pids = options.pids
        self.stubs = options.pid_stubs
        self.head = None if options.skip_bad_records else _EVENT_HEAD.match
        self.claim = None if self.stubs else _EVENT_LINE.fullmatch
        self.mult = reader.decoder.mult
        self.decode = reader.decoder.decode
        #: pid text -> (pid, ours?); pid -> ours?  (``pid in pids`` is asked
        #: once per process, in input order, as PidPartition needs)
        self.by_text: dict[bytes, tuple[int, bool]] = {}
        self.ours: dict[int, bool] = {}
        self.index = 0  # events so far
        self.version = 0  # processes seen so far
        #: the pure-Python scan's pattern, and ``version`` when it was made
        self.pattern: re.Pattern | None = None
        self.pattern_version = -1

    def owns(self, pid: int) -> bool:
        mine = self.ours.get(pid)
        if mine is None:
            mine = self.ours[pid] = pid in self.pids
            self.version += 1
        return mine

    def line(self, raw: bytes, line_no: int) -> Line:
        """One line (its length already checked)."""
        claimed = None
        if self.head is not None:
            m = self.head(raw)
            if m is not None:
                t_text, text = m.groups()
                known = self.by_text.get(text)
                if known is None:
                    pid = int(text)
                    known = self.by_text[text] = (pid, self.owns(pid))
                if not known[1]:
                    if self.claim is None or self.claim(raw) is not None:
                        self.index += 1
                        return int(t_text) * self.mult if self.stubs else None
                elif self.claim is None:
                    claimed = (int(t_text) * self.mult, known[0])
        ev = self.reader.record(raw, self.index, line_no)
        if claimed is not None and (ev is None or ev.pid != claimed[1] or ev.time != claimed[0]):
            self.reader.claims_exact = False
        if ev is None:
            return None
        self.index += 1
        if self.owns(ev.pid):
            return ev
        return ev.time if self.stubs else None

    def own_event(self, raw: bytes, t: int, pid: int, line_no: int) -> HeapEvent | None:
        """The event of a line that starts as the canonical writer writes an
        event of this partition's process ``pid`` at time ``t`` (in the
        header's unit: what the other partitions read from its bytes), when
        decoding it says the same kind of record, time and pid; else None,
        and nothing done (:meth:`line` then takes it)."""
        try:
            rec = json.loads(raw.decode())  # a JSON object: the line starts with "{"
        except (ValueError, RecursionError):
            return None
        kind = rec.get("kind")
        if type(kind) is not str or kind not in _EVENT_KINDS:  # (a repeated "kind" key)
            return None  # stack and facts records change the tables when decoded
        try:
            ev = self.decode(rec, self.index, line_no)
        except BadRecord:
            return None
        if ev.time != t * self.mult or ev.pid != pid:
            return None
        self.index += 1
        return ev


def partition_events(reader: JsonlReader) -> Iterator[Union[HeapEvent, list[int]]]:
    """The events of ``options.pids``; with ``pid_stubs``, every run of
    other processes' records between them as the list of their times."""
    lines = _Lines(reader)
    if reader.options.pid_stubs and not reader.options.skip_bad_records:
        return _blocks(reader, lines)
    return _by_line(reader, lines)


def _by_line(reader: JsonlReader, lines: _Lines) -> Iterator[Union[HeapEvent, list[int]]]:
    for raw, line_no in reader.lines():
        out = lines.line(raw, line_no)
        if out is not None:
            yield [out] if type(out) is int else out


def _blocks(reader: JsonlReader, lines: _Lines) -> Iterator[Union[HeapEvent, list[int]]]:
    """Whole blocks of lines: see the module's description.  (Not with
    ``skip_bad_records``: an over-long line is an error here.)"""
    read = reader.stream.read
    line_no = reader.line
    rest = b""
    try:
        while True:
            chunk = read(_BLOCK)
            if not chunk:
                if rest:  # a last line without a newline
                    line_no += 1
                    out = lines.line(rest, line_no)
                    if out is not None:
                        yield [out] if type(out) is int else out
                return
            buf = b"".join((b"\n", rest, chunk))  # a newline before the first line, for the patterns
            end = buf.rfind(b"\n") + 1
            first = buf.find(b"\n", 1)
            if (first < 0 and len(buf) - 1 > MAX_LINE_BYTES) or first - 1 > MAX_LINE_BYTES:
                reader.bad_record(reader._too_long_message(), line=line_no + 1)  # raises
            if end <= 1:
                rest = buf[1:]
                continue
            rest = buf[end:]
            line_no = yield from block(lines, buf, end, line_no)
    except COMPRESSION_ERRORS as err:
        raise compressed_data_error(reader.path, err, line_no + 1) from err
    finally:
        reader.line = line_no
