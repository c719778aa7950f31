"""Deadlines around awaitables, awaited in the caller's task.

``asyncio.timeout`` (3.11+) arms a timer on the running task. Python 3.10 uses
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
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` after ``seconds`` (``None``: no limit)."""
        if seconds is None:
            return await awaitable
        async with asyncio.timeout(max(0.0, seconds)):
            return await awaitable

else:  # pragma: no cover - exercised on Python 3.10 only
    from policyroute.execution.inplace_timeout import bounded

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` after ``seconds`` (``None``: no limit)."""
        if seconds is None:
            return await awaitable
        return await bounded(awaitable, seconds)
