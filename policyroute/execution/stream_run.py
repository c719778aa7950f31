"""What one streamed attempt has seen so far: its chunks, its clock, its usage and outcome.

A :class:`StreamRun` is the state both stream drivers
(:mod:`~policyroute.execution.stream_sync`, :mod:`~policyroute.execution.stream_async`)
keep for one attempt. It holds content-less chunks back until the first content or tool-call
chunk (:meth:`StreamRun.take`), or until the provider finished an answer without any
(:meth:`StreamRun.succeed`), counts only the time a read waits for the provider towards
the idle deadline and the latency routing sees, and settles the attempt's outcome: a whole
answer with the provider's usage (or tokens counted locally, marked estimated), a failure
billed only when the provider began answering or accepted the request before the stream was
cut (its input then counted locally, marked estimated), or the partial answer of a stream cut
after content reached the caller (:class:`~policyroute.errors.StreamInterruptedError`).

Example:
    >>> run = StreamRun(attempt, call.messages)  # doctest: +SKIP
    >>> run.opened(stream)  # doctest: +SKIP
    >>> for chunk in stream:  # doctest: +SKIP
    ...     for ready in run.take(chunk):
    ...         yield StreamDelta(ready)
    >>> for ready in run.succeed(stream):  # doctest: +SKIP
    ...     yield StreamDelta(ready)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from policyroute._lazy import import_litellm
from policyroute.costs.actual import charged_usage, mark_usage_estimated, usage_estimated
from policyroute.costs.redact import param_secrets
from policyroute.errors import ErrorClass, ProviderError, StreamInterruptedError
from policyroute.execution.attempt import AttemptRun
from policyroute.execution.call import CallState
from policyroute.execution.classify import NO_FINISH_REASON, make_error
from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, Usage
from policyroute.execution.response_cache import from_cache
from policyroute.execution.result import CallResult
from policyroute.execution.stream_choices import (
    assemble,
    first_choice_text,
    first_choice_tool_calls,
)
from policyroute.execution.stream_deadlines import (
    first_token_message,
    idle_message,
    remaining,
    timeout_error,
)
from policyroute.execution.stream_hidden import NO_HIDDEN_PARAMS, hidden_params_of
from policyroute.execution.stream_io import (
    held_usage,
    is_litellm_stream,
    provider_accepted,
    provider_finished,
    reported_usage,
)
from policyroute.execution.stream_refusal import keep_refusals
from policyroute.execution.usage import (
    all_choices_finished,
    count_answer,
    has_content,
    has_finish_reason,
    has_reasoning,
    has_role,
    is_impossible,
    prompt_counted,
    repair_usage,
    set_usage,
    usage_of,
)

__all__ = ["StreamRun"]

_log = logging.getLogger("policyroute.execution")

# Failures that end a stream without a word from the provider: the connection dropped or a
# deadline passed. Its other failures (an error event, a body that is not a stream) are its
# own answer, and bill only if it began answering.
_CUT_CLASSES: frozenset[ErrorClass] = frozenset({"connection", "timeout"})


class StreamRun(AttemptRun):
    """What one streamed attempt has seen so far."""

    __slots__ = (
        "_hidden",
        "accepted",
        "answering_at",
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

    streamed = True

    def __init__(self, attempt: AttemptInfo, messages: list[Any]) -> None:
        super().__init__(attempt)
        self.messages = messages
        self.chunks: list[Any] = []
        self.first_at: float | None = None
        # When the provider began answering: its first content or reasoning. A model that
        # thinks before it writes is answering, and is held to the idle deadline from then.
        self.answering_at: float | None = None
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
        # Whether the provider accepted the request (a 2xx status), noted after each read:
        # litellm's wrapper forgets it when it is closed, before the attempt is settled.
        self.accepted = False
        self.stream: Any = None  # the provider's stream, once opened
        self._hidden: Mapping[str, Any] = NO_HIDDEN_PARAMS

    def opened(self, stream: Any) -> None:
        """The provider's stream is open (its first read is over)."""
        self.stream = stream
        if is_litellm_stream(stream):
            keep_refusals(stream)  # litellm drops OpenAI's streamed refusals
        # Taken once: litellm fills its wrapper's ``_hidden_params`` as it opens the stream.
        self._hidden = hidden_params_of(stream, param_secrets(self.attempt.params))
        # A stream litellm replays from its response cache: no provider is reached.
        self.cache_hit = from_cache(self._hidden)
        self.read_ends()

    @property
    def hidden_params(self) -> Mapping[str, Any]:
        """litellm's ``_hidden_params`` of this attempt's stream (``model_id``, ``api_base``,
        the provider's response headers...) as it opened, read-only and without credentials;
        empty before it opened or for a stream that has none (an injected callable's)."""
        return self._hidden

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
        if not self.accepted and self.stream is not None:
            self.accepted = provider_accepted(self.stream)

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
        reasoning = not content and has_reasoning(chunk)
        if content or reasoning or usage is not None or has_finish_reason(chunk):
            self.progress_at = time.perf_counter()
            self.waited_s = 0.0
            if self.answering_at is None and (content or reasoning):
                self.answering_at = self.progress_at
        if content or has_role(chunk) or (usage is not None and usage.total_tokens > 0):
            self.began = True
        if self.first_at is not None:
            return [chunk]
        if not content:
            return []
        self.first_at = self.progress_at
        return self.chunks[:]

    def gap_limit(self, first_token: float | None, idle: float | None) -> float | None:
        """The longest wait allowed between chunks that make progress, once the provider is
        answering: ``idle``; while it only thinks and no ``idle`` is set, ``first_token``
        (thinking that stalls is held to the deadline of an answer that never starts)."""
        if idle is None and self.first_at is None:
            return first_token
        return idle

    def deadline(self, first_token: float | None, idle: float | None) -> tuple[float | None, str]:
        """How long the next read may wait (``None``: no limit) and what a timeout says."""
        if self.answering_at is None:
            return remaining(first_token, self.started), first_token_message(first_token)
        gap = self.gap_limit(first_token, idle)
        return (None if gap is None else gap - self.waited_s), idle_message(gap)

    def deadline_error(self, first_token: float | None, idle: float | None) -> ProviderError | None:
        """A timeout error if the answer made no progress in time (sync streams)."""
        now = time.perf_counter()
        if self.answering_at is None:
            if first_token is not None and now - self.started > first_token:
                return timeout_error(first_token_message(first_token))
            return None
        gap = self.gap_limit(first_token, idle)
        if gap is not None and self.idle_s() > gap:
            return timeout_error(idle_message(gap))
        return None

    def succeed(self, stream: Any) -> list[Any]:
        """The stream ended: assemble the answer (an error if the provider never said the
        answer was finished, or if no content ever came and no choice was finished); return
        the chunks still to pass on.

        An answer the provider finished without any content (a stop sequence at its very
        start, a reasoning model whose ``max_tokens`` all went to reasoning) is an answer, as
        it is unstreamed: its chunks, held back while no content came, are passed on now."""
        held: list[Any] = []
        if self.first_at is None:
            if not (self._finished(stream) and provider_finished(stream)):
                raise make_error("malformed_response", "the stream ended without any content")
            self.first_at = self.progress_at
            held = self.chunks[:]
        elif not provider_finished(stream):
            raise make_error("malformed_response", NO_FINISH_REASON)
        self._complete()
        return held

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
        self._count_locally(response)

    def _count_locally(self, response: Any) -> None:
        """Give ``response`` its tokens counted locally, marked estimated: the input the
        provider reported when the stream began (:func:`held_usage`), else the whole prompt as
        the budget's estimate counts it, tools included (litellm's own count of an assembled
        stream counts the messages only); the answer from its text."""
        held = held_usage(self.stream)
        if held is None:
            held = Usage(input_tokens=prompt_counted(self.attempt, self.messages))
        model = self.attempt.candidate.model
        set_usage(response, count_answer(response, model, self.messages, held))
        mark_usage_estimated(response)

    def failure_outcome(self, error: ProviderError) -> AttemptOutcome:
        self._take_held_usage()
        return AttemptOutcome(
            status="error" if self.first_at is None else "interrupted",
            error=error,
            error_class=error.error_class,
            usage=self.usage,
            provider_billed=self._billed(error.error_class in _CUT_CLASSES),
        )

    def finalize(self) -> AttemptOutcome:
        outcome = super().finalize()
        if outcome.status == "cancelled":
            self._take_held_usage()
            outcome.usage = self.usage
            outcome.provider_billed = self._billed(cut=True)
        if self.first_at is not None:
            if outcome.time_to_first_token_s is None:
                outcome.time_to_first_token_s = self.first_at - self.started
            if outcome.response is None:
                # Cut or abandoned after content arrived: the provider bills what it sent,
                # so accounting prices the partial answer, not just the prompt.
                outcome.response = self._partial_response()
        return outcome

    def _billed(self, cut: bool) -> bool:
        """Whether the provider most likely billed this failed or abandoned attempt.

        It did once it began answering. It most likely did too when it accepted the request
        (a 2xx status) and the stream was then ``cut`` (dropped, past a deadline, abandoned)
        before any of its chunks reached policyroute: the provider was processing the input,
        and the chunk saying so can be lost with the cut. aiohttp, which litellm's async
        transport uses, raises a connection's end before handing over bytes already
        received with it (``StreamReader.read``), so Anthropic's ``message_start`` can
        vanish with the cut and its usage with it. Nothing seen, nothing reported: the
        accounting then charges the input counted locally and marks it estimated. A stream
        litellm replays from its response cache was never sent: it is not billed.
        """
        if self.cache_hit:
            return False
        return self.began or (cut and self.accepted)

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
        # One message per choice: litellm's builder alone merges the choices of n > 1.
        response = assemble(self.chunks, self.messages, import_litellm().stream_chunk_builder)
        if response is not None:
            repair_usage(response, self.attempt.candidate.model, self.messages, self.attempt)
        return response

    def _partial_response(self) -> Any:
        try:
            response = self._assemble()
            if response is not None and self.usage is None and not usage_estimated(response):
                # No usage from the provider: what litellm's builder counted leaves out the
                # tools and schema the provider bills as input.
                self._count_locally(response)
            return response
        except Exception:  # accounting then prices the prompt and the usage seen
            _log.debug("could not assemble a partial stream", exc_info=True)
            return None

    def answer(self, call: CallState) -> CallResult | ProviderError:
        """As :meth:`AttemptRun.answer`; raises once content reached the caller."""
        if self.error is not None and self.first_at is not None:
            raise self._interrupted(call, self.error)
        return super().answer(call)

    def _interrupted(self, call: CallState, cause: ProviderError) -> StreamInterruptedError:
        # What the receipt charges: the provider's counts, else (or for the output it never
        # reported) the ones counted locally. finalize() has assembled the partial answer.
        usage, estimated = charged_usage(self.attempt, self.outcome)
        partial = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        cause_class: ErrorClass = cause.error_class
        err = StreamInterruptedError(
            f"stream from deployment '{cause.deployment}' broke after content reached the"
            f" caller ({cause_class}): {cause}",
            partial_text=first_choice_text(self.chunks),
            partial_tool_calls=first_choice_tool_calls(self.chunks),
            partial_usage=partial,
            usage_estimated=estimated,
            cause_class=cause_class,
            deployment=cause.deployment,
            model=cause.model,
            status_code=cause.status_code,
        )
        err.__cause__ = cause
        call.fail(err)
        return err
