"""The generated ``on_event`` (rules/fusedplan.py) against the loop over the
plan it replaces (RuleRun._loop_hook): the same findings, in the same order,
for the built-in rules and the benchmark rules, with thresholds low enough
that most of them fire, on synthetic traces with injected defects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_kit import ROOT

from heaplint.engine.synth import synthesize
from heaplint.engine.synth_presets import build_spec
from heaplint.rules import runtime
from heaplint.rules.ruleset import load_ruleset
from heaplint.rules.runtime import run_events

#: thresholds low enough for the rules to fire on a few thousand events
PARAMS = {
    "HL002.threshold": "2", "HL012.min_rate": "1", "HL012.fraction": "0.5", "HL010.min_chain": "2",
    "BENCH001.min_size": "1KiB", "BENCH011.max_rate": "100", "BENCH012.threshold": "1",
    "BENCH013.max_bytes": "1KiB", "BENCH014.min_frees": "5", "BENCH014.fraction": "0.5",
    "BENCH015.threshold": "1", "BENCH016.min_count": "5", "BENCH016.max_avg": "100000",
    "BENCH017.max_size": "1KiB",
}
DEFECTS = ["leak", "double-free", "unknown-free", "realloc-unknown", "overlap", "wrong-heap-free",
           "invalid-source", "slowpath-storm", "realloc-chain", "destroy-live"]
_RULES = {}


def _ruleset():
    if not _RULES:
        _RULES["rs"] = load_ruleset([str(ROOT / "benchmarks" / "rules")], use_config=False, enable=["*"],
                                    params=PARAMS)
    return _RULES["rs"]


def _findings(trace, fused: bool) -> list:
    runtime.FUSED = fused
    try:
        findings, _ = run_events(_ruleset().enabled, trace.events(), trace.info, trace.stacks)
    finally:
        runtime.FUSED = True
    return findings


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["mixed", "steady", "lfh-churn", "healthy-sawtooth"]), st.integers(0, 1000),
       st.lists(st.sampled_from(DEFECTS), max_size=4, unique=True))
def test_fused_plan_finds_what_the_loop_finds(preset, seed, inject):
    trace = synthesize(build_spec(preset, seed=seed, events=3000, inject=tuple(inject)))
    fused = _findings(trace, True)
    assert fused == _findings(trace, False)


def test_the_low_thresholds_make_most_rules_fire():
    """So that the comparison above is about findings, not about none."""
    trace = synthesize(build_spec("mixed", seed=1, events=3000, inject=tuple(DEFECTS)))
    fired = {f.rule_id for f in _findings(trace, True)}
    assert len(fired) >= 15, fired
