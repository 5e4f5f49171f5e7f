"""The .etl container: buffers, the logfile header, record headers.

An .etl file is a sequence of buffers.  Each starts with a 72-byte
WMI_BUFFER_HEADER; the records follow, each 8-byte aligned, up to the
buffer's SavedOffset.  A compressed buffer (flag 0x40) stores the bytes after
its header compressed with plain LZ77 ([MS-XCA]); its BufferSize is then the
size on disk and SavedOffset the size once decompressed.  See docs/etl-format.md
for every layout and which facts were checked against which sample file.

Nothing here reads the whole file: :func:`scan_buffers` reads 72 bytes per
buffer to build an index of buffer offsets per (logger, processor) stream, and
:func:`read_payload` reads one buffer at a time.
"""

from __future__ import annotations

import datetime
import struct
from array import array
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from heaplint.engine.readers.lzxpress import DecompressionError, decompress

BUFFER_HEADER_SIZE = 72

# buffer flags (WMI_BUFFER_HEADER.BufferFlag)
FLAG_FLUSH_MARKER = 0x0001
FLAG_EVENTS_LOST = 0x0002
FLAG_BUFFER_LOST = 0x0004
FLAG_PROCESSOR_INDEX = 0x0020  # ClientContext holds a 16-bit processor index
FLAG_COMPRESSED = 0x0040

BUFFER_TYPE_HEADER = 4

# record header types (byte 2 of every record)
HT_SYSTEM32, HT_SYSTEM64 = 1, 2
HT_COMPACT32, HT_COMPACT64 = 3, 4
HT_FULL32, HT_INSTANCE32 = 10, 11
HT_PERFINFO32, HT_PERFINFO64 = 16, 17
HT_EVENT_HEADER32, HT_EVENT_HEADER64 = 18, 19
HT_FULL64, HT_INSTANCE64 = 20, 21
HT_MESSAGE = 0x100  # pseudo type for WPP message records (no header-type byte)
HT_UNKNOWN = 0x101  # pseudo type: a record the walker could not size

HEADER_KIND_NAMES: dict[int, str] = {
    HT_SYSTEM32: "system32",
    HT_SYSTEM64: "system64",
    HT_COMPACT32: "compact32",
    HT_COMPACT64: "compact64",
    HT_FULL32: "full32",
    HT_INSTANCE32: "instance32",
    HT_PERFINFO32: "perfinfo32",
    HT_PERFINFO64: "perfinfo64",
    HT_EVENT_HEADER32: "event_header32",
    HT_EVENT_HEADER64: "event_header64",
    HT_FULL64: "full64",
    HT_INSTANCE64: "instance64",
    HT_MESSAGE: "message",
    HT_UNKNOWN: "unknown",
}

#: fixed header length of each record header type (the payload starts there)
HEADER_LENGTH: dict[int, int] = {
    HT_SYSTEM32: 32,
    HT_SYSTEM64: 32,
    HT_COMPACT32: 24,
    HT_COMPACT64: 24,
    HT_PERFINFO32: 16,
    HT_PERFINFO64: 16,
    HT_FULL32: 48,
    HT_FULL64: 48,
    HT_INSTANCE32: 72,
    HT_INSTANCE64: 72,
    HT_EVENT_HEADER32: 80,
    HT_EVENT_HEADER64: 80,
}

#: header types whose second dword is (size, hook id) rather than a class
HOOK_HEADER_TYPES = frozenset(
    (HT_SYSTEM32, HT_SYSTEM64, HT_COMPACT32, HT_COMPACT64, HT_PERFINFO32, HT_PERFINFO64)
)
#: the pointer size of events under each header type (the "32"/"64" in its name)
HEADER_POINTER_SIZE: dict[int, int] = {
    HT_SYSTEM32: 4,
    HT_COMPACT32: 4,
    HT_PERFINFO32: 4,
    HT_FULL32: 4,
    HT_INSTANCE32: 4,
    HT_EVENT_HEADER32: 4,
    HT_SYSTEM64: 8,
    HT_COMPACT64: 8,
    HT_PERFINFO64: 8,
    HT_FULL64: 8,
    HT_INSTANCE64: 8,
    HT_EVENT_HEADER64: 8,
}

MARKER_TRACE_HEADER = 0x80  # byte 3: always set on a record
MARKER_EVENT_TRACE = 0x40  # byte 3: a structured record (not a WPP message)
MARKER_MESSAGE = 0x10  # byte 3: a WPP trace message

EVENT_HEADER_FLAG_EXTENDED_INFO = 0x0001

CLOCK_NAMES = {1: "qpc", 2: "system-time", 3: "cpu-cycles"}

# WMI_BUFFER_HEADER: size, saved offset, ..., client context (processor, logger id),
# ..., buffer flag, buffer type
_BUFFER_HEADER = struct.Struct("<II16xq8xHH8xHH16x")
_PREFIX = struct.Struct("<HBBHH")  # version-or-size, header type, marker flags, size, hook
_U16 = struct.Struct("<H")
_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


class EtlFormatError(ValueError):
    """The container is malformed; ``offset`` is the file offset concerned."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class BufferHeader:
    """The fields of a WMI_BUFFER_HEADER that the reader uses."""

    offset: int  # file offset of the buffer
    size: int  # bytes on disk (BufferSize)
    saved: int  # bytes of header + records once decompressed (SavedOffset)
    processor: int
    logger: int
    flags: int
    type: int
    sequence: int = 0  # SequenceNumber: increases along a logger's buffers

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)

    @property
    def stream(self) -> tuple[int, int]:
        """The (logger, processor) whose records this buffer continues."""
        return (self.logger, self.processor)


def parse_buffer_header(data: bytes, offset: int, file_size: int | None = None) -> BufferHeader:
    """Decode and sanity-check the 72-byte buffer header at file ``offset``."""
    if len(data) < BUFFER_HEADER_SIZE:
        raise EtlFormatError(f"truncated buffer header ({len(data)} of 72 bytes)", offset)
    size, saved, sequence, processor, logger, flags, btype = _BUFFER_HEADER.unpack_from(data, 0)
    if not flags & FLAG_PROCESSOR_INDEX:
        processor &= 0xFF  # older files: a byte of processor number, a byte of alignment
    if size < BUFFER_HEADER_SIZE:
        raise EtlFormatError(f"buffer size {size} is smaller than its 72-byte header", offset)
    if saved < BUFFER_HEADER_SIZE or (not flags & FLAG_COMPRESSED and saved > size):
        raise EtlFormatError(f"buffer's used size {saved} is outside 72..{size}", offset)
    if file_size is not None and offset + size > file_size:
        raise EtlFormatError(
            f"buffer of {size} bytes at offset 0x{offset:x} extends past the end of the file "
            f"({file_size} bytes): the trace is truncated",
            offset,
        )
    return BufferHeader(offset, size, saved, processor, logger, flags, btype, sequence)


@dataclass
class LogfileHeader:
    """TRACE_LOGFILE_HEADER, the payload of the first record of the file."""

    buffer_size: int
    version: int
    build: int
    processors: int
    end_time: int  # FILETIME, 0 when not recorded
    log_file_mode: int
    buffers_written: int
    pointer_size: int
    events_lost: int
    cpu_mhz: int
    boot_time: int  # FILETIME
    timer_frequency: int  # QPC ticks per second
    start_time: int  # FILETIME
    clock_type: int  # 1 QPC, 2 system time, 3 CPU cycle counter
    buffers_lost: int
    logger_name: str = ""
    log_file_name: str = ""
    #: raw timestamp of the header record: the trace's time origin
    origin: int = 0
    header_pointer_size: int = 8  # of the record header (system32/system64)
    notes: list[str] = field(default_factory=list)

    @property
    def clock(self) -> str:
        return CLOCK_NAMES.get(self.clock_type, "qpc")

    @property
    def ticks_per_second(self) -> int:
        """Raw timestamp units per second under this header's clock type."""
        if self.clock_type == 2:
            return 10_000_000
        if self.clock_type == 3 and self.cpu_mhz:
            return self.cpu_mhz * 1_000_000
        return self.timer_frequency or 10_000_000

    def start_wall_time(self) -> str | None:
        """The capture start as ISO 8601 UTC, when recorded."""
        return filetime_iso(self.start_time)


def filetime_iso(filetime: int) -> str | None:
    """A FILETIME (100 ns since 1601-01-01 UTC) as ISO 8601, None when unset or absurd."""
    if filetime <= 0:
        return None
    try:
        when = _FILETIME_EPOCH + datetime.timedelta(microseconds=filetime // 10)
    except OverflowError:
        return None
    return when.isoformat().replace("+00:00", "Z")


def looks_like_etl(head: bytes) -> bool:
    """Whether ``head`` starts like an .etl file: a buffer header whose first
    record is a system trace header carrying the logfile header (hook 0) with
    a sane pointer size.  Text never matches (bytes 0x4A/0x4B are a header
    type of 1 or 2 and marker flags 0xC0)."""
    if len(head) < BUFFER_HEADER_SIZE + 32 + 0x30:
        return False
    size, saved = struct.unpack_from("<II", head, 0)
    if size < BUFFER_HEADER_SIZE + 32 or not BUFFER_HEADER_SIZE + 32 <= saved <= size:
        return False
    _, htype, marker, rsize, hook = _PREFIX.unpack_from(head, BUFFER_HEADER_SIZE)
    if htype not in (HT_SYSTEM32, HT_SYSTEM64) or marker & 0xC0 != 0xC0 or hook != 0:
        return False
    if rsize < 32 + 0x38 or BUFFER_HEADER_SIZE + rsize > saved:
        return False
    pointer_size = struct.unpack_from("<I", head, BUFFER_HEADER_SIZE + 32 + 0x2C)[0]
    return pointer_size in (4, 8)


def parse_logfile_header(buffer: bytes, file_offset: int = 0) -> LogfileHeader:
    """Decode the logfile header from the first buffer's bytes (header included)."""
    pos = BUFFER_HEADER_SIZE
    if len(buffer) < pos + 32 + 0x38:
        raise EtlFormatError("the first buffer is too short to hold the logfile header", file_offset)
    _, htype, marker, rsize, hook = _PREFIX.unpack_from(buffer, pos)
    if htype not in (HT_SYSTEM32, HT_SYSTEM64) or hook != 0 or marker & 0x80 == 0:
        raise EtlFormatError("the first record is not the logfile header", file_offset + pos)
    origin = struct.unpack_from("<q", buffer, pos + 16)[0]
    p = pos + 32
    end = min(len(buffer), pos + rsize)
    (bufsize, version, build, ncpu, end_time, _res, _maxsize, mode, written,
     _start_buffers, psize, lost, mhz) = struct.unpack_from("<IIIIqIIIIIIII", buffer, p)  # fmt: skip
    if psize not in (4, 8):
        raise EtlFormatError(f"logfile header gives pointer size {psize}; expected 4 or 8", file_offset + p)
    # two string pointers, then TIME_ZONE_INFORMATION (172 bytes), then 8-aligned
    # BootTime, PerfFreq, StartTime, ReservedFlags (clock type), BuffersLost
    tz_end = 0x38 + 2 * psize + 172
    times = (tz_end + 7) & ~7
    if p + times + 32 > end:
        raise EtlFormatError("the logfile header record is too short", file_offset + p)
    boot, freq, start, clock, blost = struct.unpack_from("<qqqII", buffer, p + times)
    header = LogfileHeader(
        buffer_size=bufsize, version=version, build=build, processors=ncpu, end_time=end_time,
        log_file_mode=mode, buffers_written=written, pointer_size=psize, events_lost=lost,
        cpu_mhz=mhz, boot_time=boot, timer_frequency=freq, start_time=start, clock_type=clock,
        buffers_lost=blost, origin=origin, header_pointer_size=4 if htype == HT_SYSTEM32 else 8,
    )  # fmt: skip
    names = bytes(buffer[p + times + 32 : end])
    parts = names.decode("utf-16-le", "replace").split("\x00") if len(names) >= 2 else []
    if parts:
        header.logger_name = parts[0]
    if len(parts) > 1:
        header.log_file_name = parts[1]
    if clock not in CLOCK_NAMES:
        header.notes.append(f"unknown clock type {clock}; timestamps read as QPC ticks")
    if header.clock_type != 2 and header.clock_type != 3 and not freq:
        header.notes.append("the logfile header has no timer frequency; assumed 10 MHz")
    return header


def scan_buffers(fh: BinaryIO, file_size: int) -> Iterator[BufferHeader]:
    """Yield every buffer header of the file in file order (72 bytes read each)."""
    offset = 0
    while offset < file_size:
        fh.seek(offset)
        head = fh.read(BUFFER_HEADER_SIZE)
        if not head.strip(b"\x00"):
            return  # zeros: the unused end of a preallocated or padded file
        header = parse_buffer_header(head, offset, file_size)
        yield header
        offset += header.size


def index_streams(headers: Iterator[BufferHeader]) -> tuple[dict[tuple[int, int], array], dict[str, int]]:
    """Group buffer offsets by (logger, processor) stream, in sequence-number order.

    Sequence numbers follow file order within a stream in every sample; a
    circular-mode file wraps, and then its oldest buffers come after the newest
    in the file, which the sequence numbers put right.  Memory: 16 bytes per
    buffer while indexing and 8 after (an ``array('Q')`` of offsets), e.g.
    128 KiB for a 1 GiB trace of 64 KiB buffers.  Also returns buffer counts
    by flag (and ``reordered``: streams whose file order was not sequence order)."""
    streams: dict[tuple[int, int], array] = {}
    sequences: dict[tuple[int, int], array] = {}
    stats = {"buffers": 0, "compressed": 0, "events_lost_flag": 0, "buffer_lost_flag": 0, "reordered": 0}
    for h in headers:
        stats["buffers"] += 1
        if h.flags & FLAG_COMPRESSED:
            stats["compressed"] += 1
        if h.flags & FLAG_EVENTS_LOST:
            stats["events_lost_flag"] += 1
        if h.flags & FLAG_BUFFER_LOST:
            stats["buffer_lost_flag"] += 1
        offsets = streams.get(h.stream)
        if offsets is None:
            offsets = streams[h.stream] = array("Q")
            sequences[h.stream] = array("q")
        offsets.append(h.offset)
        sequences[h.stream].append(h.sequence)
    for key, seqs in sequences.items():
        if any(a > b for a, b in zip(seqs, seqs[1:])):
            order = sorted(range(len(seqs)), key=seqs.__getitem__)
            offsets = streams[key]
            streams[key] = array("Q", (offsets[i] for i in order))
            stats["reordered"] += 1
    return streams, stats


def read_payload(fh: BinaryIO, offset: int, file_size: int) -> tuple[BufferHeader, bytes]:
    """Read the buffer at ``offset``; return its header and its record bytes
    (decompressed when the buffer is compressed)."""
    fh.seek(offset)
    head = fh.read(BUFFER_HEADER_SIZE)
    header = parse_buffer_header(head, offset, file_size)
    if header.flags & FLAG_COMPRESSED:
        data = fh.read(header.size - BUFFER_HEADER_SIZE)
        try:
            payload = decompress(data, header.saved - BUFFER_HEADER_SIZE)
        except DecompressionError as err:
            raise EtlFormatError(f"compressed buffer at offset 0x{offset:x} is corrupt: {err}", offset) from None
    else:
        payload = fh.read(header.saved - BUFFER_HEADER_SIZE)
    if len(payload) < header.saved - BUFFER_HEADER_SIZE:
        raise EtlFormatError(f"buffer at offset 0x{offset:x} is truncated", offset)
    return header, payload


def record_size(payload: bytes, pos: int) -> tuple[int, int]:
    """(header type, size) of the record at ``pos``; the type is HT_MESSAGE for a
    WPP message and HT_UNKNOWN (size 0) when the record cannot be sized."""
    if pos + 8 > len(payload):
        return HT_UNKNOWN, 0
    first, htype, marker, second, _ = _PREFIX.unpack_from(payload, pos)
    if not marker & MARKER_TRACE_HEADER:
        return HT_UNKNOWN, 0
    if not marker & MARKER_EVENT_TRACE:
        return (HT_MESSAGE, first) if marker & MARKER_MESSAGE else (HT_UNKNOWN, 0)
    if htype in HOOK_HEADER_TYPES:
        return htype, second
    if htype in HEADER_LENGTH:
        return htype, first
    return HT_UNKNOWN, 0


def iter_records(payload: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield (offset, header type, size) for each record of a buffer's payload.

    The generic, slow walker (tests and diagnostics use it; the reader has its
    own inlined loop).  Stops at the first record it cannot size, after
    yielding it as HT_UNKNOWN."""
    pos = 0
    end = len(payload)
    while pos + 4 <= end:
        if payload[pos : pos + 4] == b"\xff\xff\xff\xff":
            return  # unused space filled with 0xFF
        htype, size = record_size(payload, pos)
        if htype == HT_UNKNOWN or size < 8 or size < HEADER_LENGTH.get(htype, 8) or pos + size > end:
            yield pos, HT_UNKNOWN, 0
            return
        yield pos, htype, size
        pos += (size + 7) & ~7


def extended_items(payload: bytes, pos: int, size: int) -> list[tuple[int, int, int]]:
    """The extended data items of the EVENT_HEADER record at ``pos``:
    (type, data offset, data size) each.  In the buffer each item is an 8-byte
    header (item size incl. header, type, linkage flag, data size) and its data,
    8-byte aligned; linkage 1 means another item follows.  Returns [] when the
    record has none; stops at the first malformed item."""
    flags = _U16.unpack_from(payload, pos + 4)[0]
    items: list[tuple[int, int, int]] = []
    if not flags & EVENT_HEADER_FLAG_EXTENDED_INFO:
        return items
    p = pos + 80
    end = pos + size
    while p + 8 <= end:
        isize, itype, linkage, dsize = struct.unpack_from("<HHHH", payload, p)
        if isize < 8 or dsize > isize - 8 or p + isize > end:
            break
        items.append((itype, p + 8, dsize))
        p += (isize + 7) & ~7
        if not linkage & 1:
            break
    return items


def event_header_payload_offset(payload: bytes, pos: int, size: int) -> int:
    """Where the user data of the EVENT_HEADER record at ``pos`` starts."""
    items = extended_items(payload, pos, size)
    if not items:
        return pos + 80
    itype, data, dsize = items[-1]
    return (data + dsize + 7) & ~7
