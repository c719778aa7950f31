"""litellm's async HTTP clients closed with the event loop that made them.

litellm keeps the async clients it builds (OpenAI SDK clients, its own HTTP handlers, their
aiohttp sessions) in a process-wide cache, keyed by the event loop they were made on, and
closes one only when the cache evicts it. A program that runs its calls in one
``asyncio.run()`` after another (a script, a task queue worker, a test suite) leaves each
finished loop's clients behind with their sockets open: closed by the garbage collector much
later, if at all, with a ``ResourceWarning`` each, and a file descriptor held per socket until
then.

The first async call on a loop registers a clean-up for the loop's end
(:func:`policyroute._loop_end.at_loop_end`) that closes the clients cached for that loop, and
only those: other loops' clients, in other threads, are left alone. Nothing is done for a
litellm whose cache does not look as expected.

Example:
    >>> async def call():
    ...     await close_litellm_clients_with_loop()  # then make litellm calls
    >>> asyncio.run(call())
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import AsyncGenerator
from typing import Any

from policyroute._loop_end import at_loop_end

__all__ = ["close_litellm_clients_with_loop"]

_log = logging.getLogger("policyroute.execution")

_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


async def close_litellm_clients_with_loop() -> None:
    """Make sure the running loop closes litellm's clients for it when it ends (cheap after
    the first call on a loop)."""
    loop = asyncio.get_running_loop()
    if loop in _closers:
        return
    _closers[loop] = await at_loop_end(functools.partial(_close_cached_clients, f"-{id(loop)}"))


async def _close_cached_clients(suffix: str) -> None:
    litellm = sys.modules.get("litellm")
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    entries = getattr(cache, "cache_dict", None)
    if cache is None or not isinstance(entries, dict):
        return
    for key in [k for k in list(entries) if isinstance(k, str) and k.endswith(suffix)]:
        client = entries.get(key)
        try:
            await _aclose(client)
            cache.delete_cache(key)
        except Exception:  # a client that fails to close is litellm's to collect
            _log.debug("closing litellm's client %s failed", key, exc_info=True)


async def _aclose(client: Any) -> None:
    # litellm's own handlers close their httpx client only when they made it themselves, so
    # the httpx client under one (``.client``) is closed directly, which closes its transport.
    inner = getattr(client, "client", None)
    if inner is not None and not isinstance(inner, type) and hasattr(inner, "aclose"):
        await _close_one(inner)
    await _close_one(client)


async def _close_one(client: Any) -> None:
    for name in ("aclose", "close"):
        method = getattr(client, name, None)
        if callable(method):
            result = method()
            if inspect.isawaitable(result):
                await result
            return
