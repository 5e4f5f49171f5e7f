"""Report formatters, registered in ``FORMATS`` (name -> formatter class).

Each formatter's ``render(result, options) -> bytes`` is pure: the engine never
prints; ``heaplint.engine.commands.report_options.emit_reports`` decides where
the bytes go.
"""

from __future__ import annotations

from heaplint.engine.errors import UsageError
from heaplint.engine.reports.base import Formatter, ReportOptions
from heaplint.engine.reports.github import GithubFormatter
from heaplint.engine.reports.html import HtmlFormatter
from heaplint.engine.reports.json_report import JsonFormatter
from heaplint.engine.reports.junit import JunitFormatter
from heaplint.engine.reports.sarif import SarifFormatter
from heaplint.engine.reports.text import TextFormatter

#: format name -> formatter class, in the order help texts list them
FORMATS: dict[str, type[Formatter]] = {
    "text": TextFormatter,
    "json": JsonFormatter,
    "sarif": SarifFormatter,
    "junit": JunitFormatter,
    "github": GithubFormatter,
    "html": HtmlFormatter,
}


def get_formatter(name: str) -> Formatter:
    """An instance of the formatter called ``name``; a :class:`UsageError`
    naming the known formats otherwise."""
    cls = FORMATS.get(name)
    if cls is None:
        raise UsageError(f"unknown format '{name}'; known: {', '.join(FORMATS)}")
    return cls()


__all__ = ["FORMATS", "Formatter", "ReportOptions", "get_formatter"]
