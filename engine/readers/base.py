"""The reader interface, the format registry's entry type, and input opening.

A reader turns one trace into a stream of :class:`~heaplint.engine.events.HeapEvent`
values in *roughly* time order (the replay restores order within its reorder
window).  Readers never load a whole trace into memory.
"""

from __future__ import annotations

import gzip
import io
import sys
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Container, Iterable, Iterator

from heaplint.engine.errors import TraceError
from heaplint.engine.events import HeapEvent, StackTable, TraceInfo

#: how many bytes of (decompressed) content sniffers get to see
SNIFF_BYTES = 64 * 1024

#: what a broken gzip stream or zip member raises while it is being read
#: (a zip member's CRC is checked at its end: ``BadZipFile``)
COMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


class CompressedDataError(TraceError):
    """A compressed trace that cannot be read to its end.  Where a reader
    meets it depends on how far it reads ahead of what it decodes."""


def value_error_text(err: BaseException) -> str:
    """The message of a ValueError from converting a field, for the user.
    Python's own text for a decimal number past its digit limit names a
    ``sys`` function to call, which a trace's reader cannot do."""
    text = str(err)
    if "integer string conversion" in text:
        return "a number of more than 4300 digits"
    return text


def compressed_data_error(path: str, err: BaseException, line: int | None = None) -> TraceError:
    """The located error for a compressed trace that cannot be read to its end."""
    return CompressedDataError(
        f"truncated or corrupt compressed data ({err or type(err).__name__}); "
        "the trace could not be read to its end",
        path=path,
        line=line,
    )


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    """Options every reader honours."""

    #: skip malformed records, count them in ``TraceInfo.bad_records``, instead
    #: of raising a located :class:`TraceError`
    skip_bad_records: bool = False
    #: yield only the events of these processes (a frozenset, or any container
    #: asked ``pid in pids`` once per event in input order, such as
    #: :class:`heaplint.engine.partition.PidPartition`); None = every process.
    #: Trace facts, stacks and bad-record counts still cover the whole trace.
    pids: Container[int] | None = None
    #: with ``pids``: yield the other processes' events as their times instead
    #: of dropping them: each run of consecutive ones as one list of times
    #: (:data:`heaplint.engine.partition_order.ForeignRun`), so that a replay can
    #: order one partition exactly as the whole trace (see
    #: :mod:`heaplint.engine.partition`).  A reader may then take a record's
    #: time and pid from its first bytes on trust; the reader of the partition
    #: that owns the record checks it (``claims_exact``)
    pid_stubs: bool = False


#: the kind of a stub event (no :class:`~heaplint.engine.events.Kind` has it)
STUB_KIND = 0
_new = tuple.__new__


def stub_event(time: int, pid: int, index: int, line: int) -> HeapEvent:
    """A stand-in for another partition's event: where it is in time and input."""
    return _new(HeapEvent, (STUB_KIND, time, pid, 0, 0, 0, 0, 0, None, 0, None, 0, None, index, line))


def filter_pids(events: Iterable[HeapEvent], pids: Container[int], stubs: bool) -> Iterator[HeapEvent | list[int]]:
    """The events of ``pids``, others dropped or (``stubs``) each as a
    one-element list of its time: the generic form of ``ReaderOptions.pids``
    for readers that do not filter themselves (``TraceReader.filters_pids``).
    Decoding still costs in full.  (One list per record, not per run: the
    reader must not read ahead of what the replay has been given.)"""
    ours: dict[int, bool] = {}  # ``pid in pids`` asked once per process
    for ev in events:
        mine = ours.get(ev.pid)
        if mine is None:
            mine = ours[ev.pid] = ev.pid in pids
        if mine:
            yield ev
        elif stubs:
            yield [ev.time]


class TraceReader:
    """Base class of every trace reader.

    Subclasses set ``name`` and ``description``, implement :meth:`sniff` and
    :meth:`events`.  ``info`` and ``stacks`` are filled while events are read
    and are final once :meth:`events` is exhausted.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when :meth:`events` applies ``options.pids`` itself (cheaply, before
    #: decoding); otherwise :func:`~heaplint.engine.readers.guarded_events` does
    filters_pids: ClassVar[bool] = False
    #: True when ``HeapEvent.index`` counts the events in the order
    #: :meth:`events` yields them (stubs included), as the canonical readers do
    index_is_position: ClassVar[bool] = False

    def __init__(self, stream: BinaryIO, path: str, options: ReaderOptions | None = None) -> None:
        self.stream = stream
        self.path = path
        self.options = options or ReaderOptions()
        self.info = TraceInfo(path=path, format=self.name)
        self.stacks: StackTable = {}

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Whether ``head`` (the first bytes of the decompressed content) looks
        like this format."""
        raise NotImplementedError

    def events(self) -> Iterator[HeapEvent]:
        """Yield the trace's events.  Raises :class:`TraceError` with a location
        on a malformed record unless ``options.skip_bad_records`` is set."""
        raise NotImplementedError

    def bytes_read(self) -> int | None:
        """How far into the input the reader is (for progress), when known."""
        try:
            return self.stream.tell()
        except (OSError, ValueError, AttributeError):
            return None

    def bad_record(self, message: str, *, line: int | None = None, col: int | None = None) -> None:
        """Count a malformed record, or raise a located error for it."""
        if self.options.skip_bad_records:
            self.info.bad_records += 1
            return
        raise TraceError(message, path=self.path, line=line, col=col)


GZIP_MAGIC = b"\x1f\x8b"
#: member names that look like traces, most telling first
_TRACE_SUFFIXES = ((".etl",), (".jsonl", ".jsonl.gz", ".csv", ".csv.gz"), (".txt",))
ZIP_MAGIC = b"PK\x03\x04"


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream and counts the compressed bytes consumed, so that
    progress can be shown in bytes of the file on disk."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.consumed += n
        return n


class TraceInput:
    """An opened trace: a binary stream of its (decompressed) content plus
    what progress and error messages need.  Use as a context manager."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.total_bytes: int | None = None
        self._closers: list = []
        self.stream: BinaryIO = self._open(path)

    def _open(self, path: str) -> BinaryIO:
        if path == "-":
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(path, "rb")
            except FileNotFoundError:
                raise TraceError("no such file", path=path) from None
            except IsADirectoryError:
                raise TraceError("is a directory, not a trace file", path=path) from None
            except OSError as err:
                raise TraceError(f"cannot open: {err.strerror}", path=path) from err
            self._closers.append(raw)
            try:
                import os

                self.total_bytes = os.fstat(raw.fileno()).st_size
            except OSError:
                pass
        buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
        magic = buffered.peek(4)[:4]  # type: ignore[union-attr]
        self.counter = None
        if magic[:2] == GZIP_MAGIC:
            self.counter = _CountingReader(buffered)
            stream: BinaryIO = gzip.GzipFile(fileobj=io.BufferedReader(self.counter), mode="rb")  # type: ignore[assignment]
            self._closers.append(stream)
            return io.BufferedReader(stream)  # type: ignore[arg-type]
        if magic == ZIP_MAGIC and path != "-":
            return self._open_zip(path, buffered)
        return buffered  # type: ignore[return-value]

    def _open_zip(self, path: str, raw: BinaryIO) -> BinaryIO:
        try:
            zf = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as err:
            raise TraceError(f"corrupt zip archive: {err}", path=path) from err
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > 1:
            # archives often carry a log or readme beside the trace: prefer the
            # one member whose name says it is a trace
            for suffixes in _TRACE_SUFFIXES:
                traces = [m for m in members if m.filename.lower().endswith(suffixes)]
                if len(traces) == 1:
                    members = traces
                    break
        if len(members) != 1:
            names = ", ".join(m.filename for m in members) or "none"
            raise TraceError(
                f"a zip archive must hold exactly one trace file (.etl, .jsonl, .csv, .txt); "
                f"it holds {len(members)} ({names})",
                path=path,
            )
        self._closers.append(zf)
        self.total_bytes = members[0].file_size
        member = zf.open(members[0])
        self._closers.append(member)
        return io.BufferedReader(member)  # type: ignore[arg-type]

    def head(self) -> bytes:
        """The first bytes of the content, without consuming them."""
        try:
            return self.stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]  # type: ignore[attr-defined]
        except COMPRESSION_ERRORS as err:
            raise compressed_data_error(self.path, err) from err
        except OSError as err:
            raise TraceError(f"cannot read: {err}", path=self.path) from err

    def position(self) -> int | None:
        """Bytes of the file on disk consumed so far, when known."""
        if self.counter is not None:
            return self.counter.consumed
        try:
            return self.stream.tell()
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        for c in reversed(self._closers):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                pass
        self._closers.clear()

    def __enter__(self) -> "TraceInput":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
