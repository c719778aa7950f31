"""The BudgetStore contract, run against every backend: memory, SQLite, and Redis as one server,
as a three-primary Cluster and as a Sentinel-watched primary."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import BudgetStore, ReserveLine

D = Decimal
NOW = 1_750_000_000.0


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# The tests that move ``now`` past a lease or a rolling span run where stores time them by the
# ``now`` they are given; Redis times them by its server's clock (test_redis_server_clock.py
# runs them there, sleeping through short leases and spans).
CALLER_CLOCK = pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)


def line(key: str, limit: str, amount: str, **kw: object) -> ReserveLine:
    kw.setdefault("expires_at", NOW + 86_400)
    return ReserveLine(key=key, limit=D(limit), amount=D(amount), **kw)  # type: ignore[arg-type]


def test_reserve_holds_the_amount_until_settled(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.3")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    state = store.state("a/*/day:x", now=NOW)
    assert (state.spent, state.reserved, state.limit) == (D(0), D("0.3"), D(1))


def test_refusal_is_all_or_nothing_across_lines(store: BudgetStore) -> None:
    assert store.reserve(
        [line("b/*/day:x", "1", "0.9")], reservation_id="r0", lease_seconds=60, now=NOW
    ).ok
    lines = [line("a/*/day:x", "1", "0.2"), line("b/*/day:x", "1", "0.2")]
    result = store.reserve(lines, reservation_id="r1", lease_seconds=60, now=NOW)
    assert not result.ok
    assert result.refused_index == 1
    assert result.refused is not None
    assert (result.refused.key, result.refused.reserved) == ("b/*/day:x", D("0.9"))
    assert store.state("a/*/day:x", now=NOW).reserved == 0
    assert store.state("b/*/day:x", now=NOW).reserved == D("0.9")


def test_exactly_the_limit_is_allowed(store: BudgetStore) -> None:
    ok = store.reserve(
        [line("a/*/day:x", "0.3", "0.1")] * 1, reservation_id="r1", lease_seconds=60, now=NOW
    )
    assert ok.ok
    assert store.reserve(
        [line("a/*/day:x", "0.3", "0.2")], reservation_id="r2", lease_seconds=60, now=NOW
    ).ok
    assert not store.reserve(
        [line("a/*/day:x", "0.3", "0.000000001")], reservation_id="r3", lease_seconds=60, now=NOW
    ).ok


def test_settle_records_actual_spend_even_above_the_estimate(store: BudgetStore) -> None:
    lines = [line("a/*/day:x", "1", "0.1"), line("c/u1/day:x", "5", "0.1")]
    assert store.reserve(lines, reservation_id="r1", lease_seconds=60, now=NOW).ok
    states = store.settle("r1", D("0.25"), now=NOW + 1)
    assert sorted((s.key, s.spent, s.reserved) for s in states) == [
        ("a/*/day:x", D("0.25"), D(0)),
        ("c/u1/day:x", D("0.25"), D(0)),
    ]


def test_settle_is_idempotent(store_factory: Callable[[], BudgetStore]) -> None:
    first, second = store_factory(), store_factory()
    assert first.reserve(
        [line("a/*/day:x", "1", "0.1")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    assert first.settle("r1", D("0.05"), now=NOW)
    assert second.settle("r1", D("0.05"), now=NOW) == []
    second.release("r1", now=NOW)
    assert second.state("a/*/day:x", now=NOW).spent == D("0.05")


def test_release_frees_the_reservation_without_spend(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.6")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    store.release("r1", now=NOW)
    state = store.state("a/*/day:x", now=NOW)
    assert (state.spent, state.reserved) == (D(0), D(0))


@CALLER_CLOCK
def test_expired_leases_are_reclaimed_at_their_worst_case(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.6")], reservation_id="dead", lease_seconds=10, now=NOW
    ).ok
    assert store.reclaim_expired(NOW + 5) == 0
    assert store.reclaim_expired(NOW + 11) == 1
    state = store.state("a/*/day:x", now=NOW + 11)
    assert (state.spent, state.reserved) == (D("0.6"), D(0))
    # A late settle of a reclaimed reservation changes nothing.
    assert store.settle("dead", D("0.1"), now=NOW + 12) == []


@CALLER_CLOCK
def test_reserve_reclaims_expired_leases_lazily(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.6")], reservation_id="dead", lease_seconds=10, now=NOW
    ).ok
    assert store.reserve(
        [line("b/*/day:x", "1", "0.1")], reservation_id="other", lease_seconds=10, now=NOW + 20
    ).ok
    assert store.state("a/*/day:x", now=NOW + 20).reserved == 0


def test_a_renewed_lease_is_not_reclaimed_and_settles_normally(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.6")], reservation_id="long", lease_seconds=10, now=NOW
    ).ok
    assert store.renew("long", 10, now=NOW + 8)
    assert store.reclaim_expired(NOW + 12) == 0  # the first lease ended at NOW + 10
    assert store.state("a/*/day:x", now=NOW + 12).reserved == D("0.6")
    (state,) = store.settle("long", D("0.1"), now=NOW + 15)
    assert (state.spent, state.reserved) == (D("0.1"), D(0))


@CALLER_CLOCK
def test_renewing_never_shortens_a_lease(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.6")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    assert store.renew("r1", 1, now=NOW)
    assert store.reclaim_expired(NOW + 30) == 0
    assert store.reclaim_expired(NOW + 60) == 1


@CALLER_CLOCK
def test_only_open_live_reservations_are_renewed(store: BudgetStore) -> None:
    assert not store.renew("unknown", 10, now=NOW)
    assert store.reserve(
        [line("a/*/day:x", "1", "0.2")], reservation_id="done", lease_seconds=10, now=NOW
    ).ok
    store.settle("done", D("0.1"), now=NOW)
    assert not store.renew("done", 10, now=NOW + 1)
    assert store.reserve(
        [line("a/*/day:x", "1", "0.3")], reservation_id="late", lease_seconds=10, now=NOW
    ).ok
    # Its lease ran out at NOW + 10: another process may be reclaiming it, so it stays dead.
    assert not store.renew("late", 10, now=NOW + 10)
    assert store.reclaim_expired(NOW + 10) == 1
    assert store.state("a/*/day:x", now=NOW + 10).spent == D("0.4")


def test_window_state_expires_after_the_window(store: BudgetStore) -> None:
    now = time.time()
    expiring = line("a/*/day:old", "1", "0.1", expires_at=now + 0.3)
    assert store.reserve([expiring], reservation_id="r1", lease_seconds=60, now=now).ok
    store.settle("r1", D("0.1"), now=now)
    assert store.scan("a/", now=now)[0].spent == D("0.1")
    time.sleep(0.4)
    later = time.time()
    assert store.state("a/*/day:old", now=later).spent == 0
    assert store.scan("a/", now=later) == []


@CALLER_CLOCK
def test_rolling_windows_forget_spend_older_than_the_span(store: BudgetStore) -> None:
    def rolling(amount: str) -> ReserveLine:
        return line(
            "r/*/rolling:60s",
            "1",
            amount,
            bucket_seconds=1.0,
            span_seconds=60.0,
            expires_at=NOW + 1_000,
        )

    assert store.reserve([rolling("0.7")], reservation_id="r1", lease_seconds=60, now=NOW).ok
    store.settle("r1", D("0.7"), now=NOW)
    assert not store.reserve(
        [rolling("0.5")], reservation_id="r2", lease_seconds=60, now=NOW + 30
    ).ok
    # Half a bucket past the span the old bucket still counts: stricter, never looser.
    assert store.state("r/*/rolling:60s", now=NOW + 60.5).spent == D("0.7")
    assert store.state("r/*/rolling:60s", now=NOW + 61).spent == 0
    assert store.reserve([rolling("0.5")], reservation_id="r3", lease_seconds=60, now=NOW + 61).ok


def test_thresholds_fire_once_per_window_across_store_handles(
    store_factory: Callable[[], BudgetStore],
) -> None:
    handles = [store_factory(), store_factory()]
    crossed = []
    for i, actual in enumerate(["0.4", "0.2", "0.1", "0.25", "0.05"]):
        s = handles[i % 2]
        assert s.reserve(
            [line("w/*/day:x", "1", "0.01", thresholds=(0.5, 0.9))],
            reservation_id=f"r{i}",
            lease_seconds=60,
            now=NOW,
        ).ok
        (state,) = s.settle(f"r{i}", D(actual), now=NOW)
        crossed.append(state.crossed)
    assert crossed == [(), (0.5,), (), (0.9,), ()]


def test_the_latest_limit_applies(store: BudgetStore) -> None:
    assert store.reserve(
        [line("a/*/day:x", "1", "0.5")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    refused = store.reserve(
        [line("a/*/day:x", "0.6", "0.2")], reservation_id="r2", lease_seconds=60, now=NOW
    )
    assert refused.refused is not None
    assert refused.refused.limit == D("0.6")
    assert store.reserve(
        [line("a/*/day:x", "0.6", "0.1")], reservation_id="r3", lease_seconds=60, now=NOW
    ).ok
    assert store.state("a/*/day:x", now=NOW).limit == D("0.6")


def test_amounts_are_exact_to_the_nano_dollar(store: BudgetStore) -> None:
    for i in range(3):
        assert store.reserve(
            [line("a/*/day:x", "1", "0.000000001")],
            reservation_id=f"r{i}",
            lease_seconds=60,
            now=NOW,
        ).ok
        store.settle(f"r{i}", D("0.0000000011"), now=NOW)
    # Charges round up to whole nano-dollars: 3 x 2e-9.
    assert store.state("a/*/day:x", now=NOW).spent == D("0.000000006")


def test_scan_lists_lines_under_a_prefix_in_key_order(store: BudgetStore) -> None:
    for i, key in enumerate(["u/b/day:x", "u/a/day:x", "v/a/day:x"]):
        assert store.reserve(
            [line(key, "1", "0.1")], reservation_id=f"r{i}", lease_seconds=60, now=NOW
        ).ok
    assert [s.key for s in store.scan("u/", now=NOW)] == ["u/a/day:x", "u/b/day:x"]


@CALLER_CLOCK
@pytest.mark.asyncio
async def test_async_twins(store: BudgetStore) -> None:
    ok = await store.areserve(
        [line("a/*/day:x", "1", "0.4")], reservation_id="r1", lease_seconds=10, now=NOW
    )
    assert ok.ok
    assert not (
        await store.areserve(
            [line("a/*/day:x", "1", "0.7")], reservation_id="r2", lease_seconds=10, now=NOW
        )
    ).ok
    (state,) = await store.asettle("r1", D("0.3"), now=NOW)
    assert state.spent == D("0.3")
    assert (
        await store.areserve(
            [line("a/*/day:x", "1", "0.2")], reservation_id="r3", lease_seconds=10, now=NOW
        )
    ).ok
    await store.arelease("r3", now=NOW)
    assert (
        await store.areserve(
            [line("a/*/day:x", "1", "0.2")], reservation_id="r4", lease_seconds=10, now=NOW
        )
    ).ok
    assert await store.arenew("r4", 10, now=NOW + 5)
    assert not await store.arenew("r1", 10, now=NOW + 5)
    assert await store.areclaim_expired(NOW + 11) == 0
    assert await store.areclaim_expired(NOW + 15) == 1
    await store.aclose()


# ------------------------------------------------------- thresholds crossed by reclaiming


@CALLER_CLOCK
def test_a_reserve_that_reclaims_reports_the_thresholds_the_worst_case_crossed(
    store: BudgetStore,
) -> None:
    warned = line("w/*/day:x", "1", "0.6", thresholds=(0.5,))
    assert store.reserve([warned], reservation_id="dead", lease_seconds=10, now=NOW).ok
    result = store.reserve(
        [line("other/*/day:x", "1", "0.1")], reservation_id="next", lease_seconds=60, now=NOW + 20
    )
    assert result.ok
    ((key, spent, reserved, crossed),) = [
        (s.key, s.spent, s.reserved, s.crossed) for s in result.reclaimed
    ]
    assert (key, spent, reserved, crossed) == ("w/*/day:x", D("0.6"), D(0), (0.5,))
    # Fired for the window: neither a later reserve nor a settle reports it again.
    small = line("w/*/day:x", "1", "0.1", thresholds=(0.5,))
    later = store.reserve([small], reservation_id="later", lease_seconds=60, now=NOW + 40)
    assert (later.ok, later.reclaimed) == (True, ())
    assert [s.crossed for s in store.settle("later", D("0.1"), now=NOW + 41)] == [()]


@CALLER_CLOCK
def test_a_refused_reserve_keeps_the_reclaimed_spend_and_reports_its_crossings(
    store: BudgetStore,
) -> None:
    warned = line("w/*/day:x", "1", "0.6", thresholds=(0.5, 0.9))
    assert store.reserve([warned], reservation_id="dead", lease_seconds=10, now=NOW).ok
    result = store.reserve([warned], reservation_id="refused", lease_seconds=60, now=NOW + 20)
    assert not result.ok
    assert [(s.key, s.crossed) for s in result.reclaimed] == [("w/*/day:x", (0.5,))]
    state = store.state("w/*/day:x", now=NOW + 21)
    assert (state.spent, state.reserved) == (D("0.6"), D(0))
    again = store.reserve(
        [line("w/*/day:x", "1", "0.3", thresholds=(0.5, 0.9))],
        reservation_id="fits",
        lease_seconds=60,
        now=NOW + 40,
    )
    assert again.ok
    assert again.reclaimed == ()


@CALLER_CLOCK
def test_reclaimed_crossings_come_once_per_line_with_every_threshold(store: BudgetStore) -> None:
    warned = [line("w/*/day:x", "1", "0.3", thresholds=(0.25, 0.5)), line("z/*/day:x", "9", "0.3")]
    for rid in ("dead1", "dead2"):
        assert store.reserve(warned, reservation_id=rid, lease_seconds=10, now=NOW).ok
    result = store.reserve(
        [line("other/*/day:x", "1", "0.1")], reservation_id="next", lease_seconds=60, now=NOW + 20
    )
    assert [(s.key, s.spent, s.crossed) for s in result.reclaimed] == [
        ("w/*/day:x", D("0.6"), (0.25, 0.5))
    ]


def test_a_reserve_that_reclaims_nothing_reports_nothing(store: BudgetStore) -> None:
    warned = line("w/*/day:x", "1", "0.6", thresholds=(0.5,))
    assert store.reserve([warned], reservation_id="live", lease_seconds=60, now=NOW).ok
    result = store.reserve(
        [line("other/*/day:x", "1", "0.1")], reservation_id="next", lease_seconds=60, now=NOW + 20
    )
    assert (result.ok, result.reclaimed) == (True, ())
