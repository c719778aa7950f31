"""Clean-up of litellm's process-wide HTTP client cache between tests."""

from __future__ import annotations

import inspect

from policyroute._lazy import import_litellm

__all__ = ["close_cached_sync_clients"]


def close_cached_sync_clients() -> None:
    """Close and drop the sync clients litellm cached, and drop the entries of async clients
    already closed (their loop ended).

    litellm's client cache holds 200 clients, one per fake provider's port and key; past that
    it evicts the oldest, and an evicted client litellm has not closed yet is left to the
    garbage collector, whose unclosed sockets are then reported in whichever test runs. The
    clients of async loops still running are left where they are: their loop closes them, and
    dropping them would leave their aiohttp sessions to the garbage collector unclosed.
    """
    cache = import_litellm().in_memory_llm_clients_cache
    for key, client in list(cache.cache_dict.items()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            close()
            cache.delete_cache(key)
        elif _async_client_closed(client):
            cache.delete_cache(key)


def _async_client_closed(client: object) -> bool:
    is_closed = getattr(client, "is_closed", None)
    if callable(is_closed):
        return bool(is_closed())
    inner = getattr(client, "client", None)
    return bool(getattr(inner, "is_closed", False))
