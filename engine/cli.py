"""The ``heaplint`` command line.

Subcommands are one explicit table (``COMMANDS``); each names a module with
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.  This module is
the only place that turns errors into messages and exit codes:

* 0 / 1 — the command's own result (1: findings at or above ``--fail-on``);
* 2 — usage, rule or trace errors, printed as ``path:line[:col]: message``;
* a full disk or quota while writing (stdout included) is exit 2 too;
* anything unexpected is a bug: traceback plus a "please report" line, exit 3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

from heaplint.engine.errors import ErrorCollection, HeaplintError
from heaplint.engine.output import WRITE_ERRNOS

#: subcommand -> module.  Order is the order ``heaplint --help`` lists them.
COMMANDS: dict[str, str] = {
    "check": "heaplint.engine.commands.check",
    "stats": "heaplint.engine.commands.stats",
    "convert": "heaplint.engine.commands.convert",
    "synth": "heaplint.engine.commands.synth",
    "rules": "heaplint.engine.commands.rules",
    "baseline": "heaplint.engine.commands.baseline",
}

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_BUG = 3
REPORT_URL = "https://github.com/heaplint/heaplint/issues"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and our prefix."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"heaplint: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    from heaplint.engine import __version__
    from heaplint.engine.readers.etl_native import status

    parser = _Parser(
        prog="heaplint",
        description="Find heap leaks and heap misuse in Windows heap traces, and gate CI on them.",
    )
    parser.add_argument("--version", action="version", version=f"heaplint {__version__} (.etl reader: {status()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # a command still being built
            raise
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = int(args._run(args))
        sys.stdout.flush()  # a full disk or quota shows here, not after main returns
        return code
    except ErrorCollection as errs:
        for err in errs.errors:
            _print_error(err)
        sys.stderr.write(f"heaplint: {len(errs.errors)} error(s)\n")
        return EXIT_ERROR
    except HeaplintError as err:
        _print_error(err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("heaplint: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            return _bug()
        _print_error(HeaplintError(f"cannot write: {err.strerror}", path=err.filename or "<stdout>"))
        return EXIT_ERROR
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
    except Exception:  # noqa: BLE001 - the one place a bug is turned into a report
        return _bug()


def _bug() -> int:
    traceback.print_exc()
    sys.stderr.write(f"heaplint: internal error; this is a bug, please report it at {REPORT_URL}\n")
    return EXIT_BUG


def _print_error(err: HeaplintError) -> None:
    sys.stderr.write(f"{err}\n")
    context = getattr(err, "context", None)
    if context:
        sys.stderr.write(context.rstrip("\n") + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
