"""Closing a Redis budget store closes its sockets instead of leaving them to the collector."""

from __future__ import annotations

import os

from policyroute.budgets.stores.redis import RedisStore


def _sockets() -> int:
    fds = os.listdir("/proc/self/fd")
    links = []
    for fd in fds:
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed since the listing
            continue
    return sum(link.startswith("socket:") for link in links)


def test_close_closes_the_sockets_of_the_pool_it_was_given(redis_url: str) -> None:
    before = _sockets()
    store = RedisStore(redis_url, prefix="close-test")
    store.scan("", now=0.0)  # takes a pooled connection, with its socket
    assert _sockets() == before + 1
    store.close()
    # Still referenced, so only close() can have closed it (not the garbage collector).
    assert _sockets() == before
    assert store.url == redis_url
