"""``heaplint synth`` on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from heaplint.engine.cli import main
from heaplint.engine.synth import synthesize
from heaplint.engine.synth_presets import PRESETS, build_spec
from synth_support import has_module, needs_writer


def test_list_presets(capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", "--list-presets"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert f"  {name} " in out
    assert "double-free" in out and "[HL006]" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--preset", "healthy-cach", "-o", "x.jsonl"], "did you mean 'healthy-cache'"),
        (["--inject", "leak,tripple-free", "-o", "x.jsonl"], "unknown defect 'tripple-free'"),
        (["--preset", "mixed"], "-o OUT"),
        (["--preset", "mixed", "--live-blocks", "10", "-o", "x.jsonl"], "high-live-set"),
        (["--events", "-5", "-o", "x.jsonl"], "must not be negative"),
        (["--duration", "60", "-o", "x.jsonl"], "not a duration"),
        (["--processes", "0", "-o", "x.jsonl"], "at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    argv = [str(tmp_path / a) if a == "x.jsonl" else a for a in argv]
    assert main(["synth", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


@needs_writer
def test_cli_writes_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    args = ["synth", "--preset", "leak", "--seed", "3", "--events", "2000", "--duration", "20s", "--inject", "overlap"]
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    assert main([*args, "-o", str(a), "--truth", str(tmp_path / "a.json")]) == 0
    assert main([*args, "-o", str(b), "--truth", str(tmp_path / "b.json")]) == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()[:2] == b"\x1f\x8b"
    truth = json.loads((tmp_path / "a.json").read_text())
    assert truth == json.loads((tmp_path / "b.json").read_text())
    spec = build_spec("leak", seed=3, events=2000, duration_ns=20_000_000_000, inject=("overlap",))
    assert truth == json.loads(json.dumps(synthesize(spec).truth))
    assert [d["kind"] for d in truth["defects"]] == ["leak", "overlap"]


@needs_writer
@pytest.mark.skipif(
    not has_module("heaplint.engine.readers.canonical"), reason="the canonical reader is not merged yet"
)
@pytest.mark.parametrize("name", ["t.jsonl", "t.csv.gz"])
def test_written_trace_reads_back_as_the_generated_events(tmp_path: Path, name: str) -> None:
    from heaplint.engine.readers import open_trace

    out = tmp_path / name
    assert main(["synth", "--preset", "attach", "--events", "1500", "--lost-events", "20", "-o", str(out)]) == 0
    trace = synthesize(build_spec("attach", events=1500, lost_events=20))
    fields = ("kind", "time", "pid", "tid", "heap", "address", "size", "old_address", "old_size", "source", "stack")
    expected = [tuple(getattr(e, f) for f in fields) for e in trace.events()]
    reader, handle = open_trace(str(out))
    with handle:
        got = [tuple(getattr(e, f) for f in fields) for e in reader.events()]
        assert got == expected
        assert reader.stacks == trace.stacks
        assert reader.info.events_lost == 20
        assert all(p.start_seen is False for p in reader.info.processes.values())


@needs_writer
def test_same_bytes_across_interpreters(tmp_path: Path) -> None:
    # nothing may depend on str hashing or other per-process state
    outputs = []
    for hashseed in ("1", "2"):
        out = tmp_path / f"t{hashseed}.csv.gz"
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        argv = ["--preset", "mixed", "--events", "1500", "--inject", "leak,overlap", "--lost-events", "10", "-o", str(out)]
        subprocess.run([sys.executable, "-m", "heaplint.engine", "synth", *argv], check=True, env=env)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
