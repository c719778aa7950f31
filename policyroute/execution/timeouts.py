"""Deadlines around awaitables, awaited in the caller's task.

``asyncio.timeout`` (3.11+) arms a timer on the running task; :func:`within` does the same
inline on 3.11+ (the same timer, counts and errors, fewer objects per call). Python 3.10 uses
:func:`~policyroute.execution.inplace_timeout.bounded`, which keeps those semantics without
``asyncio.wait_for``'s task per call: a read started a loop turn late (in that task) can lose
what arrived before a connection's end (aiohttp raises the end before the buffered bytes).

Example:
    >>> import asyncio
    >>> asyncio.run(within(asyncio.sleep(0, "done"), 1.0))
    'done'
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["call_seconds", "within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    class _Expiry:
        """The deadline of one :func:`within`: cancels its task once, and remembers it did."""

        __slots__ = ("expired", "task")

        def __init__(self, task: asyncio.Task[Any]) -> None:
            self.task = task
            self.expired = False

        def expire(self) -> None:
            self.task.cancel()
            self.expired = True

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` after ``seconds`` (``None``: no limit).

        What ``async with asyncio.timeout(seconds): return await awaitable`` does, step for
        step (the timer, the task's cancellation count, which cancellation becomes the
        ``TimeoutError``), without the context manager's two coroutines and state machine:
        this runs once per provider call.
        """
        if seconds is None:
            return await awaitable
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        when = loop.time() + max(0.0, seconds)
        cancelling = task.cancelling()
        expiry = _Expiry(task)
        if when <= loop.time():  # as asyncio.timeout schedules a deadline already past
            timer: asyncio.Handle = loop.call_soon(expiry.expire)
        else:
            timer = loop.call_at(when, expiry.expire)
        try:
            result = await awaitable
        except BaseException as exc:
            timer.cancel()
            # Only the deadline's own cancellation, with none of anyone else's since entry,
            # becomes the timeout (asyncio.Timeout.__aexit__).
            expired = expiry.expired and task.uncancel() <= cancelling
            if expired and type(exc) is asyncio.CancelledError:
                raise TimeoutError from exc
            raise
        timer.cancel()
        if expiry.expired:
            task.uncancel()  # expired, but the awaitable ended anyway: its count is given back
        return result

else:  # pragma: no cover - exercised on Python 3.10 only
    from policyroute.execution.inplace_timeout import bounded

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` after ``seconds`` (``None``: no limit)."""
        if seconds is None:
            return await awaitable
        return await bounded(awaitable, seconds)


def call_seconds(timeout: object) -> float | None:
    """The seconds a call's ``timeout`` gives its answer, which policyroute keeps for the
    call as a whole (httpx applies it to each read): a number as it is, an ``httpx.Timeout``
    (which litellm also takes) its longest limit, ``None`` for none, or for an
    ``httpx.Timeout`` that does not limit reads (the call's answer may take any time).

    Example:
        >>> import httpx
        >>> call_seconds(30), call_seconds(httpx.Timeout(10.0, connect=2.0))
        (30.0, 10.0)
        >>> call_seconds(httpx.Timeout(5.0, read=None)) is None
        True
    """
    if isinstance(timeout, bool):
        return None
    if isinstance(timeout, (int, float)):
        return float(timeout)
    httpx = sys.modules.get("httpx")
    if httpx is None or not isinstance(timeout, httpx.Timeout) or timeout.read is None:
        return None
    parts = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return float(max(part for part in parts if part is not None))
