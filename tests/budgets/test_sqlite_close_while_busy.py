"""``SQLiteStore.close()`` from one thread while another is inside a transaction or a WAL
checkpoint: the connection in use is not closed under it (closing it there freed it while SQLite
still ran on it, which crashed the interpreter), the work under way finishes, its connection is
closed as it ends, and later work is refused with ``BudgetStoreError``."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(30)


def _line(key: str = "daily/global/d1") -> ReserveLine:
    return ReserveLine(key=key, limit=Decimal("10"), amount=Decimal("0.5"), expires_at=1e12)


def test_a_transaction_under_way_outlives_close_and_its_connection_closes_after(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "budget.db")
    store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0)
    inside, go_on = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def worker() -> None:
        try:
            with store._lock_retry(read_only=True) as cur:
                seen["held"] = store._local.held
                inside.set()
                go_on.wait(10)
                seen["rows"] = cur.execute("SELECT count(*) FROM budget_lines").fetchone()[0]
        except BaseException as exc:  # what the transaction met, for the assertion below
            seen["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(10)
    store.close()
    go_on.set()
    thread.join(10)

    assert "error" not in seen, seen.get("error")
    assert seen["rows"] == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        seen["held"].conn.execute("SELECT 1")  # closed by its thread as the transaction ended
    with pytest.raises(BudgetStoreError, match="is closed"):
        store.state("daily/global/d1", now=0.0)


def test_a_connection_closed_while_idle_refuses_its_next_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budget.db")
    store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0)
    held = store._local.held
    held.close()  # as the store's close() does from another thread
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        held.conn.execute("SELECT 1")
    assert not held.enter()
    store.close()


def test_closing_during_many_async_reservations_never_crashes(tmp_path: Path) -> None:
    # Reservations and settles on the loop and in the store's threads (a locked file sends them
    # there), the store closed from another thread midway: each either completes or is refused
    # with BudgetStoreError, and the process lives on.
    store = SQLiteStore(tmp_path / "budget.db", timeout=5)
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        try:
            await store.areserve(
                [_line(f"daily/user/u{i % 7}")], reservation_id=f"r{i}", lease_seconds=60, now=0.0
            )
            await store.asettle(f"r{i}", Decimal("0.1"), now=0.0)
        except BudgetStoreError as exc:
            errors.append(exc)

    async def main() -> None:
        closer = threading.Timer(0.05, store.close)
        closer.start()
        try:
            for round_ in range(40):
                await asyncio.gather(*(one(round_ * 50 + i) for i in range(50)))
                await asyncio.gather(
                    *(store._in_worker(store._checkpoint_quietly) for _ in range(4))
                )
        except BudgetStoreError as exc:
            errors.append(exc)
        finally:
            closer.join()

    asyncio.run(main())
    assert errors, "the store was closed midway: later work must be refused"
    assert all("is closed" in str(e) for e in errors), errors[:3]
