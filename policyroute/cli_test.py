"""``policyroute test PATH...``: run policy unit tests and show failures as diffs.

Output: one line per tests file, then every failing case with its ``file:line``, name and a
unified diff of expected vs actual, then ``N passed, M failed``. Exit 1 on any failure.

Example:
    >>> format_totals(12, 1, 0)
    '12 passed, 1 failed'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from policyroute._display_width import printable
from policyroute._files import dangling_link_text, path_kind
from policyroute.cli_output import USAGE_ERROR, Style, devices, plural, usage_error

if TYPE_CHECKING:
    from policyroute.policytest import SuiteResult

__all__ = ["format_totals", "render_results", "run"]


def format_totals(passed: int, failed: int, broken_files: int) -> str:
    """``N passed, M failed`` plus ``, K files with errors`` when some files could not run."""
    text = f"{passed} passed, {failed} failed"
    if broken_files:
        text += f", {plural(broken_files, 'file')} with errors"
    return text


def render_results(results: Sequence[SuiteResult], style: Style) -> str:
    """The report printed by ``policyroute test``."""
    out: list[str] = []
    for suite in results:
        if suite.problems:
            out.append(f"{style.red('ERROR')} {printable(suite.file)}")
        elif suite.failed:
            out.append(
                f"{style.red('FAIL')}  {printable(suite.file)}"
                f" ({suite.passed} passed, {suite.failed} failed)"
            )
        else:
            cases = plural(suite.passed, "case")
            out.append(f"{style.green('ok')}    {printable(suite.file)} ({cases})")
    for suite in results:
        if suite.problems:
            # One block per file: an invalid policy's header and its diagnostics stay together.
            out.append("")
            out.extend(style.red(printable(problem)) for problem in suite.problems)
        for case in suite.cases:
            if case.passed:
                continue
            out.append("")
            # Names and values come from the tests file: a line break in one would split the
            # report, an escape sequence would reach the terminal or CI log.
            name = printable(case.name)
            out.append(f"{style.red('FAILED')} {printable(case.location)} {style.bold(name)}")
            if case.error is not None:
                out.append(f"  {printable(case.error)}")
            else:
                diff = case.diff().splitlines()
                out.extend(f"  {style.diff_line(printable(line))}" for line in diff)
    passed = sum(s.passed for s in results)
    failed = sum(s.failed for s in results)
    broken = sum(1 for s in results if s.problems)
    totals = format_totals(passed, failed, broken)
    ok = not failed and not broken
    out.append("")
    out.append(style.green(totals) if ok else style.red(totals))
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Run the tests files in ``args.paths``; exit 1 if any case fails or any file is broken.

    A path that does not exist (or is a device), or a folder with no tests file, is a usage
    error, exit 2, but only once every other tests file has run: it is reported in its place,
    as a file with errors. What a folder holds that cannot be read (a broken link, a pipe) is
    a file with errors in its place, as ``validate`` reports it. Given nothing but folders
    with no tests file, only the usage error is printed.
    """

    from policyroute.policytest import (
        NO_TESTS_FILES,
        SuiteResult,
        locate_tests_files,
        run_tests_file,
    )

    located = locate_tests_files(args.paths)
    if all(why == NO_TESTS_FILES for _, why in located):
        named = ", ".join(dict.fromkeys(args.paths))
        return usage_error("test", f"no *.tests.yaml files found in {named}")
    results: list[SuiteResult] = []
    missing: list[str] = []
    unreadable: list[str] = []
    empty: list[str] = []
    for path, why in located:
        if why == NO_TESTS_FILES:
            empty.append(str(path))
            problem = f"{path}: {why}"
        elif why is not None:
            problem = f"{path}: {why}"
        elif path_kind(path) == "missing":
            missing.append(str(path))
            problem = f"{path}: {dangling_link_text(path) or 'no such file or directory'}"
        elif devices([str(path)]):
            unreadable.append(str(path))
            problem = f"{path}: not a file (a device is never read)"
        else:
            results.append(run_tests_file(path))
            continue
        results.append(SuiteResult(str(path), None, (), (problem,)))
    print(render_results(results, Style.for_stream(sys.stdout)))
    if missing:
        usage_error("test", f"no such file or directory: {', '.join(missing)}")
    if unreadable:
        usage_error("test", f"not a file: {', '.join(unreadable)}")
    if empty:
        usage_error("test", f"no *.tests.yaml files found in {', '.join(empty)}")
    if missing or unreadable or empty:
        return USAGE_ERROR
    return 0 if all(s.ok for s in results) else 1
