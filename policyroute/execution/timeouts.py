"""Deadlines around awaitables, without creating a task per call where Python allows it.

``asyncio.timeout`` (3.11+) only arms a timer on the running task; ``asyncio.wait_for``
(the 3.10 fallback) wraps the awaitable in a new task.

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

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """Await ``awaitable``; raise ``TimeoutError`` after ``seconds`` (``None``: no limit)."""
        if seconds is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, max(0.0, seconds))
        except asyncio.TimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
