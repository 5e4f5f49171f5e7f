"""Injected defects for ``heaplint synth`` and the truth records they leave.

Each defect is scheduled a few times (``count``) in the middle of the trace
(35 % to 65 % of the main phase) on one heap of one process.  The events are
built so that the replay classifies them unambiguously and nothing else
changes: the generator's own allocator never hands out an address involved
in a defect while the defect could still be confused with normal activity.

The steady leak is a workload (:class:`heaplint.engine.synth_workloads.Leak`)
because it lasts the whole trace; its truth record has the same shape.
"""

from __future__ import annotations

from typing import Any, Callable

from heaplint.engine.events import Kind, Source
from heaplint.engine.synth_heap import struct_size
from heaplint.engine.synth_process import MOVE_GUARD_NS, HeapSim, ProcessSim
from heaplint.engine.synth_stacks import StackCatalogue
from heaplint.engine.synth_workloads import Workload

_ALLOC = int(Kind.ALLOC)
_REALLOC = int(Kind.REALLOC)
_FREE = int(Kind.FREE)
_LFH = int(Source.LFH)
_MAIN = int(Source.MAINPATH)

#: defect name -> (the built-in rule meant to catch it, every rule that should)
DEFECTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "leak": ("HL003", ("HL003", "HL004"), "a fraction of the blocks from one stack is never freed (steady growth)"),
    "double-free": ("HL006", ("HL006",), "a block freed twice (second free by another thread)"),
    "unknown-free": ("HL007", ("HL007",), "a free of an address the heap never handed out"),
    "realloc-unknown": ("HL001", ("HL001",), "a realloc whose old address was never allocated"),
    "overlap": ("HL009", ("HL009",), "an allocation returned inside a live block"),
}

RULE_NAMES: dict[str, str] = {
    "HL001": "realloc-unknown-old-address",
    "HL003": "unbounded-heap-growth",
    "HL004": "outstanding-allocations",
    "HL006": "double-free",
    "HL007": "free-of-unknown-address",
    "HL009": "overlapping-allocation",
}


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


def schedule_defect(kind: str, proc: ProcessSim, heap: HeapSim, count: int, stacks: StackCatalogue) -> dict[str, Any]:
    """Schedule ``count`` occurrences of defect ``kind`` (not the leak) and
    return its truth record, which fills in as the events are generated."""
    truth = truth_record(kind, proc, heap)
    proc.defects.append(truth)
    stack = stacks.site(proc.image, "defect", 0)
    truth["stack"] = stack
    action = _ACTIONS[kind]
    rng = proc.rng
    end = proc.end_main
    for i in range(count):
        lo = 0.35 + 0.3 * i / count
        when = int(end * (lo + 0.3 / count * rng.random()))
        proc.at(when, _bind(action, proc, heap, stack, truth))
    return truth


def _bind(action: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: action(*args)


def _record(truth: dict[str, Any], time: int, address: int, size: int, **extra: Any) -> None:
    truth["count"] += 1
    truth["bytes"] += size
    if truth["first_time_ns"] is None:
        truth["first_time_ns"] = time
    truth["last_time_ns"] = time
    truth["addresses"].append(f"0x{address:x}")
    truth["occurrences"].append({"address": f"0x{address:x}", "size": size, "time_ns": time, **extra})


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
            _record(truth, proc.t, address, size, first_free_tid=tid, second_free_tid=other)
            # only now may the slot be handed out again
            heap.alloc.release(address, size, proc.t)

        proc.at(proc.t + 50_000 + int(proc.rng.random() * 500_000), second)

    proc.at(proc.t + 200_000 + int(proc.rng.random() * 1_800_000), first)


def _unknown_free(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    address = heap.alloc.unused_address()
    proc.emit(_FREE, proc.thread(proc.threads), heap.handle, address, 0, 0, -1, _MAIN)
    _record(truth, proc.t, address, 0)


def _realloc_unknown(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    old = heap.alloc.unused_address()
    old_size = struct_size(proc.rng)
    size = old_size * 2
    new = heap.alloc.alloc(size, proc.t, aged=proc.t - MOVE_GUARD_NS)
    proc.emit(_REALLOC, tid, heap.handle, new, size, old, old_size, heap.alloc.last_source, stack)
    _record(truth, proc.t, old, old_size, new_address=f"0x{new:x}", new_size=size)
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
        _record(truth, proc.t, address, inner, overlapped=f"0x{victim:x}", overlapped_size=size)
        proc.at(
            proc.t + 1_000_000 + int(proc.rng.random() * 4_000_000),
            lambda: proc.emit(_FREE, tid, heap.handle, address, 0, 0, -1, _LFH),
        )

    proc.at(proc.t + 500_000 + int(proc.rng.random() * 2_500_000), inside)


MAX_TRUTH_ADDRESSES = 10_000


class Leak(Workload):
    """The injected leak: request objects from one stack, most freed after a
    short life, a fixed fraction never freed, at a steady rate."""

    kind = "leak"
    description = "(defect) a fraction of the blocks from one stack is never freed: steady growth"
    PARAMS = {"fraction": 0.3, "inflight": 16}

    def setup(self) -> None:
        self.stacks = [self.site(0)]
        # a request object with its inline buffer: big enough that the leak,
        # not the churn beside it, dominates the heap's growth
        self.size = 256 + (int(self.rng.random() * 48) << 4)
        self.fraction = float(self.params["fraction"])
        self.inflight = int(self.params["inflight"])
        self.truth: dict[str, Any] = {
            "kind": "leak",
            "rule": "HL003",
            "rules": ["HL003", "HL004"],
            "pid": self.proc.pid,
            "image": self.proc.image,
            "heap": f"0x{self.heap.handle:x}",
            "stack": self.stacks[0],
            "fraction": self.fraction,
            "count": 0,
            "bytes": 0,
            "first_time_ns": None,
            "last_time_ns": None,
            "addresses": [],
        }
        self.proc.defects.append(self.truth)

    def step(self) -> None:
        rng, proc = self.rng, self.proc
        if len(self.pool) < self.inflight or rng.random() < 0.5:
            size = self.size if rng.random() < 0.7 else self.size + (int(rng.random() * 24) << 4)
            address = proc.alloc(self.heap, proc.thread(self.threads), size, self.stacks[0])
            if proc.t >= 0 and rng.random() < self.fraction:
                truth = self.truth
                truth["count"] += 1
                truth["bytes"] += size
                if truth["first_time_ns"] is None:
                    truth["first_time_ns"] = proc.t
                truth["last_time_ns"] = proc.t
                if len(truth["addresses"]) < MAX_TRUTH_ADDRESSES:
                    truth["addresses"].append(f"0x{address:x}")
            else:
                self.pool.add(address, size)
        else:
            self._free_random()


_ACTIONS: dict[str, Callable[[ProcessSim, HeapSim, int, dict[str, Any]], None]] = {
    "double-free": _double_free,
    "unknown-free": _unknown_free,
    "realloc-unknown": _realloc_unknown,
    "overlap": _overlap,
}
