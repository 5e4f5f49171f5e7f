"""``heaplint rules list|check|explain|test|doc``: inspect, validate and test rules."""

from __future__ import annotations

import argparse
import os
import sys

from heaplint.engine.commands.rule_options import add_rule_options, load_rules
from heaplint.engine.output import write_atomic

HELP = "list, validate, explain, test and document rules"
DESCRIPTION = "Work with rule files: list them, validate them, explain one, run their examples, generate docs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", parser_class=type(parser))
    sub.required = True
    p = sub.add_parser("list", help="id, name, severity, tags, enabled and source of every rule")
    add_rule_options(p)
    p.set_defaults(_run=run_list)
    p = sub.add_parser("check", help="validate rule files (all errors of all files); exit 0 or 2")
    p.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders (default: the configured rules)")
    add_rule_options(p)
    p.set_defaults(_run=run_check)
    p = sub.add_parser("explain", help="a rule's description, effective params and compiled condition")
    p.add_argument("rule", metavar="RULE", help="rule id or name")
    add_rule_options(p)
    p.set_defaults(_run=run_explain)
    p = sub.add_parser("test", help="run the rules' examples; exit 1 when one fails")
    p.add_argument("paths", nargs="*", metavar="PATH", help="test only the rules of these files or folders")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing examples too")
    add_rule_options(p)
    p.set_defaults(_run=run_test)
    p = sub.add_parser("doc", help="Markdown reference of the rules (or, with --language, of the language)")
    p.add_argument("--language", action="store_true", help="document fields, functions, constants and error codes")
    p.add_argument("-o", "--output", default="-", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--update", metavar="FILE",
                   help="rewrite only the generated section of this Markdown file (between its markers)")
    add_rule_options(p)
    p.set_defaults(_run=run_doc)


def run(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands set their own _run
    return args._run(args)


def run_list(args: argparse.Namespace) -> int:
    ruleset = load_rules(args)
    rows = [("ID", "NAME", "SEVERITY", "ENABLED", "TAGS", "SOURCE")]
    for r in sorted(ruleset.rules, key=lambda r: r.id):
        m = r.meta
        severity = "|".join([m.severity.label, *(lvl.label for lvl, _ in r.severity_when)])
        # "off": enabled, but its parameters make it constant false (HL014 without a limit)
        enabled = ("off" if r.never else "yes") if m.enabled else "no"
        rows.append((m.id, m.name, severity, enabled, ",".join(m.tags) or "-", m.source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] + "\n")
    return 0


def run_check(args: argparse.Namespace) -> int:
    ruleset = load_rules(args, extra_paths=args.paths)
    n_files = len(ruleset.files.files)
    sys.stdout.write(f"{len(ruleset.rules)} rule(s), {len(ruleset.files.macros)} macro(s), "
                     f"{len(ruleset.files.lists)} list(s) in {n_files} file(s): OK\n")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from heaplint.engine.events import KIND_NAMES
    from heaplint.rules import registry as R
    from heaplint.rules.literals import canonical

    r = load_rules(args).get(args.rule)
    spec = r.spec
    out = [f"{spec.id} {spec.name}: {spec.title}", f"  source:   {spec.source}",
           f"  severity: {r.severity.label}" + (" (conditional)" if r.severity_when else ""),
           f"  enabled:  {'yes' if r.meta.enabled else 'no'}",
           f"  trigger:  {r.trigger}" + (f" ({r.scope})" if r.scope else "")]
    if r.grouping is not None and r.grouping.over:
        out.append(f"  window:   {canonical('duration', r.grouping.over)} by {', '.join(r.by) or '(process)'}")
    elif r.by:
        out.append(f"  groups:   by {', '.join(r.by)}")
    if r.trigger != "end":
        if r.uses_anomaly:
            kinds = "any anomaly" if r.anomalies is None else ", ".join(sorted(r.anomalies))
            out.append(f"  runs on:  events with anomalies: {kinds}")
        else:
            kinds = "every event" if r.kinds is None else ", ".join(KIND_NAMES[k] for k in sorted(r.kinds))
            out.append(f"  runs on:  {kinds}")
    if r.never:
        out.append("  note:     the condition is constant false with these parameters: the rule never fires")
    if spec.params:
        out.append("  params:")
        for name, p in spec.params.items():
            value = canonical(p.type, r.params[name], R.ENUM_NAMES)
            default = canonical(p.type, p.default, R.ENUM_NAMES)
            changed = "" if value == default else f" (default {default})"
            out.append(f"    ${name}: {p.type} = {value}{changed}" + (f"  # {p.doc}" if p.doc else ""))
    for label, text in r.texts.items():
        out.append(f"  {label}:")
        out.append(f"    {text}")
    out.append("  when:")
    out.append(f"    {r.when.text}")
    if spec.description:
        out += ["", spec.description.rstrip()]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def run_test(args: argparse.Namespace) -> int:
    from heaplint.rules.testing import run_examples

    ruleset = load_rules(args, extra_paths=args.paths)
    rules = ruleset.rules
    if args.paths:
        wanted = [os.path.abspath(p) for p in args.paths]
        rules = [r for r in rules if any(os.path.abspath(r.spec.loc.yfile.source.path).startswith(w) for w in wanted)]
    results = run_examples(ruleset, rules)
    failed = [x for x in results if not x.passed]
    for x in results:
        if x.passed and not args.verbose:
            continue
        status = "PASS" if x.passed else "FAIL"
        line = f"{status} {x.rule_id} {x.rule_name} :: {x.example} ({x.source})"
        sys.stdout.write(line + (f"\n     {x.detail}" if x.detail else "") + "\n")
    without = [r.id for r in rules if not r.spec.examples]
    sys.stdout.write(f"{len(results) - len(failed)} passed, {len(failed)} failed, "
                     f"{len(rules)} rule(s)" + (f"; without examples: {', '.join(without)}" if without else "") + "\n")
    return 1 if failed else 0


def run_doc(args: argparse.Namespace) -> int:
    from heaplint.engine.errors import UsageError
    from heaplint.rules.docgen import BEGIN, RULES_BEGIN, language_reference, replace_section, rules_reference

    if args.update:
        body = language_reference() if args.language else rules_reference(load_rules(args).rules, title=None)
        try:
            with open(args.update, encoding="utf-8") as f:
                text = replace_section(f.read(), BEGIN if args.language else RULES_BEGIN, body)
        except OSError as err:
            raise UsageError(f"cannot read: {err.strerror}", path=args.update) from err
        except UnicodeDecodeError as err:
            raise UsageError(f"not UTF-8 text: {err.reason}", path=args.update) from err
        except ValueError as err:
            raise UsageError(str(err), path=args.update) from err
        write_atomic(args.update, text.encode("utf-8"))
        return 0
    text = language_reference() if args.language else rules_reference(load_rules(args).rules)
    write_atomic(args.output, text.encode("utf-8"))
    return 0
