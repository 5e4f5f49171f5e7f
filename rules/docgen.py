"""Markdown documentation generated from rules and from the registry, so the
docs cannot drift: ``heaplint rules doc`` (the rules) and
``heaplint rules doc --language`` (fields, functions, constants, error codes)."""

from __future__ import annotations

from heaplint.rules import registry as R
from heaplint.rules.diagnostics import CODES
from heaplint.rules.literals import canonical

BEGIN = "<!-- BEGIN GENERATED: heaplint rules doc --language -->"
RULES_BEGIN = "<!-- BEGIN GENERATED: heaplint rules doc -->"
END = "<!-- END GENERATED -->"


def replace_section(text: str, begin: str, body: str) -> str:
    """``text`` with the part between ``begin`` and the next END marker
    replaced by ``body``; ValueError when the markers are missing."""
    if begin not in text or END not in text.split(begin, 1)[1]:
        raise ValueError(f"no generated section ({begin} ... {END})")
    head, rest = text.split(begin, 1)
    return head + begin + "\n\n" + body.strip() + "\n\n" + END + rest.split(END, 1)[1]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def language_reference() -> str:
    """Tables of every field, function, aggregate, constant and error code."""
    out = ["### Fields", "", "| field | type | scopes | meaning |", "|---|---|---|---|"]
    for f in R.FIELD_LIST:
        scopes = ", ".join(s for s in R.SCOPES if s in f.getters)
        out.append(f"| `{f.name}` | {f.type} | {scopes} | {_cell(f.doc)} |")
    out += ["", "### Functions", "", "| function | scopes | meaning |", "|---|---|---|"]
    for fn in R.FUNCTIONS.values():
        scopes = ", ".join(s for s in R.SCOPES if s in fn.scopes)
        out.append(f"| `{_cell(fn.signature())}` | {scopes} | {_cell(fn.doc)} |")
    out += ["", "### Aggregates", "", "| aggregate | meaning |", "|---|---|"]
    for a in R.AGGREGATES.values():
        out.append(f"| `{a.signature()}` | {_cell(a.doc)} |")
    out += ["", "### Constants", "", "| constant | type | meaning |", "|---|---|---|"]
    for c in R.CONSTANT_LIST:
        out.append(f"| `{c.name}` | {c.type} | {_cell(c.doc)} |")
    out += ["", "### Error codes", "", "| code | meaning |", "|---|---|"]
    for code, meaning in CODES.items():
        out.append(f"| {code} | {_cell(meaning)} |")
    return "\n".join(out) + "\n"


def rules_reference(rules, title: str | None = "# heaplint rules") -> str:
    """A Markdown page describing ``rules`` (CompiledRule values); without a
    title, a section to embed in a page."""
    out = [title, ""] if title else []
    for r in sorted(rules, key=lambda r: r.id):
        spec = r.spec
        out += [f"## {spec.id} {spec.name}", "", f"**{spec.title}**", ""]
        sev = spec.severity.label
        if spec.severity_when:
            sev += " by default; " + "; ".join(
                f"{lvl.label} when `{named.expr.text.strip()}`" for lvl, named in spec.severity_when)
        facts = [f"severity: {sev}", f"trigger: {r.trigger}" + (f" ({r.scope})" if r.scope else ""),
                 "enabled: " + (("off until its parameters are set (as shipped it never fires)" if r.never else "yes")
                                if r.meta.enabled else "no")]
        if spec.tags:
            facts.append("tags: " + ", ".join(spec.tags))
        out += ["- " + f for f in facts] + [""]
        if spec.description:
            out += [spec.description.strip(), ""]
        if spec.params:
            out += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
            for p in spec.params.values():
                out.append(f"| `{p.name}` | {p.type} | `{canonical(p.type, p.default, R.ENUM_NAMES)}` | {_cell(p.doc)} |")
            out.append("")
        out += ["Condition:", "", "```", r.when.text, "```", ""]
        if spec.message is not None:
            out += [f"Message: `{_cell(spec.message.text.strip())}`", ""]
        for ex in spec.examples:
            verdict = f"fires {ex.expect} time(s)" if ex.expect else "does not fire"
            details = _example_details(ex)
            out += [f"Example *{ex.name}* — {verdict}{details}:", "", "```"] + ex.lines + ["```", ""]
        if spec.references:
            out += ["References: " + ", ".join(spec.references), ""]
    return "\n".join(out)


def _example_details(ex) -> str:
    """The expectations and coverage facts of an example, for its heading."""
    parts = []
    if ex.severity is not None:
        parts.append(f"severity {ex.severity.label}")
    procs = list(ex.info.processes.values())
    if any(not p.start_seen for p in procs):
        parts.append("attach mode")
    if ex.info.events_lost:
        parts.append(f"{ex.info.events_lost} events lost")
    if ex.info.buffers_lost:
        parts.append(f"{ex.info.buffers_lost} buffers lost")
    if ex.params:
        parts.append("with " + ", ".join(f"{k}={v}" for k, v in ex.params.items()))
    return f" ({'; '.join(parts)})" if parts else ""

