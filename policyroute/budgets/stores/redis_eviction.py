"""Whether a Redis server may evict budget state, which would forget spend silently.

A Redis with a memory limit and an eviction policy other than ``noeviction`` drops keys when
it fills up: a budget line evicted mid-month starts again from zero, and the budget is
exceeded without anyone being told. Every budget key carries a TTL (its window's end), so the
``volatile-*`` policies can evict them as well as the ``allkeys-*`` ones. The store checks
once, on its first reservation that reaches the server, and logs a WARNING on
``policyroute.budgets``; a server that refuses ``CONFIG GET`` (most managed services do) is
not checked.

Example:
    >>> eviction_risk({"maxmemory": "104857600", "maxmemory-policy": "allkeys-lru"})
    'maxmemory is 104857600 bytes with maxmemory-policy allkeys-lru'
    >>> eviction_risk({"maxmemory": "0", "maxmemory-policy": "allkeys-lru"}) is None
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["eviction_risk", "warn_if_evicting"]

_log = logging.getLogger("policyroute.budgets")


def eviction_risk(config: Mapping[Any, Any]) -> str | None:
    """Why the server configured as ``config`` (``CONFIG GET`` replies) may evict budget keys,
    or ``None`` if it will not (no memory limit, or ``noeviction``)."""
    values = {_text(k): _text(v) for k, v in config.items()}
    limit = values.get("maxmemory", "0")
    policy = values.get("maxmemory-policy", "noeviction")
    if limit in ("", "0") or policy == "noeviction":
        return None
    return f"maxmemory is {limit} bytes with maxmemory-policy {policy}"


def warn_if_evicting(config: Mapping[Any, Any], where: str) -> None:
    """Log a WARNING naming the store at ``where`` if ``config`` lets Redis evict its keys."""
    risk = eviction_risk(config)
    if risk is not None:
        _log.warning(
            "redis budget store %s may lose budget state: %s, so Redis can evict budget keys"
            " when memory fills and the budgets they hold start again from zero; set"
            " maxmemory-policy noeviction (or give budgets a Redis of their own)",
            where,
            risk,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
