"""Clean-up run when an event loop ends, while the loop can still run it.

asyncio has no hook for "this loop is closing", but ``asyncio.run`` (and any loop closed after
``shutdown_asyncgens``) finalizes the async generators still open before it closes the loop.
:func:`at_loop_end` holds one open per clean-up, and its ``finally`` awaits the clean-up: the
connections of an async client can then be closed on the loop they belong to, instead of being
left to the garbage collector once the loop is gone.

Example:
    >>> import asyncio
    >>> async def main():
    ...     async def cleanup():
    ...         print("cleaned up")
    ...     await at_loop_end(cleanup)
    ...     print("done")
    >>> asyncio.run(main())
    done
    cleaned up
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["at_loop_end"]


async def at_loop_end(cleanup: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    """Await ``cleanup`` when the running loop ends. Keep the returned handle referenced;
    ``await handle.aclose()`` runs the clean-up now instead (once either way).

    The handle holds the loop (an async generator keeps its loop's finalizer hook): a map of
    handles keyed by weak references to loops keeps every loop alive unless ``cleanup`` drops
    its loop's entry."""
    handle = _until_closed(cleanup)
    await handle.__anext__()  # now open: registered with the running loop
    return handle


async def _until_closed(cleanup: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await cleanup()
