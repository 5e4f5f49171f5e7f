"""Defects that are patterns over time, for ``heaplint synth``.

* ``leak`` — a workload, because it lasts the whole trace: request objects
  from one stack, most freed after a short life, a fixed fraction never freed,
  at a steady rate (so the heap's live bytes and its lower envelope rise
  throughout, and the leaked blocks are what is left at process end);
* ``slowpath-storm`` — one large buffer resized over a hundred times within
  about a second, every resize served from the slow path;
* ``realloc-chain`` — one buffer grown by dozens of small moving reallocs;
* ``destroy-live`` — an arena heap destroyed while its blocks are live.

Their truth records have the shape of :func:`~heaplint.engine.synth_defects.truth_record`.
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.events import Source
from heaplint.engine.synth_defects import Action, record, truth_record
from heaplint.engine.synth_heap import SMALL
from heaplint.engine.synth_process import HeapSim, ProcessSim
from heaplint.engine.synth_workloads import Workload

_SLOW = int(Source.SLOWPATH)
MAX_TRUTH_ADDRESSES = 10_000
#: the sizes a stormed staging buffer is resized between (a few classes, so
#: that its slots are reused instead of eating address space)
STORM_SIZES = tuple(k << 16 for k in (8, 12, 16, 24, 32, 48))
STORM_RESIZES = 120
CHAIN_MOVES = 48


class Leak(Workload):
    """The injected leak (see the module docstring)."""

    kind = "leak"
    description = "(defect) a fraction of the blocks from one stack is never freed: steady growth"
    PARAMS = {"fraction": 0.3, "inflight": 16}

    def setup(self) -> None:
        self.stacks = [self.site(0)]
        # a request clone with its body buffer (0.75-2 KiB): big enough that
        # the leak, not the churn beside it, dominates the heap's growth
        self.size = 768 + (int(self.rng.random() * 80) << 4)
        self.fraction = float(self.params["fraction"])
        self.inflight = int(self.params["inflight"])
        self.truth = truth_record("leak", self.proc, self.heap)
        self.truth.update(stack=self.stacks[0], fraction=self.fraction)
        del self.truth["occurrences"]  # one record per block would be the addresses again
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


def _slowpath_storm(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.threads[0]
    rng = proc.rng
    size = STORM_SIZES[0]
    start = proc.alloc(heap, tid, size, stack)
    buf = [start, size]
    t = proc.t
    first = t

    def resize() -> None:
        new_size = STORM_SIZES[int(rng.random() * len(STORM_SIZES))]
        buf[0] = proc.realloc(heap, tid, buf[0], buf[1], new_size, stack, _SLOW)
        buf[1] = new_size

    for _ in range(STORM_RESIZES):
        t += 2_000_000 + int(rng.random() * 8_000_000)  # 2-10 ms apart
        proc.at(t, resize)

    def done() -> None:
        record(truth, first, start, STORM_SIZES[0], reallocs=STORM_RESIZES, last_time_ns=proc.t)
        proc.free(heap, tid, buf[0], buf[1])

    proc.at(t + 3_000_000, done)


def _realloc_chain(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    rng = proc.rng
    size = 32
    first = proc.t
    buf = [proc.alloc(heap, tid, size, stack), size, 0, 0]  # address, size, moves, bytes copied
    t = proc.t

    def append() -> None:
        new_size = buf[1] + 64  # a new size class each time (below 4 KiB): every append moves
        address = proc.realloc(heap, tid, buf[0], buf[1], new_size, stack)
        buf[2] += address != buf[0]
        buf[3] += buf[1] if address != buf[0] else 0
        buf[0], buf[1] = address, new_size

    for _ in range(CHAIN_MOVES):
        t += 20_000 + int(rng.random() * 180_000)
        proc.at(t, append)

    def done() -> None:
        record(truth, first, buf[0], buf[1], moves=buf[2], bytes_copied=buf[3], last_time_ns=proc.t)
        proc.free(heap, tid, buf[0], buf[1])

    proc.at(t + 1_000_000, done)


def _destroy_live(proc: ProcessSim, heap: HeapSim, stack: int, truth: dict[str, Any]) -> None:
    tid = proc.thread(proc.threads)
    rng = proc.rng
    arena = HeapSim("arena", proc.new_handle(), 0x3, True, rng)
    proc.create_heap(arena, tid, near=False)
    blocks = 40 + int(rng.random() * 40)
    total = 0
    for i in range(blocks):
        size = SMALL.sample(rng)
        total += size
        proc.alloc(arena, tid, size, stack, near=i > 0)

    def destroy() -> None:
        proc.destroy_heap(arena, tid, near=False)
        proc.handle_freed(arena.handle)
        record(truth, proc.t, arena.handle, total, arena.handle, blocks=blocks)

    proc.at(proc.t + 5_000_000 + int(rng.random() * 45_000_000), destroy)


#: pattern defects made by scheduled actions: name -> (action, stack site kind)
PATTERN_ACTIONS: dict[str, tuple[Action, str]] = {
    "slowpath-storm": (_slowpath_storm, "storm"),
    "realloc-chain": (_realloc_chain, "chain"),
    "destroy-live": (_destroy_live, "arena"),
}
