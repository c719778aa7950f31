"""A SQLite budget store read without writing to it: what ``policyroute budget status`` reads,
whether or not it may write the store's file (a monitoring account, an operator other than the
service's user, a read-only mount).

:class:`~policyroute.budgets.stores.sqlite.SQLiteStore` opens its file for writing: it creates
or migrates its tables under the write lock as it opens, so a user who may only read the file
got "attempt to write a readonly database" instead of the spend, anyone else waited behind a
busy writer, and a path naming another file had the store's tables added to it. This reader
opens the file
without creating or migrating anything and answers :meth:`scan` from one read transaction, as
the store's own ``scan`` does (the same lines, the same amounts, the same expired
reservations); it changes nothing. A process that may write the file opens it for writing
with writes refused (``PRAGMA query_only``), and takes no write lock: as the last connection
to close, it removes the write-ahead log and shared-memory files SQLite made beside the file,
which a read-only connection would leave behind.

:func:`sqlite_layout` says what a file holds: a budget store of this version, one of an
earlier version (which the store migrates the first time it opens the file for writing), an
SQLite file with no tables yet (a store that was never used), or something else entirely,
which is refused with :class:`~policyroute.errors.BudgetStoreError` naming the file rather
than read as a store without spend.

Example:
    >>> lines = ReadOnlySQLiteLines("/srv/app/budgets.sqlite3")  # doctest: +SKIP
    >>> [state.key for state in lines.scan("daily/", now=time.time())]  # doctest: +SKIP
    ['daily/u1/day:2026-01-02']
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Literal

from policyroute.budgets.stores._sqlite_sql import EARLIER_TABLES, TABLES
from policyroute.budgets.stores.base import LineState
from policyroute.budgets.stores.sqlite import scan_lines
from policyroute.errors import BudgetStoreError

__all__ = ["ReadOnlySQLiteLines", "SQLiteLayout", "current_lines", "sqlite_layout", "writable"]


def writable(path: str | os.PathLike[str]) -> bool:
    """Whether this process may write ``path`` and create files beside it (SQLite's WAL and
    shared-memory files), as :class:`~policyroute.budgets.stores.sqlite.SQLiteStore` needs."""
    target = Path(os.path.expanduser(path)).absolute()
    return os.access(target, os.W_OK) and os.access(target.parent, os.W_OK | os.X_OK)


SQLiteLayout = Literal["current", "earlier", "empty"]


def sqlite_layout(path: Path, tables: set[str]) -> SQLiteLayout:
    """Which budget store layout the file at ``path`` with ``tables`` has.

    ``"empty"``: no tables at all (a store never used, or a file made empty); ``"current"``:
    every table of this version's store and none of an earlier one's; ``"earlier"``: some of
    the store's tables, of an earlier version. Raises
    :class:`~policyroute.errors.BudgetStoreError` for a file with tables but none of a
    budget store's: another application's database, which the store must not add its tables
    to.

    Example:
        >>> sqlite_layout(Path("b.db"), {"budget_lines", "spend_buckets", "open_reservations"})
        'current'
        >>> sqlite_layout(Path("b.db"), set())
        'empty'
    """
    if not tables:
        return "empty"
    if tables >= TABLES and not tables & EARLIER_TABLES:
        return "current"
    if tables & (TABLES | EARLIER_TABLES):
        return "earlier"
    names = ", ".join(repr(name) for name in sorted(tables)[:3])
    more = f" and {len(tables) - 3} more" if len(tables) > 3 else ""
    raise BudgetStoreError(
        f"{path} is not a policyroute budget store: it is a SQLite database with other tables"
        f" ({names}{more}) and none of a budget store's; check the policy's store.path"
    )


def _not_a_database(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file is not a SQLite database (or an encrypted one)."""
    name = getattr(exc, "sqlite_errorname", None)  # Python >= 3.11
    return name == "SQLITE_NOTADB" or (name is None and "file is not a database" in str(exc))


def _not_sqlite(path: Path, exc: sqlite3.Error) -> BudgetStoreError:
    return BudgetStoreError(
        f"{path} is not a policyroute budget store: it is not a SQLite database ({exc});"
        " check the policy's store.path"
    )


_MODES = {"query_only": "?mode=rw", "read_only": "?mode=ro", "immutable": "?mode=ro&immutable=1"}


def _open(
    path: Path, timeout: float, mode: Literal["query_only", "read_only", "immutable"]
) -> tuple[sqlite3.Connection, set[str]]:
    """A connection to ``path`` that changes nothing in it, and the names of its tables."""
    conn = sqlite3.connect(
        path.as_uri() + _MODES[mode], uri=True, timeout=timeout, isolation_level=None
    )
    try:
        if mode == "query_only":
            conn.execute("PRAGMA query_only = ON")
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn, {name for (name,) in rows}


def _connect(path: Path, timeout: float) -> tuple[sqlite3.Connection, SQLiteLayout]:
    """A connection to ``path`` that changes nothing in it, and the file's layout."""
    try:
        conn, tables = _open(path, timeout, "query_only" if writable(path) else "read_only")
    except sqlite3.Error as exc:
        if _not_a_database(exc):
            raise _not_sqlite(path, exc) from exc
        # A file in WAL mode is read through its shared-memory file, which a reader that
        # may not create it (when no writer has the file open) cannot have. With no
        # write-ahead log holding anything either, everything is in the file itself, and it
        # is read as it is.
        if not _log_is_empty(path):
            raise BudgetStoreError(f"cannot read the budget store {path}: {exc}") from exc
        try:
            conn, tables = _open(path, timeout, "immutable")
        except sqlite3.Error as again:
            if _not_a_database(again):
                raise _not_sqlite(path, again) from again
            raise BudgetStoreError(f"cannot read the budget store {path}: {again}") from again
    try:
        return conn, sqlite_layout(path, tables)
    except BaseException:
        conn.close()
        raise


def current_lines(path: str | os.PathLike[str], *, timeout: float) -> ReadOnlySQLiteLines | None:
    """A reader of the budget store file at ``path`` (which exists), or ``None`` when it has
    the layout of an earlier version and this process may write it: the store migrates it as
    it opens, as the next call would. Raises as :class:`ReadOnlySQLiteLines` does otherwise.

    Example:
        >>> lines = current_lines("/srv/app/budgets.sqlite3", timeout=5.0)  # doctest: +SKIP
    """
    target = Path(os.path.expanduser(path)).absolute()
    conn, layout = _connect(target, timeout)
    if layout == "earlier" and writable(target):
        conn.close()
        return None
    return ReadOnlySQLiteLines._opened(target, conn, layout)


def _log_is_empty(path: Path) -> bool:
    """Whether the write-ahead log beside ``path`` is absent or empty (all is in the file)."""
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


class ReadOnlySQLiteLines:
    """The budget lines of a SQLite budget store file, read without changing it.

    Raises :class:`~policyroute.errors.BudgetStoreError` naming the file when it cannot be
    read, is not a budget store (:func:`sqlite_layout`), or still has the layout of an earlier
    version (which the store migrates the first time it opens the file for writing).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float) -> None:
        self.path = Path(os.path.expanduser(path)).absolute()
        self._conn, layout = _connect(self.path, timeout)
        self._read(layout)

    @classmethod
    def _opened(
        cls, path: Path, conn: sqlite3.Connection, layout: SQLiteLayout
    ) -> ReadOnlySQLiteLines:
        lines = cls.__new__(cls)
        lines.path, lines._conn = path, conn
        lines._read(layout)
        return lines

    def _read(self, layout: SQLiteLayout) -> None:
        if layout == "earlier":
            self._conn.close()
            raise BudgetStoreError(
                f"budget store {self.path} has the layout of an earlier policyroute version"
                " and this process may not write it to migrate it: run a call, or budget"
                " status, once as a user who may write the file"
            )
        # A file with no tables yet holds no spend (the store makes them at its first open,
        # before any call is charged).
        self._empty = layout == "empty"

    def scan(self, prefix: str, *, now: float) -> list[LineState]:
        """The live lines whose keys start with ``prefix``, as
        :meth:`~policyroute.budgets.stores.base.BudgetStore.scan` gives them."""
        if self._empty:
            return []
        conn = self._conn
        try:
            conn.execute("BEGIN")  # one snapshot for the lines, their buckets and reservations
            try:
                return scan_lines(conn, prefix, now)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise BudgetStoreError(f"cannot read the budget store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
