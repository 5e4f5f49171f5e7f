"""What a rule file declares, before compilation: plain values with locations.

:class:`RuleSpec` is one rule document as loaded (expressions parsed, not yet
compiled); :class:`Param`, :class:`Example` its parts; :class:`Named` (from
the compiler) is a parsed macro or let binding.  Compilation into runnable
closures happens in :mod:`heaplint.rules.rulecompile`, because parameter
overrides from the configuration change what the closures capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import Node

from heaplint.engine.events import HeapEvent, StackTable, TraceInfo
from heaplint.engine.findings import Severity
from heaplint.rules.compiler import Named
from heaplint.rules.expr import Expression
from heaplint.rules.yamlsrc import YamlFile

EVENT_RULE, WINDOW_RULE, END_RULE = "event", "window", "end"
END_SCOPES = ("trace", "process", "heap", "blocks")
DEDUP_MODES = ("per-group", "per-event")


@dataclass(frozen=True)
class Param:
    """A tunable rule parameter: typed default plus documentation."""

    name: str
    type: str
    default: Any
    doc: str = ""
    item_type: str | None = None  # for list params


@dataclass
class Example:
    """An inline mini-trace that must (``expect`` > 0) or must not fire."""

    name: str
    expect: int
    events: list[HeapEvent]
    info: TraceInfo
    stacks: StackTable
    severity: Severity | None = None
    message: str | None = None  # a substring the first finding's message must contain
    params: dict[str, Any] = field(default_factory=dict)
    realloc_mode: str = "auto"
    source: str = ""  # "path:line" of the example, for test reports
    lines: list[str] = field(default_factory=list)  # the trace as written (for docs)


@dataclass
class Location:
    """Where a rule document lives, for errors found after loading."""

    yfile: YamlFile
    node: Node

    def error(self, code: str, message: str, node: Node | None = None):
        return self.yfile.error(code, message, node or self.node)


@dataclass
class RuleSpec:
    """One rule document, validated and parsed."""

    id: str
    name: str
    title: str
    description: str
    severity: Severity
    severity_when: list[tuple[Severity, Named]]
    confidence: str  # "high" or "low"
    confidence_low: Named | None
    tags: tuple[str, ...]
    params: dict[str, Param]
    references: tuple[str, ...]
    enabled: bool
    when: Named
    at_end: bool
    scope: str | None
    by: tuple[str, ...] | None
    lets: dict[str, Named]
    message: Expression | None
    dedup: str
    cooldown: int
    max_groups: int
    examples: list[Example]
    source: str  # path, or "builtin:<file>" for shipped rules
    loc: Location
    #: YAML nodes of keys, for overrides and errors found later
    key_nodes: dict[str, Node] = field(default_factory=dict)
    value_nodes: dict[str, Node] = field(default_factory=dict)

    def item_node(self, key: str, value: str) -> Node | None:
        """The node of list item ``value`` under ``key`` (else the key itself)."""
        node = self.value_nodes.get(key)
        for item in getattr(node, "value", None) or ():
            if getattr(item, "value", None) == value:
                return item
        return self.key_nodes.get(key)


@dataclass
class MacroSpec:
    """``macro: name`` + ``expr:`` (a named condition usable in any rule)."""

    name: str
    named: Named
    description: str
    source: str
    loc: Location


@dataclass
class ListSpec:
    """``list: name`` + ``items:`` (named values usable with ``in``/``like``)."""

    name: str
    items: list[Expression]
    quoted: list[bool]
    description: str
    source: str
    loc: Location


@dataclass
class RuleFiles:
    """Everything loaded from a set of rule files."""

    rules: list[RuleSpec] = field(default_factory=list)
    macros: dict[str, MacroSpec] = field(default_factory=dict)
    lists: dict[str, ListSpec] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    duplicates: list[tuple[Location, str]] = field(default_factory=list)
