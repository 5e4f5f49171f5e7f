"""Helpers shared by the test_jobs_* files (not a test module): canonical
JSONL traces written line by line, random multi-process traces, and the rule
set the tests run (every trigger and scope)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from heaplint.engine.findings import TraceResult

ROOT = Path(__file__).resolve().parent.parent
RULES = [str(ROOT / "tests" / "data_rules"), str(ROOT / "tests" / "data_jobs" / "rules.yaml")]
HEADER = {"format": "heaplint-trace", "version": 1, "time_unit": "ns"}


def write_lines(path: Path, lines: list[bytes], header: dict | None = None) -> str:
    """A JSONL trace: the header, then ``lines`` as given (newline added)."""
    head = json.dumps(header or HEADER, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join([head, *lines]) + b"\n")
    return str(path)


def record(kind: str, time: int, pid: int, **fields: Any) -> bytes:
    """One record as the canonical writer lays it out (kind, time, pid first)."""
    return json.dumps({"kind": kind, "time": time, "pid": pid, **fields}, separators=(",", ":")).encode()


def as_plain(result: TraceResult) -> dict:
    """Everything a TraceResult holds, as comparable plain data."""
    return dataclasses.asdict(result)


def rule_set():
    """The test rule set: the data_rules sketches plus data_jobs/rules.yaml."""
    from heaplint.engine.parallel import RuleSetArgs

    return RuleSetArgs.of(RULES, no_builtin=True, use_config=False).load()


# --- random multi-process traces ------------------------------------------------------------
MS = 1_000_000
HEAPS = (0x10, 0x20)
ADDRESSES = (0x1000, 0x2000, 0x3000, 0x4000)


def random_records(rng: random.Random, pids=(11, 22, 33), max_size: int = 60) -> list[bytes]:
    """Records of a few processes sharing handles and addresses, with moving
    reallocs logged with and without their inner alloc/free, process records
    (pid reuse included) and timestamps jittered around a rising clock (so some
    arrive out of order, one in forty beyond the default 10 ms window)."""
    out: list[bytes] = []
    clock = 0
    for _ in range(rng.randint(1, max_size)):
        clock += rng.randint(0, 3 * MS)
        jitter = 15 * MS if rng.random() < 1 / 40 else rng.choice([0, 0, 0, 1 * MS, 5 * MS, 8 * MS])
        t = max(0, clock - jitter)
        pid = rng.choice(pids)
        tid = rng.choice([1, 2])
        heap = f"0x{rng.choice(HEAPS):x}"
        addr = f"0x{rng.choice(ADDRESSES):x}"
        what = rng.choice(["alloc", "alloc", "free", "realloc", "move", "create", "destroy",
                           "process_start", "process_end"])
        if what == "alloc":
            out.append(record("alloc", t, pid, tid=tid, heap=heap, address=addr, size=rng.randint(0, 64)))
        elif what == "free":
            out.append(record("free", t, pid, tid=tid, heap=heap, address=addr))
        elif what == "realloc":
            out.append(record("realloc", t, pid, tid=tid, heap=heap, new_address=addr, new_size=32, old_address=addr))
        elif what == "move":
            new = f"0x{rng.choice(ADDRESSES) + 0x100:x}"
            alloc = record("alloc", t, pid, tid=tid, heap=heap, address=new, size=48)
            free = record("free", t, pid, tid=tid, heap=heap, address=addr)
            move = record("realloc", t, pid, tid=tid, heap=heap, new_address=new, new_size=48, old_address=addr)
            out += rng.choice([[move], [alloc, free, move], [move, alloc, free]])
        elif what in ("create", "destroy"):
            out.append(record(what, t, pid, tid=tid, heap=heap))
        else:
            out.append(record(what, t, pid, tid=tid, image=f"p{pid}.exe"))
    return out


#: random_records as a hypothesis strategy (examples shrink by seed only)
heap_records = st.builds(random_records, st.randoms(use_true_random=False))


# --- worker functions for the pool tests (module level: workers import them by name) -------
def square_or_die(n: int) -> int:
    """n * n, but the worker process dies without a word for n == 3."""
    import os

    if n == 3:
        os._exit(7)
    return n * n


def square_or_fail(n: int) -> int:
    """n * n, but a bug (ZeroDivisionError) for n == 2."""
    return n * n // (n - 2)


def sleep_forever(pid_file: str) -> None:
    """Write this worker's pid, then sleep (until terminated)."""
    import os
    import time

    with open(pid_file, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(120)


def give_up_or_sleep(item: tuple[str, str]) -> str:
    """("give up", _) returns at once (once the other worker has started);
    ("sleep", pid_file) writes this worker's pid and sleeps 60 s."""
    import os
    import time

    what, pid_file = item
    if what == "sleep":
        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(60)
        return "slept"
    deadline = time.monotonic() + 30
    while not os.path.exists(pid_file) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "gave up"
