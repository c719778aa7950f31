"""Worker threads of their own for the blocking waits of a budget store or a receipt sink.

Async code hands work that may block (a SQLite transaction waiting for another process's write
lock, a user's receipt callable doing I/O) to a thread, so that the event loop goes on. Not to
the loop's default executor (:func:`asyncio.to_thread`, ``run_in_executor(None, ...)``): that
pool is small (``min(32, cpus + 4)`` workers) and the whole application shares it; litellm
prepares every ``acompletion`` there and LangChain runs sync callbacks there. A database held
locked for a while would have each waiting reservation or receipt occupy one of its workers,
and every other async call of the application would stall behind them, budget or none.

A :class:`BlockingPool` belongs to one owner (a store, a sink) and starts a thread only when
work comes and no thread of its own is free, up to ``workers``; further work queues, first in
first out, until one is. Threads are daemons, named after the pool, and end after
:data:`IDLE_SECONDS` without work, so that a pool left unused (or never closed) holds none for
long; :meth:`BlockingPool.close` ends the idle ones at once and lets the busy ones end as the
queue empties. A pool outlives event loops (each ``asyncio.run`` may use it), but its threads
end with each loop that used it, as the loop's default executor's do: ``asyncio.run`` returns
with none left idling, so a process that forks next forks with one thread (Python 3.12+ warns
about a fork with threads alive, which may hold a lock the child then waits on for ever). In a
child made by ``fork()`` a pool starts empty: the parent's threads do not exist there, and
what the parent had queued is its own.

Work under way in a pool's thread runs to its end even when its caller was cancelled (a call's
receipt being written as a shutdown handler cancels every task, say), and may still be running
as the interpreter exits, which would stop a daemon thread where it stands: a receipt half
written, a reservation never settled. So at exit (:mod:`atexit`) the pools' work under way or
queued is waited for, up to :data:`EXIT_WAIT_SECONDS` in all, then left: a store or sink stuck
for longer does not hold up the exit beyond that. Nothing is waited for when nothing runs.

Example:
    >>> pool = BlockingPool("policyroute-example", workers=2)
    >>> asyncio.run(pool.run(sum, [1, 2, 3]))
    6
    >>> pool.close()
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextvars
import functools
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final, TypeVar

from policyroute._fork import reset_after_fork
from policyroute._loop_end import at_loop_end, forget_closed_loops

__all__ = ["EXIT_WAIT_SECONDS", "IDLE_SECONDS", "BlockingPool"]

_T = TypeVar("_T")

IDLE_SECONDS: Final = 30.0
"""How long a pool's thread waits for more work before it ends."""

EXIT_WAIT_SECONDS: float = 5.0
"""How long the interpreter's exit waits, in all, for the pools' work still under way."""

_log = logging.getLogger("policyroute")

# How long the end of an event loop waits for the threads that were idle then to end. They end
# at once; one that took work from another loop meanwhile is left to end on its own.
_LOOP_END_WAIT = 1.0

_Work = tuple["concurrent.futures.Future[Any]", Callable[..., Any], tuple[Any, ...]]

_POOLS: weakref.WeakSet[BlockingPool] = weakref.WeakSet()


class BlockingPool:
    """At most ``workers`` daemon threads, started as work needs them, for one owner's waits.

    Args:
        name: the threads' name prefix (shown by ``threading.enumerate()`` and debuggers).
        workers: how many threads may run work at once; more work waits its turn.
    """

    def __init__(self, name: str, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"a blocking pool needs at least one worker, not {workers}")
        self.name = name
        self.workers = workers
        self._started = 0
        # The running loops that used the pool, each with its at_loop_end handle.
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()
        self._fresh()
        _POOLS.add(self)
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        # The child has one thread: the pool's threads are gone, and its lock may be held.
        self._fresh()

    def _fresh(self) -> None:
        """An empty pool: no thread, nothing queued (also what a forked child starts from)."""
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._queue: collections.deque[_Work] = collections.deque()
        self._threads: set[threading.Thread] = set()
        # The threads waiting for work (woken or not).
        self._idle: set[threading.Thread] = set()
        self._linger = IDLE_SECONDS
        # Set as a loop that used the pool ends: idle threads end now, until work comes again.
        self._retire = False

    async def run(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)`` in one of the pool's threads, in a copy of the caller's
        context (as :func:`asyncio.to_thread` runs it).

        Cancelling the caller before a thread took the work drops it; once it runs, it runs to
        its end (a thread cannot be interrupted), and its result is discarded.
        """
        loop = asyncio.get_running_loop()
        if loop not in self._loops:
            # Never suspends (the handle's generator yields at once): no second registration
            # from this loop can come in between.
            forget_closed_loops(self._loops)
            self._loops[loop] = await at_loop_end(functools.partial(self._loop_ended, loop))
        context = contextvars.copy_context()
        call = functools.partial(fn, *args, **kwargs) if kwargs else fn
        future = self.submit(context.run, call, *(() if kwargs else args))
        return await asyncio.wrap_future(future)

    def submit(self, fn: Callable[..., _T], /, *args: Any) -> concurrent.futures.Future[_T]:
        """Queue ``fn(*args)``; its future is done when a thread has run it."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        with self._lock:
            self._queue.append((future, fn, args))
            self._retire = False
            if len(self._queue) > len(self._idle) and len(self._threads) < self.workers:
                self._started += 1
                thread = threading.Thread(
                    target=self._work,
                    args=(self._lock, self._has_work, self._queue),
                    name=f"{self.name}-{self._started}",
                    daemon=True,
                )
                self._threads.add(thread)
                try:
                    thread.start()
                except BaseException:
                    self._threads.discard(thread)
                    self._queue.pop()
                    raise
            else:
                self._has_work.notify()
        return future

    def busy(self) -> bool:
        """Whether work is running in one of the pool's threads or queued for one."""
        with self._lock:
            return bool(self._queue) or len(self._idle) < len(self._threads)

    def threads(self) -> list[threading.Thread]:
        """The pool's threads now."""
        with self._lock:
            return list(self._threads)

    def close(self) -> None:
        """End the idle threads now, and each busy one once nothing is left queued.

        The pool can still be used: work given afterwards gets a thread that ends as soon as
        the queue is empty."""
        with self._lock:
            self._linger = 0.0
            self._has_work.notify_all()

    async def _loop_ended(self, loop: asyncio.AbstractEventLoop) -> None:
        """End the threads idle as ``loop`` ends, and wait (briefly) until they have."""
        # The handle holds the loop: drop it, or the weak key never goes.
        self._loops.pop(loop, None)
        with self._lock:
            if self._queue:
                return  # work of another loop's: the threads go on with it
            idle = list(self._idle)
            self._retire = True
            self._has_work.notify_all()
        deadline = time.monotonic() + _LOOP_END_WAIT
        while any(t.is_alive() for t in idle) and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    def _work(
        self,
        lock: threading.Lock,
        has_work: threading.Condition,
        queue: collections.deque[_Work],
    ) -> None:
        # The lock, condition and queue are passed in: after a fork, the child's pool has new
        # ones, and nothing of the parent's (a thread gone, a lock held for good) is touched.
        while True:
            with lock:
                me = threading.current_thread()
                while not queue:
                    self._idle.add(me)
                    woken = has_work.wait(0.0 if self._retire else self._linger)
                    self._idle.discard(me)
                    if not woken and not queue:
                        self._threads.discard(threading.current_thread())
                        return
                future, fn, args = queue.popleft()
            _run_one(future, fn, args)
            # Not kept while waiting for more: the work's arguments may be large.
            del future, fn, args


def _run_one(future: concurrent.futures.Future[Any], fn: Callable[..., Any], args: Any) -> None:
    if not future.set_running_or_notify_cancel():
        return  # its caller was cancelled before a thread took it
    try:
        result = fn(*args)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _drain_at_exit() -> None:
    """Wait (up to :data:`EXIT_WAIT_SECONDS` in all) for the work under way in every pool."""
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    busy = [pool for pool in list(_POOLS) if pool.busy()]
    while busy and time.monotonic() < deadline:
        time.sleep(0.005)
        busy = [pool for pool in busy if pool.busy()]
    if busy:
        _log.warning(
            "exiting with work still running in %s after waiting %g s: a receipt it was"
            " writing may be lost, a reservation it was making is reclaimed when its lease"
            " expires",
            ", ".join(sorted({pool.name for pool in busy})),
            EXIT_WAIT_SECONDS,
        )


# Registered at import, so it runs after the handlers of modules imported later (LIFO), and
# before logging's own (logging is imported first): a sink that logs still can.
atexit.register(_drain_at_exit)
