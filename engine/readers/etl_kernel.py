"""Payload layouts of the kernel and heap records the .etl reader decodes.

Heap events (group 0x10): the layouts of docs/etw-heap-reference.md, with
pointer-sized fields taking the *event's* pointer size (from its header type).
Process (group 0x03), image (groups 0x03 type 10 and 0x14) and StackWalk
(group 0x18) records: layouts checked against the net.4.5.2 sample traces; see
docs/etl-format.md.

Also here: :class:`ImageMap` (per-process loaded images, so that a frame renders
as ``module.dll+0x1234``) and :class:`StackResolver` (direct StackWalk frames
and cached stack keys resolved by KeyDelete/KeyRundown).
"""

from __future__ import annotations

import struct
from bisect import bisect_right, insort
from typing import Callable

from heaplint.engine.events import Kind

GROUP_PROCESS = 0x03
GROUP_HEAP = 0x10
GROUP_IMAGE = 0x14
GROUP_STACKWALK = 0x18

# process opcodes
PROCESS_START, PROCESS_END, PROCESS_DC_START, PROCESS_DC_END = 1, 2, 3, 4
PROCESS_DEFUNCT = 39
IMAGE_LOAD, IMAGE_UNLOAD, IMAGE_DC_START, IMAGE_DC_END = 10, 2, 3, 4
# StackWalk opcodes
STACK_WALK = 32
STACK_KEY_DELETE, STACK_KEY_RUNDOWN = 35, 36
STACK_KEY_KERNEL, STACK_KEY_USER = 37, 38

# heap opcodes
HEAP_CREATE, HEAP_ALLOC, HEAP_REALLOC, HEAP_DESTROY, HEAP_FREE = 32, 33, 34, 35, 36
HEAP_EXPAND, HEAP_SNAPSHOT, HEAP_CONTRACT = 37, 38, 42
HEAP_DECODED = frozenset((HEAP_CREATE, HEAP_ALLOC, HEAP_REALLOC, HEAP_DESTROY, HEAP_FREE))
#: heap opcodes that change no block and are counted, not emitted
HEAP_STATS_ONLY = frozenset((HEAP_EXPAND, HEAP_SNAPSHOT, HEAP_CONTRACT))

#: heap trace provider GUID 222962AB-6180-4B88-A825-346B75F2A24A, as stored (little-endian fields)
HEAP_PROVIDER_GUID = bytes.fromhex("ab6229228061884ba825346b75f2a24a")

KIND_BY_OPCODE = {
    HEAP_CREATE: int(Kind.HEAP_CREATE),
    HEAP_ALLOC: int(Kind.ALLOC),
    HEAP_REALLOC: int(Kind.REALLOC),
    HEAP_DESTROY: int(Kind.DESTROY),
    HEAP_FREE: int(Kind.FREE),
}


def _ptr(pointer_size: int) -> str:
    return "I" if pointer_size == 4 else "Q"


def heap_payload_struct(opcode: int, pointer_size: int) -> struct.Struct:
    """The payload layout of heap event ``opcode`` (only the fields read)."""
    p = _ptr(pointer_size)
    fields = {
        HEAP_CREATE: p + "I",  # HeapHandle, Flags (v3 appends sizes the reader ignores)
        HEAP_ALLOC: p * 3 + "I",  # HeapHandle, Size, Address, Source
        HEAP_REALLOC: p * 5 + "I",  # HeapHandle, NewAddress, OldAddress, NewSize, OldSize, Source
        HEAP_DESTROY: p,  # HeapHandle
        HEAP_FREE: p * 2 + "I",  # HeapHandle, Address, Source
    }[opcode]
    return struct.Struct("<" + fields)


def heap_record_struct(opcode: int, pointer_size: int, header_length: int) -> struct.Struct:
    """One struct for a whole heap record under a system (32-byte) or compact
    (24-byte) header: thread id, process id, timestamp, then the payload fields."""
    tail = "8x" if header_length == 32 else ""
    return struct.Struct("<8xIIq" + tail + heap_payload_struct(opcode, pointer_size).format[1:])


def read_cstring(data: bytes, pos: int, end: int) -> tuple[str, int]:
    """A NUL-terminated single-byte string at ``pos``; returns it and the offset after."""
    stop = data.find(b"\x00", pos, end)
    if stop < 0:
        stop = end
    return data[pos:stop].decode("latin-1"), stop + 1


def read_wstring(data: bytes, pos: int, end: int) -> str:
    """A NUL-terminated UTF-16LE string at ``pos`` (up to ``end`` without one).

    The terminator is the first zero code unit: a ``b"\0\0"`` found at an
    even distance from ``pos`` (one at an odd distance straddles two units)."""
    stop = data.find(b"\x00\x00", pos, end)
    while stop >= 0 and (stop - pos) & 1:
        stop = data.find(b"\x00\x00", stop + 1, end)
    if stop < 0:
        stop = max(pos, end - ((end - pos) & 1))
    return data[pos:stop].decode("utf-16-le", "replace")


def skip_sid(data: bytes, pos: int, pointer_size: int) -> int:
    """Skip the user SID of a process record: 4 zero bytes when absent, else a
    TOKEN_USER (two pointers) followed by a SID of 8 + 4 * SubAuthorityCount bytes."""
    if data[pos : pos + 4] == b"\x00\x00\x00\x00":
        return pos + 4
    token = 2 * pointer_size
    return pos + token + 8 + 4 * data[pos + token + 1]


def decode_process(data: bytes, pos: int, end: int, version: int, pointer_size: int) -> tuple[int, str | None]:
    """(process id, image file name) of a Process_TypeGroup1 payload.

    Layout: UniqueProcessKey P, ProcessId, ParentId, SessionId, ExitStatus (U4),
    DirectoryTableBase P (v3+), Flags U4 (v4+), UserSID, ImageFileName (ANSI), ...
    """
    pid = struct.unpack_from("<I", data, pos + pointer_size)[0]
    sid = pos + pointer_size + 16
    if version >= 3:
        sid += pointer_size
    if version >= 4:
        sid += 4
    try:
        name_at = skip_sid(data, sid, pointer_size)
        if name_at >= end:
            return pid, None
        name, _ = read_cstring(data, name_at, end)
    except IndexError:
        return pid, None
    return pid, name or None


def decode_image(data: bytes, pos: int, end: int, pointer_size: int) -> tuple[int, int, int, str]:
    """(image base, image size, process id, file name) of an Image_Load payload:
    ImageBase P, ImageSize P, ProcessId, CheckSum, TimeDateStamp, (signature
    level/type, reserved) U4, DefaultBase P, 4 x U4 reserved, FileName (UTF-16)."""
    p = _ptr(pointer_size)
    base, size, pid = struct.unpack_from("<" + p + p + "I", data, pos)
    name_at = pos + 2 * pointer_size + 16 + pointer_size + 16
    return base, size, pid, read_wstring(data, name_at, end)


def module_name(path: str) -> str:
    """The file name of an image path (``\\Device\\...\\ntdll.dll`` -> ``ntdll.dll``)."""
    return path.replace("/", "\\").rsplit("\\", 1)[-1] or path


class ImageMap:
    """Loaded images per process, so that addresses render as ``module+0xoffset``.

    Unloads are not applied: a stack rundown at the end of the trace may name
    frames of images unloaded earlier; a later image loaded over the same range
    replaces the earlier entry.  Kernel-mode images are logged for process 0
    and serve every process."""

    __slots__ = ("_bases", "_spans")

    def __init__(self) -> None:
        self._bases: dict[int, list[int]] = {}
        self._spans: dict[int, list[tuple[int, str]]] = {}

    def add(self, pid: int, base: int, size: int, path: str) -> None:
        """Record an image load (or rundown) of ``size`` bytes at ``base`` in ``pid``."""
        bases = self._bases.setdefault(pid, [])
        spans = self._spans.setdefault(pid, [])
        i = bisect_right(bases, base) - 1
        if i >= 0 and bases[i] == base:
            spans[i] = (base + size, module_name(path))
            return
        insort(bases, base)
        spans.insert(bases.index(base), (base + size, module_name(path)))

    def _lookup(self, pid: int, address: int) -> str | None:
        bases = self._bases.get(pid)
        if not bases:
            return None
        i = bisect_right(bases, address) - 1
        if i < 0:
            return None
        end, name = self._spans[pid][i]
        if address >= end:
            return None
        return f"{name}+0x{address - bases[i]:x}"

    def render(self, pid: int, address: int) -> str:
        """``module+0xoffset`` when an image of ``pid`` (or the kernel) covers ``address``."""
        found = self._lookup(pid, address)
        if found is None and pid != 0:
            found = self._lookup(0, address)
        return found if found is not None else f"0x{address:x}"


class StackResolver:
    """Turns StackWalk records into stack ids and the reader's stack table.

    *Direct* stacks (opcode 32) carry their frames; identical (process, frames)
    share one id.  *Keyed* stacks (opcodes 37/38, stack caching) carry a key
    whose frames arrive later in KeyDelete (35) or KeyRundown (36); an event may
    get a kernel key and a user key, whose frames are joined kernel-first.

    A key is reused after its KeyDelete, so reference and delete records must
    be applied in the order of their own timestamps: the reader calls
    :meth:`slot` and :meth:`key_frames` as its merge releases those records,
    not while decoding buffers.
    Memory: a slot per live key, the frames of every resolved key."""

    def __init__(self, images: ImageMap, stacks: dict[int, tuple[str, ...]]) -> None:
        self.images = images
        self.stacks = stacks
        self._direct: dict[tuple, int] = {}
        self._next_id = 1
        self._live: dict[int, int] = {}  # key -> slot of its current epoch
        self._slot_pid: dict[int, int] = {}
        self._slot_frames: dict[int, tuple[str, ...]] = {}
        self._spec_ids: dict[tuple[int, ...], int] = {}
        self._spec_slots: dict[int, tuple[int, ...]] = {}
        self.unresolved_keys = 0

    def _new_id(self) -> int:
        sid = self._next_id
        self._next_id += 1
        return sid

    def render(self, pid: int, addresses: tuple[int, ...]) -> tuple[str, ...]:
        render = self.images.render
        return tuple(render(pid, a) for a in addresses)

    def direct(self, pid: int, addresses: tuple[int, ...]) -> int:
        """The stack id of a StackWalk record's frames (innermost first)."""
        key = (pid, addresses)
        sid = self._direct.get(key)
        if sid is None:
            sid = self._direct[key] = self._new_id()
            self.stacks[sid] = self.render(pid, addresses)
        return sid

    def slot(self, pid: int, key: int) -> int:
        """The slot of ``key``'s current epoch, as a reference record sees it."""
        slot = self._live.get(key)
        if slot is None:
            slot = self._live[key] = self._new_id()
            self._slot_pid[slot] = pid
        return slot

    def spec(self, slots: tuple[int, ...]) -> int:
        """The stack id of an event whose stack is the frames of ``slots`` joined."""
        sid = self._spec_ids.get(slots)
        if sid is None:
            sid = self._spec_ids[slots] = self._new_id()
            self._spec_slots[sid] = slots
        return sid

    def key_frames(self, key: int, addresses: tuple[int, ...]) -> None:
        """KeyDelete / KeyRundown: the frames of ``key``; the key may be reused after."""
        slot = self._live.pop(key, None)
        if slot is None:
            return  # a cached stack no decoded event referenced
        self._slot_frames[slot] = self.render(self._slot_pid.pop(slot, 0), addresses)

    def finish(self) -> None:
        """Fill the stack table for keyed stacks (called at the end of the trace)."""
        frames = self._slot_frames
        for sid, slots in self._spec_slots.items():
            parts = [frames.get(s) for s in slots]
            if any(p is None for p in parts):
                self.unresolved_keys += 1
            joined: tuple[str, ...] = ()
            for p in parts:
                if p:
                    joined += p
            if joined:
                self.stacks[sid] = joined


def make_frame_reader(pointer_size: int) -> Callable[[bytes, int, int], tuple[int, ...]]:
    """A function reading ``count`` pointer-sized frames at an offset."""
    code = _ptr(pointer_size)

    def frames(data: bytes, pos: int, count: int) -> tuple[int, ...]:
        return struct.unpack_from(f"<{count}{code}", data, pos)

    return frames


def _heap_specs() -> dict[int, tuple]:
    """((header type | marker 0xC0 << 8) << 16 | hook id) -> (kind, unpack of the
    whole record, minimum record size, header type, opcode)."""
    specs = {}
    for htype, hlen in ((1, 32), (2, 32), (3, 24), (4, 24)):
        psize = 4 if htype in (1, 3) else 8
        for opcode in HEAP_DECODED:
            st = heap_record_struct(opcode, psize, hlen)
            key = (htype | 0xC0 << 8) << 16 | GROUP_HEAP << 8 | opcode
            specs[key] = (KIND_BY_OPCODE[opcode], st.unpack_from, st.size, len(SPEC_NUMBERS))
            SPEC_NUMBERS.append((htype, opcode))
    return specs


#: (header type, opcode) of each heap spec, by its number (for the counters)
SPEC_NUMBERS: list[tuple[int, int]] = []


HEAP_SPECS = _heap_specs()
STACK_HEAD = struct.Struct("<qII").unpack_from
FRAME_STRUCTS: dict[tuple[int, int], Callable] = {}


def frame_unpacker(count: int, psize: int) -> Callable:
    """``unpack_from`` of ``count`` pointer-sized frames, compiled once per count."""
    unpack = FRAME_STRUCTS.get((count, psize))
    if unpack is None:
        unpack = FRAME_STRUCTS[(count, psize)] = struct.Struct(f"<{count}{'Q' if psize == 8 else 'I'}").unpack_from
    return unpack
