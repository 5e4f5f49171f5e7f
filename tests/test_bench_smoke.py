"""Smoke tests of the benchmark harness (benchmarks/): correctness, never timing.

The stages run in-process on ~2k-event synthetic traces and must agree on
what they computed, so that no stage can get faster by doing less; the child
process protocol, the disagreement check, the .etl input conversion and the
docs region update are checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.inputs import etl_writer_missing, write_etl_trace  # noqa: E402
from benchmarks.measure import StageResult, disagreements, measure_jobs  # noqa: E402
from benchmarks.stages import (  # noqa: E402
    STAGES,
    custom_rule_paths,
    decode_only,
    heaplint_replay,
    minimal_replay,
    sorted_minimal_replay,
    unavailable,
)

from heaplint.engine.synth import SynthSpec, synthesize  # noqa: E402
from heaplint.engine.synth_presets import build_spec  # noqa: E402
from heaplint.engine.writers import write_trace  # noqa: E402

TRACES = {
    "steady": {"events": 2000},
    "high-live-set": {"live_blocks": 800},  # about 1,900 events, 800 blocks live at the end
    "busy-2proc": {"events": 3000},
    # a heap destroyed with live blocks, a leak, a long realloc chain
    "healthy-cache": {"events": 3000, "inject": ("destroy-live", "leak", "realloc-chain")},
}


def _still_running(spec: SynthSpec) -> SynthSpec:
    """``spec`` with every process still running at the end of the capture,
    so that the final state holds blocks of every workload (a clean shutdown
    would leave nothing to compare)."""
    return replace(spec, processes=tuple(replace(p, shutdown="none") for p in spec.processes))


def _trace(preset: str):
    return synthesize(_still_running(build_spec(preset, seed=3, **TRACES[preset])))


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, str]:
    out = {}
    folder = tmp_path_factory.mktemp("bench")
    for preset in TRACES:
        trace = _trace(preset)
        path = folder / f"{preset}.jsonl"
        write_trace(str(path), trace.events(), trace.info, trace.stacks)
        out[preset] = str(path)
    return out


@pytest.mark.parametrize("preset", list(TRACES))
def test_replay_stages_agree(traces, preset):
    decoded = decode_only(traces[preset])
    floor = minimal_replay(traces[preset])
    sorted_floor = sorted_minimal_replay(traces[preset])
    replay = heaplint_replay(traces[preset])
    assert decoded.events == floor.events == sorted_floor.events == replay.events > 1000
    assert replay.live_blocks > 0
    assert floor.live_bytes == sorted_floor.live_bytes == replay.live_bytes
    assert floor.live_blocks == sorted_floor.live_blocks == replay.live_blocks


def test_high_live_set_keeps_its_blocks(traces):
    out = heaplint_replay(traces["high-live-set"])
    assert out.live_blocks >= 800
    assert out.live_bytes > 0


def test_rule_stage_agrees_with_replay(traces):
    reason = unavailable("e0")
    if reason:
        pytest.skip(reason)
    path = traces["steady"]
    out = STAGES["e0"].prepare()(path)
    replay = heaplint_replay(path)
    assert out.rules == 20
    assert (out.events, out.live_bytes, out.live_blocks) == (replay.events, replay.live_bytes, replay.live_blocks)
    assert out.findings is not None


def test_custom_rules_are_twenty_of_every_shape():
    paths = custom_rule_paths()
    if not paths:
        pytest.skip("no custom rules yet")
    text = "\n".join(Path(p).read_text() for p in paths)
    assert text.count("\nid: BENCH") + text.startswith("id: BENCH") == 20
    assert " over " in text and "at: end" in text  # windowed and end-of-trace shapes


def test_child_process_reports_the_same_output(traces):
    path = traces["busy-2proc"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "child.py"), "c", path], capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout)
    assert result["output"] == heaplint_replay(path).as_dict()
    assert result["peak_rss"] > 1 << 20
    assert result["wall_s"] >= 0 and result["cpu_s"] >= 0


def _current_rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_child_peak_rss_is_its_own():
    ballast = bytearray(96 << 20)  # make this (parent) process big: the child must not inherit its peak
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    parent = _current_rss()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "child.py"), "empty"], capture_output=True, text=True, check=True
    )
    child = json.loads(proc.stdout)["peak_rss"]
    assert 1 << 20 < child < parent - (64 << 20)
    del ballast


def test_child_rejects_an_unknown_stage():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "child.py"), "z", "x"], capture_output=True)
    assert proc.returncode == 2 and b"usage" in proc.stderr


def test_etl_input_decodes_to_the_same_events(traces, tmp_path):
    reason = etl_writer_missing()
    if reason:
        pytest.skip(reason)
    etl = tmp_path / "busy.etl"
    write_etl_trace(_trace("busy-2proc"), etl)
    from_etl, from_jsonl = heaplint_replay(str(etl)), heaplint_replay(traces["busy-2proc"])
    assert from_etl.live_blocks > 0
    assert from_etl == from_jsonl
    assert minimal_replay(str(etl)) == from_etl


def test_jobs_hook_reports_or_compares(traces):
    result = measure_jobs(traces["busy-2proc"], 1, lambda _msg: None)
    if not result["available"]:
        assert result["reason"]  # says why: no check command, or no --jobs yet
        return
    assert result["identical"], "heaplint check --jobs 2 must print what --jobs 1 prints"
    assert result["jobs1_s"] > 0 and result["jobs2_s"] > 0


def test_report_has_one_jobs_table_per_input():
    machine = {"nproc": 2, "cpu": "x", "python": "y", "os": "z", "commit": "c", "load_start": "0"}
    rep = report.Report(size="small", command="cmd", machine=machine)
    for name, one, two in (("canonical JSONL", 4.0, 2.0), (".etl", 3.0, 2.5)):
        rep.jobs[name] = {"available": True, "jobs1_s": one, "jobs2_s": two, "speedup": one / two,
                          "identical": True, "input": f"input of {name}"}
    text = report.render(rep)
    jsonl, etl = text.index("`--jobs`): canonical JSONL"), text.index("`--jobs`): .etl")
    assert jsonl < text.index("input of canonical JSONL") < text.index("| speed-up | 2.00×") < etl
    assert etl < text.index("input of .etl") < text.index("| speed-up | 1.20×")


def _result(key: str, **output) -> StageResult:
    run = {"wall_s": 1.0, "cpu_s": 1.0, "setup_s": 0.0, "peak_rss": 1, "output": output}
    return StageResult(key, "x", runs=[run])


def test_disagreements_are_reported():
    same = [_result("a", events=10), _result("b", events=10, live_bytes=5), _result("c", events=10, live_bytes=5)]
    assert disagreements(same) == []
    differ = [_result("b", events=10, live_bytes=5), _result("c", events=11, live_bytes=6)]
    problems = disagreements(differ)
    assert len(problems) == 2 and "event counts" in problems[0] and "live bytes" in problems[1]
    flaky = _result("c", events=10, live_bytes=5)
    flaky.runs.append({**flaky.runs[0], "output": {"events": 10, "live_bytes": 6}})
    assert disagreements([flaky]) == ["the runs of (c) computed different outputs"]


def test_docs_region_update_keeps_other_sections():
    page = "# Performance\n\nintro\n\n## ETL decoding\n\nby hand\n"
    first = report.update_region(page, "small", "## Benchmarks\n\nv1\n")
    assert first.startswith(page.rstrip("\n")) and "v1" in first
    second = report.update_region(first + "\n## Later\n\nkept\n", "small", "## Benchmarks\n\nv2\n")
    assert "v1" not in second and "v2" in second
    assert "## ETL decoding\n\nby hand" in second and "## Later\n\nkept" in second
    both = report.update_region(second, "full", "full body")
    assert "v2" in both and "full body" in both
    assert report.update_region("", "small", "x").startswith("# Performance")
