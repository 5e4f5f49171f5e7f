"""Property: random lifetimes -> WPA CSV -> reader -> the expected alloc/free sequence."""

from __future__ import annotations

import io
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.events import Kind
from heaplint.engine.readers.wpa import WpaCsvReader
from helpers_text_exports import replay, wpa_text

LABELS = ["Type", "Process", "Thread ID", "Handle", "Address", "Size", "Count", "AllocTime", "FreeTime", "Source"]
PIDS = {11: "a.exe", 12: "b b.exe"}


class _Pipe(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def _seconds(ns: int, grouped: bool) -> str:
    whole = f"{ns // 10**9:,}" if grouped else str(ns // 10**9)
    return f"{whole}.{ns % 10**9:09d}"


lifetime = st.tuples(
    st.sampled_from(["AIFI", "AIFO", "AOFI", "AOFO"]),
    st.sampled_from(sorted(PIDS)),
    st.integers(0, 3 * 10**12),  # alloc time, ns
    st.integers(0, 10**10),  # lifetime, ns
    st.integers(1, 0xFFF),  # size
    st.integers(0, 6),  # source
    st.booleans(),  # thousands separators in times
)


@settings(max_examples=80, deadline=None)
@given(
    lifetimes=st.lists(lifetime, max_size=40),
    order=st.sampled_from(["as-generated", "by-alloc-time"]),
    seekable=st.booleans(),
    chunk=st.integers(1, 16),
)
def test_lifetimes_become_the_expected_event_sequence(lifetimes, order, seekable, chunk):
    rows = []
    for i, (cls, pid, alloc, span, size, source, grouped) in enumerate(lifetimes):
        address = 0x10000 + 0x1000 * i  # distinct, never overlapping
        alloc_s = _seconds(alloc, grouped) if cls in ("AIFI", "AIFO") else ""
        free_s = _seconds(alloc + span, grouped) if cls in ("AIFI", "AOFI") else ""
        rows.append((alloc if cls[:2] == "AI" else -1, i, [cls, f"{PIDS[pid]} ({pid})", "7", "0x500", hex(address),
                     f"{size:,}", "1", alloc_s, free_s, str(source)]))
    if order == "by-alloc-time":
        rows.sort(key=lambda r: (r[0], r[1]))  # free-only rows first, then by AllocTime
    expected = []
    for position, (_, i, r) in enumerate(rows):
        cls, pid, alloc, span, size, source, _ = lifetimes[i]
        address = 0x10000 + 0x1000 * i
        # at equal times: frees of earlier blocks, then allocs in row order, a zero-length
        # lifetime's free right after its own alloc
        if cls in ("AIFI", "AIFO"):
            expected.append((alloc, 1, position, 0, int(Kind.ALLOC), pid, address, size, source))
        if cls in ("AIFI", "AOFI"):
            zero = cls == "AIFI" and span == 0
            expected.append((alloc + span, 1 if zero else 0, position, 1 if zero else 0, int(Kind.FREE), pid, address, 0, 0))
    expected.sort()
    data = wpa_text(LABELS, [r for _, _, r in rows]).encode()
    assert WpaCsvReader.sniff(data)

    class Reader(WpaCsvReader):
        sort_chunk = chunk

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.csv")
        with open(path, "wb") as f:
            f.write(data)
        # a plain file can be read twice; a pipe cannot
        with open(path, "rb") if seekable else io.BufferedReader(_Pipe(data)) as stream:
            reader = Reader(stream, path)
            events = list(reader.events())
    got = [(e.time, e.kind, e.pid, e.address, e.size, e.source) for e in events]
    assert got == [(t, k, p, a, s, src) for t, _, _, _, k, p, a, s, src in expected]
    assert reader.max_in_memory <= max(chunk, len(lifetimes))
    if order == "by-alloc-time" and seekable:  # free-only rows sorted first: streamable
        assert reader.order_mode == "streamed"
    if reader.order_mode == "sorted":
        assert reader.max_in_memory <= chunk
    # reference model: what is live at the end is exactly the AIFO rows
    _state, at_end = replay(events)
    live = {}
    for block in at_end.values():
        live.update({addr: size for (_heap, addr), size in block.items()})
    assert live == {0x10000 + 0x1000 * i: lt[4] for i, lt in enumerate(lifetimes) if lt[0] == "AIFO"}
    aofi_pids = {lt[1] for lt in lifetimes if lt[0] == "AOFI"}
    assert {p for p, f in reader.info.processes.items() if f.start_seen is False} == aofi_pids
