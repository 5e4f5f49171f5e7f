"""A model of the Windows NT heap's address behaviour, for ``heaplint synth``.

The generator needs addresses that *look* like a real heap's and behave like
one: 64-bit, based on the heap handle, 16-byte aligned, never overlapping a
live block, and reused after a free (LIFO free lists, as the low-fragmentation
heap and the back end both hand out the most recently freed slot first).

Layout of one heap (all offsets from the 64 KiB-aligned heap handle):

* ``0x2000 ..``: one bump cursor from which LFH *subsegments* (runs of
  equal-sized slots of one bucket) and back-end blocks are carved;
* ``0x1_0000_0000 ..``: large blocks (the ones a real heap serves with
  VirtualAlloc), each in its own 64 KiB-aligned region;
* ``0x1_C000_0000 ..``: never used by blocks, so an address there is
  guaranteed unknown (the "free of an unknown address" defect uses it).

Each slot has a 16-byte header before the user address, as on 64-bit Windows.
A block's slot capacity is a pure function of its size (:func:`size_class`),
so callers only keep ``(address, size)`` per live block.
"""

from __future__ import annotations

from array import array
from collections import deque
from random import Random

from heaplint.engine.errors import UsageError
from heaplint.engine.events import Source

HEADER = 16
LFH_MAX = 16 * 1024  # largest LFH bucket
LARGE_MIN = 0x7F000  # the 64-bit VirtualAlloc threshold (508 KiB)
LARGE_REGION = 0x1_0000_0000
UNUSED_REGION = 0x1_C000_0000
HEAP_SPAN = 0x2_0000_0000  # address window reserved per heap (8 GiB)

_EXHAUSTED = "a synthetic heap ran out of address space (too many large blocks); ask for fewer events or defects"
_LFH = int(Source.LFH)
_MAIN = int(Source.MAINPATH)
_SLOW = int(Source.SLOWPATH)


def size_class(size: int) -> int:
    """The slot capacity a request of ``size`` bytes gets (LFH bucket rounding
    for small sizes, 16 bytes in the back end, pages for large blocks)."""
    if size <= 1024:
        return ((size + 15) & ~15) or 16
    if size <= 2048:
        return (size + 31) & ~31
    if size <= 4096:
        return (size + 63) & ~63
    if size <= 8192:
        return (size + 127) & ~127
    if size <= LFH_MAX:
        return (size + 255) & ~255
    # The back end coalesces free blocks and splits them; with exact-size free
    # lists that would never reuse anything, so back-end blocks get page
    # classes and large (VirtualAlloc) blocks the 64 KiB allocation granularity.
    if size < LARGE_MIN:
        return (size + 4095) & ~4095
    return (size + 0xFFFF) & ~0xFFFF


def source_of(size: int) -> int:
    """The ETW Source a block of ``size`` is usually served from."""
    if size <= LFH_MAX:
        return _LFH
    return _MAIN if size < LARGE_MIN else _SLOW


class HeapAllocator:
    """Hands out addresses for one heap instance.

    ``alloc`` is O(1) amortised.  Moving reallocs must not be ambiguous to the
    replay's pairing of inner Alloc/Free records (same thread, same address,
    within about a millisecond), so the generator takes their new slot with
    ``aged`` (released a while ago) and returns their old slot with
    ``quarantine`` (not reused for a while).
    """

    __slots__ = ("base", "cursor", "large_cursor", "free", "free_times", "runs", "delayed", "last_source", "rng")

    def __init__(self, base: int, rng: Random) -> None:
        self.base = base
        self.cursor = base + 0x2000
        self.large_cursor = base + LARGE_REGION
        self.free: dict[int, list[int]] = {}  # cap -> addresses, most recent last
        self.free_times: dict[int, list[int]] = {}  # cap -> release times, parallel
        self.runs: dict[int, list[int]] = {}  # cap -> [next slot, end]
        self.delayed: deque[tuple[int, int, int]] = deque()  # (until, cap, address)
        self.last_source = _LFH
        self.rng = rng

    def alloc(self, size: int, now: int, aged: int = -1) -> int:
        """An address for a new block of ``size`` bytes.  With ``aged >= 0``
        only a slot released at or before trace time ``aged`` (or a never used
        one) qualifies."""
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            _, c, a = delayed.popleft()
            self._push(c, a, now)
        cap = size_class(size)
        slots = self.free.get(cap)
        if slots:
            if aged < 0:
                self.free_times[cap].pop()
                self.last_source = _LFH if cap <= LFH_MAX else (_MAIN if cap < LARGE_MIN else _SLOW)
                return slots.pop()
            times = self.free_times[cap]
            # the most recently released slot that is old enough (look a few deep)
            for i in range(len(slots) - 1, max(-1, len(slots) - 9), -1):
                if times[i] <= aged:
                    del times[i]
                    self.last_source = _LFH if cap <= LFH_MAX else (_MAIN if cap < LARGE_MIN else _SLOW)
                    return slots.pop(i)
        if cap <= LFH_MAX:
            run = self.runs.get(cap)
            if run is None or run[0] >= run[1]:
                # a new subsegment: the bucket's slots come from the back end (main path)
                slot = cap + HEADER
                n = max(8, 0x4000 // slot)
                start = self.cursor + 0x40  # subsegment header
                self.cursor = (start + n * slot + 0xFFF) & ~0xFFF
                if self.cursor > self.base + LARGE_REGION:
                    raise UsageError(_EXHAUSTED)
                run = self.runs[cap] = [start, start + n * slot]
                self.last_source = _MAIN
            else:
                self.last_source = _LFH
            address = run[0] + HEADER
            run[0] += cap + HEADER
            return address
        if cap < LARGE_MIN:
            address = self.cursor + HEADER
            self.cursor += cap + HEADER
            self.last_source = _MAIN
            if self.cursor > self.base + LARGE_REGION:
                raise UsageError(_EXHAUSTED)
            return address
        address = self.large_cursor + 0x40
        self.large_cursor = (self.large_cursor + cap + 0x40 + 0xFFFF) & ~0xFFFF
        self.last_source = _SLOW
        if self.large_cursor > self.base + UNUSED_REGION:
            raise UsageError(_EXHAUSTED)
        return address

    def _push(self, cap: int, address: int, now: int) -> None:
        slots = self.free.get(cap)
        if slots is None:
            self.free[cap] = [address]
            self.free_times[cap] = [now]
        else:
            slots.append(address)
            self.free_times[cap].append(now)

    def release(self, address: int, size: int, now: int) -> None:
        """Return a block freed at ``now`` to its free list (reused LIFO)."""
        self._push(size_class(size), address, now)

    def quarantine(self, address: int, size: int, until: int) -> None:
        """Return a slot, but not before trace time ``until``."""
        self.delayed.append((until, size_class(size), address))

    def unused_address(self) -> int:
        """An aligned address inside this heap's window that no block will
        ever occupy."""
        return self.base + UNUSED_REGION + HEADER + (self.rng.randrange(1 << 20) << 4)


class BlockPool:
    """Live blocks of one workload: parallel arrays of addresses and sizes
    (16 bytes per block, so a million live blocks cost 16 MB, not 150).

    ``take_random`` removes a uniformly chosen block in O(1) (swap with last).
    """

    __slots__ = ("addrs", "sizes")

    def __init__(self) -> None:
        self.addrs = array("Q")
        self.sizes = array("Q")

    def __len__(self) -> int:
        return len(self.addrs)

    def add(self, address: int, size: int) -> None:
        self.addrs.append(address)
        self.sizes.append(size)

    def take_random(self, rng: Random) -> tuple[int, int]:
        """Remove and return a random ``(address, size)``; the pool must not be empty."""
        addrs, sizes = self.addrs, self.sizes
        i = int(rng.random() * len(addrs))
        a, s = addrs[i], sizes[i]
        last_a, last_s = addrs.pop(), sizes.pop()
        if i < len(addrs):
            addrs[i] = last_a
            sizes[i] = last_s
        return a, s

    def take_last(self) -> tuple[int, int]:
        return self.addrs.pop(), self.sizes.pop()

    def total_bytes(self) -> int:
        return sum(self.sizes)


class SizeModel:
    """A size distribution: weighted bins, uniform inside a bin, rounded to a
    multiple of ``align``.  A single bin with ``lo == hi`` is a fixed size
    (a struct allocated by one call site)."""

    __slots__ = ("bins", "cum", "align")

    def __init__(self, bins: list[tuple[int, int, float]], align: int = 8) -> None:
        total = sum(w for _, _, w in bins)
        self.bins = [(lo, hi) for lo, hi, _ in bins]
        acc = 0.0
        self.cum: list[float] = []
        for _, _, w in bins:
            acc += w / total
            self.cum.append(acc)
        self.cum[-1] = 1.0
        self.align = align

    @property
    def mean(self) -> float:
        """The expected size (before alignment)."""
        prev = 0.0
        total = 0.0
        for (lo, hi), c in zip(self.bins, self.cum, strict=True):
            total += (c - prev) * (lo + hi) / 2
            prev = c
        return total

    def sample(self, rng: Random) -> int:
        r = rng.random()
        cum = self.cum
        i = 0
        while cum[i] < r:
            i += 1
        lo, hi = self.bins[i]
        if lo == hi:
            return lo
        size = lo + int(rng.random() * (hi - lo + 1))
        a = self.align
        return max(a, size - size % a) if a > 1 else size

    @classmethod
    def fixed(cls, size: int) -> "SizeModel":
        return cls([(size, size, 1.0)], 1)


#: mostly small LFH sizes, a thin tail of larger ones
SMALL = SizeModel(
    [
        (8, 32, 24),
        (33, 64, 26),
        (65, 128, 20),
        (129, 256, 13),
        (257, 512, 8),
        (513, 1024, 5),
        (1025, 4096, 3),
        (4097, 16384, 1),
    ]
)
#: strings and temporaries: tiny and odd-sized
TINY = SizeModel([(2, 16, 30), (17, 48, 40), (49, 128, 25), (129, 400, 5)], align=1)
#: cache entries and buffers: KiB to a few hundred KiB
MEDIUM = SizeModel([(512, 4096, 40), (4097, 16384, 30), (16385, 65536, 20), (65537, 262144, 10)], align=16)
#: staging buffers: mostly above the VirtualAlloc threshold
LARGE = SizeModel([(262144, LARGE_MIN, 30), (LARGE_MIN, 4 << 20, 70)], align=4096)

SIZE_MODELS: dict[str, SizeModel] = {"small": SMALL, "tiny": TINY, "medium": MEDIUM, "large": LARGE}


def struct_size(rng: Random) -> int:
    """A plausible fixed struct size for one call site (a multiple of 8)."""
    return max(16, SMALL.sample(rng) if rng.random() < 0.8 else TINY.sample(rng) + 8) & ~7
