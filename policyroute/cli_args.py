"""Which ``--format`` a command line asks for, read even when argparse refuses the line.

A usage error (an unknown flag, a bad ``--by`` value, a missing argument) stops argparse before
it has a namespace to ask, yet a program that ran ``policyroute ... --format json`` still needs
a JSON document on stdout. :func:`requested_format` reads the ``--format`` value the way the
command's own parser would: only after the words of a command that has the option, as a value
of ``--format`` (``--format json``, ``--format=json`` or an abbreviation such as ``--form
json``) and never after ``--``, so a file named ``json`` or ``--format`` is not taken for one.

Example:
    >>> requested_format(["validate", "--format", "json", "--bogus", "p.yaml"])
    'json'
    >>> requested_format(["validate", "json", "--bogus"]) is None  # a file named json
    True
    >>> requested_format(["test", "--format", "json", "t.tests.yaml"]) is None  # no --format
    True
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["FORMATS", "requested_format"]

FORMATS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("validate",): ("text", "json", "github"),
    ("explain",): ("text", "json"),
    ("receipts", "report"): ("table", "json", "csv"),
    ("budget", "status"): ("table", "json", "csv"),
}
"""The commands that take ``--format``, by the words that name them, and its values (the first
is the default). The parser is built from this table, so the two cannot disagree."""


class _Unreadable(Exception):
    """The line is too broken even to read ``--format`` from."""


class _FormatOnly(argparse.ArgumentParser):
    """A parser that knows ``--format`` alone and passes everything else over, unread."""

    def error(self, message: str) -> NoReturn:
        raise _Unreadable(message)


def _format_value(args: Sequence[str]) -> str | None:
    parser = _FormatOnly(add_help=False)
    # nargs="?": a trailing ``--format`` with no value reads as no format, not as an error.
    parser.add_argument("--format", nargs="?")
    try:
        namespace, _ = parser.parse_known_args(list(args))
    except _Unreadable:
        return None
    value = namespace.format
    return value if isinstance(value, str) else None


def requested_format(argv: Sequence[str]) -> str | None:
    """The ``--format`` value given to a command that has the option, or ``None``.

    The value is returned as typed, valid or not (``--format xml`` gives ``'xml'``); the last
    one given wins, as in argparse. Options of the command other than ``--format`` are not
    known here: their values are never taken for the format, since only a word right after
    ``--format`` (or joined to it by ``=``) is one.

    Example:
        >>> requested_format(["receipts", "report", "--by", "nonsense", "--format=json", "r"])
        'json'
        >>> requested_format(["validate", "--", "--format", "json"]) is None
        True
    """
    for words in FORMATS:
        if tuple(argv[: len(words)]) == words:
            return _format_value(argv[len(words) :])
    return None
