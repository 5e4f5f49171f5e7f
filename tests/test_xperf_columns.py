"""Columns of an xperf dump are found from its header rows, never by position."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from heaplint.engine.events import Kind
from heaplint.engine.readers.xperf import XperfReader
from helpers_text_exports import DATA, cli, read_events, xperf_text

FIELDS = ("kind", "time", "pid", "tid", "heap", "address", "size", "old_address", "old_size", "source", "flags")


def _key(events):
    return [tuple(getattr(e, f) for f in FIELDS) for e in events]


def test_permuted_columns_and_label_variants_read_like_the_original():
    base, _ = read_events(DATA / "xperf_basic.txt")
    permuted, reader = read_events(DATA / "xperf_permuted.txt")
    assert reader.name == "xperf"
    assert _key(permuted) == _key(base)
    assert [e.image for e in permuted] == [e.image for e in base]


def test_missing_column_is_exit_2_with_location_and_columns_seen(capsys, tmp_path):
    path = str(DATA / "xperf_missing_size.txt")
    code = cli(["stats", path, "-o", str(tmp_path / "out.txt")])
    err = capsys.readouterr().err
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:2: 'HeapAlloc' header row: no column for the requested size")
    assert "size, allocsize" in first  # the accepted labels are listed
    assert "columns seen: 'TimeStamp', 'Process Name ( PID)', 'ThreadID', 'HeapHandle', 'Address', 'Source'" in first
    assert "Traceback" not in err
    assert not (tmp_path / "out.txt").exists()


def test_missing_process_column_is_reported(tmp_path, capsys):
    p = tmp_path / "noproc.txt"
    p.write_text(xperf_text([["HeapFree", "TimeStamp", "ThreadID", "HeapHandle", "Address"]], [["HeapFree", "1", "2", "0x10", "0x20"]]))
    assert cli(["stats", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:2: 'HeapFree' header row: no column for the process" in err


def test_dump_without_heap_header_for_a_heap_row_is_exit_2(tmp_path, capsys):
    p = tmp_path / "nohdr.txt"
    p.write_text(
        xperf_text(
            [["P-Start", "TimeStamp", "Process Name ( PID)"]],
            [["P-Start", "1", "a.exe ( 5)"], ["HeapFree", "2", "a.exe ( 5)", "1", "0x10", "0x20"]],
        )
    )
    assert cli(["stats", str(p)]) == 2
    assert f"{p}:5: a 'HeapFree' row, but the dump has no header row for 'HeapFree'" in capsys.readouterr().err


# --- property: any column order and any accepted label spelling --------------------------------------------------

LABELS = {
    "time": ["TimeStamp", "Time Stamp"],
    "process": ["Process Name ( PID)", "Process"],
    "tid": ["ThreadID", "TID", "Thread"],
    "heap": ["HeapHandle", "Heap Handle", "Handle"],
    "address": ["Address", "Addr"],
    "size": ["Size", "AllocSize"],
    "source": ["Source", "Heap Source"],
    "new_address": ["NewAddress", "New Address"],
    "old_address": ["OldAddress", "Old Address"],
    "new_size": ["NewSize", "New Size"],
    "old_size": ["OldSize", "Old Size"],
    "flags": ["Flags", "Heap Flags"],
}
COLUMNS_OF = {
    Kind.ALLOC: ("time", "process", "tid", "heap", "address", "size", "source"),
    Kind.REALLOC: ("time", "process", "tid", "heap", "new_address", "old_address", "new_size", "old_size", "source"),
    Kind.FREE: ("time", "process", "tid", "heap", "address", "source"),
    Kind.HEAP_CREATE: ("time", "process", "tid", "heap", "flags"),
    Kind.DESTROY: ("time", "process", "tid", "heap"),
}
NAMES = {Kind.ALLOC: ["HeapAlloc", "Heap/Alloc"], Kind.REALLOC: ["HeapReAlloc", "Heap_ReAlloc"], Kind.FREE: ["HeapFree"],
         Kind.HEAP_CREATE: ["HeapCreate"], Kind.DESTROY: ["HeapDestroy"]}
PROCS = {7: "plain.exe", 8: "with space.exe", 9: "Unicode ÄÖ.exe"}

addresses = st.integers(min_value=1, max_value=2**64 - 1)
event_spec = st.tuples(
    st.sampled_from(list(COLUMNS_OF)),
    st.integers(0, 5_000),  # time step, us
    st.sampled_from(list(PROCS)),
    st.integers(0, 70_000),
    addresses,
    addresses,
    st.integers(0, 2**40),
    addresses,
    st.integers(0, 2**40),
    st.integers(0, 6),
    st.integers(0, 2**31),
)


@settings(max_examples=60, deadline=None)
@given(
    specs=st.lists(event_spec, min_size=1, max_size=25),
    layout_seed=st.randoms(use_true_random=False),
)
def test_any_column_order_and_spelling_gives_the_same_events(specs, layout_seed):
    layouts = {}
    headers = []
    for kind, cols in COLUMNS_OF.items():
        order = list(cols)
        layout_seed.shuffle(order)
        name = layout_seed.choice(NAMES[kind])
        headers.append([name] + [layout_seed.choice(LABELS[c]) for c in order])
        layouts[kind] = (name, order)
    rows, expected, t = [], [], 0
    for kind, step, pid, tid, heap, addr, size, old, old_size, source, flags in specs:
        t += step
        values = {"time": str(t), "process": f"{PROCS[pid]} ({pid:5d})", "tid": str(tid), "heap": hex(heap),
                  "address": hex(addr), "size": str(size), "source": str(source), "new_address": hex(addr),
                  "old_address": hex(old), "new_size": str(size), "old_size": str(old_size), "flags": hex(flags)}
        name, order = layouts[kind]
        rows.append([name] + [values[c] for c in order])
        has = set(COLUMNS_OF[kind])
        expected.append((int(kind), t * 1000, pid, tid, heap,
                         addr if has & {"address", "new_address"} else 0,
                         size if has & {"size", "new_size"} else 0,
                         old if "old_address" in has else 0,
                         old_size if "old_size" in has else None,
                         source if "source" in has else 0,
                         flags if "flags" in has else 0))
    data = xperf_text(headers, rows).encode("utf-8")
    assert XperfReader.sniff(data)
    reader = XperfReader(io.BufferedReader(io.BytesIO(data)), "<generated>")
    events = list(reader.events())
    assert _key(events) == expected
    assert {p: reader.info.processes[p].image for p in {e.pid for e in events}} == {p: PROCS[p] for p in {e[2] for e in expected}}


def test_console_entry_point_reports_a_missing_column_with_exit_2():
    import subprocess
    import sys

    path = str(DATA / "xperf_missing_size.txt")
    proc = subprocess.run([sys.executable, "-m", "heaplint.engine", "stats", path], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{path}:2: 'HeapAlloc' header row: no column for the requested size")
    assert proc.stdout == ""
