"""The small sub-commands: ``schema``, ``demo``, ``receipts report`` and ``budget status``.

Each is a wrapper over one library function; the heavy modules are imported inside the
handlers so that loading this module costs nothing.

Example:
    >>> schema_text().startswith("{")
    True
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from policyroute._display_width import printable
from policyroute._files import path_kind
from policyroute.cli_output import (
    USAGE_ERROR,
    devices,
    json_error,
    not_a_file,
    plural,
    usage_error,
)

if TYPE_CHECKING:
    from policyroute.policy.model import StoreSpec

__all__ = [
    "run_budget_status",
    "run_demo",
    "run_receipts_report",
    "run_schema",
    "schema_text",
    "store_note",
    "unread_note",
]


def schema_text() -> str:
    """The policy JSON Schema shipped in the package, exactly as stored."""
    return resources.files("policyroute.schema").joinpath("policy.schema.json").read_text("utf-8")


def run_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema (for editors: ``policyroute schema > policy.schema.json``)."""
    text = schema_text()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Run the offline demo and return its status."""
    from policyroute.demo import run_demo as demo

    status: int = demo(sys.stdout)
    return status


# Enough to see what is wrong with a file without burying the report under a broken one.
MAX_LINE_PROBLEMS = 20


_STDIN = "/dev/stdin"
_STDIN_NAME = "<stdin>"  # as explain names a request read from standard input


def run_receipts_report(args: argparse.Namespace) -> int:
    """Summarise receipts files by ``args.by`` in ``args.format``.

    Every skipped line is named on stderr (``file:line: why``). A line a killed writer left
    is a warning; any other bad line (not JSON, a receipt with wrong-typed fields) means the
    totals are short, so the report is still printed but the exit status is 1. A file named
    twice is read once, with a note; so is a receipt found in more than one input, and one
    whose identity was read before with other content is an error.

    Every input is read, even when one cannot be: a path that does not exist, a device (but
    not standard input from ``/dev/null``, which is read as empty, as an empty file is), a
    folder or a file without read permission is named in its place among the problems and
    again at the end, and the totals of the others are printed, marked as leaving it out: the
    JSON report always lists ``unread_files`` and then also carries ``error``, the table ends
    with :func:`unread_note`'s line, CSV (rows only) has the exit status. The exit status
    is then 2 when such a path does not exist or is a device (a usage error, as for
    ``validate``), else 1. When no input could be read there
    are no totals: only the error is printed.
    """
    from policyroute.costs.receipt_json import utf8_safe
    from policyroute.costs.report import format_report, load_receipts, summarize

    as_json = args.format == "json"
    # Messages name standard input "<stdin>", unless /dev/stdin itself was given too.
    reads_stdin = "-" in args.files and _STDIN not in args.files
    if "-" in args.files:
        # Standard input, read as the file it is (gzip or not, once: a pipe cannot be reread).
        if not Path(_STDIN).exists():
            message = f"- (standard input) needs {_STDIN}"
            return usage_error("receipts report", message, json_output=as_json)
        args.files = [_STDIN if f == "-" else f for f in args.files]

    def named(path: str) -> str:
        # Standard input is named as such, not by the path it is read through.
        return _STDIN_NAME if reads_stdin and path == _STDIN else path

    records = load_receipts(args.files, skip_unreadable=True)
    report = summarize(records, args.by)
    unread = records.unread
    read_any = len({path for path, _ in unread}) < len(set(args.files))
    error = _unread_error(unread, named)
    unread = [(named(path), why) for path, why in unread]
    if read_any:
        if as_json:
            doc = report.as_dict()
            for problem in doc["problems"]:
                problem["file"] = named(problem["file"])
            doc["unread_files"] = [{"file": utf8_safe(path), "reason": why} for path, why in unread]
            if error is not None:
                doc["error"] = {"type": error[0], "message": error[1]}
            text = json.dumps(doc, indent=2) + "\n"
        else:
            text = format_report(report, args.format)
            if unread and args.format == "table":
                text += "\n" + unread_note(unread) + "\n"
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    for path, first in records.repeated:
        note = f"{named(path)} is the same file as {named(first)}: read once"
        print(f"policyroute receipts report: note: {note}", file=sys.stderr)
    if records.duplicates:
        note = f"{records.duplicates} duplicate receipt(s) read more than once: counted once"
        print(f"policyroute receipts report: note: {note}", file=sys.stderr)
    shown = records.problems[:MAX_LINE_PROBLEMS]
    for problem in shown:
        level = "warning" if problem.partial else "error"
        where = replace(problem, file=named(problem.file))
        print(f"policyroute receipts report: {level}: {where.format()}", file=sys.stderr)
    if records.problem_count > len(shown):
        more = records.problem_count - len(shown)
        print(f"policyroute receipts report: ... and {more} more bad line(s)", file=sys.stderr)
    if error is None:
        return 1 if records.error_count else 0
    kind, message = error
    print(f"policyroute receipts report: error: {message}", file=sys.stderr)
    if as_json and not read_any:
        json_error(kind, message)
    return USAGE_ERROR if kind == "UsageError" else 1


def _unread_error(
    unread: Sequence[tuple[str, str]], named: Callable[[str], str] = str
) -> tuple[str, str] | None:
    """The error type and message for the inputs that could not be read, or ``None``; the
    message names each path as ``named`` gives it.

    A path that does not exist or is a device is a usage error (exit 2); a folder or a file
    that cannot be opened is an unreadable input (exit 1), as the CLI's exit codes say.
    """
    from policyroute.costs.receipt_json import utf8_safe

    if not unread:
        return None
    paths = list(dict.fromkeys(path for path, _ in unread))
    missing = [p for p in paths if path_kind(p) == "missing"]  # exists() raises on a long name
    devs = devices(paths)
    parts = []
    if missing:
        parts.append(
            f"no such file or directory: {', '.join(utf8_safe(named(p)) for p in missing)}"
        )
    if devs:
        parts.append(f"not a file: {', '.join(utf8_safe(named(p)) for p in devs)}")
    others = [p for p in paths if p not in missing and p not in devs]
    if others:
        parts.append(f"cannot read: {', '.join(utf8_safe(named(p)) for p in others)}")
    kind = "UsageError" if missing or devs else "OSError"
    return kind, "; ".join(parts)


def unread_note(unread: Sequence[tuple[str, str]]) -> str:
    """The line under a report whose totals leave inputs out, naming each and why (a name
    that is not valid UTF-8 is printed escaped, as every command's output is: see
    :func:`policyroute.cli.main`).

    Example:
        >>> print(unread_note([("b.jsonl", "no such file or directory")]))
        INCOMPLETE: 1 input not read, the totals leave it out: b.jsonl (no such file or directory)
    """
    names = "; ".join(f"{path} ({why})" for path, why in unread)
    count = len(unread)
    them = "it" if count == 1 else "them"
    return f"INCOMPLETE: {plural(count, 'input')} not read, the totals leave {them} out: {names}"


def run_budget_status(args: argparse.Namespace) -> int:
    """Show every budget of ``args.policy``: limit, spend and what is left, per scope.

    Every budget gets a row, ``call`` budgets and ``per`` budgets nothing was charged to yet
    included (see :mod:`policyroute.budgets.status` for how those read).
    """
    from policyroute.budgets.status import budget_status, format_status
    from policyroute.policy.loader import load_policy

    problem = not_a_file(args.policy, "policy")
    if problem:
        return usage_error("budget status", problem, json_output=args.format == "json")
    policy = load_policy(args.policy)
    rows = budget_status(policy)
    text = format_status(rows, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    note = store_note(policy.spec.store) if any(r.state != "per-call" for r in rows) else None
    if note:
        print(f"policyroute budget status: note: {note}", file=sys.stderr)
    return 0


def store_note(store: StoreSpec) -> str | None:
    """Why a status read from ``store`` may show no spend although calls were made, or ``None``.

    Zero spend from a store that cannot hold any is not news about the budgets; said on
    stderr, it keeps a misplaced store path from passing for an idle budget.

    Example:
        >>> from policyroute.policy.model import StoreSpec
        >>> print(store_note(StoreSpec(backend="memory")))
        the budget store is in memory: spend lives only in the process making the calls
    """
    if store.backend == "memory":
        return "the budget store is in memory: spend lives only in the process making the calls"
    # "~" as the store reads it (policyroute.budgets.stores.sqlite.SQLiteStore).
    if store.backend == "sqlite" and not Path(os.path.expanduser(store.path)).exists():
        where = Path(os.path.expanduser(store.path))
        shown = where if where.is_absolute() else f"{where} (from {Path.cwd()})"
        return (
            f"budget store {printable(str(shown))} does not exist: nothing charged yet, or a"
            " wrong path"
        )
    return None
