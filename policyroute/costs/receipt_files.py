"""Reading receipt files back: JSON lines, plain or gzip, or the SQLite sink's database, with
every bad line accounted for.

A receipts file is appended to by many processes; one killed mid-write leaves a cut line, and
files are edited, concatenated and compressed by hand. :class:`ReceiptStream` yields the
records that can be added up and describes every line it skipped (file, line number, why) in
:class:`LineProblem` entries, so that a report is never quietly short.

Which records can be added up is :mod:`policyroute.costs.receipt_checks`'s to say.

Example:
    >>> [r["kind"] for r in load_receipts(["r.jsonl"])]  # doctest: +SKIP
    ['attempt', 'call']
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sqlite3
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policyroute._files import dangling_link_text
from policyroute.costs.receipt_checks import (
    NEWEST_SCHEMA_VERSION,
    json_type,
    parse_amount,
    receipt_problem,
)
from policyroute.costs.receipt_identity import ReceiptDeduplicator, conflict_reason

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_PROBLEMS",
    "NEWEST_SCHEMA_VERSION",
    "LineProblem",
    "ReceiptStream",
    "load_receipts",
    "parse_amount",
    "receipt_problem",
]

MAX_LINE_BYTES = 64 * 1024 * 1024
"""The longest line read; a receipt with its prompt is a few MB at most. A longer "line" (a
run of NUL bytes left by a crash, a binary file) is skipped unread, so memory stays bounded."""

MAX_PROBLEMS = 1000
"""How many :class:`LineProblem` entries a stream keeps; the rest are only counted."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A receipts line that was skipped: where it is and why.

    ``partial`` marks what a writer killed mid-write leaves (an unterminated last line, a cut
    line another writer's record was glued to, or a receipt cut short that the next writer
    started its own line after): expected after a crash, not an error.
    ``line`` 0 is the input as a whole (one that could not be opened).

    Example:
        >>> LineProblem("r.jsonl", 7, "not JSON (Expecting value at column 1)").format()
        'r.jsonl:7: not JSON (Expecting value at column 1)'
        >>> LineProblem("gone.jsonl", 0, "no such file or directory").format()
        'gone.jsonl: no such file or directory'
    """

    file: str
    line: int
    message: str
    partial: bool = False

    def format(self) -> str:
        """``file:line: message``, or ``file: message`` for the input as a whole."""
        if self.line == 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ReceiptStream(Iterator[dict[str, Any]]):
    """Receipt records read from JSON-lines files (plain or gzip) or a SQLite receipts
    database (:class:`~policyroute.costs.sqlite_sink.SqliteSink`'s), skipping bad lines.

    A process killed mid-write leaves at most its last line incomplete; such a line, any line
    that is not a JSON object, and any receipt whose fields have the wrong type (see
    :func:`receipt_problem`) is skipped, counted in :attr:`skipped` and described, with its
    file and line number, in :attr:`problems` (the first :data:`MAX_PROBLEMS` of them;
    :attr:`problem_count` counts them all, :attr:`error_count` those that are not
    ``partial``). When another process appended after the partial line, its whole record
    (receipts start with ``{"schema_version":``) is recovered from the end of the glued
    line; a receipt cut short on a line of its own (the JSON-lines sink starts a new line
    after a cut one) is ``partial`` too. A file named again (by another path, a link, or the
    same path twice) is read once; :attr:`repeated` lists each such ``(path, path read)``. In a
    database, a problem's ``line`` is the row's ``id``. SQLite's files beside a database
    (``-wal``, ``-shm``, ``-journal``) are not read: a warning when the database is among the
    inputs, an error saying to name it when it is not.

    A receipt read again (overlapping inputs: a rotated file and its copy, the JSON-lines file
    and the SQLite database of one writer) is yielded once; :attr:`duplicates` counts the
    copies. A record with the identity of one read before (:mod:`.receipt_identity`) and other
    content is left out, counted in :attr:`conflicts` and described as an error problem: the
    first one read counts, in the order the inputs are given. Remembering costs about 126
    bytes per receipt; ``dedupe=False`` yields every record read and remembers none.

    An input that cannot be opened raises :class:`OSError`, unless ``skip_unreadable`` is
    set: then it (a path that does not exist, a folder, a device, which is never opened since
    it might be read without end, a file without read permission) is an error problem with
    ``line`` 0 in its place among the others, is listed with the reason in :attr:`unread`,
    and the other inputs are still read, so a caller can tell figures that leave an input out
    from complete ones. Standard input (``/dev/stdin``) that is the null device (``<
    /dev/null``) is no such device: it is read, and is empty, as an empty file is.

    Example:
        >>> stream = load_receipts(["receipts.jsonl"])  # doctest: +SKIP
        >>> records = list(stream); stream.skipped, stream.problems  # doctest: +SKIP
        (0, [])
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dedupe: bool = True,
        skip_unreadable: bool = False,
    ) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.unread: list[tuple[str, str]] = []
        self._skip_unreadable = skip_unreadable
        self.skipped = 0
        self.read = 0
        self.duplicates = 0
        self.conflicts = 0
        self._seen = ReceiptDeduplicator(parsed=True) if dedupe else None
        self.problems: list[LineProblem] = []
        self.problem_count = 0
        self.error_count = 0
        self.repeated: list[tuple[str, str]] = []
        self._records = self._iterate()

    def _iterate(self) -> Iterator[dict[str, Any]]:
        seen: dict[tuple[int, int], str] = {}
        for path in self.paths:
            reason = _not_readable(path) if self._skip_unreadable else None
            if reason is None:
                try:
                    raw = open(path, "rb")  # noqa: SIM115 (closed by the with below)
                except OSError as exc:
                    if not self._skip_unreadable:
                        raise
                    reason = f"cannot open: {exc.strerror or exc}"
            if reason is not None:
                self.unread.append((path, reason))
                self._note(LineProblem(path, 0, reason))
                continue
            with raw:
                st = os.fstat(raw.fileno())
                # The same file named twice (``r.jsonl ./r.jsonl``, overlapping globs, a
                # link) would have its spend counted twice: it is read once and named.
                key = (st.st_dev, st.st_ino)
                if stat.S_ISREG(st.st_mode) and key in seen:
                    self.repeated.append((path, seen[key]))
                    continue
                seen[key] = path
                side = _side_file(path) if stat.S_ISREG(st.st_mode) else None
                if side is not None:
                    self._side_file(path, *side)
                elif stat.S_ISREG(st.st_mode) and raw.peek(len(_SQLITE_MAGIC)).startswith(
                    _SQLITE_MAGIC
                ):
                    yield from self._database(path)
                else:
                    yield from self._file(path, raw)

    def _database(self, path: str) -> Iterator[dict[str, Any]]:
        # What SqliteSink writes: each row keeps its receipt whole in ``record``. Read-only
        # and row by row, so a database in use by writers is neither changed nor held.
        uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
        row_id = 0
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            self._unreadable(path, row_id, f"cannot open the receipts database: {exc}")
            return
        try:
            conn.text_factory = bytes  # bad UTF-8 is one row's problem, not the file's
            rows = conn.execute("SELECT id, record FROM receipts ORDER BY id")
            for row_id, text in rows:
                if isinstance(text, (int, float)):
                    # A column without a type (not the sink's) keeps a number as a number.
                    reason = f"the record is a number ({text!r}), not a receipt's JSON text"
                    self._unreadable(path, row_id, reason)
                    continue
                if text is None or not bytes(text).strip():
                    # A blank line between JSON lines is nothing; a row is a receipt's place.
                    what = "NULL" if text is None else "empty"
                    reason = f"the record is {what}, not a receipt's JSON text"
                    self._unreadable(path, row_id, reason)
                    continue
                record = self._record(path, row_id, bytes(text) + b"\n")
                if record is not None:
                    self.read += 1
                    yield record
        except sqlite3.Error as exc:
            where = f"after row {row_id}" if row_id else "its receipts table"
            self._unreadable(
                path, row_id + 1, f"cannot read the receipts database ({where}): {exc}"
            )
        finally:
            conn.close()

    def _side_file(self, path: str, what: str, database: str) -> None:
        # A glob such as receipts.sqlite3* names SQLite's own files beside the database:
        # binary, read as lines they were a thousand bad ones. The database, when named too,
        # is read with them; otherwise its receipts are missing from the totals.
        named = any(_same_file(database, other) for other in self.paths)
        if named:
            message = f"SQLite's {what} of {database}, which is read with it: skipped"
        else:
            message = f"SQLite's {what} of {database}, not a receipts file: name {database}"
        self._note(LineProblem(path, 0, message, partial=named))

    def _note(self, problem: LineProblem) -> None:
        # Every problem is counted; the first MAX_PROBLEMS are kept, so that a big file of
        # bad lines (a binary file, a newer schema's receipts) keeps memory bounded too.
        self.problem_count += 1
        self.error_count += not problem.partial
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def _unreadable(self, path: str, line: int, reason: str) -> None:
        self.skipped += 1
        self._note(LineProblem(path, line, reason))

    def _file(self, path: str, raw: io.BufferedReader) -> Iterator[dict[str, Any]]:
        with _decompressed(raw) as fh:
            number = 0
            try:
                for number, line in enumerate(_lines(fh), start=1):
                    if line is None:
                        self.skipped += 1
                        reason = f"a line longer than {MAX_LINE_BYTES} bytes (not read)"
                        self._note(LineProblem(path, number, reason))
                        continue
                    if number == 1 and line.startswith(_BOM):
                        line = line[len(_BOM) :]  # saved by an editor that writes one
                    record = self._record(path, number, line)
                    if record is not None:
                        self.read += 1
                        yield record
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                # A compressed file cut short (or not really gzip): keep what was read.
                self.skipped += 1
                reason = str(exc) or type(exc).__name__
                self._note(LineProblem(path, number + 1, f"cannot decompress: {reason}"))

    def _record(self, path: str, number: int, raw: bytes) -> dict[str, Any] | None:
        if not raw.strip():
            return None
        record, reason = _parse(raw)
        if record is None:
            self.skipped += 1
            # A writer killed inside a large write leaves a partial line that the next
            # writer's line is glued to; that line is still whole at the end.
            record = _recover(raw)
            if record is None:
                partial = reason == _CUT_SHORT
                if raw.endswith(b"\n") and _cut_receipt(raw):
                    # What a writer killed mid-write (or stopped by a full disk) left, once
                    # the next writer started its own line after it, as the sinks do.
                    reason = _CUT_LINE
                    partial = True
                self._note(LineProblem(path, number, reason, partial))
                return None
            reason = "a cut line (a writer killed mid-write); the record after it was kept"
            self._note(LineProblem(path, number, reason, partial=True))
        problem = receipt_problem(record)
        if problem is not None:
            self.skipped += 1
            self._note(LineProblem(path, number, problem))
            return None
        found = "new" if self._seen is None else self._seen.check(record)
        if found == "duplicate":
            self.duplicates += 1
            return None
        if found == "conflict":
            self.conflicts += 1
            self._note(LineProblem(path, number, conflict_reason(record)))
            return None
        return record

    def __next__(self) -> dict[str, Any]:
        return next(self._records)

    def __iter__(self) -> ReceiptStream:
        return self


def _not_readable(path: str) -> str | None:
    """Why ``path`` is not an input to open, or ``None``: looked up, never opened, so a
    device (``/dev/zero``, a terminal) is not read from."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        dangling = dangling_link_text(path)
        if dangling is not None:
            return dangling
        if isinstance(exc, FileNotFoundError):
            return "no such file or directory"
        return f"cannot open: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "a directory, not a receipts file"
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        if path in _STDIN_PATHS and _is_null_device(path):
            # ``policyroute receipts report - < /dev/null``: standard input with nothing in
            # it, which ends at once, as an empty file does (a script's empty input).
            return None
        return "not a file (a device is never read)"
    return None


# The names standard input is read through (``-`` on the command line is ``/dev/stdin``).
_STDIN_PATHS = frozenset({"/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def _is_null_device(path: str) -> bool:
    """Whether ``path`` is the null device (``/dev/null``), whatever name it is reached by."""
    try:
        found, null = os.stat(path), os.stat(os.devnull)
    except OSError:
        return False
    return (
        stat.S_ISCHR(found.st_mode) and stat.S_ISCHR(null.st_mode) and found.st_rdev == null.st_rdev
    )


# SQLite's files beside a database: what each suffix names.
_SIDE_FILES = {"-wal": "write-ahead log", "-shm": "shared-memory file", "-journal": "journal"}


def _side_file(path: str) -> tuple[str, str] | None:
    """``(what, database)`` when ``path`` is one of SQLite's files beside a database
    (``receipts.sqlite3-wal``), else ``None``."""
    for suffix, what in _SIDE_FILES.items():
        if path.endswith(suffix):
            database = path[: -len(suffix)]
            try:
                with open(database, "rb") as fh:
                    return (what, database) if fh.read(16) == _SQLITE_MAGIC else None
            except OSError:
                return None
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


_RECORD_START = b'{"schema_version":'
_CHUNK = 1024 * 1024


def _lines(fh: io.BufferedIOBase) -> Iterator[bytes | None]:
    """The lines of ``fh``, ``None`` for each one past :data:`MAX_LINE_BYTES` (read past in
    chunks, never held whole)."""
    limit = MAX_LINE_BYTES
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit:
            yield line
            continue
        while not line.endswith(b"\n"):
            line = fh.readline(_CHUNK)
            if not line:
                break
        yield None


_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_SQLITE_MAGIC = b"SQLite format 3\x00"


@contextmanager
def _decompressed(raw: io.BufferedReader) -> Iterator[io.BufferedIOBase]:
    # Rotated receipt logs are often compressed; read them as they are. The first bytes are
    # peeked, not read: a pipe (``<(zcat ...)``) cannot be opened a second time.
    if raw.peek(len(_GZIP_MAGIC)).startswith(_GZIP_MAGIC):
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped
    else:
        yield raw


_CUT_SHORT = "the last line is cut short (no newline): a writer was killed mid-write"


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    # An unterminated last line may parse by accident (a truncated number); a complete
    # receipt always ends with its newline. What a killed writer leaves starts as a receipt
    # does, with "{" (or is the run of NUL bytes a crash leaves on some file systems); any
    # other last line (a text file given by mistake) is read as it is, and named as wrong.
    if not raw.endswith(b"\n"):
        body = raw.strip(b" \t\r")
        if body.startswith(b"{") or not body.strip(b"\0"):
            return None, _CUT_SHORT
    try:
        # Decoded here: json.loads would take a UTF-16 byte order mark for a valid encoding.
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start + 1} of the line)"
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" ("Invalid control character at").
        return None, f"not JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    except ValueError as exc:  # e.g. an integer too long to convert
        return None, f"not JSON ({_value_error(exc)})"
    except RecursionError:  # json recurses once per level of nesting
        return None, "not JSON (nested too deep to read)"
    if not isinstance(record, dict):
        return None, f"a JSON {json_type(record)} where a receipt object was expected"
    return record, ""


_TOO_MANY_DIGITS = re.compile(r"value has (\d+) digits")


def _value_error(exc: ValueError) -> str:
    """``exc`` from ``json.loads`` as the report says it: Python's advice on its limit of
    digits in an integer (``sys.set_int_max_str_digits()``) is nothing a reader can follow."""
    digits = _TOO_MANY_DIGITS.search(str(exc))
    if digits is None:
        return str(exc)
    return f"a number of {digits.group(1)} digits, more than {sys.get_int_max_str_digits()}"


_CUT_LINE = "a cut line (a writer killed mid-write, or a full disk): its receipt is lost"
# What may follow the place where json stops reading a receipt cut in a literal or a number:
# "tru", "-", "1250." and "1e-" are all cut short, not wrong.
_CUT_VALUE = re.compile(
    r"t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?"  # true, false, null
    r"|-?[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]*)?"  # a number
)


def _cut_receipt(raw: bytes) -> bool:
    """Whether ``raw``, a line that is not JSON, is the start of a receipt cut short: it
    starts as every receipt a sink writes does, and its text stops before its JSON does
    (nothing in it is wrong but the end)."""
    body = raw.rstrip(b"\r\n")
    if not body.startswith(_RECORD_START):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.end != len(body):
            return False
        text = body[: exc.start].decode("utf-8", "replace")  # cut inside a character
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Unterminated string starting at" or exc.pos >= len(text):
            return True
        return _CUT_VALUE.fullmatch(text[exc.pos :]) is not None
    except (ValueError, RecursionError):  # too long a number, too deep a nesting: not cut
        return False
    return False  # whole JSON after all: not a cut line


def _recover(raw: bytes) -> dict[str, Any] | None:
    # The glued record starts at one of the record starts after the first byte, not always at
    # the last: a receipt's metadata may hold an object whose first key is "schema_version"
    # too (the caller's own event schema), in the glued record as in the cut one before it.
    # A receipt has a kind; an object in the cut receipt's metadata, cut right after it,
    # parses to the end of the line too, and is not one.
    start = raw.find(_RECORD_START, 1)
    while start > 0:
        record = _parse(raw[start:])[0]
        if record is not None and "kind" in record:
            return record
        start = raw.find(_RECORD_START, start + 1)
    return None


def load_receipts(
    paths: Iterable[str | os.PathLike[str]],
    *,
    dedupe: bool = True,
    skip_unreadable: bool = False,
) -> ReceiptStream:
    """Iterate over the receipt records in ``paths`` (JSON lines or the SQLite sink's
    database), in file order, each receipt once (see :class:`ReceiptStream`; with
    ``skip_unreadable``, an input that cannot be opened is named, not raised).

    Example:
        >>> [r["kind"] for r in load_receipts(["r.jsonl"])]  # doctest: +SKIP
        ['attempt', 'call']
    """
    return ReceiptStream(paths, dedupe=dedupe, skip_unreadable=skip_unreadable)
