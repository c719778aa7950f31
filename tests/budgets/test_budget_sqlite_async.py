"""The SQLite store's async path: on the loop thread when free, in a worker when locked."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.budgets.stores import sqlite as sqlite_store
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore

NOW = 1_700_000_000.0


def line(amount: str) -> ReserveLine:
    return ReserveLine(
        key="b/*/day:x", limit=Decimal(1), amount=Decimal(amount), expires_at=NOW + 86_400
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "b.sqlite3", timeout=5.0)
    yield s
    s.close()


@pytest.mark.asyncio
async def test_uncontended_calls_take_no_thread_hop(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[object] = []

    async def counting_in_worker(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return fn(*args, **kwargs)

    monkeypatch.setattr(store, "_in_worker", counting_in_worker)
    store._last_sweep = NOW  # the sweep just ran (see the sweep test)
    ok = await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
    assert ok.ok
    states = await store.asettle("r1", Decimal("0.1"), now=NOW)
    assert [(s.spent, s.reserved) for s in states] == [(Decimal("0.1"), Decimal(0))]
    assert await store.asettle("r1", Decimal("0.1"), now=NOW) == []  # still idempotent
    assert hops == []


@pytest.mark.asyncio
async def test_a_locked_database_falls_back_to_a_waiting_worker(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[object] = []
    in_worker = store._in_worker

    async def counting_in_worker(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await in_worker(fn, *args, **kwargs)

    monkeypatch.setattr(store, "_in_worker", counting_in_worker)
    store._last_sweep = NOW
    # Another process's writer holds the lock for a moment, having spent 0.5 already.
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO budget_lines (key, limit_nano, spent_nano, expires_at) VALUES (?, ?, ?, ?)",
        ("b/*/day:x", 10**9, 5 * 10**8, NOW + 86_400),
    )
    timer = threading.Timer(0.05, lambda: other.execute("COMMIT"))
    timer.start()
    started = time.monotonic()
    try:
        first = await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
        second = await store.areserve([line("0.4")], reservation_id="r2", lease_seconds=30, now=NOW)
    finally:
        timer.join()
        other.close()
    assert time.monotonic() - started >= 0.04  # the first waited for the commit
    # The waiting reservation saw the other writer's spend: 0.5 + 0.4 fits, one more does not.
    assert (first.ok, second.ok) == (True, False)
    assert len(hops) == 1  # only the locked attempt went to a worker
    assert store.state("b/*/day:x", now=NOW).reserved == Decimal("0.4")


@pytest.mark.asyncio
async def test_a_busy_error_mid_transaction_rolls_back_and_retries(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Busy after BEGIN IMMEDIATE should not happen in WAL mode; if it does, the loop attempt
    # must leave nothing behind and the worker must run the whole transaction again.
    calls = {"n": 0}
    real_housekeep = SQLiteStore._housekeep

    def flaky_housekeep(self: SQLiteStore, cur: Any, now: float, settled: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_housekeep(self, cur, now, settled)

    monkeypatch.setattr(SQLiteStore, "_housekeep", flaky_housekeep)
    store._last_sweep = NOW
    result = await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
    assert result.ok
    assert calls["n"] == 2
    assert store.state("b/*/day:x", now=NOW).reserved == Decimal("0.4")


@pytest.mark.asyncio
async def test_other_errors_are_not_retried(store: SQLiteStore) -> None:
    from policyroute.errors import BudgetStoreError

    await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
    with pytest.raises(BudgetStoreError, match="UNIQUE"):
        await store.areserve([line("0.1")], reservation_id="r1", lease_seconds=30, now=NOW)
    assert store.state("b/*/day:x", now=NOW).reserved == Decimal("0.4")


@pytest.mark.asyncio
async def test_the_loop_connection_checkpoints_in_a_worker(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_LOOP_CHECKPOINT_EVERY", 3)
    seen: list[str] = []
    real_checkpoint = store._checkpoint

    def checkpoint() -> None:
        seen.append(threading.current_thread().name)
        real_checkpoint()

    monkeypatch.setattr(store, "_checkpoint", checkpoint)
    for i in range(7):
        await store.arenew(f"r{i}", 30, now=NOW)
    await asyncio.gather(*store._checkpoints)  # not awaited by the operations (below)
    assert len(seen) == 2
    assert threading.main_thread().name not in seen


@pytest.mark.asyncio
async def test_a_failing_checkpoint_leaves_the_committed_reservation_to_its_caller(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint is housekeeping: its failure must not turn the reservation that was just
    committed into an error, which the guard would take for a refusal and never give back."""
    await store.areserve([line("0.1")], reservation_id="r0", lease_seconds=30, now=NOW)  # sweeps
    monkeypatch.setattr(sqlite_store, "_LOOP_CHECKPOINT_EVERY", 1)

    def failing() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    on_loop_connection = store._connection

    def connection(*, on_loop: bool = False) -> Any:
        # The reservation runs on the loop's connection; the checkpoint in a worker's.
        return on_loop_connection(on_loop=True) if on_loop else _Failing(failing)

    monkeypatch.setattr(store, "_connection", connection)
    result = await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
    await asyncio.gather(*store._checkpoints)
    assert result.ok
    monkeypatch.undo()
    assert store.state("b/*/day:x", now=NOW).reserved == Decimal("0.5")
    assert "checkpointing the budget store's WAL failed" in caplog.text


@pytest.mark.asyncio
async def test_an_operation_does_not_wait_for_the_checkpoint_it_started(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.areserve([line("0.1")], reservation_id="r0", lease_seconds=30, now=NOW)  # sweeps
    monkeypatch.setattr(sqlite_store, "_LOOP_CHECKPOINT_EVERY", 1)
    release = threading.Event()
    events: list[str] = []
    real_checkpoint = store._checkpoint

    def slow_checkpoint() -> None:
        release.wait(20)  # a backstop, not a time limit: the test sets it at once
        events.append("checkpointed")
        real_checkpoint()

    monkeypatch.setattr(store, "_checkpoint", slow_checkpoint)
    result = await store.areserve([line("0.4")], reservation_id="r1", lease_seconds=30, now=NOW)
    events.append("returned")
    release.set()
    await asyncio.gather(*store._checkpoints)
    assert result.ok
    assert events == ["returned", "checkpointed"]


class _Failing:
    """A thread's connection whose statements raise ``fail``'s error."""

    def __init__(self, fail: Any) -> None:
        self._fail = fail
        self.conn = self
        self.busy = False

    def enter(self) -> bool:
        self.busy = True
        return True

    def leave(self) -> None:
        self.busy = False

    def execute(self, *_: Any) -> None:
        self._fail()


@pytest.mark.asyncio
async def test_the_periodic_sweep_runs_in_a_worker(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_housekeep = SQLiteStore._housekeep

    def recording_housekeep(self: SQLiteStore, cur: Any, now: float, settled: Any) -> int:
        threads.append(threading.current_thread().name)
        return real_housekeep(self, cur, now, settled)

    monkeypatch.setattr(SQLiteStore, "_housekeep", recording_housekeep)
    for i, at in enumerate([NOW, NOW + 1, NOW + 61]):
        await store.areserve([line("0.1")], reservation_id=f"r{i}", lease_seconds=30, now=at)
    main = threading.current_thread().name
    # First call: sweep due (worker); second: not due (loop); third: due again (worker).
    assert [name == main for name in threads] == [False, True, False]
