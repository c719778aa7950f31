"""PR138: a file path in the policy that names a directory; PR143: one holding a placeholder
that nothing fills; PR013: one holding a NUL character, which no file name can hold.

``receipts.path`` and ``store.path`` name the file policyroute writes (a JSON lines file per
day, a SQLite database). A path that names a directory instead (``out/``, ``.``, ``~``) passed
validation and then went wrong at the first write: the trailing ``/`` is dropped when the path
is made absolute, so the receipts or budgets went to a *file* named like the directory, or,
where that directory exists, every write failed. Only the text is checked, never the disk: a
relative path is read from the working directory of the process that makes the calls, which
validation cannot know.

The JSON lines receipt sink fills ``{date}`` in its ``receipts.path`` (one file per UTC day);
nothing else is filled, anywhere. ``{host}``, ``{pid}`` or ``{date}`` in another path are kept
as written: every host or process would write the one file named so (PR143, a warning).

Example:
    >>> directory_reason("out/"), directory_reason("out/{date}.jsonl")
    ("it ends with '/'", None)
    >>> example_file("out/", "{date}.jsonl")
    'out/{date}.jsonl'
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from policyroute.policy.model import ReceiptsSpec, StoreSpec

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["check_file_paths", "directory_reason", "example_file"]

_SEPARATORS = tuple(dict.fromkeys(s for s in ("/", os.sep, os.altsep) if s))
# The file name each setting's hint suggests, by the sink or backend that reads the path.
_RECEIPT_SINKS = {
    "jsonl": ("the JSON lines receipt sink", "{date}.jsonl"),
    "sqlite": ("the SQLite receipt sink", "receipts.sqlite3"),
}
_STORE_FILE = "budgets.sqlite3"
# ``{name}``, not ``${VAR}`` (an environment reference, PR121 where it is not expanded).
_PLACEHOLDER = re.compile(r"(?<!\$)\{[^{}]*\}")


def directory_reason(path: str) -> str | None:
    """Why ``path`` names a directory rather than a file, as a phrase; ``None`` if it does not.

    Example:
        >>> directory_reason("~"), directory_reason("logs/.."), directory_reason("a.db")
        ("it is '~', the home directory", "it ends with '..'", None)
    """
    if path.endswith(_SEPARATORS):
        return f"it ends with {path[-1]!r}"
    if path == "~":
        return "it is '~', the home directory"
    last = path
    for sep in _SEPARATORS:
        last = last.rpartition(sep)[2]
    if last in (".", ".."):
        return f"it ends with {last!r}"
    return None


def example_file(path: str, name: str) -> str:
    """A file called ``name`` inside the directory ``path`` names, as the policy would write it.

    Example:
        >>> example_file("~", "budgets.sqlite3"), example_file(".", "{date}.jsonl")
        ('~/budgets.sqlite3', './{date}.jsonl')
    """
    return (path if path.endswith(_SEPARATORS) else path + "/") + name


def check_file_paths(c: Checker) -> None:
    """PR138 (and PR013 for a NUL character) on ``receipts.path`` (jsonl and sqlite sinks) and
    ``store.path`` (sqlite backend).

    A path the chosen sink or backend does not read is left alone: the store's is PR133.
    """
    receipts: Any = c.data.get("receipts")
    if isinstance(receipts, dict):
        sink = receipts.get("sink", ReceiptsSpec().sink)
        path = receipts.get("path")
        if isinstance(path, str) and isinstance(sink, str) and sink in _RECEIPT_SINKS:
            _check(c, ("receipts", "path"), path, *_RECEIPT_SINKS[sink])
            _check_placeholders(c, ("receipts", "path"), path, fills_date=sink == "jsonl")
    store: Any = c.data.get("store")
    if isinstance(store, dict) and store.get("backend", StoreSpec().backend) == "sqlite":
        path = store.get("path")
        if isinstance(path, str):
            _check(c, ("store", "path"), path, "the SQLite budget store", _STORE_FILE)
            _check_placeholders(c, ("store", "path"), path, fills_date=False)


def _check_placeholders(c: Checker, where: tuple[str, str], path: str, *, fills_date: bool) -> None:
    """PR143: ``{...}`` in a path that nothing fills (once per distinct placeholder)."""
    for found in dict.fromkeys(_PLACEHOLDER.findall(path)):
        if fills_date and found == "{date}":
            continue
        filled = (
            "only {date} is filled, with the receipt's UTC day"
            if fills_date
            else "nothing is filled in this path"
        )
        c.emit(
            "PR143",
            where,
            f"{'.'.join(where)} holds {found}, which is kept as written: {filled}, so every"
            " process writes the one file named so",
            hint="remove it: processes may share the file, and a policy per host keeps hosts apart"
            if found != "{date}"
            else "remove it: one database keeps every day (the JSON lines sink makes a file a day)",
        )


def _check(c: Checker, where: tuple[str, str], path: str, writer: str, name: str) -> None:
    if "\x00" in path:
        # The operating system ends a file name there: opening it raised a bare ValueError.
        c.emit(
            "PR013",
            where,
            f"{'.'.join(where)} holds a NUL character (\\x00), which no file name can hold",
        )
        return
    reason = directory_reason(path)
    if reason is None:
        return
    c.emit(
        "PR138",
        where,
        f"{'.'.join(where)} names a directory ({reason}), not the file {writer} writes:"
        " a file would be made under the directory's name, or every write fail where the"
        " directory exists",
        hint=f"name a file, e.g. {example_file(path, name)}",
    )
