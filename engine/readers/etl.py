"""The native .etl reader: Windows ETW trace logs, plain or compressed.

Reading works in two passes over the file, neither of which holds more than a
few buffers in memory:

1. **Index.**  Read the 72-byte header of every buffer (seek + read) and group
   the buffer offsets by (logger id, processor) stream, in file order.  ETW
   writes per-processor buffers whenever they fill, so file order is not time
   order (a quiet processor's buffer can arrive seconds after a busy one's), but
   within one stream the buffers follow each other in time.
2. **Merge.**  A k-way merge over the streams, one decoded buffer (plus one of
   look-ahead, so that a StackWalk record at the start of the next buffer can
   still reach its event) per stream.  Events leave in timestamp order.

Memory: two decoded buffers per stream plus 8 bytes of index per buffer; it
does not grow with the number of events.  Input that cannot seek cheaply
(stdin, gzip, zip) is first spooled to a temporary file.

Decoding is in :meth:`EtlReader._decode`, the hot loop: one ``unpack_from`` for
each record's prefix, one more for a heap record, one ``tuple.__new__`` for its
event.  With the optional C accelerator (etl_native.py) the loop hands each
buffer to the C walk first, which takes the common records and stops at the
first other one; the loop decodes that one and hands back.  See
docs/etl-format.md for what is decoded and what is skipped.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import tempfile
from bisect import bisect_right
from itertools import chain
from operator import itemgetter
from typing import BinaryIO, Callable, Iterator

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers import etl_native
from heaplint.engine.readers.base import ReaderOptions, TraceReader
from heaplint.engine.readers.etl_container import (
    BUFFER_HEADER_SIZE,
    HEADER_KIND_NAMES,
    HEADER_LENGTH,
    HT_MESSAGE,
    HT_UNKNOWN,
    EtlFormatError,
    LogfileHeader,
    index_streams,
    looks_like_etl,
    parse_logfile_header,
    read_payload,
    scan_buffers,
)
from heaplint.engine.readers.etl_kernel import (
    GROUP_HEAP,
    HEAP_DECODED,
    HEAP_PROVIDER_GUID,
    HEAP_SPECS,
    KIND_BY_OPCODE,
    SPEC_NUMBERS,
    STACK_HEAD,
    ImageMap,
    StackResolver,
    frame_unpacker,
)
from heaplint.engine.readers.etl_records import KernelDecoder, KeyedStackQueue

_PREFIX = struct.Struct("<HHHH")  # version or size, type | marker << 8, size, hook id
_new = tuple.__new__
_TIME = itemgetter(1)
_ALLOC, _FREE, _REALLOC = int(Kind.ALLOC), int(Kind.FREE), int(Kind.REALLOC)
_CREATE = int(Kind.HEAP_CREATE)
#: the Kind of heap opcodes 32..36, for the C decoder
_KINDS = tuple(KIND_BY_OPCODE[opcode] for opcode in range(32, 37))


_KERNEL_GROUPS = frozenset((0x03, 0x14, 0x18))


class EtlReader(TraceReader):
    """Reads binary .etl files (see the module docstring and docs/etl-format.md).

    After :meth:`events` is exhausted, besides ``info`` and ``stacks``:
    ``header`` (the :class:`LogfileHeader`), ``record_counts`` (records per
    header kind), ``buffer_stats`` (buffers, compressed, lost flags) and
    ``heap_opcode_counts`` (heap records per opcode, decoded or not).
    """

    name = "etl"
    description = "Windows ETW trace log (.etl), plain or compressed buffers"
    filters_pids = True  # etl_partition.py

    def __init__(self, stream: BinaryIO, path: str, options: ReaderOptions | None = None) -> None:
        super().__init__(stream, path, options)
        self.header: LogfileHeader | None = None
        self.record_counts: dict[str, int] = {}
        self.buffer_stats: dict[str, int] = {}
        self.heap_opcode_counts: dict[int, int] = {}
        self.images = ImageMap()
        self.resolver = StackResolver(self.images, self.stacks)
        self._counts = [0] * (HT_UNKNOWN + 1)
        self._heap_ops = [0] * 256
        self._spec_counts = [0] * len(SPEC_NUMBERS)
        #: (pid, header type, raw frame bytes) -> stack id, for direct StackWalk records
        self._raw_stacks: dict[tuple, int] = {}
        self._index = 0
        self._bad_sources = 0
        self._origin = 0
        self._num = 1
        self._den = 1
        self._last_time = 0
        self._kernel: KernelDecoder | None = None
        #: set once a buffer held stack-key records: the merge then resolves them
        self.keyed_stacks = False
        self._keys = KeyedStackQueue(self.resolver)
        self._native = None  # the C decoder, when the accelerator is in use
        self._walk: Callable | None = None
        #: pid -> whether it is in ``options.pids`` (asked once per process, see etl_partition.py)
        self._ours: dict[int, bool] = {}

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return looks_like_etl(head)

    # --- the stream ------------------------------------------------------------
    def _seekable(self) -> tuple[BinaryIO, BinaryIO | None]:
        """A cheaply seekable view of the input, and the spool file to close."""
        s = self.stream
        if isinstance(s, io.BytesIO) or (isinstance(getattr(s, "raw", None), io.FileIO) and s.seekable()):
            return s, None
        spool = tempfile.TemporaryFile(prefix="heaplint-etl-")
        shutil.copyfileobj(s, spool, 1 << 20)  # type: ignore[misc]
        return spool, spool  # type: ignore[return-value]

    def events(self) -> Iterator[HeapEvent]:
        # the generator below yields one list per merge round; chain flattens
        # them in C, which saves a generator resume per event
        if self.options.pids is None:
            return chain.from_iterable(self._rounds())
        from heaplint.engine.readers.etl_partition import partition_rounds

        return chain.from_iterable(partition_rounds(self, self._rounds()))

    def _rounds(self) -> Iterator[list]:
        """Yield the events of every stream in time order, a list per round.

        Each round takes the *horizon* H, the smallest last time among the
        streams' current buffers: no later buffer of any stream holds an event
        before H (a stream's buffers follow each other in time), so every event
        up to H can go.  The round's slices (one sorted run per stream) are
        merged by one ``list.sort`` (Timsort merges runs in C), and at least one
        buffer is used up per round.  Memory: the current and look-ahead buffer
        of each stream."""
        fh, spool = self._seekable()
        try:
            size, streams = self._start(fh)
            # per stream: [offsets, next buffer, current events, position, look-ahead events]
            active = []
            for offsets in streams:
                st = [offsets, 0, [], 0, None]
                st[4] = self._load(fh, size, st, None)
                self._advance(fh, size, st)
                if st[2]:
                    active.append(st)
            while active:
                horizon = min(st[2][-1][1] for st in active)
                batch: list = []
                runs = 0
                for st in active:
                    cur, pos = st[2], st[3]
                    cut = len(cur) if cur[-1][1] <= horizon else bisect_right(cur, horizon, pos, key=_TIME)
                    if cut > pos:
                        batch += cur if pos == 0 and cut == len(cur) else cur[pos:cut]
                        runs += 1
                        st[3] = cut
                if runs > 1:
                    batch.sort(key=_TIME)
                yield list(self._keys.resolve(batch)) if self.keyed_stacks else batch
                for st in active:
                    if st[3] == len(st[2]):
                        self._advance(fh, size, st)
                active = [st for st in active if st[2]]
            yield list(self._keys.flush())
            self._finish()
        except EtlFormatError as err:
            raise TraceError(f"{err} (file offset 0x{err.offset:x})", path=self.path) from None
        finally:
            if spool is not None:
                spool.close()

    def _start(self, fh: BinaryIO) -> tuple[int, list]:
        """Read the logfile header and index the buffers; return the file size
        and the per-stream buffer offsets."""
        fh.seek(0, io.SEEK_END)
        size = fh.tell()
        _, payload = read_payload(fh, 0, size)
        self.header = header = parse_logfile_header(fh_bytes(fh, 0, BUFFER_HEADER_SIZE) + payload)
        self._set_clock(header)
        info = self.info
        info.pointer_size = header.pointer_size
        info.events_lost = header.events_lost
        info.buffers_lost = header.buffers_lost
        info.timer_frequency = header.timer_frequency
        info.clock = header.clock
        info.start_wall_time = header.start_wall_time()
        info.capture_start = 0
        info.notes.extend(header.notes)
        self._kernel = KernelDecoder(self, self.resolver, self.images)
        self._walk = self._native_walk()
        streams, self.buffer_stats = index_streams(self._scan(fh, size))
        return size, list(streams.values())

    def _native_walk(self) -> Callable | None:
        """The C decoder's ``walk`` when the accelerator is in use (see etl_native.py)."""
        native = etl_native.NATIVE
        if native is None:
            return None
        try:
            self._native = native.Decoder(
                HeapEvent, self._origin, self._num, self._den, self._raw_stacks, _KINDS, HEAP_PROVIDER_GUID
            )
        except OverflowError:
            return None  # a clock whose arithmetic leaves int64: Python's ints do it
        if self.options.pids is not None:
            self._native.partition(self._ours)  # other processes' heap records as light events
        return self._native.walk

    def _scan(self, fh: BinaryIO, size: int) -> Iterator:
        try:
            yield from scan_buffers(fh, size)
        except EtlFormatError as err:
            self.bad_record(f"{err}; the buffers from there on are not read")

    def _set_clock(self, header: LogfileHeader) -> None:
        self._origin = header.origin
        per_second = header.ticks_per_second
        g = math.gcd(1_000_000_000, per_second)
        self._num = 1_000_000_000 // g
        self._den = per_second // g

    def time_ns(self, raw: int) -> int:
        """A raw timestamp as ns of trace time (from the logfile header's timestamp)."""
        return (raw - self._origin) * self._num // self._den

    def _advance(self, fh: BinaryIO, size: int, st: list) -> None:
        """Make the look-ahead buffer current and decode the next one, skipping
        buffers without events."""
        while True:
            cur = st[4]
            if cur is None:
                st[2] = []
                return
            # a StackWalk record at the start of the next buffer may belong to an
            # event at the end of the last buffer that had events
            st[4] = self._load(fh, size, st, cur if cur else st[2])
            if cur:
                st[2] = cur
                st[3] = 0
                if cur[-1][1] > self._last_time:
                    self._last_time = cur[-1][1]
                return

    def _load(self, fh: BinaryIO, size: int, st: list, prev: list | None) -> list | None:
        """Decode the stream's next buffer; None when it has no more."""
        offsets = st[0]
        i = st[1]
        if i >= len(offsets):
            return None
        st[1] = i + 1
        try:
            header, payload = read_payload(fh, offsets[i], size)
        except EtlFormatError as err:
            self.bad_record(str(err))
            return []
        return self._decode(payload, prev, header.offset)

    # --- the hot loop ----------------------------------------------------------
    def _decode(self, data: bytes, prev: list | None, where: int) -> list:
        """The events of one buffer's records, sorted by time.

        The hot loop.  A record's first 8 bytes give its header type and marker
        flags, size and hook id; ``(type | marker << 8) << 16 | hook`` looks up
        the heap-event layouts directly, so a heap record costs one dict probe,
        one ``unpack_from`` of the whole record and one ``tuple.__new__``."""
        out: list = []
        append = out.append
        prefix = _PREFIX.unpack_from
        counts = self._counts
        heap_ops = self._heap_ops
        spec_counts = self._spec_counts
        raw_stacks = self._raw_stacks
        specs = HEAP_SPECS
        kernel_groups = _KERNEL_GROUPS
        new, event = _new, HeapEvent
        alloc, free, realloc, create = _ALLOC, _FREE, _REALLOC, _CREATE
        origin, num, den = self._origin, self._num, self._den
        idx = self._index
        walk = self._walk
        pos = 0
        end = len(data)
        while pos + 8 <= end:
            if walk is not None:
                # the C accelerator takes the common records; it stops at the
                # first other one, which this loop decodes before handing back
                pos, idx = walk(data, pos, out, idx)
                if pos + 8 > end:
                    break
            first, typemark, size, hook = prefix(data, pos)
            spec = specs.get(typemark << 16 | hook)
            if spec is not None:
                kind, unpack, need, number = spec
                spec_counts[number] += 1
                if not need <= size <= end - pos:
                    self._bad(where, pos, f"heap record of {size} bytes is too short")
                    break
                if kind == alloc:
                    tid, pid, ts, heap, sz, addr, src = unpack(data, pos)
                    if src > 6:
                        src = self._source(src)
                    append(new(event, (kind, (ts - origin) * num // den, pid, tid, heap, addr, sz, 0, None, src, None, 0, None, idx, 0)))  # fmt: skip
                elif kind == free:
                    tid, pid, ts, heap, addr, src = unpack(data, pos)
                    if src > 6:
                        src = self._source(src)
                    append(new(event, (kind, (ts - origin) * num // den, pid, tid, heap, addr, 0, 0, None, src, None, 0, None, idx, 0)))  # fmt: skip
                elif kind == realloc:
                    tid, pid, ts, heap, addr, old, sz, osz, src = unpack(data, pos)
                    if src > 6:
                        src = self._source(src)
                    append(new(event, (kind, (ts - origin) * num // den, pid, tid, heap, addr, sz, old, osz, src, None, 0, None, idx, 0)))  # fmt: skip
                elif kind == create:
                    tid, pid, ts, heap, flags = unpack(data, pos)
                    append(new(event, (kind, (ts - origin) * num // den, pid, tid, heap, 0, 0, 0, None, 0, None, flags, None, idx, 0)))  # fmt: skip
                else:
                    tid, pid, ts, heap = unpack(data, pos)
                    append(new(event, (kind, (ts - origin) * num // den, pid, tid, heap, 0, 0, 0, None, 0, None, 0, None, idx, 0)))  # fmt: skip
                idx += 1
                pos += (size + 7) & -8
                continue
            ht = typemark & 0xFF
            marker = typemark >> 8
            if hook == 0x1820 and out and (typemark == 0xC011 or typemark == 0xC010) and 32 <= size <= end - pos:
                # StackWalk (perfinfo header) right after its event: the common case, inlined
                ts, pid, tid = STACK_HEAD(data, pos + 16)
                last = out[-1]
                if last[3] == tid and last[1] == (ts - origin) * num // den and last[2] == pid and 0 < last[0] <= 5:
                    # the raw frame bytes of a process identify its stack: no unpacking on a hit
                    raw = (pid, ht, data[pos + 32 : pos + size])
                    sid = raw_stacks.get(raw)
                    if sid is None:
                        psize = 8 if ht == 17 else 4
                        frames = frame_unpacker((size - 32) // psize, psize)(data, pos + 32)
                        sid = raw_stacks[raw] = self.resolver.direct(pid, frames)
                    out[-1] = new(event, last[:10] + (sid,) + last[11:])
                    counts[ht] += 1
                    pos += (size + 7) & -8
                    continue
            if marker & 0xC0 == 0xC0 and (ht <= 4 or ht == 16 or ht == 17) and ht:
                counts[ht] += 1
                group = hook >> 8
                if group == GROUP_HEAP:
                    # an opcode that changes no block, or a block event with unusual
                    # marker bits (the fast table expects exactly 0xC0): decode it slowly
                    self._index = idx
                    ev = self._kernel.hooked_heap(data, pos, ht, size, hook)  # type: ignore[union-attr]
                    if ev is not None:
                        append(ev)
                        idx += 1
                elif group in kernel_groups:
                    if size < HEADER_LENGTH[ht] or pos + size > end:
                        self._bad(where, pos, f"record of {size} bytes is too short")
                        break
                    self._index = idx
                    ev = self._kernel.hooked(data, pos, ht, first, size, hook, out, prev)  # type: ignore[union-attr]
                    if ev is not None:
                        append(ev)
                        idx += 1
            elif ht in HEADER_LENGTH and marker & 0xC0 == 0xC0:
                counts[ht] += 1
                size = first
                if size < HEADER_LENGTH[ht] or pos + size > end:
                    self._bad(where, pos, f"record of {size} bytes is shorter than its header")
                    break
                self._index = idx
                ev = self._kernel.classic(data, pos, ht, size, out, prev)  # type: ignore[union-attr]
                if ev is not None:
                    append(ev)
                    idx += 1
            elif marker & 0xD0 == 0x90:
                counts[HT_MESSAGE] += 1  # a WPP message: sized by its first word
                size = first
            elif first == 0xFFFF and typemark == 0xFFFF:
                break  # unused space filled with 0xFF
            else:
                counts[HT_UNKNOWN] += 1
                self._bad(where, pos, f"unknown record header (type {ht}, flags 0x{marker:02x})")
                break
            if size < 8:
                self._bad(where, pos, f"record size {size} is impossible")
                break
            pos += (size + 7) & -8
        self._index = idx
        out.sort(key=_TIME)  # records of one buffer are in time order but for rare ties; O(n) then
        return out

    def _bad(self, where: int, pos: int, message: str) -> None:
        """A record the walker cannot get past: the rest of its buffer is skipped."""
        self.bad_record(
            f"{message}; buffer at file offset 0x{where:x}, record at +0x{pos + BUFFER_HEADER_SIZE:x} "
            "(the rest of the buffer is skipped)"
        )

    def _source(self, value: int) -> int:
        self._bad_sources += 1
        return 0

    # --- the end ---------------------------------------------------------------
    def _finish(self) -> None:
        """Final trace facts, once every buffer is read."""
        self.resolver.finish()
        if self._native is not None:
            heap, other, messages, other_provider = self._native.counts()
            for (htype, opcode), n in heap.items():
                self._counts[htype] += n
                self._heap_ops[opcode] += n
            for htype, n in other.items():
                self._counts[htype] += n
            self._counts[HT_MESSAGE] += messages
            self._kernel.other_provider_records += other_provider  # type: ignore[union-attr]
        for number, n in enumerate(self._spec_counts):
            htype, opcode = SPEC_NUMBERS[number]
            self._counts[htype] += n
            self._heap_ops[opcode] += n
        info = self.info
        info.capture_end = self._last_time
        stats = self.buffer_stats
        flagged = stats.get("buffer_lost_flag", 0)
        if flagged > info.buffers_lost:
            info.buffers_lost = flagged
        flagged = stats.get("events_lost_flag", 0)
        if flagged and not info.events_lost:
            info.events_lost = flagged
            info.notes.append(
                f"{flagged} buffer(s) flagged 'events lost' while the header reports none; "
                "events_lost is a lower bound"
            )
        self.record_counts = {
            HEADER_KIND_NAMES[ht]: n for ht, n in enumerate(self._counts) if n and ht in HEADER_KIND_NAMES
        }
        self.heap_opcode_counts = {op: n for op, n in enumerate(self._heap_ops) if n}
        skipped = {op: n for op, n in self.heap_opcode_counts.items() if op not in HEAP_DECODED}
        if skipped:
            listed = ", ".join(f"opcode {op}: {n:,}" for op, n in sorted(skipped.items()))
            info.notes.append(f"heap records that change no block were counted, not replayed ({listed})")
        if self._bad_sources:
            info.notes.append(f"{self._bad_sources:,} heap records had an unknown Source value (read as unknown)")
        if self.resolver.unresolved_keys:
            info.notes.append(f"{self.resolver.unresolved_keys:,} stacks referenced cache keys never resolved")
        if stats.get("reordered"):
            info.notes.append(
                f"{stats['reordered']} processor stream(s) had buffers out of sequence in the file "
                "(a circular-mode trace?): read in sequence-number order"
            )
        header = self.header
        if header is not None:
            info.notes.append(
                f"logger '{header.logger_name}', Windows build {header.build}, {header.processors} processors, "
                f"{stats.get('buffers', 0):,} buffers ({stats.get('compressed', 0):,} compressed)"
            )


def fh_bytes(fh: BinaryIO, offset: int, count: int) -> bytes:
    """``count`` bytes at ``offset``."""
    fh.seek(offset)
    return fh.read(count)


__all__ = ["EtlReader"]
