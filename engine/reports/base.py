"""What every formatter shares: the options, the base class and small helpers.

A formatter turns an :class:`~heaplint.engine.findings.AnalysisResult` into
bytes; it never prints and never writes files (the CLI does, atomically).
Formatters must be deterministic: the same result and options give the same
bytes, so json, sarif and junit reports can be compared and committed.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from heaplint.engine.findings import AnalysisResult, Finding

TOOL_NAME = "heaplint"
TOOL_URI = "https://github.com/heaplint/heaplint"


@dataclass(frozen=True)
class ReportOptions:
    """How to render.  Defaults give deterministic, colourless output."""

    #: ANSI colours in the text report (the CLI decides: terminal, NO_COLOR, --color)
    color: bool = False
    #: include the generation time (json, sarif, junit); off by default for determinism
    timestamps: bool = False
    #: the time to stamp when ``timestamps`` is on (ISO 8601 UTC); now when None
    generated_at: str | None = None
    #: trace paths under this folder are reported relative to it (default: cwd)
    base_dir: str | None = None
    #: stack frames shown per finding in text, github and html reports
    max_frames: int = 8

    def timestamp(self) -> str | None:
        """The generation time to print, or None when timestamps are off."""
        if not self.timestamps:
            return None
        if self.generated_at:
            return self.generated_at
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        return now.isoformat().replace("+00:00", "Z")


class Formatter:
    """One report format.  Subclasses set ``name``, ``extension`` and implement
    :meth:`render`; they are registered in ``heaplint.engine.reports.FORMATS``."""

    name: ClassVar[str] = ""
    extension: ClassVar[str] = ""  # the usual file suffix, for docs and defaults
    description: ClassVar[str] = ""

    def render(self, result: AnalysisResult, options: ReportOptions) -> bytes:
        """The whole report as bytes."""
        raise NotImplementedError


def tool_version() -> str:
    from heaplint.engine import __version__

    return __version__


def display_path(path: str, base_dir: str | None = None) -> str:
    """A trace path as reports show it: relative to ``base_dir`` (default cwd)
    when the file lies under it, with forward slashes; ``-`` is ``<stdin>``."""
    if path == "-":
        return "<stdin>"
    base = os.path.abspath(base_dir or os.getcwd())
    full = os.path.abspath(path)
    try:
        rel = os.path.relpath(full, base)
    except ValueError:  # another drive on Windows
        rel = None
    if rel is not None and not rel.startswith(os.pardir):
        return rel.replace(os.sep, "/")
    if os.path.isabs(path):
        return full.replace(os.sep, "/")
    return path.replace(os.sep, "/")


def hex_or_none(value: int | None) -> str | None:
    return None if value is None else f"0x{value:x}"


def image_name(image: str | None) -> str:
    """The base name of a process image path (``C:\\app\\x.exe`` -> ``x.exe``)."""
    if not image:
        return "?"
    return image.replace("\\", "/").rsplit("/", 1)[-1] or image


def where(f: Finding) -> str:
    """``x.exe[1234] heap process-heap`` — the process and heap of a finding."""
    parts = []
    if f.pid is not None or f.image:
        parts.append(f"{image_name(f.image)}[{f.pid if f.pid is not None else '?'}]")
    if f.heap_label or f.heap is not None:
        parts.append(f"heap {f.heap_label or hex_or_none(f.heap)}")
    return " ".join(parts)


def json_safe(value: Any) -> Any:
    """Evidence values as JSON: mappings with sorted string keys, sequences as
    lists, ints/floats/strings/bools/None as they are, anything else as str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    return str(value)


def finding_dict(f: Finding, options: ReportOptions) -> dict[str, Any]:
    """A finding as a JSON object (the ``finding`` object of docs/json-report.md)."""
    return {
        "rule_id": f.rule_id,
        "rule_name": f.rule_name,
        "severity": f.severity.label,
        "message": f.message,
        "trace": display_path(f.trace, options.base_dir),
        "pid": f.pid,
        "image": f.image,
        "heap": hex_or_none(f.heap),
        "heap_label": f.heap_label,
        "addresses": [f"0x{a:x}" for a in f.addresses],
        "sizes": list(f.sizes),
        "bytes": f.total_bytes,
        "first_time_ns": f.first_time,
        "last_time_ns": f.last_time,
        "first_index": f.first_index,
        "last_index": f.last_index,
        "count": f.count,
        "stack": list(f.stack) if f.stack is not None else None,
        "evidence": json_safe(dict(f.evidence)),
        "fingerprint": f.fingerprint,
        "confidence": f.confidence,
        "baseline_state": f.baseline_state,
    }


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
