"""--jobs N gives the same output as --jobs 1: reports byte for byte through
the command line, whole TraceResults through the API, and partitions of
random multi-process traces against a whole replay."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from jobs_support import RULES, ROOT, as_plain, heap_records, random_records, record, rule_set, write_lines

from heaplint.engine import analyze
from heaplint.engine.analyze import analyze_trace
from heaplint.engine.parallel import AnalysisSpec, plan, resolve_jobs, run_traces
from heaplint.engine.partition import is_trace_scope, replay_partition
from heaplint.engine.partition_merge import merge_parts
from heaplint.engine.partition_order import PartitionAbandoned

FORMATS = ("json", "sarif", "junit", "text", "html")


def synth(path, *args: str) -> str:
    from heaplint.engine.cli import main

    assert main(["synth", *args, "-o", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs")
    return {
        "busy": synth(tmp / "busy.jsonl.gz", "--preset", "busy-2proc", "--events", "6000"),
        "mixed": synth(tmp / "mixed.jsonl", "--preset", "mixed", "--events", "6000", "--disorder", "15ms",
                       "--inject", "double-free,slowpath-storm,wrong-heap-free,leak", "--realloc-shape", "mixed"),
        "attach": synth(tmp / "attach.jsonl.gz", "--preset", "attach", "--events", "3000", "--seed", "3"),
        "lossy": synth(tmp / "lossy.csv", "--preset", "lossy", "--events", "3000"),
    }


@pytest.fixture(scope="module")
def rules():
    return rule_set()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heaplint.engine", *args], capture_output=True, cwd=ROOT,
                          timeout=300)


def main(*args: str) -> int:
    from heaplint.engine.cli import main as heaplint

    return heaplint(list(args))


def test_cli_reports_are_byte_identical(traces, tmp_path):
    """One trace with two busy processes (split by process), then several
    traces (one per worker): every format, and the exit status."""
    rules = [a for r in RULES for a in ("--rules", r)]
    for name, paths in (("one", [traces["busy"]]), ("several", list(traces.values()))):
        outputs = {}
        for jobs in ("1", "2"):
            reports = [a for f in FORMATS for a in ("--format", f, "-o", str(tmp_path / f"{name}.{jobs}.{f}"))]
            status = main("check", *paths, *rules, "--no-builtin", "--no-config", "--jobs", jobs, *reports)
            assert status in (0, 1)
            outputs[jobs] = (status, {f: (tmp_path / f"{name}.{jobs}.{f}").read_bytes() for f in FORMATS})
        assert outputs["1"] == outputs["2"]
        findings = json.loads(outputs["1"][1]["json"])
        assert findings["traces"] and any(t["findings"] for t in findings["traces"]), "the rules found something"


def test_stats_are_byte_identical(traces, tmp_path):
    outputs = {}
    for jobs in ("1", "2"):
        several, one = tmp_path / f"several.{jobs}", tmp_path / f"one.{jobs}"
        assert main("stats", traces["mixed"], traces["busy"], "--format", "json", "--jobs", jobs, "-o", str(several)) == 0
        assert main("stats", traces["mixed"], "--jobs", jobs, "-o", str(one)) == 0  # split by process
        outputs[jobs] = (several.read_bytes(), one.read_bytes())
    assert outputs["1"] == outputs["2"]
    doc = json.loads(outputs["1"][0])
    assert len(doc["traces"][0]["processes"]) == 3 and doc["traces"][0]["quality"]["out_of_order_beyond_window"] > 0


def test_baseline_create_is_byte_identical(traces, tmp_path):
    files = []
    for jobs in ("1", "2"):
        out = tmp_path / f"baseline.{jobs}.json"
        assert main("baseline", "create", traces["mixed"], "-o", str(out), "-q", "--jobs", jobs,
                    "--no-config", "--no-builtin", *[a for r in RULES for a in ("--rules", r)]) == 0
        files.append(out.read_bytes())
    assert files[0] == files[1] and json.loads(files[0])


@pytest.mark.parametrize("name", ["busy", "mixed", "attach", "lossy"])
def test_api_results_are_identical(traces, rules, name):
    whole = analyze([traces[name]], ruleset=rules)
    for jobs in (2, 3):
        split = analyze([traces[name]], ruleset=rules, jobs=jobs)
        assert [as_plain(t) for t in split.traces] == [as_plain(t) for t in whole.traces]
        assert split.errors == whole.errors == []


def test_partitions_merge_exactly(traces, rules):
    """The merge itself, without the pool: no fallback on ordinary traces."""
    trace_rules = [r for r in rules.enabled if is_trace_scope(r)]
    for name, path in traces.items():
        whole = analyze_trace(rules, path)
        for count in (2, 3) if name == "mixed" else (2,):
            merged = merge_parts([replay_partition(path, i, count, rules=rules.enabled) for i in range(count)],
                                 trace_rules)
            assert merged is not None, f"{path} in {count} partitions fell back to a whole replay"
            assert as_plain(merged) == as_plain(whole)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=heap_records)
def test_random_traces_merge_exactly_or_fall_back(tmp_path, rules, body):
    """Shared handles and addresses, pid reuse, inner alloc/free of moving
    reallocs, disorder within and beyond the reorder window: the merged
    partitions equal the whole replay, or the merge declines (and the caller
    replays the trace whole)."""
    path = write_lines(tmp_path / "t.jsonl", body)
    whole = as_plain(analyze_trace(rules, path))
    trace_rules = [r for r in rules.enabled if is_trace_scope(r)]
    # positions from the canonical reader's index, and remembered per event
    # (what other readers get)
    for count, by_index in ((2, True), (3, True), (2, False)):
        parts = [replay_partition(path, i, count, rules=rules.enabled, index_is_position=by_index)
                 for i in range(count)]
        merged = merge_parts(parts, trace_rules)
        if merged is not None:
            assert as_plain(merged) == whole


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=heap_records)
def test_unsure_partitions_give_up_at_once(tmp_path, rules, body):
    """``--jobs`` workers stop a partition as soon as a process's place in
    the merge is unsure (the merge would decline): they give up exactly on
    the partitions that would finish with ``order_exact`` False, and
    otherwise finish with the same result."""
    path = write_lines(tmp_path / "t.jsonl", body)
    for index in range(2):
        finished = replay_partition(path, index, 2, rules=rules.enabled)
        try:
            eager = replay_partition(path, index, 2, rules=rules.enabled, give_up_when_unsure=True)
        except PartitionAbandoned:
            assert not finished.order_exact
        else:
            assert as_plain(eager) == as_plain(finished)
            assert eager.order_exact  # (only a record with an escaped key could say otherwise: none here)


def test_fallbacks_are_rare(tmp_path, rules):
    """The merge declines only near caps or when a process's first or last
    event may have been released out of order: not often, even on these
    deliberately disordered traces."""
    trace_rules = [r for r in rules.enabled if is_trace_scope(r)]
    declined = 0
    for seed in range(30):
        path = write_lines(tmp_path / f"t{seed}.jsonl", random_records(random.Random(seed), max_size=40))
        parts = [replay_partition(path, p, 2, rules=rules.enabled) for p in range(2)]
        declined += merge_parts(parts, trace_rules) is None
    assert declined <= 6, f"{declined} of 30 merges declined"


def test_etl_traces_split_by_process(tmp_path, rules):
    """A binary .etl trace (its reader decodes everything; positions are
    remembered per event): same result, merged without falling back."""
    from etl_writer import write_etl

    from heaplint.engine.synth import synthesize
    from heaplint.engine.synth_presets import build_spec

    trace = synthesize(build_spec("busy-2proc", events=3000))
    events = [ev._replace(time=ev.time // 100 * 100) for ev in trace.events()]
    path = str(tmp_path / "t.etl")
    write_etl(path, events)
    whole = analyze_trace(rules, path)
    assert len(whole.stats["processes"]) == 2
    parts = [replay_partition(path, i, 2, rules=rules.enabled) for i in range(2)]
    merged = merge_parts(parts, [r for r in rules.enabled if is_trace_scope(r)])
    assert merged is not None and as_plain(merged) == as_plain(whole)
    assert [as_plain(t) for t in analyze([path], ruleset=rules, jobs=2).traces] == [as_plain(whole)]


def test_finding_caps_make_the_trace_replay_whole(tmp_path):
    """More matches than the per-rule cap: which ones a whole replay keeps
    depends on all processes, so the partitions decline and the result is
    still the whole replay's (through the pool)."""
    rule = tmp_path / "every.yaml"
    rule.write_text("id: C001\nname: every\ndedup: per-event\nseverity: note\nwhen: kind == alloc\n")
    body = [record("alloc", i, 1 + i % 2, heap="0x10", address=f"0x{0x1000 + 64 * i:x}", size=8) for i in range(1200)]
    path = write_lines(tmp_path / "t.jsonl", body)
    kw = dict(rule_paths=[str(rule)], no_builtin=True, use_config=False)
    whole = analyze([path], **kw)
    split = analyze([path], jobs=2, **kw)
    assert len(whole.findings) == 1000 and any("1000 findings" in n for n in whole.traces[0].info.notes)
    assert [as_plain(t) for t in split.traces] == [as_plain(t) for t in whole.traces]
    parts = [replay_partition(path, i, 2, rules=split_rules(kw).enabled) for i in range(2)]
    assert merge_parts(parts, []) is None


def split_rules(kw):
    from heaplint.engine.parallel import RuleSetArgs

    return RuleSetArgs.of(**kw).load()


def test_window_group_caps_make_the_trace_replay_whole(tmp_path):
    rule = tmp_path / "groups.yaml"
    rule.write_text("id: G001\nname: g\nmax_groups: 3\nwhen: count(where kind == alloc) over 1s by address > 0\n")
    body = [record("alloc", i, 1 + i % 2, heap="0x10", address=f"0x{0x1000 + 64 * i:x}", size=8) for i in range(8)]
    path = write_lines(tmp_path / "t.jsonl", body)
    kw = dict(rule_paths=[str(rule)], no_builtin=True, use_config=False)
    whole = analyze([path], **kw)
    assert any("group cap of 3" in n for n in whole.traces[0].info.notes)
    assert [as_plain(t) for t in analyze([path], jobs=2, **kw).traces] == [as_plain(t) for t in whole.traces]


def test_spawned_workers_build_the_rules_themselves(traces, rules):
    """Where workers cannot be forked, they load the rules from RuleSetArgs."""
    from heaplint.engine.parallel import ruleset_args

    spec = AnalysisSpec(ruleset_args(rules))
    (result,) = run_traces([traces["busy"]], spec, 2, rules, start_method="spawn")
    assert as_plain(result) == as_plain(analyze_trace(rules, traces["busy"]))


def test_plan_and_job_counts():
    spec = AnalysisSpec(None)
    assert [len(ts) for ts in plan(["a", "b", "c"], spec, 2)] == [1, 1, 1]
    assert [len(ts) for ts in plan(["a"], spec, 4)] == [4]
    assert [len(ts) for ts in plan(["a", "b"], spec, 4)] == [2, 2]
    assert [len(ts) for ts in plan(["a", "-"], spec, 4)] == [4, 1]  # stdin is read whole, by the parent
    assert resolve_jobs(3) == 3 and resolve_jobs(0) >= 1
    with pytest.raises(ValueError):
        resolve_jobs(-1)


def test_stdin_with_jobs(traces):
    data = open(traces["mixed"], "rb").read()
    outs = [subprocess.run([sys.executable, "-m", "heaplint.engine", "stats", "-", traces["busy"], "--format", "json",
                            "--jobs", jobs], input=data, capture_output=True, cwd=ROOT, timeout=120)
            for jobs in ("1", "2")]
    assert outs[0].returncode == outs[1].returncode == 0 and outs[0].stdout == outs[1].stdout


def test_jobs_option_rejects_negative():
    done = cli("stats", "x.jsonl", "--jobs", "-2")
    assert done.returncode == 2 and b"--jobs" in done.stderr
