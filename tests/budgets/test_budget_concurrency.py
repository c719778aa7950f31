"""The headline promise: under contention a budget is never exceeded and nothing leaks.

A budget of $0.10 faces 1,000 calls whose worst case is $0.001 each: ideally exactly 100 are
admitted. Calls are fired as asyncio tasks, threads, processes on one SQLite file, and
processes each with its own Redis connection (as separate hosts would).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgets.helpers import attempt, fixed_counter, policy
from budgets.workers import (
    CALL_COST,
    CALL_PARAMS,
    LIMIT,
    contended_budget,
    process_main,
    process_main_async,
    reserve_and_die,
    run_calls,
)
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import BudgetStore
from policyroute.errors import BudgetExceeded

CALLS = 1000
IDEAL = 100


def assert_budget_held(store: BudgetStore, admitted: int) -> None:
    (state,) = store.scan("shared/", now=time.time())
    assert state.spent <= Decimal(LIMIT)
    assert state.reserved == 0
    assert state.spent == admitted * CALL_COST
    assert IDEAL * 0.95 <= admitted <= IDEAL


@pytest.mark.asyncio
async def test_asyncio_tasks(store: BudgetStore) -> None:
    b = contended_budget()
    guard = BudgetGuard(policy([b]), store, token_counter=fixed_counter(100))

    async def one() -> bool:
        try:
            admission = await guard.aadmit(attempt([b], params=CALL_PARAMS))
        except BudgetExceeded:
            return False
        await asyncio.sleep(0.001)
        await guard.asettle(admission, CALL_COST)
        return True

    try:
        results = await asyncio.gather(*(one() for _ in range(CALLS)))
        assert_budget_held(store, sum(results))
    finally:
        await store.aclose()


def test_threads(store_factory: Callable[[], BudgetStore]) -> None:
    start = threading.Barrier(8)
    per_thread = CALLS // 8
    store = store_factory()
    # Every thread has its own guard on the one shared store.
    with ThreadPoolExecutor(8) as pool:
        admitted = sum(pool.map(lambda _: _shared_store_calls(store, per_thread, start), range(8)))
    assert_budget_held(store, admitted)


def _shared_store_calls(store: BudgetStore, calls: int, start: threading.Barrier) -> int:
    b = contended_budget()
    guard = BudgetGuard(policy([b]), store, token_counter=fixed_counter(100))
    start.wait()
    admitted = 0
    for _ in range(calls):
        try:
            admission = guard.admit(attempt([b], params=CALL_PARAMS))
        except BudgetExceeded:
            continue
        admitted += 1
        time.sleep(0.0005)
        guard.settle(admission, CALL_COST)
    return admitted


def _run_processes(
    backend: str, location: str, prefix: str, processes: int, main: Any = process_main
) -> int:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=main, args=(backend, location, prefix, CALLS // processes, start, out))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    try:
        # Generous: each spawned process imports the package afresh, slow on a loaded machine.
        admitted = sum(out.get(timeout=240) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=30)
    assert all(proc.exitcode == 0 for proc in procs)
    return admitted


@pytest.mark.timeout(330)
def test_four_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    from policyroute.budgets.stores.sqlite import SQLiteStore

    path = str(tmp_path / "budgets.sqlite3")
    admitted = _run_processes("sqlite", path, "unused", 4)
    store = SQLiteStore(path)
    try:
        assert_budget_held(store, admitted)
    finally:
        store.close()


@pytest.mark.timeout(330)
def test_four_async_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    # Async calls run their transactions on the loop thread when the file is free and fall
    # back to a waiting worker thread when another process holds the lock: both paths here.
    from policyroute.budgets.stores.sqlite import SQLiteStore

    path = str(tmp_path / "budgets.sqlite3")
    admitted = _run_processes("sqlite", path, "unused", 4, process_main_async)
    store = SQLiteStore(path)
    try:
        assert_budget_held(store, admitted)
    finally:
        store.close()


@pytest.mark.timeout(330)
def test_two_hosts_on_one_redis(redis_url: str) -> None:
    from policyroute.budgets.stores.redis import RedisStore

    prefix = f"hosts-{uuid.uuid4().hex[:8]}"
    admitted = _run_processes("redis", redis_url, prefix, 2)
    store = RedisStore(redis_url, prefix=prefix)
    try:
        assert_budget_held(store, admitted)
    finally:
        store.close()


def test_run_calls_helper_counts_what_it_admits() -> None:
    # The process workers report through run_calls; check it alone so a broken counter
    # cannot make the process tests pass vacuously.
    class Go:
        def wait(self) -> None:
            return None

    assert run_calls("memory", None, "p", 150, Go()) == IDEAL


# Redis ends the lease by its server's clock, not the ``now`` moved here: a reservation left
# by a host that died is reclaimed there in test_redis_server_clock.py.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_killed_process_reservation_is_reclaimed_after_its_lease(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from budgets.helpers import make_store

    location = (
        str(tmp_path / "b.sqlite3") if backend == "sqlite" else request.getfixturevalue("redis_url")
    )
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    now = time.time()
    proc = multiprocessing.get_context("spawn").Process(
        target=reserve_and_die, args=(backend, location, prefix, now)
    )
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == -9
    store = make_store(backend, location, prefix)
    try:
        assert store.state("crash/*/day:x", now=now).reserved == Decimal("0.4")
        assert store.reclaim_expired(now + 29) == 0
        assert store.reclaim_expired(now + 31) == 1
        state = store.state("crash/*/day:x", now=now + 31)
        assert (state.reserved, state.spent) == (Decimal(0), Decimal("0.4"))
    finally:
        store.close()
