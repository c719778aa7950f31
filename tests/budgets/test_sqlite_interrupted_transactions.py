"""A KeyboardInterrupt landing inside one of the SQLite budget store's transactions never leaves
that transaction open.

Python runs a Ctrl-C's handler between two bytecodes, wherever the main thread is: right after
``BEGIN IMMEDIATE`` returned (before the ``with`` block that would end the transaction has
begun), or in the block's exit before its ``COMMIT`` ran. A transaction left open there keeps
the file's write lock, so every other connection (other threads, other processes) waits for it
and then fails, and the next ``BEGIN`` on the interrupted thread's own connection failed with
"cannot start a transaction within a transaction": every later call in that thread was refused.

Here the interrupt is delivered at those two points: once a statement is seen starting (the
connection's trace callback), the next return from (or call of) a cursor's ``execute`` raises
it, as a signal arriving during the statement does once it returns.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(30)


@contextmanager
def interrupted_after(conn: sqlite3.Connection, statement: str, event: str) -> Iterator[None]:
    """Raise KeyboardInterrupt at the first ``event`` (``c_return``: the statement starting
    with ``statement`` has just returned; ``c_call``: the next ``execute`` is about to run)
    of a cursor's ``execute`` once ``statement`` was seen on ``conn``."""
    seen = False

    def trace(sql: str) -> None:
        nonlocal seen
        if sql.lstrip().startswith(statement):
            seen = True

    def profile(frame: FrameType, name: str, arg: Any) -> None:
        nonlocal seen
        if seen and name == event and getattr(arg, "__name__", None) == "execute":
            seen = False
            sys.setprofile(None)
            raise KeyboardInterrupt

    conn.set_trace_callback(trace)
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)
        conn.set_trace_callback(None)


def _line() -> ReserveLine:
    return ReserveLine(
        key="daily", limit=Decimal(10), amount=Decimal(1), expires_at=time.time() + 86400
    )


def _assert_file_free(path: Path) -> None:
    """Another connection can take the write lock at once."""
    other = sqlite3.connect(path, timeout=0.0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize(
    ("statement", "event"),
    [
        ("BEGIN", "c_return"),  # after BEGIN IMMEDIATE, before the with block began
        ("INSERT INTO open_reservations", "c_call"),  # in the block's exit, before COMMIT
    ],
    ids=["after-begin", "before-commit"],
)
def test_an_interrupted_reservation_leaves_no_transaction_open(
    tmp_path: Path, statement: str, event: str
) -> None:
    path = tmp_path / "budget.db"
    store = SQLiteStore(path, timeout=0.5)
    try:
        conn = store._conn()
        with interrupted_after(conn, statement, event), pytest.raises(KeyboardInterrupt):
            store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=time.time())

        assert not conn.in_transaction
        _assert_file_free(path)
        now = time.time()
        assert store.reserve([_line()], reservation_id="r2", lease_seconds=60, now=now).ok
        (state,) = store.settle("r2", Decimal("0.5"), now=now)
        assert (state.spent, state.reserved) == (Decimal("0.5"), Decimal(0))
    finally:
        store.close()


def test_a_transaction_left_open_on_the_connection_is_rolled_back_by_the_next(
    tmp_path: Path,
) -> None:
    # However the interrupt landed (in the cleanup itself), the thread's next transaction
    # starts: what the open one did is undone, not committed with it.
    path = tmp_path / "budget.db"
    store = SQLiteStore(path, timeout=0.5)
    try:
        now = time.time()
        assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=now).ok
        conn = store._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM open_reservations")

        (state,) = store.settle("r1", Decimal("0.25"), now=now)

        assert (state.spent, state.reserved) == (Decimal("0.25"), Decimal(0))
        assert not conn.in_transaction
        _assert_file_free(path)
    finally:
        store.close()
