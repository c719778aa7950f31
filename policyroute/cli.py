"""The ``policyroute`` command line: argument parsing and dispatch, nothing else.

Each sub-command lives in its own ``policyroute/cli_*.py`` module and is imported only when it
runs, so ``policyroute validate`` never pays for importing litellm, LangChain or the executor.
Exit status, the same for every sub-command:

- 0: done, nothing wrong.
- 1: problems found: an invalid policy, a failing policy test, a request that cannot be read
  or routed, malformed receipt lines, an unreadable input file, an unreachable budget store,
  or standard output closed or gone (``policyroute receipts report big.jsonl | head -1``).
- 2: usage error: unknown command or flag, a bad ``--format``/``--by`` value, an input file
  that does not exist (or is a device), a folder given to ``validate`` that holds no policy
  file or to ``test`` that holds no tests file. ``validate``, ``test`` and ``receipts
  report`` still check every other path first and report each such one in its place, so one
  stale name in a pre-commit hook's list hides nothing; the status 2 then says a path was
  wrong.
- 70: an internal error: a bug in policyroute, not a problem with the input. One line on
  stderr; ``POLICYROUTE_TRACEBACK=1`` shows the traceback.
- 130: interrupted (Ctrl-C).

Every error goes to stderr as ``policyroute <command>: error: <what>`` with the file and,
where it has one, the line and column or JSON path; a traceback is never the answer to bad
input. Control characters in it (from a path or a value in the user's files) are shown
escaped, line breaks aside; the JSON error document keeps the exact text.
With ``--format json``, a command that fails with status 1 or 2 also prints
``{"error": {"type", "message"[, "diagnostics"]}}`` on stdout, unless its report already is
that document (``validate`` lists a missing file among the others). That holds for a command
line argparse refuses too (type ``UsageError``, argparse's message), whenever ``--format json``
was given to a command that has ``--format`` (see :mod:`policyroute.cli_args`); its usage
message stays on stderr.

Example:
    >>> main(["schema"])  # doctest: +SKIP
    0

Commands::

    policyroute validate PATH... [--format text|json|github] [--strict]
    policyroute explain POLICY --request FILE|- [--format text|json]
    policyroute test PATH...
    policyroute schema
    policyroute demo
    policyroute receipts report FILE... [--by KEYS] [--format table|json|csv]
    policyroute budget status POLICY [--format table|json|csv]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from policyroute._display_width import printable
from policyroute.cli_args import FORMATS, requested_format
from policyroute.cli_output import USAGE_ERROR, json_error
from policyroute.errors import PolicyRouteError, PolicyValidationError

__all__ = ["INTERNAL_ERROR", "INTERRUPTED", "build_parser", "main"]

INTERNAL_ERROR = 70
"""Exit status for a failure inside policyroute itself (``EX_SOFTWARE`` of sysexits.h)."""

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""

# POLICYROUTE_TRACEBACK values that leave the traceback off, as unset does.
_OFF = frozenset({"", "0", "false", "no", "off"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("policyroute")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version`` that reads package metadata only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"policyroute {_version()}")
        parser.exit()


def _report_keys(text: str) -> tuple[str, ...]:
    # Imported when --by is given, not when the parser is built: `validate` never pays for it.
    from policyroute.costs.report import DIMENSIONS

    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in DIMENSIONS]
    if not keys or unknown:
        bad = ", ".join(unknown) or repr(text)
        raise argparse.ArgumentTypeError(
            f"invalid key(s) {bad}; choose from {','.join(DIMENSIONS)}"
        )
    return keys


_DEFAULT_REPORT_KEYS = ("provider", "model")


class _ReportKeys(argparse.Action):
    """``--by`` given more than once adds up: ``--by model --by user`` breaks down by both,
    each key once, in the order given (the default is replaced, not added to)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, self.dest, None)
        before = () if given is None or given is _DEFAULT_REPORT_KEYS else tuple(given)
        setattr(namespace, self.dest, tuple(dict.fromkeys((*before, *values))))


class ArgumentsError(Exception):
    """A command line argparse refused: ``prog`` is the (sub-)command's name, ``message``
    argparse's explanation. Raised instead of exiting, so that :func:`main` can answer it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a usage error raises :class:`ArgumentsError` (after
    printing the usage, as argparse does) instead of exiting with status 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise ArgumentsError(self.prog, message)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self.get_default("handler") is not None:
            # argparse leaves unknown arguments to the top-level parser, whose message and
            # usage would name `policyroute` instead of the command they were given to.
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _add_format(p: argparse.ArgumentParser, words: tuple[str, ...], text: str) -> None:
    choices = FORMATS[words]
    p.add_argument("--format", choices=choices, default=choices[0], help=text)


_EPILOG = """\
exit status: 0 ok; 1 problems found (an invalid policy, a failing test, a request that cannot be
read or routed, bad receipt lines, an unreadable input); 2 usage error (also a path that does
not exist); 70 internal error; 130 interrupted. With --format json, an error is also printed
on stdout as {"error": {"type", "message"[, "diagnostics"]}}."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each sub-command sets ``handler`` to ``"module:function"``.

    A usage error raises :class:`ArgumentsError` instead of exiting (see :func:`main`).
    """
    parser = _Parser(
        prog="policyroute",
        description="Validate, explain and test policyroute routing policies; report spend\n"
        "from cost receipts and budget stores.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser(
        "validate",
        help="check policy files against the schema and rules",
        description="Check policy files against the schema and rules. A file given is always"
        " checked; a folder is searched for *.yaml and *.yml files, passing over policy tests"
        " files (*.tests.yaml, *_tests.yaml), hidden files and folders (.github, .venv, ...),"
        " node_modules, __pycache__ and Python virtual environments. A file named more than"
        " once is checked and reported once. A folder with no policy file, like a path that"
        " does not exist, is an error (exit 2).",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="policy files, or folders to search for them"
    )
    _add_format(
        p,
        ("validate",),
        "text: one line per problem and a summary (default); json: one document with"
        " every file's diagnostics;"
        " github: GitHub Actions annotations",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1 on any)")
    p.set_defaults(handler="cli_validate:run")

    p = commands.add_parser(
        "explain",
        help="show how a policy routes one request",
        description="Show how a policy routes one request: the route chosen and why the"
        " others were skipped, the candidates in the order they would be tried with their"
        " prices and worst-case cost, the parameters sent and the budgets that apply."
        " Nothing is sent to a provider.",
    )
    p.add_argument("policy", metavar="POLICY", help="the policy file")
    p.add_argument(
        "--request",
        required=True,
        metavar="FILE",
        help="the request, as YAML or JSON shaped like a policy test's request; '-' = stdin",
    )
    _add_format(p, ("explain",), "text (default) or json")
    p.set_defaults(handler="cli_explain:run")

    p = commands.add_parser(
        "test",
        help="run policy unit tests (*.tests.yaml, *_tests.yaml)",
        description="Run policy unit tests: each tests file names a policy and lists cases,"
        " each a request and what routing it should give (route, model, candidates, params,"
        " budgets, or the error). A failing case prints a diff; exit 1 on any failure.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="tests files, or folders to search for them"
    )
    p.set_defaults(handler="cli_test:run")

    p = commands.add_parser(
        "schema",
        help="print the policy JSON Schema",
        description="Print the policy JSON Schema, for editors:"
        " policyroute schema > policy.schema.json",
    )
    p.set_defaults(handler="cli_misc:run_schema")

    p = commands.add_parser(
        "demo",
        help="run the offline demo",
        description="Make four LangChain calls through a small policy, against a fake provider"
        " on 127.0.0.1: no API key and no network needed.",
    )
    p.set_defaults(handler="cli_misc:run_demo")

    receipts = commands.add_parser("receipts", help="work with cost receipts")
    sub = receipts.add_subparsers(dest="receipts_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "report",
        help="summarise receipts files",
        description="Add up spend, calls, attempts and tokens from receipts files, in total and"
        " per value of each --by key. Each receipt counts once, even when inputs overlap;"
        " lines that cannot be added up are named on stderr (exit 1 if any is an error).",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="JSON-lines receipts files (plain or gzip) or SQLite receipts databases; '-' = stdin",
    )
    p.add_argument(
        "--by",
        type=_report_keys,
        action=_ReportKeys,
        default=_DEFAULT_REPORT_KEYS,
        metavar="KEYS",
        help="comma-separated keys, each giving a breakdown of its own (keys are not crossed):"
        " provider, model, deployment, route, user, budget, day, policy, status"
        " (default provider,model; given again, the keys add up)",
    )
    _add_format(p, ("receipts", "report"), "table (default), json or csv")
    p.set_defaults(handler="cli_misc:run_receipts_report")

    budget = commands.add_parser("budget", help="inspect budgets")
    sub = budget.add_subparsers(dest="budget_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "status",
        help="spend and limits of a policy's budgets",
        description="Show each budget of a policy: its limit, and the spend, reservations and"
        " what is left per scope in the current window, read from the policy's budget store.",
    )
    p.add_argument("policy", metavar="POLICY", help="the policy file")
    _add_format(p, ("budget", "status"), "table (default), json or csv")
    p.set_defaults(handler="cli_misc:run_budget_status")
    return parser


def _command_name(args: argparse.Namespace) -> str:
    """``receipts report``, ``budget status``, ``validate``: the words the user typed."""
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def _reader_gone() -> int:
    # The reader went away (`policyroute schema | head`); keep Python from complaining
    # again while flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        # Around the handlers too: an internal error's message may name a file that is not
        # UTF-8.
        with _printable_output():
            return _answered(argv)
    except BrokenPipeError:  # putting a stream back flushes it: the reader may be gone by then
        return _reader_gone()


def _answered(argv: Sequence[str] | None) -> int:
    """:func:`main`'s run of the command, with its answers to what escaped it."""
    try:
        status = _main(argv)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a closed pipe can still be answered quietly
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        # Ctrl-C while the parser is built or the command's module is imported, outside the
        # command itself: the same quiet status 130, not a traceback.
        return INTERRUPTED
    except Exception as exc:
        # Bad input is answered above with what is wrong and where; reaching here is a bug.
        # A CI log gets one line and a status of its own; the traceback is there on demand.
        if os.environ.get("POLICYROUTE_TRACEBACK", "").strip().lower() not in _OFF:
            raise
        print(
            f"policyroute: internal error: {type(exc).__name__}: {exc} (a bug in policyroute;"
            " set POLICYROUTE_TRACEBACK=1 to see where)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR
    return status


@contextlib.contextmanager
def _printable_output() -> Iterator[None]:
    """Standard output and error that print what their encoding cannot hold as ``\\x``/
    ``\\u`` escapes rather than raise: a file name of bytes that are not UTF-8 (held as lone
    surrogates), or any non-ASCII text on an ASCII terminal, then reads ``caf\\udce9.yaml`` in
    every command's messages instead of ending the command with an internal error. Restored
    on return, for a program that calls :func:`main` itself."""
    changed: list[tuple[io.TextIOWrapper, str]] = []
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            changed.append((stream, stream.errors))
            stream.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:
        for stream, errors in changed:
            if not stream.closed:
                stream.reconfigure(errors=errors)


def _json_error(
    args: argparse.Namespace, exc: Exception, diagnostics: list[dict[str, Any]] | None = None
) -> None:
    """With ``--format json``, the error as a JSON document on stdout too, so that a program
    reading the output gets a document, not nothing: ``{"error": {"type", "message",
    "diagnostics"}}``."""
    if getattr(args, "format", None) == "json":
        json_error(type(exc).__name__, str(exc), diagnostics)


def _escaped(exc: Exception) -> str:
    """``exc``'s message for the terminal: an escape sequence or a bidirectional override
    from a store path or a value in the policy is shown escaped, its line breaks kept."""
    return "\n".join(printable(line) for line in str(exc).split("\n"))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(arguments)
    except ArgumentsError as exc:
        if sys.stderr is not None:
            print(exc, file=sys.stderr)
        if requested_format(arguments) == "json":
            json_error("UsageError", exc.message)
        return USAGE_ERROR
    except SystemExit as exc:  # argparse exits 0 for --help and --version
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    command = _command_name(args)
    if sys.stdout is None:  # started with stdout closed (`policyroute ... >&-`)
        if sys.stderr is not None:
            print(f"policyroute {command}: error: standard output is closed", file=sys.stderr)
        return 1
    module_name, _, func_name = str(args.handler).partition(":")
    # Imported here, not at the top: each sub-command pays only for what it uses.
    handler = getattr(importlib.import_module(f"policyroute.{module_name}"), func_name)
    try:
        status: int = handler(args)
    except PolicyValidationError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        _json_error(args, exc, [d.as_dict() for d in exc.diagnostics])
        return 1
    except PolicyRouteError as exc:
        print(f"policyroute {command}: error: {_escaped(exc)}", file=sys.stderr)
        _json_error(args, exc)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        raise  # answered by main()
    except OSError as exc:  # unreadable input, unwritable store: a problem, not a crash
        print(f"policyroute {command}: error: {_escaped(exc)}", file=sys.stderr)
        _json_error(args, exc)
        return 1
    return status
