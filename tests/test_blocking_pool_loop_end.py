"""A pool's threads end with the event loop that used them, as the loop's default executor's do.

``asyncio.run()`` joins the default executor's threads before it returns; a process that then
forks (``multiprocessing`` with the ``fork`` start method, a pre-forking server after an async
start-up) forks with one thread, and Python 3.12+ does not warn that a thread may hold a lock
the child then waits on for ever. The store's and sinks' own threads must not outlive the
loop either: they idle for seconds otherwise, and a fork() then copies a process with them
(and, under warnings as errors, fails with a DeprecationWarning).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute._blocking import BlockingPool
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(60)


def _alive(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_the_threads_an_asyncio_run_used_are_gone_when_it_returns() -> None:
    pool = BlockingPool("test-loop-end", workers=3)

    async def burst() -> list[None]:
        return list(await asyncio.gather(*(pool.run(time.sleep, 0.02) for _ in range(6))))

    try:
        for _ in range(3):
            assert asyncio.run(burst()) == [None] * 6
            assert _alive("test-loop-end-") == []
            assert pool.threads() == []
    finally:
        pool.close()


def test_a_pool_used_from_two_loops_at_once_keeps_serving_the_one_still_running() -> None:
    pool = BlockingPool("test-two-loops", workers=2)
    ended = threading.Event()
    results: list[int] = []

    async def long_user() -> None:
        while not ended.is_set():
            results.append(await pool.run(abs, -1))
            await asyncio.sleep(0)
        results.append(await pool.run(abs, -2))  # after the other loop ended

    async def short_user() -> None:
        await pool.run(abs, -3)

    thread = threading.Thread(target=asyncio.run, args=(long_user(),))
    thread.start()
    try:
        asyncio.run(short_user())
        ended.set()
        thread.join(30)
        assert not thread.is_alive()
        assert results[-1] == 2
    finally:
        ended.set()
        pool.close()


def _line(now: float) -> ReserveLine:
    return ReserveLine("k", Decimal(10), Decimal("0.1"), now + 3600)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_process_forks_single_threaded_after_asyncio_run_used_the_sqlite_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "budgets.sqlite3"
    store = SQLiteStore(path, timeout=10)
    now = time.time()

    async def reserve_while_locked() -> None:
        # Another connection holds the write lock: the reservations wait in the store's threads.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        calls = [
            asyncio.ensure_future(
                store.areserve([_line(now)], reservation_id=f"r{i}", lease_seconds=60, now=now)
            )
            for i in range(4)
        ]
        while not _alive("policyroute-budget-sqlite-"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        other.execute("COMMIT")
        other.close()
        assert all(r.ok for r in await asyncio.gather(*calls))

    try:
        asyncio.run(reserve_while_locked())
        assert _alive("policyroute-budget-sqlite-") == []
        # Their connections went with them: the store's first one is left.
        assert len(store._all) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # Python 3.12+: threads alive
            pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.state("k", now=now).reserved == Decimal("0.4")
    finally:
        store.close()
