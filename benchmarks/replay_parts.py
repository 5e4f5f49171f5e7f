"""Where stage (c) spends its time: decoding, ordering, the state, the rest.

    python benchmarks/replay_parts.py TRACE [--runs 5]

Decodes TRACE once into memory, then times (CPU time, best of --runs, all in
one process and interleaved) per event:

* ``decode``: iterating the reader (as stage (a));
* ``order auto`` / ``order standalone``: :func:`heaplint.engine.replay.ordered`
  over the decoded events (reorder window and, in auto mode, realloc pairing);
* ``apply``: :meth:`HeapState.apply` over the ordered events;
* ``replay``: ``Replay().run`` over the decoded events (ordering + state +
  the loop between them);
* ``replay from file``: ``Replay().run`` over the reader (stage (c) itself).

Not a substitute for benchmarks/run.py (no fresh process per run, no RSS); it
splits the per-event cost of stage (c) so that a change can be aimed.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

from heaplint.engine.readers import guarded_events, open_trace
from heaplint.engine.replay import Replay, ReplayCounters, ReplayOptions, ordered
from heaplint.engine.state import HeapState


def _decoded(path: str) -> list:
    reader, trace_input = open_trace(path)
    with trace_input:
        return list(guarded_events(reader))


def parts(path: str) -> tuple[dict[str, Callable[[], None]], int]:
    """The timed parts, each a callable doing the work once, and the number
    of events."""
    events = _decoded(path)
    in_order = list(Replay().events(iter(events)))

    def decode() -> None:
        reader, trace_input = open_trace(path)
        with trace_input:
            for _ev in guarded_events(reader):
                pass

    def order(mode: str) -> Callable[[], None]:
        def run() -> None:
            for _ev in ordered(iter(events), ReplayOptions(realloc_mode=mode), ReplayCounters()):
                pass

        return run

    def apply() -> None:
        step = HeapState().apply
        for ev in in_order:
            step(ev)

    def replay_file() -> None:
        reader, trace_input = open_trace(path)
        with trace_input:
            Replay().run(guarded_events(reader))

    return {
        "decode": decode,
        "order auto": order("auto"),
        "order standalone": order("standalone"),
        "apply": apply,
        "replay": lambda: Replay().run(iter(events)) and None,
        "replay from file": replay_file,
    }, len(events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    timed, n = parts(args.trace)
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(args.runs):
        for name, fn in timed.items():
            t = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t)
    print(f"{args.trace}: {n:,} events, CPU time per event, best of {args.runs}")
    for name, seconds in best.items():
        print(f"  {name:18s} {seconds / n * 1e6:6.2f} us")


if __name__ == "__main__":
    main()
