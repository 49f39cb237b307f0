"""The `advisor` command line: a thin shell that parses arguments, calls one function and
renders its result.

Each command lives in `advisor/commands/<name>.py` and provides `HELP` (one line),
`add_arguments(parser)` and `run(args) -> CommandResult`. Exit codes: 0 success, 1 a domain
failure, 2 bad usage or bad input. No traceback reaches the user unless `--debug` asks.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from advisor.errors import ConfigError, DomainFailure
from advisor.output import CommandResult, dumps, error_line, make_console, to_jsonable

# Order is the order shown in `advisor --help`.
COMMANDS = ["profile", "fit", "assess", "recommend", "check", "trial", "simulate", "whatif", "logs",
            "report", "gpus", "pools"]


_JSON_ERRORS = False   # set by main(): whether errors must also be a JSON document on stdout
_MAX_VALUE_CHARS = 1000


def _json_value(value: Any) -> Any:
    """A bad value as JSON: itself where it is plain data, else its repr; long ones shortened."""
    try:
        plain = to_jsonable(value)
        text = dumps(plain)
    except (TypeError, ValueError, RecursionError):
        plain = text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        return text[:_MAX_VALUE_CHARS] + f"... ({len(text)} characters)"
    return plain


def error_document(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """The one JSON document printed on stdout under --json when a command fails:
    {"error", "field", "value", "fix", "exit_code"} (and a DomainFailure's details)."""
    if isinstance(exc, ConfigError):
        doc: dict[str, Any] = {"error": str(exc), "field": exc.field, "value": _json_value(exc.value),
                               "fix": exc.fix, "source": exc.source}
        if exc.suggestions:
            doc["suggestions"] = exc.suggestions
    elif isinstance(exc, DomainFailure):
        details = {k: _json_value(v) for k, v in exc.details.items()}
        doc = {"error": str(exc), "field": details.pop("field", None),
               "value": details.pop("value", None), "fix": details.pop("fix", None), **details}
    else:
        doc = {"error": str(exc), "field": None, "value": None, "fix": None}
    doc["exit_code"] = exit_code
    return doc


def _print_json(doc: dict[str, Any]) -> None:
    try:
        text = dumps(doc)
    except (TypeError, ValueError):
        text = dumps({k: _json_value(v) for k, v in doc.items()})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a 'To fix' hint on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        fix = f"see `{self.prog} --help`."
        if _JSON_ERRORS:
            m = re.match(r"argument ([^:]+): (.*)", message, re.S)
            field = m.group(1).split("/")[-1] if m else None
            _print_json({"error": f"error: {message}", "field": field, "value": None, "fix": fix,
                         "exit_code": 2})
        error_line(f"error: {message}\n  To fix: {fix}")
        raise SystemExit(2)


def _wants_json(argv: Sequence[str]) -> bool:
    """--json among the advisor's own arguments (a profiled script's, after `--`, do not count)."""
    args = list(argv)
    if "--" in args:
        args = args[:args.index("--")]
    return "--json" in args


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
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    global _JSON_ERRORS
    argv = list(sys.argv[1:] if argv is None else argv)
    _JSON_ERRORS = _wants_json(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    want_json = bool(getattr(args, "json", False))
    try:
        from advisor.commands.common import check_numbers

        check_numbers(args._parser, args)
        result: CommandResult = args._run(args)
    except ConfigError as exc:
        if debug:
            raise
        if want_json:
            _print_json(error_document(exc, 2))
        error_line("error: " + str(exc))
        return 2
    except DomainFailure as exc:
        if debug:
            raise
        if want_json:
            _print_json(error_document(exc, 1))
        error_line("failed: " + str(exc))
        return 1
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except (RecursionError, MemoryError) as exc:
        if debug:
            raise
        what = "too deeply nested" if isinstance(exc, RecursionError) else "too large for memory"
        doc = {"error": f"the input is {what} to process.", "field": None, "value": None,
               "fix": "give a smaller or flatter input.", "exit_code": 2}
        if want_json:
            _print_json(doc)
        error_line(f"error: {doc['error']}\n  To fix: {doc['fix']}")
        return 2
    for w in result.warnings:
        error_line("warning: " + w)
    if want_json:
        sys.stdout.write(dumps(result.data) + "\n")
        sys.stdout.flush()
        if result.render is not None:  # people's output still shown, on stderr
            result.render(make_console(stderr=True))
    elif result.render is not None:
        result.render(make_console())
    else:
        sys.stdout.write(dumps(result.data) + "\n")
    return result.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
