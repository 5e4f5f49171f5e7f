"""Named workloads for ``heaplint synth``: the building blocks of a process.

Each workload owns the blocks it allocates, allocates from a few named call
sites (stacks), and takes one *step* at a time when its process picks it (by
weight).  ``budget`` is roughly how many steps it will get, so that shapes
such as "the cache fills in the first fifth" hold at any trace size; explicit
parameters override the derived sizes (the ``steady`` preset fixes them so
that its live set does not depend on the trace length).

Healthy workloads never free what they did not allocate, never free twice,
and their live bytes plateau, return to a base, or stay level.  The one
defect workload, ``leak``, never frees a fraction of its blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from heaplint.engine.errors import UsageError
from heaplint.engine.events import Source
from heaplint.engine.synth_heap import LARGE, SIZE_MODELS, SMALL, TINY, BlockPool, struct_size
from heaplint.engine.synth_process import HeapSim, ProcessSim
from heaplint.engine.synth_stacks import StackCatalogue

_SLOW = int(Source.SLOWPATH)
SECOND = 1_000_000_000


def _clamp(value: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(value)))


class Workload:
    """Base class: a pool of live blocks on one heap, a thread set, stacks."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: parameter -> default (None: derived from the budget)
    PARAMS: ClassVar[dict[str, Any]] = {}
    #: "main", "workers" or "all"
    THREADS: ClassVar[str] = "workers"

    def __init__(self, proc: ProcessSim, heap: HeapSim, budget: int, params: dict[str, Any], stacks: StackCatalogue) -> None:
        unknown = set(params) - set(self.PARAMS)
        if unknown:
            raise UsageError(
                f"unknown parameter(s) {', '.join(sorted(unknown))} for workload '{self.kind}'; "
                f"known: {', '.join(self.PARAMS) or '(none)'}"
            )
        self.params = {**self.PARAMS, **params}
        self.proc = proc
        self.heap = heap
        self.rng = proc.rng
        self.budget = max(1, budget)
        self.pool = BlockPool()
        workers = proc.threads[1:] or proc.threads[:1]
        self.threads = {"main": proc.threads[:1], "workers": workers, "all": proc.threads}[self.THREADS]
        self.catalogue = stacks
        self.stacks: list[int] = []
        self.setup()

    def site(self, index: int, realloc: bool = False) -> int:
        return self.catalogue.site(self.proc.image, self.kind, index, realloc=realloc, worker=self.THREADS != "main")

    def setup(self) -> None:
        """Derive sizes from ``self.budget`` and ``self.params``; pick stacks."""

    def step(self) -> None:
        raise NotImplementedError

    def live_count(self) -> int:
        return len(self.pool)

    def shutdown(self) -> None:
        """Free every block still held (an orderly exit)."""
        proc, heap, pool, rng = self.proc, self.heap, self.pool, self.rng
        while len(pool):
            a, s = pool.take_last()
            proc.free(heap, proc.thread(self.threads), a, s, near=True)

    def describe(self) -> dict[str, Any]:
        """Truth-document summary: kind, heap, stacks, the sizes chosen."""
        return {"kind": self.kind, "heap": f"0x{self.heap.handle:x}", "stacks": sorted(set(self.stacks))}

    # shared step shapes
    def _alloc(self, size: int, stack: int, near: bool = False) -> None:
        tid = self.proc.thread(self.threads)
        self.pool.add(self.proc.alloc(self.heap, tid, size, stack, near), size)

    def _free_random(self, near: bool = False) -> None:
        a, s = self.pool.take_random(self.rng)
        self.proc.free(self.heap, self.proc.thread(self.threads), a, s, near)


class LfhChurn(Workload):
    kind = "lfh-churn"
    description = "many small short-lived blocks (LFH sizes) around a small, level live set"
    PARAMS = {"live": None}

    def setup(self) -> None:
        self.live = self.params["live"] or _clamp(self.budget / 40, 32, 512)
        self.stacks = [self.site(i) for i in range(3)]
        self.sizes = [struct_size(self.rng) for _ in range(3)]

    def step(self) -> None:
        n = len(self.pool)
        rng = self.rng
        # allocate more often below the target, free more often above it
        if n == 0 or rng.random() < 0.5 + 0.5 * (self.live - n) / self.live:
            k = int(rng.random() * 3)
            size = self.sizes[k] if rng.random() < 0.8 else SMALL.sample(rng)
            self._alloc(size, self.stacks[k])
        else:
            self._free_random()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "live_blocks": self.live}


class TempChurn(Workload):
    kind = "temp-churn"
    description = "temporaries: allocated and freed by the same thread within microseconds"
    THREADS = "all"

    def setup(self) -> None:
        self.stacks = [self.site(i) for i in range(2)]

    def step(self) -> None:
        proc, heap, rng = self.proc, self.heap, self.rng
        tid = proc.thread(self.threads)
        depth = 1 if rng.random() < 0.7 else 2 + int(rng.random() * 2)
        held = []
        for d in range(depth):
            size = TINY.sample(rng)
            held.append((proc.alloc(heap, tid, size, self.stacks[d & 1], near=d > 0), size))
        for a, s in reversed(held):
            proc.free(heap, tid, a, s, near=True)


class Cache(Workload):
    kind = "cache"
    description = "a cache bounded in bytes: fills on misses, then evicts entries to make room (plateau)"
    PARAMS = {"capacity": None, "size": "medium", "hit_rate": 0.5}
    THREADS = "all"

    def setup(self) -> None:
        model = self.params["size"]
        if model not in SIZE_MODELS:
            raise UsageError(f"unknown size model '{model}'; known: {', '.join(SIZE_MODELS)}")
        self.model = SIZE_MODELS[model]
        #: capacity in entries of average size; the bound itself is in bytes,
        #: as in real caches, so the live bytes stay level once it is full
        self.capacity = self.params["capacity"] or _clamp(self.budget * 0.12, 16, 50_000)
        self.limit = int(self.capacity * self.model.mean)
        self.bytes = 0
        self.full = False
        self.stacks = [self.site(i) for i in range(2)]

    def step(self) -> None:
        rng = self.rng
        if self.full and rng.random() < self.params["hit_rate"]:
            return
        size = self.model.sample(rng)
        evicted = False
        while len(self.pool) and self.bytes + size > self.limit:
            self.full = True
            a, s = self.pool.take_random(rng)
            self.bytes -= s
            self.proc.free(self.heap, self.proc.thread(self.threads), a, s, near=evicted)
            evicted = True
        self._alloc(size, self.stacks[int(rng.random() * 2)], near=evicted)
        self.bytes += size

    def shutdown(self) -> None:
        super().shutdown()
        self.bytes = 0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "capacity_entries": self.capacity, "capacity_bytes": self.limit}


class Sawtooth(Workload):
    kind = "sawtooth"
    description = "batches: allocate a batch, free all of it, back to the base level"
    PARAMS = {"batch": None}
    THREADS = "main"

    def setup(self) -> None:
        self.batch = self.params["batch"] or _clamp(self.budget / 16, 8, 20_000)
        self.target = self.batch
        self.filling = True
        self.stacks = [self.site(i) for i in range(2)]
        self.sizes = [struct_size(self.rng) for _ in range(2)]

    def step(self) -> None:
        rng = self.rng
        if self.filling:
            k = int(rng.random() * 2)
            self._alloc(self.sizes[k] if rng.random() < 0.7 else SMALL.sample(rng), self.stacks[k])
            if len(self.pool) >= self.target:
                self.filling = False
        else:
            a, s = self.pool.take_last()
            self.proc.free(self.heap, self.threads[0], a, s)
            if not len(self.pool):
                self.filling = True
                self.target = max(1, int(self.batch * (0.9 + 0.2 * rng.random())))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "batch": self.batch}


class Warmup(Workload):
    kind = "warmup"
    description = "a ramp during the first part of the process's life, then a level steady state"
    PARAMS = {"target": None, "ramp": 0.3}

    def setup(self) -> None:
        self.target = self.params["target"] or _clamp(self.budget * 0.1, 16, 50_000)
        self.ramp = float(self.params["ramp"])
        self.stacks = [self.site(i) for i in range(2)]
        self.sizes = [struct_size(self.rng) for _ in range(2)]

    def step(self) -> None:
        rng = self.rng
        f = self.proc.frac()
        goal = self.target if f >= self.ramp else max(1.0, self.target * f / self.ramp)
        n = len(self.pool)
        if n < goal or rng.random() < 0.5 + 0.5 * (goal - n) / goal:
            k = int(rng.random() * 2)
            self._alloc(self.sizes[k] if rng.random() < 0.6 else SMALL.sample(rng), self.stacks[k])
        else:
            self._free_random()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "target_blocks": self.target, "ramp": self.ramp}


class GrowBuffer(Workload):
    kind = "grow-buffer"
    description = "buffers grown by realloc (moving and in place), then freed"
    PARAMS = {"active": 4, "max_moves": 7}

    def setup(self) -> None:
        n = int(self.params["active"])
        self.slots: list[list[int] | None] = [None] * n
        self.slot_threads = [self.threads[i % len(self.threads)] for i in range(n)]
        self.stacks = [self.site(i) for i in range(2)]
        self.realloc_stacks = [self.site(i, realloc=True) for i in range(2)]

    def step(self) -> None:
        proc, rng = self.proc, self.rng
        i = int(rng.random() * len(self.slots))
        slot, tid = self.slots[i], self.slot_threads[i]
        if slot is None:
            k = int(rng.random() * 2)
            size = 64 + (int(rng.random() * 28) << 4)
            self.slots[i] = [proc.alloc(self.heap, tid, size, self.stacks[k]), size, 2 + int(rng.random() * (self.params["max_moves"] - 1)), k]
        elif slot[2] > 0:
            addr, size, _, k = slot
            r = rng.random()
            if r < 0.25:
                new_size = size + 8 + int(rng.random() * 56)  # a small append, often in place
            elif r < 0.4:
                new_size = max(16, size - size // 8)  # shrink to fit: in place
            else:
                new_size = (int(size * (1.5 + 0.5 * rng.random())) + 15) & ~15
            slot[0] = proc.realloc(self.heap, tid, addr, size, new_size, self.realloc_stacks[k])
            slot[1] = new_size
            slot[2] -= 1
        else:
            proc.free(self.heap, tid, slot[0], slot[1])
            self.slots[i] = None

    def live_count(self) -> int:
        return sum(1 for s in self.slots if s is not None)

    def shutdown(self) -> None:
        for i, slot in enumerate(self.slots):
            if slot is not None:
                self.proc.free(self.heap, self.slot_threads[i], slot[0], slot[1], near=True)
                self.slots[i] = None


class SlowPathBurst(Workload):
    kind = "slowpath-burst"
    description = "every few seconds a short burst of slow-path reallocs of large staging buffers"
    PARAMS = {"period": 5 * SECOND, "burst": 12, "buffers": 2}
    THREADS = "main"

    def setup(self) -> None:
        self.buffers: list[list[int]] = []
        self.stacks = [self.site(0)]
        self.realloc_stacks = [self.site(0, realloc=True)]
        self.bursts = 0
        period = int(self.params["period"])
        self.proc.at(self.proc.start + int(self.rng.random() * period), self._burst)

    def step(self) -> None:  # driven by the schedule only
        pass

    def _burst(self) -> None:
        proc, rng = self.proc, self.rng
        self.bursts += 1
        t = proc.t
        for _ in range(max(1, int(self.params["burst"] * (0.75 + 0.5 * rng.random())))):
            t += 200_000 + int(rng.random() * 2_800_000)
            proc.at(t, self._one)
        proc.at(t + int(self.params["period"] * (0.7 + 0.6 * rng.random())), self._burst)

    def _one(self) -> None:
        proc, rng, tid = self.proc, self.rng, self.threads[0]
        if len(self.buffers) < self.params["buffers"]:
            size = LARGE.sample(rng)
            self.buffers.append([proc.alloc(self.heap, tid, size, self.stacks[0]), size])
            return
        buf = self.buffers[int(rng.random() * len(self.buffers))]
        # resized to fit the next upload: independent sizes, so no drift
        new_size = LARGE.sample(rng)
        buf[0] = proc.realloc(self.heap, tid, buf[0], buf[1], new_size, self.realloc_stacks[0], _SLOW)
        buf[1] = new_size

    def live_count(self) -> int:
        return len(self.buffers)

    def shutdown(self) -> None:
        while self.buffers:
            a, s = self.buffers.pop()
            self.proc.free(self.heap, self.threads[0], a, s, near=True)


class ScratchHeap(Workload):
    kind = "scratch-heap"
    description = "jobs that create a private heap, use it, free everything and destroy it (handles reused)"
    PARAMS = {"ops": None}

    def setup(self) -> None:
        self.ops = self.params["ops"] or _clamp(self.budget / 20, 20, 400)
        self.job: HeapSim | None = None
        self.left = 0
        self.tid = self.threads[0]
        self.jobs = 0
        self.stacks = [self.site(i) for i in range(2)]

    def step(self) -> None:
        proc, rng = self.proc, self.rng
        job = self.job
        if job is None:
            self.tid = proc.thread(self.threads)
            job = self.job = HeapSim(f"scratch#{self.jobs}", proc.new_handle(reuse=0.6), 0x3, True, rng)
            self.jobs += 1
            self.left = max(4, int(self.ops * (0.5 + rng.random())))
            proc.create_heap(job, self.tid, near=False)
        elif self.left > 0:
            self.left -= 1
            if not len(self.pool) or rng.random() < 0.65:
                size = SMALL.sample(rng)
                self.pool.add(proc.alloc(job, self.tid, size, self.stacks[int(rng.random() * 2)]), size)
            else:
                a, s = self.pool.take_random(rng)
                proc.free(job, self.tid, a, s)
        elif len(self.pool):
            a, s = self.pool.take_last()
            proc.free(job, self.tid, a, s)
        else:
            self._end_job(near=False)

    def _end_job(self, near: bool) -> None:
        assert self.job is not None
        self.proc.destroy_heap(self.job, self.tid, near=near)
        self.proc.handle_freed(self.job.handle)
        self.job = None

    def live_count(self) -> int:
        return len(self.pool) + (1 if self.job is not None else 0)

    def shutdown(self) -> None:
        if self.job is None:
            return
        while len(self.pool):
            a, s = self.pool.take_last()
            self.proc.free(self.job, self.tid, a, s, near=True)
        self._end_job(near=True)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "heap": "scratch (created per job)", "stacks": sorted(set(self.stacks)), "jobs": self.jobs}


class Resident(Workload):
    kind = "resident"
    description = "an in-memory index: grows to a large live set, then replaces entries"
    PARAMS = {"live_blocks": None}
    THREADS = "all"

    def setup(self) -> None:
        self.live = self.params["live_blocks"] or _clamp(self.budget * 0.4, 16, 10_000_000)
        self.stacks = [self.site(i) for i in range(2)]
        self.sizes = [struct_size(self.rng), struct_size(self.rng)]

    def step(self) -> None:
        rng = self.rng
        k = 0 if rng.random() < 0.9 else 1
        size = self.sizes[k] if rng.random() < 0.5 else SMALL.sample(rng)
        if len(self.pool) < self.live:
            self._alloc(size, self.stacks[k])
        else:
            self._free_random()
            self._alloc(size, self.stacks[k], near=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "live_blocks": self.live}


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


MAX_TRUTH_ADDRESSES = 10_000

#: workload name -> class: the one table the spec's ``kind`` is looked up in
WORKLOADS: dict[str, type[Workload]] = {
    cls.kind: cls
    for cls in (LfhChurn, TempChurn, Cache, Sawtooth, Warmup, GrowBuffer, SlowPathBurst, ScratchHeap, Resident, Leak)
}
