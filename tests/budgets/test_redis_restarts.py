"""The Redis budget store across what a server does between two calls: its script cache
flushed (``SCRIPT FLUSH``, a restart), a restart that lost every key (no persistence), and
idle connections it closed (``timeout`` in redis.conf)."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest
import redis

from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore

pytestmark = pytest.mark.timeout(60)

KEY = "daily/*/day:x"


def _line(amount: str = "0.1") -> ReserveLine:
    return ReserveLine(KEY, Decimal("1"), Decimal(amount), time.time() + 3600)


@pytest.fixture
def store(redis_url: str) -> RedisStore:
    return RedisStore(redis_url, prefix=f"r{uuid.uuid4().hex[:10]}")


def test_a_flushed_script_cache_is_filled_again(redis_url: str, store: RedisStore) -> None:
    try:
        assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0).ok
        with redis.Redis.from_url(redis_url) as admin:
            admin.script_flush()

        states = store.settle("r1", Decimal("0.04"), now=1.0)

        assert [(s.spent, s.reserved) for s in states] == [(Decimal("0.04"), Decimal(0))]
        assert store.reserve([_line()], reservation_id="r2", lease_seconds=60, now=1.0).ok
        assert store.state(KEY, now=1.0).reserved == Decimal("0.1")
    finally:
        store.close()


def test_async_calls_fill_a_flushed_script_cache_again(redis_url: str, store: RedisStore) -> None:
    async def run() -> None:
        try:
            first = await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0)
            assert first.ok
            with redis.Redis.from_url(redis_url) as admin:
                admin.script_flush()

            states = await store.asettle("r1", Decimal("0.04"), now=1.0)

            assert [(s.spent, s.reserved) for s in states] == [(Decimal("0.04"), Decimal(0))]
            assert await store.arenew("r1", 60, now=1.0) is False
        finally:
            await store.aclose()

    asyncio.run(run())


def test_a_reservation_whose_state_a_restart_lost_settles_to_nothing(
    redis_url: str, store: RedisStore
) -> None:
    # A server without persistence comes back empty: the reservation is unknown, as if
    # settled already, and the settle neither fails nor leaves anything behind.
    try:
        assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0).ok
        with redis.Redis.from_url(redis_url) as admin:
            for key in admin.scan_iter(match="{" + store.prefix + "}:*"):
                admin.delete(key)

        assert store.settle("r1", Decimal("0.04"), now=1.0) == []
        assert store.scan("", now=1.0) == []
        assert store.reserve([_line()], reservation_id="r2", lease_seconds=60, now=1.0).ok
    finally:
        store.close()
