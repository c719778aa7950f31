"""More concurrent async calls on a Redis Cluster than its connection bound wait their turn.

redis-py's asyncio cluster client has no blocking pool: past ``max_connections`` connections
to a node it raises "Too many connections". The store's sync client, and its asyncio clients
for one server or a Sentinel-named primary, instead wait (up to the timeout) for a pooled
connection; a cluster's async calls must too, or a busy moment turns into refused calls.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
import redis

from policyroute._shielded import despite_cancellation
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(60)

NOW = 1_750_000_000.0
KEY = "team/day:x"


def _line() -> ReserveLine:
    return ReserveLine(KEY, Decimal(100), Decimal("0.01"), NOW + 86_400)


def test_async_calls_beyond_max_connections_wait_their_turn(redis_cluster_url: str) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_cluster_url, prefix=prefix, max_connections=2)
    calls = 60

    async def one(index: int) -> list[Decimal]:
        rid = f"r{index}"
        held = await store.areserve([_line()], reservation_id=rid, lease_seconds=60, now=NOW)
        assert held.ok
        assert await store.arenew(rid, 120, now=NOW)
        return [s.spent for s in await store.asettle(rid, Decimal("0.01"), now=NOW)]

    async def run() -> list[list[Decimal]]:
        try:
            return await asyncio.gather(*(one(i) for i in range(calls)))
        finally:
            await store.aclose()

    settled = asyncio.run(run())
    assert len(settled) == calls
    state = store.state(KEY, now=NOW)
    store.close()
    assert (state.spent, state.reserved) == (Decimal("0.01") * calls, Decimal(0))


def test_async_calls_beyond_the_bound_wait_on_every_event_loop(redis_cluster_url: str) -> None:
    # The bound is per event loop, as redis-py's async clients are: a second asyncio.run gets
    # its own, not one bound to the loop that ended.
    store = RedisStore(redis_cluster_url, prefix=f"b{uuid.uuid4().hex[:8]}", max_connections=1)

    async def run(loop_index: int) -> None:
        try:
            results = await asyncio.gather(
                *(
                    store.areserve(
                        [_line()], reservation_id=f"l{loop_index}-{i}", lease_seconds=60, now=NOW
                    )
                    for i in range(20)
                )
            )
            assert all(r.ok for r in results)
        finally:
            await store.aclose()

    for loop_index in range(3):
        asyncio.run(run(loop_index))
    assert store.state(KEY, now=NOW).reserved == Decimal("0.01") * 60
    store.close()


@pytest.mark.parametrize("as_accounting", [False, True], ids=["direct", "as-the-accounting"])
def test_a_call_that_gets_no_turn_within_the_timeout_is_refused_with_the_store_error(
    redis_cluster_url: str, as_accounting: bool
) -> None:
    """The wait is bounded by the store's timeout, as the sync client's blocking pool bounds
    it: here the only connection is held (a BLPOP on the store's slot) for far longer than
    that. The URL's own socket timeout keeps the BLPOP's read from timing out first.

    ``as_accounting``: the call is made as the accounting makes it, started in the caller's
    task and going on in a task of its own (despite_cancellation). From Python 3.12,
    asyncio.wait_for cancels the task that entered it: the turn's timeout cancelled the
    caller, the wait went on until a turn came, and the caller then saw a CancelledError."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    store = RedisStore(
        redis_cluster_url + "?socket_timeout=10",
        prefix=prefix,
        max_connections=1,
        socket_timeout=0.2,
    )

    async def run() -> None:
        try:
            client, _ = await store._async_clients.get()
            await client.ping()  # the slot map is known before the turn is held
            blocker = asyncio.ensure_future(client.blpop(["{" + prefix + "}:hold"], 3))
            await asyncio.sleep(0.2)
            assert not blocker.done()
            reserving = store.areserve([_line()], reservation_id="late", lease_seconds=60, now=NOW)
            started = asyncio.get_running_loop().time()
            with pytest.raises(BudgetStoreError, match=r"no connection free within 0\.2 s"):
                await (despite_cancellation(reserving) if as_accounting else reserving)
            assert asyncio.get_running_loop().time() - started < 2  # not the BLPOP's 3 s
            assert await blocker is None
        finally:
            await store.aclose()

    asyncio.run(run())
    # Nothing was sent for the refused call, so nothing is held.
    assert store.state(KEY, now=NOW).reserved == 0
    store.close()


def test_a_call_refused_for_want_of_a_connection_is_not_released_after() -> None:
    # It was never sent: a release (by id) would change nothing, and only wait out the same
    # bound again for a turn before the caller heard of the refusal.
    store = RedisStore("redis+cluster://127.0.0.1:1/")
    assert not store._maybe_ran(redis.exceptions.MaxConnectionsError("no connection free"))
    assert store._maybe_ran(redis.exceptions.ConnectionError("Connection reset by peer"))
    assert store._maybe_ran(redis.exceptions.TimeoutError("Timeout reading from socket"))
