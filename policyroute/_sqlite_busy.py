"""Another connection's lock: telling the SQLite error it caused from every other error, and
setting how long a connection waits for it.

Such an error means "try again": nothing was changed, and the same statement may succeed once
the other connection lets go. The budget store runs a transaction that met one again in a
worker thread; the SQLite receipt sink retries its set-up while processes opening one fresh
database at once get it without SQLite waiting on its busy handler. Both shorten a
connection's wait (:func:`set_busy_timeout`) for work that already queued for a while.

Example:
    >>> import sqlite3
    >>> is_busy(sqlite3.OperationalError("database is locked"))
    True
    >>> is_busy(sqlite3.OperationalError("no such table: receipts"))
    False
"""

from __future__ import annotations

import sqlite3

__all__ = ["is_busy", "set_busy_timeout"]

# SQLITE_BUSY (another connection holds the file's lock) and SQLITE_LOCKED (a conflict inside
# one connection or shared cache, "database table is locked"): primary codes, which extended
# codes such as SQLITE_BUSY_SNAPSHOT keep in their low byte.
_BUSY_CODES = (5, 6)
# What SQLite says for them (sqlite3_errstr; shared-cache conflicts name the table or schema
# after a colon). Matched from the start: "no such column: locked" is not one of them.
_BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")


# SQLite keeps busy_timeout in a C int of milliseconds, and reads a larger value as 0 (no wait at
# all): a timeout past it (about 24.8 days, "wait for ever" in practice) waits that long instead.
_LONGEST_WAIT_MS = 2**31 - 1


def set_busy_timeout(db: sqlite3.Connection | sqlite3.Cursor, seconds: float) -> None:
    """Make ``db``'s connection wait up to ``seconds`` for another connection's lock (at most
    about 24.8 days, SQLite's limit; ``inf`` waits that long).

    Example:
        >>> import sqlite3
        >>> db = sqlite3.connect(":memory:")
        >>> set_busy_timeout(db, float("inf"))
        >>> db.execute("PRAGMA busy_timeout").fetchone()
        (2147483647,)
        >>> db.close()
    """
    ms = seconds * 1000
    db.execute(f"PRAGMA busy_timeout = {int(min(ms, _LONGEST_WAIT_MS)) if ms > 0 else 0}")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying a lock is held (SQLITE_BUSY or SQLITE_LOCKED).

    Reads the error code where Python gives it (3.11 and later); on 3.10, or for an error
    that carries no code, an :class:`sqlite3.OperationalError` with one of SQLite's messages
    for them.

    Example:
        >>> is_busy(sqlite3.OperationalError("database table is locked"))
        True
        >>> is_busy(ValueError("locked"))
        False
    """
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(_BUSY_MESSAGES)
