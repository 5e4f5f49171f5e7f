"""The exception root of heaplint and its narrow subclasses.

Every error a user can cause by bad input (a trace, a rule file, a config file,
a command line) is a :class:`HeaplintError` carrying a location.  The CLI turns
it into ``path:line[:col]: message`` and exit code 2.  Anything else that
escapes is a bug and is reported with a "please report" line.
"""

from __future__ import annotations


class HeaplintError(Exception):
    """Root of every error heaplint raises on purpose.

    ``path``, ``line`` and ``col`` locate the problem (1-based; ``None`` when not
    applicable).  ``code`` is a stable error code when the subclass has one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.code = code

    def location(self) -> str:
        """``path:line:col`` with the parts that are known."""
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def __str__(self) -> str:
        code = f"{self.code} " if self.code else ""
        return f"{self.location()}: {code}{self.message}"


class UsageError(HeaplintError):
    """A bad command line: unknown option value, missing file, and the like."""


class TraceError(HeaplintError):
    """A trace that cannot be read: unknown format, malformed record, truncation."""


class RuleError(HeaplintError):
    """A problem in a rule or configuration file (syntax, schema, type, name)."""


class ErrorCollection(HeaplintError):
    """Several located errors collected before giving up (rules check, config)."""

    def __init__(self, errors: list[HeaplintError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
