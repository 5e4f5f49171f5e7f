"""The .etl reader's process filter (``ReaderOptions.pids``), used by
``--jobs`` partitions: this partition's events, and the other processes'
records dropped or, with ``pid_stubs``, handed over as runs of their times
(:data:`heaplint.engine.partition_order.ForeignRun`).

Every partition still walks every record, in the same order as a whole
reading: the merge orders all records by time, stack records attach to the
event before them, stack ids are numbered in the order stacks are first
seen, and process, image and stack-key records change the reader's tables.
What a partition saves is building the other processes' events: with the C
accelerator, a heap record of a process already known to be another
partition's becomes a *light* event (kind, time, pid and tid; every other
field a shared zero or None), which is all that the merge, the stack
records and the stack-key queue read of it.

The filter runs on each merge round's records once they are merged
(:func:`split_round`, or ``Decoder.split`` in C, which does the same): a run
of other processes' records ends at this partition's next event or at the
end of the round, never later, because the next round decodes more buffers,
which changes the reader's tables (stacks, processes, notes), and the replay
must not see them change before it has been given the records before them
(see :func:`heaplint.engine.readers.base.filter_pids`).  Which partition a
process belongs to is asked once per process, ``pid in pids``, in the order
the records come out, as the generic filter asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Container, Iterator

if TYPE_CHECKING:
    from heaplint.engine.readers.etl import EtlReader


def split_round(items: list, ours: dict, pids: Container[int], stubs: bool) -> list:
    """This partition's events of ``items`` (one merge round, in order) and,
    with ``stubs``, each run of the others' records between them as the list
    of their times.  ``ours`` maps each pid asked about so far to the answer."""
    out: list = []
    append = out.append
    run = None
    for ev in items:
        pid = ev[2]
        mine = ours.get(pid)
        if mine is None:
            mine = ours[pid] = pid in pids
        if mine:
            if run is not None:
                append(run)
                run = None
            append(ev)
        elif stubs:
            if run is None:
                run = [ev[1]]
            else:
                run.append(ev[1])
    if run is not None:
        append(run)
    return out


def partition_rounds(reader: EtlReader, rounds: Iterator[list]) -> Iterator[list]:
    """``rounds`` (the reader's merge rounds) filtered by ``reader.options.pids``."""
    pids = reader.options.pids
    assert pids is not None
    stubs = reader.options.pid_stubs
    split: Callable[[list], list] | None = None
    for items in rounds:
        if split is None:  # the decoder exists once the first round is read
            native = reader._native
            if native is not None:
                split = lambda items, split_c=native.split: split_c(items, pids, stubs)  # noqa: E731
            else:
                split = lambda items, ours=reader._ours: split_round(items, ours, pids, stubs)  # noqa: E731
        yield split(items)
