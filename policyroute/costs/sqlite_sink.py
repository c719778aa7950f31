"""The SQLite receipt sink: one row per receipt, costs kept as decimal strings.

Example:
    >>> sink = SqliteSink(".policyroute/receipts.sqlite3")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policyroute import _sqlite_forked
from policyroute._blocking import BlockingPool
from policyroute._files import file_id
from policyroute._fork import keep_inherited, reset_after_fork
from policyroute._sqlite_busy import is_busy
from policyroute._sqlite_busy import set_busy_timeout as _busy_timeout
from policyroute.costs.receipt_json import UNENCODABLE, encode_record, text_of
from policyroute.errors import ReceiptError

__all__ = ["SqliteSink"]


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
    ``timeout`` bounds each write, in all: the time it queues behind this process's other
    writes (threads share one connection) and then waits for other processes' locks. A write
    that cannot be done in time raises :class:`ReceiptError` naming the database. A timeout of
    0 (do not wait for another process) or of ``inf`` (wait for ever) leaves the queue behind
    this process's own writes unbounded: they each take a moment, and failing one thread's
    receipt because another thread was writing would lose receipts for nothing.

    ``path`` is read as :class:`JsonlSink` reads its template (``~`` is the home directory,
    a relative path is relative to the working directory when the sink is made), and a
    database the sink creates is readable by its owner only (mode ``0600``, and so are
    SQLite's ``-wal`` and ``-shm`` files beside it, which take its mode) when it may hold
    prompt text: with ``private`` set (a policy's ``receipts.include_prompt``), or when the
    record whose write creates it carries a ``prompt``; an existing database keeps its mode.
    A child
    made by ``fork()`` opens a connection of its own at its first write (see
    :mod:`policyroute._fork`).

    Example:
        >>> sink = SqliteSink(".policyroute/receipts.sqlite3")  # doctest: +SKIP
        >>> sink.write({"kind": "call", "cost": "0.000100"})  # doctest: +SKIP
    """

    blocking = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        connect: bool = True,
        private: bool = False,
    ) -> None:
        # Absolute from the start, like JsonlSink's: a later chdir must not move the database.
        # "~" is the home directory, as JsonlSink reads it.
        self.path = Path(os.path.abspath(os.path.expanduser(path)))
        self.timeout = timeout
        self.private = private
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._closed = False
        self._forked_mid_write = False
        # Threads for the writes of async code, started at the first; close() ends them.
        self._pool = BlockingPool("policyroute-sink-sqlite", _WORKERS)
        reset_after_fork(self)
        if connect:
            with self._lock:
                self._connection(private)

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork(): it is never released here.
        held = self._lock.locked()
        self._lock = threading.Lock()
        conn, ident = self._conn, self._file_id
        self._conn, self._file_id = None, None
        # SQLite forbids using a connection in a child made by fork(): the next write opens
        # another. Closing this process's copy clears SQLite's record of its locks on the
        # file, which a new connection here would otherwise trust (the parent's own
        # connection and locks are untouched). Unless a thread was inside a write (or an
        # open): then the copy's mutex is held for good, closing it would wait forever, and
        # SQLite's record of the file in this process stays wrong, so this process cannot
        # use the database.
        if held:
            if conn is not None:
                keep_inherited(conn)
            # (a connection being opened has no file id yet: the path names its file)
            _sqlite_forked.mark(ident if ident is not None else file_id(self.path))
            self._forked_mid_write = True
        elif conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _connection(self, private: bool) -> sqlite3.Connection:
        """The open connection, (re)opened if ``path`` no longer names its file (created
        readable by its owner only when ``private``); hold the lock."""
        if self._conn is not None:
            if file_id(self.path) == self._file_id:
                return self._conn
            self._conn.close()
            self._conn = None
        where = os.path.abspath(self.path)
        refused = _sqlite_forked.refusal(file_id(self.path), f"receipt database {where}")
        if refused is not None:  # a sink made afresh in a child forked mid-write
            raise ReceiptError(refused)
        try:
            os.makedirs(os.path.dirname(where), exist_ok=True)
        except OSError as exc:
            raise ReceiptError(
                f"cannot open receipt database {where}: cannot create directory"
                f" {os.path.dirname(where)}: {exc.strerror}"
            ) from exc
        if os.path.isdir(where):
            # SQLite says only "unable to open database file", which does not tell why.
            raise ReceiptError(f"cannot open receipt database {where}: it is a directory")
        try:
            if private:
                _create_private(where)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            try:
                _set_up(conn, self.timeout)
                opened = file_id(self.path)
            except BaseException:
                conn.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            raise ReceiptError(f"cannot open receipt database {where}: {exc}") from exc
        self._conn, self._file_id = conn, opened
        return conn

    def write(self, record: Mapping[str, Any]) -> None:
        """Insert one row."""
        self._write(record, time.monotonic())

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Insert one row from async code, in a thread of the sink's own.

        Never the event loop's default executor: while another process holds the database,
        each waiting write would take one of the threads the application's calls share. The
        time a write queues for the sink's thread counts against ``timeout``."""
        await self._pool.run(self._write, record, time.monotonic())

    def _write(self, record: Mapping[str, Any], began: float) -> None:
        try:
            payload = encode_record(record)[:-1].decode("utf-8")
        except UNENCODABLE as exc:
            raise ReceiptError(f"receipt is not JSON-serialisable: {exc}") from exc
        values = [None if record.get(c) is None else text_of(record.get(c)) for c in _COLUMNS]
        attempt = record.get("attempt")
        row = (*values, attempt if isinstance(attempt, int) else None, payload)
        private = self.private or "prompt" in record
        where = os.path.abspath(self.path)
        # Threads share the connection, so their writes queue here. The timeout bounds the
        # whole write, queue included: while another process holds the database, the Nth
        # queued thread would otherwise fail only after N timeouts.
        # Lock.acquire refuses a timeout past TIMEOUT_MAX (inf among them), which sqlite3
        # takes as "wait for ever": so does the queue then.
        wait = self.timeout if 0 < self.timeout < threading.TIMEOUT_MAX else -1
        if wait > 0:
            wait = max(0.0, wait - (time.monotonic() - began))
        if not self._lock.acquire(timeout=wait):
            raise ReceiptError(
                f"cannot insert receipt into {where}: database is locked (waited"
                f" {self.timeout:g}s behind this process's other writes to it)"
            )
        try:
            self._insert(row, began, where, private)
        finally:
            self._lock.release()

    def _insert(self, row: tuple[Any, ...], began: float, where: str, private: bool) -> None:
        """Insert ``row`` waiting what is left of the timeout since ``began`` (into a database
        created readable by its owner only when ``private``); hold the lock."""
        if self._closed:
            raise ReceiptError(f"receipt database {self.path} is closed")
        if self._forked_mid_write:
            raise ReceiptError(_sqlite_forked.message(f"receipt database {self.path}"))
        conn = self._connection(private)
        left = self.timeout - (time.monotonic() - began)
        queued = left < self.timeout - _QUEUED
        try:
            if queued:
                _busy_timeout(conn, left)
            conn.execute(_INSERT, row)
        except sqlite3.Error as exc:
            raise ReceiptError(f"cannot insert receipt into {where}: {exc}") from exc
        finally:
            if queued:
                with contextlib.suppress(sqlite3.Error):
                    _busy_timeout(conn, self.timeout)

    def close(self) -> None:
        """Close the connection and end the sink's threads (once writes under way end)."""
        self._pool.close()
        with self._lock:
            conn, self._conn, self._closed = self._conn, None, True
            if conn is not None:
                conn.close()


# A write that waited longer than this for the connection waits only what is left of its
# timeout for the database; shorter waits (the usual queue of a few inserts) keep the
# connection's own timeout and save two PRAGMAs.
_QUEUED = 0.001
# Threads for the writes of async code. Writes go one at a time through the sink's connection
# anyway: two keep one ready behind the one writing, and more would only wait on its lock.
_WORKERS = 2


def _create_private(path: str) -> None:
    """Create ``path`` empty, readable and writable by its owner only, unless it exists.

    SQLite creates a database ``0644`` (less the umask) and has no say in it; an empty file is
    a database it opens as new, and gives its ``-wal`` and ``-shm`` files the same mode.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # made meanwhile by another process or thread: its mode stays
        return
    os.close(fd)


def _set_up(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch ``conn``'s database to WAL and create the table, waiting up to ``timeout``
    seconds for other processes doing the same.

    SQLite does not always wait on its busy handler here: processes opening one fresh file
    at once can get "database is locked" at once (switching to WAL needs the file to
    themselves), so that is retried with a growing pause until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS: safe to run again
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
