"""The Redis store times leases and rolling windows by the Redis server's clock.

Each host passes its own clock as ``now``; here hosts whose clocks run an hour ahead or behind
share one store. They agree on which reservations are live (none reclaims another's live
reservation, a renewal from a host behind does not revive a lease the server saw end, status
shows as expired only what expired on the server) and on which rolling spend still counts.
Leases end on the server for real, so those tests use leases and windows under a second and
sleep through them. Run on one server, a Cluster and a Sentinel-watched primary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import redis

from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.budgets.stores.redis import RedisStore

D = Decimal
HOUR = 3600.0


@pytest.fixture(params=["redis", "redis-cluster", "redis-sentinel"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ahead() -> float:
    """The clock of a host running an hour ahead."""
    return time.time() + HOUR


def behind() -> float:
    """The clock of a host running an hour behind."""
    return time.time() - HOUR


def line(key: str, amount: str, limit: str = "1", **kw: object) -> ReserveLine:
    # A window's end, a day away by the host's clock (kept relative to it, as the guard does).
    kw.setdefault("expires_at", time.time() + 86_400)
    return ReserveLine(key=key, limit=D(limit), amount=D(amount), **kw)  # type: ignore[arg-type]


def test_no_host_reclaims_a_live_reservation_whatever_its_clock(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()
    # Each reserves a minute's lease by its own clock, two hours apart.
    assert slow.reserve(
        [line("a/*/day:x", "0.4")], reservation_id="s", lease_seconds=60, now=behind()
    ).ok
    assert fast.reserve(
        [line("b/*/day:x", "0.3")], reservation_id="f", lease_seconds=60, now=ahead()
    ).ok

    # Reserving (which reclaims), reclaiming and renewing from the other host keep both live.
    assert fast.reserve(
        [line("c/*/day:x", "0.1")], reservation_id="f2", lease_seconds=60, now=ahead()
    ).ok
    assert slow.reserve(
        [line("c/*/day:x", "0.1")], reservation_id="s2", lease_seconds=60, now=behind()
    ).ok
    assert fast.reclaim_expired(ahead()) == 0
    assert slow.reclaim_expired(behind()) == 0
    assert fast.renew("s", 60, now=ahead())
    assert slow.renew("f", 60, now=behind())

    for host, now in ((fast, ahead()), (slow, behind())):
        a, b = host.state("a/*/day:x", now=now), host.state("b/*/day:x", now=now)
        assert (a.spent, a.reserved, b.spent, b.reserved) == (0, D("0.4"), 0, D("0.3"))
        assert [s.expired for s in host.scan("", now=now)] == [0, 0, 0]

    # Each settles its own at the actual cost, not the worst case a reclaim would charge.
    assert [s.spent for s in slow.settle("s", D("0.05"), now=behind())] == [D("0.05")]
    assert [s.spent for s in fast.settle("f", D("0.02"), now=ahead())] == [D("0.02")]


def test_a_lease_that_ended_on_the_server_is_reclaimed_by_a_host_behind(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()
    # A host an hour ahead reserves a short lease, then dies.
    assert fast.reserve(
        [line("a/*/day:x", "0.4")], reservation_id="dead", lease_seconds=0.2, now=ahead()
    ).ok
    time.sleep(0.4)
    # By the slow host's clock the lease has an hour and more to run; by the server's it ended.
    (state,) = slow.scan("a/", now=behind())
    assert (state.reserved, state.expired) == (D("0.4"), D("0.4"))
    assert not slow.renew("dead", 60, now=behind())
    assert slow.reserve(
        [line("b/*/day:x", "0.1")], reservation_id="next", lease_seconds=60, now=behind()
    ).ok
    state = slow.state("a/*/day:x", now=behind())
    assert (state.spent, state.reserved) == (D("0.4"), 0)  # charged its worst case
    assert fast.settle("dead", D("0.1"), now=ahead()) == []


def test_a_renewal_extends_the_lease_by_the_servers_clock(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()
    assert slow.reserve(
        [line("a/*/day:x", "0.4")], reservation_id="r", lease_seconds=1, now=behind()
    ).ok
    for _ in range(4):  # past the first lease, renewed well within each
        time.sleep(0.3)
        assert slow.renew("r", 1, now=behind())
        assert fast.reclaim_expired(ahead()) == 0  # renewed, not ended, whatever fast's clock
    time.sleep(1.2)  # no renewal: the lease ends on the server
    assert fast.reclaim_expired(behind()) == 1


def test_rolling_spend_counts_by_the_servers_clock(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()

    def rolling(amount: str) -> ReserveLine:
        # A 2.4 s window of 40 ms buckets; its line outlives it by a span and a bucket.
        return line(
            "r/*/rolling:2.4s",
            amount,
            bucket_seconds=0.04,
            span_seconds=2.4,
            expires_at=time.time() + 2.44,
        )

    for host in (fast, slow):  # connected before the clock starts
        host.state("r/*/rolling:2.4s", now=time.time())

    # Spend recorded by a host an hour behind counts for a host on time or ahead: it is not
    # an hour old, and is not dropped as such.
    assert slow.reserve([rolling("0.7")], reservation_id="r1", lease_seconds=60, now=behind()).ok
    slow.settle("r1", D("0.7"), now=behind())
    assert not fast.reserve([rolling("0.5")], reservation_id="r2", lease_seconds=60, now=ahead()).ok
    assert fast.state("r/*/rolling:2.4s", now=ahead()).spent == D("0.7")
    assert store_factory().state("r/*/rolling:2.4s", now=time.time()).spent == D("0.7")

    # Once the span passed on the server, it no longer counts, whatever the host's clock says.
    time.sleep(2.6)
    assert slow.state("r/*/rolling:2.4s", now=behind()).spent == 0
    assert slow.reserve([rolling("0.5")], reservation_id="r3", lease_seconds=60, now=behind()).ok


@pytest.mark.asyncio
async def test_async_calls_use_the_servers_clock_too(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()
    assert (
        await slow.areserve(
            [line("a/*/day:x", "0.4")], reservation_id="s", lease_seconds=60, now=behind()
        )
    ).ok
    assert (
        await fast.areserve(
            [line("a/*/day:x", "0.1")], reservation_id="f", lease_seconds=60, now=ahead()
        )
    ).ok
    assert await fast.areclaim_expired(ahead()) == 0
    assert await fast.arenew("s", 60, now=ahead())
    (state,) = await slow.asettle("s", D("0.2"), now=behind())
    assert (state.spent, state.reserved) == (D("0.2"), D("0.1"))
    await fast.aclose()
    await slow.aclose()


# ------------------------------------------------------------------------- mixed versions
# Before the server's clock, a host wrote its own ``now + lease`` as a reservation's deadline
# (the score in ``res``), in the same seconds since the epoch. A store upgraded host by host
# holds such reservations: read by the server's clock, they stay live until their deadline.


def _write_as_before(
    client: redis.Redis, p: str, rid: str, key: str, nano: int, ends: float
) -> None:
    client.hset(
        p + "line:" + key,
        mapping={
            "limit": 10**9,
            "reserved": nano,
            "width": "",
            "span": "",
            "thr": "",
            "until": repr(ends + 86_400),
        },
    )
    client.pexpire(p + "line:" + key, 86_400_000)
    client.zadd(p + "res", {rid: ends})
    client.set(p + "resl:" + rid, json.dumps([[key, str(nano)]]))


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_deadlines_written_by_the_previous_version_are_kept(
    redis_url: str, store_factory: Callable[[], BudgetStore]
) -> None:
    store = store_factory()
    assert isinstance(store, RedisStore)
    p = "{" + store.prefix + "}:"
    client = redis.Redis.from_url(redis_url)
    try:
        # Two reservations an in-step host made before upgrading: one with a minute to run,
        # one whose lease has just ended.
        _write_as_before(client, p, "old-live", "a/*/day:x", 400_000_000, time.time() + 60)
        _write_as_before(client, p, "old-dead", "b/*/day:x", 300_000_000, time.time() - 0.1)
    finally:
        client.close()

    assert [s.expired for s in store.scan("", now=time.time())] == [0, D("0.3")]
    assert store.reserve(
        [line("c/*/day:x", "0.1")], reservation_id="new", lease_seconds=60, now=time.time()
    ).ok
    a, b = store.state("a/*/day:x", now=time.time()), store.state("b/*/day:x", now=time.time())
    assert (a.spent, a.reserved) == (0, D("0.4"))  # live: not reclaimed
    assert (b.spent, b.reserved) == (D("0.3"), 0)  # ended: reclaimed at its worst case
    assert store.renew("old-live", 60, now=time.time())
    assert [s.spent for s in store.settle("old-live", D("0.1"), now=time.time())] == [D("0.1")]


def test_renewing_never_shortens_a_lease_on_the_server(
    store_factory: Callable[[], BudgetStore],
) -> None:
    store = store_factory()
    assert store.reserve(
        [line("a/*/day:x", "0.4")], reservation_id="r", lease_seconds=60, now=ahead()
    ).ok
    assert store.renew("r", 0.1, now=behind())
    time.sleep(0.3)
    assert store.reclaim_expired(time.time()) == 0
    assert store.state("a/*/day:x", now=time.time()).reserved == D("0.4")


def test_a_reserve_that_reclaims_on_the_server_reports_the_crossed_thresholds(
    store_factory: Callable[[], BudgetStore],
) -> None:
    fast, slow = store_factory(), store_factory()
    warned = line("w/*/day:x", "0.6", thresholds=(0.5,))
    assert fast.reserve([warned], reservation_id="dead", lease_seconds=0.2, now=ahead()).ok
    time.sleep(0.4)
    result = slow.reserve(
        [line("other/*/day:x", "0.1")], reservation_id="next", lease_seconds=60, now=behind()
    )
    assert result.ok
    assert [(s.key, s.spent, s.reserved, s.crossed) for s in result.reclaimed] == [
        ("w/*/day:x", D("0.6"), 0, (0.5,))
    ]
