"""The one error tree of policyroute.

Every exception policyroute raises derives from :class:`PolicyRouteError`. Problems with a
policy are found before any call is made and are kept apart from refusals at run time (budget)
and from failures of the providers themselves::

    PolicyRouteError
    ├── PolicyError                     the policy file is wrong (found before any call)
    │   └── PolicyValidationError         carries every Diagnostic found, not just the first
    ├── RequestError                    the request handed to policyroute is malformed
    ├── RoutingError                    the policy has no answer for this request
    │   └── NoCandidateError              every candidate was filtered out or is circuit-open
    ├── ModelRefusalError               the model refused to give the structured output asked
    ├── BudgetError
    │   ├── BudgetExceeded                refused before anything was sent to a provider
    │   └── BudgetStoreError              the budget store could not be read or written
    ├── ReceiptError                    a receipt could not be written
    │   └── SinksRefusedError             some of a MultiSink's sinks refused it (names them)
    └── ProviderError                   a provider call failed (carries the error class)
        ├── RateLimitError                429
        ├── ProviderTimeoutError          request, first-token or idle timeout
        ├── ServerError                   5xx, Anthropic's 529 overloaded included
        ├── ProviderConnectionError       refused, reset, DNS
        ├── ContextWindowExceededError    the prompt does not fit the model
        ├── ContentPolicyError            the provider's content filter refused
        ├── AuthenticationError           401 / 403, 402 (cannot pay), 451 (region refused)
        ├── NotFoundError                 404 / 410: no such model or endpoint at the deployment
        ├── BadRequestError               any other 4xx
        ├── MalformedResponseError        the provider answered something unreadable
        ├── StreamInterruptedError        a stream broke mid-answer, tokens already delivered
        └── AllCandidatesFailedError      every candidate and retry was used up
            └── AllCandidatesRefusedError     every candidate refused the request itself

Errors that running the same call again cannot fix also derive from the builtin exception
that says what went wrong, so that code (and LangGraph's default ``RetryPolicy``, whose
``default_retry_on`` retries every exception but a few builtin kinds) does not retry them:

- ``ValueError``: ``RequestError``, ``BadRequestError``, ``ContextWindowExceededError``,
  ``ContentPolicyError`` and ``ModelRefusalError``: the request itself is what the provider,
  the model or policyroute refused;
- ``LookupError``: ``RoutingError`` (no route or no candidate for the request) and
  ``NotFoundError`` (no such model or endpoint at the deployment);
- ``PermissionError``: ``AuthenticationError`` (credentials refused, account cannot pay,
  region refused);
- ``RuntimeError``: ``PolicyError`` (not ``ValueError``: pydantic would wrap one raised while
  a ``ChatPolicyRoute`` is built in its ``ValidationError``) and ``BudgetExceeded`` (the
  budget refuses the call until its window moves on).

- ``ValueError`` too: ``AllCandidatesRefusedError``, raised instead of its parent when every
  attempt failed so (the prompt too long or filtered everywhere, every key refused...) and no
  candidate was skipped circuit-open.

Transient failures (rate limits, timeouts, server and connection errors, an unreadable
answer, a broken stream, an unavailable budget store) have no such base, and
``AllCandidatesFailedError`` none either: some of its causes were transient.
:func:`policyroute.retries.retryable` tells them apart, for ``RetryPolicy(retry_on=...)``.

Example:
    >>> from policyroute.errors import BudgetExceeded, PolicyRouteError
    >>> issubclass(BudgetExceeded, PolicyRouteError)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from policyroute._money import EXACT

if TYPE_CHECKING:
    from policyroute.policy.diagnostics import Diagnostic

__all__ = [
    "AllCandidatesFailedError",
    "AllCandidatesRefusedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "BudgetExceeded",
    "BudgetStoreError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "ErrorClass",
    "MalformedResponseError",
    "ModelRefusalError",
    "NoCandidateError",
    "NotFoundError",
    "PolicyError",
    "PolicyRouteError",
    "PolicyValidationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ReceiptError",
    "RequestError",
    "RoutingError",
    "ServerError",
    "SinksRefusedError",
    "StreamInterruptedError",
]

ErrorClass = Literal[
    "rate_limit",
    "timeout",
    "server_error",
    "connection",
    "context_window",
    "content_policy",
    "authentication",
    "not_found",
    "bad_request",
    "malformed_response",
]
"""The classes a provider failure is sorted into; the policy decides per class."""


class PolicyRouteError(Exception):
    """Base class of every error policyroute raises."""


# --------------------------------------------------------------------------- policy


class PolicyError(PolicyRouteError, RuntimeError):
    """The policy itself is wrong; raised while loading, never during a call."""


class PolicyValidationError(PolicyError):
    """A policy failed validation. ``diagnostics`` holds every problem found.

    Example:
        >>> try:
        ...     load_policy("broken.yaml")  # doctest: +SKIP
        ... except PolicyValidationError as exc:
        ...     for d in exc.diagnostics:
        ...         print(d.format())
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str | None = None) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.source = source
        errors = [d for d in self.diagnostics if d.severity == "error"]
        shown = errors or list(self.diagnostics)
        lines = [d.format() for d in shown[:20]]
        more = len(shown) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        head = f"{len(errors)} error(s) in policy" + (f" {source}" if source else "")
        super().__init__(head + ":\n  " + "\n  ".join(lines))


# --------------------------------------------------------------------------- request / routing


class RequestError(PolicyRouteError, ValueError):
    """The request handed to policyroute is malformed (messages, parameters, metadata)."""


class RoutingError(PolicyRouteError, LookupError):
    """The policy has no answer for this request (no route matched)."""


class ModelRefusalError(PolicyRouteError, ValueError):
    """The model answered a request for structured output with a refusal (OpenAI's
    ``message.refusal``) instead of data in the schema; ``refusal`` is its text, ``schema``
    the name of what was asked for. The call itself succeeded and was charged as any answer.

    Example:
        >>> str(ModelRefusalError("I can't help with that.", schema="Person"))
        "the model refused to answer as Person: I can't help with that."
    """

    def __init__(self, refusal: str, *, schema: str | None = None) -> None:
        self.refusal = refusal
        self.schema = schema
        asked = f" as {schema}" if schema else " in the requested schema"
        super().__init__(f"the model refused to answer{asked}: {refusal}")


class NoCandidateError(RoutingError):
    """A route matched, but every candidate was filtered out or is circuit-open."""

    def __init__(self, message: str, *, route: str | None = None, skipped: Sequence[str] = ()):
        self.route = route
        self.skipped = tuple(skipped)
        super().__init__(message)


# --------------------------------------------------------------------------- budgets


class BudgetError(PolicyRouteError):
    """Base class of budget errors."""


class BudgetExceeded(BudgetError, RuntimeError):
    """The call was refused before anything was sent: its worst-case cost would break a budget.

    All amounts are in USD as :class:`~decimal.Decimal`.

    Example:
        >>> exc = BudgetExceeded(
        ...     budget="per-user-daily", scope="user-1", limit=Decimal("2"),
        ...     spent=Decimal("1.9"), reserved=Decimal("0.05"), estimate=Decimal("0.2"))
        >>> exc.remaining
        Decimal('0.05')
    """

    def __init__(
        self,
        *,
        budget: str,
        scope: str,
        limit: Decimal,
        spent: Decimal,
        reserved: Decimal,
        estimate: Decimal,
        window: str | None = None,
        message: str | None = None,
    ) -> None:
        self.budget = budget
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.estimate = estimate
        self.window = window
        super().__init__(
            message
            or (
                f"budget '{budget}' (scope {scope!r}"
                + (f", window {window}" if window else "")
                # ``:f``: ``str`` writes an amount under 10^-6 with an exponent (1E-7).
                + f") would be exceeded: limit ${limit:f}, spent ${spent:f},"
                f" reserved ${reserved:f}, this call may cost up to ${estimate:f}"
            )
        )

    @property
    def remaining(self) -> Decimal:
        """What is left of the limit after spend and open reservations (never negative)."""
        left = EXACT.subtract(EXACT.subtract(self.limit, self.spent), self.reserved)
        return max(Decimal(0), left)  # exact, whatever the application's decimal context


class BudgetStoreError(BudgetError):
    """The budget store could not be read or written; the call is refused, not let through."""


# --------------------------------------------------------------------------- receipts


class ReceiptError(PolicyRouteError):
    """A receipt could not be written to its sink."""


class SinksRefusedError(ReceiptError):
    """Some of the sinks a ``MultiSink`` writes to refused a receipt; the others took it.

    ``refused`` holds the sinks that refused it, so that it is written again to those alone.

    Example:
        >>> SinksRefusedError("CallableSink: collector down", refused=["sink"]).refused
        ('sink',)
    """

    def __init__(self, message: str, refused: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.refused: tuple[Any, ...] = tuple(refused)


# --------------------------------------------------------------------------- providers


class ProviderError(PolicyRouteError):
    """A provider call failed.

    Attributes:
        error_class: the class the failure was sorted into (see :data:`ErrorClass`).
        deployment: the policy's alias of the deployment that failed, if known.
        model: the litellm model string of that deployment, if known.
        status_code: the HTTP status, if the provider answered.
        retry_after: seconds the provider asked to wait, if it said.
        retry_after_source: where ``retry_after`` was read: ``"retry_after"`` (its
            ``Retry-After`` or ``retry-after-ms`` header, or the ``retryDelay`` of Google's
            ``RetryInfo`` in its error body) or ``"rate_limit_reset"`` (the reset
            its rate-limit headers announced); ``None`` when ``retry_after`` is not set.
        attempts: the attempts made for the call so far (filled in by the executor).
        params_unsupported: litellm refused the call's parameters for this deployment's
            provider before sending (``thinking`` on gpt-4o): another deployment may take
            them, so the call moves on to it whatever ``fallback_on`` says.
        failed_locally: the attempt failed in this process, not at the provider (a module
            litellm could not import, a call parameter of the wrong type, an exception
            adapting the messages): it is a ``bad_request`` that is not retried on the same
            deployment nor counted by its circuit breaker, and the call moves on to the next
            candidate, whose provider's code may take the call.
    """

    error_class: ErrorClass = "bad_request"
    params_unsupported: bool = False
    failed_locally: bool = False
    retry_after_source: Literal["retry_after", "rate_limit_reset"] | None = None

    def __init__(
        self,
        message: str,
        *,
        deployment: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        attempts: Sequence[Any] = (),
        route: str | None = None,
    ) -> None:
        self.deployment = deployment
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.attempts = tuple(attempts)
        self.route = route
        super().__init__(message)


class RateLimitError(ProviderError):
    """The provider rate-limited the call (429)."""

    error_class: ErrorClass = "rate_limit"


class ProviderTimeoutError(ProviderError):
    """The request, the first token or the next chunk did not arrive in time."""

    error_class: ErrorClass = "timeout"


class ServerError(ProviderError):
    """The provider failed with a 5xx status (an overloaded provider's 503 or 529 too)."""

    error_class: ErrorClass = "server_error"


class ProviderConnectionError(ProviderError):
    """The connection could not be made or was reset."""

    error_class: ErrorClass = "connection"


class ContextWindowExceededError(ProviderError, ValueError):
    """The prompt does not fit the model's context window; the same model is never retried."""

    error_class: ErrorClass = "context_window"


class ContentPolicyError(ProviderError, ValueError):
    """The provider's content filter refused the request; the same model is never retried."""

    error_class: ErrorClass = "content_policy"


class AuthenticationError(ProviderError, PermissionError):
    """The provider rejected the credentials (401/403), the account cannot pay (402), or the
    provider may not serve this account or region (451)."""

    error_class: ErrorClass = "authentication"


class NotFoundError(ProviderError, LookupError):
    """The deployment has no such model or endpoint (404, 410): a retired model, a wrong
    deployment name, a model not pulled, an ``api_base`` with a wrong path. The deployment's
    doing, not the request's: by default the call moves on to the next candidate."""

    error_class: ErrorClass = "not_found"


class BadRequestError(ProviderError, ValueError):
    """The provider rejected the request as malformed (other 4xx)."""

    error_class: ErrorClass = "bad_request"


class MalformedResponseError(ProviderError):
    """The provider answered with something that is not a valid response."""

    error_class: ErrorClass = "malformed_response"


class StreamInterruptedError(ProviderError):
    """A stream failed after tokens had reached the caller, before every choice had its
    finish reason.

    The answer is incomplete and must not be taken as whole; ``partial_text`` holds the text
    received before the failure, ``partial_tool_calls`` the tool calls as far as they arrived
    (each a dict of ``index``, ``id``, ``name`` and ``arguments``, the argument fragments
    joined: JSON that may be cut anywhere), and ``partial_usage`` its ``input_tokens`` and
    ``output_tokens``: the provider's count when it sent one, else the count the receipt
    charges, made locally with litellm's token counter (``usage_estimated`` is then true). A
    failure after every finish reason arrived does not raise: the answer is complete and kept.
    """

    def __init__(
        self,
        message: str,
        *,
        partial_text: str = "",
        partial_tool_calls: Sequence[Mapping[str, Any]] = (),
        partial_usage: dict[str, int] | None = None,
        usage_estimated: bool = False,
        cause_class: ErrorClass = "connection",
        **kwargs: Any,
    ) -> None:
        self.partial_text = partial_text
        self.partial_tool_calls = [dict(call) for call in partial_tool_calls]
        self.partial_usage = dict(partial_usage or {})
        self.usage_estimated = usage_estimated
        self.error_class = cause_class
        super().__init__(message, **kwargs)


class AllCandidatesFailedError(ProviderError):
    """Every candidate deployment (and its retries) failed; ``errors`` holds each failure."""

    def __init__(self, message: str, *, errors: Sequence[ProviderError] = (), **kwargs: Any):
        self.errors = tuple(errors)
        super().__init__(message, **kwargs)
        if self.errors:
            self.error_class = self.errors[-1].error_class


class AllCandidatesRefusedError(AllCandidatesFailedError, ValueError):
    """Every attempt failed for a reason the same call would meet again (a prompt too long or
    filtered, refused credentials, no such model, a bad request) and no candidate was skipped
    circuit-open: making the call again, unchanged, cannot succeed. An
    :class:`AllCandidatesFailedError` too, and a ``ValueError``, which LangGraph's default
    ``RetryPolicy`` does not retry."""
