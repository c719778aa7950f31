"""A budget file written with the earlier SQLite layout is migrated when a store opens it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError

D = Decimal
NOW = 1_750_000_000.0
NANO = 10**9

# The layout before reservations were kept one row each: a reservation's amount per line lived
# in reservation_lines. Kept here verbatim, as files written with it exist.
OLD_SCHEMA = """
CREATE TABLE budget_lines (
    key TEXT PRIMARY KEY,
    limit_nano INTEGER NOT NULL,
    spent_nano INTEGER NOT NULL DEFAULT 0,
    reserved_nano INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    bucket_seconds REAL,
    span_seconds REAL,
    thresholds TEXT NOT NULL DEFAULT '',
    fired TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE spend_buckets (
    key TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    nano INTEGER NOT NULL,
    PRIMARY KEY (key, bucket)
) WITHOUT ROWID;
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX reservations_by_expiry ON reservations (expires_at);
CREATE TABLE reservation_lines (
    reservation_id TEXT NOT NULL,
    key TEXT NOT NULL,
    amount_nano INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, key)
) WITHOUT ROWID;
"""


def old_file(path: Path) -> None:
    """What the earlier store left after three open reservations on two lines.

    ``live`` holds 0.2 on both lines, ``dead`` (lease ran out at NOW + 10) holds 0.3 on the user
    line and 0.1 on the team line, ``empty`` holds nothing (a reserve of no lines).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.executemany(
        "INSERT INTO budget_lines (key, limit_nano, spent_nano, reserved_nano, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            ("user/u1/day:x", NANO, NANO // 10, NANO // 2, NOW + 86_400),
            ("team/*/day:x", 2 * NANO, 0, 3 * NANO // 10, NOW + 86_400),
        ],
    )
    conn.executemany(
        "INSERT INTO reservations (id, expires_at) VALUES (?, ?)",
        [("live", NOW + 600), ("dead", NOW + 10), ("empty", NOW + 600)],
    )
    conn.executemany(
        "INSERT INTO reservation_lines (reservation_id, key, amount_nano) VALUES (?, ?, ?)",
        [
            ("live", "user/u1/day:x", 2 * NANO // 10),
            ("live", "team/*/day:x", 2 * NANO // 10),
            ("dead", "user/u1/day:x", 3 * NANO // 10),
            ("dead", "team/*/day:x", NANO // 10),
        ],
    )
    conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[SQLiteStore]:
    path = tmp_path / "budgets.sqlite3"
    old_file(path)
    store = SQLiteStore(path)
    yield store
    store.close()


def spent_reserved(store: SQLiteStore, key: str, now: float = NOW) -> tuple[Decimal, Decimal]:
    state = store.state(key, now=now)
    return state.spent, state.reserved


def test_opening_moves_the_old_reservations_and_drops_the_old_tables(
    migrated: SQLiteStore,
) -> None:
    names = tables(migrated.path)
    assert "reservation_lines" not in names
    assert "reservations" not in names
    assert "open_reservations" in names
    # The held amounts are untouched by the move.
    assert spent_reserved(migrated, "user/u1/day:x") == (D("0.1"), D("0.5"))
    assert spent_reserved(migrated, "team/*/day:x") == (D(0), D("0.3"))


def test_an_old_reservation_settles_on_each_of_its_lines(migrated: SQLiteStore) -> None:
    states = migrated.settle("live", D("0.05"), now=NOW)
    assert sorted((s.key, s.spent, s.reserved) for s in states) == [
        ("team/*/day:x", D("0.05"), D("0.1")),
        ("user/u1/day:x", D("0.15"), D("0.3")),
    ]
    assert migrated.settle("live", D("0.05"), now=NOW) == []  # still idempotent
    assert migrated.settle("empty", D(0), now=NOW) == []  # known, but it held no line
    assert not migrated.renew("empty", 60, now=NOW)  # gone once settled


def test_an_old_reservation_is_reclaimed_at_its_worst_case_after_its_lease(
    migrated: SQLiteStore,
) -> None:
    assert migrated.reclaim_expired(NOW + 5) == 0
    assert migrated.renew("live", 60, now=NOW + 5)  # an old lease renews as before
    assert migrated.reclaim_expired(NOW + 11) == 1
    # Its worst line amount (0.3) is charged to each of its lines, as before the migration.
    assert spent_reserved(migrated, "user/u1/day:x") == (D("0.4"), D("0.2"))
    assert spent_reserved(migrated, "team/*/day:x") == (D("0.3"), D("0.2"))


def test_new_reservations_count_the_migrated_ones_against_the_limit(
    migrated: SQLiteStore,
) -> None:
    # user line: 0.1 spent + 0.5 held; 0.4 still fits, 0.41 does not.
    line = ReserveLine("user/u1/day:x", D(1), D("0.41"), NOW + 86_400)
    refused = migrated.reserve([line], reservation_id="n0", lease_seconds=60, now=NOW)
    assert not refused.ok
    assert refused.refused is not None
    assert (refused.refused.spent, refused.refused.reserved) == (D("0.1"), D("0.5"))
    line = ReserveLine("user/u1/day:x", D(1), D("0.4"), NOW + 86_400)
    assert migrated.reserve([line], reservation_id="n1", lease_seconds=60, now=NOW).ok
    migrated.settle("n1", D("0.1"), now=NOW)
    migrated.release("live", now=NOW)
    assert spent_reserved(migrated, "user/u1/day:x") == (D("0.2"), D("0.3"))


def test_a_second_store_on_the_migrated_file_sees_the_same_reservations(
    migrated: SQLiteStore,
) -> None:
    other = SQLiteStore(migrated.path)
    try:
        assert sorted(s.key for s in other.settle("live", D(0), now=NOW)) == [
            "team/*/day:x",
            "user/u1/day:x",
        ]
        assert migrated.settle("live", D(0), now=NOW) == []
    finally:
        other.close()


def test_a_failed_migration_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "budgets.sqlite3"
    old_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    # A reservation id that the new table already holds makes the move fail half-way.
    conn.execute("CREATE TABLE open_reservations (id TEXT PRIMARY KEY, expires_at, lines)")
    conn.execute("INSERT INTO open_reservations VALUES ('dead', 0, '[]')")
    conn.close()
    with pytest.raises(BudgetStoreError, match=r"budgets\.sqlite3"):
        SQLiteStore(path)
    names = tables(path)
    assert {"reservations", "reservation_lines"} <= names
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM reservation_lines").fetchone()[0] == 4
    finally:
        conn.close()
