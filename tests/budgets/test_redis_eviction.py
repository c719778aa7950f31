"""A Redis that may evict keys under memory pressure would forget budget spend silently: the
store warns about it on its first reservation, sync or async, and stays quiet otherwise."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from budgets.helpers import make_store
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore

NOW = 1_750_000_000.0
LINE = ReserveLine(
    key="b/global/day", limit=Decimal(1), amount=Decimal("0.1"), expires_at=NOW + 86_400
)


@pytest.fixture
def evicting(redis_url: str) -> Iterator[None]:
    """The test server, for one test, with a memory limit and an LRU eviction policy."""
    admin = RedisStore(redis_url)._sync
    admin.config_set("maxmemory", "1gb")
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield
    finally:
        admin.config_set("maxmemory", "0")
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()


def _store(redis_url: str) -> RedisStore:
    store = make_store("redis", redis_url, f"ev{uuid.uuid4().hex[:8]}")
    assert isinstance(store, RedisStore)
    return store


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "policyroute.budgets" and r.levelno == logging.WARNING
    ]


@pytest.mark.usefixtures("evicting")
def test_an_evicting_server_is_named_once_on_the_first_reservation(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(redis_url)
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        for n in range(3):
            store.reserve([LINE], reservation_id=f"r{n}", lease_seconds=60, now=NOW)
    store.close()
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message
    assert "set maxmemory-policy noeviction" in message
    assert "127.0.0.1" in message


@pytest.mark.usefixtures("evicting")
def test_the_async_path_checks_too(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(redis_url)

    async def reserve() -> None:
        for n in range(2):
            await store.areserve([LINE], reservation_id=f"a{n}", lease_seconds=60, now=NOW)
        await store.aclose()

    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        asyncio.run(reserve())
    store.close()
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message


def test_a_server_that_cannot_evict_is_not_reported(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(redis_url)
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        store.reserve([LINE], reservation_id="r", lease_seconds=60, now=NOW)
    store.close()
    assert _warnings(caplog) == []
