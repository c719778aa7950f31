"""Async clients kept per event loop, each closed when its loop ends.

An async network client (redis-py's, for one) belongs to the event loop that opened its
connections. A store used from one ``asyncio.run`` after another (a script run twice, a
worker, a test suite) must not hand the second loop the first loop's client, whose
connections are bound to a closed loop. :class:`LoopClients` keeps one client per running
loop, weakly keyed so a loop's client goes with it, and closes each as its loop ends
(:func:`policyroute._loop_end.at_loop_end`). A loop closed without shutting down its
async generators never runs that; its client is only forgotten, when another loop comes.

Example:
    >>> class Client:
    ...     async def aclose(self):
    ...         print("closed")
    >>> clients = LoopClients(lambda: (Client(), {}))
    >>> async def use():
    ...     client, _ = await clients.get()
    ...     return client is (await clients.get())[0]
    >>> asyncio.run(use())
    closed
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from policyroute._loop_end import at_loop_end, forget_closed_loops

__all__ = ["LoopClients"]

Made = tuple[Any, dict[str, Any]]
"""A client and what goes with it (a store's registered scripts, say)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    made: Made
    closer: AsyncGenerator[None, None]


class LoopClients:
    """One client per running event loop, made by ``make`` on first use in that loop.

    ``make`` returns ``(client, extras)``; when its loop ends or on :meth:`close`, ``close``
    is awaited with the client (by default its ``aclose()``, and a
    ``connection_pool.disconnect()`` too if it has one). Errors closing it are ignored: a
    server gone already leaves nothing to close.
    """

    def __init__(
        self, make: Callable[[], Made], close: Callable[[Any], Awaitable[None]] | None = None
    ) -> None:
        self._make = make
        self._close = close or _close
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> Made:
        """The running loop's client and extras."""
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(loop)
        if entry is None:
            forget_closed_loops(self._by_loop)
            made = self._make()
            entry = _Entry(made, await at_loop_end(functools.partial(self._ended, made[0])))
            self._by_loop[loop] = entry
        return entry.made

    async def _ended(self, client: Any) -> None:
        # The entry's clean-up handle holds its loop: drop the entry, or the weak key never
        # goes and every finished loop stays in memory with its closed client.
        self._by_loop.pop(asyncio.get_running_loop(), None)
        with contextlib.suppress(Exception):
            await self._close(client)

    async def close(self) -> None:
        """Close the running loop's client now (the next :meth:`get` makes a new one)."""
        entry = self._by_loop.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()


async def _close(client: Any) -> None:
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        await pool.disconnect()
