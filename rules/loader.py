"""Rule files -> :class:`RuleSpec`, :class:`MacroSpec` and :class:`ListSpec` values.

Every document of every file is checked against the schema (unknown keys with
"did you mean", wrong types, malformed ids), its expressions are parsed, and
every problem is collected: :func:`load_rule_files` raises one
ErrorCollection listing them all (pySigma's collect_errors).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from typing import Any, Iterable

from yaml.nodes import Node, ScalarNode

from heaplint.engine.errors import HeaplintError, RuleError
from heaplint.engine.findings import Severity
from heaplint.engine.units import parse_duration
from heaplint.rules.compiler import Named
from heaplint.rules.diagnostics import Collector, did_you_mean
from heaplint.rules.expr import Expression, parse
from heaplint.rules.minitrace import parse_examples
from heaplint.rules.model import (
    DEDUP_MODES, END_SCOPES, ListSpec, Location, MacroSpec, RuleFiles, RuleSpec,
)
from heaplint.rules.params import parse_params
from heaplint.rules.yamlsrc import YamlFile, YList, YMap, load_yaml, read_source

RULE_KEYS = (
    "id", "name", "title", "description", "severity", "confidence", "tags", "params", "references", "enabled",
    "when", "at", "scope", "by", "let", "message", "dedup", "cooldown", "max_groups", "examples",
)
MACRO_KEYS = ("macro", "expr", "description")
LIST_KEYS = ("list", "items", "description")
ID_RE = re.compile(r"^[A-Z][A-Z0-9_-]{1,31}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
DEFAULT_MAX_GROUPS = 10_000
RULE_SUFFIXES = (".yaml", ".yml")


def builtin_dir() -> str:
    """Folder of the shipped rules."""
    return str(resources.files("heaplint.builtin_rules"))


def rule_files(paths: Iterable[str]) -> list[str]:
    """Expand folders (recursively, sorted) into rule files; keep files as given."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "profiles")
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(RULE_SUFFIXES))
        elif os.path.exists(path):
            out.append(path)
        else:
            raise RuleError("no such rule file or folder", path=path, code="HLR013")
    return out


def load_rule_files(
    paths: Iterable[str], *, builtin: bool = False, into: RuleFiles | None = None, errors: Collector | None = None
) -> RuleFiles:
    """Load every rule file under ``paths`` into ``into``.

    With an ``errors`` collector, problems are added to it (and duplicates are
    left for :func:`check_duplicates`); without, any problem raises one
    ErrorCollection."""
    own = errors is None
    errors = errors if errors is not None else Collector()
    result = into if into is not None else RuleFiles()
    files: list[str] = []
    for p in paths:
        try:
            files.extend(rule_files([p]))
        except HeaplintError as err:
            errors.add(err)
    base = builtin_dir()
    # a file named twice (e.g. `heaplint rules test builtin_rules/` beside the
    # built-in rules) is loaded once, not reported as duplicating itself
    seen = {os.path.realpath(f) for f in result.files}
    for path in files:
        if os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        label = "builtin:" + os.path.relpath(path, base).replace(os.sep, "/") if builtin else path
        try:
            yfile = load_yaml(read_source(path))
        except HeaplintError as err:
            errors.absorb(err)
            continue
        result.files.append(path)
        for doc, node in zip(yfile.documents, yfile.nodes):
            _document(yfile, doc, node, label, result, errors)
    if own:
        check_duplicates(result, errors)
        errors.raise_if_any()
    return result


def _document(yfile: YamlFile, doc: Any, node: Node, label: str, out: RuleFiles, errors: Collector) -> None:
    if not isinstance(doc, YMap):
        errors.add(yfile.error("HLR003", "a rule document must be a mapping (id: ..., name: ..., when: ...)", node))
        return
    loc = Location(yfile, node)
    if "macro" in doc:
        _keys(yfile, doc, MACRO_KEYS, errors)
        name = _ident(yfile, doc, "macro", errors)
        named = _named(yfile, doc, "expr", name or "?", errors, required=True)
        if name and named:
            if name in out.macros:
                out.duplicates.append((loc, f"duplicate macro '{name}' (first defined in {out.macros[name].source})"))
            else:
                out.macros[name] = MacroSpec(name, named, str(doc.get("description", "")), label, loc)
        return
    if "list" in doc:
        _keys(yfile, doc, LIST_KEYS, errors)
        name = _ident(yfile, doc, "list", errors)
        items = doc.get("items")
        if not isinstance(items, YList) or not items:
            errors.add(yfile.error("HLR003", "'items' must be a non-empty list", _vnode(doc, "items") or node))
            return
        exprs, quoted = [], []
        for value, vnode in zip(items, items.nodes):
            if not isinstance(vnode, ScalarNode) or isinstance(value, (YList, YMap)) or value is None:
                errors.add(yfile.error("HLR003", "list items must be scalars", vnode))
                return
            exprs.append(Expression.from_node(yfile.source, vnode))
            quoted.append(vnode.style in ("'", '"'))
        if name:
            if name in out.lists:
                out.duplicates.append((loc, f"duplicate list '{name}' (first defined in {out.lists[name].source})"))
            else:
                out.lists[name] = ListSpec(name, exprs, quoted, str(doc.get("description", "")), label, loc)
        return
    rule = _rule(yfile, doc, node, label, errors)
    if rule is not None:
        out.rules.append(rule)


def _vnode(m: YMap, key: str) -> Node | None:
    pair = m.nodes.get(key)
    return pair[1] if pair else None


def _keys(yfile: YamlFile, doc: YMap, allowed: tuple[str, ...], errors: Collector) -> None:
    for key in doc:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"; known keys: {', '.join(allowed)}"
            errors.add(yfile.error("HLR001", f"unknown key '{key}'{hint}", doc.nodes[key][0], len(key)))


def _ident(yfile: YamlFile, doc: YMap, key: str, errors: Collector) -> str | None:
    value = doc.get(key)
    if not isinstance(value, str) or not IDENT_RE.match(value):
        errors.add(yfile.error("HLR006", f"'{key}' must be a lower_snake_case name", _vnode(doc, key)))
        return None
    return value


def _named(yfile: YamlFile, doc: YMap, key: str, name: str, errors: Collector, required: bool = False) -> Named | None:
    node = _vnode(doc, key)
    if node is None:
        if required:
            errors.add(yfile.error("HLR002", f"missing '{key}'", doc.node))
        return None
    return named_expression(yfile, node, name, errors)


def named_expression(yfile: YamlFile, node: Node, name: str, errors: Collector) -> Named | None:
    """Parse the expression in a YAML scalar node (errors collected)."""
    if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
        errors.add(yfile.error("HLR003", "expected an expression (a string)", node))
        return None
    expr = Expression.from_node(yfile.source, node)
    try:
        return Named(name, expr, parse(expr))
    except RuleError as err:
        errors.add(err)
        return None


def _str(yfile, doc, key, errors, default=None, required=False) -> str | None:
    if key not in doc:
        if required:
            errors.add(yfile.error("HLR002", f"missing required key '{key}'", doc.node))
        return default
    value = doc[key]
    if not isinstance(value, str):
        errors.add(yfile.error("HLR003", f"'{key}' must be a string", _vnode(doc, key)))
        return default
    return value


def _strings(yfile, doc, key, errors) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(yfile.error("HLR003", f"'{key}' must be a list of strings", _vnode(doc, key)))
        return ()
    return tuple(value)


def _severity(yfile: YamlFile, doc: YMap, errors: Collector) -> tuple[Severity, list[tuple[Severity, Named]]]:
    raw = doc.get("severity", "warning")
    node = _vnode(doc, "severity")
    if isinstance(raw, str):
        try:
            return Severity.parse(raw), []
        except ValueError as err:
            errors.add(yfile.error("HLR007", str(err), node))
            return Severity.WARNING, []
    if not isinstance(raw, YMap):
        errors.add(yfile.error("HLR007", "severity is note, warning, error, or a mapping "
                               "{default: LEVEL, error|warning|note: CONDITION}", node))
        return Severity.WARNING, []
    default = Severity.WARNING
    conds: list[tuple[Severity, Named]] = []
    for key in raw:
        knode, vnode = raw.nodes[key]
        if key == "default":
            try:
                default = Severity.parse(str(raw[key]))
            except ValueError as err:
                errors.add(yfile.error("HLR007", str(err), vnode))
            continue
        try:
            level = Severity.parse(key)
        except ValueError:
            errors.add(yfile.error("HLR007", f"unknown severity '{key}' in severity mapping; "
                                   "keys are default, error, warning, note", knode))
            continue
        named = named_expression(yfile, vnode, f"severity.{key}", errors)
        if named is not None:
            conds.append((level, named))
    if "default" not in raw:
        errors.add(yfile.error("HLR007", "a severity mapping needs 'default' (the level when no condition holds)", node))
    conds.sort(key=lambda lc: -int(lc[0]))
    return default, conds


def _rule(yfile: YamlFile, doc: YMap, node: Node, label: str, errors: Collector) -> RuleSpec | None:
    _keys(yfile, doc, RULE_KEYS, errors)
    rid = _str(yfile, doc, "id", errors, required=True)
    name = _str(yfile, doc, "name", errors, required=True)
    if rid is not None and not ID_RE.match(rid):
        errors.add(yfile.error("HLR006", f"rule id '{rid}' must be upper-case letters/digits such as HL001 or ACME-12",
                               _vnode(doc, "id")))
    if name is not None and not NAME_RE.match(name):
        errors.add(yfile.error("HLR006", f"rule name '{name}' must be kebab-case, e.g. double-free", _vnode(doc, "name")))
    severity, severity_when = _severity(yfile, doc, errors)
    confidence, confidence_low = "high", None
    if "confidence" in doc:
        raw = doc["confidence"]
        if raw in ("high", "low"):
            confidence = raw
        elif isinstance(raw, YMap) and set(raw) == {"low"}:
            confidence_low = named_expression(yfile, raw.nodes["low"][1], "confidence.low", errors)
        else:
            errors.add(yfile.error("HLR003", "confidence is high, low, or {low: CONDITION}", _vnode(doc, "confidence")))
    at_end = False
    if "at" in doc:
        if doc["at"] != "end":
            errors.add(yfile.error("HLR008", "'at' can only be 'end'", _vnode(doc, "at")))
        at_end = True
    scope = _str(yfile, doc, "scope", errors)
    if at_end and scope is None:
        errors.add(yfile.error("HLR008", f"an end rule needs 'scope': one of {', '.join(END_SCOPES)}", doc.node))
    elif scope is not None and not at_end:
        errors.add(yfile.error("HLR008", "'scope' belongs to end rules ('at: end')", _vnode(doc, "scope")))
    elif scope is not None and scope not in END_SCOPES:
        errors.add(yfile.error("HLR003", f"unknown scope '{scope}'{did_you_mean(scope, END_SCOPES)}; "
                               f"known: {', '.join(END_SCOPES)}", _vnode(doc, "scope")))
    if "when" not in doc:
        errors.add(yfile.error("HLR008", "a rule needs a trigger: 'when: CONDITION' (per event or window), "
                               "or 'at: end' with 'scope:' and 'when:'", doc.node))
    when = _named(yfile, doc, "when", "when", errors)
    by = None
    if "by" in doc:
        by = _strings(yfile, doc, "by", errors)
        if at_end:
            errors.add(yfile.error("HLR027", "end rules group with '... by KEY' inside aggregates", _vnode(doc, "by")))
    lets: dict[str, Named] = {}
    if "let" in doc:
        raw_lets = doc["let"]
        if not isinstance(raw_lets, YMap):
            errors.add(yfile.error("HLR003", "'let' must be a mapping of name to expression", _vnode(doc, "let")))
        else:
            for lname in raw_lets:
                knode, vnode = raw_lets.nodes[lname]
                if not IDENT_RE.match(lname):
                    errors.add(yfile.error("HLR006", f"let name '{lname}' must be lower_snake_case", knode))
                    continue
                named = named_expression(yfile, vnode, lname, errors)
                if named is not None:
                    lets[lname] = named
    message = None
    if "message" in doc:
        mnode = _vnode(doc, "message")
        if isinstance(doc["message"], str):
            message = Expression.from_node(yfile.source, mnode)
        else:
            errors.add(yfile.error("HLR003", "'message' must be a string template", mnode))
    dedup = _str(yfile, doc, "dedup", errors, default="per-group")
    if dedup not in DEDUP_MODES:
        errors.add(yfile.error("HLR003", f"dedup is one of {', '.join(DEDUP_MODES)}", _vnode(doc, "dedup")))
    cooldown = 0
    if "cooldown" in doc:
        try:
            cooldown = parse_duration(str(doc["cooldown"]))
        except ValueError as err:
            errors.add(yfile.error("HLR028", f"cooldown: {err}", _vnode(doc, "cooldown")))
    max_groups = doc.get("max_groups", DEFAULT_MAX_GROUPS)
    if not isinstance(max_groups, int) or isinstance(max_groups, bool) or max_groups < 1:
        errors.add(yfile.error("HLR003", "max_groups must be a positive integer", _vnode(doc, "max_groups")))
        max_groups = DEFAULT_MAX_GROUPS
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.add(yfile.error("HLR003", "enabled must be true or false", _vnode(doc, "enabled")))
    params = parse_params(yfile, doc["params"], _vnode(doc, "params"), errors) if "params" in doc else {}
    examples = parse_examples(yfile, doc, errors)
    # a rule with schema errors is still compiled, so that its expression
    # errors are reported in the same run (the load fails either way)
    if rid is None or name is None or when is None:
        return None
    return RuleSpec(
        id=rid, name=name, title=_str(yfile, doc, "title", errors, default=name) or name,
        description=_str(yfile, doc, "description", errors, default="") or "", severity=severity,
        severity_when=severity_when, confidence=confidence, confidence_low=confidence_low,
        tags=_strings(yfile, doc, "tags", errors), params=params, references=_strings(yfile, doc, "references", errors),
        enabled=bool(enabled), when=when, at_end=at_end, scope=scope, by=by, lets=lets, message=message,
        dedup=dedup or "per-group", cooldown=cooldown, max_groups=max_groups, examples=examples, source=label,
        loc=Location(yfile, node), key_nodes={k: v[0] for k, v in doc.nodes.items()},
        value_nodes={k: v[1] for k, v in doc.nodes.items()},
    )


def check_duplicates(files: RuleFiles, errors: Collector) -> None:
    seen_id: dict[str, RuleSpec] = {}
    seen_name: dict[str, RuleSpec] = {}
    for rule in files.rules:
        for key, seen, label in ((rule.id, seen_id, "id"), (rule.name, seen_name, "name")):
            first = seen.get(key)
            if first is None:
                seen[key] = rule
                continue
            knode = rule.key_nodes.get(label)
            where = f"{first.loc.yfile.source.path}:{first.loc.node.start_mark.line + 1}"
            errors.add(rule.loc.error("HLR005", f"duplicate rule {label} '{key}' (first defined at {where})", knode))
    for loc, message in files.duplicates:
        errors.add(loc.error("HLR005", message))
