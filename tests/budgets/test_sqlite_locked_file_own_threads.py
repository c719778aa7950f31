"""Reservations waiting for a SQLite file another connection holds leave the application's
other async work alone.

They wait in threads of the store's own, never in the event loop's default executor, which
litellm prepares every ``acompletion`` in: with that executor small (two threads here) and a
dozen reservations waiting, a worker-thread job and a call with no budget still complete while
the lock is held. The time a transaction queues for one of the store's threads counts against
the store's lock timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from budgets.locked_files import other_async_work, small_default_executor, write_locked
from policyroute.budgets.stores import _sqlite_tx
from policyroute.budgets.stores import sqlite as sqlite_store
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

KEY = "total/%2A/day"
AMOUNT = Decimal("0.01")
WAITING = 12


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)  # the call's receipts go to ./.policyroute
    with FakeProvider() as provider:
        provider.set_default("a", Reply(text="hi"))
        yield provider


def _line() -> ReserveLine:
    return ReserveLine(key=KEY, limit=Decimal(100), amount=AMOUNT, expires_at=time.time() + 3600)


def _threads(store: SQLiteStore) -> list[threading.Thread]:
    return [] if store._pool is None else store._pool.threads()


@pytest.mark.asyncio
@pytest.mark.parametrize("swept", [False, True], ids=["locked", "locked-at-sweep"])
async def test_reservations_waiting_for_the_lock_leave_the_default_executor_free(
    tmp_path: Path, fp: FakeProvider, swept: bool
) -> None:
    store = SQLiteStore(tmp_path / "budgets.sqlite3", timeout=60.0)
    if not swept:
        # A first reservation sweeps, in a worker thread: later ones try on the loop first,
        # find the file locked, and go to a thread.
        now = time.time()
        assert (
            await store.areserve([_line()], reservation_id="first", lease_seconds=60, now=now)
        ).ok
    loop = asyncio.get_running_loop()
    try:
        with small_default_executor(loop), write_locked(store.path) as lock:
            waiting = [
                asyncio.create_task(
                    store.areserve(
                        [_line()], reservation_id=f"r{n}", lease_seconds=60, now=time.time()
                    )
                )
                for n in range(WAITING)
            ]
            await asyncio.sleep(0)  # each has handed its transaction to a thread
            assert not any(task.done() for task in waiting)
            await other_async_work(fp)
            held_throughout = lock.held
            lock.release()
            results = await asyncio.gather(*waiting)
        assert held_throughout, "the other work completed only once the lock was let go"
        assert all(result.ok for result in results)
        state = await store.astate(KEY, now=time.time())
        assert state.reserved == (WAITING + (not swept)) * AMOUNT
        assert 0 < len(_threads(store)) <= sqlite_store._WORKERS  # the rest queued
    finally:
        threads = _threads(store)
        store.close()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "close() ends the store's threads"
    assert len(store._all) == 0


@pytest.mark.asyncio
async def test_time_queued_for_a_thread_counts_against_the_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One thread: the second reservation queues behind the first, which waits for the lock
    # until the timeout; the second then has next to nothing left to wait, instead of a whole
    # timeout of its own (the Nth queued would fail after N of them).
    monkeypatch.setattr(sqlite_store, "_WORKERS", 1)
    waits: list[float] = []
    set_wait = _sqlite_tx._busy_timeout

    def record(cur: object, seconds: float) -> None:
        waits.append(seconds)
        set_wait(cur, seconds)  # type: ignore[arg-type]

    monkeypatch.setattr(_sqlite_tx, "_busy_timeout", record, raising=False)
    store = SQLiteStore(tmp_path / "budgets.sqlite3", timeout=1.0)
    try:
        with write_locked(store.path):
            results = await asyncio.gather(
                *(
                    store.areserve(
                        [_line()], reservation_id=f"r{n}", lease_seconds=60, now=time.time()
                    )
                    for n in range(2)
                ),
                return_exceptions=True,
            )
        assert all(isinstance(result, BudgetStoreError) for result in results)
        # What it had left: the first's queueing for a new thread, far less than a timeout.
        assert min(waits) < store.timeout / 2
        assert waits[-1] == store.timeout  # and its thread's connection waits as before after
        assert (
            await store.areserve(
                [_line()], reservation_id="after", lease_seconds=60, now=time.time()
            )
        ).ok
    finally:
        store.close()
