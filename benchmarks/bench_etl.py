"""Benchmark: heaplint's .etl reader against dissect.etl's record iteration.

Run from the project root (dissect.etl is the benchmark-only ``bench`` extra):

    pip install -e '.[bench]'
    python benchmarks/bench_etl.py                 # 1M heap events + the net.4.5.2 samples
    python benchmarks/bench_etl.py --events 200000 --compressed-events 50000

For each file, both decoders run in the same process, alternating (``--repeat``
times each, the best time counts, so that both meet the same machine load), on
the same file: heaplint's ``EtlReader.events()`` (every record walked, heap /
process / stack records decoded into events) and dissect.etl's ``for record in
ETL(fh)``.  dissect.etl decodes 64-bit heap payloads wrongly (4-byte pointers),
so only throughput is compared, not output.  The ratio is dissect's time over
heaplint's time.  Synthetic files come from tests/etl_writer.py (4 processors,
64 KiB buffers) and are cached in the temporary directory.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from etl_writer import Record, write_etl  # noqa: E402

from heaplint.engine.events import HeapEvent, Kind  # noqa: E402
from heaplint.engine.readers.etl import EtlReader  # noqa: E402

APP_BASE = 0x7FF600000000


def heap_events(n: int, stacks: bool, seed: int = 1) -> Iterator[HeapEvent | Record]:
    """A plausible heap trace: one process, 8 threads, 50% alloc / 40% free / 10% realloc."""
    rnd = random.Random(seed)
    live: list[int] = []
    t = 100
    yield HeapEvent(Kind.PROCESS_START, t, 1234, 1, image="app.exe")
    yield HeapEvent(Kind.HEAP_CREATE, t + 100, 1234, 1, heap=0x10000)
    t += 200
    callers = [tuple(APP_BASE + rnd.randrange(0x100000) for _ in range(rnd.randrange(8, 24))) for _ in range(64)]
    for i in range(n):
        tid = 1 + i % 8
        x = rnd.random()
        if x < 0.5 or not live:
            address = 0x7F0000000000 + 16 * i
            live.append(address)
            ev = HeapEvent(Kind.ALLOC, t, 1234, tid, 0x10000, address, 16 + i % 512, source=2)
        elif x < 0.9:
            ev = HeapEvent(Kind.FREE, t, 1234, tid, 0x10000, live.pop(rnd.randrange(len(live))), source=2)
        else:
            old = live.pop()
            address = 0x7F0000000000 + 16 * i
            live.append(address)
            ev = HeapEvent(Kind.REALLOC, t, 1234, tid, 0x10000, address, 64, old, 32, 3)
        if stacks and ev.kind != Kind.FREE:
            yield Record(ev, frames=callers[i % len(callers)])
        else:
            yield ev
        t += 100
    yield HeapEvent(Kind.PROCESS_END, t, 1234, 1, image="app.exe")


def synthetic(cache: Path, n: int, stacks: bool = False, compress: bool = False) -> Path:
    name = f"heap-{n}{'-stacks' if stacks else ''}{'-compressed' if compress else ''}.etl"
    path = cache / name
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        write_etl(str(tmp), heap_events(n, stacks), cpus=4, compress=compress,
                  images=[(1234, APP_BASE, 0x100000, r"C:\app\app.exe")])  # fmt: skip
        tmp.rename(path)
        print(f"  wrote {path} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


def sample(cache: Path, samples: Path, name: str) -> Path | None:
    source = samples / f"{name}.zip"
    if not source.exists():
        return None
    path = cache / name
    if not path.exists():
        with zipfile.ZipFile(source) as zf:
            path.write_bytes(zf.read(name))
    return path


def run_heaplint(path: Path) -> tuple[float, int, int]:
    t = time.perf_counter()
    with open(path, "rb") as fh:
        reader = EtlReader(fh, str(path))  # type: ignore[arg-type]
        events = 0
        for _ in reader.events():
            events += 1
    elapsed = time.perf_counter() - t
    return elapsed, events, sum(reader.record_counts.values())


def run_dissect(path: Path) -> tuple[float, int]:
    from dissect.etl import ETL

    t = time.perf_counter()
    records = 0
    with open(path, "rb") as fh:
        for _ in ETL(fh):
            records += 1
    return time.perf_counter() - t, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="heap events in the large file (default 1M)")
    parser.add_argument("--stack-events", type=int, default=200_000, help="heap events in the file with stacks")
    parser.add_argument("--compressed-events", type=int, default=100_000, help="heap events in the compressed file")
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "samples" / "etl")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "heaplint-bench-etl")
    parser.add_argument("--no-dissect", action="store_true", help="time heaplint only")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each decoder, alternating; the best counts")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    files = [
        ("heap events, plain", synthetic(args.cache, args.events)),
        ("heap events + StackWalk, plain", synthetic(args.cache, args.stack_events, stacks=True)),
        ("heap events, compressed", synthetic(args.cache, args.compressed_events, compress=True)),
    ]
    for name in ("net.4.5.2.x64.etl", "net.4.5.2.x86.etl"):
        path = sample(args.cache, args.samples, name)
        if path is not None:
            files.append((f"{name} (compressed, no heap events)", path))
    print("| file | MB | records | heaplint s | heaplint records/s | events | dissect.etl s | dissect records/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, path in files:
        h_time = d_time = float("inf")
        d_records = 0
        for _ in range(max(1, args.repeat)):  # alternate, so both see the same machine load
            elapsed, events, records = run_heaplint(path)
            h_time = min(h_time, elapsed)
            if not args.no_dissect:
                elapsed, d_records = run_dissect(path)
                d_time = min(d_time, elapsed)
        ratio = "-" if args.no_dissect else f"{d_time / h_time:.1f}x"
        d_rate = f"{d_records / d_time:,.0f}" if d_records else "-"
        d_shown = f"{d_time:.2f}" if d_records else "-"
        print(
            f"| {label} | {path.stat().st_size / 1e6:.1f} | {records:,} | {h_time:.2f} | {records / h_time:,.0f} "
            f"| {events:,} | {d_shown} | {d_rate} | {ratio} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
