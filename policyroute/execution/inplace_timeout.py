"""A deadline on one awaitable, run in the awaiting task: Python 3.10's ``asyncio.timeout``.

``asyncio.wait_for`` (before 3.12) runs the awaitable in a task of its own that starts a loop
turn later. A read started that late can miss what arrived meanwhile: aiohttp's
``StreamReader`` raises a connection's end before handing over the bytes buffered with it,
so an event received just before a cut is lost with it.

Python 3.11's ``asyncio.timeout`` cancels the running task when the deadline passes and turns
that cancellation into ``TimeoutError`` when the task's cancellation count says it was its
own. Python 3.10 has no such count, and two ``Task.cancel()`` calls made in one loop turn
deliver a single ``CancelledError``, carrying the first one's message: a deadline that
cancelled the task cannot tell whether someone else cancelled it too, and would turn their
cancellation into a timeout. So :func:`bounded` does not cancel the task. It steps the
awaitable itself, in the caller's task, and while the awaitable waits on a future the task
waits on a stand-in future of ours instead, which that future or the deadline completes:

* a cancellation of the task cancels the stand-in (or reaches it as the task wakes), and is
  passed on to the awaitable, the future it waited on cancelled, exactly as the task would;
  once one arrived, a ``CancelledError`` leaving the awaitable stays a cancellation. The
  cancelled future is waited for (a task runs its cleanup first; a plain future's
  cancellation schedules its callbacks, which run first), and the awaitable resumed with how
  it ended, as the task waits for it;
* the deadline completes the stand-in with a result, so a cancellation of the task in the
  same loop turn is still delivered (the task's own pending cancellation) and wins; if none
  came, the awaitable is cancelled as the task would be, and the ``CancelledError`` it ends
  with becomes ``TimeoutError``.

Costs one future and one loop turn per suspension of the awaitable (about 20 us a call on
3.10, against 40 us for ``wait_for``'s task). That turn means an answer arriving in the turn
the deadline passes is too late, as under ``asyncio.timeout`` when the deadline fires before
the woken task runs.

One case differs from 3.11: a timeout inside the awaitable that cancels the task itself
(``async_timeout``, aiohttp's on 3.10) cannot be told from a cancellation of the task. If the
awaitable turns it into its own error, goes on, and this deadline then passes, the
``CancelledError`` it ends with stays one (3.11's inner timeouts give their count back).

Example:
    >>> import asyncio
    >>> async def main() -> str:
    ...     return await bounded(asyncio.sleep(0, "done"), 1.0)
    >>> asyncio.run(main())
    'done'
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from functools import partial
from typing import Any, Generic, TypeVar

__all__ = ["bounded"]

T = TypeVar("T")


def bounded(awaitable: Awaitable[T], seconds: float) -> Awaitable[T]:
    """``awaitable``, raising ``TimeoutError`` once ``seconds`` pass, awaited in place.

    Behaves as ``async with asyncio.timeout(seconds): await awaitable`` does on Python 3.11
    (a deadline of ``0`` or less expires at the awaitable's first suspension), without
    cancelling the task: see the module doc. The deadline is set when it is awaited.

    Example:
        >>> import asyncio
        >>> async def slow() -> None:
        ...     await asyncio.sleep(1)
        >>> async def main() -> str:
        ...     try:
        ...         await bounded(slow(), 0.01)
        ...     except TimeoutError:
        ...         return "timed out"
        ...     return "finished"
        >>> asyncio.run(main())
        'timed out'
    """
    return _Bounded(awaitable, seconds)


class _Deadline:
    """The deadline's state; it wakes the task through the stand-in it waits on, if any."""

    __slots__ = ("passed", "stand_in")

    def __init__(self) -> None:
        self.passed = False
        self.stand_in: asyncio.Future[None] | None = None

    def expire(self) -> None:
        self.passed = True
        if self.stand_in is not None:
            _release(self.stand_in)


class _Bounded(Generic[T]):
    __slots__ = ("_awaitable", "_seconds")

    def __init__(self, awaitable: Awaitable[T], seconds: float) -> None:
        self._awaitable = awaitable
        self._seconds = seconds

    def __await__(self) -> Generator[Any, Any, T]:
        loop = asyncio.get_running_loop()
        inner = self._awaitable.__await__()
        deadline = _Deadline()
        if self._seconds <= 0:  # as asyncio.timeout schedules a deadline already past
            timer: asyncio.Handle = loop.call_soon(deadline.expire)
        else:
            timer = loop.call_at(loop.time() + self._seconds, deadline.expire)
        value: Any = None
        error: BaseException | None = None
        ours = False  # the deadline's cancellation was delivered to the awaitable
        theirs = False  # a cancellation of the task was
        # A future cancelled for the awaitable that is still running (a task, cleaning up):
        # the awaitable is resumed once it has ended, as a task waits for it before it wakes.
        held: asyncio.Future[Any] | None = None
        waited: asyncio.Future[Any] | None
        try:
            while True:
                resumed_by: asyncio.Future[Any] | None = None
                if held is not None:
                    waited, held = held, None
                    resumed_by = waited
                else:
                    try:
                        if error is None:
                            step = inner.send(value)
                        else:
                            step, error = inner.throw(error), None
                    except StopIteration as stop:
                        result: T = stop.value
                        return result
                    except asyncio.CancelledError as exc:
                        if ours and not theirs:
                            raise TimeoutError from exc
                        raise
                    waited = _waited_future(step, loop)
                value = None
                relay = None
                if waited is not None:
                    # Wait on a stand-in that the future, or the deadline, completes.
                    stand_in = loop.create_future()
                    relay = partial(_release, stand_in)
                    waited.add_done_callback(relay)
                    deadline.stand_in = stand_in
                    step = stand_in
                    stand_in._asyncio_future_blocking = True  # what ``await future`` sets
                try:
                    value = yield step
                except GeneratorExit:  # the task is gone: close the awaitable where it waits
                    if waited is not None and relay is not None:
                        waited.remove_done_callback(relay)
                    inner.close()
                    raise
                except asyncio.CancelledError as exc:  # the task's cancellation
                    theirs = True
                    error = exc
                except BaseException as exc:  # anything else thrown in: pass it on
                    error = exc
                finally:
                    deadline.stand_in = None
                if resumed_by is not None and error is None and resumed_by.done():
                    # As the task resumes a finished wait: with how the future ended (the
                    # awaitable may wait through a stand-in of its own, which does not ask).
                    try:
                        resumed_by.result()
                    except BaseException as exc:
                        error = exc
                cancelled = isinstance(error, asyncio.CancelledError)
                if deadline.passed and not ours and (error is None or cancelled):
                    # One cancellation reaches the awaitable, as for a task cancelled twice
                    # in one turn; the task's, if it came too, decides what it ends with.
                    ours = True
                    if error is None:
                        error, cancelled = asyncio.CancelledError(), True
                if waited is not None and relay is not None:
                    waited.remove_done_callback(relay)
                    # As the task cancels the future it waits on, and then waits for it: to
                    # end if it does not end at once (a task running its cleanup), and else
                    # for the loop to run the callbacks its cancellation scheduled. Those
                    # come first: ``loop.sock_connect`` stops watching its socket in one, and
                    # the awaitable may close that socket as soon as it is resumed (see
                    # ``handoff._cancel_as_task_does``).
                    message = (
                        error.args[0] if cancelled and error is not None and error.args else None
                    )
                    if cancelled and waited.cancel(message):
                        held, error = waited, None
        finally:
            timer.cancel()


def _waited_future(step: Any, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any] | None:
    """``step`` if it is a future of ``loop`` awaited as a task expects, else ``None``.

    Anything else (a bare ``yield``, a future of another loop, a misused one) goes to the
    task as it is, which resumes the awaitable or throws the error it would have.
    """
    if getattr(step, "_asyncio_future_blocking", None) is not True:
        return None
    if not asyncio.isfuture(step) or step.get_loop() is not loop:
        return None
    step._asyncio_future_blocking = False  # as the task does on taking it
    return step


def _release(stand_in: asyncio.Future[None], _: object = None) -> None:
    if not stand_in.done():
        stand_in.set_result(None)
