"""Cancelling a litellm call without orphaning the coroutine litellm prepares in a thread.

litellm's ``acompletion`` builds each call in a worker thread (``loop.run_in_executor``) and
then awaits the coroutine that thread returns. A cancellation landing while the thread works
cancels the future litellm waits on: the thread still finishes, and the coroutine it hands
back is dropped without ever being awaited. Python reports that when the coroutine is
collected ("coroutine 'OpenAIChatCompletion.acompletion' was never awaited", a
``RuntimeWarning``; an error in test suites that turn warnings into errors), from whichever
code happens to run then.

:func:`handed_off` awaits the call in the caller's own task (so litellm's context variables
and its HTTP session stay with the task that reads the answer), but while litellm waits for
its thread, the task waits on a stand-in future instead of the thread's. A cancellation then
cancels only the stand-in: the thread's coroutine is taken back and started, and the
cancellation is delivered to it at its first await, as it would be to any other running
call. The caller's wait for the thread is bounded by :data:`HANDOFF_WAIT_S` (the thread
only prepares the request; if it is stuck, the cancellation goes through anyway).

Example:
    >>> import asyncio
    >>> async def answer() -> str:
    ...     return "ok"
    >>> async def call() -> str:
    ...     return await handed_off(answer())
    >>> asyncio.run(call())
    'ok'
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Coroutine, Generator
from functools import partial
from typing import Any, Final, TypeVar, cast

__all__ = ["HANDOFF_WAIT_S", "handed_off", "in_handoff"]

T = TypeVar("T")

# The coroutine of litellm's that awaits its worker thread: ``litellm/main.py``'s acompletion.
_HANDOFF_NAME: Final = "acompletion"
_HANDOFF_FILE: Final = os.sep + os.path.join("litellm", "main.py")

HANDOFF_WAIT_S: Final = 5.0
"""How long a cancelled call waits for litellm's thread to hand its coroutine back."""


def in_handoff(coro: Any) -> bool:
    """Whether ``coro`` (a coroutine) is suspended in litellm's wait for its worker thread.

    It is when the innermost coroutine it awaits is litellm's ``acompletion`` itself waiting
    on a future (each other await of that function is on a coroutine of its own, which would
    be innermost instead).

    Example:
        >>> in_handoff(task.get_coro())  # doctest: +SKIP
        False
    """
    while True:
        inner = getattr(coro, "cr_await", None)
        if inner is None:
            return False
        if getattr(inner, "cr_code", None) is None:
            break
        coro = inner
    code = coro.cr_code
    return bool(code.co_name == _HANDOFF_NAME and code.co_filename.endswith(_HANDOFF_FILE))


def handed_off(call: Awaitable[T]) -> Awaitable[T]:
    """``call`` (a litellm ``acompletion`` coroutine), awaitable so that a cancellation of
    the caller reaches it only once litellm's worker thread has handed its coroutine back
    (see the module doc). Anything but a coroutine is returned as it is."""
    if not asyncio.iscoroutine(call):
        return call
    return _HandedOff(call)


class _HandedOff(Awaitable[T]):
    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, Any, T]:
        coro = self._coro
        value: Any = None
        error: BaseException | None = None
        cancelled: BaseException | None = None  # the caller's, held back during a handoff
        # litellm hands off once per call, before the request is sent: after that, each await
        # passes straight through, without looking down the coroutine chain again.
        handed = False
        while True:
            try:
                if error is None:
                    step = coro.send(value)
                else:
                    step, error = coro.throw(error), None
            except StopIteration as stop:
                if cancelled is not None:
                    raise cancelled from None  # answered meanwhile; the caller is cancelled
                return cast(T, stop.value)
            value = None
            if cancelled is not None:
                # The thread's coroutine is running now: cancel it as the task would have.
                error, cancelled = cancelled, None
                yield from _cancel_as_task_does(step, coro)
                continue
            if not handed and isinstance(step, asyncio.Future) and in_handoff(coro):
                handed = True
                cancelled = yield from _wait_for_thread(step)
                if cancelled is None:
                    # Nothing to hold back any more: the rest of the call is delegated to the
                    # coroutine as ``await`` would (resumed as the task resumes a finished
                    # wait, with ``None``), without a Python-level step per suspension.
                    return (yield from coro.__await__())
                if not step.done():
                    # The thread is stuck past the bound: cancel its wait after all.
                    error, cancelled = cancelled, None
                    yield from _cancel_as_task_does(step, coro)
                continue
            try:
                value = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # delivered by the task: pass it on
                error = exc


def _cancel_as_task_does(step: Any, coro: Coroutine[Any, Any, Any]) -> Generator[Any, Any, None]:
    """Cancel ``step``, what ``coro`` just yielded, in a task's order: the future is cancelled,
    and the caller's task waits for it, so that the loop runs the callbacks the cancellation
    scheduled before the task resumes; the caller then throws the cancellation into ``coro``.

    The order matters to what the loop watches for the future. ``loop.sock_connect`` (aiohttp's
    connect, often the first await after the handoff) stops watching its socket's descriptor
    in such a callback, and aiohttp closes the socket as soon as the cancellation reaches it.
    Thrown into ``coro`` at once, the cancellation closed the socket first: the kernel forgot
    the descriptor, the loop did not, and the next socket given that number (another call's
    connect, in the same loop turn) was never watched, its connect never seen to complete.
    Anything but a pending future (a bare ``yield``) has no callbacks: nothing to wait for.
    """
    if not isinstance(step, asyncio.Future) or not step.cancel():
        return
    step._asyncio_future_blocking = True  # what ``await future`` sets for its task
    try:
        yield step
    except GeneratorExit:
        coro.close()
        raise
    except BaseException:  # the future's cancellation: the caller throws its own
        pass


def _wait_for_thread(
    thread_done: asyncio.Future[Any],
) -> Generator[Any, Any, BaseException | None]:
    """Wait, in the caller's task, until ``thread_done`` is done, through stand-in futures
    that a cancellation may cancel without touching it; return the caller's first
    cancellation (``None`` if there was none). Gives up after :data:`HANDOFF_WAIT_S` once
    cancelled."""
    loop = thread_done.get_loop()
    cancelled: BaseException | None = None
    deadline: float | None = None
    while not thread_done.done():
        stand_in: asyncio.Future[None] = loop.create_future()
        thread_done.add_done_callback(partial(_release, stand_in))
        if deadline is not None:
            loop.call_at(deadline, _release, stand_in)
        stand_in._asyncio_future_blocking = True  # what ``await future`` sets for its task
        try:
            yield stand_in
        except asyncio.CancelledError as exc:
            if cancelled is None:
                cancelled = exc
                deadline = loop.time() + HANDOFF_WAIT_S
        if deadline is not None and loop.time() >= deadline:
            break
    return cancelled


def _release(stand_in: asyncio.Future[None], _: object = None) -> None:
    if not stand_in.done():
        stand_in.set_result(None)
