"""The .etl reader's less frequent records: process, image and StackWalk
records, and heap events that arrive under a classic EVENT_TRACE_HEADER or a
modern EVENT_HEADER instead of a system header.

These are not on the hot path of a heap trace (a handful of process and image
records, and at most one StackWalk record per heap event), so clarity wins
over speed here.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Iterator

from heaplint.engine.events import HeapEvent, Kind
from heaplint.engine.readers.etl_container import (
    HEADER_LENGTH,
    HEADER_POINTER_SIZE,
    HT_EVENT_HEADER32,
    HT_EVENT_HEADER64,
    HT_PERFINFO32,
    HT_PERFINFO64,
    event_header_payload_offset,
    extended_items,
)
from heaplint.engine.readers.etl_kernel import (
    GROUP_IMAGE,
    GROUP_PROCESS,
    GROUP_STACKWALK,
    HEAP_DECODED,
    HEAP_PROVIDER_GUID,
    IMAGE_DC_END,
    IMAGE_DC_START,
    IMAGE_LOAD,
    KIND_BY_OPCODE,
    PROCESS_DC_END,
    PROCESS_DC_START,
    PROCESS_END,
    PROCESS_START,
    STACK_KEY_DELETE,
    STACK_KEY_KERNEL,
    STACK_KEY_RUNDOWN,
    STACK_KEY_USER,
    STACK_WALK,
    ImageMap,
    StackResolver,
    decode_image,
    decode_process,
    heap_payload_struct,
    make_frame_reader,
)

if TYPE_CHECKING:
    from heaplint.engine.readers.etl import EtlReader

_new = tuple.__new__
_TS_TID_PID = struct.Struct("<qII")
_HEAP_KINDS = frozenset(int(k) for k in (Kind.ALLOC, Kind.REALLOC, Kind.FREE, Kind.HEAP_CREATE, Kind.DESTROY))
#: how far back (events) a StackWalk record looks for its event, per buffer list
_ATTACH_LOOKBACK = 512
_EXT_STACK_TRACE32, _EXT_STACK_TRACE64 = 5, 6
#: kinds of the stack-key markers in a buffer's event list (never yielded)
KEY_FRAMES = -1  # (KEY_FRAMES, time, key, frames): KeyDelete / KeyRundown
KEY_REF = -2  # (KEY_REF, time, holder, index, pid, key): StackKeyKernel / StackKeyUser


class PendingStack:
    """The stack of an event whose stack-key references are not applied yet."""

    __slots__ = ("slots", "kernel", "remaining")

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.kernel: list[bool] = []
        self.remaining = 0

    def slots_in_order(self) -> tuple[int, ...]:
        """Kernel-key slots first: kernel frames are innermost."""
        pairs = sorted(zip(self.kernel, self.slots), key=lambda p: not p[0])
        return tuple(s for _, s in pairs if s)


class KernelDecoder:
    """Decodes the records the hot loop hands over (see the module docstring)."""

    def __init__(self, reader: "EtlReader", resolver: StackResolver, images: ImageMap) -> None:
        self.reader = reader
        self.info = reader.info
        self.resolver = resolver
        self.images = images
        self.frames = {4: make_frame_reader(4), 8: make_frame_reader(8)}
        self.heap_payloads = {(op, p): heap_payload_struct(op, p) for op in HEAP_DECODED for p in (4, 8)}
        self.unmatched_stacks = 0
        self.other_provider_records = 0

    # --- records with a hook id (system, compact and perfinfo headers) ----------
    def hooked(
        self, data: bytes, pos: int, ht: int, first: int, size: int, hook: int, out: list, prev: list | None
    ) -> HeapEvent | None:
        """Decode a process, image or StackWalk record; return a process event or None."""
        hlen = HEADER_LENGTH[ht]
        psize = HEADER_POINTER_SIZE[ht]
        group, opcode = hook >> 8, hook & 0xFF
        body, end = pos + hlen, pos + size
        if ht == HT_PERFINFO32 or ht == HT_PERFINFO64:
            ts = struct.unpack_from("<q", data, pos + 8)[0]
            tid = pid = 0
        else:
            tid, pid, ts = struct.unpack_from("<IIq", data, pos + 8)
        try:
            if group == GROUP_STACKWALK:
                self._stack(data, body, end, opcode, psize, out, prev, ts)
                return None
            if group == GROUP_PROCESS and opcode in (PROCESS_START, PROCESS_END, PROCESS_DC_START, PROCESS_DC_END):
                return self._process(data, body, end, opcode, first & 0xFF, psize, ts, tid)
            if (group == GROUP_PROCESS and opcode == IMAGE_LOAD) or (
                group == GROUP_IMAGE and opcode in (IMAGE_LOAD, IMAGE_DC_START, IMAGE_DC_END)
            ):
                if end - body >= 3 * psize + 16 + 16:
                    base, isize, ipid, path = decode_image(data, body, end, psize)
                    self.images.add(ipid, base, isize, path)
        except (struct.error, IndexError):
            self.reader.bad_record(f"kernel record (hook 0x{hook:04x}) of {size} bytes is malformed")
        return None

    def hooked_heap(self, data: bytes, pos: int, ht: int, size: int, hook: int) -> HeapEvent | None:
        """A heap record the hot loop's table did not take: counted, and decoded
        when its opcode changes blocks and its header names a process."""
        opcode = hook & 0xFF
        self.reader._heap_ops[opcode] += 1
        if opcode not in HEAP_DECODED or ht in (HT_PERFINFO32, HT_PERFINFO64):
            return None
        st = self.heap_payloads[(opcode, HEADER_POINTER_SIZE[ht])]
        body = pos + HEADER_LENGTH[ht]
        if body + st.size > pos + size:
            self.reader.bad_record(f"heap record (opcode {opcode}) of {size} bytes is too short")
            return None
        tid, pid, ts = struct.unpack_from("<IIq", data, pos + 8)
        ev = heap_event(KIND_BY_OPCODE[opcode], self.reader.time_ns(ts), pid, tid, st.unpack_from(data, body))
        return _new(HeapEvent, ev[:13] + (self.reader._index, 0))

    def _process(
        self, data: bytes, body: int, end: int, opcode: int, version: int, psize: int, ts: int, tid: int
    ) -> HeapEvent | None:
        pid, image = decode_process(data, body, end, version, psize)
        facts = self.info.process(pid)
        if image:
            facts.image = image
        if opcode == PROCESS_START:
            facts.start_seen = True
            kind = int(Kind.PROCESS_START)
        elif opcode == PROCESS_END:
            facts.end_seen = True
            kind = int(Kind.PROCESS_END)
        else:
            # rundown: the process existed before the trace (DCStart) or still
            # runs at its end (DCEnd); a real Start/End seen wins
            if opcode == PROCESS_DC_START and facts.start_seen is None:
                facts.start_seen = False
            elif opcode == PROCESS_DC_END and facts.end_seen is None:
                facts.end_seen = False
            return None
        t = self.reader.time_ns(ts)
        return _new(HeapEvent, (kind, t, pid, tid, 0, 0, 0, 0, None, 0, None, 0, image, self.reader._index, 0))

    # --- stacks ------------------------------------------------------------------
    def _stack(
        self, data: bytes, body: int, end: int, opcode: int, psize: int, out: list, prev: list | None, ts: int
    ) -> None:
        frames = self.frames[psize]
        if opcode == STACK_WALK:
            ts, pid, tid = _TS_TID_PID.unpack_from(data, body)
            count = (end - body - 16) // psize
            found = self._find(out, prev, self.reader.time_ns(ts), pid, tid)
            if found is None:
                self.unmatched_stacks += 1
                return
            lst, i = found
            sid = self.resolver.direct(pid, frames(data, body + 16, count))
            lst[i] = _with_stack(lst[i], sid)
        elif opcode == STACK_KEY_KERNEL or opcode == STACK_KEY_USER:
            # the event gets a holder now; the merge fills it when it releases this
            # record (keys are reused after KeyDelete: only record time order is right)
            event_ts, pid, tid = _TS_TID_PID.unpack_from(data, body)
            key = frames(data, body + 16, 1)[0]
            found = self._find(out, prev, self.reader.time_ns(event_ts), pid, tid)
            if found is None:
                self.unmatched_stacks += 1
                return
            lst, i = found
            holder = lst[i][10]
            if type(holder) is not PendingStack:
                holder = PendingStack()
                lst[i] = _with_stack(lst[i], holder)  # type: ignore[arg-type]
            holder.slots.append(0)
            holder.kernel.append(opcode == STACK_KEY_KERNEL)
            holder.remaining += 1
            out.append((KEY_REF, self.reader.time_ns(ts), holder, len(holder.slots) - 1, pid, key))
            self.reader.keyed_stacks = True
        elif opcode == STACK_KEY_DELETE or opcode == STACK_KEY_RUNDOWN:
            count = (end - body) // psize
            if count >= 1:
                values = frames(data, body, count)
                # a marker the merge applies in time order and never yields
                out.append((KEY_FRAMES, self.reader.time_ns(ts), values[0], values[1:]))
                self.reader.keyed_stacks = True

    @staticmethod
    def _find(out: list, prev: list | None, t: int, pid: int, tid: int) -> tuple[list, int] | None:
        """The heap event a StackWalk record belongs to: same time and thread,
        searched backwards in this buffer's events, then the previous buffer's."""
        for lst in (out, prev):
            if not lst:
                continue
            stop = max(-1, len(lst) - 1 - _ATTACH_LOOKBACK)
            for i in range(len(lst) - 1, stop, -1):
                ev = lst[i]
                if ev[1] == t and ev[3] == tid and ev[2] == pid and ev[0] in _HEAP_KINDS:
                    return lst, i
                if ev[1] < t:
                    break
        return None

    # --- classic and EVENT_HEADER records -------------------------------------------
    def classic(self, data: bytes, pos: int, ht: int, size: int, out: list, prev: list | None) -> HeapEvent | None:
        """A heap event under a classic or EVENT_HEADER header; other providers' records are skipped."""
        try:
            return self._classic(data, pos, ht, size)
        except (struct.error, IndexError):
            self.reader.bad_record(f"heap record of {size} bytes (header type {ht}) is malformed")
            return None

    def _classic(self, data: bytes, pos: int, ht: int, size: int) -> HeapEvent | None:
        if data[pos + 24 : pos + 40] != HEAP_PROVIDER_GUID:
            self.other_provider_records += 1
            return None
        tid, pid, ts = struct.unpack_from("<IIq", data, pos + 8)
        psize = HEADER_POINTER_SIZE[ht]
        if ht == HT_EVENT_HEADER32 or ht == HT_EVENT_HEADER64:
            opcode = data[pos + 45]
            body = event_header_payload_offset(data, pos, size)
        else:
            opcode = data[pos + 4]
            body = pos + HEADER_LENGTH[ht]
        if opcode not in HEAP_DECODED:
            self.reader._heap_ops[opcode] += 1
            return None
        st = self.heap_payloads[(opcode, psize)]
        if body + st.size > pos + size:
            self.reader.bad_record(f"heap record (opcode {opcode}) of {size} bytes is too short")
            return None
        self.reader._heap_ops[opcode] += 1
        ev = heap_event(KIND_BY_OPCODE[opcode], self.reader.time_ns(ts), pid, tid, st.unpack_from(data, body))
        ev = _new(HeapEvent, ev[:13] + (self.reader._index, 0))
        if ht == HT_EVENT_HEADER32 or ht == HT_EVENT_HEADER64:
            for itype, at, dsize in extended_items(data, pos, size):
                if itype in (_EXT_STACK_TRACE32, _EXT_STACK_TRACE64) and dsize > 8:
                    fsize = 4 if itype == _EXT_STACK_TRACE32 else 8
                    addresses = self.frames[fsize](data, at + 8, (dsize - 8) // fsize)  # after MatchId
                    ev = _with_stack(ev, self.resolver.direct(pid, addresses))
        return ev


def heap_event(kind: int, t: int, pid: int, tid: int, fields: tuple) -> HeapEvent:
    """A HeapEvent from the payload fields of heap event ``kind``."""
    if kind == Kind.ALLOC:
        heap, size, address, source = fields
        return HeapEvent(kind, t, pid, tid, heap, address, size, source=source if source <= 6 else 0)
    if kind == Kind.FREE:
        heap, address, source = fields
        return HeapEvent(kind, t, pid, tid, heap, address, source=source if source <= 6 else 0)
    if kind == Kind.REALLOC:
        heap, new, old, size, old_size, source = fields
        return HeapEvent(kind, t, pid, tid, heap, new, size, old, old_size, source if source <= 6 else 0)
    if kind == Kind.HEAP_CREATE:
        heap, flags = fields
        return HeapEvent(kind, t, pid, tid, heap, flags=flags)
    return HeapEvent(kind, t, pid, tid, fields[0])


def _with_stack(ev: tuple, sid: int | tuple | None) -> HeapEvent:
    return _new(HeapEvent, ev[:10] + (sid,) + ev[11:])


class KeyedStackQueue:
    """Applies stack-key markers in time order as the merge releases them.

    KeyDelete/KeyRundown markers and StackKey references are applied and
    dropped; an event waiting for its references (a few records behind it) is
    held back, with every event after it so that the order is kept."""

    def __init__(self, resolver: StackResolver) -> None:
        self.resolver = resolver
        self.queue: deque = deque()

    def resolve(self, items: list) -> Iterator[HeapEvent]:
        """Yield the events of ``items`` (one merge round) that can go."""
        resolver = self.resolver
        queue = self.queue
        for ev in items:
            kind = ev[0]
            if kind == KEY_FRAMES:
                resolver.key_frames(ev[2], ev[3])
            elif kind == KEY_REF:
                holder = ev[2]
                holder.slots[ev[3]] = resolver.slot(ev[4], ev[5])
                holder.remaining -= 1
            elif queue or type(ev[10]) is PendingStack:
                queue.append(ev)
            else:
                yield ev
            while queue:
                head = queue[0]
                stack = head[10]
                if type(stack) is PendingStack:
                    if stack.remaining:
                        break
                    head = _with_stack(head, resolver.spec(stack.slots_in_order()))
                queue.popleft()
                yield head

    def flush(self) -> Iterator[HeapEvent]:
        """Events still held at the end of the trace (references never seen)."""
        while self.queue:
            head = self.queue.popleft()
            stack = head[10]
            if type(stack) is PendingStack:
                slots = stack.slots_in_order()
                head = _with_stack(head, self.resolver.spec(slots)) if slots else _with_stack(head, None)
            yield head
