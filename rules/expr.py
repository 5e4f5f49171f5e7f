"""Parsing expressions: lark LALR with positions, errors located in the file.

An :class:`Expression` is the text of one expression plus a map from offsets
in that text to offsets in its file (see :func:`heaplint.rules.yamlsrc.scalar_offsets`),
so a syntax error inside ``when: >`` points at the right line and column of
the YAML file, caret included.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Callable

import lark
from lark import Lark, Token, Tree
from yaml.nodes import ScalarNode

from heaplint.engine.errors import RuleError
from heaplint.rules.diagnostics import SourceText, error_at
from heaplint.rules.yamlsrc import scalar_offsets

MAX_EXPRESSION = 10_000  # characters
MAX_DEPTH = 100  # syntax-tree depth (the compiler recurses on it)

_FRIENDLY = {
    "NAME": "a name", "PARAM": "a $parameter", "INT": "a number", "FLOAT": "a number", "HEX": "a hex number",
    "UNIT_NUMBER": "a size or duration", "STRING": "a string", "COMPARE": "a comparison",
    "ADDOP": "'+' or '-'", "MULOP": "'*', '/' or '%'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "COMMA": "','", "MINUS": "'-'", "$END": "the end of the expression",
    "OR": "'or'", "AND": "'and'", "NOT": "'not'", "IN": "'in'", "LIKE": "'like'", "OVER": "'over'",
    "BY": "'by'", "WHERE": "'where'", "MATCHES": "'matches'",
}


class Expression:
    """One expression's text and its place in a file."""

    __slots__ = ("text", "source", "_offset", "base")

    def __init__(
        self, text: str, source: SourceText | None = None, offset: Callable[[int], int] | None = None, base: int = 0
    ) -> None:
        self.text = text
        self.source = source
        self._offset = offset
        self.base = base

    @classmethod
    def from_node(cls, source: SourceText, node: ScalarNode) -> "Expression":
        """The expression held by a YAML scalar node."""
        return cls(node.value, source, scalar_offsets(source, node))

    def index(self, pos: int) -> int:
        """File offset of offset ``pos`` in the expression text."""
        if self._offset is not None:
            return self._offset(pos)
        return self.base + pos

    def error(self, code: str, message: str, pos: int | None = 0, width: int = 1) -> RuleError:
        """A located error at offset ``pos`` of the expression."""
        return error_at(code, message, self.source, self.index(pos or 0), width=width)


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser (built once per process)."""
    grammar = resources.files("heaplint.rules").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse(expr: Expression) -> Tree:
    """Parse ``expr``; a located HLR020 error on bad syntax."""
    text = expr.text
    if len(text) > MAX_EXPRESSION:
        raise expr.error("HLR028", f"expression of {len(text):,} characters; the limit is {MAX_EXPRESSION:,}")
    if not text.strip():
        raise expr.error("HLR020", "empty expression")
    _check_nesting(expr)
    try:
        tree = parser().parse(text)
    except lark.exceptions.UnexpectedCharacters as err:
        raise _bad_char(expr, err.pos_in_stream, text[err.pos_in_stream]) from None
    except lark.exceptions.UnexpectedToken as err:
        raise _bad_token(expr, err.token, err.accepts or err.expected) from None
    except lark.exceptions.UnexpectedEOF as err:
        raise _bad_token(expr, None, err.expected) from None
    except lark.exceptions.UnexpectedInput as err:  # pragma: no cover - covered by the above
        raise expr.error("HLR020", f"syntax error: {err}", getattr(err, "pos_in_stream", 0)) from None
    _check_depth(expr, tree)
    return tree


def _check_nesting(expr: Expression) -> None:
    """Refuse deeply nested brackets before parsing (cheap, linear)."""
    depth = 0
    quote = None
    for i, ch in enumerate(expr.text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
            if depth > MAX_DEPTH // 2:
                raise expr.error("HLR028", f"brackets nested deeper than {MAX_DEPTH // 2} levels", i)
        elif ch in ")]":
            depth -= 1


def _check_depth(expr: Expression, tree: Tree) -> None:
    stack: list[tuple[Tree | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            pos = node.meta.start_pos if isinstance(node, Tree) and not node.meta.empty else 0
            raise expr.error("HLR028", f"expression nested deeper than {MAX_DEPTH} levels; split it with let: or macros", pos)
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children if child is not None)


def _bad_char(expr: Expression, pos: int, char: str) -> RuleError:
    if char == ".":
        msg = "'.' is not part of the language: there is no attribute access"
    elif char == "=":
        msg = "unexpected '='; compare with '=='"
    elif char in "&|!":
        msg = f"unexpected '{char}'; use 'and', 'or', 'not'"
    elif char == "{" or char == "}":
        msg = f"unexpected '{char}'; braces belong in message templates, not expressions"
    else:
        msg = f"unexpected character '{char}'"
    return expr.error("HLR020", msg, pos)


def _bad_token(expr: Expression, token: Token | None, expected: set[str] | None) -> RuleError:
    wanted = sorted({_FRIENDLY.get(name, f"'{name.lower()}'") for name in (expected or ())})
    hint = f"; expected {', '.join(wanted[:8])}" if wanted else ""
    if token is None or token.type == "$END":
        return expr.error("HLR020", f"unexpected end of expression{hint}", len(expr.text.rstrip()))
    shown = str(token)
    return expr.error("HLR020", f"unexpected '{shown}'{hint}", token.start_pos, width=len(shown))
