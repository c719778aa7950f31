"""The SQLite store's shortcuts keep its guarantees: lazy reclaim, one row per reservation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.budgets.stores import sqlite as sqlite_store
from policyroute.budgets.stores.base import ReserveLine, ReserveResult
from policyroute.budgets.stores.sqlite import SQLiteStore

D = Decimal
NOW = 1_750_000_000.0


def line(key: str, amount: str, limit: str = "1") -> ReserveLine:
    return ReserveLine(key=key, limit=D(limit), amount=D(amount), expires_at=NOW + 86_400)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "b.sqlite3")
    yield s
    s.close()


def hold(
    store: SQLiteStore, key: str, amount: str, rid: str, *, lease: float, now: float
) -> ReserveResult:
    return store.reserve([line(key, amount)], reservation_id=rid, lease_seconds=lease, now=now)


def spent_reserved(store: SQLiteStore, key: str) -> tuple[Decimal, Decimal]:
    state = store.state(key, now=NOW)
    return state.spent, state.reserved


def test_reserve_reclaims_an_expired_lease_within_the_reclaim_interval(
    store: SQLiteStore,
) -> None:
    every = sqlite_store._RECLAIM_EVERY
    assert hold(store, "a/*/day:x", "0.6", "dead", lease=0.1, now=NOW).ok
    # Expired, but looked for less than an interval ago: still held, and still counted.
    assert hold(store, "b/*/day:x", "0.1", "r1", lease=60, now=NOW + every / 2).ok
    assert spent_reserved(store, "a/*/day:x") == (D(0), D("0.6"))
    refused = hold(store, "a/*/day:x", "0.5", "r2", lease=60, now=NOW + every / 2)
    assert not refused.ok
    # One interval on, the next reserve (of any line) reclaims it at its worst case.
    assert hold(store, "c/*/day:x", "0.1", "r3", lease=60, now=NOW + every).ok
    assert spent_reserved(store, "a/*/day:x") == (D("0.6"), D(0))


def test_a_refused_reserve_keeps_what_it_reclaimed(store: SQLiteStore) -> None:
    assert hold(store, "a/*/day:x", "0.6", "dead", lease=10, now=NOW).ok
    # This reserve reclaims "dead" (0.6 spent), then is refused: only its own hold is undone.
    refused = hold(store, "a/*/day:x", "0.5", "r1", lease=60, now=NOW + 20)
    assert not refused.ok
    assert spent_reserved(store, "a/*/day:x") == (D("0.6"), D(0))
    assert store.settle("dead", D("0.1"), now=NOW + 21) == []
    assert store.settle("r1", D("0.1"), now=NOW + 21) == []


def test_a_reservation_is_one_row_holding_each_line_amount(store: SQLiteStore) -> None:
    lines = [line("a/*/day:x", "0.25"), line("b/*/day:x", "0.125", limit="2")]
    assert store.reserve(lines, reservation_id="r1", lease_seconds=60, now=NOW).ok
    assert spent_reserved(store, "a/*/day:x") == (D(0), D("0.25"))
    assert spent_reserved(store, "b/*/day:x") == (D(0), D("0.125"))
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute("SELECT id, expires_at FROM open_reservations").fetchall()
    finally:
        conn.close()
    assert rows == [("r1", NOW + 60)]
    states = store.settle("r1", D("0.1"), now=NOW)
    assert [(s.key, s.spent, s.reserved) for s in states] == [
        ("a/*/day:x", D("0.1"), D(0)),
        ("b/*/day:x", D("0.1"), D(0)),
    ]


def test_a_refusal_undoes_the_amounts_added_to_earlier_lines(store: SQLiteStore) -> None:
    lines = [line("a/*/day:x", "0.3"), line("b/*/day:x", "0.3"), line("c/*/day:x", "1.5")]
    result = store.reserve(lines, reservation_id="r1", lease_seconds=60, now=NOW)
    assert (result.ok, result.refused_index) == (False, 2)
    assert result.refused is not None
    assert (result.refused.spent, result.refused.reserved) == (D(0), D(0))
    for key in ("a/*/day:x", "b/*/day:x", "c/*/day:x"):
        assert spent_reserved(store, key) == (D(0), D(0))
    assert store.settle("r1", D(1), now=NOW) == []


def test_opening_drops_the_lease_expiry_index_of_an_interim_layout(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE INDEX open_reservations_by_expiry ON open_reservations (expires_at)")
    conn.close()
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "open_reservations_by_expiry" not in names


def page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        return size
    finally:
        conn.close()


def test_a_new_file_gets_small_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    new = tmp_path / "new.sqlite3"
    SQLiteStore(new).close()
    assert page_size(new) == sqlite_store._PAGE_SIZE < 4096
    existing = tmp_path / "existing.sqlite3"
    conn = sqlite3.connect(existing)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    store = SQLiteStore(existing)
    try:
        assert hold(store, "a/*/day:x", "0.5", "r1", lease=60, now=NOW).ok
        assert [s.spent for s in store.settle("r1", D("0.2"), now=NOW)] == [D("0.2")]
    finally:
        store.close()
    assert page_size(existing) == 4096
