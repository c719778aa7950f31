"""Answers that litellm served from its own response cache, not from the provider.

An application can turn on litellm's response cache (``litellm.cache =
litellm.Cache(type="local")``, a Redis cache, ...), which policyroute's calls go through like
any other litellm call: an identical request (same model, messages and parameters, unless the
call says ``caching=False`` or ``cache={"no-cache": True}``) is then answered from the cache and
no provider is reached. litellm marks such an answer with ``_hidden_params["cache_hit"] =
True``: on the ``ModelResponse`` of a call that is not streamed, and on the stream it returns
for a streamed one (its wrapper replays the stored answer as chunks), sync and async alike.

Such an attempt is no provider call: it is not billed and costs nothing (its budget
reservation is given back whole, its receipts say ``cache_hit: true`` and cost 0), and its
latency and outcome say nothing about the deployment, so neither ``fastest``'s figures nor
the circuit breaker see it.

Example:
    >>> from_cache({"cache_hit": True, "cache_key": "9f2c"})
    True
    >>> from_cache({"response_cost": 0.0012}), from_cache(None)
    (False, False)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["from_cache"]


def from_cache(hidden_params: object) -> bool:
    """Whether litellm's ``_hidden_params`` (a response's or a stream's) mark an answer
    litellm served from its response cache."""
    return isinstance(hidden_params, Mapping) and hidden_params.get("cache_hit") is True
