"""The benchmark inputs: synthetic traces cached in benchmarks/.cache.

Canonical traces are made by the ``heaplint synth`` command itself (run as
``python -m heaplint.engine synth``); the .etl trace is the same synthetic
workload written by the .etl writer that the .etl reader's tests use
(tests/etl_writer.py), when that writer is present.  Seeds are fixed, so an
input is the same bytes on every machine.

A cached file is reused only if its name matches: the name carries a digest
of the generator's sources and the generation parameters, so a change to
``heaplint synth`` or to the .etl writer regenerates it.  Files of older
digests are deleted when their replacement is written.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import heaplint.engine as engine_pkg

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
TESTS_DIR = ROOT / "tests"
SEED = 7
#: the timer of the written .etl files ticks every 100 ns
ETL_TICK_NS = 100
#: processors of the written .etl files (one buffer stream each, merged by the reader)
ETL_CPUS = 4


@dataclass(frozen=True)
class InputSpec:
    """One input: a synth preset at a size, in a format (``jsonl`` or ``etl``)."""

    name: str
    preset: str
    events: int | None = None  # None: the preset's own (high-live-set: from live_blocks)
    live_blocks: int | None = None
    fmt: str = "jsonl"

    def synth_args(self) -> list[str]:
        """The ``heaplint synth`` options that make this trace (without -o)."""
        args = ["--preset", self.preset, "--seed", str(SEED)]
        if self.events is not None:
            args += ["--events", str(self.events)]
        if self.live_blocks is not None:
            args += ["--live-blocks", str(self.live_blocks)]
        return args

    def describe(self) -> str:
        """A one-line description for the report."""
        what = f"`heaplint synth {' '.join(self.synth_args())}`"
        if self.fmt == "etl":
            what += f", written as an uncompressed {ETL_CPUS}-processor .etl by tests/etl_writer.py"
        return what


def _digest(spec: InputSpec) -> str:
    """A short digest of the generator's sources and ``spec``."""
    h = hashlib.sha256(repr(spec).encode())
    engine_dir = Path(engine_pkg.__file__).resolve().parent
    sources = sorted(engine_dir.glob("synth*.py")) + [engine_dir / "writers.py"]
    if spec.fmt == "etl":
        sources += [TESTS_DIR / "etl_writer.py", TESTS_DIR / "lzxpress_compress.py"]
    for src in sources:
        if src.exists():
            h.update(src.name.encode())
            h.update(src.read_bytes())
    return h.hexdigest()[:10]


def cached_path(spec: InputSpec, cache_dir: Path = CACHE_DIR) -> Path:
    """Where ``spec``'s trace is cached (whether or not it exists yet)."""
    return cache_dir / f"{spec.name}-{_digest(spec)}.{spec.fmt}"


def etl_writer_missing() -> str | None:
    """Why no .etl input can be made or read here, or None when it can."""
    try:
        from heaplint.engine.readers import reader_class

        reader_class("etl")
    except ImportError as err:
        return f"the .etl reader is not in this build ({err.name or err})"
    if not (TESTS_DIR / "etl_writer.py").exists():
        return "the test .etl writer (tests/etl_writer.py) is not in this build"
    return None


def ensure(spec: InputSpec, cache_dir: Path = CACHE_DIR, log=None) -> Path:
    """The cached trace of ``spec``, generated first when missing."""
    path = cached_path(spec, cache_dir)
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    if log is not None:
        log(f"generating {path.name} ({spec.describe()}) ...")
    tmp = path.with_name(f"{path.stem}.part.{spec.fmt}")  # synth picks the format by the extension
    if spec.fmt == "etl":
        write_etl_input(spec, tmp)
    else:
        cmd = [sys.executable, "-m", "heaplint.engine", "synth", *spec.synth_args(), "-o", str(tmp)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    os.replace(tmp, path)
    for old in cache_dir.glob(f"{spec.name}-*.{spec.fmt}"):
        if old != path:
            old.unlink()
    return path


def _frames(frames: tuple[str, ...]) -> tuple[int, ...]:
    """Stable fake return addresses for symbolic frames (one per function)."""
    return tuple(0x7FF6_0000_0000 + (zlib.crc32(f.encode()) & 0xFFFFFF) * 16 for f in frames)


def _etl_records(trace) -> Iterator:
    """The events of a synth trace as etl_writer Records: times on the
    timer's 100 ns ticks and never decreasing, allocation stacks attached."""
    from etl_writer import Record  # tests/ is on sys.path (see write_etl_trace)

    addresses = {sid: _frames(frames) for sid, frames in trace.stacks.items()}
    last = 0
    for ev in trace.events():
        t = max(last, ev.time - ev.time % ETL_TICK_NS)
        last = t
        if t != ev.time:
            ev = ev._replace(time=t)
        frames = addresses.get(ev.stack, ()) if ev.stack is not None else ()
        yield Record(ev, frames=frames) if frames else ev


def write_etl_trace(trace, path: Path) -> None:
    """Write a synth trace (:class:`heaplint.engine.synth.SynthTrace`) as an
    uncompressed .etl file."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from etl_writer import write_etl

    write_etl(str(path), _etl_records(trace), cpus=ETL_CPUS)


def write_etl_input(spec: InputSpec, path: Path) -> None:
    """Write ``spec``'s synthetic workload as an uncompressed .etl file."""
    from heaplint.engine.synth import synthesize
    from heaplint.engine.synth_presets import build_spec

    synth_spec = build_spec(spec.preset, seed=SEED, events=spec.events, live_blocks=spec.live_blocks)
    write_etl_trace(synthesize(synth_spec), path)
