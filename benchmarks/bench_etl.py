"""Benchmark: heaplint's .etl reader against dissect.etl's record iteration.

Run from the project root (dissect.etl is the benchmark-only ``bench`` extra):

    pip install -e '.[bench]'
    python benchmarks/bench_etl.py                 # 1M heap events + the net.4.5.2 samples
    python benchmarks/bench_etl.py --events 200000 --compressed-events 50000

For each file, three decoders run in the same process, alternating
(``--repeat`` times each, the best time counts, so that all meet the same
machine load), on the same file: heaplint's ``EtlReader.events()`` (every
record walked, heap / process / stack records decoded into events) with its C
accelerator and in pure Python (``etl_native.NATIVE`` switched off, as
``HEAPLINT_PURE_PYTHON=1`` does), and dissect.etl's ``for record in ETL(fh)``.
dissect.etl decodes 64-bit heap payloads wrongly (4-byte pointers), so only
throughput is compared, not output.  A ratio is dissect's time over
heaplint's time.  Synthetic files come from tests/etl_writer.py (4
processors, 64 KiB buffers) and are cached in the temporary directory.
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
from heaplint.engine.readers import etl_native  # noqa: E402
from heaplint.engine.readers.etl import EtlReader  # noqa: E402

#: the C accelerator as loaded (None when not built or HEAPLINT_PURE_PYTHON is set)
NATIVE = etl_native.NATIVE

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


def run_heaplint(path: Path, native: bool) -> tuple[float, int, int]:
    etl_native.NATIVE = NATIVE if native else None
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
    parser.add_argument("--compressed-events", type=int, default=1_000_000, help="heap events in the compressed file")
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "samples" / "etl")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "heaplint-bench-etl")
    parser.add_argument("--no-dissect", action="store_true", help="time heaplint only")
    parser.add_argument("--no-python", action="store_true", help="do not time heaplint's pure-Python decoder")
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
    print(f"heaplint .etl decoder: {etl_native.status()}", file=sys.stderr)
    print("| file | MB | records | events | heaplint C s | C records/s | pure Python s | dissect.etl s "
          "| C vs dissect | Python vs dissect | C vs Python |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, path in files:
        times = {"c": float("inf"), "py": float("inf"), "dissect": float("inf")}
        for _ in range(max(1, args.repeat)):  # alternate, so all see the same machine load
            if NATIVE is not None:
                elapsed, events, records = run_heaplint(path, native=True)
                times["c"] = min(times["c"], elapsed)
            if not args.no_python or NATIVE is None:
                elapsed, events, records = run_heaplint(path, native=False)
                times["py"] = min(times["py"], elapsed)
            if not args.no_dissect:
                elapsed, _ = run_dissect(path)
                times["dissect"] = min(times["dissect"], elapsed)
        print(
            f"| {label} | {path.stat().st_size / 1e6:.1f} | {records:,} | {events:,} | {_s(times['c'])} "
            f"| {_rate(records, times['c'])} | {_s(times['py'])} | {_s(times['dissect'])} "
            f"| {_ratio(times['dissect'], times['c'])} | {_ratio(times['dissect'], times['py'])} "
            f"| {_ratio(times['py'], times['c'])} |",
            flush=True,
        )
    etl_native.NATIVE = NATIVE
    return 0


def _s(seconds: float) -> str:
    return "-" if seconds == float("inf") else f"{seconds:.2f}"


def _rate(records: int, seconds: float) -> str:
    return "-" if seconds == float("inf") else f"{records / seconds:,.0f}"


def _ratio(slow: float, fast: float) -> str:
    return "-" if float("inf") in (slow, fast) else f"{slow / fast:.1f}x"


if __name__ == "__main__":
    sys.exit(main())
