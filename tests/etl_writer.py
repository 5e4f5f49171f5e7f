"""A small .etl writer for tests and benchmarks (not part of heaplint).

``write_etl(path, events, ...)`` writes heap and process events the way a
merged xperf heap trace stores them: a header buffer with the logfile header,
then per-processor buffers, each flushed when full, so that file order is not
time order.  It streams: memory is one buffer per processor (plus the stack
key cache), whatever the number of events, so benchmarks can write millions.

Events are :class:`~heaplint.engine.events.HeapEvent` values or
:class:`Record` values (an event plus how to write it: its pointer size, its
processor, its stack, its record header kind).  Times are ns and must be
representable in the timer's ticks (multiples of 100 ns at the default 10 MHz).

Import it from tests as ``etl_writer`` (tests/ is on ``sys.path`` under pytest)
and from benchmarks after ``sys.path.insert(0, <root>/tests)``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Mapping, Sequence

from heaplint.engine.events import HeapEvent, Kind

try:
    from lzxpress_compress import compress as _compress
except ImportError:  # imported as tests.etl_writer
    from tests.lzxpress_compress import compress as _compress  # type: ignore[no-redef]

HEAP_GUID = bytes.fromhex("ab6229228061884ba825346b75f2a24a")
OTHER_GUID = bytes(range(16))
ORIGIN_TICKS = 5_000_000_000  # raw timestamp of the logfile header record
START_FILETIME = 132_400_000_000_000_000  # 2020-07-23

_SYSTEM = struct.Struct("<HBBHHIIqII")
_COMPACT = struct.Struct("<HBBHHIIq")
_PERFINFO = struct.Struct("<HBBHHq")
_FULL = struct.Struct("<HBBBBHIIq16sQ")
_INSTANCE = struct.Struct("<HBBBBHIIq16sQII16s")
_EVENT_HEADER = struct.Struct("<HBBHHIIq16sHBBBBHQQ16s")
_BUFFER = struct.Struct("<IIIiqqQHHIIHH16s")


@dataclass(frozen=True)
class Record:
    """An event plus how to write it."""

    event: HeapEvent
    #: pointer size of the event (4: a 32-bit process); None: the trace's
    pointer_size: int | None = None
    #: processor whose buffer gets the record; None: by thread id
    cpu: int | None = None
    #: user-mode stack, innermost first, written after the event
    frames: tuple[int, ...] = ()
    #: kernel-mode part of the stack (only with stack_mode="key": a kernel key)
    kernel_frames: tuple[int, ...] = ()
    #: record header: "system", "compact", "classic" or "event_header"
    header: str = "system"


@dataclass
class _Buffer:
    cpu: int
    data: bytearray = field(default_factory=bytearray)
    last_ticks: int = 0


class EtlWriter:
    """Writes one .etl file; use :func:`write_etl` unless you need the pieces."""

    def __init__(self, fh: BinaryIO, *, pointer_size: int = 8, cpus: int = 2, compress: bool = False,
                 buffer_size: int = 64 * 1024, events_lost: int = 0, buffers_lost: int = 0,
                 events_lost_buffers: Sequence[int] = (), lost_buffers: Sequence[int] = (),
                 timer_frequency: int = 10_000_000, clock_type: int = 1, stack_mode: str = "direct",
                 key_cache_size: int = 1 << 30, noise: bool = False, logger_id: int = 1,
                 process_records: bool = True) -> None:  # fmt: skip
        self.fh = fh
        self.pointer_size = pointer_size
        self.cpus = cpus
        self.compress = compress
        self.buffer_size = buffer_size
        self.events_lost = events_lost
        self.buffers_lost = buffers_lost
        self.events_lost_buffers = set(events_lost_buffers)
        self.lost_buffers = set(lost_buffers)
        self.freq = timer_frequency if clock_type == 1 else (10_000_000 if clock_type == 2 else timer_frequency)
        self.clock_type = clock_type
        self.stack_mode = stack_mode
        self.key_cache_size = key_cache_size
        self.noise = noise
        self.logger_id = logger_id
        self.process_records = process_records
        self.buffers = [_Buffer(c) for c in range(cpus)]
        self.written = 0  # data buffers written
        self.sequence = 0
        self.keys: dict[tuple, int] = {}  # (pid, frames) -> live stack key
        self.next_key = 0x1000
        self.count = 0
        self._write_header()

    # --- encoding ---------------------------------------------------------------
    def ticks(self, ns: int) -> int:
        raw, rest = divmod(ns * self.freq, 1_000_000_000)
        if rest:
            raise ValueError(f"time {ns} ns is not a whole number of {self.freq} Hz ticks")
        return ORIGIN_TICKS + raw

    def _ptr(self, psize: int) -> str:
        return "I" if psize == 4 else "Q"

    def system(self, hook: int, payload: bytes, tid: int, pid: int, ticks: int, psize: int, version: int = 2) -> bytes:
        ht = 2 if psize == 8 else 1
        return _SYSTEM.pack(version, ht, 0xC0, 32 + len(payload), hook, tid, pid, ticks, 0, 0) + payload

    def perfinfo(self, hook: int, payload: bytes, ticks: int, psize: int = 8, version: int = 2) -> bytes:
        ht = 17 if psize == 8 else 16
        return _PERFINFO.pack(version, ht, 0xC0, 16 + len(payload), hook, ticks) + payload

    def heap_payload(self, ev: HeapEvent, psize: int) -> tuple[int, bytes]:
        p = self._ptr(psize)
        kind = ev.kind
        if kind == Kind.HEAP_CREATE:
            return 32, struct.pack("<" + p + "I" + p * 3, ev.heap, ev.flags, 0x100000, 0x1000, 0)
        if kind == Kind.ALLOC:
            return 33, struct.pack("<" + p * 3 + "I", ev.heap, ev.size, ev.address, ev.source)
        if kind == Kind.REALLOC:
            return 34, struct.pack("<" + p * 5 + "I", ev.heap, ev.address, ev.old_address, ev.size,
                                   ev.old_size or 0, ev.source)  # fmt: skip
        if kind == Kind.DESTROY:
            return 35, struct.pack("<" + p, ev.heap)
        if kind == Kind.FREE:
            return 36, struct.pack("<" + p * 2 + "I", ev.heap, ev.address, ev.source)
        raise ValueError(f"not a heap event: {ev}")

    def process_payload(self, pid: int, parent: int, image: str, psize: int) -> bytes:
        p = self._ptr(psize)
        sid = struct.pack("<" + p + p, 0xFFFF0000 & (1 << (8 * psize)) - 1, 0) + bytes([1, 5, 0, 0, 0, 0, 0, 5])
        sid += struct.pack("<5I", 21, 1, 2, 3, 1001)
        return (struct.pack("<" + p + "IIIi" + p + "I", 0x1000 + pid, pid, parent, 1, 259, 0x1AB000, 0) + sid
                + image.encode("latin-1") + b"\0" + image.encode("utf-16-le") + b"\0\0" + b"\0\0\0\0")  # fmt: skip

    def image_payload(self, pid: int, base: int, size: int, path: str, psize: int) -> bytes:
        p = self._ptr(psize)
        return (struct.pack("<" + p + p + "IIII" + p + "IIII", base, size, pid, 0, 0x5F000000, 0, base, 0, 0, 0, 0)
                + path.encode("utf-16-le") + b"\0\0")  # fmt: skip

    # --- the file ----------------------------------------------------------------
    def _write_header(self) -> None:
        psize = self.pointer_size
        p = self._ptr(psize)
        names = "HeapSession".encode("utf-16-le") + b"\0\0" + "C:\\trace\\heap.etl".encode("utf-16-le") + b"\0\0"
        head = struct.pack("<IIIIqIIIIIIII", self.buffer_size, 0x0501000A, 19041, self.cpus, 0, 156250, 0,
                           0x1, 0, 1, psize, self.events_lost, 3000)  # fmt: skip
        head += struct.pack("<" + p + p, 0, 0)  # LoggerName, LogFileName pointers
        head += struct.pack("<i", -60) + b"\0" * 168  # TIME_ZONE_INFORMATION, 172 bytes
        head += b"\0" * (-len(head) % 8)
        head += struct.pack("<qqqII", START_FILETIME - 36_000_000_000, self.freq, START_FILETIME,
                            self.clock_type, self.buffers_lost)  # fmt: skip
        record = self.system(0x0000, head + names, 0, 0, ORIGIN_TICKS, psize)
        self.header_at = self.fh.tell() if self.fh.seekable() else 0
        body = record + b"\0" * (-len(record) % 8)
        self._emit(body, cpu=0, btype=4, flags=0x21, ticks=ORIGIN_TICKS, header=True)

    def _emit(self, body: bytes, cpu: int, btype: int, flags: int, ticks: int, header: bool = False) -> None:
        saved = 72 + len(body)
        if not header:
            if self.written in self.events_lost_buffers:
                flags |= 0x2
            if self.written in self.lost_buffers:
                flags |= 0x4
            self.written += 1
        if self.compress and not header:
            data = _compress(bytes(body))
            size = 72 + len(data)
            flags |= 0x40
        else:
            # like ETW: a plain file's buffers all have the logger's buffer size; the
            # header buffer of a compressed file is rounded up to 512 bytes
            size = max(self.buffer_size, saved) if not (header and self.compress) else (saved + 511) // 512 * 512
            data = bytes(body) + b"\xff" * (size - saved)
        if header:
            ticks = 0
        else:
            self.sequence += 1
        self.fh.write(_BUFFER.pack(size, saved, saved, 0, ticks, self.sequence, 0, cpu, self.logger_id, 3, saved,
                                   flags, btype, b"\0" * 16) + data)  # fmt: skip

    def _append(self, cpu: int, record: bytes, ticks: int) -> None:
        buf = self.buffers[cpu % self.cpus]
        record += b"\0" * (-len(record) % 8)
        if len(buf.data) + len(record) > self.buffer_size - 72 and buf.data:
            self._emit(buf.data, buf.cpu, 0, 0x20, buf.last_ticks)
            buf.data = bytearray()
        buf.data += record
        buf.last_ticks = ticks

    def _noise(self, cpu: int, ticks: int, tid: int, pid: int) -> None:
        """One record of every header kind the reader must skip."""
        psize = self.pointer_size
        self._append(cpu, self.system(0x0501, b"\1" * 40, tid, pid, ticks, psize), ticks)  # a thread record
        self._append(cpu, _COMPACT.pack(2, 4, 0xC0, 24 + 8, 0x0F2E, tid, pid, ticks) + b"\2" * 8, ticks)
        self._append(cpu, self.perfinfo(0x0F2E, b"\3" * 24, ticks), ticks)
        self._append(cpu, self.system(0x1025, b"\4" * 60, tid, pid, ticks, psize), ticks)  # heap Expand
        self._append(cpu, _FULL.pack(48 + 12, 20, 0xC0, 1, 4, 0, tid, pid, ticks, OTHER_GUID, 0) + b"\5" * 12, ticks)
        self._append(cpu, _INSTANCE.pack(72 + 4, 21, 0xC0, 1, 4, 0, tid, pid, ticks, OTHER_GUID, 0, 7, 0,
                                         OTHER_GUID) + b"\6" * 4, ticks)  # fmt: skip
        ext = struct.pack("<HHHH", 24, 12, 1, 12) + b"\x0cprovider\0" + b"\0" * 5
        ext += struct.pack("<HHHH", 16, 6, 0, 8) + struct.pack("<Q", 99)
        self._append(cpu, _EVENT_HEADER.pack(80 + len(ext) + 6, 19, 0xC0, 1, 0, tid, pid, ticks, OTHER_GUID,
                                             7, 0, 11, 4, 0, 0, 0, 0, b"\0" * 16) + ext + b"\7" * 6, ticks)  # fmt: skip
        self._append(cpu, struct.pack("<HBB", 12, 0, 0x90) + b"\x08" * 8, ticks)  # a WPP message

    def add(self, item: HeapEvent | Record) -> None:
        """Write one event (and its stack records)."""
        rec = item if isinstance(item, Record) else Record(item)
        ev = rec.event
        psize = rec.pointer_size or self.pointer_size
        cpu = rec.cpu if rec.cpu is not None else ev.tid % self.cpus
        ticks = self.ticks(ev.time)
        if ev.kind in (Kind.PROCESS_START, Kind.PROCESS_END):
            if not self.process_records:
                return
            op = 0x0301 if ev.kind == Kind.PROCESS_START else 0x0302
            payload = self.process_payload(ev.pid, 4, ev.image or "", self.pointer_size)
            self._append(cpu, self.system(op, payload, ev.tid, ev.pid, ticks, self.pointer_size, version=4), ticks)
            return
        op, payload = self.heap_payload(ev, psize)
        if rec.header == "system":
            record = self.system(0x1000 | op, payload, ev.tid, ev.pid, ticks, psize)
        elif rec.header == "compact":
            ht = 4 if psize == 8 else 3
            record = _COMPACT.pack(2, ht, 0xC0, 24 + len(payload), 0x1000 | op, ev.tid, ev.pid, ticks) + payload
        elif rec.header == "classic":
            ht = 20 if psize == 8 else 10
            record = _FULL.pack(48 + len(payload), ht, 0xC0, op, 0, 2, ev.tid, ev.pid, ticks, HEAP_GUID, 0) + payload
        else:
            ht = 19 if psize == 8 else 18
            record = _EVENT_HEADER.pack(80 + len(payload), ht, 0xC0, 0, 0, ev.tid, ev.pid, ticks, HEAP_GUID,
                                        0, 2, 0, 4, op, 0, 0, 0, b"\0" * 16) + payload  # fmt: skip
        self._append(cpu, record, ticks)
        if rec.frames or rec.kernel_frames:
            self._stack(rec, cpu, ticks)
        self.count += 1
        if self.noise and self.count % 7 == 0:
            self._noise(cpu, ticks, ev.tid, ev.pid)

    def _stack(self, rec: Record, cpu: int, ticks: int) -> None:
        ev = rec.event
        psize = self.pointer_size  # stack records are the kernel's: the trace's pointer size
        p = "I" if psize == 4 else "Q"
        head = struct.pack("<qII", ticks, ev.pid, ev.tid)
        if self.stack_mode == "direct":
            frames = rec.kernel_frames + rec.frames
            record = self.perfinfo(0x1820, head + struct.pack(f"<{len(frames)}{p}", *frames), ticks, psize)
            self._append(cpu, record, ticks)
            return
        for opcode, frames in ((0x1825, rec.kernel_frames), (0x1826, rec.frames)):
            if not frames:
                continue
            cache_key = (ev.pid, frames)
            key = self.keys.get(cache_key)
            if key is None:
                if len(self.keys) >= self.key_cache_size:  # evict the oldest: KeyDelete, the key is reused
                    old = next(iter(self.keys))
                    key = self.keys.pop(old)
                    payload = struct.pack(f"<{p}{len(old[1])}{p}", key, *old[1])
                    self._append(cpu, self.perfinfo(0x1823, payload, ticks, psize), ticks)
                else:
                    key = self.next_key
                    self.next_key += 0x40
                self.keys[cache_key] = key
            self._append(cpu, self.perfinfo(opcode, head + struct.pack("<" + p, key), ticks, psize), ticks)

    def rundown_processes(self, processes: Mapping[int, str], time: int, opcode: int = 3) -> None:
        """DCStart (opcode 3) or DCEnd (4) records for processes alive at trace start / end."""
        ticks = self.ticks(time)
        for pid, image in processes.items():
            payload = self.process_payload(pid, 4, image, self.pointer_size)
            self._append(0, self.perfinfo(0x0300 | opcode, payload, ticks, self.pointer_size, 4), ticks)

    def images(self, images: Iterable[tuple[int, int, int, str]], time: int) -> None:
        """Image rundown (pid, base, size, path) records, logged before the events."""
        ticks = self.ticks(time)
        for pid, base, size, path in images:
            payload = self.image_payload(pid, base, size, path, self.pointer_size)
            hook = 0x1403 if pid == 0 else 0x030A
            self._append(0, self.system(hook, payload, 0, pid, ticks, self.pointer_size), ticks)

    def close(self, time: int | None = None) -> None:
        """Write the stack key rundown and flush every processor's last buffer
        (highest processor first, so that file order differs from time order)."""
        last = max(b.last_ticks for b in self.buffers) + 1  # the rundown follows the last event
        p = "I" if self.pointer_size == 4 else "Q"
        for (pid, frames), key in self.keys.items():
            payload = struct.pack(f"<{p}{len(frames)}{p}", key, *frames)
            self._append(0, self.perfinfo(0x1824, payload, last, self.pointer_size), last)
        self.keys.clear()
        for buf in reversed(self.buffers):
            if buf.data:
                self._emit(buf.data, buf.cpu, 0, 0x21, buf.last_ticks)
                buf.data = bytearray()
        # the logfile header's BuffersWritten counts every buffer (header included);
        # ETW fills it in at the end too, and some readers rely on it
        if self.fh.seekable():
            end = self.fh.tell()
            self.fh.seek(self.header_at + 72 + 32 + 0x24)
            self.fh.write(struct.pack("<I", self.written + 1))
            self.fh.seek(end)


def write_etl(path_or_file: str | BinaryIO, events: Iterable[HeapEvent | Record], *,
              rundown: Mapping[int, str] | None = None, rundown_end: Mapping[int, str] | None = None,
              images: Iterable[tuple[int, int, int, str]] = (), **options) -> int:  # fmt: skip
    """Write ``events`` (in time order) as an .etl file; return the number of data buffers.

    Options (see :class:`EtlWriter`): ``pointer_size`` (4 or 8, the trace's),
    ``cpus``, ``compress``, ``buffer_size``, ``events_lost``, ``buffers_lost``
    (logfile header values), ``events_lost_buffers`` / ``lost_buffers``
    (ordinals of data buffers to flag 0x2 / 0x4), ``timer_frequency``,
    ``clock_type`` (1 QPC, 2 system time, 3 CPU cycles at 3000 MHz),
    ``stack_mode`` ("direct" StackWalk records or "key" cached keys resolved by
    KeyDelete/KeyRundown), ``key_cache_size``, ``noise`` (interleave records of
    every header kind the reader must skip), ``process_records`` (False: drop
    process_start/process_end events instead of writing Process Start/End
    records).  ``rundown`` / ``rundown_end``:
    pid -> image of processes alive before / after the trace (DCStart / DCEnd);
    ``images``: (pid, base, size, path) loaded images (pid 0: kernel)."""
    own = isinstance(path_or_file, str)
    fh: BinaryIO = open(path_or_file, "wb") if own else path_or_file  # type: ignore[assignment]
    try:
        writer = EtlWriter(fh, **options)
        if rundown:
            writer.rundown_processes(rundown, 0, 3)
        writer.images(images, 0)
        last = 0
        for item in events:
            ev = item.event if isinstance(item, Record) else item
            if ev.time < last:
                raise ValueError("events must be in time order")
            last = ev.time
            writer.add(item)
        if rundown_end:
            writer.rundown_processes(rundown_end, last, 4)
        writer.close()
        return writer.written
    finally:
        if own:
            fh.close()
