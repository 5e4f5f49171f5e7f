"""Realloc workloads for ``heaplint synth``: buffers grown by realloc and
slow-path bursts of large staging buffers.

Both go through :meth:`ProcessSim.realloc`, which resizes in place when the
block still fits its slot and otherwise moves it in the process's realloc
shape (a ReAlloc alone, or with its inner Alloc/Free).
"""

from __future__ import annotations

from typing import Any

from heaplint.engine.events import Source
from heaplint.engine.synth_heap import LARGE
from heaplint.engine.synth_workloads import SECOND, Workload

_SLOW = int(Source.SLOWPATH)


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
            self.slots[i] = [
                proc.alloc(self.heap, tid, size, self.stacks[k]),
                size,
                2 + int(rng.random() * (self.params["max_moves"] - 1)),
                k,
            ]
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
        # the staging memory is released after the burst, so no buffer
        # collects a long history of moves (that would be a growth chain)
        proc.at(t + 5_000_000 + int(rng.random() * 20_000_000), self.shutdown)
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

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "burst_reallocs": self.params["burst"], "period_ns": self.params["period"]}
