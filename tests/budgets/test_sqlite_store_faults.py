"""The SQLite budget store when its file misbehaves: not a database, not creatable, locked.

Nothing reaches a provider unless its reservation was recorded, a failure is a BudgetStoreError
naming the file, and a reservation that could not be settled is reclaimed at its lease's end.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import write_store_policy
from policyroute.budgets.stores.base import ReserveLine, ReserveResult
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.budgets.windows import budget_prefix
from policyroute.cli import main
from policyroute.errors import BudgetStoreError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

MESSAGES = [{"role": "user", "content": "hello"}]
LOCK_TIMEOUT = 0.5


def _policy(tmp_path: Path, fp: FakeProvider, db: Path, extra: str = "") -> Path:
    return write_store_policy(
        tmp_path / "policy.yaml", fp.openai_base, f"{{backend: sqlite, path: '{db}'{extra}}}"
    )


def _short_wait_policy(tmp_path: Path, fp: FakeProvider, db: Path) -> Path:
    """A policy whose store waits LOCK_TIMEOUT seconds for a lock instead of 30."""
    return _policy(tmp_path, fp, db, f", lock_timeout: {LOCK_TIMEOUT * 1000:g}ms")


def _daily(db: Path) -> tuple[Decimal, Decimal]:
    store = SQLiteStore(db)
    try:
        lines = store.scan(budget_prefix("daily"), now=time.time())
    finally:
        store.close()
    assert len(lines) == 1
    return lines[0].spent, lines[0].reserved


@pytest.fixture
def write_lock() -> Iterator[list[sqlite3.Connection]]:
    """Hold a database's write lock from another connection: ``lock(path)``."""
    held: list[sqlite3.Connection] = []
    yield held
    for conn in held:
        conn.rollback()
        conn.close()


def _lock(held: list[sqlite3.Connection], db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    held.append(conn)


# ----------------------------------------------------------------------- refused before the call


def test_a_file_that_is_not_a_database_refuses_the_call_naming_it(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    db = tmp_path / "budgets.sqlite3"
    db.write_bytes(b"these bytes are no SQLite database, " * 64)
    policy = _policy(tmp_path, fake_provider, db)

    with pytest.raises(BudgetStoreError, match=f"{db}.*not a database"):
        policyroute.completion(policy=policy, messages=MESSAGES)
    assert fake_provider.requests == []


@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_a_path_that_cannot_be_a_database_refuses_the_call_naming_it(
    tmp_path: Path, fake_provider: FakeProvider, where: str
) -> None:
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    db = tmp_path / ("plain-file/budgets.sqlite3" if where == "under-a-file" else "a-dir")
    policy = _policy(tmp_path, fake_provider, db)

    with pytest.raises(BudgetStoreError, match=f"budget store {db}"):
        policyroute.completion(policy=policy, messages=MESSAGES)
    assert fake_provider.requests == []


def test_budget_status_of_a_file_that_is_not_a_database_is_an_error(
    tmp_path: Path, fake_provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "budgets.sqlite3"
    db.write_bytes(b"\x00garbage" * 200)
    policy = _policy(tmp_path, fake_provider, db)

    assert main(["budget", "status", str(policy)]) == 1
    err = capsys.readouterr().err
    assert str(db) in err
    assert "not a database" in err


def test_a_database_locked_past_the_policys_lock_timeout_refuses_the_call_in_that_time(
    tmp_path: Path,
    fake_provider: FakeProvider,
    write_lock: list[sqlite3.Connection],
) -> None:
    db = tmp_path / "budgets.sqlite3"
    policy = _short_wait_policy(tmp_path, fake_provider, db)
    policyroute.completion(policy=policy, messages=MESSAGES)  # opens the store
    spent = _daily(db)
    _lock(write_lock, db)

    started = time.monotonic()
    with pytest.raises(BudgetStoreError) as caught:
        policyroute.completion(policy=policy, messages=MESSAGES)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert str(db) in message
    assert "locked" in message
    assert f"{LOCK_TIMEOUT:g} s" in message  # says how long it waited
    assert LOCK_TIMEOUT * 0.9 <= elapsed < 2 * LOCK_TIMEOUT  # the policy's wait, once
    assert len(fake_provider.requests) == 1  # the first call only
    write_lock[-1].rollback()
    assert _daily(db) == spent


# ----------------------------------------------------------------------- settle after the answer


def test_a_database_locked_at_settle_keeps_the_answer_and_reclaims_later(
    tmp_path: Path,
    fake_provider: FakeProvider,
    write_lock: list[sqlite3.Connection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "budgets.sqlite3"
    policy = _short_wait_policy(tmp_path, fake_provider, db)
    policyroute.completion(policy=policy, messages=MESSAGES)
    spent_before, _ = _daily(db)
    slow = Fault.slow_first_token(0.3, Reply(text="late", usage=Usage(prompt=7, completion=3)))
    fake_provider.script("fake-a", slow)
    answers: list[object] = []

    def call() -> None:
        answers.append(policyroute.completion(policy=policy, messages=MESSAGES))

    caller = threading.Thread(target=call)
    with caplog.at_level(logging.ERROR, logger="policyroute"):
        caller.start()
        fake_provider.wait_for_requests(2)
        _lock(write_lock, db)
        caller.join(timeout=30)
    assert not caller.is_alive()
    write_lock[-1].rollback()

    assert [a.choices[0].message.content for a in answers] == ["late"]  # type: ignore[attr-defined]
    assert any("settling budget reservation failed" in r.getMessage() for r in caplog.records)
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    receipts = [json.loads(line) for line in lines]
    assert [(r["kind"], r["status"]) for r in receipts] == [("attempt", "ok"), ("call", "ok")] * 2
    assert "budget_error" not in receipts[0]
    assert f"budget store {db}: database is locked" in receipts[2]["budget_error"]
    spent, reserved = _daily(db)
    assert spent == spent_before
    assert reserved > 0  # still held: the budget stays covered
    store = SQLiteStore(db)
    try:
        assert store.reclaim_expired(time.time() + 3600) == 1  # past its lease
    finally:
        store.close()
    assert _daily(db) == (spent_before + reserved, Decimal(0))


def test_a_relative_path_stays_the_same_file_when_the_process_changes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each thread opens its own connection: one opened after a chdir must not start a second,
    # empty file elsewhere, where the budget's spend would not count.
    (tmp_path / "app").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    store = SQLiteStore("state/budgets.sqlite3")
    line = ReserveLine("daily/*/day:x", Decimal("1"), Decimal("0.6"), time.time() + 3600)
    try:
        assert store.reserve([line], reservation_id="r1", lease_seconds=60, now=time.time()).ok
        monkeypatch.chdir(tmp_path / "elsewhere")
        results: list[ReserveResult] = []
        worker = threading.Thread(
            target=lambda: results.append(
                store.reserve([line], reservation_id="r2", lease_seconds=60, now=time.time())
            )
        )
        worker.start()
        worker.join(timeout=30)

        assert [r.ok for r in results] == [False]  # 0.6 + 0.6 would break the $1 limit
        assert not (tmp_path / "elsewhere" / "state").exists()
        assert "app" in str(store.path)
    finally:
        store.close()


def test_a_file_deleted_while_in_use_is_reopened_not_written_unseen(tmp_path: Path) -> None:
    # Removing the file (a cleanup script, an operator starting afresh) must not leave this
    # process enforcing budgets on the unlinked file while other processes use the new one.
    db = tmp_path / "budgets.sqlite3"
    first = SQLiteStore(db)
    second: SQLiteStore | None = None
    now = time.time()
    line = ReserveLine("daily/*/day:x", Decimal("1"), Decimal("0.3"), now + 3600)
    try:
        assert first.reserve([line], reservation_id="a1", lease_seconds=60, now=now).ok
        for path in tmp_path.glob("budgets.sqlite3*"):
            path.unlink()
        second = SQLiteStore(db)  # another process, starting on the new file
        big = ReserveLine(line.key, line.limit, Decimal("0.6"), line.expires_at)
        assert second.reserve([big], reservation_id="b1", lease_seconds=60, now=now).ok

        half = ReserveLine(line.key, line.limit, Decimal("0.5"), line.expires_at)
        result = first.reserve([half], reservation_id="a2", lease_seconds=60, now=now)

        assert not result.ok  # 0.6 held by the other process + 0.5 would break $1
        assert second.state(line.key, now=now).reserved == Decimal("0.6")
        assert first.settle("a1", Decimal("0.1"), now=now) == []  # held in the removed file
    finally:
        first.close()
        if second is not None:
            second.close()
