"""The canonical JSON Lines reader's process filter (``ReaderOptions.pids``),
used by ``--jobs`` partitions: other processes' records are skipped or
stubbed from their first bytes, without being decoded."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import TYPE_CHECKING, Iterator

from heaplint.engine.events import HeapEvent
from heaplint.engine.readers.base import STUB_KIND, stub_event
from heaplint.engine.readers.canonical_format import MAX_LINE_BYTES, BadRecord

# the reader's own helpers (this module is its process filter, imported by it lazily)
from heaplint.engine.readers.canonical import _COMPRESSION_ERRORS, _json_error, _truncated

if TYPE_CHECKING:
    from heaplint.engine.readers.canonical import JsonlReader

_new = tuple.__new__

#: the start of an event record as ``heaplint convert`` and ``synth`` write
#: it (kind, integer time and pid first, compact separators): the fields the
#: pid filter reads from the bytes to skip other processes' records undecoded.
#: (At most 19 digits: longer numbers are left to the decoder and its errors.)
_EVENT_HEAD = re.compile(
    rb'\{"kind":"(?:alloc|free|realloc|create|destroy|process_start|process_end)",'
    rb'"time":(\d{1,19}),"pid":(\d{1,19})[,}]'
)
#: the whole of such a record, with only known fields and plain values: the
#: grammar makes sure ``json.loads`` reads the same kind, time and pid (no
#: backslash, so no escaped key; no nested object; no second kind/time/pid)
_EVENT_LINE = re.compile(
    rb'\{"kind":"(?:alloc|free|realloc|create|destroy|process_start|process_end)",'
    rb'"time":(\d{1,19}),"pid":(\d{1,19})'
    rb'(?:,"(?:tid|heap|address|size|new_address|new_size|old_address|old_size|source|stack|flags|image)"'
    rb':(?:"[^"\\]*"|\d+))*\}\r?\n?'
)


def partition_events(reader: JsonlReader) -> Iterator[HeapEvent]:
    """The events of ``options.pids`` (others dropped or stubbed), decoding
    other processes' records only when their kind, time and pid cannot be
    read from the raw bytes.

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
    pids = reader.options.pids
    assert pids is not None
    stubs = reader.options.pid_stubs
    head = None if reader.options.skip_bad_records else _EVENT_HEAD.match
    claim = None if stubs else _EVENT_LINE.fullmatch
    mult = reader.decoder.mult
    #: pid text -> (pid, ours?); pid -> ours?  (``pid in pids`` is asked
    #: once per process, in input order, as PidPartition needs)
    by_text: dict[bytes, tuple[int, bool]] = {}
    ours: dict[int, bool] = {}
    loads = json.loads
    decode = reader.decoder.decode
    readline = reader.stream.readline
    cap = MAX_LINE_BYTES
    limit = cap + 1
    line_no = reader.line
    index = 0
    try:
        for raw in iter(partial(readline, limit), b""):
            line_no += 1
            if len(raw) > cap and raw[-1] != 10:
                reader._skip_long_line(line_no)
                continue
            claimed = None
            if head is not None:
                m = head(raw)
                if m is not None:
                    t_text, text = m.groups()
                    known = by_text.get(text)
                    if known is None:
                        pid = int(text)
                        mine = ours.get(pid)
                        if mine is None:
                            mine = ours[pid] = pid in pids
                        known = by_text[text] = (pid, mine)
                    if not known[1]:
                        if claim is None or claim(raw) is not None:
                            if stubs:
                                yield _new(HeapEvent, (STUB_KIND, int(t_text) * mult, known[0], 0, 0, 0, 0, 0,
                                                       None, 0, None, 0, None, index, line_no))
                            index += 1
                            continue
                    elif claim is None:
                        claimed = t_text
            try:
                rec = loads(raw.decode())
            except (ValueError, RecursionError) as err:
                if raw.strip():
                    message, col = _json_error(err)
                    reader.bad_record(message, line=line_no, col=col)
                continue
            if type(rec) is not dict:
                reader.bad_record(f"expected a JSON object per line, got {type(rec).__name__}", line=line_no)
                continue
            try:
                ev = decode(rec, index, line_no)
            except BadRecord as err:
                reader.bad_record(str(err), line=line_no)
                continue
            if claimed is not None:
                if ev is not None and ev.pid == known[0] and ev.time == int(claimed) * mult:
                    index += 1
                    yield ev
                    continue
                reader.claims_exact = False
            if ev is not None:
                index += 1
                mine = ours.get(ev.pid)
                if mine is None:
                    mine = ours[ev.pid] = ev.pid in pids
                if mine:
                    yield ev
                elif stubs:
                    yield stub_event(ev.time, ev.pid, ev.index, ev.line)
    except _COMPRESSION_ERRORS as err:
        raise _truncated(reader.path, line_no + 1, err) from err
    finally:
        reader.line = line_no
