"""The async stream driver behind :meth:`Executor.astream`: attempts in turn until one answers.

Timeouts: the first-token deadline (``defaults.first_token_timeout``) covers opening the
stream and every chunk until the first content; the idle deadline (``defaults.idle_timeout``)
covers the wait for progress after it: a chunk with content, reasoning, a finish reason or
usage. Chunks without any (``"choices": []`` sent as a keep-alive) do not reset it, so a
provider that keeps sending bytes but no answer is caught. Both are enforced with
``asyncio.timeout`` around each ``__anext__``, so they are exact.

Abandoned streams (the consumer stops iterating, closes the generator, or its task is
cancelled) still settle the attempt and finish the call, from the generators' ``finally``.
The stream may be closed from another task than the one reading it
(:mod:`~policyroute.execution.stream_closer`): the reading task's iteration then ends.

Streams still open when ``asyncio.run()`` ends are closed by the loop's
``shutdown_asyncgens``, which closes every async generator it tracks at once, in no order. The
attempt's generator is closed by the call's generator only: the loop does not track it (see
:func:`untracked_first`). Should someone else close it all the same, the call's generator
waits for that close to settle the attempt before it finishes the call.

Example:
    >>> async for event in closable_stream_async(executor, request):  # doctest: +SKIP
    ...     if isinstance(event, StreamDelta):
    ...         handle(event.chunk)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from policyroute._shielded import despite_cancellation
from policyroute.errors import ProviderError
from policyroute.execution.call import CallState
from policyroute.execution.handoff import handed_off
from policyroute.execution.hooks import Admission, AttemptInfo
from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop
from policyroute.execution.result import CallResult, StreamDelta, StreamDone, StreamEvent
from policyroute.execution.stream_closer import AsyncStopRequest, ClosableAsyncStream
from policyroute.execution.stream_deadlines import (
    first_token_message,
    timed,
)
from policyroute.execution.stream_io import aclose
from policyroute.execution.stream_run import StreamRun
from policyroute.execution.timeouts import within
from policyroute.request import Request

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["closable_stream_async", "stream_async", "untracked_first"]

_T = TypeVar("_T")


def closable_stream_async(
    executor: Executor, request: Request
) -> AsyncGenerator[StreamEvent, None]:
    """What :meth:`Executor.astream` returns: :func:`stream_async`, with an ``aclose()`` that
    works from any task."""
    stop = AsyncStopRequest()
    return ClosableAsyncStream(stream_async(executor, request, stop), stop)


async def stream_async(
    executor: Executor, request: Request, stop: AsyncStopRequest
) -> AsyncGenerator[StreamEvent, None]:
    """The async generator of one streamed call's events; it ends quietly when ``stop``
    says another task closed it."""
    try:
        await close_litellm_clients_with_loop()
    except asyncio.CancelledError as exc:
        stop.ended.set()
        if stop.closed_by(exc):
            return
        raise
    call = executor.start(request, stream=True)
    finished = False
    try:
        while True:
            attempt = executor.choose(call)
            admission = await executor.aadmit(call, attempt)
            if admission is None:
                continue
            box: list[CallResult | ProviderError] = []
            settled = asyncio.Event()
            inner = _async_attempt(executor, call, attempt, admission, box, settled)
            try:
                try:
                    event = await untracked_first(inner)
                except StopAsyncIteration:
                    pass
                else:
                    yield event
                    async for event in inner:
                        yield event
            finally:
                # Closing the outer generator does not close the inner one; its
                # settle must not wait for the garbage collector.
                try:
                    await inner.aclose()
                except RuntimeError:
                    if not getattr(inner, "ag_running", False):
                        raise
                    # Someone else is closing it (a sweep closing every open generator):
                    # the call is finished once that close has settled the attempt, so
                    # that the call's receipt follows the attempt's and says what it did.
                    await despite_cancellation(settled.wait())
            answer = box[0]
            if isinstance(answer, CallResult):
                finished = True
                await executor.accounting.afinish(
                    call.info, executor.call_outcome(call, answer, None)
                )
                yield StreamDone(answer)
                return
            delay = call.failed(answer)
            if delay is not None:
                await executor._asleep(delay)
    except BaseException as exc:
        # Closed from another task (its reader cancelled for it): the call is finished as a
        # close in the reading task finishes it, and that task's iteration ends.
        closed = stop.closed_by(exc)
        if not finished:
            ended: BaseException = GeneratorExit() if closed else exc
            await executor.accounting.afinish(call.info, executor.call_outcome(call, None, ended))
        if not closed:
            raise
    finally:
        stop.ended.set()


async def _async_attempt(
    executor: Executor,
    call: CallState,
    attempt: AttemptInfo,
    admission: Admission,
    box: list[CallResult | ProviderError],
    settled: asyncio.Event,
) -> AsyncGenerator[StreamEvent, None]:
    # From here on the attempt holds a reservation and its count in flight (since
    # executor.choose): whatever happens next, adapting its messages too, is inside the
    # ``try`` whose ``finally`` settles it, which gives both back.
    run = StreamRun(attempt, call.messages)
    stream: Any = None
    try:
        defaults = call.policy.defaults
        first_token, idle = defaults.first_token_timeout, defaults.idle_timeout
        lease = executor.lease_timer(admission)
        messages = run.messages = call.messages_for(attempt)
        opening = handed_off(executor.acompletion_fn(messages=messages, **admission.params))
        stream = await timed(within(opening, first_token), first_token_message(first_token))
        run.opened(stream)
        iterator = stream.__aiter__()
        while True:
            limit, message = run.deadline(first_token, idle)
            run.read_begins()
            try:
                chunk = await timed(within(iterator.__anext__(), limit), message)
            except StopAsyncIteration:
                break
            finally:
                run.read_ends()
            if lease is not None and lease.due():
                await executor.arenew(attempt, admission)
            for ready in run.take(chunk):
                yield StreamDelta(ready, run.hidden_params)
        for ready in run.succeed(stream):
            yield StreamDelta(ready, run.hidden_params)
    except Exception as exc:
        run.broke(exc, stream)
    finally:
        try:
            if run.outcome.status != "ok":
                await aclose(stream)
        finally:
            # A second cancellation can land while the stream closes: settle regardless.
            try:
                await executor.asettle(call, admission, run)
            finally:
                settled.set()
    box.append(run.answer(call))


def untracked_first(agen: AsyncGenerator[_T, None]) -> Awaitable[_T]:
    """``agen.__anext__()``, for a first step that keeps ``agen`` out of the event loop's
    list of async generators to close at its end.

    For a generator that another generator owns and closes in its ``finally``: the loop's end
    (``shutdown_asyncgens``) closes every generator it tracks at once, in no order, so it
    would close the inner one while its owner does too, and the second ``aclose()`` fails
    ("asynchronous generator is already running"). asyncio tracks a generator from its first
    step, through ``sys``'s first-iteration hook, which is off while that step is made (the
    hooks are per thread, and nothing else runs meanwhile). The finalizer hook stays: a
    generator dropped unclosed is still closed on the loop. Later steps are the usual ones.

    Example:
        >>> async def outer():  # doctest: +SKIP
        ...     inner = numbers()
        ...     try:
        ...         yield await untracked_first(inner)
        ...         async for n in inner:
        ...             yield n
        ...     finally:
        ...         await inner.aclose()
    """
    hooks = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=None)
    try:
        return agen.__anext__()
    finally:
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter)
