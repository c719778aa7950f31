"""The small sub-commands: ``schema``, ``demo``, ``receipts report`` and ``budget status``.

Each is a wrapper over one library function; the heavy modules are imported inside the
handlers so that loading this module costs nothing.

Example:
    >>> schema_text().startswith("{")
    True
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from policyroute.cli_output import devices, not_a_file, usage_error

if TYPE_CHECKING:
    from policyroute.policy.model import StoreSpec

__all__ = [
    "run_budget_status",
    "run_demo",
    "run_receipts_report",
    "run_schema",
    "schema_text",
    "store_note",
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


def run_receipts_report(args: argparse.Namespace) -> int:
    """Summarise receipts files by ``args.by`` in ``args.format``.

    Every skipped line is named on stderr (``file:line: why``). A line a killed writer left
    is a warning; any other bad line (not JSON, a receipt with wrong-typed fields) means the
    totals are short, so the report is still printed but the exit status is 1. A file named
    twice is read once, with a note; so is a receipt found in more than one input, and one
    whose identity was read before with other content is an error.
    """
    from policyroute.costs.report import format_report, load_receipts, summarize

    if "-" in args.files:
        # Standard input, read as the file it is (gzip or not, once: a pipe cannot be reread).
        if not Path(_STDIN).exists():
            return usage_error("receipts report", f"- (standard input) needs {_STDIN}")
        args.files = [_STDIN if f == "-" else f for f in args.files]
    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        return usage_error("receipts report", f"no such file: {', '.join(missing)}")
    unreadable = devices(args.files)
    if unreadable:
        return usage_error("receipts report", f"not a file: {', '.join(unreadable)}")
    records = load_receipts(args.files)
    report = summarize(records, args.by)
    text = format_report(report, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    for path, first in records.repeated:
        note = f"{path} is the same file as {first}: read once"
        print(f"policyroute receipts report: note: {note}", file=sys.stderr)
    if records.duplicates:
        note = f"{records.duplicates} duplicate receipt(s) read more than once: counted once"
        print(f"policyroute receipts report: note: {note}", file=sys.stderr)
    shown = records.problems[:MAX_LINE_PROBLEMS]
    for problem in shown:
        level = "warning" if problem.partial else "error"
        print(f"policyroute receipts report: {level}: {problem.format()}", file=sys.stderr)
    if records.problem_count > len(shown):
        more = records.problem_count - len(shown)
        print(f"policyroute receipts report: ... and {more} more bad line(s)", file=sys.stderr)
    return 1 if records.error_count else 0


def run_budget_status(args: argparse.Namespace) -> int:
    """Show every budget of ``args.policy``: limit, spend and what is left, per scope.

    Every budget gets a row, ``call`` budgets and ``per`` budgets nothing was charged to yet
    included (see :mod:`policyroute.budgets.status` for how those read).
    """
    from policyroute.budgets.status import budget_status, format_status
    from policyroute.policy.loader import load_policy

    problem = not_a_file(args.policy, "policy")
    if problem:
        return usage_error("budget status", problem)
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
    if store.backend == "sqlite" and not Path(store.path).exists():
        where = Path(store.path)
        shown = where if where.is_absolute() else f"{where} (from {Path.cwd()})"
        return f"budget store {shown} does not exist: nothing charged yet, or a wrong path"
    return None
