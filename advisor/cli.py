"""The `advisor` command line: a thin shell that parses arguments, calls one function and
renders its result.

Each command lives in `advisor/commands/<name>.py` and provides `HELP` (one line),
`add_arguments(parser)` and `run(args) -> CommandResult`. Exit codes: 0 success, 1 a domain
failure, 2 bad usage or bad input. No traceback reaches the user unless `--debug` asks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from advisor.errors import ConfigError, DomainFailure
from advisor.output import CommandResult, dumps, error_line, make_console

# Order is the order shown in `advisor --help`.
COMMANDS = ["profile", "fit", "assess", "recommend", "check", "simulate", "whatif", "logs",
            "report", "gpus", "pools"]


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a 'To fix' hint on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        error_line(f"error: {message}\n  To fix: see `{self.prog} --help`.")
        raise SystemExit(2)


def _available_commands() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"advisor.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"advisor.commands.{name}":
                continue  # not built yet
            raise
        found.append((name, module))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="advisor",
        description="Resource-fit advisor and throughput simulator for ML on HTC GPU pools.",
    )
    parser.add_argument("--debug", "-v", action="store_true",
                        help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _available_commands():
        help_text = getattr(module, "HELP", None) or (module.__doc__ or "").strip().splitlines()[0]
        # argparse %-formats help strings (a literal "95%" must be "95%%"); descriptions are not.
        help_text = help_text.replace("%", "%%")
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--json", action="store_true",
                       help="print exactly one JSON document on stdout (people's output to stderr)")
        p.add_argument("--debug", "-v", action="store_true", default=argparse.SUPPRESS,
                       help="show Python tracebacks for errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    want_json = bool(getattr(args, "json", False))
    try:
        result: CommandResult = args._run(args)
    except ConfigError as exc:
        if debug:
            raise
        error_line("error: " + str(exc))
        return 2
    except DomainFailure as exc:
        if debug:
            raise
        if want_json:
            print(dumps({"error": str(exc), **exc.details}))
        error_line("failed: " + str(exc))
        return 1
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    for w in result.warnings:
        error_line("warning: " + w)
    if want_json:
        sys.stdout.write(dumps(result.data) + "\n")
        sys.stdout.flush()
    elif result.render is not None:
        result.render(make_console())
    else:
        sys.stdout.write(dumps(result.data) + "\n")
    return result.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
