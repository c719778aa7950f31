"""The worker threads a budget store or receipt sink keeps for its blocking waits.

At most ``workers`` threads, started only as work needs them, the rest queued; daemons, so a
thread stuck waiting holds up the interpreter's exit no longer than ``EXIT_WAIT_SECONDS``;
usable from one ``asyncio.run`` after another; empty again in a child made by ``fork()``;
ended by ``close()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import warnings

import pytest

from policyroute import _blocking
from policyroute._blocking import BlockingPool

pytestmark = pytest.mark.timeout(60)

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="unset")


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)


def test_work_beyond_the_bound_queues_for_a_thread() -> None:
    pool = BlockingPool("test-bound", workers=2)
    gate = threading.Event()
    try:
        futures = [pool.submit(gate.wait, 30) for _ in range(5)]
        threads = pool.threads()
        assert len(threads) == 2
        assert all(t.daemon and t.name.startswith("test-bound-") for t in threads)
        assert not any(f.done() for f in futures)
        gate.set()
        assert [f.result(10) for f in futures] == [True] * 5
        assert len(pool.threads()) <= 2
    finally:
        gate.set()
        threads = pool.threads()
        pool.close()
    _join(threads)
    assert pool.threads() == []


def test_a_free_thread_takes_the_next_work_without_starting_another() -> None:
    pool = BlockingPool("test-reuse", workers=4)
    try:
        for n in range(20):
            assert pool.submit(int, n).result(10) == n
        assert len(pool.threads()) == 1
    finally:
        threads = pool.threads()
        pool.close()
    _join(threads)


def test_errors_reach_the_caller_and_the_thread_goes_on() -> None:
    pool = BlockingPool("test-errors", workers=1)
    try:
        with pytest.raises(ZeroDivisionError):
            asyncio.run(pool.run(divmod, 1, 0))
        assert asyncio.run(pool.run(divmod, 7, 2)) == (3, 1)
    finally:
        pool.close()


def test_work_runs_in_a_copy_of_the_callers_context() -> None:
    pool = BlockingPool("test-context", workers=1)

    def read_and_change() -> str:
        seen = _VAR.get()
        _VAR.set("changed in the thread")
        return seen

    async def main() -> tuple[str, str]:
        _VAR.set("caller")
        seen = await pool.run(read_and_change)
        return seen, _VAR.get()

    try:
        assert asyncio.run(main()) == ("caller", "caller")
        assert asyncio.run(pool.run(dict, key="word")) == {"key": "word"}
    finally:
        pool.close()


def test_work_cancelled_before_a_thread_took_it_never_runs() -> None:
    pool = BlockingPool("test-cancel", workers=1)
    gate = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        first = asyncio.ensure_future(pool.run(gate.wait, 30))
        second = asyncio.ensure_future(pool.run(ran.append, "second"))
        await asyncio.sleep(0)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        gate.set()
        assert await first
        await pool.run(ran.append, "third")

    try:
        asyncio.run(main())
    finally:
        gate.set()
        pool.close()
    assert ran == ["third"]


def test_one_pool_serves_one_asyncio_run_after_another() -> None:
    pool = BlockingPool("test-runs", workers=3)

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(pool.run(abs, -n) for n in range(10))))

    try:
        for _ in range(50):
            assert asyncio.run(burst()) == list(range(10))
        assert len(pool.threads()) <= 3
    finally:
        threads = pool.threads()
        pool.close()
    _join(threads)


def test_idle_threads_end_on_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_blocking, "IDLE_SECONDS", 0.05)
    pool = BlockingPool("test-idle", workers=2)
    assert pool.submit(int, 1).result(10) == 1
    threads = pool.threads()
    assert len(threads) == 1
    _join(threads)  # never closed
    assert pool.threads() == []
    assert pool.submit(int, 2).result(10) == 2  # and a thread starts again
    pool.close()


def test_close_ends_busy_threads_once_the_queue_is_empty() -> None:
    pool = BlockingPool("test-close", workers=1)
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 30) for _ in range(3)]
    threads = pool.threads()
    pool.close()
    gate.set()
    assert [f.result(10) for f in futures] == [True] * 3  # queued work still ran
    _join(threads)
    assert pool.submit(int, 3).result(10) == 3  # a closed pool still takes work
    _join(pool.threads())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_while_the_pool_was_busy_starts_with_an_empty_pool() -> None:
    pool = BlockingPool("test-fork", workers=1)
    gate = threading.Event()
    busy = pool.submit(gate.wait, 30)
    queued = pool.submit(int, 0)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a process with threads.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # The parent's thread and queued work are not the child's; it gets its own.
                if pool.threads() == [] and asyncio.run(pool.run(os.getpid)) == os.getpid():
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        gate.set()
        assert busy.result(10) is True
        assert queued.result(10) == 0
    finally:
        gate.set()
        pool.close()


def test_a_thread_stuck_in_a_wait_does_not_hold_up_the_interpreters_exit() -> None:
    script = (
        "import threading\n"
        "from policyroute._blocking import BlockingPool\n"
        "pool = BlockingPool('stuck', workers=1)\n"
        "started = threading.Event()\n"
        "pool.submit(lambda: (started.set(), threading.Event().wait()))\n"
        "assert started.wait(10)\n"
        "print('exiting')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=40, check=False
    )
    assert (done.returncode, done.stdout) == (0, "exiting\n"), done.stderr


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        BlockingPool("test-none", workers=0)
