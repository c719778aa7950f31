"""The SQLite sink's timeout bounds each write, also when threads write at once.

The sink's threads share one connection, so their inserts queue. While another process holds
the database's write lock, a write must fail after ``timeout`` seconds in all, not after its
place in the queue times ``timeout``: a server's eighth thread would otherwise return its
answer 80 s late with the default 10 s, only to fail its receipt anyway.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from policyroute.costs.sinks import SqliteSink
from policyroute.errors import ReceiptError

from .helpers import receipt_ids

TIMEOUT = 0.4
THREADS = 4


def _write_at_once(sink: SqliteSink, count: int) -> list[tuple[float, str]]:
    """``count`` threads write one receipt each at the same time: (seconds, outcome) each."""
    results: list[tuple[float, str]] = []
    start = threading.Barrier(count)

    def write(n: int) -> None:
        start.wait()
        began = time.monotonic()
        try:
            sink.write({"kind": "call", "request_id": f"r-{n}"})
            outcome = "written"
        except ReceiptError as exc:
            outcome = str(exc)
        results.append((time.monotonic() - began, outcome))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREADS * TIMEOUT * 5)
    return results


def test_writes_queued_behind_a_locked_database_each_wait_the_timeout_at_most(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    sink = SqliteSink(path, timeout=TIMEOUT)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write

    results = _write_at_once(sink, THREADS)
    other.execute("ROLLBACK")
    other.close()

    assert len(results) == THREADS
    assert all(str(path) in outcome for _, outcome in results)
    slowest = max(seconds for seconds, _ in results)
    assert slowest < 2 * TIMEOUT, f"a write waited {slowest:.2f}s with a {TIMEOUT}s timeout"
    sink.close()


def _hold(path: Path, seconds: float) -> threading.Thread:
    """Another process's write: holds ``path``'s write lock for ``seconds`` from now."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    def let_go() -> None:
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=let_go)
    holder.start()
    return holder


def test_after_a_queued_write_the_full_timeout_applies_again(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    timeout = 1.0
    sink = SqliteSink(path, timeout=timeout)
    holder = _hold(path, 0.7 * timeout)
    first = threading.Thread(target=sink.write, args=({"kind": "call", "request_id": "a"},))
    first.start()
    while not sink._lock.locked():
        time.sleep(0.001)
    sink.write({"kind": "call", "request_id": "b"})  # queued behind "a": 0.3 s left for it
    first.join()
    holder.join()

    holder = _hold(path, 0.6 * timeout)  # longer than what "b" had left, within the timeout
    sink.write({"kind": "call", "request_id": "c"})
    holder.join()

    assert receipt_ids(path) == ["a", "b", "c"]
    sink.close()


def test_threads_writing_at_once_to_a_free_database_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    sink = SqliteSink(path, timeout=TIMEOUT)

    results = _write_at_once(sink, 8)

    assert [outcome for _, outcome in results] == ["written"] * 8
    sink.close()
