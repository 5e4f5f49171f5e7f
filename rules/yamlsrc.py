"""Safe YAML loading that remembers where every value came from.

Rule and config files are data, so they are loaded in two passes that never
construct anything but plain values:

1. The YAML *event* stream (an iterative parser, immune to deep recursion) is
   checked against safety limits: nesting depth, number of anchors, total node
   count after alias expansion (alias bombs), scalar length, and tags (only the
   core scalar/collection tags; ``!!python/object`` and friends are refused).
2. The document graph is composed with the safe composer and converted to
   :class:`YMap` / :class:`YList` / plain scalars.  Mappings keep their key and
   value nodes, so every later error can point at a line and column.  Duplicate
   keys are errors; merge keys (``<<``) and dates are refused.

:func:`scalar_offsets` maps a character of a scalar's *value* back to its place
in the file for every scalar style (plain, quoted, literal ``|``, folded ``>``),
which is how an error inside an expression gets a file position.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from heaplint.engine.errors import RuleError
from heaplint.rules.diagnostics import SourceText, error_at

MAX_FILE_BYTES = 1 << 20  # 1 MiB: the biggest built-in rule file is a few KiB
MAX_DEPTH = 40
MAX_ANCHORS = 100
MAX_NODES = 100_000  # per document, aliases expanded
MAX_SCALAR = 64 * 1024

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")} | {"!"}
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}


class YMap(dict):
    """A mapping that remembers its node and, per key, the key and value nodes."""

    node: MappingNode
    nodes: dict[str, tuple[Node, Node]]


class YList(list):
    """A sequence that remembers its node and its item nodes."""

    node: SequenceNode
    nodes: list[Node]


class YamlFile:
    """A loaded YAML file: its text (for positions) and its documents."""

    def __init__(self, source: SourceText, documents: list[Any], nodes: list[Node]) -> None:
        self.source = source
        self.documents = documents
        self.nodes = nodes

    def node_index(self, node: Node) -> int:
        """Character offset of a node's start."""
        return self.source.index(node.start_mark.line, node.start_mark.column)

    def error(self, code: str, message: str, node: Node | None, width: int = 1) -> RuleError:
        """A located error at ``node`` (or the file when None)."""
        if node is None:
            return error_at(code, message, self.source, 0, width=width)
        return error_at(code, message, self.source, self.node_index(node), width=width)


def read_source(path: str, max_bytes: int = MAX_FILE_BYTES) -> SourceText:
    """Read a UTF-8 file as text, refusing files above ``max_bytes``."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise error_at(
                "HLR012", f"file is {size:,} bytes; rule and config files are limited to {max_bytes:,}",
                SourceText(path, ""), 0,
            )
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise RuleError(f"cannot read: {err.strerror or err}", path=path, code="HLR013") from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        prefix = data[: err.start].decode("utf-8", "replace")
        source = SourceText(path, prefix)
        raise error_at("HLR013", f"not UTF-8 text ({err.reason})", source, len(prefix)) from err
    return SourceText(path, text)


def load_yaml(source: SourceText) -> YamlFile:
    """Check limits, compose and convert every document of ``source``."""
    if len(source.text) > MAX_FILE_BYTES:
        raise error_at("HLR012", f"text is longer than {MAX_FILE_BYTES:,} characters", source, 0)
    _check_events(source)
    try:
        roots = [n for n in yaml.compose_all(source.text, Loader=_Loader) if n is not None]
    except yaml.MarkedYAMLError as err:
        raise _yaml_error(source, err) from err
    except yaml.YAMLError as err:  # pragma: no cover - unmarked errors are rare
        raise error_at("HLR010", f"YAML error: {err}", source, 0) from err
    yfile = YamlFile(source, [], roots)
    converter = _Converter(yfile)
    yfile.documents = [converter.convert(root, 0) for root in roots]
    return yfile


def _yaml_error(source: SourceText, err: yaml.MarkedYAMLError) -> RuleError:
    mark = err.problem_mark or err.context_mark
    problem = err.problem or err.context or "malformed YAML"
    index = source.index(mark.line, mark.column) if mark is not None else 0
    return error_at("HLR010", f"YAML syntax error: {problem}", source, index)


def _check_events(source: SourceText) -> None:
    """The safety pass over the YAML event stream (see the module docstring)."""
    depth = 0
    anchors: dict[str, int] = {}  # anchor -> node count of its subtree
    open_: list[list] = []  # per open collection: [anchor, node count]
    seen: set[str] = set()
    total = 0
    try:
        for ev in yaml.parse(source.text, Loader=_Loader):
            kind = type(ev)
            mark = ev.start_mark
            if kind is yaml.DocumentStartEvent:
                total = 0
                continue
            if kind is yaml.AliasEvent:
                size = anchors.get(ev.anchor)
                if size is None:
                    what = "recursive alias" if any(o[0] == ev.anchor for o in open_) else "undefined alias"
                    raise _limit(source, mark, "HLR010", f"{what} '*{ev.anchor}'")
                total += size
                if open_:
                    open_[-1][1] += size
                if total > MAX_NODES:
                    raise _limit(source, mark, "HLR012", f"alias expansion exceeds {MAX_NODES:,} nodes (alias bomb?)")
                continue
            if kind not in (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent):
                if kind in (yaml.SequenceEndEvent, yaml.MappingEndEvent):
                    depth -= 1
                    anchor, size = open_.pop()
                    if anchor is not None:
                        anchors[anchor] = size
                    if open_:
                        open_[-1][1] += size
                continue
            tag = ev.tag
            if tag is not None and tag not in _ALLOWED_TAGS:
                shown = tag.replace(_CORE, "!!")
                raise _limit(source, mark, "HLR011", f"YAML tag '{shown}' is not allowed: rule files are plain data")
            if ev.anchor is not None:
                seen.add(ev.anchor)
                if len(seen) > MAX_ANCHORS:
                    raise _limit(source, mark, "HLR012", f"more than {MAX_ANCHORS} anchors")
            total += 1
            if total > MAX_NODES:
                raise _limit(source, mark, "HLR012", f"document has more than {MAX_NODES:,} nodes")
            if kind is yaml.ScalarEvent:
                if len(ev.value) > MAX_SCALAR:
                    raise _limit(source, mark, "HLR012", f"scalar of {len(ev.value):,} characters; the limit is {MAX_SCALAR:,}")
                if ev.anchor is not None:
                    anchors[ev.anchor] = 1
                if open_:
                    open_[-1][1] += 1
                continue
            depth += 1
            if depth > MAX_DEPTH:
                raise _limit(source, mark, "HLR012", f"nesting deeper than {MAX_DEPTH} levels")
            open_.append([ev.anchor, 1])
    except yaml.MarkedYAMLError as err:
        raise _yaml_error(source, err) from err


def _limit(source: SourceText, mark: Any, code: str, message: str) -> RuleError:
    return error_at(code, message, source, source.index(mark.line, mark.column))


class _Converter:
    """Composed nodes -> YMap / YList / scalars, checking keys and tags."""

    def __init__(self, yfile: YamlFile) -> None:
        self.yfile = yfile
        self.constructor = SafeConstructor()

    def convert(self, node: Node, depth: int) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            out = YList(self.convert(item, depth + 1) for item in node.value)
            out.node = node
            out.nodes = list(node.value)
            return out
        if isinstance(node, MappingNode):
            result = YMap()
            result.node = node
            result.nodes = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise self.yfile.error("HLR003", "mapping keys must be plain strings", key_node)
                if key_node.tag == _CORE + "merge":
                    raise self.yfile.error("HLR011", "merge keys ('<<') are not supported; write the keys out", key_node)
                key = key_node.value
                if key in result:
                    first = result.nodes[key][0].start_mark
                    raise self.yfile.error(
                        "HLR004", f"duplicate key '{key}' (first defined at line {first.line + 1})", key_node, len(key)
                    )
                result.nodes[key] = (key_node, value_node)
                result[key] = self.convert(value_node, depth + 1)
            return result
        raise self.yfile.error("HLR011", "unsupported YAML node", node)  # pragma: no cover

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            shown = tag.replace(_CORE, "!!")
            hint = " (quote dates and times)" if tag.endswith("timestamp") else ""
            raise self.yfile.error("HLR011", f"unsupported YAML value type '{shown}'{hint}", node)
        try:
            return self.constructor.construct_object(node)
        except (ConstructorError, ValueError, OverflowError) as err:
            raise self.yfile.error("HLR028", f"cannot read value: {err}", node) from err


def scalar_offsets(source: SourceText, node: ScalarNode) -> Callable[[int], int]:
    """A function mapping an offset in ``node.value`` to an offset in the file.

    The value of a YAML scalar differs from its text in the file by quoting,
    escapes, indentation and line folding, but its non-blank characters appear
    in the file in the same order.  So each value character is aligned with the
    next identical file character (blanks with the current position).  Cost is
    linear in the scalar's length, computed once per scalar and cached."""
    start = source.index(node.start_mark.line, node.start_mark.column)
    end = source.index(node.end_mark.line, node.end_mark.column)
    text = source.text
    p = start
    if node.style in ('"', "'"):
        p += 1
    elif node.style in ("|", ">"):
        nl = text.find("\n", start, end)
        p = nl + 1 if nl >= 0 else start
    positions: list[int] = []
    value = node.value
    for ch in value:
        if ch in " \t\n":
            positions.append(p)
            if p < end and text[p] in " \t\r\n":
                p += 1
            continue
        while p < end and text[p] in " \t\r\n":
            p += 1
        q = text.find(ch, p, end)
        if q < 0 or q - p > 16:  # an escape produced it: stay near the current spot
            positions.append(p)
            continue
        positions.append(q)
        p = q + 1
    positions.append(p)

    def offset(i: int) -> int:
        return positions[min(max(i, 0), len(positions) - 1)]

    return offset


def value_node(m: YMap, key: str) -> Node | None:
    """The value node of ``key`` in a loaded mapping (None when absent)."""
    pair = getattr(m, "nodes", {}).get(key)
    return pair[1] if pair else None


def key_node(m: YMap, key: str) -> Node | None:
    """The key node of ``key`` in a loaded mapping (None when absent)."""
    pair = getattr(m, "nodes", {}).get(key)
    return pair[0] if pair else None
