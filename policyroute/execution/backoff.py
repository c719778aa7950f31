"""How long to wait before retrying the same deployment.

A provider's ``Retry-After`` is honoured (capped at ``retry_after_max``), and so is, for a rate
limit without one, the reset its rate-limit headers announce (see
:mod:`policyroute.execution.ratelimit_headers`). Otherwise the wait is exponential with full
jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform draw between 0 and
``min(max, initial * multiplier ** retry)``, which spreads the retries of many clients that
failed together.

Example:
    >>> import random
    >>> from policyroute.policy.model import RetrySpec, BackoffSpec
    >>> spec = RetrySpec(backoff=BackoffSpec(initial=0.5, max=8, multiplier=2, jitter=False))
    >>> [backoff_delay(spec, n) for n in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    >>> backoff_delay(spec, 0, retry_after=90.0)
    30.0
"""

from __future__ import annotations

import random

from policyroute.errors import ProviderError
from policyroute.execution.hooks import WaitSource
from policyroute.policy.model import RetrySpec

__all__ = ["backoff_delay", "wait_source"]

_SHARED_RNG = random.Random()


def backoff_delay(
    spec: RetrySpec,
    retry: int,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to sleep before retry number ``retry`` (0 for the first retry).

    ``retry_after`` is what the provider asked for, if anything (its ``Retry-After``, or the
    reset of the rate limit that refused the call); it wins over the computed backoff, capped
    at ``spec.retry_after_max``. ``rng`` makes the jitter reproducible.

    Example:
        >>> import random
        >>> from policyroute.policy.model import RetrySpec
        >>> 0.0 <= backoff_delay(RetrySpec(), 2, rng=random.Random(7)) <= 2.0
        True
    """
    if retry_after is not None:
        return max(0.0, min(retry_after, spec.retry_after_max))
    b = spec.backoff
    # Cap the exponent before computing so huge retry counts cannot overflow a float.
    ceiling = float(min(b.max, b.initial * b.multiplier ** min(retry, 64)))
    if not b.jitter:
        return max(0.0, ceiling)
    return (rng or _SHARED_RNG).uniform(0.0, max(0.0, ceiling))


def wait_source(error: ProviderError) -> WaitSource:
    """Where :func:`backoff_delay`'s wait after ``error`` comes from.

    The provider's hint when it gave one (``error.retry_after``): its ``Retry-After``, or the
    reset its rate-limit headers announced, as :func:`~policyroute.execution.classify.classify`
    found it; a hint of unknown origin (an error built by hand) counts as ``Retry-After``.
    Otherwise the backoff.

    Example:
        >>> from policyroute.errors import RateLimitError
        >>> wait_source(RateLimitError("429")), wait_source(RateLimitError("429", retry_after=2))
        ('backoff', 'retry_after')
    """
    if error.retry_after is None:
        return "backoff"
    return error.retry_after_source or "retry_after"
