"""Located, coded errors for rule and configuration files.

Every problem in a rule or config file becomes a :class:`~heaplint.engine.errors.RuleError`
with a stable code from :data:`CODES`, a ``path:line:col`` location and, in its
``context`` attribute, the offending source line with a caret under the culprit
(the CLI prints it under the message).  :class:`Collector` gathers errors so
that one run reports every problem of every file.
"""

from __future__ import annotations

import bisect
import difflib
from typing import Iterable

from heaplint.engine.errors import ErrorCollection, HeaplintError, RuleError

#: stable error codes -> one-line meaning (docs/rule-language.md lists them)
CODES: dict[str, str] = {
    "HLR001": "unknown key",
    "HLR002": "missing required key",
    "HLR003": "wrong value type for a key",
    "HLR004": "duplicate key in a YAML mapping",
    "HLR005": "duplicate rule id, rule name, macro or list name",
    "HLR006": "malformed rule id or name",
    "HLR007": "unknown severity or malformed severity mapping",
    "HLR008": "a rule needs exactly one trigger (`when:`, or `at: end` with `when:`)",
    "HLR010": "YAML syntax error",
    "HLR011": "forbidden or unsupported YAML tag (no code execution, no merge keys, no dates)",
    "HLR012": "YAML safety limit exceeded (file size, nesting, anchors, alias expansion, scalar length)",
    "HLR013": "file cannot be read or decoded",
    "HLR020": "expression syntax error",
    "HLR021": "unknown name (field, enum constant, macro, list or let binding)",
    "HLR022": "unknown function",
    "HLR023": "unknown parameter",
    "HLR024": "type error",
    "HLR025": "wrong number of arguments",
    "HLR026": "name or function not available where it is used",
    "HLR027": "window or grouping error (aggregates, `over`, `by`)",
    "HLR028": "invalid literal (unit, range, length)",
    "HLR029": "regular expressions are not supported (use `like` globs)",
    "HLR030": "macro recursion",
    "HLR040": "malformed parameter declaration",
    "HLR041": "bad parameter override or unknown rule/parameter in an override",
    "HLR050": "message template error",
    "HLR060": "malformed example (inline mini-trace)",
    "HLR070": "configuration error (extends, profile, enable/disable, overrides)",
}

_CONTEXT_WIDTH = 100  # show at most this many characters of a long line


class SourceText:
    """The text of one rule or config file, for line/column arithmetic."""

    __slots__ = ("path", "text", "_starts")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        starts = [0]
        find = text.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._starts = starts

    def index(self, line: int, col: int) -> int:
        """Character offset of 0-based ``line``/``col``."""
        line = min(max(line, 0), len(self._starts) - 1)
        return min(self._starts[line] + col, len(self.text))

    def position(self, index: int) -> tuple[int, int]:
        """1-based (line, column) of character offset ``index``."""
        index = min(max(index, 0), len(self.text))
        line = bisect.bisect_right(self._starts, index) - 1
        return line + 1, index - self._starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its line break."""
        if line < 1 or line > len(self._starts):
            return ""
        start = self._starts[line - 1]
        end = self._starts[line] - 1 if line < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r")


def caret_context(line_text: str, col: int, width: int = 1) -> str:
    """The source line and a caret line under column ``col`` (1-based).

    Tabs before the culprit are kept so the caret lines up in a terminal;
    very long lines are cut to a window around the column."""
    col = max(col, 1)
    start = 0
    if len(line_text) > _CONTEXT_WIDTH:
        start = max(0, min(col - 1 - _CONTEXT_WIDTH // 2, len(line_text) - _CONTEXT_WIDTH))
        line_text = line_text[start : start + _CONTEXT_WIDTH]
    lead = "".join(ch if ch == "\t" else " " for ch in line_text[: col - 1 - start])
    width = max(1, min(width, len(line_text) - (col - 1 - start)))
    return f"    {line_text}\n    {lead}{'^' * width}"


def error_at(
    code: str,
    message: str,
    source: SourceText | None,
    index: int | None = None,
    *,
    path: str | None = None,
    width: int = 1,
) -> RuleError:
    """A RuleError at character ``index`` of ``source`` with caret context."""
    assert code in CODES, code
    if source is None or index is None:
        return RuleError(message, path=source.path if source else path, code=code)
    line, col = source.position(index)
    err = RuleError(message, path=source.path, line=line, col=col, code=code)
    err.context = caret_context(source.line_text(line), col, width)  # type: ignore[attr-defined]
    return err


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``."""
    names = list(dict.fromkeys(candidates))
    folded = {n.casefold(): n for n in names}
    if word.casefold() in folded and folded[word.casefold()] != word:
        return f" (did you mean '{folded[word.casefold()]}'?)"
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:
        close = [folded[c] for c in difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)]
    return f" (did you mean '{close[0]}'?)" if close else ""


class Collector:
    """Gathers errors instead of stopping at the first (pySigma's collect_errors)."""

    def __init__(self) -> None:
        self.errors: list[HeaplintError] = []

    def add(self, err: HeaplintError) -> None:
        self.errors.append(err)

    def extend(self, errs: Iterable[HeaplintError]) -> None:
        for e in errs:
            self.add(e)

    def absorb(self, err: HeaplintError) -> None:
        """Add ``err``, unpacking an ErrorCollection."""
        if isinstance(err, ErrorCollection):
            self.extend(err.errors)
        else:
            self.add(err)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        """Raise one ErrorCollection of everything collected, sorted by place."""
        if self.errors:
            self.errors.sort(key=lambda e: (e.path or "", e.line or 0, e.col or 0))
            raise ErrorCollection(list(self.errors))
