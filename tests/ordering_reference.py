"""The ordering stage as first written (a heapq of every record, the pairer
called for every released record): the reference the faster
:func:`heaplint.engine.replay.ordered` must match record for record."""

from __future__ import annotations

import heapq

from heaplint.engine.events import Kind
from heaplint.engine.pairing import ReallocPairer
from heaplint.engine.replay import ReplayCounters, ReplayOptions


def reference_ordered(events, options: ReplayOptions, counters: ReplayCounters, late: list):
    pairer = ReallocPairer(options.pair_window_ns, counters) if options.realloc_mode == "auto" else None
    hold = max(options.reorder_window_ns, options.pair_window_ns if pairer is not None else 0)
    heap: list = []
    newest = released = None
    out: list = []

    def release(item) -> None:
        _, seq, ev = item
        if pairer is None:
            out.append(ev)
            return
        keep = pairer.release(ev, seq)
        out.extend(pairer.flushed)
        pairer.flushed.clear()
        if keep:
            out.append(ev)

    for seq, ev in enumerate(events):
        counters.events_in += 1
        if released is not None and ev.time < released:
            counters.out_of_order += 1
            late.append((ev, released))
            out.append(ev)
            continue
        if newest is None or ev.time > newest:
            newest = ev.time
        elif ev.time < newest:
            counters.reordered += 1
        heapq.heappush(heap, (ev.time, seq, ev))
        if pairer is not None and ev.kind == int(Kind.REALLOC):
            pairer.buffered(ev, seq)
        while heap and heap[0][0] < newest - hold:
            item = heapq.heappop(heap)
            released = item[0]
            release(item)
        counters.max_buffered = max(counters.max_buffered, len(heap))
    while heap:
        release(heapq.heappop(heap))
    if pairer is not None:
        out.extend(pairer.finish())
    return out
