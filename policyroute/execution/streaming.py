"""Streaming with failover until the first token, and no silent truncation after it.

Chunks that carry no content (the role chunk some providers send first) are held back until
the first content or tool-call chunk arrives; until then any failure (an error, the
first-token timeout, a stream that ends empty) is retried or falls over like a non-streamed
call, and the caller sees nothing of it. Once content has reached the caller, a failure ends
the stream with :class:`~policyroute.errors.StreamInterruptedError` carrying the partial text;
:class:`~policyroute.execution.result.StreamDone` is only sent for a complete answer.

Timeouts:
    async: the first-token deadline (``defaults.first_token_timeout``) covers opening the
    stream and every chunk until the first content; the idle deadline
    (``defaults.idle_timeout``) covers the wait for progress after it: a chunk with content,
    reasoning, a finish reason or usage. Chunks without any (``"choices": []`` sent as a
    keep-alive) do not reset it, so a provider that keeps sending bytes but no answer is
    caught. Both are enforced with ``asyncio.timeout`` around each ``__anext__``, so they
    are exact.

    sync: litellm's ``timeout`` (httpx's read timeout, which bounds every wait for bytes) is
    set to the larger of the two deadlines (the request timeout when no idle deadline is
    set), both deadlines are checked as each chunk arrives, and a
    :class:`~policyroute.execution.watchdog.Watchdog` thread closes the HTTP response when a
    deadline passes during a read: events litellm swallows without yielding a chunk
    (Anthropic pings) would otherwise keep every read busy and no chunk would come to check.

Leases: while chunks flow, the attempt's budget reservation is renewed every third of its
lease (:mod:`policyroute.execution.lease`), so a stream longer than the lease is settled to
its actual cost instead of being reclaimed at its worst case.

Abandoned streams (the consumer stops iterating, closes the generator, or its task is
cancelled) still settle the attempt and finish the call, from the generators' ``finally``.

Streams still open when ``asyncio.run()`` ends are closed by the loop's
``shutdown_asyncgens``, which closes every async generator it tracks at once, in no order. The
attempt's generator is closed by the call's generator only: the loop does not track it (see
:func:`untracked_first`). Should someone else close it all the same, the call's generator
waits for that close to settle the attempt before it finishes the call.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Generator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from policyroute._lazy import import_litellm
from policyroute._shielded import despite_cancellation
from policyroute.costs.actual import mark_usage_estimated, usage_estimated
from policyroute.errors import ErrorClass, ProviderError, StreamInterruptedError
from policyroute.execution.attempt import AttemptRun
from policyroute.execution.call import CallState
from policyroute.execution.classify import make_error
from policyroute.execution.handoff import handed_off
from policyroute.execution.hooks import Admission, AttemptInfo, AttemptOutcome, Usage
from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop
from policyroute.execution.result import CallResult, StreamDelta, StreamDone, StreamEvent
from policyroute.execution.stream_io import (
    abort,
    aclose,
    close,
    held_usage,
    is_litellm_stream,
    provider_finished,
    reported_usage,
    sync_read_timeout,
)
from policyroute.execution.timeouts import within
from policyroute.execution.usage import (
    all_choices_finished,
    chunk_text,
    count_answer,
    has_content,
    has_finish_reason,
    has_reasoning,
    has_role,
    is_impossible,
    repair_usage,
    set_usage,
    usage_of,
)
from policyroute.execution.watchdog import Watchdog
from policyroute.request import Request

if TYPE_CHECKING:
    from policyroute.execution.executor import Executor

__all__ = ["stream_async", "stream_sync", "untracked_first"]

_T = TypeVar("_T")

_log = logging.getLogger("policyroute.execution")


class _StreamRun(AttemptRun):
    """What one streamed attempt has seen so far."""

    __slots__ = (
        "began",
        "chunks",
        "first_at",
        "messages",
        "progress_at",
        "read_from",
        "reading_s",
        "stream",
        "usage",
        "waited_s",
    )

    def __init__(self, attempt: AttemptInfo, messages: list[Any]) -> None:
        super().__init__(attempt)
        self.messages = messages
        self.chunks: list[Any] = []
        self.first_at: float | None = None
        self.progress_at = self.started
        self.usage: Usage | None = None
        # Time is the provider's only while a read waits for it: what the consumer spends
        # between chunks counts neither towards the idle deadline nor the latency routing
        # sees. ``waited_s``: read time since the last progress; ``reading_s``: all of it.
        self.read_from: float | None = self.started  # opening the stream is a read too
        self.waited_s = 0.0
        self.reading_s = 0.0
        # Whether the provider itself began answering (a role, content or its usage): only
        # then is a failed attempt billed. litellm closes even an empty or unreadable body
        # with chunks of its own (a "stop" and an empty usage), which prove nothing.
        self.began = False
        self.stream: Any = None  # the provider's stream, once opened

    def opened(self, stream: Any) -> None:
        """The provider's stream is open (its first read is over)."""
        self.stream = stream
        self.read_ends()

    def read_begins(self) -> None:
        """The driver starts waiting for the provider's next chunk."""
        self.read_from = time.perf_counter()

    def read_ends(self) -> None:
        """The wait for the provider is over (a chunk, the end or an error)."""
        if self.read_from is not None:
            spent = time.perf_counter() - self.read_from
            self.waited_s += spent
            self.reading_s += spent
            self.read_from = None

    def idle_s(self) -> float:
        """Seconds the provider has kept the caller waiting since its last progress."""
        current = 0.0 if self.read_from is None else time.perf_counter() - self.read_from
        return self.waited_s + current

    def provider_latency(self) -> float:
        """The attempt's time spent waiting for the provider (reads and opening)."""
        self.read_ends()
        return self.reading_s

    def take(self, chunk: Any) -> list[Any]:
        """Keep ``chunk``; return the chunks to pass on now (none before the first token)."""
        self.chunks.append(chunk)
        usage = usage_of(chunk)
        if usage is not None and is_impossible(usage):
            usage = None  # negative counts: the answer is counted locally at the end
        if usage is not None:
            self.usage = usage
        content = has_content(chunk)
        if content or usage is not None or has_finish_reason(chunk) or has_reasoning(chunk):
            self.progress_at = time.perf_counter()
            self.waited_s = 0.0
        if content or has_role(chunk) or (usage is not None and usage.total_tokens > 0):
            self.began = True
        if self.first_at is not None:
            return [chunk]
        if not content:
            return []
        self.first_at = self.progress_at
        return self.chunks[:]

    def deadline_error(self, first_token: float | None, idle: float | None) -> ProviderError | None:
        """A timeout error if the answer made no progress in time (sync streams)."""
        now = time.perf_counter()
        if self.first_at is None:
            if first_token is not None and now - self.started > first_token:
                return _timeout(f"no first token within {first_token:g}s")
        elif idle is not None and self.idle_s() > idle:
            return _timeout(_idle_message(idle))
        return None

    def succeed(self, stream: Any) -> None:
        """The stream ended: assemble the answer (an error if no content ever came, or if
        the provider never said the answer was finished)."""
        if self.first_at is None:
            raise make_error("malformed_response", "the stream ended without any content")
        if not provider_finished(stream):
            raise make_error(
                "malformed_response",
                "the stream ended without a finish reason from the provider: the answer is"
                " truncated (a proxy or the provider closed the body early)",
            )
        self._complete()

    def broke(self, exc: BaseException, stream: Any) -> None:
        """The stream raised ``exc``. Once every choice has its finish reason the answer is
        whole: what fails after it (a usage chunk of the wrong shape, an event that is not
        JSON, a stall before ``[DONE]``) is logged and the answer kept, its tokens counted
        locally when the provider's count never came. Before that, the attempt failed."""
        if self.first_at is not None and self._finished(stream):
            try:
                self._complete()
            except Exception:  # the chunks do not make an answer: the error stands
                _log.debug("could not assemble a finished stream", exc_info=True)
            else:
                _log.warning(
                    "deployment '%s': the stream failed after its answer was complete; the"
                    " answer is kept (%s: %s)",
                    self.attempt.candidate.alias,
                    type(exc).__name__,
                    str(exc)[:200],
                )
                return
        self.failed(exc)

    def _finished(self, stream: Any) -> bool:
        # litellm's wrapper knows what the provider sent: it holds a finish reason back for
        # its last chunk, and makes one up when a body ends without it. Another iterable (an
        # injected completion callable) is judged by its chunks.
        if is_litellm_stream(stream):
            return provider_finished(stream)
        return all_choices_finished(self.chunks)

    def _complete(self) -> None:
        response = self._assemble()
        if response is not None and not usage_estimated(response):
            self._settle_usage(response)
        first_at = self.first_at if self.first_at is not None else self.progress_at
        self.outcome = AttemptOutcome(
            status="ok",
            response=response,
            usage=usage_of(response) or self.usage or Usage(),
            provider_billed=True,
            time_to_first_token_s=first_at - self.started,
        )

    def _settle_usage(self, response: Any) -> None:
        """Give a finished answer the usage the provider reported, and mark it estimated
        where its tokens had to be counted locally.

        A stream can end whole (every choice finished) without the provider's usage: an
        OpenAI-style body cut before its usage chunk or sent without one, an Anthropic
        ``message_delta`` without usage. litellm then counts the tokens itself (Anthropic's
        ``message_start`` placeholder standing for the output when a finish reason came);
        the answer is counted here instead, as a cut stream is, keeping the input side the
        provider reported in ``message_start``. A usage the provider sent that litellm's
        wrapper received but never passed on (the stream failed after it) is used as it is.
        """
        stream = self.stream
        if not is_litellm_stream(stream):
            if self.usage is None:  # litellm's chunk builder counted the tokens
                mark_usage_estimated(response)
            return
        reported = reported_usage(stream)
        if reported is not None:
            if self.usage is None:
                set_usage(response, reported)
            return
        model = self.attempt.candidate.model
        set_usage(response, count_answer(response, model, self.messages, held_usage(stream)))
        mark_usage_estimated(response)

    def failure_outcome(self, error: ProviderError) -> AttemptOutcome:
        self._take_held_usage()
        return AttemptOutcome(
            status="error" if self.first_at is None else "interrupted",
            error=error,
            error_class=error.error_class,
            usage=self.usage,
            provider_billed=self.began,
        )

    def finalize(self) -> AttemptOutcome:
        outcome = super().finalize()
        if outcome.status == "cancelled":
            self._take_held_usage()
            outcome.usage = self.usage
            outcome.provider_billed = self.began
        if self.first_at is not None:
            if outcome.time_to_first_token_s is None:
                outcome.time_to_first_token_s = self.first_at - self.started
            if outcome.response is None:
                # Cut or abandoned after content arrived: the provider bills what it sent,
                # so accounting prices the partial answer, not just the prompt.
                outcome.response = self._partial_response()
        return outcome

    def _take_held_usage(self) -> None:
        # The stream ends before the provider's usage reached the caller: what litellm's
        # wrapper received and kept (Anthropic's message_start) says what input was billed.
        if self.usage is not None:
            return
        held = held_usage(self.stream)
        if held is not None:
            self.usage = held
            self.began = True

    def _assemble(self) -> Any:
        response = import_litellm().stream_chunk_builder(self.chunks, messages=self.messages)
        if response is not None:
            repair_usage(response, self.attempt.candidate.model, self.messages)
        return response

    def _partial_response(self) -> Any:
        try:
            return self._assemble()
        except Exception:  # accounting then prices the prompt and the usage seen
            _log.debug("could not assemble a partial stream", exc_info=True)
            return None

    def answer(self, call: CallState) -> CallResult | ProviderError:
        """As :meth:`AttemptRun.answer`; raises once content reached the caller."""
        if self.error is not None and self.first_at is not None:
            raise self._interrupted(call, self.error)
        return super().answer(call)

    def _interrupted(self, call: CallState, cause: ProviderError) -> StreamInterruptedError:
        usage = self.usage
        partial = (
            {}
            if usage is None
            else {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
            }
        )
        cause_class: ErrorClass = cause.error_class
        err = StreamInterruptedError(
            f"stream from deployment '{cause.deployment}' broke after content reached the"
            f" caller ({cause_class}): {cause}",
            partial_text="".join(chunk_text(c) for c in self.chunks),
            partial_usage=partial,
            cause_class=cause_class,
            deployment=cause.deployment,
            model=cause.model,
            status_code=cause.status_code,
        )
        err.__cause__ = cause
        call.fail(err)
        return err


# --------------------------------------------------------------------------- sync


def stream_sync(executor: Executor, request: Request) -> Generator[StreamEvent, None, None]:
    """The generator behind :meth:`Executor.stream`."""
    call = executor.start(request, stream=True)
    finished = False
    try:
        while True:
            attempt = call.next_attempt()
            admission = executor.admit(call, attempt)
            if admission is None:
                continue
            answer = yield from _sync_attempt(executor, call, attempt, admission)
            if isinstance(answer, CallResult):
                finished = True
                executor.accounting.finish(call.info, executor.call_outcome(call, answer, None))
                yield StreamDone(answer)
                return
            delay = call.failed(answer)
            if delay is not None:
                executor._sleep(delay)
    except BaseException as exc:
        if not finished:
            executor.accounting.finish(call.info, executor.call_outcome(call, None, exc))
        raise


def _sync_attempt(
    executor: Executor, call: CallState, attempt: AttemptInfo, admission: Admission
) -> Generator[StreamEvent, None, CallResult | ProviderError]:
    defaults = call.policy.defaults
    first_token, idle = defaults.first_token_timeout, defaults.idle_timeout
    params = sync_read_timeout(admission.params, first_token, idle)
    lease = executor.lease_timer(admission)
    executor.stats.start(attempt.candidate.alias)
    run = _StreamRun(attempt, call.messages)
    stream: Any = None
    watchdog: Watchdog | None = None
    try:
        stream = executor.completion_fn(messages=call.messages, **params)
        run.opened(stream)
        if first_token is not None or idle is not None:
            opened = stream
            watchdog = Watchdog(
                lambda: run.deadline_error(first_token, idle),
                close=lambda: abort(opened),
                interval=_watch_interval(first_token, idle),
            )
        chunks = iter(stream)
        while True:
            run.read_begins()
            with _reading(watchdog):
                chunk = next(chunks, _END)
            run.read_ends()
            if chunk is _END:
                break
            late = run.deadline_error(first_token, idle)
            if late is not None:
                raise late
            if lease is not None and lease.due():
                executor.renew(attempt, admission)
            for ready in run.take(chunk):
                yield StreamDelta(ready)
        _raise_expired(watchdog)
        run.succeed(stream)
    except Exception as exc:
        # Closing the stream on the watchdog's deadline ends the read with whatever error
        # (or clean end) the transport makes of it; the deadline is what happened.
        run.broke(watchdog.expired if watchdog and watchdog.expired else exc, stream)
    finally:
        if watchdog is not None:
            watchdog.stop()
        if run.outcome.status != "ok":
            close(stream)
        executor.settle(call, admission, run)
    return run.answer(call)


_END = object()


def _reading(watchdog: Watchdog | None) -> AbstractContextManager[None]:
    return nullcontext() if watchdog is None else watchdog.reading()


def _raise_expired(watchdog: Watchdog | None) -> None:
    if watchdog is not None and watchdog.expired is not None:
        raise watchdog.expired


def _watch_interval(first_token: float | None, idle: float | None) -> float:
    shortest = min(t for t in (first_token, idle) if t is not None)
    return min(0.25, max(0.01, shortest / 10))


# --------------------------------------------------------------------------- async


async def stream_async(executor: Executor, request: Request) -> AsyncGenerator[StreamEvent, None]:
    """The async generator behind :meth:`Executor.astream`."""
    await close_litellm_clients_with_loop()
    call = executor.start(request, stream=True)
    finished = False
    try:
        while True:
            attempt = call.next_attempt()
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
        if not finished:
            await executor.accounting.afinish(call.info, executor.call_outcome(call, None, exc))
        raise


async def _async_attempt(
    executor: Executor,
    call: CallState,
    attempt: AttemptInfo,
    admission: Admission,
    box: list[CallResult | ProviderError],
    settled: asyncio.Event,
) -> AsyncGenerator[StreamEvent, None]:
    defaults = call.policy.defaults
    first_token, idle = defaults.first_token_timeout, defaults.idle_timeout
    lease = executor.lease_timer(admission)
    executor.stats.start(attempt.candidate.alias)
    run = _StreamRun(attempt, call.messages)
    stream: Any = None
    try:
        opening = handed_off(executor.acompletion_fn(messages=call.messages, **admission.params))
        stream = await _timed(within(opening, first_token), _first_token_message(first_token))
        run.opened(stream)
        iterator = stream.__aiter__()
        while True:
            if run.first_at is None:
                limit = _remaining(first_token, run.started)
                message = _first_token_message(first_token)
            else:
                limit = None if idle is None else idle - run.waited_s
                message = _idle_message(idle)
            run.read_begins()
            try:
                chunk = await _timed(within(iterator.__anext__(), limit), message)
            except StopAsyncIteration:
                break
            finally:
                run.read_ends()
            if lease is not None and lease.due():
                await executor.arenew(attempt, admission)
            for ready in run.take(chunk):
                yield StreamDelta(ready)
        run.succeed(stream)
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


# --------------------------------------------------------------------------- helpers


async def _timed(awaitable: Any, message: str) -> Any:
    try:
        return await awaitable
    except TimeoutError as exc:
        raise _timeout(message) from exc


def _first_token_message(limit: float | None) -> str:
    return "no first token" if limit is None else f"no first token within {limit:g}s"


def _idle_message(limit: float | None) -> str:
    if limit is None:
        return "no new content"
    return f"no new content for more than {limit:g}s (chunks without content do not count)"


def _timeout(message: str) -> ProviderError:
    return make_error("timeout", message)


def _remaining(limit: float | None, started: float) -> float | None:
    if limit is None:
        return None
    return limit - (time.perf_counter() - started)
