"""The receipt sink that hands each record to a user's callable, sync or async.

:class:`CallableSink` is re-exported by :mod:`policyroute.costs.sinks`, with the other sinks.

Example:
    >>> seen = []
    >>> CallableSink(seen.append).write({"kind": "call"})
    >>> seen
    [{'kind': 'call'}]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from policyroute._blocking import BlockingPool
from policyroute._shielded import finished_within, side_task
from policyroute.costs.redact import scrub
from policyroute.errors import ReceiptError

__all__ = ["CallableSink", "callable_name"]


class CallableSink:
    """Hands each record to ``fn``; any exception it raises becomes a :class:`ReceiptError`.

    ``fn`` gets a copy of its own (its dicts and lists copied): it may edit it before
    forwarding it, without changing what the other sinks write or what is kept to resend.

    ``fn`` may be a plain function or a coroutine function. Async code (``ainvoke``,
    ``astream``, ``policyroute.acompletion``) awaits a coroutine function on its own event loop
    through :meth:`awrite`, and calls a plain function inline, or in a worker thread when
    ``blocking=True`` (set it for a callable that does I/O, so it does not hold up the event
    loop; up to 8 of its calls run at once, in threads of the sink's own, and more wait their
    turn). Sync code runs a coroutine function to completion on an event loop of its own, as
    :func:`asyncio.run` would but leaving the thread's current loop as it was. From a thread
    whose event loop is running (a notebook cell, sync code called from a coroutine), the
    coroutine runs on such a loop in a thread of its own while the caller waits: a callable
    bound to the caller's loop (a client made on it) fails there, and its receipt is kept to
    resend.

    ``timeout`` (seconds) bounds how long a call waits for ``fn``: a write that takes longer
    is refused with a :class:`ReceiptError`, so the receipt is kept in the accounting's
    ``unwritten`` to resend, and the call goes on. Without it, a callable that never returns
    (a service that accepts the connection and never answers) holds up every call, cancelled
    calls too, for ever. It bounds what can be stopped or left: a coroutine function is
    cancelled at the deadline; a ``blocking`` callable is left to finish in its thread, in
    sync code too (where it then runs in that thread rather than the caller's), and may
    still deliver the receipt that is kept to resend: ``fn`` then gets it twice (its
    ``request_id``, ``kind`` and ``attempt`` tell the copies apart). A plain function run
    inline (``blocking=False``) cannot be bounded: the caller's thread is the one running it.

    Example:
        >>> seen = []
        >>> CallableSink(seen.append).write({"kind": "call"})
        >>> seen
        [{'kind': 'call'}]
        >>> async def post(record):  # a network service, which may stop answering
        ...     await asyncio.sleep(60)
        >>> CallableSink(post, timeout=0.01).write({"kind": "call"})
        Traceback (most recent call last):
        ...
        policyroute.errors.ReceiptError: receipt callable ...post did not finish within 0.01s
    """

    def __init__(
        self,
        fn: Callable[[Mapping[str, Any]], object],
        *,
        blocking: bool = False,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None and not (
            isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and 0 < timeout < math.inf
        ):
            raise ValueError(
                f"CallableSink timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.fn = fn
        self.blocking = blocking
        self.timeout = None if timeout is None else float(timeout)
        # Made at the first blocking call from async code: never the event loop's default
        # executor, which a slow callable would take from the application's other calls.
        self._pool: BlockingPool | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)``; run it to completion if it is a coroutine function."""
        timeout = self.timeout
        try:
            if self.blocking and timeout is not None:
                future = self._threads().submit(self.fn, _copy(record))
                try:
                    result = future.result(timeout)
                except concurrent.futures.TimeoutError:
                    future.cancel()  # not taken by a thread yet: never runs
                    raise self._late() from None
            else:
                result = self.fn(_copy(record))
            if inspect.isawaitable(result):
                _run_to_completion(result, self.fn, timeout, self._late)
        except ReceiptError:
            raise
        except Exception as exc:
            raise _failed(self.fn, exc) from exc

    async def awrite(self, record: Mapping[str, Any]) -> None:
        """Call ``fn(record)`` from async code, awaiting it if it is a coroutine function."""
        try:
            if self.timeout is None:
                await self._awritten(record)
            else:
                await self._within_timeout(record, self.timeout)
        except ReceiptError:
            raise  # as write does: a SinksRefusedError keeps the sinks that refused
        except Exception as exc:
            raise _failed(self.fn, exc) from exc

    async def _within_timeout(self, record: Mapping[str, Any], timeout: float) -> None:
        # Its own task, with the deadline finished_within sets: this runs as accounting work
        # (policyroute._shielded), where asyncio.wait_for would cancel the caller instead.
        write = side_task(self._awritten(record))
        if not await finished_within(write, timeout, _consume):
            raise self._late()  # a coroutine stops at its next await; a thread runs on
        write.result()

    async def _awritten(self, record: Mapping[str, Any]) -> None:
        if self.blocking:
            result = await self._threads().run(self.fn, _copy(record))
        else:
            result = self.fn(_copy(record))
        if inspect.isawaitable(result):
            await result

    def _late(self) -> ReceiptError:
        return ReceiptError(
            f"receipt callable {callable_name(self.fn)} did not finish within {self.timeout:g}s"
        )

    def _threads(self) -> BlockingPool:
        # Unlocked: loops in two threads making it at once leave one pool unused, whose threads
        # end as they idle.
        if self._pool is None:
            self._pool = BlockingPool("policyroute-sink-callable", _CALLABLE_WORKERS)
        return self._pool

    def close(self) -> None:
        """End the sink's threads (once the calls under way return)."""
        if self._pool is not None:
            self._pool.close()


# How many calls of one blocking CallableSink run at once from async code (each may wait on
# a network service).
_CALLABLE_WORKERS = 8

_LEAVES = frozenset((str, int, float, bool, type(None)))


def callable_name(fn: object) -> str:
    """How errors and logs name a receipt callable: its module and qualified name.

    Never its ``repr``, which for a :func:`functools.partial` shows the arguments bound to it
    (``headers={"Authorization": ...}``) and for a bound method the object it is bound to (a
    client holding its key).

    Example:
        >>> callable_name(functools.partial(print, "token"))
        'functools.partial(builtins.print, ...)'
        >>> callable_name([].append)
        'list.append'
    """
    if isinstance(fn, functools.partial):
        return f"functools.partial({callable_name(fn.func)}, ...)"
    qualname = getattr(fn, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(fn, "__module__", None)
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    kind = type(fn)
    return f"{kind.__module__}.{kind.__qualname__} instance"


def _failed(fn: object, exc: Exception) -> ReceiptError:
    # What the callable's exception says may quote its request (a URL with ?api_key=...).
    return ReceiptError(scrub(f"receipt callable {callable_name(fn)} failed: {exc}", ()))


def _copy(value: Any) -> Any:
    """``value`` with its mappings and lists copied, all the way down (what a receipt is made
    of); other values are shared. About 6 us for a receipt, a third of ``copy.deepcopy``:
    exact types are tested first, as ``isinstance`` against an ABC costs more than a copy."""
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _LEAVES:
        return value
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _consume(task: asyncio.Future[Any]) -> None:
    """Take a timed-out write's end, so that an error it ends with is not reported as never
    retrieved: its receipt is kept to resend already."""
    if not task.cancelled():
        task.exception()


def _run_to_completion(
    awaitable: Awaitable[object],
    fn: object,
    timeout: float | None = None,
    late: Callable[[], ReceiptError] | None = None,
) -> None:
    """Run ``awaitable`` (what an async callable returned) to its end from sync code."""

    async def wait() -> None:
        if timeout is None:
            await awaitable
            return
        try:
            await asyncio.wait_for(_awaited(awaitable), timeout)
        except asyncio.TimeoutError:
            raise (late() if late is not None else ReceiptError("timed out")) from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _run_on_own_loop(wait())
        return
    # This thread runs an event loop (a notebook cell, sync code called from a coroutine):
    # blocking on that loop would deadlock it, and dropping the coroutine would lose the
    # receipt. It runs on a loop of its own in a thread of its own while this one waits.
    outcome: list[BaseException | None] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            context.run(_run_on_own_loop, wait())
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name="policyroute-sink-callable-loop", daemon=True)
    thread.start()
    thread.join()
    if outcome and outcome[0] is not None:
        error = outcome[0]
        if isinstance(error, Exception):
            raise error
        raise ReceiptError(
            f"async receipt callable {callable_name(fn)} was stopped by"
            f" {type(error).__name__} in the thread it ran in"
        ) from error


def _run_on_own_loop(work: Coroutine[Any, Any, None]) -> None:
    # A loop of its own, run as asyncio.run runs one but never made this thread's current
    # loop: asyncio.run would leave the thread with none afterwards, so that code which had
    # set one (asyncio.set_event_loop) would find asyncio.get_event_loop() raising.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(work)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            if left:  # tasks the callable started and left running
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
