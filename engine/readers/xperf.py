"""Reader for the text that ``xperf -i trace.etl -o trace.txt -a dumper`` writes.

The dump opens with a header block: a ``BeginHeader`` line, one row per event
type (the event name, then its comma-separated column labels), an
``EndHeader`` line.  Data rows follow: the event name, then space-padded
values in the order of that event's header row.  Timestamps are microseconds;
processes look like ``name.exe ( 1234)``.

Columns are always found from the header rows (never by position), by
normalised label with the aliases in ``HEAP_COLUMNS`` and friends; a required
column that is not there stops the read with the header's line, what is
missing and what was seen.  docs/text-exports.md lists every assumption.

Streaming: one line at a time.  When the dump carries ``Stack`` rows, heap
events wait in a bounded FIFO (``STACK_WINDOW_NS`` of trace time, at most
``STACK_PENDING_MAX`` events) for the stack rows of the same (timestamp,
thread) to arrive.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers.base import ReaderOptions, TraceReader, value_error_text
from heaplint.engine.readers.tabular import (
    MAX_ROW_CHARS,
    Column,
    StackInterner,
    bounded_lines,
    decode_head,
    describe_missing,
    find_columns,
    normalise_label,
    parse_address,
    parse_count,
    parse_decimal_ns,
    parse_process,
    parse_source,
    split_fields,
    text_stream,
)
from heaplint.engine.readers.xperf_rows import (
    HEAP_COLUMNS,
    HEAP_EVENT_NAMES,
    LOST_COLUMNS,
    LOST_EVENT_NAMES,
    PROCESS_COLUMNS,
    PROCESS,
    PROCESS_EVENT_NAMES,
    STACK_COLUMNS,
    StackJoiner,
    summarise_skipped,
)

#: how long (trace time) a heap event waits for its Stack rows
STACK_WINDOW_NS = 50_000_000
#: at most this many heap events wait for stacks at once
STACK_PENDING_MAX = 100_000

Decoder = Callable[[list[str], int], None]


def _is_label(value: str) -> bool:
    """Whether a row's second field is the ``TimeStamp`` label (a header row)
    rather than a time value; the cheap first test keeps data rows fast."""
    return bool(value) and not (value[0].isdigit() or value[0] == "-") and normalise_label(value) == "timestamp"


class _Layout:
    """One header row: the event's column labels and where they were declared."""

    __slots__ = ("name", "labels", "line")

    def __init__(self, name: str, labels: list[str], line: int) -> None:
        self.name = name
        self.labels = labels
        self.line = line


class XperfReader(TraceReader):
    """``xperf -a dumper`` text output (see the module docstring)."""

    name = "xperf"
    description = "text dump written by 'xperf -i trace.etl -o trace.txt -a dumper'"
    #: how long (trace time) a heap event waits for its Stack rows
    stack_window_ns = STACK_WINDOW_NS
    #: at most this many heap events wait for stacks at once
    stack_pending_max = STACK_PENDING_MAX

    def __init__(self, stream, path: str, options: ReaderOptions | None = None) -> None:
        super().__init__(stream, path, options)
        self._layouts: dict[str, _Layout] = {}
        self._decoders: dict[str, Decoder] = {}
        self._ready: deque[HeapEvent] = deque()
        self._records = 0
        self._last_time = 0
        self._heap_pids: set[int] = set()
        self._pending_start: dict[int, HeapEvent] = {}
        self._skipped: dict[str, int] = {}
        self._prev_record_line = 0
        self._line = ""  # the record row being decoded
        self._stacks = StackJoiner(
            StackInterner(self.stacks), self._ready, self.stack_window_ns, self.stack_pending_max
        )

    # --- detection ---------------------------------------------------------
    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """A ``BeginHeader`` line, or a header row whose second label is
        ``TimeStamp`` and third a process or thread column."""
        for raw in decode_head(head).splitlines()[:400]:
            line = raw.strip()
            if line == "BeginHeader":
                return True
            if "," in line:
                f = split_fields(line)
                if len(f) > 2 and normalise_label(f[1]) == "timestamp":
                    if normalise_label(f[2]) in ("processnamepid", "threadid"):
                        return True
        return False

    # --- reading -----------------------------------------------------------
    def events(self) -> Iterator[HeapEvent]:
        """Yield heap and process events in file order (see module docstring)."""
        in_header = False
        ready = self._ready
        decoders = self._decoders
        stacks = self._stacks
        for line_no, raw in enumerate(bounded_lines(text_stream(self.stream)), 1):
            if raw is None:
                self.bad_record(f"line longer than {MAX_ROW_CHARS:,} characters: not a row of an xperf dump",
                                line=line_no)
                continue
            line = raw.strip()
            if not line:
                continue
            if line == "BeginHeader":
                in_header = True
                continue
            if line == "EndHeader":
                in_header = False
                continue
            if "," not in line:
                continue  # progress output and other chatter around the dump
            fields = split_fields(line)
            self._line = line
            name = fields[0]
            if in_header or (len(fields) > 1 and _is_label(fields[1])):
                self._header_row(name, fields[1:], line_no)
                self._prev_record_line = line_no
                continue
            decoder = decoders.get(name)
            if decoder is None:
                decoder = decoders[name] = self._compile(name, line_no)
            decoder(fields, line_no)
            self._prev_record_line = line_no
            if ready:
                yield from ready
                ready.clear()
        stacks.flush()
        yield from ready
        ready.clear()
        self._finish_info()

    def _header_row(self, name: str, labels: list[str], line_no: int) -> None:
        self._layouts[normalise_label(name)] = _Layout(name, labels, line_no)
        if normalise_label(name) == "stack":
            self._stacks.enabled = True
        self._decoders.clear()  # a redefined header changes how rows decode

    def _emit(self, ev: HeapEvent) -> None:
        self._last_time = ev.time
        self._saw(ev.time)
        self._stacks.add(ev)

    def _saw(self, t: int) -> None:
        info = self.info
        if info.capture_start is None or t < info.capture_start:
            info.capture_start = t
        if info.capture_end is None or t > info.capture_end:
            info.capture_end = t

    def _finish_info(self) -> None:
        newest = self._stacks.newest
        if newest is not None and (self.info.capture_end is None or newest > self.info.capture_end):
            self.info.capture_end = newest
        if self._skipped:
            self.info.notes.append(summarise_skipped(self._skipped))
        self.info.notes.extend(self._stacks.notes())
        if self._pending_start:
            self.info.notes.append(
                f"{len(self._pending_start):,} process start(s) without heap events were recorded as coverage facts only"
            )

    # --- per event type ----------------------------------------------------
    def _compile(self, name: str, line_no: int) -> Decoder:
        norm = normalise_label(name)
        kind = HEAP_EVENT_NAMES.get(norm)
        if kind is not None:
            return self._heap_decoder(name, kind, self._layout_for(name, norm, line_no))
        if norm in PROCESS_EVENT_NAMES:
            return self._process_decoder(name, PROCESS_EVENT_NAMES[norm], self._layout_for(name, norm, line_no))
        if norm == "stack":
            self._stacks.enabled = True
            return self._stack_decoder(self._layout_for(name, norm, line_no))
        if norm in LOST_EVENT_NAMES:
            return self._lost_decoder(name, self._layouts.get(norm))
        return self._skip_decoder(name)

    def _layout_for(self, name: str, norm: str, line_no: int) -> _Layout:
        layout = self._layouts.get(norm)
        if layout is None:
            raise TraceError(
                f"a '{name}' row, but the dump has no header row for '{name}' (between BeginHeader and "
                "EndHeader), so its columns are unknown; export the dump again with 'xperf -a dumper'",
                path=self.path,
                line=line_no,
            )
        return layout

    def _columns(self, layout: _Layout, wanted: tuple[Column, ...]) -> dict[str, int]:
        found, missing = find_columns(layout.labels, wanted)
        if missing:
            raise TraceError(
                describe_missing(missing, layout.labels, f"'{layout.name}' header row"),
                path=self.path,
                line=layout.line,
            )
        return found

    def _skip_decoder(self, name: str) -> Decoder:
        skipped = self._skipped
        skipped.setdefault(name, 0)

        def skip(fields: list[str], line_no: int) -> None:
            skipped[name] += 1

        return skip

    def _bad(self, name: str, layout: _Layout, fields: list[str], err: Exception, line_no: int) -> None:
        if isinstance(err, IndexError):
            msg = f"'{name}' row has {len(fields) - 1} values but its header row (line {layout.line}) declares {len(layout.labels)}"
        else:
            msg = f"'{name}' row: {value_error_text(err)}"
        self.bad_record(msg, line=line_no)

    def _heap_decoder(self, name: str, kind: Kind, layout: _Layout) -> Decoder:
        cols = self._columns(layout, HEAP_COLUMNS[kind])
        if "process" not in cols and "pid" not in cols:
            raise TraceError(
                describe_missing([PROCESS], layout.labels, f"'{layout.name}' header row"),
                path=self.path,
                line=layout.line,
            )
        # every column index shifts by one: field 0 is the event name
        idx = {k: v + 1 for k, v in cols.items()}
        t_i, pid_i, proc_i = idx["time"], idx.get("pid"), idx.get("process")
        tid_i, heap_i, src_i = idx.get("tid"), idx["heap"], idx.get("source")
        addr_i, size_i = idx.get("address"), idx.get("size")
        old_i, old_size_i, flags_i = idx.get("old_address"), idx.get("old_size"), idx.get("flags")
        k = int(kind)
        emit, heap_pids, info = self._emit, self._heap_pids, self.info

        def decode(f: list[str], line_no: int) -> None:
            try:
                time = parse_decimal_ns(f[t_i], 3)
                if pid_i is not None:
                    pid, image = int(f[pid_i]), None
                else:
                    parsed = parse_process(f[proc_i])  # type: ignore[index]
                    if parsed is None:
                        raise ValueError(f"no process id in '{f[proc_i]}'")  # type: ignore[index]
                    image, pid = parsed
                ev = HeapEvent(
                    k,
                    time,
                    pid,
                    int(f[tid_i]) if tid_i is not None else 0,
                    parse_address(f[heap_i]),
                    parse_address(f[addr_i]) if addr_i is not None else 0,
                    parse_count(f[size_i]) if size_i is not None else 0,
                    parse_address(f[old_i]) if old_i is not None else 0,
                    parse_count(f[old_size_i]) if old_size_i is not None else None,
                    parse_source(f[src_i]) if src_i is not None else 0,
                    None,
                    parse_count(f[flags_i]) if flags_i is not None else 0,
                    None,
                    self._records,
                    line_no,
                )
            except (ValueError, IndexError) as err:
                self._bad(name, layout, f, err, line_no)
                return
            self._records += 1
            if pid not in heap_pids:
                self._first_heap_event(pid, time, image)
            emit(ev)

        return decode

    def _first_heap_event(self, pid: int, time: int, image: str | None) -> None:
        """A process's first heap event: emit its start record if the dump had one.

        Process starts are held until then so that processes without heap
        activity do not clutter the replay.  The start is emitted no earlier
        than the last emitted event, so the replay never sees it out of order."""
        self._heap_pids.add(pid)
        facts = self.info.process(pid)
        if image and not facts.image:
            facts.image = image
        start = self._pending_start.pop(pid, None)
        if start is not None:
            self._emit(start._replace(time=max(start.time, self._last_time)))

    def _process_decoder(self, name: str, what: str, layout: _Layout) -> Decoder:
        cols = self._columns(layout, PROCESS_COLUMNS)
        t_i, p_i = cols["time"] + 1, cols["process"] + 1
        info = self.info

        def decode(f: list[str], line_no: int) -> None:
            try:
                time = parse_decimal_ns(f[t_i], 3)
                parsed = parse_process(f[p_i])
                if parsed is None:
                    raise ValueError(f"no process id in '{f[p_i]}'")
            except (ValueError, IndexError) as err:
                self._bad(name, layout, f, err, line_no)
                return
            image, pid = parsed
            self._saw(time)
            facts = info.process(pid)
            if image:
                facts.image = image
            index = self._records
            self._records += 1
            if what == "start":
                facts.start_seen = True
                facts.end_seen = None
                self._pending_start[pid] = HeapEvent(int(Kind.PROCESS_START), time, pid, image=image, index=index, line=line_no)
            elif what == "end":
                facts.end_seen = True
                self._pending_start.pop(pid, None)
                if pid in self._heap_pids:
                    self._heap_pids.discard(pid)
                    self._emit(HeapEvent(int(Kind.PROCESS_END), time, pid, image=image, index=index, line=line_no))
            elif what == "dcstart":
                if facts.start_seen is None:
                    facts.start_seen = False
            elif facts.end_seen is None:  # dcend: still running when the trace stopped
                facts.end_seen = False

        return decode

    def _stack_decoder(self, layout: _Layout) -> Decoder:
        cols = self._columns(layout, STACK_COLUMNS)
        t_i, tid_i = cols["time"] + 1, cols["tid"] + 1
        no_i = cols["number"] + 1 if "number" in cols else None
        frame_i = cols["frame"] + 1 if "frame" in cols else None
        addr_i = cols["address"] + 1 if "address" in cols else None
        frame_is_last = frame_i is not None and frame_i == len(layout.labels)
        if frame_i is None and addr_i is None:
            raise TraceError(
                describe_missing([STACK_COLUMNS[3]], layout.labels, f"'{layout.name}' header row"),
                path=self.path,
                line=layout.line,
            )
        stacks = self._stacks

        def decode(f: list[str], line_no: int) -> None:
            try:
                time = parse_decimal_ns(f[t_i], 3)
                tid = int(f[tid_i])
                number = int(f[no_i]) if no_i is not None else 0
                frame = ""
                if frame_i is not None and frame_i < len(f):
                    if frame_is_last and len(f) > frame_i + 1:
                        # a symbol with commas: the last column takes the rest of the line
                        frame = self._line.split(",", frame_i)[frame_i]
                    else:
                        frame = f[frame_i]
                if not frame or frame.lower() in ("unknown", "?"):
                    frame = f[addr_i] if addr_i is not None else frame  # type: ignore[index]
            except (ValueError, IndexError) as err:
                self._bad("Stack", layout, f, err, line_no)
                return
            stacks.frame(time, tid, number, frame.strip(), line_no, self._prev_record_line == stacks.last_line)

        return decode

    def _lost_decoder(self, name: str, layout: _Layout | None) -> Decoder:
        count_i = proc_i = None
        if layout is not None:
            found, _ = find_columns(layout.labels, LOST_COLUMNS)
            count_i = found["count"] + 1 if "count" in found else None
            proc_i = found["process"] + 1 if "process" in found else None
        info = self.info

        def decode(f: list[str], line_no: int) -> None:
            try:
                n = parse_count(f[count_i]) if count_i is not None else 1
                parsed = parse_process(f[proc_i]) if proc_i is not None else None
            except (ValueError, IndexError) as err:
                self.bad_record(f"'{name}' row: {value_error_text(err)}", line=line_no)
                return
            if normalise_label(name).startswith("buffer") or normalise_label(name).endswith("buffers"):
                info.buffers_lost += n
            else:
                info.events_lost += n
            if parsed is not None:
                info.process(parsed[1]).events_lost += n

        return decode
