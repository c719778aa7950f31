"""Awaiting work to its end through a cancellation of the caller.

Accounting settles budgets and writes receipts from the executor's ``finally`` blocks; that
work must finish even when the call is cancelled while it is under way.

Example:
    >>> import asyncio
    >>> async def settle() -> str:
    ...     await asyncio.sleep(0)
    ...     return "settled"
    >>> asyncio.run(despite_cancellation(settle()))
    'settled'
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final, Generic, TypeVar, cast

__all__ = ["SHUTDOWN_GRACE_S", "despite_cancellation", "finished_within", "side_task"]

_T = TypeVar("_T")

_log = logging.getLogger("policyroute.accounting")

SHUTDOWN_GRACE_S: Final = 30.0
"""How long work under way is let finish once the loop (its end) cancels it.

A backstop only: each step of a store is bounded by the store's own timeouts (a Redis
``socket_timeout``, SQLite's lock ``timeout``), which end the work sooner with an error."""


async def despite_cancellation(work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile, then re-raise.

    The executor settles and finishes from ``finally`` blocks: a cancellation landing while a
    budget store or an async sink is awaited would otherwise leave the reservation held and
    the receipt unwritten, without a word. ``work`` runs in the caller's task until it first
    suspends (an in-memory store and a JSON-lines sink never do, so nothing changes for
    them); from there it runs as its own task behind :func:`asyncio.shield`, so that
    cancelling the caller does not reach it. (``eager_start``, which does this, is Python
    3.12+.)

    The loop's end reaches that task too: ``asyncio.run()`` cancels every task left when its
    main coroutine returns, then runs them until they end. That cancellation is held back, and
    the future the work awaits (a worker thread's, a socket's) left alone, until the work
    finishes or :data:`SHUTDOWN_GRACE_S` passes. Two ends cannot be outlasted: a loop closed
    with tasks still pending (``loop.close()`` without running them to their end first), which
    destroys them, and tasks cancelled from inside the running loop (a shutdown handler
    cancelling ``asyncio.all_tasks()``), which cannot be told from the work's own timeouts.
    """
    token = _SETTLING.set(True)
    try:
        pending = work.send(None)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    finally:
        _SETTLING.reset(token)
    caller = asyncio.current_task()
    token = _SETTLING.set(True)
    try:  # the task's context is a copy of this one: its work sees the mark
        task: _Settling[_T] = _Settling(_resume(_Resumed(work, pending)))
    finally:
        _SETTLING.reset(token)
    task._caller = caller
    deadline = _ending.get(caller) if caller is not None else None
    if deadline is not None:
        # The caller goes on writing its books after the loop's end held back its first
        # work (a release once a reservation gave up, a receipt after a settle): that work
        # shares what is left of the grace instead of waiting unbounded.
        task._hold(deadline, None)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled (its grace ran out)
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


# Set while :func:`despite_cancellation`'s work runs (its first step in the caller's task, the
# rest in its own): what that work starts with :func:`side_task` outlasts the loop's end too.
_SETTLING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "policyroute_settling", default=False
)


def side_task(work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    """``work`` in a task of its own, which the loop's end holds back as it holds back the
    work of :func:`despite_cancellation` that makes it: such work, running several pieces of
    itself at once, has them finish within its grace instead of seeing them cancelled by the
    sweep that spared it. From any other code, a plain task.

    Example:
        >>> async def main() -> str:
        ...     return await side_task(asyncio.sleep(0, "written"))
        >>> asyncio.run(main())
        'written'
    """
    if _SETTLING.get():
        # Its grace bounds this one too: once it runs out, cancelling it cancels what it
        # awaits, this task among them, while the loop runs.
        return _Settling(work)
    return asyncio.ensure_future(work)


async def finished_within(
    task: asyncio.Future[Any],
    seconds: float,
    abandoned: Callable[[asyncio.Future[Any]], object],
) -> bool:
    """Whether ``task`` finished within ``seconds``. If not, or if the caller is cancelled
    meanwhile, ``task`` is cancelled and ``abandoned`` is called with it once it ends (to take
    its error, or give back what it took as the deadline passed).

    The deadline that work under :func:`despite_cancellation` sets itself. Not
    :func:`asyncio.timeout`, nor :func:`asyncio.wait_for` (built on it from Python 3.12):
    they cancel the task that entered them, and such work starts in its caller's task and
    goes on in a task of its own, so the deadline would cancel the caller instead of the
    wait, and never end it.

    Example:
        >>> async def main() -> bool:
        ...     return await finished_within(side_task(asyncio.sleep(9)), 0.01, print)
        >>> asyncio.run(main())  # doctest: +ELLIPSIS
        <Task cancelled ...>
        False
    """
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        task.add_done_callback(abandoned)
        raise
    if done:
        return True
    task.cancel()
    task.add_done_callback(abandoned)
    return False


async def _resume(resumed: _Resumed[_T]) -> _T:
    return await resumed


class _Settling(asyncio.Task[_T]):
    """The task work goes on in once suspended: the loop's end waits for the work to end.

    Nothing of ours cancels this task (the caller's cancellation stops at the shield). What
    does is a sweep over every task by the loop's owner while the loop stands still:
    ``asyncio.run()`` (and ``asyncio.Runner``) ending, which then runs the tasks until they
    finish. Such a cancellation is held back instead of cancelling the future the work awaits,
    so the work takes the answer it waits for (a settle committed in a worker thread, a Redis
    reply) and goes on; the grace timer bounds a store that never answers. A cancellation
    made while the loop runs goes through as usual: the work's own timeouts
    (``asyncio.timeout`` cancels the current task) must keep working.
    """

    _grace: asyncio.TimerHandle | None = None
    _caller: asyncio.Task[Any] | None = None

    def cancel(self, msg: Any | None = None) -> bool:
        loop = self.get_loop()
        if self.done() or loop.is_running():
            return super().cancel(msg)
        self._hold(loop.time() + SHUTDOWN_GRACE_S, msg)
        return True

    def _hold(self, deadline: float, msg: Any | None) -> None:
        """Let the work go on until ``deadline`` (the loop's clock), then cancel it."""
        if self._grace is not None:
            return
        self._grace = self.get_loop().call_at(deadline, self._give_up, msg)
        self.add_done_callback(_stop_grace)
        for ending in (self._caller, self):
            if ending is not None:
                _ending.setdefault(ending, deadline)

    def _give_up(self, msg: Any | None) -> None:
        _log.warning(
            "accounting work still pending %g s after the event loop's end cancelled it;"
            " cancelling it now: a budget reservation it held is reclaimed when its lease ends",
            SHUTDOWN_GRACE_S,
        )
        super().cancel(msg)


# The tasks whose work the loop's end held back, and when its grace runs out: the caller, and
# the settling task itself (work nested in it), may start more such work as they end.
_ending: weakref.WeakKeyDictionary[asyncio.Task[Any], float] = weakref.WeakKeyDictionary()


def _stop_grace(task: asyncio.Future[Any]) -> None:
    grace = cast("_Settling[Any]", task)._grace
    if grace is not None:
        grace.cancel()


class _Resumed(Generic[_T]):
    """Awaitable going on with a coroutine that was stepped by hand up to ``pending``.

    ``pending`` is what the coroutine yielded to the event loop (a future it waits for, or
    ``None`` to be resumed soon); handing it to the task that awaits this object lets the
    loop wake the coroutine exactly as if the task had started it.
    """

    def __init__(self, work: Coroutine[Any, Any, _T], pending: Any) -> None:
        self._work = work
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, _T]:
        work, pending = self._work, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                work.close()
                raise
            except BaseException as exc:
                try:
                    pending = work.throw(exc)
                except StopIteration as stop:
                    thrown: _T = stop.value
                    return thrown
                continue
            try:
                pending = work.send(sent)
            except StopIteration as stop:
                done: _T = stop.value
                return done
