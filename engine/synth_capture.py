"""Capture effects for ``heaplint synth``: what ETW does to a perfect stream.

Both stages work on the generator's internal event tuples (time first, then
kind, pid, tid, ...) and stream: ``drop_lost`` holds nothing, and
``per_cpu_disorder`` holds one flush period of events.
"""

from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from heaplint.engine.events import Kind
from heaplint.engine.synth_process import EventTuple

_DROPPABLE = (int(Kind.ALLOC), int(Kind.REALLOC), int(Kind.FREE))
#: simulated CPUs (each thread runs on one)
CPUS = 4


def drop_lost(
    events: Iterable[EventTuple], bursts: list[list[int]], drops: dict[int, list[int]]
) -> Iterator[EventTuple]:
    """Lose events as a lost ETW buffer does: from each burst's start time on,
    the next ``remaining`` alloc/realloc/free records of its process vanish.
    ``drops[pid]`` collects [count, first time, last time]."""
    pending = bursts  # sorted by time
    active: list[list[int]] = []
    for ev in events:
        t = ev[0]
        while pending and pending[0][0] <= t:
            active.append(pending.pop(0))
        if active and ev[1] in _DROPPABLE:
            pid = ev[2]
            for b in active:
                if b[1] == pid:
                    b[2] -= 1
                    if not b[2]:
                        active.remove(b)
                    d = drops.get(pid)
                    if d is None:
                        drops[pid] = [1, t, t]
                    else:
                        d[0] += 1
                        d[2] = t
                    break
            else:
                yield ev
                continue
            continue
        yield ev


def per_cpu_disorder(events: Iterable[EventTuple], period: int, phase: list[int]) -> Iterator[EventTuple]:
    """Reorder as per-CPU ETW buffers do: each thread's CPU buffers its events
    and flushes every ``period`` ns (CPUs out of phase), so the file is in
    flush order.  A thread's own events keep their order; no event is more
    than ``period`` away from its place."""
    held: list[tuple[int, int, int, EventTuple]] = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    for ev in events:
        t = ev[0]
        while held and held[0][0] < t:
            yield pop(held)[3]
        cpu = (ev[3] >> 2) % CPUS
        p = phase[cpu]
        flush = ((t - p) // period + 1) * period + p
        push(held, (flush, cpu, seq, ev))
        seq += 1
    while held:
        yield pop(held)[3]
