"""``policyroute validate``: check policy files and report every diagnostic.

Formats:

- ``text``: one ``file:line:col path: message (hint) [code]`` line per diagnostic (``file:
  message [code]`` for a problem of the whole file), then a summary such as ``2 errors,
  1 warning in 3 files``.
- ``json``: one document with every file's diagnostics (see :func:`report_as_json`).
- ``github``: GitHub Actions workflow commands (``::error file=...,line=...::message``) that
  turn into annotations on the pull request.

This module must stay cheap to import: validation runs in pre-commit hooks and editors, so it
never imports litellm, LangChain or the executor.

Example:
    >>> from policyroute.policy.diagnostics import Diagnostic
    >>> github_annotation(Diagnostic("PR104", "unknown model 'sonet'", "routes[2].to",
    ...                              "p.yaml", 14, 7))
    "::error file=p.yaml,line=14,col=7,title=PR104::routes[2].to: unknown model 'sonet'"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyroute._files import dangling_link, path_kind
from policyroute.cli_output import USAGE_ERROR, Style, devices, plural, usage_error

if TYPE_CHECKING:
    from policyroute.policy.diagnostics import Diagnostic
    from policyroute.policy.validate import ValidationResult

__all__ = [
    "FORMAT_VERSION",
    "collect_results",
    "format_summary",
    "github_annotation",
    "report_as_json",
    "run",
]

FORMAT_VERSION = 1
"""The layout of :func:`report_as_json` (``format_version`` in it): raised when a field is
removed, renamed or changes meaning, not when one is added (docs/cli-json.md)."""


def _escape_data(text: str) -> str:
    # The escaping GitHub's runner expects in a workflow command's message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(diagnostic: Diagnostic) -> str:
    """The diagnostic as a GitHub Actions ``::error``/``::warning`` workflow command."""
    d = diagnostic
    level = "error" if d.severity == "error" else "warning"
    props = [f"file={_escape_property(d.file)}"]
    if d.line:
        props.append(f"line={d.line}")
    if d.column:
        props.append(f"col={d.column}")
    props.append(f"title={_escape_property(d.code)}")
    message = f"{d.path}: {d.message}" if d.path else d.message
    if d.hint:
        message += f" ({d.hint})"
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def _counts(results: Sequence[ValidationResult]) -> tuple[int, int]:
    errors = sum(1 for r in results for d in r.diagnostics if d.severity == "error")
    warnings = sum(1 for r in results for d in r.diagnostics if d.severity != "error")
    return errors, warnings


def format_summary(results: Sequence[ValidationResult]) -> str:
    """``2 errors, 1 warning in 3 files``."""
    errors, warnings = _counts(results)
    return (
        f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
        f" in {plural(len(results), 'file')}"
    )


def report_as_json(results: Sequence[ValidationResult], *, strict: bool) -> dict[str, Any]:
    """Every file's diagnostics as one JSON-ready document.

    Shape: ``{"format_version", "ok", "strict", "summary": {"files", "errors", "warnings"},
    "files": [{"file", "ok", "content_hash", "diagnostics": [Diagnostic.as_dict(), ...]}]}``.
    """
    errors, warnings = _counts(results)
    return {
        "format_version": FORMAT_VERSION,
        "ok": all(r.ok for r in results),
        "strict": strict,
        "summary": {"files": len(results), "errors": errors, "warnings": warnings},
        "files": [
            {
                "file": r.file,
                "ok": r.ok,
                "content_hash": r.content_hash,
                "diagnostics": [d.as_dict() for d in r.diagnostics],
            }
            for r in results
        ],
    }


def _not_found(
    path: str, reason: str, *, strict: bool, hint: str | None = None
) -> ValidationResult:
    """A path that names no policy, reported in its place among the others (PR001)."""
    from policyroute.policy.diagnostics import Diagnostic
    from policyroute.policy.validate import ValidationResult

    diagnostic = Diagnostic("PR001", reason, "", path, hint=hint)
    return ValidationResult(path, None, (diagnostic,), "", strict)


def collect_results(
    paths: Sequence[str], *, strict: bool
) -> tuple[list[ValidationResult], list[str]]:
    """Validate every path in order; also return the paths that could not be read at all.

    A path that does not exist, is a device (``/dev/zero`` would be read without end), or is
    a folder with no policy file (a mistyped folder) is not skipped over nor allowed to stop
    the run: it becomes a PR001 result in its place, so a pre-commit hook or CI job sees every
    file's problems at once. A file named twice (or once and again inside a folder given too,
    or through a link) is read, validated and reported once.

    Example:
        >>> results, bad = collect_results(["no/such.yaml"], strict=False)
        >>> bad, results[0].diagnostics[0].code
        (['no/such.yaml'], 'PR001')
    """
    from policyroute.policy.validate import folder_files, validate_file, validate_paths

    results: list[ValidationResult] = []
    bad: list[str] = []
    seen: set[str] = set()

    def first_time(file: str) -> bool:
        # Checked before a file is read, not after: validating it again would read and
        # parse it again for a result that is then dropped.
        key = os.path.realpath(file)
        if key in seen:
            return False
        seen.add(key)
        return True

    for path in paths:
        # path_kind, not Path.exists: a name too long for the file system makes exists() and
        # is_dir() raise, which ended the run with a bare errno message.
        if path_kind(path) == "missing":
            bad.append(path)
            if first_time(path):
                reason, hint = dangling_link(path) or ("no such file or directory", None)
                results.append(_not_found(path, reason, strict=strict, hint=hint))
        elif devices([path]):
            bad.append(path)
            if first_time(path):
                reason = "not a file (a device is never read)"
                results.append(_not_found(path, reason, strict=strict))
        elif path_kind(path) != "directory":
            if first_time(path):
                results.append(validate_file(path, strict=strict))
        else:
            found = folder_files(Path(path))
            if not found:
                bad.append(path)  # a folder with no policy file, reported in its place
                if first_time(path):
                    # Nothing in it is read: this only words the PR001 as validate_paths does.
                    results.extend(validate_paths([path], strict=strict))
            for file, problem in found:
                if not first_time(str(file)):
                    continue
                if problem is None:
                    results.append(validate_file(file, strict=strict))
                else:
                    reason, hint = problem
                    results.append(_not_found(str(file), reason, strict=strict, hint=hint))
    return results, bad


def run(args: argparse.Namespace) -> int:
    """Validate ``args.paths``; exit 1 if any file fails (warnings fail only with --strict).

    A path that does not exist (or is a device), or a folder with no policy file, is a usage
    error, exit 2, but only once every other path has been validated and reported, each such
    one in its place. Given nothing but such folders, only the usage error is printed.
    """
    results, bad = collect_results(list(args.paths), strict=args.strict)
    bad = list(dict.fromkeys(bad))
    empty = [p for p in bad if path_kind(p) == "directory"]
    if all(r.file in empty for r in results):
        message = f"no policy files found in {', '.join(args.paths)}"
        return usage_error("validate", message, json_output=args.format == "json")

    if args.format == "json":
        print(json.dumps(report_as_json(results, strict=args.strict), indent=2))
    elif args.format == "github":
        for result in results:
            for d in result.diagnostics:
                print(github_annotation(d))
        print(format_summary(results))
    else:
        style = Style.for_stream(sys.stdout)
        for result in results:
            for d in result.diagnostics:
                print(style.severity(d.format(), d.severity))
        ok = all(r.ok for r in results)
        summary = format_summary(results)
        print(style.green(summary) if ok else style.red(summary))
    if bad:
        missing = [p for p in bad if path_kind(p) == "missing"]
        devs = [p for p in bad if p not in missing and p not in empty]
        if missing:
            usage_error("validate", f"no such file or directory: {', '.join(missing)}")
        if devs:
            usage_error("validate", f"not a file: {', '.join(devs)}")
        if empty:
            usage_error("validate", f"no policy files found in {', '.join(empty)}")
        return USAGE_ERROR
    return 0 if all(r.ok for r in results) else 1
