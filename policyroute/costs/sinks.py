"""Where receipts go: JSON lines, SQLite, a user callable, or several of these.

A sink takes a receipt record (a JSON-ready dict) and stores it, or raises
:class:`~policyroute.errors.ReceiptError`. Sinks never drop a record silently: the caller
(:class:`~policyroute.accounting.PolicyAccounting`) decides what to do with a failure.

JSON lines are the default because appending is safe across processes without locks: each
record is encoded as one complete line and handed to a single ``os.write`` on a descriptor
opened with ``O_APPEND``. The kernel positions and writes an ``O_APPEND`` write as one step,
so lines from many processes never interleave: writes up to ``PIPE_BUF`` (4096 bytes on Linux)
are atomic on any file system (POSIX), and larger writes are atomic on local file systems
(ext4, xfs, btrfs, APFS) in practice. NFS does not honour ``O_APPEND`` across hosts: give each
host its own file there. :meth:`JsonlSink.write_many` hands several lines to one ``os.write``,
so they stay together in the same way. A process killed mid-write leaves at most its last line
incomplete; :func:`policyroute.costs.report.load_receipts` skips and counts such a line.

Example:
    >>> sink = JsonlSink("receipts/{date}.jsonl")
    >>> sink.write({"kind": "call", "ts": "2026-01-02T03:04:05+00:00"})  # doctest: +SKIP
    >>> sink.close()
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from policyroute.errors import ReceiptError

__all__ = [
    "BatchReceiptSink",
    "CallableSink",
    "JsonlSink",
    "MultiSink",
    "ReceiptSink",
    "SqliteSink",
    "awrite_record",
    "encode_record",
]


@runtime_checkable
class ReceiptSink(Protocol):
    """Stores receipt records. ``write`` raises :class:`ReceiptError` when it cannot.

    A sink may set ``blocking = True`` to ask async callers to run its writes in a worker
    thread (SQLite does); sinks without the attribute are treated as blocking.

    A sink may offer ``async awrite(record)``, which async callers await instead (see
    :func:`awrite_record`).

    A sink may also offer ``write_many(records)`` to store several records at once (see
    :class:`BatchReceiptSink`); it is optional, so callers check for it and fall back to a
    ``write`` per record.
    """

    def write(self, record: Mapping[str, Any]) -> None:
        """Store one record."""

    def close(self) -> None:
        """Release files and connections; the sink may not be used afterwards."""


@runtime_checkable
class BatchReceiptSink(ReceiptSink, Protocol):
    """A sink that can store several records in one go, e.g. an attempt's and its call's.

    ``write_many`` stores every record as ``write`` would, in order, or raises
    :class:`ReceiptError`; :class:`JsonlSink` and :class:`MultiSink` offer it.

    Example:
        >>> sink = JsonlSink("receipts/{date}.jsonl")
        >>> records = [{"kind": "attempt"}, {"kind": "call"}]
        >>> if isinstance(sink, BatchReceiptSink):
        ...     sink.write_many(records)  # doctest: +SKIP
        ... else:
        ...     for record in records:
        ...         sink.write(record)  # doctest: +SKIP
    """

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Store each record, in order."""


_MAX_DEPTH = 64


def _text(value: object) -> str:
    """``str(value)``, or a marker naming its type when even that fails."""
    try:
        text = str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return _clean(text)


def _clean(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from ``surrogateescape`` decoding or broken
    input) become their ``\\udXXX`` spelling instead of failing the whole line."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` with what strict JSON cannot hold turned into text, for the slow path.

    Non-finite floats become ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, strings are made
    valid UTF-8 and other objects become their text. The shape is kept: a cycle (found as
    nesting deeper than ``_MAX_DEPTH``) or a key JSON has no spelling for still raises, as
    that is a bug in whoever built the record, not a value to write down.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, Mapping | list | tuple):
        if depth >= _MAX_DEPTH:
            raise ValueError(f"record nested deeper than {_MAX_DEPTH} levels (a cycle?)")
        if isinstance(value, Mapping):
            return {_key(k): _plain(v, depth + 1) for k, v in value.items()}
        return [_plain(v, depth + 1) for v in value]
    return _text(value)


def _key(key: object) -> object:
    if isinstance(key, str):
        return _clean(key)
    if key is None or isinstance(key, bool | int | float):
        return key  # the encoder spells these as JSON does
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


# One encoder for every record: ``json.dumps`` with options builds a new encoder per call,
# which costs a third of the time of a receipt write. Receipts are trees built afresh, never
# cyclic: skipping the cycle bookkeeping saves 5% of the encoding; a record that is cyclic
# anyway fails here and takes the slow path below. ``allow_nan=False``: ``NaN`` and
# ``Infinity`` are not JSON, and strict readers (jq, most languages) reject the whole line.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_text,
    check_circular=False,
)
_UNENCODABLE = (TypeError, ValueError, RecursionError)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as one compact, strict JSON line (valid UTF-8), newline included.

    A receipt is never lost to its values: those JSON cannot hold as they are (``NaN``,
    infinities, lone surrogates, arbitrary objects, even one whose ``str`` raises) are written
    as text. A record whose shape JSON cannot hold (a cycle, a tuple as a key) raises
    ``ValueError`` or ``TypeError``; the sinks report it as a :class:`ReceiptError`.

    Example:
        >>> encode_record({"a": 1})
        b'{"a":1}\\n'
        >>> encode_record({"latency_ms": float("nan")})
        b'{"latency_ms":"NaN"}\\n'
    """
    try:
        return (_ENCODER.encode(record) + "\n").encode("utf-8")
    except (*_UNENCODABLE, UnicodeEncodeError):  # UnicodeEncodeError: a lone surrogate
        return (_ENCODER.encode(_plain(record)) + "\n").encode("utf-8")


def _record_date(record: Mapping[str, Any]) -> str:
    ts = record.get("ts")
    if isinstance(ts, str) and len(ts) >= 10 and ts[4] == "-" and ts[7] == "-":
        return ts[:10]
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


class JsonlSink:
    """Appends each record as one line to a JSON-lines file.

    ``path_template`` may contain ``{date}``, replaced by the record's UTC date
    (``YYYY-MM-DD`` of its ``ts``), so files roll over daily. Missing directories are created.
    The descriptor of the current file is cached per process and reopened when the date
    changes or the path no longer names the open file (rotated away or deleted, checked with a
    ``stat`` per write); one lock guards it, so a sink can be shared by threads.

    Example:
        >>> JsonlSink("/var/log/receipts/{date}.jsonl").path_for({"ts": "2026-03-01T00:00Z"})
        PosixPath('/var/log/receipts/2026-03-01.jsonl')

    A relative path is made absolute when the sink is made, so a process that later changes
    directory keeps writing to the same files.
    """

    blocking = False  # one append of a few hundred bytes: cheap enough inline in async code

    def __init__(self, path_template: str | os.PathLike[str]) -> None:
        self.path_template = os.path.abspath(os.fspath(path_template))
        self._dated = "{date}" in self.path_template
        self._lock = threading.Lock()
        self._path: str | None = None
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._torn = False  # the open file ends without a newline: start with one
        self._pid = os.getpid()

    def path_for(self, record: Mapping[str, Any]) -> Path:
        """The file a record goes to."""
        return Path(self._path_str(record))

    def _path_str(self, record: Mapping[str, Any]) -> str:
        if not self._dated:
            return self.path_template
        return self.path_template.replace("{date}", _record_date(record))

    def _fd_for(self, path: str) -> int:
        # The cached descriptor is reused only by the process that opened it (a forked child
        # must not share the parent's bookkeeping) and only while ``path`` still names the
        # file it refers to: after a rotation (rename) or deletion the next record goes to a
        # new file at ``path``, not to the old inode. The stat costs about as much as the
        # write itself; reopening every time would cost the same, plus the close.
        if self._fd is not None and self._path == path and self._pid == os.getpid():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                pass
            else:
                if (st.st_dev, st.st_ino) == self._file_id:
                    return self._fd
        self._close_fd()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create directory {parent}: {exc.strerror}") from exc
        flags = os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            # Read access only to look at the last byte below; appends are as with O_WRONLY.
            fd = os.open(path, flags | os.O_RDWR, 0o644)
            readable = True
        except PermissionError:
            fd, readable = os.open(path, flags | os.O_WRONLY, 0o644), False
        try:
            st = os.fstat(fd)
            # A writer that died or hit a full disk mid-line leaves the file without its
            # final newline: the next line starts on a line of its own instead of being
            # glued to the fragment (a reader then skips one blank line at worst).
            self._torn = (
                readable
                and stat.S_ISREG(st.st_mode)  # not a pipe or /dev/stdout, which cannot seek
                and st.st_size > 0
                and os.pread(fd, 1, st.st_size - 1) != b"\n"
            )
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._pid = fd, path, os.getpid()
        self._file_id = (st.st_dev, st.st_ino)
        return fd

    def _close_fd(self) -> None:
        fd, self._fd, self._path, self._file_id = self._fd, None, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _append(self, path: str, data: bytes) -> None:
        """Append ``data`` (whole lines) to ``path`` with one ``os.write``; hold the lock."""
        try:
            fd = self._fd_for(path)
            if self._torn:
                data = b"\n" + data
            written = os.write(fd, data)
            # A short write only happens on a full disk or a signal; finish the line so
            # the file stays line-structured, and report it.
            while written < len(data):
                written += os.write(fd, data[written:])
            self._torn = False
        except OSError as exc:
            # Closed so that the next write reopens the file and finds any torn line.
            self._close_fd()
            where = os.path.abspath(path)
            raise ReceiptError(f"cannot append receipt to {where}: {exc}") from exc

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line with one ``os.write``."""
        try:
            line = encode_record(record)
        except _UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        path = self._path_str(record)
        with self._lock:
            self._append(path, line)

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append several records, one line each, with one ``os.write`` per file.

        Cheaper than a ``write`` per record (one lock, one check of the file, one system
        call). The lines of one call reach a file together, in order, and lines of other
        processes never land inside them (the guarantee of :meth:`write`, for the whole
        batch). Records of different dates go to their own files, in order of first use.

        Raises :class:`ReceiptError` like :meth:`write`: when a record cannot be encoded,
        nothing is written; when a file cannot be appended to, the error names it and the
        records of files before it in the batch are written.

        Example:
            >>> sink = JsonlSink("receipts/{date}.jsonl")  # doctest: +SKIP
            >>> sink.write_many([attempt_receipt, call_receipt])  # doctest: +SKIP
        """
        batches: dict[str, list[bytes]] = {}
        try:
            for record in records:
                line = encode_record(record)
                batches.setdefault(self._path_str(record), []).append(line)
        except _UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        with self._lock:
            for path, lines in batches.items():
                self._append(path, b"".join(lines))

    def close(self) -> None:
        """Close the cached descriptor."""
        with self._lock:
            self._close_fd()


_COLUMNS = (
    "kind",
    "ts",
    "request_id",
    "run_id",
    "policy",
    "route",
    "deployment",
    "model",
    "provider",
    "user",
    "status",
    "cost",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} TEXT" for c in _COLUMNS)},
    attempt INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_ts ON receipts (ts);
CREATE INDEX IF NOT EXISTS receipts_request ON receipts (request_id);
CREATE INDEX IF NOT EXISTS receipts_user ON receipts (user, ts);
CREATE INDEX IF NOT EXISTS receipts_model ON receipts (model, ts);
"""
_INSERT = (
    f"INSERT INTO receipts ({', '.join(_COLUMNS)}, attempt, record) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?, ?)"
)


class SqliteSink:
    """One row per receipt in a SQLite database (WAL mode), with indexed columns + the JSON.

    Costs are stored as decimal strings (``cost TEXT``) so sums never drift; query them with
    ``CAST(cost AS REAL)`` for a quick look or read ``record`` for exact figures.

    The database is opened when the sink is made (a bad path raises :class:`ReceiptError`
    there), or at the first write with ``connect=False``. Like :class:`JsonlSink`, it checks
    before each insert that ``path`` still names the open database: one removed or replaced
    while open is opened (and created) again, instead of rows going on into the unlinked file.

    Example:
        >>> sink = SqliteSink(".policyroute/receipts.sqlite3")  # doctest: +SKIP
        >>> sink.write({"kind": "call", "cost": "0.000100"})  # doctest: +SKIP
    """

    blocking = True

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 10.0, connect: bool = True
    ) -> None:
        # Absolute from the start, like JsonlSink's: a later chdir must not move the database.
        self.path = Path(os.path.abspath(path))
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._closed = False
        if connect:
            with self._lock:
                self._connection()

    def _connection(self) -> sqlite3.Connection:
        """The open connection, (re)opened if ``path`` no longer names its file; hold the lock."""
        if self._conn is not None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                pass
            else:
                if (st.st_dev, st.st_ino) == self._file_id:
                    return self._conn
            self._conn.close()
            self._conn = None
        where = os.path.abspath(self.path)
        try:
            os.makedirs(os.path.dirname(where), exist_ok=True)
        except OSError as exc:
            raise ReceiptError(
                f"cannot open receipt database {where}: cannot create directory"
                f" {os.path.dirname(where)}: {exc.strerror}"
            ) from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                st = os.stat(self.path)
            except BaseException:
                conn.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            raise ReceiptError(f"cannot open receipt database {where}: {exc}") from exc
        self._conn, self._file_id = conn, (st.st_dev, st.st_ino)
        return conn

    def write(self, record: Mapping[str, Any]) -> None:
        """Insert one row."""
        try:
            payload = encode_record(record)[:-1].decode("utf-8")
        except _UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        values = [None if record.get(c) is None else _text(record.get(c)) for c in _COLUMNS]
        attempt = record.get("attempt")
        row = (*values, attempt if isinstance(attempt, int) else None, payload)
        with self._lock:
            if self._closed:
                raise ReceiptError(f"receipt database {self.path} is closed")
            conn = self._connection()
            try:
                conn.execute(_INSERT, row)
            except sqlite3.Error as exc:
                where = os.path.abspath(self.path)
                raise ReceiptError(f"cannot insert receipt into {where}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            conn, self._conn, self._closed = self._conn, None, True
            if conn is not None:
                conn.close()


class CallableSink:
    """Hands each record to ``fn``; any exception it raises becomes a :class:`ReceiptError`.

    ``fn`` may be a plain function or a coroutine function. Async code (``ainvoke``,
    ``astream``, ``policyroute.acompletion``) awaits a coroutine function on its own event loop
    through :meth:`awrite`, and calls a plain function inline, or in a worker thread when
    ``blocking=True`` (set it for a callable that does I/O, so it does not hold up the event
    loop). Sync code runs a coroutine function to completion with :func:`asyncio.run`; from a
    thread whose event loop is running it cannot, and says so with a :class:`ReceiptError`.

    Example:
        >>> seen = []
        >>> CallableSink(seen.append).write({"kind": "call"})
        >>> seen
        [{'kind': 'call'}]
    """

    def __init__(
        self, fn: Callable[[Mapping[str, Any]], object], *, blocking: bool = False
    ) -> None:
        self.fn = fn
        self.blocking = blocking

    def write(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)``; run it to completion if it is a coroutine function."""
        try:
            result = self.fn(record)
            if inspect.isawaitable(result):
                _run_to_completion(result, self.fn)
        except ReceiptError:
            raise
        except Exception as exc:
            raise ReceiptError(f"receipt callable {self.fn!r} failed: {exc}") from exc

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)`` from async code, awaiting it if it is a coroutine function."""
        try:
            if self.blocking:
                result = await asyncio.to_thread(self.fn, record)
            else:
                result = self.fn(record)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            raise ReceiptError(f"receipt callable {self.fn!r} failed: {exc}") from exc

    def close(self) -> None:
        """Nothing to release."""


def _run_to_completion(awaitable: Awaitable[object], fn: object) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # Blocking on the loop this thread runs would deadlock it; dropping the coroutine
        # would lose the receipt without a word.
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise ReceiptError(
            f"async receipt callable {fn!r} was called synchronously from a thread whose"
            " event loop is running: use the async API (ainvoke, astream, acompletion), which"
            " awaits it through CallableSink.awrite, or give a plain function"
        )

    async def wait() -> None:
        await awaitable

    asyncio.run(wait())


async def awrite_record(sink: ReceiptSink, record: Mapping[str, Any]) -> None:
    """Write ``record`` to ``sink`` from async code, as the sink asks.

    A sink with ``awrite`` (a :class:`CallableSink`, a :class:`MultiSink`) is awaited; a
    blocking sink (``blocking`` true or missing) runs in a worker thread; any other is called
    inline.

    Example:
        >>> await awrite_record(JsonlSink("r.jsonl"), {"kind": "call"})  # doctest: +SKIP
    """
    awrite = getattr(sink, "awrite", None)
    if awrite is not None:
        await awrite(record)
    elif getattr(sink, "blocking", True):
        await asyncio.to_thread(sink.write, record)
    else:
        sink.write(record)


def _write_batch(sink: ReceiptSink, batch: Sequence[Mapping[str, Any]]) -> list[str]:
    """What failed writing ``batch`` to ``sink``: in one call if it can, else one by one."""
    write_many = getattr(sink, "write_many", None)  # isinstance on a protocol is slow
    if write_many is not None:
        try:
            write_many(batch)
        except ReceiptError as exc:
            return [str(exc)]
        return []
    failures: list[str] = []
    for record in batch:
        try:
            sink.write(record)
        except ReceiptError as exc:
            failures.append(str(exc))
    return failures


class MultiSink:
    """Writes each record to every sink; one failing sink does not stop the others.

    Raises one :class:`ReceiptError` naming every sink that failed.
    """

    def __init__(self, sinks: Sequence[ReceiptSink]) -> None:
        self.sinks = tuple(sinks)
        self.blocking = any(getattr(s, "blocking", True) for s in self.sinks)

    def write(self, record: Mapping[str, Any]) -> None:
        """Write to each sink in turn."""
        failures: list[str] = []
        for sink in self.sinks:
            try:
                sink.write(record)
            except ReceiptError as exc:
                failures.append(f"{type(sink).__name__}: {exc}")
        if failures:
            raise ReceiptError("; ".join(failures))

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Write to each sink in turn from async code (see :func:`awrite_record`)."""
        failures: list[str] = []
        for sink in self.sinks:
            try:
                await awrite_record(sink, record)
            except ReceiptError as exc:
                failures.append(f"{type(sink).__name__}: {exc}")
        if failures:
            raise ReceiptError("; ".join(failures))

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write the records to each sink in turn, in one batch where the sink offers it."""
        batch = list(records)
        failures = [
            f"{type(sink).__name__}: {message}"
            for sink in self.sinks
            for message in _write_batch(sink, batch)
        ]
        if failures:
            raise ReceiptError("; ".join(failures))

    def close(self) -> None:
        """Close every sink."""
        for sink in self.sinks:
            sink.close()
