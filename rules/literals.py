"""Literal values: parsing (sizes, durations, numbers), canonical text, and
formatting of values in messages (format specs)."""

from __future__ import annotations

import re
from typing import Any

from heaplint.engine.units import DURATION_UNITS_NS, SIZE_UNITS, format_duration, format_size
from heaplint.rules import types as T

MAX_DIGITS = 30
MAX_INT = 1 << 64

#: canonical spelling of size units, largest first (for canonical text)
_SIZE_CANON = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
_DURATION_CANON = [("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000),
                   ("us", 1_000), ("ns", 1)]
_UNIT_NUMBER = re.compile(r"^([0-9][0-9_]*(?:\.[0-9]+)?)([A-Za-z]+)$")
SIZE_UNIT_NAMES = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
DURATION_UNIT_NAMES = ", ".join(DURATION_UNITS_NS)


class LiteralError(ValueError):
    """A literal that cannot be read; the message is user-facing."""


def parse_int(text: str, base: int = 10) -> int:
    digits = text.replace("_", "")
    if base == 16:
        digits = digits[2:]
    if len(digits) > MAX_DIGITS:
        raise LiteralError(f"number with {len(digits)} digits; at most {MAX_DIGITS} are allowed")
    try:
        value = int(digits, base)
    except ValueError:
        raise LiteralError(f"malformed number '{text}'") from None
    if value >= MAX_INT:
        raise LiteralError("number does not fit in 64 bits")
    return value


def parse_float(text: str) -> float:
    if len(text) > MAX_DIGITS * 2:
        raise LiteralError("number too long")
    return float(text.replace("_", ""))


def parse_unit(text: str) -> tuple[str, int]:
    """``"64KiB"`` -> (size, 65536); ``"10s"`` -> (duration, 10**10)."""
    m = _UNIT_NUMBER.match(text)
    if not m:
        raise LiteralError(f"malformed number '{text}'")
    number, unit = m.groups()
    if unit in DURATION_UNITS_NS:
        type_, factor = T.DURATION, DURATION_UNITS_NS[unit]
    elif unit.upper() in SIZE_UNITS:
        type_, factor = T.SIZE, SIZE_UNITS[unit.upper()]
    else:
        raise LiteralError(
            f"unknown unit '{unit}' in '{text}'; sizes use {SIZE_UNIT_NAMES}, durations use {DURATION_UNIT_NAMES}"
        )
    value = parse_float(number) * factor if "." in number else parse_int(number) * factor
    if value >= MAX_INT:
        raise LiteralError(f"'{text}' does not fit in 64 bits")
    return type_, int(value)


def parse_value(text: str) -> tuple[str, Any]:
    """Type and value of a parameter given as text (CLI or an untyped YAML string):
    a size or duration with unit, an int, a hex number, a float, true/false, else a string."""
    s = text.strip()
    if s in ("true", "false"):
        return T.BOOL, s == "true"
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F_]+", s):
            return T.INT, parse_int(s, 16)
        if re.fullmatch(r"-?[0-9][0-9_]*", s):
            return T.INT, int(s.replace("_", "")) if len(s) <= MAX_DIGITS else parse_int(s)
        if re.fullmatch(r"-?[0-9][0-9_]*\.[0-9]+", s):
            return T.FLOAT, parse_float(s)
        if _UNIT_NUMBER.match(s):
            return parse_unit(s)
    except LiteralError:
        raise
    return T.STRING, text


def canonical(type_: str, value: Any, enum_names: dict[str, dict[Any, str]] | None = None) -> str:
    """The canonical source text of a constant."""
    if type_ == T.BOOL:
        return "true" if value else "false"
    if type_ == T.STRING:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if type_ in T.ENUMS and enum_names is not None:
        return enum_names[type_].get(value, str(value))
    if T.is_list(type_):
        item = T.item_type(type_)
        return "[" + ", ".join(canonical(item, v, enum_names) for v in value) + "]"
    if type_ == T.ADDRESS and isinstance(value, int):
        return f"0x{value:x}"
    if type_ == T.SIZE and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and value > 0:
            for unit, factor in _SIZE_CANON:
                if value % factor == 0:
                    return f"{value // factor}{unit}"
        return f"{value}B" if value >= 0 else str(value)
    if type_ == T.DURATION and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and value > 0:
            for unit, factor in _DURATION_CANON:
                if value % factor == 0:
                    return f"{value // factor}{unit}"
        return f"{value}ns" if value >= 0 else str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


_SPEC = re.compile(r"^(?:x|d|size|duration|hex|,|[,_]?(?:\.[0-9]{1,2})?[fge%]?)$")


def check_spec(spec: str) -> bool:
    """Whether ``spec`` is a supported message format spec."""
    return bool(_SPEC.match(spec))


def format_value(type_: str, value: Any, spec: str, enum_names: dict[str, dict[Any, str]]) -> str:
    """Render a value for a message (``spec`` already checked)."""
    if value is None:
        return "-"
    if spec in ("x", "hex"):
        return f"0x{int(value):x}"
    if spec == "d":
        return str(int(value))
    if spec == "size":
        return format_size(value)
    if spec == "duration":
        return format_duration(value)
    if spec:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return str(value)
    if type_ in T.ENUMS:
        return enum_names[type_].get(value, str(value))
    if type_ == T.BOOL:
        return "true" if value else "false"
    if type_ == T.ADDRESS:
        return f"0x{int(value):x}"
    if type_ == T.SIZE:
        return format_size(value)
    if type_ == T.DURATION:
        return format_duration(value)
    if type_ == T.FLOAT:
        return f"{value:.3g}"
    if T.is_list(type_):
        return ", ".join(format_value(T.item_type(type_), v, "", enum_names) for v in value)
    return str(value)
