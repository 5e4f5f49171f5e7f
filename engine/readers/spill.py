"""A bounded-memory sorter: sorted runs spilled to temporary files, then merged.

Used by readers whose input is not in time order (WPA lifetime rows).  At most
``chunk`` items are held in memory; each full chunk is sorted and written to an
anonymous temporary file (deleted when closed) as pickled batches, and
:meth:`ExternalSorter.sorted` merges the runs with ``heapq.merge``.  Items must
be tuples of plain values (the readers store ``HeapEvent`` fields as a tuple).
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from typing import IO, Any, Iterator

#: items per pickled batch inside a run file (amortises pickling overhead)
BATCH = 4096


class ExternalSorter:
    """Collect items with :meth:`add`, then iterate them in order with :meth:`sorted`."""

    def __init__(self, chunk: int) -> None:
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.chunk = chunk
        self._buf: list[tuple] = []
        self._runs: list[IO[bytes]] = []
        #: the most items ever held in memory at once (for tests and notes)
        self.max_buffered = 0
        self.items = 0

    @property
    def runs(self) -> int:
        """How many sorted runs went to temporary files."""
        return len(self._runs)

    def add(self, item: tuple) -> None:
        """Add one item; spills a sorted run when the chunk is full."""
        buf = self._buf
        buf.append(item)
        self.items += 1
        if len(buf) > self.max_buffered:
            self.max_buffered = len(buf)
        if len(buf) >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        self._buf.sort()
        run = tempfile.TemporaryFile(prefix="heaplint-sort-")
        buf = self._buf
        for i in range(0, len(buf), BATCH):
            pickle.dump(buf[i : i + BATCH], run, protocol=pickle.HIGHEST_PROTOCOL)
        run.seek(0)
        self._runs.append(run)
        self._buf = []

    @staticmethod
    def _read(run: IO[bytes]) -> Iterator[Any]:
        try:
            while True:
                try:
                    batch = pickle.load(run)
                except EOFError:
                    return
                yield from batch
        finally:
            run.close()

    def sorted(self) -> Iterator[tuple]:
        """Every added item in ascending order; temporary files are closed
        (and so deleted) as their runs are exhausted."""
        self._buf.sort()
        streams: list[Iterator[Any]] = [self._read(run) for run in self._runs]
        streams.append(iter(self._buf))
        self._runs = []
        try:
            yield from heapq.merge(*streams)
        finally:
            for s in streams:
                close = getattr(s, "close", None)
                if close is not None:
                    close()
            self._buf = []

    def close(self) -> None:
        """Drop everything (closing, and so deleting, the run files)."""
        for run in self._runs:
            run.close()
        self._runs = []
        self._buf = []
