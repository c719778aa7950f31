"""How fast a deployment answers, apart from how long its answers happen to be.

An unstreamed answer takes a fixed part (network, queueing, reading the prompt) plus a part
per output token (generation)::

    seconds ≈ base + per_token * output_tokens

:class:`AnswerFit` estimates ``base`` and ``per_token`` for one deployment from its answers,
by exponentially weighted least squares (newer answers weigh more, as in the tracker's other
moving averages). ``fastest`` then compares deployments at one answer length for all, so a
deployment that happened to get long answers does not look slow.

Least squares needs answers of different lengths: a deployment whose answers were all about
as long cannot tell its fixed part from its per-token part. The fit is therefore drawn
(ridge regression) towards a prior that takes the fixed part to be worth
:data:`PRIOR_BASE_TOKENS` tokens of generation; the prior weighs as much as a spread of
:data:`PRIOR_SPREAD_TOKENS` tokens in the answers' lengths, so real traffic, whose answers vary
by hundreds of tokens, soon outweighs it. With answers of one length only, the estimate is
``seconds * (length + PRIOR_BASE_TOKENS) / (answer length + PRIOR_BASE_TOKENS)``. The slope
is kept within ``[0, mean seconds / mean tokens]``, so neither part goes negative on noise.

Example:
    >>> fit = AnswerFit.first(1.2, 100)
    >>> for seconds, tokens in [(2.2, 200), (1.2, 100), (2.2, 200), (1.2, 100)]:
    ...     fit = fit.fold(seconds, tokens, 0.5)
    >>> round(fit.base, 2), round(fit.per_token, 4), round(fit.seconds_for(500), 2)
    (0.21, 0.0099, 5.17)
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["PRIOR_BASE_TOKENS", "PRIOR_SPREAD_TOKENS", "AnswerFit"]

PRIOR_BASE_TOKENS: Final = 32.0
"""The prior's fixed part, in tokens of generation (a few hundred milliseconds at the usual
decoding speeds)."""

PRIOR_SPREAD_TOKENS: Final = 16.0
"""How much spread in answer lengths (a standard deviation, in tokens) the prior weighs as."""

_PRIOR_WEIGHT: Final = PRIOR_SPREAD_TOKENS * PRIOR_SPREAD_TOKENS


class AnswerFit(NamedTuple):
    """Moving moments of one deployment's (output tokens, seconds) and the line they fit.

    ``base`` and ``per_token`` are computed when an answer is folded in, so reading the
    estimate (:meth:`seconds_for`, on every routing decision) is one multiply-add. A named
    tuple rather than a frozen dataclass: one is built per answer, on the executor's hot
    path, and a frozen dataclass takes five times as long to build.
    """

    tokens: float  # moving mean of output tokens
    seconds: float  # moving mean of latency
    spread: float  # moving variance of output tokens
    co: float  # moving covariance of output tokens and latency
    base: float
    per_token: float

    @classmethod
    def first(cls, seconds: float, tokens: float) -> AnswerFit:
        """The fit after one answer, ``seconds`` long with ``tokens`` output tokens."""
        return cls._solved(tokens, seconds, 0.0, 0.0)

    def fold(self, seconds: float, tokens: float, alpha: float) -> AnswerFit:
        """The fit with one more answer, weighted ``alpha`` (the incremental form of
        exponentially weighted mean, variance and covariance)."""
        dn = tokens - self.tokens
        ds = seconds - self.seconds
        keep = 1.0 - alpha
        return self._solved(
            self.tokens + alpha * dn,
            self.seconds + alpha * ds,
            keep * (self.spread + alpha * dn * dn),
            keep * (self.co + alpha * dn * ds),
        )

    def seconds_for(self, tokens: float) -> float:
        """Expected seconds for an answer of ``tokens`` output tokens."""
        return self.base + self.per_token * tokens

    @classmethod
    def _solved(cls, tokens: float, seconds: float, spread: float, co: float) -> AnswerFit:
        prior = seconds / (tokens + PRIOR_BASE_TOKENS)
        slope = (co + _PRIOR_WEIGHT * prior) / (spread + _PRIOR_WEIGHT)
        # A slope past mean seconds / mean tokens would make the fixed part negative.
        ceiling = seconds / tokens if tokens > 1.0 else seconds
        slope = min(max(slope, 0.0), ceiling)
        return cls(tokens, seconds, spread, co, seconds - slope * tokens, slope)
