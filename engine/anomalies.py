"""Anomalies of a replay, and how :class:`~heaplint.engine.state.HeapState`
classifies irregular records.

The state's hot paths (engine/state.py) handle the regular record of each kind
(known heap, valid source, non-null address, sane size, known block) and hand
anything else, unchanged, to the ``_checked`` handlers here, which handle every
case and note what the record reveals.  Anomalies are values returned by the
replay, never exceptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from heaplint.engine.blocks import Block, pack, size_of, unpack
from heaplint.engine.events import HeapEvent

if TYPE_CHECKING:
    from heaplint.engine.state import HeapRecord, ProcessState

# --- anomaly kinds (stable strings: rules and reports use them) -------------
UNKNOWN_FREE = "unknown-free"
INTERIOR_FREE = "interior-free"  # free of an address inside a live block
DOUBLE_FREE = "double-free"
OVERLAP = "overlap"
WRONG_HEAP_FREE = "wrong-heap-free"
REALLOC_UNKNOWN_OLD = "realloc-unknown-old"
REALLOC_SIZE_MISMATCH = "realloc-size-mismatch"
ZERO_SIZE = "zero-size"
ABSURD_SIZE = "absurd-size"
NULL_ADDRESS = "null-address"
DESTROY_WITH_LIVE_BLOCKS = "destroy-with-live-blocks"
UNKNOWN_HEAP = "unknown-heap"
HANDLE_REUSE = "handle-reuse"
OUT_OF_ORDER = "out-of-order"
INVALID_SOURCE = "invalid-source"

ANOMALY_KINDS: tuple[str, ...] = (
    UNKNOWN_FREE,
    INTERIOR_FREE,
    DOUBLE_FREE,
    OVERLAP,
    WRONG_HEAP_FREE,
    REALLOC_UNKNOWN_OLD,
    REALLOC_SIZE_MISMATCH,
    ZERO_SIZE,
    ABSURD_SIZE,
    NULL_ADDRESS,
    DESTROY_WITH_LIVE_BLOCKS,
    UNKNOWN_HEAP,
    HANDLE_REUSE,
    OUT_OF_ORDER,
    INVALID_SOURCE,
)

_SOURCE_INVALID = 5
_NO_ANOMALIES: tuple = ()


class Anomaly(NamedTuple):
    """Something the trace shows that a correct program with a complete trace
    would not.  ``other`` is the related address (the live block an interior
    free points into, the block an allocation overlaps, the heap a wrong-heap
    free belongs to); ``count``/``bytes`` carry aggregate evidence (blocks and
    bytes alive at a destroy)."""

    kind: str
    event: HeapEvent
    pid: int
    heap: int
    address: int = 0
    size: int = 0
    other: int = 0
    count: int = 0
    bytes: int = 0


def note(proc: ProcessState, heap: HeapRecord | None, anomaly: Anomaly, out: list[Anomaly]) -> None:
    """Add ``anomaly`` to ``out`` and to the process's and heap's counts."""
    out.append(anomaly)
    kind = anomaly.kind
    proc.anomalies[kind] = proc.anomalies.get(kind, 0) + 1
    if heap is not None:
        heap.anomalies[kind] = heap.anomalies.get(kind, 0) + 1


class IrregularRecords:
    """The ``_checked`` handlers of :class:`~heaplint.engine.state.HeapState`
    (a mixin: they use its ``_heap``, ``_insert``, ``_grow``, ``_remember_free``
    and settings).  Each starts from an unchanged state: the fast paths decide
    before they change anything."""

    absurd_size: int
    realloc_moves: bool
    _ended: Any

    if TYPE_CHECKING:

        def _heap(self, proc: ProcessState, ev: HeapEvent, out: list[Anomaly]) -> HeapRecord: ...
        def _insert(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, rec: Any, out: list[Anomaly] | None,
                    replaced: int = 0) -> list[Anomaly] | None: ...  # fmt: skip
        def _remember_free(self, proc: ProcessState, address: int, heap: HeapRecord) -> None: ...
        def _grow(self, proc: ProcessState, heap: HeapRecord, delta: int, time: int) -> None: ...

    def _check_size(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, size: int, out: list[Anomaly]) -> bool:
        """Note zero and absurd sizes; False when the size is too absurd to track."""
        if size == 0:
            note(proc, heap, Anomaly(ZERO_SIZE, ev, proc.pid, ev.heap, ev.address, 0), out)
        elif size >= self.absurd_size or size < 0:
            note(proc, heap, Anomaly(ABSURD_SIZE, ev, proc.pid, ev.heap, ev.address, size), out)
            return False
        return True

    def _count_source(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, out: list[Anomaly]) -> None:
        """Count the record's source.  Source 5 (INVALID), or a value outside
        0-6 (a corrupt record), is counted as INVALID, never used as a list
        index, and noted."""
        source = ev.source
        if 0 <= source < _SOURCE_INVALID or source == 6:
            heap.sources[source] += 1
            return
        heap.sources[_SOURCE_INVALID] += 1
        note(proc, heap, Anomaly(INVALID_SOURCE, ev, proc.pid, ev.heap, ev.address, ev.size), out)

    def _alloc_checked(self, proc: ProcessState, ev: HeapEvent) -> Any:
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[2] += 1
        self._count_source(proc, heap, ev, out)
        if ev.address == 0:
            note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, 0, ev.size), out)
            return out
        if not self._check_size(proc, heap, ev, ev.size, out):
            return out
        self._insert(proc, heap, ev, _record(ev, 0, 0), out)
        return out or _NO_ANOMALIES

    def _free_checked(self, proc: ProcessState, ev: HeapEvent) -> Any:
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[4] += 1
        self._count_source(proc, heap, ev, out)
        address = ev.address
        if address == 0:
            note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, 0), out)
            return out
        rec = heap.blocks.take(address)
        if rec is not None:
            self._ended = rec
            self._remember_free(proc, address, heap)
            self._grow(proc, heap, -size_of(rec), ev.time)
            return out or _NO_ANOMALIES
        self._unknown_address(proc, heap, ev, address, UNKNOWN_FREE, out)
        return out

    def _unknown_address(
        self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, address: int, default: str, out: list[Anomaly]
    ) -> None:
        """Classify a free (or realloc) of an address not live on its heap."""
        inside = heap.blocks.containing(address)
        if inside is not None:
            start, block = inside
            note(proc, heap, Anomaly(INTERIOR_FREE, ev, proc.pid, ev.heap, address, block.size, start), out)
            return
        for other in proc.heaps.values():
            if other is not heap and address in other.blocks:
                size = size_of(dict.get(other.blocks, address))
                note(proc, heap, Anomaly(WRONG_HEAP_FREE, ev, proc.pid, ev.heap, address, size, other.handle), out)
                return
        if proc.freed.get(address) == heap.serial:
            note(proc, heap, Anomaly(DOUBLE_FREE, ev, proc.pid, ev.heap, address), out)
            return
        note(proc, heap, Anomaly(default, ev, proc.pid, ev.heap, address, ev.old_size or 0), out)

    def _realloc_checked(self, proc: ProcessState, ev: HeapEvent) -> Any:
        out: list[Anomaly] = []
        heap = self._heap(proc, ev, out)
        heap.counts[3] += 1
        self._count_source(proc, heap, ev, out)
        new, old, size = ev.address, ev.old_address, ev.size
        if new == 0 or old == 0:
            note(proc, heap, Anomaly(NULL_ADDRESS, ev, proc.pid, ev.heap, new, size, old), out)
            return out
        moving = new != old
        if moving and not self.realloc_moves:
            return out or _NO_ANOMALIES  # paired mode: the inner Alloc/Free carry the move
        if not self._check_size(proc, heap, ev, size, out):
            return out
        raw = heap.blocks.take(old)
        if raw is None:
            self._realloc_unknown(proc, heap, ev, out)
            moves, copied = (1, ev.old_size or 0) if moving else (0, 0)
            self._insert(proc, heap, ev, _record(ev, moves, copied), out)
            return out
        self._ended = raw
        prior = unpack(raw)
        if ev.old_size is not None and ev.old_size != prior.size:
            note(proc, heap, Anomaly(REALLOC_SIZE_MISMATCH, ev, proc.pid, ev.heap, old, ev.old_size, 0, 0, prior.size), out)
        if moving:
            self._remember_free(proc, old, heap)
            rec = _record(ev, prior.moves + 1, prior.copied + prior.size)
        else:
            rec = _record(ev, prior.moves, prior.copied)
        self._insert(proc, heap, ev, rec, out, prior.size)
        return out or _NO_ANOMALIES

    def _realloc_unknown(self, proc: ProcessState, heap: HeapRecord, ev: HeapEvent, out: list[Anomaly]) -> None:
        before = len(out)
        self._unknown_address(proc, heap, ev, ev.old_address, REALLOC_UNKNOWN_OLD, out)
        # whatever the finer class, a realloc of an unknown old address is also
        # reported as such, so that one rule can catch every variant
        if out[before:] and out[-1].kind != REALLOC_UNKNOWN_OLD:
            note(proc, heap, Anomaly(REALLOC_UNKNOWN_OLD, ev, proc.pid, ev.heap, ev.old_address, ev.old_size or 0), out)


def _record(ev: HeapEvent, moves: int, copied: int) -> Any:
    """The record of the block ``ev`` makes (its source counted as given when
    valid; an invalid one is kept as it came, like before compaction)."""
    source = ev.source
    if 0 <= source <= 6:
        return pack(ev.size, ev.time, ev.index, ev.stack, source, moves, copied)
    return Block(ev.size, ev.time, ev.index, ev.stack, source, moves, copied)
