"""The Redis budget store through a failover: the address it was given now reaches a new
primary, and the old one, still answering on the connections the store pooled, is a
read-only replica.

Managed Redis (ElastiCache, Memorystore, Azure Cache) fails over by pointing the endpoint's
name at the promoted replica; Redis itself does not close the clients of a primary it
demotes, so a store that kept its connections would write to a replica, refused with
READONLY, on every call until the process restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from budgets.proxy import FaultyProxy
from budgets.redis_servers import server
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(60)

KEY = "daily/*/day:x"


def _line(amount: str = "0.1") -> ReserveLine:
    return ReserveLine(KEY, Decimal("1"), Decimal(amount), time.time() + 3600)


@pytest.fixture
def servers(redis_url: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The ports of the primary before the failover and of the replica it promotes."""
    with server(tmp_path / "old") as old, server(tmp_path / "new") as new:
        yield old, new


def _fail_over(proxy: FaultyProxy, old: int, new: int) -> None:
    """New connections reach ``new``; ``old`` becomes its read-only replica."""
    proxy.upstream_port = new
    with redis.Redis(port=old) as client:
        client.replicaof("127.0.0.1", new)
        assert client.config_get("replica-read-only")["replica-read-only"] == "yes"
        deadline = time.monotonic() + 10
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.02)


def _held_on(port: int, reservation_id: str) -> bool:
    with redis.Redis(port=port) as client:
        return client.zscore("{failover}:res", reservation_id) is not None


def test_after_a_failover_the_store_reconnects_instead_of_writing_to_the_replica(
    servers: tuple[int, int],
) -> None:
    old, new = servers
    with FaultyProxy(old) as proxy:
        store = RedisStore(proxy.url(), prefix="failover")
        try:
            assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0).ok
            store.release("r1", now=0.0)
            _fail_over(proxy, old, new)

            result = store.reserve([_line()], reservation_id="r2", lease_seconds=60, now=1.0)

            assert result.ok
            assert _held_on(new, "r2")
        finally:
            store.close()


def test_after_a_failover_async_calls_reconnect_too(servers: tuple[int, int]) -> None:
    old, new = servers

    async def run(proxy: FaultyProxy, store: RedisStore) -> None:
        try:
            warm = await store.areserve([_line()], reservation_id="r0", lease_seconds=60, now=0.0)
            assert warm.ok
            await store.arelease("r0", now=0.0)
            first = await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0)
            assert first.ok
            _fail_over(proxy, old, new)

            # The new primary never saw r1 (nothing was written to it before the failover):
            # the settle finds nothing to settle there, and does not fail.
            assert await store.asettle("r1", Decimal("0.04"), now=time.time()) == []
            again = await store.areserve([_line()], reservation_id="r2", lease_seconds=60, now=1.0)
            assert again.ok
            assert _held_on(new, "r2")
        finally:
            await store.aclose()

    with FaultyProxy(old) as proxy:
        asyncio.run(run(proxy, RedisStore(proxy.url(), prefix="failover")))


def test_a_store_pointed_at_a_replica_refuses_naming_the_cause(servers: tuple[int, int]) -> None:
    old, new = servers
    with redis.Redis(port=old) as client:
        client.replicaof("127.0.0.1", new)
    store = RedisStore(f"redis://127.0.0.1:{old}/0", prefix="failover")
    try:
        with pytest.raises(BudgetStoreError, match="read only replica"):
            store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=time.time())
    finally:
        store.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_script_first_run_after_the_failover_is_run_on_the_new_primary(
    servers: tuple[int, int], api: str
) -> None:
    # The settle script was never loaded on the old primary: its EVALSHA there is refused
    # with NOSCRIPT, the script is loaded there, run again, refused with READONLY, and run
    # once more on a new connection, to the new primary, which has never seen it either.
    old, new = servers

    async def settle_async(proxy: FaultyProxy, store: RedisStore) -> None:
        try:
            first = await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0)
            assert first.ok
            _fail_over(proxy, old, new)
            assert await store.asettle("r1", Decimal("0.04"), now=time.time()) == []
        finally:
            await store.aclose()

    with FaultyProxy(old) as proxy:
        store = RedisStore(proxy.url(), prefix="failover")
        if api == "async":
            asyncio.run(settle_async(proxy, store))
        else:
            try:
                assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=0.0).ok
                _fail_over(proxy, old, new)
                assert store.settle("r1", Decimal("0.04"), now=time.time()) == []
            finally:
                store.close()
