"""Closing a stream from another thread (sync) or task (async) than the one reading it.

A generator cannot be closed while it runs: ``close()`` from a second thread, while the
reading thread waits for the provider's next chunk, raises ``ValueError: generator already
executing``, and the stream goes on to its end, charged in full. Stopping a stream from
another thread is what a sync program has instead of cancelling a task (a "stop" button, a
client that went away, a supervisor ending a worker's call), so :class:`ClosableStream`
makes ``close()`` work from any thread: while the generator runs elsewhere, it asks it to
stop (:class:`StopRequest`), ends the read under way by closing its HTTP response (as the
watchdog does for a deadline), and waits until the generator has settled the attempt and
finished the call. The reading thread's iteration then simply ends: nothing more is
yielded, and the receipts say ``cancelled``, as for a stream closed where it is read.

An async generator's ``aclose()`` fails the same way while another task awaits its next
event ("asynchronous generator is already running"): :class:`ClosableAsyncStream` cancels
that task's wait instead, which reaches it inside the stream (the task is suspended there),
and the stream takes that cancellation back (:meth:`AsyncStopRequest.closed_by`) once it
has settled the attempt, ending the reading task's iteration.

Example:
    >>> stop = StopRequest()
    >>> def numbers(stop):
    ...     for n in range(3):
    ...         stop.check()
    ...         yield n
    >>> stream = ClosableStream(numbers(stop), stop)
    >>> next(stream), stream.close(), list(stream)
    (0, None, [])
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = [
    "AsyncStopRequest",
    "ClosableAsyncStream",
    "ClosableStream",
    "StopRequest",
    "StreamClosed",
]

_T = TypeVar("_T")

# How often a closing thread tries again to close a generator it found running: it stops at
# its next check, or is caught suspended between two steps.
_RETRY_S = 0.01


class StreamClosed(BaseException):
    """Raised inside a stream's generator when another thread closed it; not an
    ``Exception``, so that no driver takes it for the provider's failure (like the
    ``GeneratorExit`` of a close from the reading thread, it settles as ``cancelled``)."""


class StopRequest:
    """A request from another thread to stop a stream, and what it needs to end a read."""

    __slots__ = ("_abort", "ended", "requested", "thread")

    def __init__(self) -> None:
        self.requested = False
        self._abort: Callable[[], None] | None = None
        # Set once the generator has ended (its call finished and its receipts written).
        self.ended = threading.Event()
        self.thread: int | None = None  # the thread running the generator's current step

    def check(self) -> None:
        """Raise :class:`StreamClosed` if a stop was requested."""
        if self.requested:
            raise StreamClosed

    def reading(self, abort: Callable[[], None] | None) -> None:
        """``abort`` ends the read under way from another thread (``None``: nothing to end);
        it is called at once when a stop was already requested."""
        self._abort = abort
        if self.requested and abort is not None:
            abort()

    def request(self) -> None:
        """Ask the generator to stop, and end the read it may be waiting on."""
        self.requested = True
        abort = self._abort
        if abort is not None:
            abort()


class ClosableStream(Generator[_T, None, None]):
    """A generator whose :meth:`close` also works from another thread than the one
    iterating it (see the module doc). ``events`` calls ``stop.check()`` between its steps
    and ends without raising once it sees :class:`StreamClosed`."""

    __slots__ = ("_events", "_stop")

    def __init__(self, events: Generator[_T, None, None], stop: StopRequest) -> None:
        self._events = events
        self._stop = stop

    def send(self, value: None) -> _T:
        self._enter()
        return self._events.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> _T:
        self._enter()
        if val is None and tb is None:  # the three-argument form is deprecated (3.12)
            return self._events.throw(typ)
        return self._events.throw(typ, val, tb)

    def _enter(self) -> None:
        # A step refused because another thread is reading (Python's "generator already
        # executing") must not pass for the reading thread.
        if not getattr(self._events, "gi_running", False):
            self._stop.thread = threading.get_ident()

    def close(self) -> None:
        """Close the stream: at once when it is not being read; else, from another thread,
        once the reading thread has stopped and settled it; from the reading thread itself
        (a callback of the stream's), at its next step."""
        stop = self._stop
        while True:
            try:
                self._events.close()
                return
            except ValueError:  # running: in this thread (a callback), or in another
                if not getattr(self._events, "gi_running", False):
                    raise
            stop.request()
            if stop.thread == threading.get_ident():
                return
            if stop.ended.wait(_RETRY_S):
                return


class AsyncStopRequest:
    """A request from another task to stop an async stream: the task reading it is
    cancelled, and the stream ends quietly once :meth:`closed_by` takes that back."""

    __slots__ = ("ended", "reader", "requested")

    def __init__(self) -> None:
        self.requested = False
        self.reader: asyncio.Task[Any] | None = None  # the task awaiting a step under way
        # Set once the generator has ended (its call finished and its receipts written).
        self.ended = asyncio.Event()

    def request(self) -> None:
        """Cancel the reading task's wait for the stream's next event."""
        self.requested = True
        if self.reader is not None:
            self.reader.cancel()

    def closed_by(self, exc: BaseException | None) -> bool:
        """Whether ``exc``, ending the stream, is the cancellation :meth:`request` sent; if
        so it is taken back from the reading task (``Task.uncancel``, Python 3.11+), unless
        something else cancelled that task too."""
        if not (self.requested and isinstance(exc, asyncio.CancelledError)):
            return False
        self.requested = False
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)
        return not callable(uncancel) or uncancel() == 0


class ClosableAsyncStream(AsyncGenerator[_T, None]):
    """An async generator whose :meth:`aclose` also works from another task than the one
    awaiting its next event (see the module doc). ``events`` ends without raising when its
    ``stop.closed_by`` says so.

    Its steps are ``events``' own (made when asked for, so that a caller keeping the first
    one from the event loop's tracking, :func:`~policyroute.execution.streaming.untracked_first`,
    still does), noting the task that awaits them.
    """

    __slots__ = ("_events", "_stop")

    def __init__(self, events: AsyncGenerator[_T, None], stop: AsyncStopRequest) -> None:
        self._events = events
        self._stop = stop

    @property
    def ag_running(self) -> bool:
        """Whether a step of the stream is under way."""
        return bool(getattr(self._events, "ag_running", False))

    def __anext__(self) -> Coroutine[Any, Any, _T]:
        return self._noted(self._events.__anext__())

    def asend(self, value: None) -> Coroutine[Any, Any, _T]:
        return self._noted(self._events.asend(value))

    def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Coroutine[Any, Any, _T]:
        if val is None and tb is None:
            return self._noted(self._events.athrow(typ))
        return self._noted(self._events.athrow(typ, val, tb))

    async def _noted(self, step: Awaitable[_T]) -> _T:
        if self.ag_running:  # another task's step is under way: this one fails at once
            return await step
        # Only while the step is under way: a close by someone else (the loop's sweep) runs
        # the generator too, and must not pass for a reader to cancel.
        self._stop.reader = asyncio.current_task()
        try:
            return await step
        finally:
            self._stop.reader = None

    async def aclose(self) -> None:
        """Close the stream: at once when no task awaits it; else, from another task, once
        the reading task has stopped and the stream settled."""
        stop = self._stop
        try:
            await self._events.aclose()
            return
        except RuntimeError:  # a task awaits its next event: this one, or another
            reader = stop.reader
            if not self.ag_running or reader is None or reader is asyncio.current_task():
                raise
        stop.request()
        await stop.ended.wait()
