"""is_busy: SQLite errors caused by a lock someone holds, and every other error."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute._sqlite_busy import is_busy, set_busy_timeout


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    try:
        yield conn
    finally:
        conn.close()


def test_a_write_lock_held_by_another_connection_is_busy(
    database: sqlite3.Connection, tmp_path: Path
) -> None:
    database.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(tmp_path / "db.sqlite3", timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        database.execute("ROLLBACK")
    assert "database is locked" in str(caught.value)
    assert is_busy(caught.value)


def test_a_table_locked_inside_one_connection_is_busy(database: sqlite3.Connection) -> None:
    # SQLITE_LOCKED: dropping a table that an unfinished statement of the same connection is
    # still reading.
    reading = database.execute("SELECT x FROM t")
    reading.fetchone()
    with pytest.raises(sqlite3.OperationalError) as caught:
        database.execute("DROP TABLE t")
    reading.close()
    assert "table is locked" in str(caught.value)
    assert is_busy(caught.value)


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("SELECT * FROM missing", sqlite3.OperationalError),  # no such table
        ("SELEC 1", sqlite3.OperationalError),  # syntax error
        ("INSERT INTO t (x, y) VALUES (1, 2)", sqlite3.OperationalError),  # no column y
    ],
)
def test_other_operational_errors_are_not_busy(
    database: sqlite3.Connection, statement: str, error: type[sqlite3.Error]
) -> None:
    with pytest.raises(error) as caught:
        database.execute(statement)
    assert not is_busy(caught.value)


def test_errors_of_other_kinds_are_not_busy(database: sqlite3.Connection) -> None:
    database.execute("CREATE TABLE u (x INTEGER UNIQUE)")
    database.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        database.execute("INSERT INTO u VALUES (1)")
    assert not is_busy(caught.value)
    assert not is_busy(OSError("database is locked"))  # not SQLite's
    assert not is_busy(ValueError("locked"))


def test_a_message_that_merely_mentions_locked_is_not_busy(database: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.OperationalError) as caught:
        database.execute("SELECT locked FROM t")
    assert str(caught.value) == "no such column: locked"
    assert not is_busy(caught.value)
    assert not is_busy(sqlite3.OperationalError("no such column: locked"))  # without a code


@pytest.mark.skipif(sys.version_info < (3, 11), reason="error codes arrived in Python 3.11")
def test_the_error_code_decides_where_there_is_one() -> None:
    busy = sqlite3.OperationalError("unexpected wording")
    busy.sqlite_errorcode = 5 | (2 << 8)  # SQLITE_BUSY_SNAPSHOT  # type: ignore[misc]
    assert is_busy(busy)
    other = sqlite3.OperationalError("database is locked")
    other.sqlite_errorcode = 1  # SQLITE_ERROR  # type: ignore[misc]
    assert not is_busy(other)


def test_without_an_error_code_the_message_decides() -> None:
    # Python 3.10 gives no codes, and an error made in Python carries none.
    assert is_busy(sqlite3.OperationalError("database is locked"))
    assert is_busy(sqlite3.OperationalError("database table is locked"))
    assert not is_busy(sqlite3.OperationalError("disk I/O error"))
    assert not is_busy(sqlite3.DatabaseError("database is locked"))  # not an OperationalError


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [(2.5, 2500), (0, 0), (-1, 0), (30 * 86_400, 2**31 - 1), (float("inf"), 2**31 - 1)],
)
def test_a_busy_timeout_past_sqlites_limit_waits_the_longest_it_can(
    seconds: float, ms: int
) -> None:
    """SQLite reads a busy_timeout past a C int of milliseconds as 0: no wait at all, so a sink
    or store given a month (or for ever) would fail at the first lock instead of waiting."""
    db = sqlite3.connect(":memory:")
    try:
        set_busy_timeout(db, seconds)
        assert db.execute("PRAGMA busy_timeout").fetchone() == (ms,)
    finally:
        db.close()
