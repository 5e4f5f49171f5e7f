"""Running rule examples: each rule's inline mini-traces are its tests.

An example passes when replaying its events with the rule (and only that
rule, with the example's parameter overrides) yields exactly ``expect``
findings, all of the ``severity`` it names and the first with the ``message``
substring it names.  ``heaplint rules test`` and the test suite both use
:func:`run_examples`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable

from heaplint.engine.errors import HeaplintError
from heaplint.engine.replay import ReplayOptions
from heaplint.rules.diagnostics import Collector
from heaplint.rules.model import Example
from heaplint.rules.params import coerce
from heaplint.rules.rulecompile import CompiledRule, compile_rule
from heaplint.rules.ruleset import RuleSet
from heaplint.rules.runtime import run_events


@dataclass(frozen=True)
class ExampleResult:
    """The outcome of one example."""

    rule_id: str
    rule_name: str
    example: str
    source: str
    passed: bool
    detail: str  # why it failed ("" when it passed)
    findings: int


def _rule_for(ruleset: RuleSet, rule: CompiledRule, ex: Example) -> CompiledRule:
    """The rule as its author wrote it (defaults, not the configuration's
    overrides) plus the example's own parameters."""
    params = {}
    for name, raw in ex.params.items():
        p = rule.spec.params.get(name)
        if p is None:
            raise ValueError(f"example sets unknown parameter '{name}'")
        params[name] = coerce(p.type, raw, p.item_type)
    errors = Collector()
    out = compile_rule(rule.spec, ruleset.macros, ruleset.lists, params, None, True, errors)
    if out is None:
        raise ValueError("; ".join(str(e) for e in errors.errors))
    return out


def run_example(ruleset: RuleSet, rule: CompiledRule, ex: Example) -> ExampleResult:
    """Replay one example with one rule and judge the outcome."""
    def result(passed: bool, detail: str, n: int) -> ExampleResult:
        return ExampleResult(rule.id, rule.spec.name, ex.name, ex.source, passed, detail, n)

    try:
        runnable = _rule_for(ruleset, rule, ex)
        findings, _ = run_events([runnable], ex.events, copy.deepcopy(ex.info), ex.stacks,
                                 ReplayOptions(realloc_mode=ex.realloc_mode))
    except (ValueError, HeaplintError) as err:
        return result(False, f"cannot run: {err}", 0)
    n = len(findings)
    if n != ex.expect:
        shown = "; ".join(f.message for f in findings[:3])
        return result(False, f"expected {ex.expect} finding(s), got {n}" + (f": {shown}" if shown else ""), n)
    if ex.severity is not None:
        wrong = [f for f in findings if f.severity != ex.severity]
        if wrong:
            return result(False, f"expected severity {ex.severity.label}, got {wrong[0].severity.label}", n)
    if ex.message is not None and findings and ex.message not in findings[0].message:
        return result(False, f"message '{findings[0].message}' does not contain '{ex.message}'", n)
    return result(True, "", n)


def run_examples(ruleset: RuleSet, rules: Iterable[CompiledRule] | None = None) -> list[ExampleResult]:
    """Run the examples of ``rules`` (default: every rule of the set)."""
    out = []
    for rule in rules if rules is not None else ruleset.rules:
        for ex in rule.spec.examples:
            out.append(run_example(ruleset, rule, ex))
    return out
