"""Whether a failed call is worth making again: a ``retry_on`` predicate for LangGraph and
LangChain.

policyroute already retries and falls over inside a call, as the policy says. A retry around
the call (LangGraph's ``RetryPolicy`` on a node, LangChain's ``ModelRetryMiddleware``) runs it
again from the start: worth it after a transient failure, a waste (and for a refused budget, a
repeated refusal) otherwise. The errors a retry cannot fix derive from a builtin exception
LangGraph's default ``retry_on`` does not retry (see :mod:`policyroute.errors`);
:func:`retryable` also looks into an :class:`~policyroute.errors.AllCandidatesFailedError` to
tell whether any of its causes was transient.

Example:
    >>> from policyroute.errors import AllCandidatesFailedError, ContextWindowExceededError
    >>> from policyroute.errors import RateLimitError
    >>> retryable(RateLimitError("429"))
    True
    >>> too_long = [ContextWindowExceededError("too long"), ContextWindowExceededError("also")]
    >>> retryable(AllCandidatesFailedError("all failed", errors=too_long))
    False
    >>> from langgraph.types import RetryPolicy  # doctest: +SKIP
    >>> builder.add_node("agent", agent, retry_policy=RetryPolicy(retry_on=retryable))
    ... # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from policyroute.errors import (
    AllCandidatesFailedError,
    BudgetStoreError,
    ErrorClass,
    NoCandidateError,
    PolicyRouteError,
    ProviderError,
)

__all__ = ["TRANSIENT", "retryable"]

TRANSIENT: frozenset[ErrorClass] = frozenset(
    {"rate_limit", "timeout", "server_error", "connection", "malformed_response"}
)
"""The provider failures that the same call may not meet again a moment later."""


def retryable(exc: BaseException) -> bool:
    """Whether making the call that raised ``exc`` again may succeed.

    - a provider failure: when its class is transient (:data:`TRANSIENT`: rate limit,
      timeout, server or connection error, an unreadable answer; a broken stream by the class
      of what broke it); an :class:`~policyroute.errors.AllCandidatesFailedError` when any of
      its candidates failed so;
    - :class:`~policyroute.errors.BudgetStoreError` (the store could not be reached; nothing
      was sent) and a :class:`~policyroute.errors.NoCandidateError` whose candidates are
      circuit-open (they are tried again after the breaker's cooldown): yes;
    - any other policyroute error (a budget refusal, a malformed request, a bad policy, no
      matching route, a request every provider refuses, refused credentials): no;
    - any other exception: what LangGraph's ``default_retry_on`` says, and yes where
      LangGraph is not installed.

    Example:
        >>> from policyroute.errors import BudgetExceeded
        >>> from decimal import Decimal
        >>> retryable(BudgetExceeded(budget="daily", scope="u1", limit=Decimal(1),
        ...     spent=Decimal(1), reserved=Decimal(0), estimate=Decimal("0.1")))
        False
    """
    if isinstance(exc, AllCandidatesFailedError):
        if exc.errors:
            return any(retryable(error) for error in exc.errors)
        return exc.error_class in TRANSIENT
    if isinstance(exc, ProviderError):
        return exc.error_class in TRANSIENT
    if isinstance(exc, NoCandidateError):
        return bool(exc.skipped)
    if isinstance(exc, BudgetStoreError):
        return True
    if isinstance(exc, PolicyRouteError):
        return False
    if not isinstance(exc, Exception):
        return False
    try:
        from langgraph.types import RetryPolicy
    except ImportError:
        return True
    # The default of RetryPolicy's ``retry_on`` is LangGraph's ``default_retry_on``, which
    # ``langgraph.types`` imports but does not export.
    default = RetryPolicy().retry_on
    if isinstance(default, Sequence):
        return isinstance(exc, tuple(default))
    if isinstance(default, type):
        return isinstance(exc, default)
    return bool(default(exc))
