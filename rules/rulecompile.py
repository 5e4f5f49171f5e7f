"""RuleSpec + macros + lists + effective params -> :class:`CompiledRule`.

The trigger decides the scopes: an event rule's ``when`` is compiled in
``event`` scope (with the ``anomaly*`` fields, which make it run once per
anomaly); if it contains aggregates it is a *window rule* and needs one
``over ... by ...``; an end rule compiles in its ``scope`` (``blocks`` rules
aggregate live blocks, their outer expression sees the process).
Severity and confidence conditions compile in ``coverage`` scope: they are
evaluated when findings are reported, once coverage facts are final.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from heaplint.engine.errors import RuleError
from heaplint.engine.findings import RuleMeta, Severity
from heaplint.rules import registry as R
from heaplint.rules import types as T
from heaplint.rules.compiler import AggSpec, Compiled, Compiler, Env, Grouping, Named
from heaplint.rules.diagnostics import Collector, did_you_mean
from heaplint.rules.expr import parse
from heaplint.rules.model import END_RULE, EVENT_RULE, WINDOW_RULE, ListSpec, RuleSpec
from heaplint.rules.template import Template, compile_template

DEFAULT_EVENT_BY = ("heap", "stack")


@dataclass
class CompiledRule:
    """A rule ready to run: closures, index keys and metadata."""

    spec: RuleSpec
    meta: RuleMeta
    trigger: str  # EVENT_RULE, WINDOW_RULE or END_RULE
    scope: str | None
    params: dict[str, Any]
    when: Compiled
    severity: Severity
    severity_when: list[tuple[Severity, Callable[[Any], Any]]]
    confidence: str
    confidence_low: Callable[[Any], Any] | None
    message: Template | None
    evidence: list[tuple[str, str, Callable[[Any], Any]]]
    by: tuple[str, ...] = ()
    by_getters: list[Callable[[Any], Any]] = field(default_factory=list)
    aggs: list[AggSpec] = field(default_factory=list)
    grouping: Grouping | None = None
    uses_anomaly: bool = False
    kinds: frozenset | None = None
    anomalies: frozenset | None = None
    #: canonical text of the let bindings and of the severity/confidence conditions (for explain)
    texts: dict[str, str] = field(default_factory=dict)
    #: the rule reads the block an event ended (a field of registry.READS_ENDED, also in by:)
    reads_ended: bool = True
    #: compiles ``when`` again for events of one kind (see :meth:`for_kind`)
    specialiser: Callable[[int], tuple[Compiled, list[AggSpec]]] | None = field(default=None, repr=False, compare=False)
    _by_kind: dict[int, tuple[Compiled, list[AggSpec]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def never(self) -> bool:
        """The condition is constant false (e.g. an opt-in limit left at 0)."""
        return self.when.const and not self.when.value

    def for_kind(self, kind: int) -> tuple[Compiled, list[AggSpec]]:
        """``when`` and the aggregates compiled for events of ``kind`` only:
        ``kind`` is a constant there, so tests of it fold away (``kind ==
        alloc and size > 1MiB`` is ``size > 1MiB`` on allocs, false on the
        others).  Computed once per rule and kind; the rule's own closures
        when specialising is not possible."""
        got = self._by_kind.get(kind)
        if got is None:
            got = (self.when, self.aggs)
            if self.specialiser is not None and self.trigger != END_RULE and not self.uses_anomaly:
                when, aggs = self.specialiser(kind)
                same = [(a.name, a.pos, a.text) for a in aggs] == [(a.name, a.pos, a.text) for a in self.aggs]
                if same and when.type == self.when.type:
                    got = (when, aggs)
            self._by_kind[kind] = got
        return got

    def severity_for(self, ctx: Any) -> Severity:
        for level, cond in self.severity_when:
            if cond(ctx):
                return level
        return self.severity

    def confidence_for(self, ctx: Any) -> str:
        if self.confidence_low is not None:
            return "low" if self.confidence_low(ctx) else "high"
        return self.confidence


def compile_lists(lists: Mapping[str, ListSpec], errors: Collector) -> dict[str, Compiled]:
    """Named lists as constant list values (quoted items are strings)."""
    out: dict[str, Compiled] = {}
    comp = Compiler(Env(scope=R.EVENT))
    for name, spec in lists.items():
        items: list[Compiled] = []
        try:
            for expr, quoted in zip(spec.items, spec.quoted):
                if quoted:
                    from heaplint.rules.compiler import constant

                    items.append(constant(T.STRING, expr.text))
                    continue
                c = comp.compile(expr, parse(expr), expect=None)
                if not c.const:
                    raise expr.error("HLR024", f"list items must be constants; '{expr.text}' is not")
                items.append(c)
            type_ = items[0].type
            for it, expr in zip(items[1:], spec.items[1:]):
                unified = T.unify(type_, it.type)
                if unified is None:
                    raise expr.error("HLR024", f"list '{name}' mixes {type_} and {it.type}")
                type_ = unified
        except RuleError as err:
            errors.add(err)
            continue
        values = tuple(it.value for it in items)
        text = name
        out[name] = Compiled(lambda c, v=values: v, T.list_of(type_), text, 9, True, values)
    return out


def compile_rule(
    spec: RuleSpec,
    macros: Mapping[str, Named],
    lists: Mapping[str, Compiled],
    params: Mapping[str, Any],
    severity: Severity | None,
    enabled: bool,
    errors: Collector,
) -> CompiledRule | None:
    """Compile one rule; errors are collected (None when there were any)."""
    before = len(errors.errors)
    typed = {name: (p.type, params.get(name, p.default)) for name, p in spec.params.items()}
    scope = (spec.scope or "process") if spec.at_end else None
    env = _env(spec, typed, macros, lists)
    comp = Compiler(env)
    when = message = None
    evidence: list = []
    texts: dict[str, str] = {}
    try:
        when = comp.compile(spec.when.expr, spec.when.tree, what="when:")
    except RuleError as err:
        errors.add(err)
    try:  # compiled even after an error in when:, to report every problem at once
        message = compile_template(comp, spec.message) if spec.message is not None else None
    except RuleError as err:
        errors.add(err)
    for name, named in spec.lets.items():
        try:
            c = comp.compile(named.expr, named.tree, expect=None)
            evidence.append((name, c.type, c.fn))
            texts[f"let {name}"] = c.text
        except RuleError as err:
            if not any(e is err or str(e) == str(err) for e in errors.errors):
                errors.add(err)
    if when is None:
        return None
    trigger = END_RULE if spec.at_end else (WINDOW_RULE if env.aggs else EVENT_RULE)
    if trigger == WINDOW_RULE:
        if env.grouping is None or env.grouping.over is None:
            errors.add(spec.when.expr.error("HLR027", "aggregates need a window: '... over 10s by heap'"))
        if env.uses_anomaly:
            errors.add(spec.when.expr.error("HLR027", "anomaly fields cannot be used in window rules; "
                                            "count anomalies with has_anomaly(...) inside the aggregate"))
        if spec.by is not None:
            errors.add(spec.loc.error("HLR027", "window rules group with '... over 10s by KEY', not a 'by:' key",
                                      spec.key_nodes.get("by")))
    by: tuple[str, ...] = ()
    getters: list[Callable[[Any], Any]] = []
    if trigger == EVENT_RULE:
        by = tuple(spec.by) if spec.by is not None else DEFAULT_EVENT_BY
        getters = _event_by(spec, by, env.uses_anomaly, errors)
    elif env.grouping is not None:
        by, getters = env.grouping.by, env.grouping.keys
    severity_when, confidence_low = _coverage_conditions(spec, typed, macros, lists, errors, texts)
    if len(errors.errors) > before:
        return None
    if trigger == WINDOW_RULE:
        kinds = None
        if any(a.where is not None for a in env.aggs):
            kinds = frozenset()
            for a in env.aggs:
                if a.where is not None:
                    kinds = None if (kinds is None or a.kinds is None) else kinds | a.kinds
    else:
        kinds = when.kinds
    meta = RuleMeta(spec.id, spec.name, spec.title, spec.description, severity or spec.severity, spec.tags,
                    spec.source, enabled)
    return CompiledRule(
        spec=spec, meta=meta, trigger=trigger, scope=scope, params={k: v for k, (_, v) in typed.items()}, when=when,
        severity=severity or spec.severity, severity_when=[] if severity else severity_when,
        confidence=spec.confidence, confidence_low=confidence_low, message=message, evidence=evidence,
        by=by, by_getters=getters, aggs=list(env.aggs), grouping=env.grouping, uses_anomaly=env.uses_anomaly,
        kinds=kinds, anomalies=when.anomalies if env.uses_anomaly else None, texts=texts,
        reads_ended=bool(R.READS_ENDED & (env.fields | set(by))),
        specialiser=None if spec.at_end else _specialiser(spec, typed, macros, lists, when, list(env.aggs)),
    )


def _env(spec: RuleSpec, typed: Mapping[str, tuple[str, Any]], macros: Mapping[str, Named],
         lists: Mapping[str, Compiled], known_kind: int | None = None) -> Env:
    """The names and scopes of a rule's expressions."""
    if spec.at_end:
        if spec.scope == "blocks":
            return Env(R.PROCESS, typed, macros, lists, spec.lets, agg_mode="blocks", inner_scope=R.BLOCK)
        return Env(spec.scope or "process", typed, macros, lists, spec.lets)
    return Env(R.EVENT, typed, macros, lists, spec.lets, agg_mode="window", inner_scope=R.EVENT, allow_anomaly=True,
               known_kind=known_kind)


def _specialiser(spec, typed, macros, lists, when: Compiled, aggs: list[AggSpec]):
    def specialise(kind: int) -> tuple[Compiled, list[AggSpec]]:
        env = _env(spec, typed, macros, lists, kind)
        comp = Compiler(env)
        try:  # in compile_rule's order, so that the aggregates take the same positions
            out = comp.compile(spec.when.expr, spec.when.tree, what="when:")
            if spec.message is not None:
                compile_template(comp, spec.message)
            for named in spec.lets.values():
                comp.compile(named.expr, named.tree, expect=None)
            return out, env.aggs
        except RuleError:  # pragma: no cover - it compiled in general; keep the general closures
            return when, aggs

    return specialise


def _event_by(spec: RuleSpec, by: tuple[str, ...], anomaly: bool, errors: Collector) -> list[Callable[[Any], Any]]:
    getters = []
    for name in by:
        fdef = R.FIELDS.get(name)
        getter = None
        if fdef is not None:
            getter = fdef.getter(R.EVENT) or (fdef.getters.get(R.ANOMALY) if anomaly else None)
        if getter is None:
            usable = [f.name for f in R.FIELD_LIST if f.getter(R.EVENT) is not None]
            errors.add(spec.loc.error("HLR027", f"cannot group findings by '{name}'{did_you_mean(name, usable)}",
                                      spec.item_node("by", name)))
            continue
        getters.append(getter)
    return getters


def _coverage_conditions(spec, typed, macros, lists, errors, texts):
    """Severity and confidence conditions, compiled in coverage scope."""
    comp = Compiler(Env(R.COVERAGE, typed, macros, lists))
    severity_when = []
    for level, named in spec.severity_when:
        try:
            c = comp.compile(named.expr, named.tree, what=f"severity '{level.label}' condition")
            severity_when.append((level, c.fn))
            texts[f"{level.label} when"] = c.text
        except RuleError as err:
            errors.add(err)
    confidence_low = None
    if spec.confidence_low is not None:
        try:
            named = spec.confidence_low
            c = comp.compile(named.expr, named.tree, what="confidence condition")
            confidence_low = c.fn
            texts["low confidence when"] = c.text
        except RuleError as err:
            errors.add(err)
    return severity_when, confidence_low
