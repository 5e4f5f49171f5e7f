"""Rule parameters: declaration parsing and value coercion (defaults, config
and ``--param`` overrides share one coercion so they agree)."""

from __future__ import annotations

import math
from typing import Any

from yaml.nodes import Node

from heaplint.engine.errors import RuleError
from heaplint.rules import types as T
from heaplint.rules.diagnostics import Collector
from heaplint.rules.literals import LiteralError, parse_int, parse_unit, parse_value
from heaplint.rules.model import Param
from heaplint.rules.yamlsrc import YamlFile, YList, YMap, value_node

_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def coerce(type_: str, raw: Any, item_type: str | None = None) -> Any:
    """``raw`` (a YAML value or command-line text) as a value of ``type_``.

    Raises ValueError with a user-facing message."""
    if type_ == "list" or T.is_list(type_):
        items = raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
        it = item_type or (T.item_type(type_) if T.is_list(type_) else T.STRING)
        return tuple(coerce(it, x) for x in items)
    if isinstance(raw, bool):
        if type_ == T.BOOL:
            return raw
        raise ValueError(f"expected a {type_}, got a boolean")
    if isinstance(raw, (list, dict)):
        raise ValueError(f"expected a {type_}, got a {'list' if isinstance(raw, list) else 'mapping'}")
    try:
        if type_ == T.BOOL:
            if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
                return raw.strip().lower() == "true"
            raise ValueError("expected true or false")
        if type_ == T.STRING:
            return str(raw)
        if type_ == T.FLOAT:
            value = float(raw) if isinstance(raw, (int, float)) else float(str(raw).replace("_", ""))
            if not math.isfinite(value):  # NaN compares false with everything: the rule would never fire
                raise ValueError(f"'{raw}' is not a finite number")
            return value
        if type_ in (T.INT, T.ADDRESS):
            if isinstance(raw, int):
                return raw
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            s = str(raw).strip()
            return parse_int(s, 16) if s.lower().startswith("0x") else parse_int(s)
        if type_ == T.SIZE:
            if isinstance(raw, int):
                return raw
            s = str(raw).strip()
            if s.isdigit():
                return parse_int(s)
            t, v = parse_unit(s)
            if t != T.SIZE:
                raise ValueError(f"'{s}' is a {t}, expected a size such as 64KiB")
            return v
        if type_ == T.DURATION:
            if isinstance(raw, (int, float)) and raw == 0:
                return 0
            t, v = parse_unit(str(raw).strip())
            if t != T.DURATION:
                raise ValueError(f"'{raw}' is a {t}, expected a duration such as 10s")
            return v
    except LiteralError as err:
        raise ValueError(str(err)) from None
    except ValueError as err:
        msg = str(err)
        if msg.startswith("invalid literal") or msg.startswith("could not convert"):
            raise ValueError(f"'{raw}' is not a valid {type_}") from None
        raise
    raise ValueError(f"unknown parameter type '{type_}'")


def infer(raw: Any) -> tuple[str, Any]:
    """Type and value of an untyped default: YAML numbers and booleans keep
    their type; text with a unit is a size or duration; lists take their
    items' type."""
    if isinstance(raw, bool):
        return T.BOOL, raw
    if isinstance(raw, int):
        return T.INT, raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError(f"'{raw}' is not a finite number")
        return T.FLOAT, raw
    if isinstance(raw, str):
        try:
            return parse_value(raw)
        except LiteralError as err:
            raise ValueError(str(err)) from None
    raise ValueError("a parameter default must be a number, size, duration, string, boolean or list")


def parse_params(yfile: YamlFile, m: Any, node: Node, errors: Collector) -> dict[str, Param]:
    """The ``params:`` mapping of a rule."""
    out: dict[str, Param] = {}
    if not isinstance(m, YMap):
        errors.add(yfile.error("HLR003", "'params' must be a mapping of name to default", node))
        return out
    for name, raw in m.items():
        knode = m.nodes[name][0]
        vnode = m.nodes[name][1]
        if not name or not set(name) <= _NAME_OK or name[0].isdigit():
            errors.add(yfile.error("HLR040", f"parameter name '{name}' must be lower_snake_case", knode))
            continue
        try:
            out[name] = _param(name, raw)
        except ValueError as err:
            errors.add(yfile.error("HLR040", f"parameter '{name}': {err}", vnode))
        except RuleError as err:  # pragma: no cover - defensive
            errors.add(err)
    return out


def _param(name: str, raw: Any) -> Param:
    if isinstance(raw, YMap):
        unknown = set(raw) - {"type", "default", "doc"}
        if unknown:
            raise ValueError(f"unknown key '{sorted(unknown)[0]}' (known: type, default, doc)")
        if "default" not in raw:
            raise ValueError("a parameter mapping needs 'default'")
        doc = str(raw.get("doc", ""))
        if "type" in raw:
            type_ = str(raw["type"])
            item = None
            if type_.startswith("list[") and type_.endswith("]"):
                item, type_ = type_[5:-1], "list"
            if type_ not in T.PARAM_TYPES or (item is not None and item not in T.PARAM_TYPES[:-1]):
                raise ValueError(f"unknown type '{raw['type']}'; known: {', '.join(T.PARAM_TYPES)}, list[TYPE]")
            if type_ == "list":
                item = item or T.STRING
                return Param(name, T.list_of(item), coerce("list", raw["default"], item), doc, item)
            return Param(name, type_, coerce(type_, raw["default"]), doc)
        raw, doc_ = raw["default"], doc
    else:
        doc_ = ""
    if isinstance(raw, YList):
        if not raw:
            raise ValueError("an empty list default needs an explicit type, e.g. {type: list[string], default: []}")
        types = {infer(x)[0] for x in raw}
        if len(types) != 1:
            raise ValueError("list items must all have one type")
        item = types.pop()
        return Param(name, T.list_of(item), tuple(infer(x)[1] for x in raw), doc_, item)
    type_, value = infer(raw)
    return Param(name, type_, value, doc_)


def node_of(m: YMap, key: str) -> Node | None:
    return value_node(m, key)
