"""Message templates: ``"{count} slow reallocs on heap {heap} ({size:size})"``.

Each ``{expression:spec}`` is compiled like any other expression of the rule
(fields, lets, aggregates, functions), so a typo in a message is a located
compile error, not a broken report.  Specs: ``x`` (hex), ``d`` (integer),
``,`` (thousands separators), ``size`` (human bytes), ``duration`` (human
time), and numeric specs such as ``.1f`` or ``.0%``.  Without a spec a value
is shown by its type: addresses in hex, sizes and durations human-readable,
enum constants by name.  ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

from typing import Any, Callable

from heaplint.rules import registry as R
from heaplint.rules.compiler import Compiler
from heaplint.rules.expr import Expression, parse
from heaplint.rules.literals import check_spec, format_value

MAX_MESSAGE = 2000  # rendered characters


class Template:
    """A compiled message template."""

    def __init__(self, parts: list[str | tuple[Callable[[Any], Any], str, str]], text: str) -> None:
        self.parts = parts
        self.text = text

    def render(self, ctx: Any) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            fn, type_, spec = part
            try:
                out.append(format_value(type_, fn(ctx), spec, R.ENUM_NAMES))
            except (ValueError, TypeError, ArithmeticError):
                out.append("?")
        text = "".join(out)
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _close(text: str, start: int) -> int:
    """Index of the ``}`` closing the field opened at ``start`` (quotes respected)."""
    quote = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            return -1
        elif ch == "}":
            return i
    return -1


def compile_template(comp: Compiler, expr: Expression) -> Template:
    """Compile the template held by ``expr`` (a YAML scalar) with ``comp``."""
    text = expr.text
    parts: list[str | tuple[Callable[[Any], Any], str, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i + 1 : i + 2] == ch:
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise expr.error("HLR050", "unmatched '}' in message (write '}}' for a literal brace)", i)
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        end = _close(text, i + 1)
        if end < 0:
            raise expr.error("HLR050", "unclosed '{' in message (write '{{' for a literal brace)", i)
        body = text[i + 1 : end]
        spec = ""
        colon = body.rfind(":")
        if colon >= 0 and '"' not in body[colon:] and "'" not in body[colon:]:
            body, spec = body[:colon], body[colon + 1 :].strip()
            if not check_spec(spec):
                raise expr.error("HLR050", f"unknown format spec '{spec}'; use x, d, ',', size, duration or "
                                 "a numeric spec such as .1f or .0%", i + 1 + colon + 1)
        if not body.strip():
            raise expr.error("HLR050", "empty '{}' in message", i)
        base = i + 1
        sub = Expression(body, expr.source, (lambda off, b=base: expr.index(b + off)) if expr.source else None,
                         base=expr.base + base)
        compiled = comp.compile(sub, parse(sub), expect=None)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append((compiled.fn, compiled.type, spec))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(parts, text)
