"""How one attempt ended, streamed or not: its outcome and error, built without I/O.

An :class:`AttemptRun` starts its clock when created. The driver hands it the provider's
answer (:meth:`AttemptRun.answered`) or the exception it raised (:meth:`AttemptRun.failed`),
settles :meth:`AttemptRun.finalize`'s outcome from a ``finally`` block, and returns
:meth:`AttemptRun.answer`. An attempt that reaches neither (its task was cancelled, its
stream abandoned) settles as ``cancelled``. The sync and async drivers differ only in how
they call the provider.

A failed or cancelled attempt is free unless the provider processed its request: a request
that timed out or was cancelled while the client waited for the provider's answer (not while
it connected or wrote it, nor before it was sent: :func:`~.request_sent.request_sent`) is
settled ``provider_billed`` without usage, and accounting charges its prompt as the budget
estimate counts it, marked estimated. The driver hands such an end to
:meth:`AttemptRun.stopped` when it is no ``Exception`` (a cancellation, ``KeyboardInterrupt``).

Example:
    >>> run = AttemptRun(attempt)  # doctest: +SKIP
    >>> try:  # doctest: +SKIP
    ...     run.answered(completion(messages=call.messages, **admission.params))
    ... except Exception as exc:
    ...     run.failed(exc)
    ... except BaseException as exc:
    ...     run.stopped(exc)
    ...     raise
    ... finally:
    ...     executor.settle(call, admission, run)  # settles run.finalize()
    >>> run.answer(call)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar

from policyroute._fields import attribute
from policyroute.costs.redact import param_secrets
from policyroute.errors import MalformedResponseError, ProviderError
from policyroute.execution.classify import classify, make_error
from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, Usage
from policyroute.execution.request_sent import request_sent
from policyroute.execution.response_cache import from_cache
from policyroute.execution.usage import checked_usage

if TYPE_CHECKING:
    from policyroute.execution.call import CallState
    from policyroute.execution.result import CallResult

__all__ = ["AttemptRun"]


class AttemptRun:
    """The outcome of one attempt so far (``cancelled`` until told otherwise)."""

    __slots__ = (
        "_modules",
        "attempt",
        "cache_hit",
        "error",
        "outcome",
        "sent_unanswered",
        "started",
    )

    streamed: ClassVar[bool] = False
    """Whether the attempt streams: the kind its deployment's in-flight count is kept under."""

    def __init__(self, attempt: AttemptInfo) -> None:
        self.attempt = attempt
        self._modules = len(sys.modules)
        self.started = time.perf_counter()
        self.outcome = AttemptOutcome(status="cancelled")
        self.error: ProviderError | None = None
        # The attempt timed out after its request reached the provider, which bills it.
        self.sent_unanswered = False
        # litellm answered from its own response cache: no provider was reached (finalize).
        self.cache_hit = False

    def answered(self, response: Any) -> None:
        """The provider answered (not streamed); raises if the answer has no choices."""
        hidden = attribute(response, "_hidden_params")
        self.cache_hit = from_cache(hidden)
        if not getattr(response, "choices", None):
            raise MalformedResponseError(
                f"provider answered without choices ({type(response).__name__})"
            )
        attempt = self.attempt
        usage = checked_usage(
            response, attempt.candidate.model, attempt.call.request.messages, attempt
        )
        call_id = hidden.get("litellm_call_id") if isinstance(hidden, dict) else None
        self.outcome = AttemptOutcome(
            status="ok",
            response=response,
            usage=usage or Usage(),
            provider_billed=True,
            litellm_call_id=call_id,
        )

    def failed(self, exc: BaseException) -> None:
        """The attempt raised ``exc``: classify it and remember it as the attempt's error."""
        candidate = self.attempt.candidate
        error = classify(
            exc,
            deployment=candidate.alias,
            model=candidate.model,
            secrets=param_secrets(self.attempt.params),
        )
        self.error = error
        # Only a timeout of the client's own: a refusal (a 408 too) is the provider's answer;
        # a connection that failed is left free, though one reset after the request went out
        # may have been billed (the README's rule: charged only on evidence of a read).
        self.sent_unanswered = error.error_class == "timeout" and request_sent(exc)
        self.outcome = self.failure_outcome(error)

    def timed_out(self, exc: BaseException, timeout: float) -> None:
        """The attempt's response was cut at its deadline (``timeout`` plus a grace) while
        its body was read, and the read raised ``exc``: a timeout, billed, since the provider
        had answered the request's headers (:mod:`~policyroute.execution.unary_deadline`)."""
        self.failed(exc)  # ``exc``, classified and scrubbed, becomes the cause
        candidate = self.attempt.candidate
        error = make_error(
            "timeout",
            f"deployment '{candidate.alias}': no whole answer within the request timeout of"
            f" {timeout:g}s: the provider kept sending its answer too slowly for it (httpx's"
            " read timeout bounds each read, not the answer), and the call stopped reading",
            deployment=candidate.alias,
            model=candidate.model,
        )
        error.__cause__ = self.error
        self.error = error
        self.sent_unanswered = True
        self.outcome = self.failure_outcome(error)

    def stopped(self, exc: BaseException) -> None:
        """The attempt was ended by ``exc``, no ``Exception`` (its task cancelled, a
        ``KeyboardInterrupt``): it stays ``cancelled``, billed if its request was sent.

        Example:
            >>> run.stopped(asyncio.CancelledError())  # doctest: +SKIP
            >>> run.finalize().provider_billed  # doctest: +SKIP
            False
        """
        if self.outcome.status == "cancelled":
            self.outcome.provider_billed = request_sent(exc)

    def failure_outcome(self, error: ProviderError) -> AttemptOutcome:
        """The outcome of a failed attempt (streams add what arrived before the failure): a
        timeout after the request was sent is billed, its usage unknown."""
        return AttemptOutcome(
            status="error",
            error=error,
            error_class=error.error_class,
            provider_billed=self.sent_unanswered,
        )

    def finalize(self) -> AttemptOutcome:
        """The outcome to settle, with its latency. An answer from litellm's response cache
        (:mod:`~policyroute.execution.response_cache`) is never billed, however it ended."""
        outcome = self.outcome
        outcome.latency_s = time.perf_counter() - self.started
        if self.cache_hit:
            outcome.cache_hit = True
            outcome.provider_billed = False
        return outcome

    def provider_latency(self) -> float | None:
        """The attempt's time spent waiting for the provider; ``None``: all of it (a call
        that is not streamed has no consumer in between)."""
        return None

    def set_up_meanwhile(self) -> bool:
        """Whether the process imported code while the attempt ran, which makes its times
        the process's, not the deployment's: litellm imports a provider's code and builds its
        clients on first use, a second or more that the first call of each kind (sync or
        async, streamed or not) pays once.

        Example:
            >>> run = AttemptRun(attempt)  # doctest: +SKIP
            >>> import fractions; run.set_up_meanwhile()  # doctest: +SKIP
            True
        """
        return len(sys.modules) != self._modules

    def answer(self, call: CallState) -> CallResult | ProviderError:
        """The call's result if the attempt answered, else its classified error."""
        if self.error is not None:
            return self.error
        outcome = self.outcome
        return call.result(
            self.attempt, outcome.response, outcome.usage or Usage(), outcome.time_to_first_token_s
        )
