"""A SQLite budget store read without writing to it: what ``policyroute budget status`` reads
when it may read the store's file but not write it (a monitoring account, an operator other
than the service's user, a read-only mount).

:class:`~policyroute.budgets.stores.sqlite.SQLiteStore` opens its file for writing: it creates
or migrates its tables under the write lock as it opens, so a user who may only read the file
got "attempt to write a readonly database" instead of the spend. This reader opens the file
read-only and answers :meth:`scan` from one read transaction, as the store's own ``scan``
does (the same lines, the same amounts, the same expired reservations); it changes nothing.

Example:
    >>> lines = ReadOnlySQLiteLines("/srv/app/budgets.sqlite3")  # doctest: +SKIP
    >>> [state.key for state in lines.scan("daily/", now=time.time())]  # doctest: +SKIP
    ['daily/u1/day:2026-01-02']
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from policyroute.budgets.stores.base import LineState
from policyroute.budgets.stores.sqlite import scan_lines
from policyroute.errors import BudgetStoreError

__all__ = ["ReadOnlySQLiteLines", "writable"]


def writable(path: str | os.PathLike[str]) -> bool:
    """Whether this process may write ``path`` and create files beside it (SQLite's WAL and
    shared-memory files), as :class:`~policyroute.budgets.stores.sqlite.SQLiteStore` needs."""
    target = Path(os.path.expanduser(path)).absolute()
    return os.access(target, os.W_OK) and os.access(target.parent, os.W_OK | os.X_OK)


def _open(path: Path, timeout: float, *, immutable: bool) -> tuple[sqlite3.Connection, set[str]]:
    """A read-only connection to ``path``, and the names of its tables."""
    uri = path.as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn, {name for (name,) in rows}


def _log_is_empty(path: Path) -> bool:
    """Whether the write-ahead log beside ``path`` is absent or empty (all is in the file)."""
    try:
        return os.stat(f"{path}-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


class ReadOnlySQLiteLines:
    """The budget lines of a SQLite budget store file, read-only.

    Raises :class:`~policyroute.errors.BudgetStoreError` naming the file when it cannot be
    read, is not a budget store, or still has the layout of an earlier version (which the
    store migrates the first time it opens the file for writing).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float) -> None:
        self.path = Path(os.path.expanduser(path)).absolute()
        try:
            self._conn, tables = _open(self.path, timeout, immutable=False)
        except sqlite3.Error as exc:
            # A file in WAL mode is read through its shared-memory file, which a reader that
            # may not create it (when no writer has the file open) cannot have. With no
            # write-ahead log holding anything either, everything is in the file itself,
            # and it is read as it is.
            if not _log_is_empty(self.path):
                raise BudgetStoreError(f"cannot read the budget store {self.path}: {exc}") from exc
            try:
                self._conn, tables = _open(self.path, timeout, immutable=True)
            except sqlite3.Error as again:
                message = f"cannot read the budget store {self.path}: {again}"
                raise BudgetStoreError(message) from again
        if "reservation_lines" in tables:
            self._conn.close()
            raise BudgetStoreError(
                f"budget store {self.path} has the layout of an earlier policyroute version"
                " and this process may not write it to migrate it: run a call, or budget"
                " status, once as a user who may write the file"
            )
        # A file with no budget tables yet holds no spend (the store makes them at its first
        # open, before any call is charged).
        self._empty = not {"budget_lines", "open_reservations", "spend_buckets"} <= tables

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
