"""Matches -> deduplicated findings.

A match creates or updates a pending finding keyed by (rule, group): first and
last time and index, occurrence count, the message rendered at the first match,
evidence (``let:`` values; numbers keep their maximum over the matches).

``dedup: per-group`` (default) keeps one finding per group; ``per-event`` makes
one per match.  ``cooldown`` ignores (per-group) or merges into the previous
finding (per-event) matches that come within that time of the group's last
counted match.  Findings per rule are capped; the excess is counted in a note.

Severity, confidence, stack frames and the fingerprint are settled in
:meth:`FindingSink.findings`, after the replay: coverage facts and stack
tables are only final then.
"""

from __future__ import annotations

from typing import Any, Sequence

from heaplint.engine.findings import Finding, fingerprint
from heaplint.rules import context as cx
from heaplint.rules import registry as R
from heaplint.rules import types as T

MAX_FINDINGS_PER_RULE = 1000
MAX_ADDRESSES = 16
MAX_STACK_FRAMES = 64
#: group-key fields that identify a finding across runs (others are raw values)
_STABLE_KEYS = ("size_class", "source", "kind", "anomaly", "flags", "image")


class Pending:
    """A finding being built."""

    __slots__ = ("rule", "group", "pid", "proc", "heap", "heap_label", "addresses", "sizes", "first_time",
                 "last_time", "first_index", "last_index", "count", "stack", "message", "evidence")

    def __init__(self, rule: Any, group: tuple, pid: int | None, proc: Any, heap: int | None,
                 heap_label: str | None, time: int | None, index: int | None, stack: int | None) -> None:
        self.rule = rule
        self.group = group
        self.pid = pid
        self.proc = proc
        self.heap = heap
        self.heap_label = heap_label
        self.addresses: list[int] = []
        self.sizes: list[int] = []
        self.first_time = self.last_time = time
        self.first_index = self.last_index = index
        self.count = 0
        self.stack = stack
        self.message = ""
        self.evidence: dict[str, Any] = {}


class FindingSink:
    """Collects matches of every rule during one trace run."""

    def __init__(self, max_per_rule: int = MAX_FINDINGS_PER_RULE) -> None:
        self.max_per_rule = max_per_rule
        self.pending: list[Pending] = []
        self.by_group: dict[tuple, Pending] = {}
        self.per_rule: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def match(self, rule: Any, ctx: Any, group: tuple, *, pid: int | None, proc: Any, heap: int | None = None,
              heap_label: str | None = None, time: int | None = None, index: int | None = None,
              stack: int | None = None, addresses: Sequence[int] = (), sizes: Sequence[int] = (),
              last_time: int | None = None, last_index: int | None = None, count: int = 1) -> None:
        """Record one match of ``rule`` for ``group`` (ctx is still set up for it)."""
        spec = rule.spec
        gkey = (spec.id, group)
        prev = self.by_group.get(gkey)
        if prev is not None:
            cooling = spec.cooldown and time is not None and prev.last_time is not None \
                and 0 <= time - prev.last_time < spec.cooldown
            if cooling and spec.dedup == "per-group":
                return
            if cooling or spec.dedup == "per-group":
                self._update(prev, rule, ctx, time, index, addresses, sizes, last_time, last_index, count)
                return
        n = self.per_rule.get(spec.id, 0)
        if n >= self.max_per_rule:
            self.dropped[spec.id] = self.dropped.get(spec.id, 0) + 1
            return
        self.per_rule[spec.id] = n + 1
        p = Pending(rule, group, pid, proc, heap, heap_label, time, index, stack)
        p.message = rule.message.render(ctx) if rule.message is not None else spec.title
        self.pending.append(p)
        self.by_group[gkey] = p
        self._update(p, rule, ctx, time, index, addresses, sizes, last_time, last_index, count)

    @staticmethod
    def _update(p: Pending, rule: Any, ctx: Any, time, index, addresses, sizes, last_time, last_index, count) -> None:
        p.count += count
        t = last_time if last_time is not None else time
        if t is not None and (p.last_time is None or t >= p.last_time):
            p.last_time = t
            p.last_index = last_index if last_index is not None else index
        for a in addresses:
            if a and a not in p.addresses and len(p.addresses) < MAX_ADDRESSES:
                p.addresses.append(a)
        for s in sizes:
            if s not in p.sizes and len(p.sizes) < MAX_ADDRESSES:
                p.sizes.append(s)
        evidence = p.evidence
        for name, type_, fn in rule.evidence:
            try:
                v = fn(ctx)
            except (ArithmeticError, TypeError, ValueError):
                continue
            old = evidence.get(name)
            if old is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > old):
                evidence[name] = v

    def notes(self) -> list[str]:
        return [f"rule {rid}: more than {self.max_per_rule} findings; {n} further matches were not reported"
                for rid, n in sorted(self.dropped.items())]

    def findings(self, ctx: Any, stacks: dict, trace: str) -> list[Finding]:
        """Final findings (severity, confidence, stacks and fingerprints settled)."""
        out = []
        for p in self.pending:
            rule = p.rule
            ctx.pid, ctx.proc = p.pid, p.proc
            frames = stacks.get(p.stack) if p.stack is not None else None
            image = cx.image_of(ctx, p.pid, p.proc) or None if p.pid is not None else None
            evidence = {name: _plain(type_, p.evidence[name]) for name, type_, _ in rule.evidence if name in p.evidence}
            out.append(Finding(
                rule_id=rule.spec.id, rule_name=rule.spec.name, severity=rule.severity_for(ctx), message=p.message,
                trace=trace, pid=p.pid, image=image, heap=p.heap, heap_label=p.heap_label,
                addresses=tuple(p.addresses), sizes=tuple(p.sizes), first_time=p.first_time, last_time=p.last_time,
                first_index=p.first_index, last_index=p.last_index, count=p.count,
                stack=tuple(frames[:MAX_STACK_FRAMES]) if frames else None, evidence=evidence,
                fingerprint=fingerprint(rule.spec.id, image, p.heap_label if "heap" in rule.by else None,
                                        *_key_parts(rule, p.group, stacks)),
                confidence=rule.confidence_for(ctx),
            ))
        return out


def stack_of_group(by: tuple[str, ...], keys: tuple) -> int | None:
    """The stack id a group key names (``stack`` or a stack ``site``), if any."""
    for name, value in zip(by, keys):
        if name in ("stack", "ended_stack") and value is not None:
            return value
        if name == "site" and isinstance(value, str) and value.startswith("stack#"):
            return int(value[6:])
    return None


def symbolized(frames: Sequence[str] | None) -> list[str]:
    """Frames that survive ASLR: symbols and module+offset, not bare addresses."""
    return [f for f in frames or () if not f.lower().startswith("0x")]


def _key_parts(rule: Any, group: tuple, stacks: dict) -> list[str]:
    parts: list[str] = []
    values = group[1:] if len(group) == len(rule.by) + 1 else group
    for name, value in zip(rule.by, values):
        if name in ("stack", "ended_stack") or (name == "site" and str(value).startswith("stack#")):
            sid = int(value[6:]) if name == "site" else value
            parts.append(name + "=" + "|".join(symbolized(stacks.get(sid)) if sid is not None else ""))
        elif name == "site":
            parts.append(f"site={value}")
        elif name in _STABLE_KEYS:
            fdef = R.FIELDS.get(name)
            shown = R.ENUM_NAMES.get(fdef.type, {}).get(value, value) if fdef is not None else value
            parts.append(f"{name}={shown}")
    return parts


def _plain(type_: str, value: Any) -> Any:
    """Evidence as JSON-friendly values (enum constants by name)."""
    if type_ in T.ENUMS:
        return R.ENUM_NAMES[type_].get(value, value)
    if isinstance(value, float) and value.is_integer() and type_ in (T.SIZE, T.DURATION, T.INT, T.ADDRESS):
        return int(value)
    if isinstance(value, tuple):
        return list(value)
    return value
