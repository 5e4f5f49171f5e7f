"""Project configuration: ``heaplint.yaml`` or ``[tool.heaplint]`` in pyproject.toml.

Keys (all optional)::

    extends: default            # a built-in profile, a path, or a list of them
    rules: [ci/heap-rules/]     # extra rule files or folders (relative to the config file)
    builtin: true               # load the built-in rules
    disable: [HL012, "perf-*"]  # globs over rule id, name or tag
    enable: [HL014]
    severity: {HL004: error}    # per rule id or name
    params:                     # per rule id or name
      HL002: {threshold: 100}
      HL003.min_slope: 4KiB     # the flat spelling works too

Layers apply in order: each ``extends`` entry (recursively), then the file
itself; the command line (``--enable``/``--disable``/``--param``) comes last.
Within a layer, ``disable`` applies before ``enable``.  The configuration is
found by looking upward from the current directory, or given with ``--config``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from yaml.nodes import Node

from heaplint.engine.errors import HeaplintError, RuleError
from heaplint.rules.diagnostics import Collector, SourceText, did_you_mean, error_at
from heaplint.rules.yamlsrc import YamlFile, YList, YMap, load_yaml, read_source

CONFIG_KEYS = ("extends", "rules", "builtin", "disable", "enable", "severity", "params")
CONFIG_NAMES = ("heaplint.yaml", ".heaplint.yaml", "heaplint.yml")
MAX_EXTENDS_DEPTH = 10


@dataclass
class Setting:
    """One configured action with the place it came from (for errors)."""

    kind: str  # "enable", "disable", "severity", "param"
    target: str  # a glob (enable/disable) or a rule id/name
    value: Any = None
    name: str | None = None  # parameter name
    where: tuple[YamlFile | None, Node | None, str] = (None, None, "")

    def error(self, code: str, message: str) -> RuleError:
        yfile, node, path = self.where
        if yfile is not None and node is not None:
            return yfile.error(code, message, node)
        return RuleError(message, path=path or None, code=code)


@dataclass
class Config:
    """The merged configuration."""

    rule_paths: list[str] = field(default_factory=list)
    builtin: bool = True
    settings: list[Setting] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def profiles_dir() -> str:
    return str(resources.files("heaplint.builtin_rules").joinpath("profiles"))


def available_profiles() -> list[str]:
    d = profiles_dir()
    if not os.path.isdir(d):
        return []
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".yaml"))


def find_config(start: str | None = None) -> str | None:
    """The nearest config file from ``start`` (default: cwd) upward."""
    d = os.path.abspath(start or os.getcwd())
    while True:
        for name in CONFIG_NAMES:
            p = os.path.join(d, name)
            if os.path.isfile(p):
                return p
        pp = os.path.join(d, "pyproject.toml")
        if os.path.isfile(pp) and _has_tool_section(pp):
            return pp
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _has_tool_section(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return any(line.strip().startswith("[tool.heaplint") for line in f)
    except OSError:
        return False


def load_config(path: str | None = None, *, discover: bool = True) -> Config:
    """Load ``path`` (or the discovered config); an empty Config when none.
    Raises ErrorCollection with every problem found."""
    errors = Collector()
    config = Config()
    if path is None and discover:
        path = find_config()
    if path is not None:
        if not os.path.isfile(path):
            raise RuleError("no such config file", path=path, code="HLR070")
        _layer(path, config, errors, [], None)
    errors.raise_if_any()
    return config


def _read(path: str) -> tuple[Any, YamlFile | None, SourceText]:
    """The config mapping of a YAML file or of pyproject's [tool.heaplint]."""
    source = read_source(path)
    if path.endswith(".toml"):
        try:
            import tomllib  # type: ignore[import-not-found]
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError:
                raise RuleError("reading pyproject.toml needs Python 3.11 or the tomli package; "
                                "use heaplint.yaml instead", path=path, code="HLR070") from None
        try:
            data = tomllib.loads(source.text)
        except tomllib.TOMLDecodeError as err:
            raise RuleError(f"invalid TOML: {err}", path=path, code="HLR070") from err
        return data.get("tool", {}).get("heaplint", {}), None, source
    yfile = load_yaml(source)
    docs = [d for d in yfile.documents if d is not None]
    if len(docs) > 1:
        raise yfile.error("HLR070", "a config file holds one YAML document", yfile.nodes[1])
    return (docs[0] if docs else YMap()), yfile, source


def _layer(ref: str, config: Config, errors: Collector, chain: list[str], origin: Setting | None) -> None:
    path = os.path.abspath(ref)
    if path in chain:
        err = f"extends cycle: {' -> '.join(os.path.basename(p) for p in [*chain, path])}"
        errors.add(origin.error("HLR070", err) if origin else RuleError(err, path=ref, code="HLR070"))
        return
    if len(chain) >= MAX_EXTENDS_DEPTH:
        errors.add(RuleError(f"extends nested deeper than {MAX_EXTENDS_DEPTH}", path=ref, code="HLR070"))
        return
    try:
        data, yfile, source = _read(path)
    except HeaplintError as err:
        errors.absorb(err)
        return
    config.files.append(path)
    base = os.path.dirname(path)

    def where(node: Node | None) -> tuple[YamlFile | None, Node | None, str]:
        return (yfile, node, path)

    def bad(code: str, message: str, node: Node | None) -> None:
        if yfile is not None and node is not None:
            errors.add(yfile.error(code, message, node))
        else:
            errors.add(error_at(code, message, source, _toml_index(source)))

    if not isinstance(data, dict):
        bad("HLR070", "the configuration must be a mapping", getattr(data, "node", None))
        return
    nodes = getattr(data, "nodes", {})
    knode = lambda k: nodes[k][0] if k in nodes else None  # noqa: E731
    vnode = lambda k: nodes[k][1] if k in nodes else None  # noqa: E731
    for key in data:
        if key not in CONFIG_KEYS:
            hint = did_you_mean(key, CONFIG_KEYS) or f"; known keys: {', '.join(CONFIG_KEYS)}"
            bad("HLR001", f"unknown config key '{key}'{hint}", knode(key))
    extends = data.get("extends", [])
    if not isinstance(extends, (str, list)):
        bad("HLR070", "'extends' is a profile name or path, or a list of them", vnode("extends"))
        extends = []
    for i, entry in enumerate([extends] if isinstance(extends, str) else extends):
        node = extends.nodes[i] if isinstance(extends, YList) else vnode("extends")
        if not isinstance(entry, str):
            bad("HLR070", "extends entries are profile names or paths", node)
            continue
        setting = Setting("extends", entry, where=where(node))
        if "/" in entry or "\\" in entry or entry.endswith((".yaml", ".yml", ".toml")):
            _layer(os.path.join(base, entry), config, errors, [*chain, path], setting)
            continue
        profile = os.path.join(profiles_dir(), entry + ".yaml")
        if not os.path.isfile(profile):
            known = available_profiles()
            bad("HLR070", f"unknown profile '{entry}'{did_you_mean(entry, known)}; "
                f"built-in profiles: {', '.join(known) or 'none'}", node)
            continue
        _layer(profile, config, errors, [*chain, path], setting)
    rules = data.get("rules", [])
    if isinstance(rules, str):
        rules = [rules]
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        bad("HLR070", "'rules' is a list of rule files or folders", vnode("rules"))
    else:
        config.rule_paths.extend(os.path.join(base, r) for r in rules)
    if "builtin" in data:
        if isinstance(data["builtin"], bool):
            config.builtin = data["builtin"]
        else:
            bad("HLR070", "'builtin' is true or false", vnode("builtin"))
    for kind in ("disable", "enable"):
        items = data.get(kind, [])
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            bad("HLR070", f"'{kind}' is a list of rule ids, names or tag globs", vnode(kind))
            continue
        item_nodes = items.nodes if isinstance(items, YList) else [vnode(kind)] * len(items)
        config.settings.extend(Setting(kind, x, where=where(n)) for x, n in zip(items, item_nodes))
    severity = data.get("severity", {})
    if not isinstance(severity, dict):
        bad("HLR070", "'severity' maps rule ids or names to note, warning or error", vnode("severity"))
    else:
        snodes = getattr(severity, "nodes", {})
        for rule, level in severity.items():
            config.settings.append(Setting("severity", str(rule), level, where=where(snodes.get(rule, (None, None))[1])))
    params = data.get("params", {})
    if not isinstance(params, dict):
        bad("HLR070", "'params' maps rule ids or names to {param: value}", vnode("params"))
        return
    pnodes = getattr(params, "nodes", {})
    for rule, values in params.items():
        node = pnodes.get(rule, (None, None))
        if "." in str(rule) and not isinstance(values, dict):
            rid, _, name = str(rule).rpartition(".")
            config.settings.append(Setting("param", rid, values, name, where=where(node[1])))
            continue
        if not isinstance(values, dict):
            bad("HLR070", f"params of '{rule}' must be a mapping of parameter to value", node[1])
            continue
        vnodes = getattr(values, "nodes", {})
        for name, value in values.items():
            config.settings.append(Setting("param", str(rule), value, str(name),
                                           where=where(vnodes.get(name, (None, None))[1])))


def _toml_index(source: SourceText) -> int:
    """Offset of the [tool.heaplint] header (TOML values carry no positions)."""
    i = source.text.find("[tool.heaplint")
    return max(i, 0)
