"""One SQLite transaction of the budget store, the thread's connection it runs on, and how its
errors leave it.

Example:
    >>> _is_busy(sqlite3.OperationalError("database is locked"))
    True
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from policyroute import _sqlite_forked
from policyroute._files import path_kind
from policyroute._sqlite_busy import is_busy as _is_busy
from policyroute._sqlite_busy import set_busy_timeout as _busy_timeout
from policyroute.errors import BudgetStoreError

if TYPE_CHECKING:
    from policyroute.budgets.stores.sqlite import SQLiteStore

__all__ = ["Busy", "ThreadConnection", "Transaction", "store_error"]

# Those threads' connections, kept open and never touched again here: each one's mutex is
# held for good by a thread this process does not have, so closing it would wait for ever.
_KEPT: list[sqlite3.Connection] = []


class ThreadConnection:
    """One thread's connection to the store's file, its cursor, and what it was opened on.

    Kept in a :class:`threading.local` only (the store's list of connections holds it by weak
    reference), so it dies with its thread: CPython clears a thread's local storage in that
    thread as it ends, before ``join()`` returns, and :meth:`__del__` then closes the
    connection there. A thread that ends with a transaction open (a failed ROLLBACK) has it
    rolled back by SQLite as the connection closes. The connection is opened with
    ``check_same_thread=False``, so the store's ``close()`` and a replaced thread-local may
    close it from another thread too; closing twice does nothing.

    A close from another thread while the owner is inside a statement (a transaction, a WAL
    checkpoint: :meth:`enter` to :meth:`leave`) would free the connection under SQLite's feet
    (a crash, seen on Python 3.12): the connection is then only marked, and the owner closes it
    as it leaves; a transaction it would start after that is refused (:meth:`enter` answers
    ``False``).

    In a child made by ``fork()``, a connection that a thread of the parent was using (``busy``)
    is never closed, and its file is marked unusable here (see
    :mod:`policyroute._sqlite_forked`). One that was idle is closed, which clears SQLite's
    record of it in this process; the parent's own stays open.
    """

    __slots__ = ("__weakref__", "_doomed", "_lock", "busy", "conn", "cur", "ident", "pid")

    def __init__(self, conn: sqlite3.Connection, pid: int, ident: tuple[int, int] | None):
        self.conn = conn
        self.cur = conn.cursor()
        # The process that opened it: a child after fork() opens its own.
        self.pid = pid
        # The (device, inode) of the file it opened: one replaced at the path is reopened.
        self.ident = ident
        # True from before a transaction enters SQLite until after it has left (so while the
        # connection's mutex may be held): a child forked meanwhile must not close it.
        self.busy = False
        # Closed by another thread while busy: the owner closes it as it leaves.
        self._doomed = False
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Mark the connection in use by its thread; ``False`` (not marked) when it was closed."""
        with self._lock:
            if self._doomed:
                return False
            self.busy = True
            return True

    def leave(self) -> None:
        """The owner is out of SQLite: close the connection now if a close came meanwhile."""
        with self._lock:
            self.busy = False
            if self._doomed:
                self.conn.close()

    def close(self) -> None:
        if self.pid != os.getpid():
            # Inherited through fork(): no lock of the parent's threads is taken here.
            if self.busy:
                if all(kept is not self.conn for kept in _KEPT):
                    _KEPT.append(self.conn)
                _sqlite_forked.mark(self.ident)
                return
            self.conn.close()
            return
        with self._lock:
            self._doomed = True
            if self.busy:
                return  # the owner is inside a statement: it closes the connection on leaving
            self.conn.close()

    def __del__(self) -> None:
        # Runs as the owning thread ends (or in whichever thread drops the last reference,
        # or, in a forked child, as fork() clears the parent's other threads): an error here
        # can only be reported as "Exception ignored", so none is let out.
        try:
            self.close()
        except sqlite3.Error:
            pass


def store_error(store: SQLiteStore, exc: sqlite3.Error) -> BudgetStoreError:
    """``exc`` as the store's error: the file, what SQLite said, and how long it waited."""
    message = f"budget store {store.path}: {exc}"
    if _is_busy(exc):
        message += (
            f" (another connection held its write lock for more than {store.timeout:g} s;"
            " a long transaction on this file, or a process stopped while holding it?)"
        )
    else:
        # SQLite says "unable to open database file" of a directory and "disk I/O error" of
        # a device, neither of which names the mistake.
        kind = _NOT_A_FILE.get(path_kind(store.path))
        if kind is not None:
            message += f" (it is {kind}: store.path names the database file itself)"
    return BudgetStoreError(message)


# What a path that is there but no file SQLite can open is, by its kind (_files.path_kind).
_NOT_A_FILE = {"directory": "a directory", "pipe": "a pipe", "other": "a device or a socket"}


class Busy(Exception):
    """The loop thread's attempt found the database locked; nothing was changed."""


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on this thread's connection, rolled back on error.

    Waiting for another process's lock is left to SQLite's busy handler (``timeout``): polling
    from Python with shorter sleeps measured slower, as the waiters then steal CPU from the
    lock holder. Errors leave as :class:`BudgetStoreError`; on the loop thread's connection a
    locked database leaves as :class:`Busy` once the transaction is rolled back, so the caller
    can run it again in a worker thread.
    """

    __slots__ = (
        "_conn",
        "_cur",
        "_deadline",
        "_held",
        "_on_loop",
        "_read_only",
        "_store",
        "rollback",
    )

    def __init__(
        self,
        store: SQLiteStore,
        *,
        read_only: bool = False,
        on_loop: bool = False,
        deadline: float | None = None,
    ):
        self._store = store
        self._read_only = read_only
        self._on_loop = on_loop
        # When (time.monotonic()) the wait for the lock must end, where the transaction
        # already queued for a worker thread: the connection waits only what is left.
        self._deadline = deadline
        self.rollback = False

    def __enter__(self) -> Transaction:
        try:
            held = self._held = self._store._connection(on_loop=self._on_loop)
            self._conn, self._cur = held.conn, held.cur
            if not held.enter():
                raise BudgetStoreError(f"budget store {self._store.path} is closed")
            try:
                if self._conn.in_transaction:
                    # One an interrupt left open (a KeyboardInterrupt landing where the
                    # cleanup below could not run): BEGIN would fail on it for good.
                    self._cur.execute("ROLLBACK")
                if self._deadline is not None:
                    _busy_timeout(self._cur, self._deadline - time.monotonic())
                    try:
                        self._begin()
                    except BaseException:
                        self._restore_timeout()
                        raise
                else:
                    self._begin()
            except BaseException:
                # A KeyboardInterrupt right after BEGIN: no ``with`` body, so no __exit__.
                self._abandon()
                held.leave()
                raise
        except sqlite3.Error as exc:
            if self._on_loop and _is_busy(exc):
                raise Busy from exc
            raise store_error(self._store, exc) from exc
        return self

    def _restore_timeout(self) -> None:
        # The connection is the thread's, used again by transactions that did not queue.
        with contextlib.suppress(sqlite3.Error):
            _busy_timeout(self._cur, self._store.timeout)

    def _begin(self) -> None:
        self._cur.execute("BEGIN" if self._read_only else "BEGIN IMMEDIATE")

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self._cur.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        return self._cur.executemany(sql, rows)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self._end(exc_type, exc)
        except BaseException:
            # A KeyboardInterrupt before COMMIT or ROLLBACK ran would leave the transaction
            # open, holding the file's write lock against every other connection.
            self._abandon()
            raise
        finally:
            if self._deadline is not None:
                self._restore_timeout()
            self._held.leave()

    def _abandon(self) -> None:
        """Roll back a transaction left open by an error or an interrupt, if any."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._cur.execute("ROLLBACK")

    def _end(self, exc_type: Any, exc: BaseException | None) -> None:
        try:
            if exc_type is None and not self.rollback:
                try:
                    self._cur.execute("COMMIT")
                except sqlite3.Error:
                    # A failed COMMIT leaves the transaction open: end it before reporting.
                    if self._conn.in_transaction:
                        self._cur.execute("ROLLBACK")
                    raise
            else:
                self._cur.execute("ROLLBACK")
        except sqlite3.Error as error:
            if exc is None:
                if self._on_loop and _is_busy(error):
                    raise Busy from error
                raise store_error(self._store, error) from error
        if isinstance(exc, sqlite3.Error):
            if self._on_loop and _is_busy(exc):
                raise Busy from exc
            raise store_error(self._store, exc) from exc
