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


class MiniJsonlReader:
    """A minimal reader of the canonical JSON Lines format for CLI tests, used
    only while the real reader (engine/readers/canonical.py) is not on this
    branch: header, then alloc/realloc/free/create/destroy/process records."""

    name = "jsonl"
    description = "canonical JSON Lines (test stand-in)"

    def __init__(self, stream, path, options=None):
        from heaplint.engine.events import TraceInfo

        self.stream, self.path = stream, path
        self.info = TraceInfo(path=path, format="jsonl")
        self.stacks: dict = {}

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head.lstrip().startswith(b'{"format":"heaplint-trace"')

    def events(self):
        import json

        from heaplint.engine.events import KIND_BY_NAME, SOURCE_BY_NAME, TIME_UNITS_NS, HeapEvent

        lines = iter(self.stream)
        header = json.loads(next(lines))
        unit = TIME_UNITS_NS[header.get("time_unit", "ns")]

        def num(v):
            return int(v, 16) if isinstance(v, str) else int(v or 0)

        for i, raw in enumerate(lines):
            rec = json.loads(raw)
            yield HeapEvent(
                kind=int(KIND_BY_NAME[rec["kind"]]), time=int(rec["time"]) * unit, pid=int(rec["pid"]),
                tid=int(rec.get("tid", 0)), heap=num(rec.get("heap")), address=num(rec.get("address")),
                size=int(rec.get("size", 0)), old_address=num(rec.get("old_address")), old_size=rec.get("old_size"),
                source=int(SOURCE_BY_NAME[rec.get("source", "UNKNOWN")]), image=rec.get("image"), index=i,
                line=i + 2,
            )


def jsonl(path: Path, *records: dict) -> str:
    """Write a canonical JSONL trace; return its path."""
    import json

    lines = [json.dumps({"format": "heaplint-trace", "version": 1, "time_unit": "ns"}, separators=(",", ":"))]
    lines += [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return str(path)
