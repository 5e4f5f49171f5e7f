"""Named workloads for ``heaplint synth``: the building blocks of a process.

Each workload owns the blocks it allocates, allocates from a few named call
sites (stacks), and takes one *step* at a time when its process picks it (by
weight).  ``budget`` is roughly how many steps it will get, so that shapes
such as "the cache fills in the first fifth" hold at any trace size; explicit
parameters override the derived sizes (the ``steady`` preset fixes them so
that its live set does not depend on the trace length).

Healthy workloads never free what they did not allocate, never free twice,
and their live bytes plateau, return to a base, or stay level.  The realloc
workloads are in :mod:`heaplint.engine.synth_realloc`, the leak (a defect) in
:mod:`heaplint.engine.synth_defects`; the registry is
:data:`heaplint.engine.synth.WORKLOADS`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from heaplint.engine.errors import UsageError
from heaplint.engine.synth_heap import SIZE_MODELS, SMALL, TINY, BlockPool, struct_size
from heaplint.engine.synth_process import HeapSim, ProcessSim
from heaplint.engine.synth_stacks import StackCatalogue

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

    def __init__(
        self, proc: ProcessSim, heap: HeapSim, budget: int, params: dict[str, Any], stacks: StackCatalogue
    ) -> None:
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
        proc, heap, pool = self.proc, self.heap, self.pool
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
        return {
            "kind": self.kind,
            "heap": "scratch (created per job)",
            "stacks": sorted(set(self.stacks)),
            "jobs": self.jobs,
        }


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
