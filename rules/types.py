"""The types of the rule expression language and how they combine.

Types are short strings (``"size"``, ``"list[string]"``) so that error messages
and documentation can show them as they are.  Numbers carry a *unit*:
``size`` (bytes), ``duration`` (nanoseconds of trace time), ``address``; and
``int`` / ``float`` are unitless.  A unitless number combines with any unit
(``size > 4096``), two different units do not (``size > 10s`` is a type error).
"""

from __future__ import annotations

BOOL = "bool"
INT = "int"
FLOAT = "float"
SIZE = "size"
DURATION = "duration"
ADDRESS = "address"
STRING = "string"
KIND = "kind"
SOURCE = "source"
ANOMALY = "anomaly"
STACK = "stack"

UNITLESS = frozenset({INT, FLOAT})
UNITS = frozenset({SIZE, DURATION, ADDRESS})
NUMERIC = UNITLESS | UNITS
ENUMS = frozenset({KIND, SOURCE, ANOMALY})
SCALARS = NUMERIC | ENUMS | frozenset({BOOL, STRING, STACK})
#: types a parameter may declare
PARAM_TYPES = (BOOL, INT, FLOAT, SIZE, DURATION, ADDRESS, STRING, "list")


def list_of(t: str) -> str:
    return f"list[{t}]"


def is_list(t: str) -> bool:
    return t.startswith("list[")


def item_type(t: str) -> str:
    return t[5:-1]


def comparable(a: str, b: str, ordering: bool) -> bool:
    """Whether ``a OP b`` is allowed (``ordering``: ``<`` etc., else ``==``/``!=``)."""
    if a in NUMERIC and b in NUMERIC:
        return a == b or a in UNITLESS or b in UNITLESS
    if ordering:
        return False
    return a == b and a in SCALARS


def unify(a: str, b: str) -> str | None:
    """The common type of two list items or of ``least``/``greatest`` arguments."""
    if a == b:
        return a
    if a in NUMERIC and b in NUMERIC:
        if a in UNITLESS and b in UNITLESS:
            return FLOAT
        if a in UNITLESS:
            return b
        if b in UNITLESS:
            return a
    return None


def arithmetic(op: str, a: str, b: str) -> str | None:
    """The result type of ``a op b``, or None when the combination is an error.

    ``+``/``-``: same unit, or a unit and a unitless number (an address minus
    an address is a size, an address plus a size an address).  ``*``: at most
    one side has a unit.  ``/``: a unit divided by a unitless number keeps the
    unit, by the same unit gives a float ratio.  ``%``: like ``/`` but the
    result keeps the left unit."""
    if a not in NUMERIC or b not in NUMERIC:
        return None
    if a in UNITLESS and b in UNITLESS:
        return FLOAT if FLOAT in (a, b) or op == "/" else INT
    if op in ("+", "-"):
        if a == b:
            return SIZE if (a == ADDRESS and op == "-") else a
        if {a, b} == {ADDRESS, SIZE}:
            return ADDRESS
        if a in UNITLESS:
            return b
        if b in UNITLESS:
            return a
        return None
    if op == "*":
        if a in UNITLESS:
            return b
        if b in UNITLESS:
            return a
        return None
    if op == "/":
        if b in UNITLESS:
            return a
        if a == b:
            return FLOAT
        return None
    if op == "%":
        return a if (b in UNITLESS or a == b) else None
    return None
