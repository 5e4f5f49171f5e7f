"""Suppressions: hide known findings, each with a reason and an optional expiry.

A suppressions file is YAML (read with the safe loader; nothing in it is ever
executed)::

    suppressions:
      - rule: leak-at-exit          # rule id or name (exact)
        image: "vendor*.exe"        # process image glob (base name or full path)
        frame: "vendorlib!*"        # glob matched against every stack frame
        heap: process-heap          # heap label glob (e.g. heap#2/flags=0x2)
        max_bytes: 64KiB            # only findings about at most this many bytes
        reason: "vendor leak, tracked in JIRA-123"   # required
        expires: 2026-06-30         # optional: after this date it stops applying

A finding is hidden by the first entry (in file order) whose given fields all
match.  An entry needs a reason and at least one of rule, image, frame, heap;
an empty pattern is an error.  Globs on images and frames ignore case (Windows
module names do); heap labels and rule names are compared as written.  An
expired entry no longer hides anything and is reported; with
``--fail-on-expired`` it makes the run fail with exit status 2.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import fnmatch
from typing import Any

import yaml

from heaplint.engine.errors import ErrorCollection, HeaplintError, RuleError
from heaplint.engine.findings import AnalysisResult, Finding, Suppressed, SuppressionUsage
from heaplint.engine.units import parse_size

PATTERN_KEYS = ("rule", "image", "frame", "heap")
KNOWN_KEYS = (*PATTERN_KEYS, "max_bytes", "reason", "expires")


@dataclasses.dataclass(frozen=True)
class Suppression:
    """One validated entry of a suppressions file."""

    source: str  # "path:line"
    reason: str
    rule: str | None = None
    image: str | None = None
    frame: str | None = None
    heap: str | None = None
    max_bytes: int | None = None
    expires: datetime.date | None = None

    def expired(self, today: datetime.date) -> bool:
        """True after the expiry date (the entry still applies on that day)."""
        return self.expires is not None and today > self.expires

    def matches(self, f: Finding) -> bool:
        """Whether every field this entry gives matches the finding."""
        if self.rule is not None and self.rule not in (f.rule_id, f.rule_name):
            return False
        if self.image is not None:
            full = (f.image or "").replace("\\", "/").casefold()
            base = full.rsplit("/", 1)[-1]
            pattern = self.image.replace("\\", "/").casefold()
            if not f.image or not (fnmatch.fnmatchcase(base, pattern) or fnmatch.fnmatchcase(full, pattern)):
                return False
        if self.heap is not None and not fnmatch.fnmatchcase(f.heap_label or "", self.heap):
            return False
        if self.frame is not None:
            pattern = self.frame.casefold()
            if not f.stack or not any(fnmatch.fnmatchcase(fr.casefold(), pattern) for fr in f.stack):
                return False
        if self.max_bytes is not None and f.total_bytes > self.max_bytes:
            return False
        return True

    def usage(self, today: datetime.date) -> SuppressionUsage:
        return SuppressionUsage(
            source=self.source,
            reason=self.reason,
            rule=self.rule,
            image=self.image,
            frame=self.frame,
            heap=self.heap,
            max_bytes=self.max_bytes,
            expires=self.expires.isoformat() if self.expires else None,
            expired=self.expired(today),
        )


def load_suppressions(path: str) -> list[Suppression]:
    """Read and validate a suppressions file.  Every problem is collected and
    raised together as an :class:`ErrorCollection` of located errors."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise RuleError("suppressions file not found", path=path) from None
    except UnicodeDecodeError as err:
        raise RuleError(f"suppressions file is not UTF-8 text: {err.reason}", path=path) from err
    except OSError as err:
        raise RuleError(f"cannot read suppressions file: {err.strerror}", path=path) from err
    return parse_suppressions(text, path)


def parse_suppressions(text: str, path: str = "<suppressions>") -> list[Suppression]:
    """Parse suppressions from YAML text (see the module docstring)."""
    try:
        # compose() builds nodes only (with positions); nothing is constructed
        # from tags, so no YAML feature can run code.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise RuleError(
            f"invalid YAML: {err.problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from err
    except yaml.YAMLError as err:
        raise RuleError(f"invalid YAML: {err}", path=path) from err
    except RecursionError as err:
        raise RuleError("invalid YAML: nested too deeply", path=path) from err
    if root is None:
        return []
    errors: list[HeaplintError] = []

    def error(node: yaml.Node, message: str) -> None:
        errors.append(RuleError(message, path=path, line=node.start_mark.line + 1, col=node.start_mark.column + 1))

    items: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        items = None
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "suppressions":
                items = value
            else:
                error(key, f"unknown top-level key '{_scalar(key)}'; expected 'suppressions'")
        if items is None:
            if not errors:
                error(root, "missing 'suppressions' list")
            raise ErrorCollection(errors)
    if _is_null(items):
        if errors:
            raise ErrorCollection(errors)
        return []
    if not isinstance(items, yaml.SequenceNode):
        error(items, "'suppressions' must be a list of entries")
        raise ErrorCollection(errors)
    result = []
    for node in items.value:
        entry = _entry(node, path, error)
        if entry is not None:
            result.append(entry)
    if errors:
        raise ErrorCollection(errors)
    return result


def _entry(node: yaml.Node, path: str, error: Any) -> Suppression | None:
    if not isinstance(node, yaml.MappingNode):
        error(node, "a suppression must be a mapping with a reason and at least one pattern")
        return None
    values: dict[str, Any] = {}
    ok = True
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(KNOWN_KEYS)}"
            error(key_node, f"unknown key '{key}'{hint}")
            ok = False
            continue
        if key in values:
            error(key_node, f"duplicate key '{key}'")
            ok = False
            continue
        if not isinstance(value_node, yaml.ScalarNode):
            error(value_node, f"'{key}' must be a single value, not a list or mapping")
            ok = False
            continue
        text = "" if _is_null(value_node) else str(value_node.value).strip()
        if not text:
            what = "reason" if key == "reason" else f"pattern '{key}'"
            error(value_node, f"empty {what}: give a value or remove the key")
            ok = False
            continue
        if key == "max_bytes":
            try:
                values[key] = parse_size(text)
            except ValueError as err:
                error(value_node, f"max_bytes: {err}")
                ok = False
        elif key == "expires":
            try:
                values[key] = datetime.date.fromisoformat(text)
            except ValueError:
                error(value_node, f"expires: not a date '{text}' (write YYYY-MM-DD)")
                ok = False
        else:
            values[key] = text
    if not ok:
        return None
    if "reason" not in values:
        error(node, "a suppression needs a 'reason'")
        return None
    if not any(k in values for k in PATTERN_KEYS):
        error(node, "a suppression needs at least one of rule, image, frame, heap (it would hide everything)")
        return None
    return Suppression(source=f"{path}:{node.start_mark.line + 1}", **values)


def _scalar(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def apply_suppressions(
    result: AnalysisResult,
    suppressions: list[Suppression],
    *,
    today: datetime.date | None = None,
    fail_on_expired: bool = False,
) -> AnalysisResult:
    """A copy of ``result`` with matching findings moved to ``suppressed``,
    per-entry usage in ``suppressions``, warnings for unused and expired
    entries, and (with ``fail_on_expired``) an error per expired entry.
    O(findings x entries)."""
    today = today or datetime.date.today()
    usages = [s.usage(today) for s in suppressions]
    active = [(i, s) for i, s in enumerate(suppressions) if not s.expired(today)]
    hidden = list(result.suppressed)
    traces = []
    for trace in result.traces:
        kept = []
        for f in trace.findings:
            hit = next(((i, s) for i, s in active if s.matches(f)), None)
            if hit is None:
                kept.append(f)
                continue
            i, s = hit
            usages[i].findings += 1
            usages[i].bytes += f.total_bytes
            hidden.append(Suppressed(finding=f, source=s.source, reason=s.reason))
        traces.append(dataclasses.replace(trace, findings=kept))
    hidden.sort(key=lambda s: s.finding.sort_key())
    warnings = list(result.warnings)
    errors = list(result.errors)
    for u in usages:
        if u.expired:
            message = f"{u.source}: suppression expired on {u.expires} and no longer applies ({u.reason})"
            (errors if fail_on_expired else warnings).append(message)
        elif u.unused:
            warnings.append(f"{u.source}: suppression matched no finding; remove it if the problem is fixed")
    return dataclasses.replace(
        result,
        traces=traces,
        suppressed=hidden,
        suppressions=list(result.suppressions) + usages,
        warnings=warnings,
        errors=errors,
    )
