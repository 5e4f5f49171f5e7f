"""Random trace generators for the state and replay property tests.

* chaotic traces: anything goes (anomalies, reuse of addresses, handles and
  pids) in a tiny address space;
* the paired shape of a trace: every moving ReAlloc with its inner
  Alloc(new)/Free(old) in one of the six orders;
* well-behaved dense traces: a correct program on several heaps and threads
  that reuses addresses at once, plus a side thread's noise.
"""

from __future__ import annotations

from typing import Iterator

from hypothesis import strategies as st
from state_reference import (
    ABSURD,
    ALLOC,
    FREE,
    REALLOC,
    Model,
    alloc,
    create,
    destroy,
    end,
    free,
    realloc,
    start,
)

from heaplint.engine.events import HeapEvent


# ---------------------------------------------------------------------------
# chaotic traces: anything goes, in a tiny address space
# ---------------------------------------------------------------------------
PIDS = (1, 2)
HEAPS = (0xA0, 0xB0, 0xC0)
ADDRS = tuple(0x1000 + 16 * k for k in range(8))
SIZES = (0, 1, 8, 16, 24, 40)


def _weighted(*pairs):
    """``sampled_from`` with integer weights (hypothesis shrinks to the first)."""
    return st.sampled_from([value for value, weight in pairs for _ in range(weight)])


_addr = _weighted(*((a, 3) for a in ADDRS), (0, 1))
_size = _weighted(*((s, 4) for s in SIZES), (-1, 1), (ABSURD, 1))
_source = _weighted((3, 6), (2, 6), (0, 1), (5, 1), (6, 1))
_pid = _weighted((1, 4), (2, 1))
_heap = _weighted((0xA0, 4), (0xB0, 2), (0xC0, 1))
_tid = st.sampled_from((1, 2))

# an op is a tuple whose first item names it; times are given when built
op_alloc = st.tuples(st.just("alloc"), _pid, _tid, _heap, _addr, _size, _source)
op_free = st.tuples(st.just("free"), _pid, _tid, _heap, _addr, _source)
op_realloc = st.tuples(
    st.just("realloc"), _pid, _tid, _heap, _addr, _addr, _size, st.one_of(st.none(), st.sampled_from(SIZES)), _source
)
op_create = st.tuples(st.just("create"), _pid, _heap, st.sampled_from((0, 2, 0x40001)))
op_destroy = st.tuples(st.just("destroy"), _pid, _heap)
op_start = st.tuples(st.just("start"), _pid)
op_end = st.tuples(st.just("end"), _pid)

# ops that pick a live (or just freed) block when the trace is built, so frees,
# double frees and reallocs of known blocks are common: (name, pid, tid, heap, k,
# exact old size?)
op_free_live = st.tuples(st.just("free_live"), _pid, _tid, _heap, st.integers(0, 7), _source)
op_refree = st.tuples(st.just("refree"), _pid, _tid, _heap, st.integers(0, 7), _source)
op_realloc_live = st.tuples(
    st.just("realloc_live"), _pid, _tid, _heap, st.integers(0, 7), _addr, _size, st.booleans(), _source
)

chaotic_op = st.one_of(
    *([op_alloc] * 8),
    *([op_free] * 2),
    *([op_free_live] * 4),
    op_refree,
    *([op_realloc] * 2),
    *([op_realloc_live] * 4),
    *([op_create] * 2),
    op_destroy,
    op_start,
    op_end,
)
chaotic_ops = st.lists(chaotic_op, min_size=20, max_size=100)


def resolve(op: tuple, shadow: Model) -> tuple:
    """Turn a live-picking op into a plain one, using the model's state now."""
    name = op[0]
    if name not in ("free_live", "refree", "realloc_live"):
        return op
    pid, tid, handle, k = op[1:5]
    proc = shadow.procs.get(pid)
    heap = proc.heaps.get(handle) if proc is not None else None
    if name == "refree":
        freed = sorted(a for a, h in proc.freed.items() if h == handle) if proc is not None else []
        address = freed[k % len(freed)] if freed else ADDRS[k % len(ADDRS)]
        return ("free", pid, tid, handle, address, op[5])
    live = sorted(heap.blocks) if heap is not None else []
    address = live[k % len(live)] if live else ADDRS[k % len(ADDRS)]
    if name == "free_live":
        return ("free", pid, tid, handle, address, op[5])
    new, size, exact, source = op[5:]
    old_size = heap.blocks.get(address) if exact and heap is not None else None
    if not exact:
        old_size = SIZES[k % len(SIZES)]
    return ("realloc", pid, tid, handle, new if new != ADDRS[0] else address, address, size, old_size, source)


def build(ops: list[tuple], gap: int = 1_000) -> list[HeapEvent]:
    """The events ``ops`` stand for, ``gap`` ns apart, indexed in input order."""
    shadow = Model()
    out = []
    for i, op in enumerate(ops):
        ev = op_event(resolve(op, shadow), (i + 1) * gap)._replace(index=i)
        shadow.apply(ev)
        out.append(ev)
    return out


def op_event(op: tuple, t: int) -> HeapEvent:
    """The event a plain op stands for, at time ``t``."""
    name = op[0]
    if name == "alloc":
        _, pid, tid, heap, address, size, source = op
        return alloc(t, pid, heap, address, size, tid, source)
    if name == "free":
        _, pid, tid, heap, address, source = op
        return free(t, pid, heap, address, tid, source)
    if name == "realloc":
        _, pid, tid, heap, new, old, size, old_size, source = op
        return realloc(t, pid, heap, new, old, size, old_size, tid, source)
    if name == "create":
        return create(t, op[1], op[2], op[3])
    if name == "destroy":
        return destroy(t, op[1], op[2])
    if name == "start":
        return start(t, op[1])
    return end(t, op[1])


def is_move(ev: HeapEvent) -> bool:
    return ev.kind == REALLOC and ev.address != ev.old_address and ev.address != 0 and ev.old_address != 0


# the six orders of (Alloc(new), Free(old), ReAlloc) around a move
ORDERS = ("AFR", "ARF", "FAR", "FRA", "RAF", "RFA")


def paired_shape(events: list[HeapEvent], shapes: Iterator[tuple[str, bool]], step: int = 1_000) -> list[HeapEvent]:
    """Rewrite ``events`` (time ordered, at least ``3 * step`` apart) into the
    paired shape: every moving ReAlloc gets its inner Alloc(new) and Free(old)
    on the same pid/tid/heap, in the order drawn from ``shapes`` (order, and
    whether all three share one timestamp or sit ``step`` ns apart)."""
    out: list[HeapEvent] = []
    for ev in events:
        if not is_move(ev):
            out.append(ev)
            continue
        order, same_time = next(shapes)
        parts = {
            "A": HeapEvent(ALLOC, 0, ev.pid, ev.tid, ev.heap, ev.address, ev.size, source=ev.source, stack=ev.stack),
            "F": HeapEvent(FREE, 0, ev.pid, ev.tid, ev.heap, ev.old_address, source=ev.source),
            "R": ev,
        }
        r_at = order.index("R")
        for i, letter in enumerate(order):
            t = ev.time if same_time else ev.time + (i - r_at) * step
            out.append(parts[letter]._replace(time=t))
    return out


def shape_stream(draws: list[tuple[int, bool]]) -> Iterator[tuple[str, bool]]:
    """Cycle through drawn (order index, same time) pairs forever."""
    i = 0
    while True:
        if not draws:
            yield ORDERS[i % 6], False
        else:
            k, same = draws[i % len(draws)]
            yield ORDERS[k % 6], same
        i += 1


shape_draws = st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=8)


# ---------------------------------------------------------------------------
# well-behaved dense traces: a program that never misuses its heaps
# ---------------------------------------------------------------------------
SLOT = 0x40
GOOD_HEAPS = ((1, 0xA0), (1, 0xB0), (2, 0xA0))
# 6 address slots per heap; the heaps of one process never share an address
GOOD_SLOTS = {h: tuple(0x2000 + 0x1000 * i + SLOT * k for k in range(6)) for i, h in enumerate(GOOD_HEAPS)}


def well_behaved(choices: list[tuple[int, int, int, int]], gap: int = 2_000) -> list[HeapEvent]:
    """Interpret ``choices`` as a correct program on 3 heaps and 2 threads with
    6 address slots per heap, so addresses are reused at once (often by the
    same thread, microseconds apart): allocs, frees, in-place and moving
    reallocs.  The result has no anomaly in the standalone reading."""
    live: dict[tuple[int, int], dict[int, int]] = {h: {} for h in GOOD_HEAPS}
    out: list[HeapEvent] = []
    t = 0
    for op, which, pick, size_pick in choices:
        t += gap
        pid, heap = GOOD_HEAPS[which % len(GOOD_HEAPS)]
        tid = 1 + (pick & 1)
        blocks = live[(pid, heap)]
        free_slots = [a for a in GOOD_SLOTS[(pid, heap)] if a not in blocks]
        size = 1 + size_pick % SLOT
        kind = op % 4
        if kind == 0 or not blocks:
            if not free_slots:
                continue
            address = free_slots[pick % len(free_slots)]
            blocks[address] = size
            out.append(alloc(t, pid, heap, address, size, tid))
        elif kind == 1:
            address = sorted(blocks)[pick % len(blocks)]
            del blocks[address]
            out.append(free(t, pid, heap, address, tid))
        else:
            old = sorted(blocks)[pick % len(blocks)]
            old_size = blocks.pop(old)
            if kind == 2 or not free_slots:
                new = old  # in place
            else:
                # a moving realloc, often into a slot freed moments ago
                new = free_slots[(pick >> 1) % len(free_slots)]
            blocks[new] = size
            out.append(realloc(t, pid, heap, new, old, size, old_size, tid))
    return out


well_behaved_choices = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 5), st.integers(0, 63), st.integers(0, 255)), min_size=10, max_size=80
)


def with_noise(events: list[HeapEvent], times: list[int], pid: int = 1, heap: int = 0xA0, tid: int = 9) -> list[HeapEvent]:
    """Merge in a correct side program on another thread (allocs and frees of
    its own addresses at ``times``, +1 ns so no time is shared), so that its
    records fall between the records of the main program's realloc runs."""
    noise = []
    for j, t in enumerate(sorted(set(times))):
        address = 0x9000 + SLOT * (j // 2)
        noise.append(alloc(t + 1, pid, heap, address, 8, tid) if j % 2 == 0 else free(t + 1, pid, heap, address, tid))
    return sorted(events + noise, key=lambda e: e.time)


noise_times = st.lists(st.integers(0, 200_000), max_size=30)
