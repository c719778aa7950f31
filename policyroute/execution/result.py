"""What the executor hands back: the answer plus how it was obtained.

Example:
    >>> result = executor.complete(request)  # doctest: +SKIP
    >>> result.deployment, [a.status for a in result.attempts]  # doctest: +SKIP
    ('mini', ('error', 'ok'))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from policyroute.errors import ErrorClass
from policyroute.execution.hooks import AttemptStatus, Usage, WaitSource
from policyroute.routing.decision import Candidate, Decision

__all__ = ["AttemptRecord", "CallResult", "StreamDelta", "StreamDone", "StreamEvent"]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a call: which deployment, how it ended, how long it took, its cost.

    ``retry`` counts tries of this deployment from 0; ``number`` counts attempts of the
    call from 1. ``waited_s`` is how long the executor slept before the attempt (the wait it
    chose, capped by ``retry_after_max``; 0 when it did not wait) and ``wait_source`` why:
    the provider's ``Retry-After``, its rate-limit reset headers, or the backoff.
    ``cache_hit``: litellm answered it from its response cache, reaching no provider; its
    dict then says ``"cache_hit": True`` (the key is left out otherwise).

    Example:
        >>> from decimal import Decimal
        >>> AttemptRecord("mini", "openai/gpt-4o-mini", "ok", None, 0.42, 1, Decimal(0),
        ...               number=2, waited_s=0.3, wait_source="rate_limit_reset").as_dict()
        ... # doctest: +NORMALIZE_WHITESPACE
        {'number': 2, 'deployment': 'mini', 'model': 'openai/gpt-4o-mini', 'status': 'ok',
         'error_class': None, 'latency_s': 0.42, 'retry': 1, 'waited_s': 0.3,
         'wait_source': 'rate_limit_reset', 'cost': '0'}
    """

    alias: str
    model: str
    status: AttemptStatus
    error_class: ErrorClass | None
    latency_s: float
    retry: int
    cost: Decimal
    number: int = 0
    waited_s: float = 0.0
    wait_source: WaitSource | None = None
    cache_hit: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (cost as a decimal string)."""
        shown: dict[str, Any] = {
            "number": self.number,
            "deployment": self.alias,
            "model": self.model,
            "status": self.status,
            "error_class": self.error_class,
            "latency_s": self.latency_s,
            "retry": self.retry,
            "waited_s": self.waited_s,
            "wait_source": self.wait_source,
            "cost": str(self.cost),
        }
        if self.cache_hit:
            shown["cache_hit"] = True
        return shown


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful call.

    Attributes:
        response: litellm's ``ModelResponse`` (for a stream: assembled from the chunks).
        decision: the routing decision.
        route: the matched route's name.
        deployment: alias of the deployment that answered.
        model: litellm model string that answered.
        attempts: every attempt, failed ones included.
        cost: total cost of the call's attempts, as accounting settled it.
        usage: token usage of the answering attempt.
        request_id: the request's id.
        time_to_first_token_s: for streams, seconds from the start of the answering attempt
            to its first content token.
        candidate: the deployment that answered (``None`` when built by hand).
    """

    response: Any
    decision: Decision
    route: str
    deployment: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cost: Decimal
    usage: Usage
    request_id: str
    time_to_first_token_s: float | None = None
    candidate: Candidate | None = None

    @property
    def cache_hit(self) -> bool:
        """Whether litellm answered the call from its response cache (its last attempt)."""
        return bool(self.attempts) and self.attempts[-1].cache_hit

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary (what ``response._hidden_params["policyroute"]`` holds);
        ``"cache_hit": True`` when litellm answered from its response cache (:attr:`cache_hit`;
        left out otherwise). ``usage`` is the answer's, as the response says it: a cache hit's
        cost is 0, whatever tokens its stored answer counts."""
        u = self.usage
        shown: dict[str, Any] = {
            "request_id": self.request_id,
            "route": self.route,
            "deployment": self.deployment,
            "model": self.model,
            "cost": str(self.cost),
            "usage": {
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "cache_write_tokens": u.cache_write_tokens,
                "reasoning_tokens": u.reasoning_tokens,
            },
            "time_to_first_token_s": self.time_to_first_token_s,
            "attempts": [a.as_dict() for a in self.attempts],
        }
        if self.cache_hit:
            shown["cache_hit"] = True
        return shown


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """One chunk of a streamed answer (litellm's ``ModelResponseStream``, untouched).

    ``hidden_params``: litellm's ``_hidden_params`` of the stream the chunk came from, the
    answering attempt's (:attr:`StreamRun.hidden_params
    <policyroute.execution.stream_run.StreamRun.hidden_params>`); ``None`` when not known.
    """

    chunk: Any
    hidden_params: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The last event of a stream that completed; never sent for a broken stream."""

    result: CallResult


StreamEvent: TypeAlias = StreamDelta | StreamDone
