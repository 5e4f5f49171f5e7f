"""Helpers for the rule-language tests: compile an expression, load rule text,
run rules over events written in the examples' mini-trace syntax."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from heaplint.engine.errors import ErrorCollection, HeaplintError
from heaplint.engine.events import HeapEvent, TraceInfo
from heaplint.engine.findings import Finding
from heaplint.rules import registry as R
from heaplint.rules.compiler import Compiled, Compiler, Env
from heaplint.rules.diagnostics import SourceText
from heaplint.rules.expr import Expression, parse
from heaplint.rules.minitrace import MiniTrace
from heaplint.rules.ruleset import RuleSet, load_ruleset
from heaplint.rules.runtime import run_events
from heaplint.rules.yamlsrc import load_yaml

ROOT = Path(__file__).resolve().parent.parent
DATA_RULES = ROOT / "tests" / "data_rules"
HOSTILE = ROOT / "tests" / "data_rules_hostile"


def compile_expr(text: str, scope: str = R.EVENT, params: dict | None = None, **env: Any) -> Compiled:
    """Compile one expression (raises the located RuleError)."""
    e = Expression(text)
    typed = {k: v for k, v in (params or {}).items()}
    return Compiler(Env(scope=scope, params=typed, **env)).compile(e, parse(e), expect=None)


def write_rules(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **kw: Any) -> RuleSet:
    """A RuleSet from rule text only (no built-in rules, no config)."""
    path = write_rules(tmp_path, text)
    return load_ruleset([str(path)], no_builtin=True, use_config=False, **kw)


def errors_of(tmp_path: Path, text: str, **kw: Any) -> list[HeaplintError]:
    """The errors loading ``text`` raises ([] when it loads)."""
    try:
        load(tmp_path, text, **kw)
    except ErrorCollection as errs:
        return errs.errors
    except HeaplintError as err:
        return [err]
    return []


def trace(*records: str, facts: dict | None = None) -> tuple[list[HeapEvent], TraceInfo, dict]:
    """Events, TraceInfo and stacks from mini-trace records."""
    import json

    doc = "trace:\n" + "".join(f"  - {json.dumps(r)}\n" for r in records)
    if facts:
        doc += "facts: " + json.dumps(facts) + "\n"
    yfile = load_yaml(SourceText("<test>", doc))
    m = yfile.documents[0]
    mt = MiniTrace(yfile)
    mt.add_items(m["trace"], m.nodes["trace"][1])
    info = mt.info(m.get("facts"), None)
    return mt.events, info, mt.stacks


def run(ruleset: RuleSet, *records: str, facts: dict | None = None, **kw: Any) -> list[Finding]:
    """Findings of the enabled rules over mini-trace records."""
    events, info, stacks = trace(*records, facts=facts)
    findings, _ = run_events(ruleset.enabled, events, info, stacks, **kw)
    return findings
