"""A loaded, configured and compiled set of rules, reusable across traces.

:func:`load_ruleset` is the one entry point: built-in rules, rule paths from
the configuration and the command line, ``extends`` layers, enable/disable,
severity and parameter overrides.  Every problem of every file is collected
into one ErrorCollection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from heaplint.engine.errors import HeaplintError, RuleError, UsageError
from heaplint.engine.findings import RuleMeta, Severity
from heaplint.rules.config import Config, Setting, load_config, profiles_dir
from heaplint.rules.diagnostics import Collector, did_you_mean
from heaplint.rules.globs import compile_glob
from heaplint.rules.loader import builtin_dir, check_duplicates, load_rule_files
from heaplint.rules.model import RuleFiles, RuleSpec
from heaplint.rules.params import coerce
from heaplint.rules.rulecompile import CompiledRule, compile_lists, compile_rule


@dataclass
class RuleSet:
    """Compiled rules (enabled or not) plus what they were loaded from."""

    rules: list[CompiledRule]
    files: RuleFiles
    config: Config = field(default_factory=Config)
    macros: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def enabled(self) -> list[CompiledRule]:
        return [r for r in self.rules if r.meta.enabled]

    @property
    def meta(self) -> list[RuleMeta]:
        """RuleMeta of every rule (``enabled`` says which run)."""
        return [r.meta for r in self.rules]

    def get(self, ref: str) -> CompiledRule:
        """A rule by id or name; a UsageError naming close matches otherwise."""
        for r in self.rules:
            if ref in (r.spec.id, r.spec.name):
                return r
        names = [r.spec.id for r in self.rules] + [r.spec.name for r in self.rules]
        raise UsageError(f"no rule '{ref}'{did_you_mean(ref, names)}")


def _cli_settings(enable: Iterable[str], disable: Iterable[str], params: Mapping[str, str],
                  severity: Mapping[str, str]) -> list[Setting]:
    out = [Setting("disable", p, where=(None, None, "--disable")) for p in disable]
    out += [Setting("enable", p, where=(None, None, "--enable")) for p in enable]
    for key, value in params.items():
        rule, dot, name = key.rpartition(".")
        if not dot or not rule or not name:
            raise UsageError(f"--param {key}={value}: write RULE.NAME=VALUE, e.g. HL002.threshold=100")
        out.append(Setting("param", rule, value, name, where=(None, None, "--param")))
    out += [Setting("severity", r, v, where=(None, None, "--severity")) for r, v in severity.items()]
    return out


def load_ruleset(
    rule_paths: Sequence[str] = (),
    *,
    no_builtin: bool = False,
    config_path: str | None = None,
    use_config: bool = True,
    enable: Iterable[str] = (),
    disable: Iterable[str] = (),
    params: Mapping[str, str] | None = None,
    severity: Mapping[str, str] | None = None,
) -> RuleSet:
    """Load, configure and compile rules; raise ErrorCollection on any problem."""
    errors = Collector()
    config = Config()
    if use_config or config_path is not None:
        try:
            config = load_config(config_path, discover=use_config)
        except HeaplintError as err:
            errors.absorb(err)
    files = RuleFiles()
    if config.builtin and not no_builtin:
        load_rule_files([builtin_dir()], builtin=True, into=files, errors=errors)
    load_rule_files([*config.rule_paths, *rule_paths], into=files, errors=errors)
    check_duplicates(files, errors)
    settings = list(config.settings)
    try:
        settings += _cli_settings(enable, disable, params or {}, severity or {})
    except UsageError as err:
        errors.add(err)
    lists = compile_lists(files.lists, errors)
    macros = {name: m.named for name, m in files.macros.items()}
    enabled, overrides, levels = _apply(files.rules, settings, errors)
    compiled: list[CompiledRule] = []
    for spec in files.rules:
        rule = compile_rule(spec, macros, lists, overrides.get(spec.id, {}), levels.get(spec.id),
                            enabled[spec.id], errors)
        if rule is not None:
            compiled.append(rule)
    errors.raise_if_any()
    return RuleSet(compiled, files, config, macros, lists, overrides)


def _matches(spec: RuleSpec, pattern: str) -> bool:
    m = compile_glob(pattern)
    return m(spec.id) or m(spec.name) or any(m(t) for t in spec.tags)


def _apply(rules: list[RuleSpec], settings: list[Setting], errors: Collector
           ) -> tuple[dict[str, bool], dict[str, dict[str, Any]], dict[str, Severity]]:
    """Enabled flags, coerced parameter overrides and severity overrides per rule id."""
    enabled = {r.id: r.enabled for r in rules}
    overrides: dict[str, dict[str, Any]] = {}
    levels: dict[str, Severity] = {}
    by_ref = {r.id: r for r in rules} | {r.name: r for r in rules}
    refs = [*[r.id for r in rules], *[r.name for r in rules]]
    tags = sorted({t for r in rules for t in r.tags})
    # within a layer, disable before enable: settings arrive grouped that way per layer
    for s in settings:
        if s.kind in ("enable", "disable"):
            try:
                hit = [r for r in rules if _matches(r, s.target)]
            except ValueError as err:
                errors.add(s.error("HLR070", str(err)))
                continue
            if not hit and not any(ch in s.target for ch in "*?"):
                # a glob may legitimately match nothing; a plain name is a typo
                hint = did_you_mean(s.target, [*refs, *tags])
                errors.add(_located(s, "HLR070", f"'{s.target}' matches no rule id, name or tag{hint}"))
                continue
            for r in hit:
                enabled[r.id] = s.kind == "enable"
            continue
        rule = by_ref.get(s.target)
        if rule is None:
            if _from_builtin_profile(s):
                continue  # a built-in profile tunes built-in rules, which --no-builtin leaves out
            errors.add(_located(s, "HLR041", f"no rule '{s.target}'{did_you_mean(s.target, refs)}"))
            continue
        if s.kind == "severity":
            try:
                levels[rule.id] = Severity.parse(str(s.value))
            except ValueError as err:
                errors.add(_located(s, "HLR041", f"severity of {rule.id}: {err}"))
            continue
        param = rule.params.get(s.name or "")
        if param is None:
            known = ", ".join(rule.params) or "none"
            errors.add(_located(s, "HLR041", f"rule {rule.id} has no parameter '{s.name}'"
                                f"{did_you_mean(s.name or '', rule.params)}; its parameters: {known}"))
            continue
        try:
            overrides.setdefault(rule.id, {})[param.name] = coerce(param.type, s.value, param.item_type)
        except ValueError as err:
            errors.add(_located(s, "HLR041", f"{rule.id}.{param.name} ({param.type}): {err}"))
    return enabled, overrides, levels


def _from_builtin_profile(s: Setting) -> bool:
    import os

    path = s.where[2]
    return bool(path) and os.path.dirname(os.path.realpath(path)) == os.path.realpath(profiles_dir())


def _located(s: Setting, code: str, message: str) -> HeaplintError:
    if s.where[0] is None:
        if s.where[2].startswith("--"):
            return UsageError(message, path=s.where[2], code=code)
        return RuleError(message, path=s.where[2] or None, code=code)
    return s.error(code, message)
