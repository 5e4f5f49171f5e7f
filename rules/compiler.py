"""Expressions -> typed Python closures (parse once, never walk a tree per event).

:class:`Compiler` turns a lark tree into a :class:`Compiled` value: a closure
``fn(ctx)``, its type, its canonical text (for ``rules explain``), whether it
is a constant (constants are folded), and which event kinds / anomaly kinds can
make it true (the runtime indexes rules by those).  Every name is resolved
against the registry, the rule's ``$params``, ``let:`` bindings, macros and
lists; every operator is type-checked.  Errors are located RuleErrors.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lark import Token, Tree

from heaplint.engine.errors import RuleError
from heaplint.rules import registry as R
from heaplint.rules import types as T
from heaplint.rules.diagnostics import did_you_mean
from heaplint.rules.fastcompare import EVENT_ITEMS  # noqa: F401 - also imported from here
from heaplint.rules.inline import src_fn
from heaplint.rules.expr import Expression
from heaplint.rules.literals import LiteralError, canonical, parse_float, parse_int, parse_unit
from heaplint.rules.operators import build_call_or_aggregate, compile_operator

Fn = Callable[[Any], Any]
#: most syntax-tree nodes a rule may compile to, macros and lets expanded (a
#: chain of macros that each use the previous one twice would otherwise grow
#: exponentially, at compile time and at every event)
MAX_COST = 20_000

#: names people reach for that the language spells differently
_SPELLINGS = {"op": "kind", "operation": "kind", "addr": "address", "len": "size", "length": "size",
              "thread": "tid", "process": "pid", "tag": "kind", "null": "0", "none": "0", "True": "true",
              "False": "false"}


@dataclass(slots=True)
class Compiled:
    """A compiled (sub)expression."""

    fn: Fn
    type: str
    text: str
    prec: int = 9
    const: bool = False
    value: Any = None
    kinds: frozenset | None = None  # event kinds that can make it true; None = any
    anomalies: frozenset | None = None  # anomaly kinds that can make it true; None = any
    ref: str | None = None  # the field name when the expression is a bare field
    chain: tuple | None = None  # ("and" | "or", operand closures) of a flattened and/or chain
    ev_index: int | None = None  # a bare event field that is item ev_index of the HeapEvent tuple
    #: a window aggregate read in place (fastcompare): ("total", p) count/sum,
    #: ("rate", p, cell), ("share", p, q) avg or count/count
    win: tuple | None = None

    def paren(self, prec: int) -> str:
        return self.text if self.prec >= prec else f"({self.text})"


def constant(type_: str, value: Any, text: str | None = None) -> Compiled:
    return Compiled(lambda c: value, type_, text or canonical(type_, value, R.ENUM_NAMES), 9, True, value)


@dataclass
class Named:
    """A macro or a let binding: a parsed expression compiled where it is used."""

    name: str
    expr: Expression
    tree: Tree


@dataclass
class AggSpec:
    """One aggregate of a window or block rule (a slot in the group's values)."""

    slot: int
    name: str
    text: str
    value: Fn | None
    where: Fn | None
    kinds: frozenset | None
    #: first position of this aggregate in a window group's totals (avg takes two)
    pos: int = 0
    #: window rules: ``[events-per-second factor]`` of rate(), set once the
    #: window length is known (the aggregate is compiled before its ``over``)
    rate_cell: list = field(default_factory=lambda: [0.0])
    #: where folded to a constant for the kind being specialised (None: not constant)
    where_const: bool | None = None
    #: canonical text of the where (aggregates with the same where test it once)
    where_text: str | None = None
    #: the where's operands as an and-chain of Compiled values (a window step tests a where that extends another once)
    where_terms: tuple = ()


@dataclass
class Grouping:
    """The one ``over ... by ...`` (or ``by ...``) of a rule."""

    over: int | None
    by: tuple[str, ...]
    keys: list[Fn]
    text: str  # "over 10s by heap, stack" as written


@dataclass
class Env:
    """What names mean while compiling one rule's expressions."""

    scope: str
    params: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    macros: Mapping[str, Named] = field(default_factory=dict)
    lists: Mapping[str, Compiled] = field(default_factory=dict)
    lets: Mapping[str, Named] = field(default_factory=dict)
    agg_mode: str | None = None  # None, "window" (event-time windows) or "blocks" (end rules)
    inner_scope: str | None = None  # scope of aggregate arguments
    allow_anomaly: bool = False
    #: compile for events of this one kind only: ``kind`` is then a constant and
    #: conditions fold further (runtime closures only; see specialise_kind)
    known_kind: int | None = None
    # results
    aggs: list[AggSpec] = field(default_factory=list)
    grouping: Grouping | None = None
    uses_anomaly: bool = False
    fields: set = field(default_factory=set)  # every field name the expressions mention


class Compiler:
    """Compiles expressions of one rule in one :class:`Env`."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.expr: Expression | None = None
        self.scope = env.scope
        self.in_aggregate = False
        self._expanding: list[str] = []
        self._cache: dict[tuple[str, str], tuple[Compiled, int]] = {}
        self.cost = 0  # nodes compiled so far, expansions counted in full

    # --- entry points -----------------------------------------------------------
    def compile(self, expr: Expression, tree: Tree, expect: str | None = T.BOOL, what: str = "expression") -> Compiled:
        """Compile a parsed expression; ``expect`` checks the result type."""
        saved = self.expr
        self.expr = expr
        try:
            out = self.node(tree)
            if expect is not None and out.type != expect:
                raise self.error("HLR024", f"{what} must be a {expect}, not a {out.type}", tree)
            return out
        finally:
            self.expr = saved

    def error(self, code: str, message: str, node: Tree | Token | None, width: int | None = None) -> RuleError:
        pos = 0
        if isinstance(node, Token):
            pos = node.start_pos or 0
            width = width or len(str(node))
        elif isinstance(node, Tree) and not node.meta.empty:
            pos = node.meta.start_pos
            width = width or max(1, min(node.meta.end_pos - node.meta.start_pos, 60))
        assert self.expr is not None
        return self.expr.error(code, message, pos, width or 1)

    # --- dispatch -----------------------------------------------------------------
    def node(self, tree: Tree | Token) -> Compiled:
        if isinstance(tree, Token):  # pragma: no cover - the grammar wraps every token
            raise self.error("HLR020", f"unexpected '{tree}'", tree)
        self._charge(1, tree)
        handler = getattr(self, "_" + tree.data, None)
        if handler is not None:
            return handler(tree)
        return compile_operator(self, tree)

    def _charge(self, amount: int, where: Tree | Token | None) -> None:
        self.cost += amount
        if self.cost > MAX_COST:
            raise self.error("HLR028", f"rule too large: more than {MAX_COST:,} expression nodes once macros and "
                             "let bindings are expanded", where)

    # --- literals -----------------------------------------------------------------
    def _literal(self, tree: Tree, make: Callable[[str], tuple[str, Any]]) -> Compiled:
        tok = tree.children[0]
        try:
            type_, value = make(str(tok))
        except (LiteralError, ValueError) as err:
            raise self.error("HLR028", str(err), tok) from None
        return constant(type_, value)

    def _int_lit(self, tree: Tree) -> Compiled:
        return self._literal(tree, lambda s: (T.INT, parse_int(s)))

    def _hex_lit(self, tree: Tree) -> Compiled:
        return self._literal(tree, lambda s: (T.INT, parse_int(s, 16)))

    def _float_lit(self, tree: Tree) -> Compiled:
        return self._literal(tree, lambda s: (T.FLOAT, parse_float(s)))

    def _unit_lit(self, tree: Tree) -> Compiled:
        return self._literal(tree, parse_unit)

    def _string_lit(self, tree: Tree) -> Compiled:
        raw = str(tree.children[0])[1:-1]
        out, i = [], 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                nxt = raw[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        return constant(T.STRING, "".join(out))

    def _list_lit(self, tree: Tree) -> Compiled:
        items = [self.node(ch) for ch in tree.children if ch is not None]
        if not items:
            raise self.error("HLR024", "empty list", tree)
        item_type = items[0].type
        for it in items[1:]:
            unified = T.unify(item_type, it.type)
            if unified is None:
                raise self.error("HLR024", f"list mixes {item_type} and {it.type}", tree)
            item_type = unified
        if T.is_list(item_type):
            raise self.error("HLR024", "lists cannot contain lists", tree)
        text = "[" + ", ".join(it.text for it in items) + "]"
        if all(it.const for it in items):
            values = tuple(it.value for it in items)
            return Compiled(lambda c: values, T.list_of(item_type), text, 9, True, values)
        fns = [it.fn for it in items]
        return Compiled(lambda c: tuple(f(c) for f in fns), T.list_of(item_type), text)

    # --- names --------------------------------------------------------------------------
    def _param(self, tree: Tree) -> Compiled:
        tok = tree.children[0]
        name = str(tok)[1:]
        if name not in self.env.params:
            known = list(self.env.params)
            hint = did_you_mean(name, known) or (f"; declared: {', '.join('$' + k for k in known)}" if known else
                                                 "; the rule declares no params")
            raise self.error("HLR023", f"unknown parameter '${name}'{hint}", tok)
        type_, value = self.env.params[name]
        return constant(type_, value, "$" + name)

    def _name(self, tree: Tree) -> Compiled:
        tok = tree.children[0]
        name = str(tok)
        env = self.env
        if name in R.FIELDS:
            env.fields.add(name)
        if name in env.lets:
            return self._expand(env.lets[name], "let binding", tok)
        if name in env.macros:
            return self._expand(env.macros[name], "macro", tok)
        if name in env.lists:
            return env.lists[name]
        grouping = env.grouping
        if grouping is not None and not self.in_aggregate and name in grouping.by:
            fdef = R.FIELDS[name]
            if fdef.getter(self.scope) is None:
                i = grouping.by.index(name)
                return Compiled(lambda c: c.key[i], fdef.type, name, ref=name)
        fdef = R.FIELDS.get(name)
        if fdef is not None and env.known_kind is not None and self.scope == R.EVENT:
            known = _known_kind_field(name, env.known_kind)
            if known is not None:
                return known
        if fdef is not None:
            getter = fdef.getter(self.scope)
            if getter is None and self.scope == R.EVENT and env.allow_anomaly and not self.in_aggregate:
                getter = fdef.getters.get(R.ANOMALY)
                if getter is not None:
                    env.uses_anomaly = True
            if getter is None:
                where = ", ".join(s for s in R.SCOPES if fdef.getter(s) is not None)
                raise self.error("HLR026", f"field '{name}' is not available in {self.scope} scope (available in: {where})", tok)
            index = EVENT_ITEMS.get(name) if getter is fdef.getters.get(R.EVENT) else None
            return Compiled(getter, fdef.type, name, ref=name, ev_index=index)
        cdef = R.CONSTANTS.get(name)
        if cdef is not None:
            return constant(cdef.type, cdef.value, name)
        if name in R.FUNCTIONS or name in R.AGGREGATES:
            raise self.error("HLR021", f"'{name}' is a function: call it as {name}(...)", tok)
        candidates = [*R.FIELDS, *R.CONSTANTS, *env.lets, *env.macros, *env.lists]
        hint = f" (did you mean '{_SPELLINGS[name]}'?)" if name in _SPELLINGS else did_you_mean(name, candidates)
        raise self.error("HLR021", f"unknown name '{name}'{hint}", tok)

    def _expand(self, named: Named, what: str, tok: Token) -> Compiled:
        """A macro or let reference: compiled once per scope, charged in full
        at every use (each use runs it)."""
        key = (what + ":" + named.name, self.scope + ("/agg" if self.in_aggregate else ""))
        cached = self._cache.get(key)
        if cached is not None:
            self._charge(cached[1], tok)
            return cached[0]
        if named.name in self._expanding:
            chain = " -> ".join([*self._expanding, named.name])
            raise self.error("HLR030", f"{what} '{named.name}' refers to itself ({chain})", None)
        self._expanding.append(named.name)
        before = self.cost
        try:
            inner = self.compile(named.expr, named.tree, expect=None)
        finally:
            self._expanding.pop()
        out = Compiled(inner.fn, inner.type, named.name, 9, inner.const, inner.value, inner.kinds, inner.anomalies,
                       ev_index=inner.ev_index, win=inner.win)  # read in place like the expression itself
        self._cache[key] = (out, self.cost - before)
        return out

    # --- calls, windows ---------------------------------------------------------------
    def _call(self, tree: Tree) -> Compiled:
        return build_call_or_aggregate(self, tree)

    def _over(self, tree: Tree) -> Compiled:
        return self._window(tree, tree.children[0], tree.children[1], tree.children[2] if len(tree.children) > 2 else None)

    def _grouped(self, tree: Tree) -> Compiled:
        return self._window(tree, tree.children[0], None, tree.children[1])

    def _window(self, tree: Tree, body: Tree, over: Tree | None, by: Tree | None) -> Compiled:
        env = self.env
        if env.agg_mode is None or self.in_aggregate:
            raise self.error("HLR027", "'over'/'by' belong to window rules (event rules with aggregates) "
                             "and to end rules with scope: blocks", tree)
        if env.agg_mode == "window" and over is None:
            raise self.error("HLR027", "a window needs a length: '... over 10s by ...'", tree)
        if env.agg_mode == "blocks" and over is not None:
            raise self.error("HLR027", "end rules aggregate the live blocks at the end: use 'by', not 'over'", over)
        inner = self.node(body)
        length = None
        length_text = ""
        if over is not None:
            dur = self.node(over)
            if dur.type in T.UNITLESS:
                raise self.error("HLR024", "window length needs a unit, e.g. 10s", over)
            if dur.type != T.DURATION or not dur.const or not isinstance(dur.value, int):
                raise self.error("HLR027", f"window length must be a constant duration, not {dur.type}", over)
            if dur.value <= 0:
                raise self.error("HLR027", "window length must be positive", over)
            length, length_text = dur.value, dur.text
        names, keys = self._by_keys(by)
        window = " ".join(p for p in (f"over {length_text}" if length else "",
                                      f"by {', '.join(names)}" if names else "") if p)
        text = f"{inner.paren(6)} {window}" if window else inner.text
        grouping = Grouping(length, tuple(names), keys, window)
        if env.grouping is None:
            env.grouping = grouping
        elif (env.grouping.over, env.grouping.by) != (grouping.over, grouping.by):
            raise self.error("HLR027", "all windowed parts of a rule must share one window; "
                             f"the first was '{env.grouping.text}'", tree)
        return Compiled(inner.fn, inner.type, text, 5, inner.const, inner.value, win=inner.win, ev_index=inner.ev_index)

    def _by_keys(self, by: Tree | None) -> tuple[list[str], list[Fn]]:
        names: list[str] = []
        keys: list[Fn] = []
        if by is None:
            return names, keys
        scope = self.env.inner_scope or self.scope
        for tok in by.children:
            name = str(tok)
            fdef = R.FIELDS.get(name)
            getter = fdef.getter(scope) if fdef is not None else None
            if getter is None:
                usable = [f.name for f in R.FIELD_LIST if f.getter(scope) is not None and f.type != T.BOOL]
                hint = did_you_mean(name, usable) or f"; usable: {', '.join(usable)}"
                raise self.error("HLR027", f"cannot group by '{name}'{hint}", tok)
            if name in names:
                raise self.error("HLR027", f"'{name}' is listed twice after 'by'", tok)
            names.append(name)
            keys.append(getter)
        return names, keys


_REALLOC = 3


def _known_kind_field(name: str, kind: int) -> Compiled | None:
    """``kind`` and ``moving`` for events of one known kind (see Env.known_kind)."""
    if name == "kind":
        return Compiled(lambda c: kind, T.KIND, name, 9, True, kind, ref=name)
    if name == "moving":
        if kind != _REALLOC:
            return Compiled(lambda c: False, T.BOOL, name, 9, True, False, ref=name)
        return Compiled(src_fn("c.ev[{0}] != c.ev[{1}]", EVENT_ITEMS["address"], EVENT_ITEMS["old_address"]),
                        T.BOOL, name, ref=name)
    return None


def fold(compiler: Compiler, tree: Tree, out: Compiled, parts: list[Compiled]) -> Compiled:
    """Evaluate ``out`` at compile time when every part is constant."""
    if parts and all(p.const for p in parts):
        try:
            value = out.fn(None)
        except (ArithmeticError, ValueError, TypeError) as err:
            raise compiler.error("HLR024", f"cannot evaluate constant expression: {err}", tree) from None
        out.const, out.value = True, value
        out.fn = lambda c: value
    return out


def op_fn(op: str) -> Callable[[Any, Any], Any]:
    """Python operator for a comparison symbol."""
    return {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}[op]
