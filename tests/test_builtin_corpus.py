"""The quality bar of the built-in rules on a labelled synthetic corpus.

Six healthy workloads (caches, sawtooth, warm-up, LFH churn, attach mode, a
lossy capture), each as it is and with each `heaplint synth` defect injected
alone: 66 traces of about 3,000 events, generated in memory.  With the
default profile every injected defect must be reported by a rule meant for it
(at its process, heap and addresses), and no healthy trace may get a warning or
an error.  tests/corpus_measure.py measures the same on a larger corpus.
"""

from __future__ import annotations

import pytest

from corpus_measure import corpus, matches, profile_ruleset, run_case, score
from heaplint.engine.findings import Severity

EVENTS = 3000


@pytest.fixture(scope="module")
def results():
    ruleset = profile_ruleset("default")
    return [run_case(ruleset, name, spec) for name, spec in corpus(EVENTS, [0])]


def test_corpus_covers_every_base_and_defect(results):
    from heaplint.engine.synth_defects import DEFECTS
    from heaplint.engine.synth_presets import CORPUS_BASES

    names = {r.name for r in results}
    assert names == set(CORPUS_BASES) | {f"{b}+{d}" for b in CORPUS_BASES for d in DEFECTS}
    assert all(r.healthy == ("+" not in r.name) for r in results)
    assert all(r.occurrences for r in results if not r.healthy)


def test_every_injected_defect_is_reported_by_its_rule(results):
    missed = []
    for res in results:
        for o in res.occurrences:
            if not any(f.rule_id in o.defect["rules"] and matches(f, o) for f in res.findings):
                missed.append(f"{res.name}: {o.defect['kind']} (pid {o.pid}, {o.defect['rules']})")
    assert not missed, "defects not reported:\n" + "\n".join(missed)


def test_leaks_are_errors_or_warnings_on_complete_traces(results):
    """A leak on a complete trace gates CI: HL004 warns at the process end."""
    for res in results:
        if not res.name.endswith("+leak") or res.name.split("+")[0] in ("attach", "lossy"):
            continue
        (leak,) = res.occurrences
        levels = [f.severity for f in res.findings if f.rule_id in ("HL003", "HL004") and matches(f, leak)]
        assert levels and max(levels) >= Severity.WARNING, res.name


def test_no_healthy_trace_gets_a_warning_or_an_error(results):
    bad = [f"{r.name}: {f.rule_id} {f.severity.label}: {f.message}"
           for r in results if r.healthy for f in r.findings if f.severity >= Severity.WARNING]
    assert not bad, "\n".join(bad)


def test_no_false_warning_or_error_on_any_trace(results):
    """Every warning and error on the corpus is about an injected defect."""
    bad = [f"{r.name}: {f.rule_id} {f.severity.label}: {f.message}"
           for r in results for f in r.false_findings if f.severity >= Severity.WARNING]
    assert not bad, "\n".join(bad)


def test_lossy_traces_say_so(results):
    for res in results:
        assert any(f.rule_id == "HL013" for f in res.findings) == res.lossy, res.name


def test_scores_are_computed_from_the_findings(results):
    scores = score(results, [])
    assert scores["HL006"].occurrences == 12 and scores["HL006"].recalled == 12
    # a finding dropped from the results is a recall miss, not silently ignored
    pruned = [type(r)(r.name, r.healthy, [f for f in r.findings if f.rule_id != "HL011"], r.occurrences,
                      r.unseen, r.lossy, r.false_findings) for r in results]
    assert score(pruned, [])["HL011"].recalled == 0 and score(pruned, [])["HL011"].occurrences == 12
