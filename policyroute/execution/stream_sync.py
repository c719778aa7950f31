"""The sync stream driver behind :meth:`Executor.stream`: attempts in turn until one answers.

Timeouts: litellm's ``timeout`` (httpx's read timeout, which bounds every wait for bytes) is
set to the larger of the first-token and idle deadlines (the request timeout when no idle
deadline is set), both deadlines are checked as each chunk arrives, and a
:class:`~policyroute.execution.watchdog.Watchdog` thread closes the HTTP response when a
deadline passes during a read: events litellm swallows without yielding a chunk (Anthropic
pings) would otherwise keep every read busy and no chunk would come to check. Before there is
a response to close, the first-token deadline is a
:class:`~policyroute.execution.sync_deadline.SyncDeadline`, active while the stream is opened
and while its reads have not yet got the provider's answer (providers whose wrapper sends the
request at its first read): a provider that accepts the request but never sends its response
headers, or sends them a few bytes at a time, has its connection shut down at the deadline, and
the attempt ends as a first-token timeout, as an async stream's does (not billed: the provider
never said it accepted the request). litellm's module-level client, which sends Anthropic's
streams and those of the providers that send at the first read, gets the deadline's hooks too.

Abandoned streams (the consumer stops iterating or closes the generator) still settle the
attempt and finish the call, from the generators' ``finally``. The stream may be closed from
another thread than the one reading it (:mod:`~policyroute.execution.stream_closer`): the read
under way ends, and so does the reading thread's iteration. See
:mod:`policyroute.execution.streaming` for what a stream promises.

Example:
    >>> for event in stream_sync(executor, request):  # doctest: +SKIP
    ...     if isinstance(event, StreamDelta):
    ...         handle(event.chunk)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from policyroute._interrupts import held_interrupts
from policyroute.errors import ProviderError
from policyroute.execution.call import CallState
from policyroute.execution.hooks import Admission, AttemptInfo
from policyroute.execution.result import CallResult, StreamDelta, StreamDone, StreamEvent
from policyroute.execution.stream_closer import ClosableStream, StopRequest, StreamClosed
from policyroute.execution.stream_deadlines import first_token_message, remaining, timeout_error
from policyroute.execution.stream_io import abort, close, sync_read_timeout
from policyroute.execution.stream_run import StreamRun
from policyroute.execution.sync_deadline import SyncDeadline, watch_responses
from policyroute.execution.watchdog import Watchdog
from policyroute.request import Request

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["stream_sync"]


def stream_sync(executor: Executor, request: Request) -> Generator[StreamEvent, None, None]:
    """The generator behind :meth:`Executor.stream`; its ``close()`` works from any thread."""
    stop = StopRequest()
    return ClosableStream(_stream(executor, request, stop), stop)


def _stream(
    executor: Executor, request: Request, stop: StopRequest
) -> Generator[StreamEvent, None, None]:
    call = executor.start(request, stream=True)
    finished = False
    try:
        while True:
            stop.check()
            answer = yield from _sync_attempt(executor, call, stop)
            if answer is None:
                continue  # a budget downgrade re-routed the call
            if isinstance(answer, CallResult):
                finished = True
                with held_interrupts():
                    outcome = executor.call_outcome(call, answer, None)
                    executor.accounting.finish(call.info, outcome)
                stop.check()
                yield StreamDone(answer)
                return
            delay = call.failed(answer)
            if delay is not None:
                executor._sleep(delay)
    except StreamClosed:
        # Closed from another thread: the call is finished as a close in the reading thread
        # finishes it (its receipt the same), and that thread's iteration ends.
        if not finished:
            closed = GeneratorExit()
            with held_interrupts():
                executor.accounting.finish(call.info, executor.call_outcome(call, None, closed))
    except BaseException as exc:
        if not finished:
            with held_interrupts():
                executor.accounting.finish(call.info, executor.call_outcome(call, None, exc))
        raise
    finally:
        stop.ended.set()


def _sync_attempt(
    executor: Executor, call: CallState, stop: StopRequest
) -> Generator[StreamEvent, None, CallResult | ProviderError | None]:
    """Choose, admit, stream and settle the call's next attempt; ``None`` when a budget
    downgrade re-routed the call instead.

    As for an attempt not streamed (:meth:`Executor._attempt`), what the attempt takes, its
    count in flight and its reservation, is taken inside the ``try`` whose ``finally`` gives
    it back, under :func:`held_interrupts` until ``attempt``, ``admission`` and ``run`` say
    what is held: a Ctrl-C meanwhile is raised once they do.
    """
    defaults = call.policy.defaults
    first_token, idle = defaults.first_token_timeout, defaults.idle_timeout
    attempt: AttemptInfo | None = None  # counted in flight
    admission: Admission | None = None  # and holding its reservation
    run: StreamRun | None = None  # set up: settling gives both back
    stream: Any = None
    watchdog: Watchdog | None = None
    headers: SyncDeadline | None = None
    try:
        with held_interrupts():
            attempt = executor.choose(call)
            admission = executor.accounting.admit(attempt)
            downgrade_to = admission.downgrade_to
            if downgrade_to is not None:
                chosen, attempt, admission = attempt, None, None
                executor.reroute(call, chosen, downgrade_to)
                return None
            run = StreamRun(attempt, call.messages)
        params = sync_read_timeout(admission.params, first_token, idle)
        lease = executor.lease_timer(admission)
        messages = run.messages = call.messages_for(attempt)
        headers = _headers_deadline(first_token, run)
        stream = _opening(headers, executor.completion_fn, messages, params)
        run.opened(stream)
        opened = stream
        stop.reading(lambda: abort(opened, shut_down=True))
        if first_token is not None or idle is not None:
            watchdog = Watchdog(
                lambda: run.deadline_error(first_token, idle),
                close=lambda: abort(opened),
                interval=_watch_interval(first_token, idle),
            )
        chunks = iter(stream)
        while True:
            if headers is not None and run.accepted:  # the provider's answer is in
                headers.end()
                headers = None
            run.read_begins()
            with _reading(watchdog):
                chunk = _read(headers, chunks)
            run.read_ends()
            stop.check()
            if chunk is _END:
                break
            late = run.deadline_error(first_token, idle)
            if late is not None:
                raise late
            if lease is not None and lease.due():
                executor.renew(attempt, admission)
            for ready in run.take(chunk):
                yield StreamDelta(ready, run.hidden_params)
        _raise_expired(watchdog)
        for ready in run.succeed(stream):
            yield StreamDelta(ready, run.hidden_params)
    except Exception as exc:
        if run is None:
            raise  # refused by accounting, or failed before it was set up: given back below
        # A read ended by a close from another thread failed for that close, not the provider.
        stop.check()
        # Closing the stream on the watchdog's deadline, or its connection before the answer
        # came, ends the read with whatever error (or clean end) the transport makes of it;
        # the deadline is what happened.
        run.broke(_cause(exc, watchdog, headers, first_token), stream)
    finally:
        # A Ctrl-C meanwhile is raised once the attempt is settled.
        with held_interrupts():
            stop.reading(None)
            if watchdog is not None:
                watchdog.stop()
            if headers is not None:
                headers.end()
            if run is not None and run.outcome.status != "ok":
                close(stream)
            if attempt is not None:
                executor.end_attempt(call, attempt, admission, run)
    return run.answer(call)


_END = object()


def _headers_deadline(first_token: float | None, run: StreamRun) -> SyncDeadline | None:
    """The first-token deadline of ``run``'s requests until the provider's answer is in."""
    if first_token is None:
        return None
    _watch_module_client()
    left = remaining(first_token, run.started) or 0.0
    return SyncDeadline(time.monotonic() + left)


def _watch_module_client() -> None:
    # litellm sends Anthropic's sync streams, and the first read of the providers whose
    # wrapper sends the request then, through this client, kept outside its client cache.
    litellm = sys.modules.get("litellm")
    client = getattr(litellm, "module_level_client", None) if litellm is not None else None
    if client is not None:
        watch_responses(client)


def _opening(
    headers: SyncDeadline | None, completion: Any, messages: list[Any], params: Any
) -> Any:
    if headers is None:
        return completion(messages=messages, **params)
    token = headers.activate()
    try:
        return completion(messages=messages, **params)
    finally:
        headers.deactivate(token)


def _read(headers: SyncDeadline | None, chunks: Any) -> Any:
    # Active for the read only: the consumer's own calls between two chunks are not its.
    if headers is None:
        return next(chunks, _END)
    token = headers.activate()
    try:
        return next(chunks, _END)
    finally:
        headers.deactivate(token)


def _cause(
    exc: Exception,
    watchdog: Watchdog | None,
    headers: SyncDeadline | None,
    first_token: float | None,
) -> Exception:
    """What ended the attempt: a deadline that cut the stream, else ``exc``."""
    if watchdog is not None and watchdog.expired is not None:
        return watchdog.expired
    if headers is not None:
        headers.end()  # a cut under way ends first: ``cut`` is final
        if headers.cut:
            error = timeout_error(first_token_message(first_token))
            error.__cause__ = exc
            return error
    return exc


def _reading(watchdog: Watchdog | None) -> AbstractContextManager[None]:
    return nullcontext() if watchdog is None else watchdog.reading()


def _raise_expired(watchdog: Watchdog | None) -> None:
    if watchdog is not None and watchdog.expired is not None:
        raise watchdog.expired


def _watch_interval(first_token: float | None, idle: float | None) -> float:
    shortest = min(t for t in (first_token, idle) if t is not None)
    return min(0.25, max(0.01, shortest / 10))
