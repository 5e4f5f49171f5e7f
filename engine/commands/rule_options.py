"""Command-line options that select and tune rules (shared by check and rules)."""

from __future__ import annotations

import argparse

from heaplint.engine.errors import UsageError


def add_rule_options(parser: argparse.ArgumentParser, *, with_rules: bool = True) -> None:
    """--rules, --no-builtin, --config, --enable, --disable, --param."""
    g = parser.add_argument_group("rules")
    if with_rules:
        g.add_argument("--rules", action="append", default=[], metavar="PATH",
                       help="rule file or folder, repeatable (in addition to the built-in rules)")
    g.add_argument("--no-builtin", action="store_true", help="do not load the built-in rules")
    g.add_argument("--config", metavar="FILE",
                   help="configuration file (default: heaplint.yaml or [tool.heaplint] in pyproject.toml, "
                   "searched upward from the current directory)")
    g.add_argument("--no-config", action="store_true", help="ignore any configuration file")
    g.add_argument("--enable", action="append", default=[], metavar="RULE",
                   help="enable rules by id, name or tag glob (repeatable; applied after --disable)")
    g.add_argument("--disable", action="append", default=[], metavar="RULE",
                   help="disable rules by id, name or tag glob (repeatable)")
    g.add_argument("--param", action="append", default=[], metavar="RULE.NAME=VALUE",
                   help="override a rule parameter, e.g. HL002.threshold=100 (repeatable)")


def param_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--param`` values as a mapping."""
    out: dict[str, str] = {}
    for item in getattr(args, "param", []) or []:
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise UsageError(f"--param {item}: write RULE.NAME=VALUE, e.g. HL002.threshold=100", code="HLR041")
        out[key.strip()] = value.strip()
    return out


def rule_set_args(args: argparse.Namespace, extra_paths: list[str] | None = None):
    """The options as :class:`heaplint.engine.parallel.RuleSetArgs` (picklable,
    so that ``--jobs`` workers can build the same rule set)."""
    from heaplint.engine.parallel import RuleSetArgs

    return RuleSetArgs.of(
        [*(getattr(args, "rules", None) or []), *(extra_paths or [])],
        no_builtin=args.no_builtin,
        config_path=args.config,
        use_config=not args.no_config,
        enable=args.enable,
        disable=args.disable,
        params=param_overrides(args),
    )


def load_rules(args: argparse.Namespace, extra_paths: list[str] | None = None):
    """The RuleSet the options describe (it remembers them: ``ruleset.load_args``)."""
    return rule_set_args(args, extra_paths).load()
