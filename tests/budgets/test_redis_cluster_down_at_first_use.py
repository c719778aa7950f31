"""A Redis Cluster that cannot be reached when the store is first used.

The call is refused with :class:`BudgetStoreError` naming the store's URL, its password masked,
and at once (the nodes refuse), not after a hang. Once the cluster answers, the store goes on,
and the check of whether its primaries may evict keys, which could not run while it was down,
runs then: it is not skipped for good.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from budgets.proxy import FaultyProxy
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(60)

NOW = 1_750_000_000.0


def _line() -> ReserveLine:
    return ReserveLine("k", Decimal(1), Decimal("0.1"), NOW + 86_400)


def _ports(url: str) -> list[int]:
    return [int(h.rsplit(":", 1)[1]) for h in url.split("://")[1].rstrip("/").split(",")]


@pytest.fixture
def every_primary_evicting(redis_cluster_url: str) -> Iterator[None]:
    ports = _ports(redis_cluster_url)
    with redis.RedisCluster(host="127.0.0.1", port=ports[0]) as cluster:
        cluster.config_set("maxmemory", "1gb", target_nodes=cluster.PRIMARIES)
        cluster.config_set("maxmemory-policy", "allkeys-lru", target_nodes=cluster.PRIMARIES)
        try:
            yield
        finally:
            cluster.config_set("maxmemory", "0", target_nodes=cluster.PRIMARIES)
            cluster.config_set("maxmemory-policy", "noeviction", target_nodes=cluster.PRIMARIES)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_cluster_down_at_first_use_is_refused_then_checked_once_it_answers(
    redis_cluster_url: str,
    every_primary_evicting: None,
    api: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="policyroute.budgets")
    with FaultyProxy(_ports(redis_cluster_url)[0]) as proxy:
        proxy.refuse = True  # the only node the URL lists hangs up on every connection
        url = f"redis+cluster://:Clu5terPass@127.0.0.1:{proxy.port}/"
        store = RedisStore(url, prefix=f"d{uuid.uuid4().hex[:8]}", socket_timeout=2.0)

        async def areserve(rid: str) -> bool:
            try:
                return (
                    await store.areserve([_line()], reservation_id=rid, lease_seconds=60, now=NOW)
                ).ok
            finally:
                await store.aclose()

        def reserve(rid: str) -> bool:
            if api == "async":
                return asyncio.run(areserve(rid))
            return store.reserve([_line()], reservation_id=rid, lease_seconds=60, now=NOW).ok

        with pytest.raises(BudgetStoreError) as caught:
            reserve("r1")
        said = str(caught.value)
        assert f"redis+cluster://:***@127.0.0.1:{proxy.port}/" in said
        assert "Clu5terPass" not in said

        proxy.refuse = False
        assert reserve("r2")
        store.close()

    warnings = [r.getMessage() for r in caplog.records if r.name == "policyroute.budgets"]
    assert len(warnings) == 3  # one per primary
    assert all("allkeys-lru" in w for w in warnings)
