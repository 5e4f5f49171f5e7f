"""The compact inline trace syntax of rule examples, turned into HeapEvents.

One string per record::

    alloc ADDR SIZE [key=value ...]
    realloc OLD NEW SIZE [...]        (also: realloc OLD -> NEW SIZE)
    free ADDR [...]
    create [HEAP] [...]     destroy [HEAP] [...]
    start [IMAGE] [...]     end [IMAGE] [...]

Keys: ``t`` (time; ``t=+5ms`` is relative to the previous record, the default
is ``+1ms``), ``pid`` (default 1), ``tid`` (1), ``heap`` (0x10), ``source``
(a Source name such as SLOWPATH), ``stack`` (frames separated by ``;``, outermost
last), ``old_size``, ``flags``, ``image``.  Numbers may be sums and products of
decimal, hex, size and duration literals and ``i``, the index inside a
``{repeat: N, events: [...]}`` item.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import Node, ScalarNode

from heaplint.engine.errors import RuleError
from heaplint.engine.events import KIND_BY_NAME, SOURCE_BY_NAME, HeapEvent, Kind, ProcessFacts, TraceInfo
from heaplint.engine.findings import Severity
from heaplint.rules.diagnostics import Collector, did_you_mean, error_at
from heaplint.rules.literals import LiteralError, parse_int, parse_unit
from heaplint.rules.model import Example
from heaplint.rules.yamlsrc import YamlFile, YList, YMap, scalar_offsets

MAX_EVENTS = 100_000
_KINDS = {"create": Kind.HEAP_CREATE, "alloc": Kind.ALLOC, "realloc": Kind.REALLOC, "free": Kind.FREE,
          "destroy": Kind.DESTROY, "start": Kind.PROCESS_START, "end": Kind.PROCESS_END,
          **{name: kind for name, kind in KIND_BY_NAME.items()}}
_POSITIONAL = {Kind.ALLOC: ("address", "size"), Kind.REALLOC: ("old_address", "address", "size"),
               Kind.FREE: ("address",), Kind.HEAP_CREATE: ("heap",), Kind.DESTROY: ("heap",),
               Kind.PROCESS_START: ("image",), Kind.PROCESS_END: ("image",)}
_KEYS = ("t", "pid", "tid", "heap", "source", "stack", "old_size", "flags", "image")
_TERM = re.compile(r"\s*(\*|\+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9]+)?[A-Za-z]*|i)\s*")
DEFAULT_STEP = 1_000_000  # 1 ms between records unless t= says otherwise
_PER_I = object()  # a number that uses i (see MiniTrace._compile)
_STACK = object()  # frames that get a stack id when the record is built


class _Error(Exception):
    def __init__(self, message: str, at: int = 0) -> None:
        super().__init__(message)
        self.at = at


def number(text: str, i: int = 0) -> int:
    """Evaluate a sum of products of literals and ``i`` (no other syntax)."""
    pos, total, product = 0, 0, 1
    expect_operand = True
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m:
            raise _Error(f"cannot read number '{text}'", pos)
        tok = m.group(1)
        pos = m.end()
        if tok in "+*":
            if expect_operand:
                raise _Error(f"misplaced '{tok}' in '{text}'")
            if tok == "+":
                total += product
                product = 1
            expect_operand = True
            continue
        if not expect_operand:
            raise _Error(f"missing '+' or '*' in '{text}'")
        try:
            if tok == "i":
                value = i
            elif tok[:2].lower() == "0x":
                value = parse_int(tok, 16)
            elif tok[-1].isalpha():
                value = parse_unit(tok)[1]
            else:
                value = parse_int(tok)
        except LiteralError as err:
            raise _Error(str(err)) from None
        product *= value
        expect_operand = False
    if expect_operand:
        raise _Error(f"incomplete number '{text}'")
    return total + product


class MiniTrace:
    """Builds the events of one example."""

    def __init__(self, yfile: YamlFile) -> None:
        self.yfile = yfile
        self.events: list[HeapEvent] = []
        self.stacks: dict[int, tuple[str, ...]] = {}
        self._stack_ids: dict[tuple[str, ...], int] = {}
        self.time = 0
        self.pids: dict[int, str | None] = {}
        self.lines: list[str] = []  # the records as written, for documentation
        self._records: dict[str, tuple] = {}  # text -> what _compile read of it

    def error(self, node: Node, message: str, at: int = 0) -> RuleError:
        if isinstance(node, ScalarNode):
            index = scalar_offsets(self.yfile.source, node)(at)
            return error_at("HLR060", message, self.yfile.source, index)
        return self.yfile.error("HLR060", message, node)

    def add_items(self, items: Any, node: Node) -> None:
        if not isinstance(items, YList):
            raise self.error(node, "'trace' must be a list of records (strings) and {repeat: N, events: [...]} items")
        for item, item_node in zip(items, items.nodes):
            if isinstance(item, YMap):
                self._repeat(item, item_node)
                events = item.get("events") or []
                self.lines.append(f"repeat {item.get('repeat')} times: " + " / ".join(map(str, events)))
            elif isinstance(item, str):
                self.add(item, item_node, 0)
                self.lines.append(item)
            else:
                raise self.error(item_node, "a record is a string such as 'alloc 0x1000 16'")

    def _repeat(self, item: YMap, node: Node) -> None:
        unknown = set(item) - {"repeat", "events"}
        if unknown or "repeat" not in item or "events" not in item:
            raise self.error(node, "a repeat item has exactly the keys 'repeat' (a count) and 'events' (a list)")
        count = item["repeat"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_EVENTS:
            raise self.error(item.nodes["repeat"][1], f"'repeat' must be a count from 1 to {MAX_EVENTS}")
        events = item["events"]
        if not isinstance(events, YList) or not all(isinstance(e, str) for e in events):
            raise self.error(item.nodes["events"][1], "'events' must be a list of record strings")
        for i in range(count):
            for text, enode in zip(events, events.nodes):
                self.add(text, enode, i)

    def add(self, text: str, node: Node, i: int) -> None:
        if len(self.events) >= MAX_EVENTS:
            raise self.error(node, f"an example holds at most {MAX_EVENTS:,} records")
        try:
            self.events.append(self._event(text, i))
        except _Error as err:
            raise self.error(node, str(err), err.at) from None

    def _event(self, text: str, i: int) -> HeapEvent:
        # a repeat item builds the same few records many times: each text is
        # read (and checked) once, the first time it is met
        record = self._records.get(text)
        if record is None:
            record = self._records[text] = self._compile(text, i)
        kind, steps, time_step = record
        fields: dict[str, Any] = {"pid": 1, "tid": 1, "heap": 0x10}
        for name, value, tok in steps:
            if value is _PER_I:
                value = number(tok, i)  # checked when compiled: cannot fail
            elif value is _STACK:
                value = self._stack_ids.setdefault(tok, len(self._stack_ids) + 1)
                self.stacks[value] = tok
            fields[name] = value
        if time_step is not None:
            relative, value, tok = time_step
            if value is _PER_I:
                value = number(tok, i)
            self.time = self.time + value if relative else value
        elif self.events:
            self.time += DEFAULT_STEP
        pid = fields["pid"]
        self.pids.setdefault(pid, None)
        if kind in (Kind.PROCESS_START, Kind.PROCESS_END) and "image" in fields:
            self.pids[pid] = fields["image"]
        return HeapEvent(kind=int(kind), time=self.time, index=len(self.events), **fields)

    def _compile(self, text: str, i: int) -> tuple:
        """Read one record's text into (kind, field steps, time step), raising
        :class:`_Error` for what is wrong with it.  A step is (name, value,
        token): the value, or :data:`_PER_I` for a number that uses ``i``
        (computed per record from the token), or :data:`_STACK` for frames
        (the token) that get a stack id when the record is built."""
        tokens = [(m.group(0), m.start()) for m in re.finditer(r"\S+", text)]
        if not tokens:
            raise _Error("empty record")
        word, _ = tokens[0]
        kind = _KINDS.get(word)
        if kind is None:
            raise _Error(f"unknown record kind '{word}'; known: {', '.join(list(_KINDS)[:7])}")
        steps: list[tuple[str, Any, Any]] = []
        positional = [t for t in tokens[1:] if "=" not in t[0] and t[0] != "->"]
        names = _POSITIONAL[kind]
        if len(positional) > len(names):
            raise _Error(f"'{word}' takes {len(names)} value(s): {' '.join(n.upper() for n in names)}", positional[-1][1])
        required = {Kind.ALLOC: 2, Kind.REALLOC: 3, Kind.FREE: 1}.get(kind, 0)
        if len(positional) < required:
            raise _Error(f"'{word}' needs {' '.join(n.upper() for n in names[:required])}")
        for (tok, at), name in zip(positional, names):
            steps.append((name, tok, None) if name == "image" else self._number_step(name, tok, i, at))
        time_step = None
        for tok, at in tokens[1:]:
            if "=" not in tok:
                continue
            key, _, value = tok.partition("=")
            if key not in _KEYS:
                raise _Error(f"unknown key '{key}'; known: {', '.join(_KEYS)}", at)
            vat = at + len(key) + 1
            if key == "t":
                relative = value.startswith("+")
                _, amount, amount_tok = self._number_step("t", value[1:] if relative else value, i, vat)
                time_step = (relative, amount, amount_tok)
            elif key == "source":
                src = SOURCE_BY_NAME.get(value.upper())
                if src is None:
                    raise _Error(f"unknown source '{value}'; known: {', '.join(SOURCE_BY_NAME)}", vat)
                steps.append(("source", int(src), None))
            elif key == "stack":
                steps.append(("stack", _STACK, tuple(f for f in value.split(";") if f)))
            elif key == "image":
                steps.append(("image", value, None))
            else:
                steps.append(self._number_step(key, value, i, vat))
        return kind, steps, time_step

    @classmethod
    def _number_step(cls, name: str, tok: str, i: int, at: int) -> tuple[str, Any, Any]:
        value = cls._num(tok, i, at)  # raises for a bad number, whatever i is
        if any(m.group(1) == "i" for m in _TERM.finditer(tok)):
            return name, _PER_I, tok
        return name, value, None

    @staticmethod
    def _num(text: str, i: int, at: int) -> int:
        try:
            return number(text, i)
        except _Error as err:
            raise _Error(str(err), at) from None

    def info(self, facts: YMap | None, node: Node | None) -> TraceInfo:
        """TraceInfo of the example with its declared coverage facts."""
        allowed = {"attach": bool, "end_seen": bool, "events_lost": int, "buffers_lost": int,
                   "bad_records": int, "image": str}
        facts = facts or YMap()
        for key, value in facts.items():
            want = allowed.get(key)
            if want is None:
                raise self.error(facts.nodes[key][0], f"unknown fact '{key}'; known: {', '.join(allowed)}")
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise self.error(facts.nodes[key][1], f"fact '{key}' must be a {want.__name__}")
        info = TraceInfo(path="<example>", format="example")
        info.events_lost = facts.get("events_lost", 0)
        info.buffers_lost = facts.get("buffers_lost", 0)
        info.bad_records = facts.get("bad_records", 0)
        for pid, image in (self.pids or {1: None}).items():
            info.processes[pid] = ProcessFacts(
                pid, image or facts.get("image", "app.exe"), start_seen=not facts.get("attach", False),
                end_seen=facts.get("end_seen"),
            )
        return info


EXAMPLE_KEYS = ("name", "expect", "severity", "message", "params", "facts", "realloc_mode", "trace")


def parse_examples(yfile: YamlFile, doc: YMap, errors: Collector) -> list[Example]:
    """The ``examples:`` of a rule document (errors collected)."""
    if "examples" not in doc:
        return []
    raw = doc["examples"]
    if not isinstance(raw, YList):
        errors.add(yfile.error("HLR060", "'examples' must be a list", doc.nodes["examples"][1]))
        return []
    out = []
    for n, (ex, node) in enumerate(zip(raw, raw.nodes), 1):
        if not isinstance(ex, YMap):
            errors.add(yfile.error("HLR060", "an example is a mapping with 'expect' and 'trace'", node))
            continue
        try:
            out.append(_example(yfile, ex, node, n))
        except RuleError as err:
            errors.add(err)
    return out


def _example(yfile: YamlFile, ex: YMap, node: Node, n: int) -> Example:
    for key in ex:
        if key not in EXAMPLE_KEYS:
            hint = did_you_mean(key, EXAMPLE_KEYS) or f"; known keys: {', '.join(EXAMPLE_KEYS)}"
            raise yfile.error("HLR060", f"unknown example key '{key}'{hint}", ex.nodes[key][0], len(key))
    if "trace" not in ex or "expect" not in ex:
        raise yfile.error("HLR060", "an example needs 'expect' (findings, 0 = must not fire) and 'trace'", node)
    expect = ex["expect"]
    if not isinstance(expect, int) or isinstance(expect, bool) or expect < 0:
        raise yfile.error("HLR060", "'expect' is the number of findings (0 = must not fire)", ex.nodes["expect"][1])
    trace = MiniTrace(yfile)
    trace.add_items(ex["trace"], ex.nodes["trace"][1])
    facts = ex.get("facts")
    if facts is not None and not isinstance(facts, YMap):
        raise yfile.error("HLR060", "'facts' must be a mapping", ex.nodes["facts"][1])
    info = trace.info(facts, ex.nodes["facts"][1] if facts is not None else None)
    severity = None
    if "severity" in ex:
        try:
            severity = Severity.parse(str(ex["severity"]))
        except ValueError as err:
            raise yfile.error("HLR060", str(err), ex.nodes["severity"][1]) from None
    params = ex.get("params", {})
    if not isinstance(params, dict):
        raise yfile.error("HLR060", "'params' must be a mapping", ex.nodes["params"][1])
    mode = str(ex.get("realloc_mode", "auto"))
    if mode not in ("auto", "standalone", "paired"):
        raise yfile.error("HLR060", "realloc_mode is auto, standalone or paired", ex.nodes["realloc_mode"][1])
    line = node.start_mark.line + 1
    return Example(
        name=str(ex.get("name", f"example {n}")), expect=expect, events=trace.events, info=info, stacks=trace.stacks,
        severity=severity, message=str(ex["message"]) if "message" in ex else None, params=dict(params),
        realloc_mode=mode, source=f"{yfile.source.path}:{line}", lines=trace.lines,
    )
