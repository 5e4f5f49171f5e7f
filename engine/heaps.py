"""The records of a replayed state: one per heap, one per process.

:class:`~heaplint.engine.state.HeapState` makes and updates them; rules,
statistics and reports read them.  :func:`check_invariants` asserts what the
state guarantees (see engine/state.py) for the property tests.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from heaplint.engine.blocks import Block, BlockMap
from heaplint.engine.series import Series

if TYPE_CHECKING:
    from heaplint.engine.state import HeapState


class HeapRecord:
    """One heap of one process: its live blocks and its statistics."""

    __slots__ = (
        "pid",
        "handle",
        "label",
        "flags",
        "created",
        "create_time",
        "end_time",
        "blocks",
        "live_bytes",
        "peak_bytes",
        "peak_time",
        "counts",
        "sources",
        "anomalies",
        "series",
        "first_time",
        "last_time",
        "serial",
    )

    def __init__(
        self, pid: int, handle: int, label: str, created: bool, time: int, flags: int = 0, serial: int = 0
    ) -> None:
        self.pid = pid
        #: unique per HeapRecord of a HeapState: tells a reused handle's heaps apart
        self.serial = serial
        self.handle = handle
        self.label = label
        self.flags = flags
        self.created = created
        self.create_time = time if created else None
        self.end_time: int | None = None
        self.blocks = BlockMap()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_time = time
        self.counts = [0] * 8  # by Kind value
        self.sources = [0] * 7  # by Source value
        self.anomalies: dict[str, int] = {}
        self.series = Series()
        self.first_time = time
        self.last_time = time

    @property
    def live_blocks(self) -> int:
        return len(self.blocks)

    def containing(self, address: int) -> tuple[int, Block] | None:
        """The live block whose span holds ``address`` (O(log n))."""
        return self.blocks.containing(address)


class ProcessState:
    """One process: its heaps, live totals, coverage."""

    __slots__ = (
        "pid",
        "image",
        "heaps",
        "retired",
        "live_bytes",
        "peak_bytes",
        "peak_time",
        "start_seen",
        "end_seen",
        "ended",
        "first_time",
        "last_time",
        "created_heaps",
        "uncreated_heaps",
        "freed",
        "anomalies",
        "series",
        "retired_dropped",
    )

    def __init__(self, pid: int, time: int, image: str | None = None) -> None:
        self.pid = pid
        self.image = image
        self.heaps: dict[int, HeapRecord] = {}
        self.retired: list[HeapRecord] = []
        self.retired_dropped = 0
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_time = time
        self.start_seen = False
        self.end_seen = False
        self.ended = False
        self.first_time = time
        self.last_time = time
        self.created_heaps = 0
        self.uncreated_heaps = 0
        #: address -> serial of the heap record it was freed from, for recent
        #: frees, oldest first (bounded; an OrderedDict because evicting the
        #: oldest entry of a plain dict used as a queue costs O(size))
        self.freed: OrderedDict[int, int] = OrderedDict()
        self.anomalies: dict[str, int] = {}
        self.series = Series()

    @property
    def live_blocks(self) -> int:
        return sum(len(h.blocks) for h in self.heaps.values())

    def all_heaps(self) -> list[HeapRecord]:
        """Retired heaps first (in retirement order), then live ones."""
        return [*self.retired, *self.heaps.values()]


def check_invariants(state: HeapState) -> None:
    """Assert the invariants listed in engine/state.py (for tests)."""
    for proc in state.processes.values():
        total = 0
        for heap in proc.heaps.values():
            heap.blocks._check()
            prev_end = None
            size_sum = 0
            for address, block in heap.blocks.items():
                assert block.size >= 0, (address, block)
                if prev_end is not None:
                    assert address >= prev_end, f"overlap at 0x{address:x} in heap 0x{heap.handle:x}"
                prev_end = address + (block.size or 1)
                size_sum += block.size
            assert size_sum == heap.live_bytes, (heap.label, size_sum, heap.live_bytes)
            assert heap.peak_bytes >= heap.live_bytes
            _check_series(heap.series, heap.live_bytes, heap.peak_bytes)
            total += heap.live_bytes
        assert total == proc.live_bytes, (proc.pid, total, proc.live_bytes)
        assert proc.peak_bytes >= proc.live_bytes
        _check_series(proc.series, proc.live_bytes, proc.peak_bytes)
        by_serial = {h.serial: h for h in proc.heaps.values()}
        assert len(by_serial) == len(proc.heaps)
        for address, serial in proc.freed.items():
            h = by_serial.get(serial)
            assert h is None or address not in h.blocks, f"freed 0x{address:x} is live"
        assert len(proc.freed) <= state.freed_memory


def _check_series(series: Series, live: int, peak: int) -> None:
    """A live-bytes series ends at the current value and peaks at the peak."""
    buckets = series.snapshot()
    if buckets:
        assert buckets[-1].last == live, (buckets[-1], live)
        assert max(b.high for b in buckets) == peak, (peak, buckets)
