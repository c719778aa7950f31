"""The SQLite budget store holds a connection per live thread only.

Each thread gets its own connection; one whose thread ended (a short-lived worker, the default
executor of each ``asyncio.run``, a pool that shrinks) is closed as the thread ends, while
``close()`` still closes those of the threads that live on. Descriptors are counted in
``/proc/self/fd``: each connection holds the database and its WAL open.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError

_PROC_FD = Path("/proc/self/fd")
pytestmark = pytest.mark.skipif(not _PROC_FD.is_dir(), reason="counts descriptors in /proc")

KEY = "total/%2A/day"
AMOUNT = Decimal("0.01")
# SQLite keeps the database descriptor of a connection closed while another connection of the
# process holds a lock on the file (closing it would drop the process's POSIX locks), and reuses
# it for the next connection to the file: as many as were open at once, not one per thread.
SLACK = 2


def _line() -> ReserveLine:
    return ReserveLine(key=KEY, limit=Decimal(100), amount=AMOUNT, expires_at=time.time() + 3600)


def _fds() -> int:
    return len(os.listdir(_PROC_FD))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "budgets.sqlite3", timeout=5.0)
    yield s
    s.close()


def _pair(store: SQLiteStore, rid: str) -> None:
    assert store.reserve([_line()], reservation_id=rid, lease_seconds=30, now=time.time()).ok
    store.settle(rid, AMOUNT, now=time.time())


async def _apair(store: SQLiteStore, rid: str) -> None:
    result = await store.areserve([_line()], reservation_id=rid, lease_seconds=30, now=time.time())
    assert result.ok
    await store.asettle(rid, AMOUNT, now=time.time())


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` in a new thread to its end; its exception is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _spent(store: SQLiteStore) -> Decimal:
    return store.state(KEY, now=time.time()).spent


def test_short_lived_threads_leave_no_connection_open(store: SQLiteStore) -> None:
    _pair(store, "main")  # this thread's connection lives on, like a service's main thread
    before = _fds()
    for n in range(60):
        _in_thread(_pair, store, f"t{n}")
    assert _fds() - before <= SLACK
    assert len(store._all) == 1
    assert _spent(store) == 61 * AMOUNT


def test_a_store_used_only_from_threads_that_end_keeps_one_connection(tmp_path: Path) -> None:
    # Made in a thread that ends, used from threads that end: one connection stays, or each
    # thread's would be the file's last and its close would checkpoint and delete the WAL.
    made: list[SQLiteStore] = []
    _in_thread(lambda: made.append(SQLiteStore(tmp_path / "budgets.sqlite3")))
    store = made[0]
    try:
        before = _fds()
        for n in range(20):
            _in_thread(_pair, store, f"t{n}")
            assert (tmp_path / "budgets.sqlite3-wal").exists()
        assert _fds() - before <= SLACK
        assert len(store._all) == 1
        assert _spent(store) == 20 * AMOUNT
    finally:
        store.close()
    assert len(store._all) == 0


def test_asyncio_run_per_call_from_threads_leaves_no_connection_open(
    store: SQLiteStore,
) -> None:
    # Each asyncio.run has its own loop (a connection on the loop thread) and its own default
    # executor, whose workers run the transactions that leave the loop (the periodic sweep).
    _pair(store, "main")
    before = _fds()
    for n in range(30):
        _in_thread(asyncio.run, _apair(store, f"a{n}"))
    assert _fds() - before <= SLACK
    assert len(store._all) == 1
    assert _spent(store) == 31 * AMOUNT


def _pool_round(store: SQLiteStore, name: str, workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Calls wait for one another, so that every worker opens a connection.
        barrier = threading.Barrier(workers, timeout=10)

        def call(n: int) -> None:
            barrier.wait()
            _pair(store, f"{name}{n}")

        list(pool.map(call, range(2 * workers)))
        assert len(store._all) == 1 + workers


def test_a_pool_keeps_its_threads_connections_until_it_shuts_down(store: SQLiteStore) -> None:
    _pair(store, "main")
    before = _fds()
    _pool_round(store, "p", workers=3)
    assert len(store._all) == 1
    after_one = _fds()
    assert after_one - before <= 3  # at most the pool's size of kept descriptors (see SLACK)
    for round_ in range(3):
        _pool_round(store, f"q{round_}-", workers=3)
    assert _fds() <= after_one
    assert len(store._all) == 1
    assert _spent(store) == 25 * AMOUNT


def test_close_closes_the_connections_of_threads_that_live_on(tmp_path: Path) -> None:
    before = _fds()
    store = SQLiteStore(tmp_path / "budgets.sqlite3")
    opened = threading.Barrier(4, timeout=10)
    closed = threading.Event()
    after_close: list[BaseException] = []

    def live() -> None:
        store.state(KEY, now=time.time())
        opened.wait()
        closed.wait(10)
        try:
            store.state(KEY, now=time.time())
        except BaseException as exc:
            after_close.append(exc)

    threads = [threading.Thread(target=live) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        opened.wait()
        conns = [held.conn for held in list(store._all)]
        assert len(conns) == 4  # the constructor's (this thread) and three live threads'
        store.close()
        assert len(store._all) == 0
        for conn in conns:
            with pytest.raises(sqlite3.ProgrammingError):
                conn.execute("SELECT 1")
        assert _fds() <= before
    finally:
        closed.set()
        for thread in threads:
            thread.join()
    # The threads, still running after close(), were refused instead of reconnecting.
    assert len(after_close) == 3
    assert all(isinstance(exc, BudgetStoreError) for exc in after_close)
    assert _fds() <= before


def test_a_thread_ending_leaves_another_threads_transaction_alone(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reserve held open mid-transaction (with the write lock) in one thread while other
    # threads read, end and close their connections: it then commits as if alone.
    in_transaction = threading.Event()
    go_on = threading.Event()
    housekeep = store._housekeep

    def paused_housekeep(*args: Any) -> int:
        reclaimed = housekeep(*args)
        if threading.current_thread().name == "holder":
            in_transaction.set()
            go_on.wait(10)
        return reclaimed

    monkeypatch.setattr(store, "_housekeep", paused_housekeep)
    holder = threading.Thread(target=_pair, args=(store, "held"), name="holder")
    holder.start()
    try:
        assert in_transaction.wait(10)
        for _ in range(10):
            _in_thread(store.state, KEY, now=time.time())
        assert holder.is_alive()
    finally:
        go_on.set()
        holder.join()
    assert _spent(store) == AMOUNT
    assert len(store._all) == 1  # the constructor's: the holder's ended with it


def test_a_thread_that_ends_inside_a_transaction_releases_the_write_lock(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "budgets.sqlite3", timeout=2.0)
    try:

        def begin_and_end() -> None:
            # A transaction left open, as a failed ROLLBACK would leave it.
            store._conn().execute("BEGIN IMMEDIATE")

        _in_thread(begin_and_end)
        started = time.monotonic()
        _pair(store, "after")
        # Far less than the lock timeout: the ended thread's transaction was rolled back.
        assert time.monotonic() - started < 1.0
        assert _spent(store) == AMOUNT
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_open(
    store: SQLiteStore,
) -> None:
    _pair(store, "parent-before")
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads (pytest may run some).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _pair(store, "child")
            store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    _pair(store, "parent-after")
    assert _spent(store) == 3 * AMOUNT
    assert len(store._all) == 1
