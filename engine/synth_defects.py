"""Injected defects for ``heaplint synth`` and the truth records they leave.

Each defect is scheduled a few times (``count``) in the middle of the trace
(35 % to 65 % of the main phase) on one heap of one process.  The events are
built so that the replay classifies them unambiguously and nothing else
changes: the generator's own allocator never hands out an address involved
in a defect while the defect could still be confused with normal activity.

This module holds the registry of defects, their truth records, and the
integrity defects (double free, unknown free, realloc of an unknown old
address, overlap, free on the wrong heap, invalid source).  Defects that are
patterns over time (the steady leak, slow-path storms, realloc chains, heaps
destroyed with live blocks) are in :mod:`heaplint.engine.synth_patterns`.
"""

from __future__ import annotations

from typing import Any, Callable

from heaplint.engine.events import Kind, Source
from heaplint.engine.synth_heap import struct_size
from heaplint.engine.synth_process import MOVE_GUARD_NS, HeapSim, ProcessSim

_ALLOC = int(Kind.ALLOC)
_REALLOC = int(Kind.REALLOC)
_FREE = int(Kind.FREE)
_LFH = int(Source.LFH)
_MAIN = int(Source.MAINPATH)
_INVALID = int(Source.INVALID)

#: defect name -> (the built-in rule meant to catch it, every rule that should, what it is)
DEFECTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "leak": ("HL003", ("HL003", "HL004"), "a fraction of the blocks from one stack is never freed (steady growth)"),
    "double-free": ("HL006", ("HL006",), "a block freed twice (second free by another thread)"),
    "unknown-free": ("HL007", ("HL007",), "a free of an address the heap never handed out"),
    "realloc-unknown": ("HL001", ("HL001",), "a realloc whose old address was never allocated"),
    "overlap": ("HL009", ("HL009",), "an allocation returned inside a live block"),
    "wrong-heap-free": (
        "HL008",
        ("HL008",),
        "a block freed through another heap of the process (freed properly later)",
    ),
    "invalid-source": ("HL011", ("HL011",), "allocations the trace marks as served from an invalid source"),
    "slowpath-storm": ("HL002", ("HL002",), "a large buffer resized over a hundred times in a second on the slow path"),
    "realloc-chain": ("HL010", ("HL010",), "one buffer grown by dozens of small moving reallocs (quadratic copying)"),
    "destroy-live": ("HL005", ("HL005",), "an arena heap destroyed while its blocks are live"),
}

RULE_NAMES: dict[str, str] = {
    "HL001": "realloc-unknown-old-address",
    "HL002": "slowpath-realloc-storm",
    "HL003": "unbounded-heap-growth",
    "HL004": "outstanding-allocations",
    "HL005": "heap-destroyed-with-live-blocks",
    "HL006": "double-free",
    "HL007": "free-of-unknown-address",
    "HL008": "free-on-wrong-heap",
    "HL009": "overlapping-allocation",
    "HL010": "realloc-growth-chain",
    "HL011": "invalid-source",
}

Action = Callable[[ProcessSim, HeapSim, int, dict[str, Any]], None]


def truth_record(kind: str, proc: ProcessSim, heap: HeapSim) -> dict[str, Any]:
    """The empty truth record of one injected defect (filled as it happens)."""
    rule, rules, what = DEFECTS[kind]
    return {
        "kind": kind,
        "description": what,
        "rule": rule,
        "rules": list(rules),
        "rule_names": [RULE_NAMES[r] for r in rules],
        "pid": proc.pid,
        "image": proc.image,
        "heap": f"0x{heap.handle:x}",
        "count": 0,
        "bytes": 0,
        "first_time_ns": None,
        "last_time_ns": None,
        "addresses": [],
        "occurrences": [],
    }


def schedule_defect(
    kind: str, action: Action, proc: ProcessSim, heap: HeapSim, count: int, stack: int
) -> dict[str, Any]:
    """Schedule ``count`` occurrences of defect ``kind`` (``action`` makes one)
    on ``heap`` and return its truth record, which fills in as the events are
    generated."""
    truth = truth_record(kind, proc, heap)
    proc.defects.append(truth)
    truth["stack"] = stack
    rng = proc.rng
    end = proc.end_main
    for i in range(count):
        lo = 0.35 + 0.3 * i / count
        when = int(end * (lo + 0.3 / count * rng.random()))
        proc.at(when, _bind(action, proc, heap, stack, truth))
    return truth


def _bind(action: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: action(*args)


def record(truth: dict[str, Any], time: int, address: int, size: int, heap: int | None = None, **extra: Any) -> None:
    """Add one occurrence (at ``address``, ``size`` bytes, on ``heap`` or the
    record's heap) to a truth record."""
    truth["count"] += 1
    truth["bytes"] += size
    if truth["first_time_ns"] is None:
        truth["first_time_ns"] = time
    truth["last_time_ns"] = time
    truth["addresses"].append(f"0x{address:x}")
    where = truth["heap"] if heap is None else f"0x{heap:x}"
    truth["occurrences"].append({"address": f"0x{address:x}", "size": size, "time_ns": time, "heap": where, **extra})


def _double_free(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    workers = proc.threads[1:] or proc.threads
    tid = proc.thread(workers)
    size = struct_size(proc.rng)
    address = proc.alloc(heap, tid, size, stack)

    def first() -> None:
        proc.emit(_FREE, tid, heap.handle, address, 0, 0, -1, _LFH)

        def second() -> None:
            other = proc.thread(proc.threads)
            proc.emit(_FREE, other, heap.handle, address, 0, 0, -1, _LFH)
            record(truth, proc.t, address, size, first_free_tid=tid, second_free_tid=other)
            # only now may the slot be handed out again
            heap.alloc.release(address, size, proc.t)

        proc.at(proc.t + 50_000 + int(proc.rng.random() * 500_000), second)

    proc.at(proc.t + 200_000 + int(proc.rng.random() * 1_800_000), first)


def _unknown_free(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    address = heap.alloc.unused_address()
    proc.emit(_FREE, proc.thread(proc.threads), heap.handle, address, 0, 0, -1, _MAIN)
    record(truth, proc.t, address, 0)


def _realloc_unknown(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    old = heap.alloc.unused_address()
    old_size = struct_size(proc.rng)
    size = old_size * 2
    new = heap.alloc.alloc(size, proc.t, aged=proc.t - MOVE_GUARD_NS)
    proc.emit(_REALLOC, tid, heap.handle, new, size, old, old_size, heap.alloc.last_source, stack)
    record(truth, proc.t, old, old_size, new_address=f"0x{new:x}", new_size=size)
    # the new block is real: free it later, away from the pairing window
    proc.at(proc.t + 2_000_000 + int(proc.rng.random() * 3_000_000), lambda: proc.free(heap, tid, new, size))


def _overlap(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    size = 64 + (int(proc.rng.random() * 12) << 4)
    victim = proc.alloc(heap, tid, size, stack)

    def inside() -> None:
        # the heap hands out memory inside the live victim; the victim is then
        # lost to the program (never freed) and its slot never reused
        address, inner = victim + 16, size - 32
        proc.emit(_ALLOC, tid, heap.handle, address, inner, 0, -1, _LFH, stack)
        record(truth, proc.t, address, inner, overlapped=f"0x{victim:x}", overlapped_size=size)
        proc.at(
            proc.t + 1_000_000 + int(proc.rng.random() * 4_000_000),
            lambda: proc.emit(_FREE, tid, heap.handle, address, 0, 0, -1, _LFH),
        )

    proc.at(proc.t + 500_000 + int(proc.rng.random() * 2_500_000), inside)


def _wrong_heap_free(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    other = next(h for h in proc.heaps.values() if h is not heap)
    tid = proc.thread(proc.threads)
    size = struct_size(proc.rng)
    address = proc.alloc(heap, tid, size, stack)

    def wrong() -> None:
        proc.emit(_FREE, tid, other.handle, address, 0, 0, -1, _LFH)
        record(truth, proc.t, address, size, other.handle, owner_heap=f"0x{heap.handle:x}")
        # a later clean-up frees the block through the right heap
        proc.at(proc.t + 1_000_000 + int(proc.rng.random() * 4_000_000), lambda: proc.free(heap, tid, address, size))

    proc.at(proc.t + 200_000 + int(proc.rng.random() * 1_800_000), wrong)


def _invalid_source(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    size = struct_size(proc.rng)
    address = heap.alloc.alloc(size, proc.t)
    proc.emit(_ALLOC, tid, heap.handle, address, size, 0, -1, _INVALID, stack)
    record(truth, proc.t, address, size)
    proc.at(proc.t + 500_000 + int(proc.rng.random() * 2_000_000), lambda: proc.free(heap, tid, address, size))


#: point defects: name -> the action that makes one occurrence
ACTIONS: dict[str, Action] = {
    "double-free": _double_free,
    "unknown-free": _unknown_free,
    "realloc-unknown": _realloc_unknown,
    "overlap": _overlap,
    "wrong-heap-free": _wrong_heap_free,
    "invalid-source": _invalid_source,
}
