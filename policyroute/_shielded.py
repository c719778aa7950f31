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
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["despite_cancellation"]

_T = TypeVar("_T")


async def despite_cancellation(work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile, then re-raise.

    The executor settles and finishes from ``finally`` blocks: a cancellation landing while a
    budget store or an async sink is awaited would otherwise leave the reservation held and
    the receipt unwritten, without a word. ``work`` runs in the caller's task until it first
    suspends (an in-memory store and a JSON-lines sink never do, so nothing changes for
    them); from there it runs as its own task behind :func:`asyncio.shield`, so only the loop
    closing can cancel it. (``eager_start``, which does this, is Python 3.12+.)
    """
    try:
        pending = work.send(None)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    task = asyncio.ensure_future(_Resumed(work, pending))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled (the loop is closing)
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


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
