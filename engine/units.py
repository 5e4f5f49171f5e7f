"""Parsing and formatting of sizes and durations (shared by CLI, rules, reports)."""

from __future__ import annotations

import re

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
DURATION_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """``"64KiB"`` -> 65536; a bare number is bytes.  ValueError when malformed."""
    m = _NUMBER_UNIT.match(text)
    if not m:
        raise ValueError(f"not a size: '{text}' (examples: 4096, 64KiB, 1.5MiB)")
    number, unit = m.groups()
    factor = SIZE_UNITS.get(unit.upper() if unit else "B")
    if factor is None:
        raise ValueError(f"unknown size unit '{unit}' in '{text}'; known: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB")
    return int(float(number) * factor) if "." in number else int(number) * factor


def parse_duration(text: str) -> int:
    """``"10ms"`` -> 10_000_000 (ns).  A unit is required.  ValueError when malformed."""
    m = _NUMBER_UNIT.match(text)
    if not m or not m.group(2):
        raise ValueError(f"not a duration: '{text}' (examples: 10ms, 5s, 2m)")
    number, unit = m.groups()
    factor = DURATION_UNITS_NS.get(unit)
    if factor is None:
        raise ValueError(f"unknown duration unit '{unit}' in '{text}'; known: {', '.join(DURATION_UNITS_NS)}")
    return int(float(number) * factor) if "." in number else int(number) * factor


def format_size(n: int | float) -> str:
    """Human-readable bytes: ``1536`` -> ``"1.5 KiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_duration(ns: int | float) -> str:
    """Human-readable duration from nanoseconds: ``1_500_000`` -> ``"1.5 ms"``."""
    ns = float(ns)
    if abs(ns) < 1_000:
        return f"{int(ns)} ns"
    if abs(ns) < 1_000_000:
        return f"{ns / 1_000:.1f} us"
    if abs(ns) < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    if abs(ns) < 60_000_000_000:
        return f"{ns / 1_000_000_000:.2f} s"
    return f"{ns / 60_000_000_000:.1f} min"
