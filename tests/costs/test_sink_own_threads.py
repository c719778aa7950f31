"""Receipt writes that wait (a SQLite database another connection holds, a slow callable)
leave the application's other async work alone.

Async code runs a blocking sink's writes in threads of the sink's own (a third party's blocking
sink too), never in the event loop's default executor, which litellm prepares every
``acompletion`` in: with that executor small (two threads here) and a dozen
writes waiting, a worker-thread job and a call with no budget still complete meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from budgets.locked_files import BACKSTOP_S, other_async_work, small_default_executor, write_locked

from policyroute.costs import sqlite_sink
from policyroute.costs.sinks import CallableSink, MultiSink, awrite_record
from policyroute.costs.sqlite_sink import SqliteSink
from policyroute.errors import ReceiptError
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

WAITING = 12


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)  # the call's receipts go to ./.policyroute
    with FakeProvider() as provider:
        provider.set_default("a", Reply(text="hi"))
        yield provider


def _record(n: int) -> dict[str, Any]:
    return {"kind": "call", "ts": "2026-01-02T03:04:05+00:00", "request_id": f"r{n}"}


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM receipts").fetchone()[0]
    conn.close()
    return count


@pytest.mark.asyncio
@pytest.mark.parametrize("multi", [False, True], ids=["sqlite", "sqlite-in-multi"])
async def test_writes_waiting_for_a_locked_database_leave_the_default_executor_free(
    tmp_path: Path, fp: FakeProvider, multi: bool
) -> None:
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path, timeout=60.0)
    target = MultiSink([sink]) if multi else sink
    try:
        with small_default_executor(asyncio.get_running_loop()), write_locked(path) as lock:
            waiting = [
                asyncio.create_task(awrite_record(target, _record(n))) for n in range(WAITING)
            ]
            await asyncio.sleep(0)
            await other_async_work(fp)
            held_throughout = lock.held
            lock.release()
            await asyncio.gather(*waiting)
        assert held_throughout, "the other work completed only once the lock was let go"
        assert _rows(path) == WAITING
    finally:
        threads = [] if sink._pool is None else sink._pool.threads()
        sink.close()
    assert 0 < len(threads) <= sqlite_sink._WORKERS
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "close() ends the sink's threads"


class _ThirdPartySink:
    """A sink of the user's: no ``awrite``, no ``blocking`` (so taken as blocking)."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.records: list[Mapping[str, Any]] = []

    def write(self, record: Mapping[str, Any]) -> None:
        self.gate.wait(30)
        self.records.append(record)

    def close(self) -> None:
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["callable", "third-party"])
async def test_slow_blocking_sinks_leave_the_default_executor_free(
    fp: FakeProvider, kind: str
) -> None:
    gate = threading.Event()
    written: list[Mapping[str, Any]] = []

    def slow(record: Mapping[str, Any]) -> None:
        gate.wait(30)
        written.append(record)

    third_party = _ThirdPartySink(gate)
    sink = CallableSink(slow, blocking=True) if kind == "callable" else third_party
    # Opens the gate whatever happens, so that writes that do starve the loop's executor fail
    # the assertion below instead of the test's timeout.
    backstop = threading.Timer(BACKSTOP_S, gate.set)
    backstop.start()
    try:
        with small_default_executor(asyncio.get_running_loop()):
            waiting = [asyncio.create_task(awrite_record(sink, _record(n))) for n in range(WAITING)]
            await asyncio.sleep(0)
            await other_async_work(fp)
            blocked_throughout = not gate.is_set()
            gate.set()
            await asyncio.gather(*waiting)
    finally:
        backstop.cancel()
        gate.set()
        sink.close()
    assert blocked_throughout, "the other work completed only once the sink's writes did"
    done = written if kind == "callable" else third_party.records
    assert sorted(r["request_id"] for r in done) == sorted(f"r{n}" for n in range(WAITING))


_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("_CALLER", default="unset")


@pytest.mark.asyncio
async def test_a_blocking_callable_runs_in_a_copy_of_the_callers_context() -> None:
    seen: list[str] = []

    def fn(record: Mapping[str, Any]) -> None:
        seen.append(_CALLER.get())
        _CALLER.set("changed in the sink")

    sink = CallableSink(fn, blocking=True)
    _CALLER.set("caller")
    try:
        await sink.awrite(_record(0))
    finally:
        sink.close()
    assert seen == ["caller"]
    assert _CALLER.get() == "caller"


@pytest.mark.asyncio
async def test_time_queued_for_the_sinks_thread_counts_against_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One thread: the second write queues behind the first, which waits for the locked
    # database until the timeout; the second then has next to nothing left to wait, instead
    # of a whole timeout of its own (the Nth queued would fail after N of them).
    monkeypatch.setattr(sqlite_sink, "_WORKERS", 1)
    waits: list[float] = []
    set_wait = sqlite_sink._busy_timeout

    def record(conn: sqlite3.Connection, seconds: float) -> None:
        waits.append(seconds)
        set_wait(conn, seconds)

    monkeypatch.setattr(sqlite_sink, "_busy_timeout", record)
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path, timeout=1.0)
    try:
        with write_locked(path):
            results = await asyncio.gather(
                *(sink.awrite(_record(n)) for n in range(2)), return_exceptions=True
            )
        assert all(isinstance(result, ReceiptError) for result in results)
        # What it had left: the first's queueing for a new thread, far less than a timeout.
        assert min(waits) < sink.timeout / 2
        assert waits[-1] == sink.timeout
        await sink.awrite(_record(2))
        assert _rows(path) == 1
    finally:
        sink.close()
