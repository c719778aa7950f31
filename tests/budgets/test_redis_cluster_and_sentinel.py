"""The Redis store on a real Redis Cluster and behind a real Sentinel (the store contract runs
on both too; these are what the contract cannot say).

A cluster keeps a prefix's keys in the one slot its hash tag names, on whichever primary
serves that slot: the store must run its scripts there, find its lines there when it scans,
and check there whether the server may evict. A Sentinel names the primary: after a failover
the store must write to the promoted replica, and what it reserved before must still be there.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from redis.cluster import key_slot

from budgets.redis_servers import sentinel_group, wait_until
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore

pytestmark = pytest.mark.timeout(60)

NOW = 1_750_000_000.0
KEY = "team/*/day:x"


def _line(amount: str = "0.1", now: float = NOW) -> ReserveLine:
    return ReserveLine(KEY, Decimal(1), Decimal(amount), now + 86_400)


def _ports(url: str) -> list[int]:
    return [int(h.rsplit(":", 1)[1]) for h in url.split("://")[1].rstrip("/").split(",")]


def _prefix_per_primary(url: str) -> dict[int, str]:
    """A store prefix whose slot each primary serves, keyed by the primary's port."""
    with redis.Redis(port=_ports(url)[0]) as node:
        ranges = [(r[0], r[1], int(r[2][1])) for r in node.execute_command("CLUSTER", "SLOTS")]
    found: dict[int, str] = {}
    while len(found) < len({port for *_, port in ranges}):
        prefix = f"c{uuid.uuid4().hex[:8]}"
        slot = key_slot(("{" + prefix + "}:res").encode())
        port = next(p for low, high, p in ranges if low <= slot <= high)
        found.setdefault(port, prefix)
    return found


def test_every_primary_serves_reserve_settle_state_and_scan(redis_cluster_url: str) -> None:
    prefixes = _prefix_per_primary(redis_cluster_url)
    # Two of the three primaries are not among the nodes the URL lists.
    assert len(prefixes) == 3
    assert not set(prefixes) <= set(_ports(redis_cluster_url))
    for port, prefix in prefixes.items():
        store = RedisStore(redis_cluster_url, prefix=prefix)
        try:
            assert store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=NOW).ok
            [settled] = store.settle("r1", Decimal("0.04"), now=NOW)
            assert (settled.spent, settled.reserved) == (Decimal("0.04"), Decimal(0))
            assert [(s.key, s.spent) for s in store.scan("team/", now=NOW)] == [
                (KEY, Decimal("0.04"))
            ]
        finally:
            store.close()
        with redis.Redis(port=port) as primary:  # the keys live on the slot's primary
            assert primary.hget("{" + prefix + "}:line:" + KEY, "spent") == b"40000000"


def test_async_calls_reach_every_primary(redis_cluster_url: str) -> None:
    async def run(store: RedisStore) -> None:
        try:
            held = await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=NOW)
            assert held.ok
            assert await store.arenew("r1", 120, now=NOW)
            [settled] = await store.asettle("r1", Decimal("0.03"), now=NOW)
            assert settled.spent == Decimal("0.03")
        finally:
            await store.aclose()

    for prefix in _prefix_per_primary(redis_cluster_url).values():
        store = RedisStore(redis_cluster_url, prefix=prefix)
        asyncio.run(run(store))
        assert store.state(KEY, now=NOW).spent == Decimal("0.03")
        store.close()


@pytest.fixture
def one_primary_evicting(redis_cluster_url: str) -> Iterator[int]:
    """One primary of the test cluster, for one test, may evict keys; its port."""
    port = sorted(_prefix_per_primary(redis_cluster_url))[-1]
    with redis.Redis(port=port) as node:
        node.config_set("maxmemory", "1gb")
        node.config_set("maxmemory-policy", "allkeys-lru")
        try:
            yield port
        finally:
            node.config_set("maxmemory", "0")
            node.config_set("maxmemory-policy", "noeviction")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_cluster_primary_that_may_evict_is_warned_about(
    redis_cluster_url: str,
    one_primary_evicting: int,
    api: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisStore(redis_cluster_url, prefix=f"ev{uuid.uuid4().hex[:8]}")
    caplog.set_level(logging.WARNING, logger="policyroute.budgets")

    async def reserve() -> None:
        try:
            await store.areserve([_line()], reservation_id="r1", lease_seconds=60, now=NOW)
        finally:
            await store.aclose()

    if api == "async":
        asyncio.run(reserve())
    else:
        store.reserve([_line()], reservation_id="r1", lease_seconds=60, now=NOW)
        store.close()

    warnings = [r.getMessage() for r in caplog.records if r.name == "policyroute.budgets"]
    assert len(warnings) == 1
    assert "allkeys-lru" in warnings[0]


# ---------------------------------------------------------------------------- Sentinel


def _role(port: int) -> str:
    with redis.Redis(port=port) as node:
        return str(node.role()[0].decode())


def _fail_over(sentinel: int, old: int, new: int) -> None:
    """A Sentinel failover from ``old`` to ``new``, once ``old`` runs as ``new``'s replica."""
    with redis.Redis(port=old) as primary:
        assert primary.wait(1, 5000) == 1  # the replica has every write so far
    with redis.Redis(port=sentinel) as watcher:
        # A failover the Sentinel gives up on (its failover-timeout is 5 s, which a stalled
        # host can overrun) is not tried again by the Sentinel itself: it is asked again.
        for _ in range(3):
            try:
                assert watcher.sentinel_failover("budgets")
            except redis.ResponseError as exc:
                if "INPROG" not in str(exc):  # one under way already: waited for below
                    raise
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if watcher.sentinel_get_master_addr_by_name("budgets")[1] == new:
                    break
                time.sleep(0.05)
            else:
                continue
            break
        else:
            pytest.fail("the Sentinel did not name the promoted replica after 3 failovers")
    wait_until(lambda: _role(new) == "master", "the replica was not promoted")
    wait_until(lambda: _role(old) == "slave", "the old primary was not made a replica")


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    with sentinel_group(tmp_path) as ports:
        yield ports


def test_after_a_sentinel_failover_reserve_and_settle_go_on_and_nothing_is_lost(
    sentinel: tuple[int, int, int],
) -> None:
    old, new, watcher = sentinel
    store = RedisStore(f"redis+sentinel://127.0.0.1:{watcher}/budgets/0", prefix="fo")
    now = time.time()
    try:
        assert store.reserve([_line(now=now)], reservation_id="r1", lease_seconds=60, now=now).ok
        assert store.reserve([_line(now=now)], reservation_id="r2", lease_seconds=60, now=now).ok

        _fail_over(watcher, old, new)

        [settled] = store.settle("r1", Decimal("0.04"), now=now)  # held before the failover
        assert (settled.spent, settled.reserved) == (Decimal("0.04"), Decimal("0.1"))
        assert store.reserve([_line(now=now)], reservation_id="r3", lease_seconds=60, now=now).ok
        with redis.Redis(port=new) as primary:
            assert primary.zscore("{fo}:res", "r3") is not None
            assert primary.zscore("{fo}:res", "r2") is not None
        state = store.state(KEY, now=now)
        assert (state.spent, state.reserved) == (Decimal("0.04"), Decimal("0.2"))
    finally:
        store.close()


def test_async_calls_follow_a_sentinel_failover_too(sentinel: tuple[int, int, int]) -> None:
    old, new, watcher = sentinel
    now = time.time()

    async def run(store: RedisStore) -> None:
        try:
            held = await store.areserve(
                [_line(now=now)], reservation_id="r1", lease_seconds=60, now=now
            )
            assert held.ok
            await asyncio.to_thread(_fail_over, watcher, old, new)

            [settled] = await store.asettle("r1", Decimal("0.04"), now=now)
            assert settled.spent == Decimal("0.04")
            again = await store.areserve(
                [_line(now=now)], reservation_id="r2", lease_seconds=60, now=now
            )
            assert again.ok
        finally:
            await store.aclose()

    asyncio.run(run(RedisStore(f"redis+sentinel://127.0.0.1:{watcher}/budgets/0", prefix="fo")))
    with redis.Redis(port=new) as primary:
        assert primary.zscore("{fo}:res", "r2") is not None
