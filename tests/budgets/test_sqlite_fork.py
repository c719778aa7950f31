"""The SQLite budget store in a process forked while another of its threads was using it.

A pre-forking server (gunicorn ``--preload``, Celery's prefork pool, ``multiprocessing`` with
the ``fork`` start method) may fork while one of its threads is inside the store. The child
has only the forking thread: a lock or a SQLite connection another thread held stays held
there for good. The child must not hang, neither in ``fork()`` nor at its first reservation.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute import _sqlite_forked
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

CHILD_SECONDS = 5.0
KEY = "total/%2A/day"
AMOUNT = Decimal("0.01")


def _line() -> ReserveLine:
    return ReserveLine(key=KEY, limit=Decimal(100), amount=AMOUNT, expires_at=time.time() + 3600)


def _pair(store: SQLiteStore, rid: str) -> None:
    assert store.reserve([_line()], reservation_id=rid, lease_seconds=30, now=time.time()).ok
    store.settle(rid, AMOUNT, now=time.time())


def _fork_and_run(child: Callable[[], str]) -> tuple[int | None, str]:
    """Fork; the child runs ``child`` and sends back what it returns (or its exception's
    message). Returns the child's exit code (``None`` if it was still running after
    CHILD_SECONDS: it is then killed) and what it sent."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads alive: forking with one is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read)
            try:
                said = child()
            except Exception as exc:
                said = f"{type(exc).__name__}: {exc}"
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    code: int | None = None
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as answer:
        return code, answer.read().decode()


def _spent(path: Path) -> Decimal:
    store = SQLiteStore(path)
    try:
        return store.state(KEY, now=time.time()).spent
    finally:
        store.close()


def test_a_child_forked_while_a_thread_held_the_store_lock_uses_the_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "budgets.sqlite3"
    store = SQLiteStore(path, timeout=CHILD_SECONDS)
    _pair(store, "parent-before")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        # What a thread opening its connection (or close()) does, held for the fork.
        with store._all_lock:
            holding.set()
            release.wait(CHILD_SECONDS)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(CHILD_SECONDS)

        def child() -> str:
            # The child's first transaction opens a connection of its own, under the lock.
            _pair(store, "child")
            store.close()
            return "done"

        code, said = _fork_and_run(child)
    finally:
        release.set()
        holder.join(CHILD_SECONDS)

    assert code == 0, "the child hung on the store's lock, held by a thread of its parent"
    assert said == "done"
    _pair(store, "parent-after")
    store.close()
    assert _spent(path) == 3 * AMOUNT


def test_a_child_forked_mid_transaction_neither_hangs_nor_uses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "budgets.sqlite3"
    store = SQLiteStore(path, timeout=CHILD_SECONDS)
    _pair(store, "parent-before")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long write: the store's waits
    errors: list[BaseException] = []

    def waiting_pair() -> None:
        try:
            _pair(store, "parent-waiting")
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=waiting_pair)
    waiter.start()
    try:
        # The waiter is inside SQLite's busy handler, holding its connection's mutex.
        deadline = time.monotonic() + CHILD_SECONDS
        while not any(held.busy for held in list(store._all)):
            assert time.monotonic() < deadline, "the waiting thread never began"
            time.sleep(0.001)
        time.sleep(0.05)

        def child() -> str:
            started = time.monotonic()
            try:
                _pair(store, "child")
                said = "written"
            except BudgetStoreError as exc:
                said = str(exc)
            store.close()
            try:
                SQLiteStore(path, timeout=CHILD_SECONDS).close()
                fresh = "opened"
            except BudgetStoreError:
                fresh = "refused"
            return f"{time.monotonic() - started:.3f} {fresh} {said}"

        # Before the fix the child hung inside fork() itself: clearing the parent's other
        # threads closed the waiting thread's connection, whose mutex that thread held.
        code, said = _fork_and_run(child)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        waiter.join(CHILD_SECONDS)

    assert code == 0, "the child hung on a SQLite connection a thread of its parent held"
    seconds, fresh, message = said.split(" ", 2)
    # SQLite's record of this process's locks on the file is a copy taken mid-transaction:
    # the child says so at once rather than trust it.
    assert float(seconds) < 1.0
    assert str(path) in message
    assert "forked while another thread was writing to the file" in message
    # A store the child makes afresh on the file would trust the same record.
    assert fresh == "refused"
    assert errors == []
    _pair(store, "parent-after")  # the parent carries on
    store.close()
    assert _spent(path) == 3 * AMOUNT
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_connection_whose_file_was_gone_marks_no_file() -> None:
    # A connection that opened no file (its path gone) has no (device, inode): marking it must
    # not make every store whose file does not exist yet unusable.
    _sqlite_forked.mark(None)
    assert _sqlite_forked.refusal(None, "budget store x") is None
