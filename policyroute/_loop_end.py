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

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["at_loop_end", "forget_closed_loops"]


async def at_loop_end(cleanup: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    """Await ``cleanup`` when the running loop ends. Keep the returned handle referenced;
    ``await handle.aclose()`` runs the clean-up now instead (once either way).

    The handle holds the loop (an async generator keeps its loop's finalizer hook): a map of
    handles keyed by weak references to loops keeps every loop alive unless ``cleanup`` drops
    its loop's entry."""
    handle = _until_closed(cleanup)
    await handle.__anext__()  # now open: registered with the running loop
    return handle


def forget_closed_loops(handles: MutableMapping[asyncio.AbstractEventLoop, Any]) -> None:
    """Drop the entries of loops already closed from ``handles`` (keyed by loop, holding
    handles from :func:`at_loop_end`); call it when a new loop registers.

    A loop closed without ``shutdown_asyncgens`` (``loop.close()`` after
    ``run_until_complete``, where ``asyncio.run`` would have shut it down) never runs its
    clean-ups: its handle, which holds it, would stay in ``handles`` for good, and the loop
    with it. Nothing can be run on a closed loop; its entry is only dropped.

    Example:
        >>> import asyncio
        >>> loop = asyncio.new_event_loop(); loop.close()
        >>> handles = {loop: None}
        >>> forget_closed_loops(handles); handles
        {}
    """
    try:
        closed = [loop for loop in list(handles) if loop.is_closed()]
    except RuntimeError:  # changed by another thread meanwhile: the next registration sweeps
        return
    for loop in closed:
        handles.pop(loop, None)


async def _until_closed(cleanup: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await cleanup()
