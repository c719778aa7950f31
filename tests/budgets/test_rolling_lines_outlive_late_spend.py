"""A rolling-window line lives as long as anything on it still counts.

A rolling line's expiry was set when a reservation was made (``now + span + bucket``) and
never moved by the settle: spend settled late in a long call (or reclaimed late) landed in a
bucket that still counts for a whole span, but the line, and its buckets with it, was dropped
at the expiry set at reserve time. The next call then saw the window empty and spent the
budget a second time. In Redis the line's TTL also ran while a reservation still held money on
it: the hold vanished, and the settle that followed, on a line made anew, left ``reserved``
negative.

Memory and SQLite follow the ``now`` they are given; Redis keys expire in real time, so the
Redis tests use a window of under a second and sleep through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.budgets.windows import window_for
from policyroute.policy.model import WindowSpec

KEY = "per-minute/*/rolling:60s"
T0 = 1_000_000.0


def _line(amount: str, now: float, seconds: float = 60.0) -> ReserveLine:
    window = window_for(WindowSpec(kind="rolling", seconds=seconds), now)
    return ReserveLine(
        key=KEY,
        limit=Decimal("1"),
        amount=Decimal(amount),
        expires_at=window.expires_at,
        bucket_seconds=window.bucket_seconds,
        span_seconds=window.span_seconds,
    )


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_spend_settled_late_in_a_long_call_still_counts_for_a_whole_span(
    store: BudgetStore,
) -> None:
    # A call reserved at T0 runs 55 s and spends $0.6: that spend counts until T0 + 115.
    assert store.reserve([_line("0.6", T0)], reservation_id="long", lease_seconds=300, now=T0).ok
    store.settle("long", Decimal("0.6"), now=T0 + 55)
    later = T0 + 100  # past the expiry set at reserve time (T0 + 61), inside the span
    result = store.reserve(
        [_line("0.6", later)], reservation_id="next", lease_seconds=300, now=later
    )
    assert not result.ok
    assert store.state(KEY, now=later).spent == Decimal("0.6")


def test_a_reclaimed_worst_case_counts_for_a_whole_span(store: BudgetStore) -> None:
    assert store.reserve([_line("0.6", T0)], reservation_id="dead", lease_seconds=50, now=T0).ok
    # Reclaimed at T0 + 55 (its lease ran out at T0 + 50): charged $0.6 then.
    assert store.reclaim_expired(T0 + 55) == 1
    later = T0 + 100
    result = store.reserve(
        [_line("0.6", later)], reservation_id="next", lease_seconds=300, now=later
    )
    assert not result.ok


def test_a_long_reservation_still_holds_after_the_window_span(store: BudgetStore) -> None:
    assert store.reserve([_line("0.6", T0)], reservation_id="long", lease_seconds=600, now=T0).ok
    later = T0 + 200  # the call is still running; its lease runs to T0 + 600
    assert not store.reserve(
        [_line("0.6", later)], reservation_id="next", lease_seconds=300, now=later
    ).ok
    assert store.state(KEY, now=later).reserved == Decimal("0.6")


# ---------------------------------------------------------------------------------------- redis
# A 0.6 s window (buckets of 10 ms): keys expire for real, so the test sleeps through them.

SPAN = 0.6


@pytest.fixture
def redis_store(redis_url: str, store_factory: Callable[[], BudgetStore]) -> BudgetStore:
    return store_factory()


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_redis_spend_settled_late_still_counts_for_a_whole_span(redis_store: BudgetStore) -> None:
    start = time.time()
    line = _line("0.6", start, SPAN)
    assert redis_store.reserve([line], reservation_id="long", lease_seconds=300, now=start).ok
    time.sleep(SPAN * 0.8)
    settled = time.time()
    redis_store.settle("long", Decimal("0.6"), now=settled)
    time.sleep(SPAN * 0.5)  # past the TTL set at reserve time, inside the settled spend's span
    later = time.time()
    assert later - settled < SPAN  # the spend must still count
    next_line = _line("0.6", later, SPAN)
    result = redis_store.reserve([next_line], reservation_id="next", lease_seconds=300, now=later)
    assert not result.ok


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_redis_reservation_outliving_the_span_keeps_its_hold(redis_store: BudgetStore) -> None:
    start = time.time()
    line = _line("0.6", start, SPAN)
    assert redis_store.reserve([line], reservation_id="long", lease_seconds=300, now=start).ok
    time.sleep(SPAN * 1.5)  # the call still runs; its lease has minutes left
    later = time.time()
    next_line = _line("0.6", later, SPAN)
    assert not redis_store.reserve(
        [next_line], reservation_id="next", lease_seconds=300, now=later
    ).ok
    (state,) = redis_store.settle("long", Decimal("0.5"), now=time.time())
    assert state.reserved == Decimal(0)
    assert state.spent == Decimal("0.5")


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_redis_renewed_reservation_keeps_its_hold(redis_store: BudgetStore) -> None:
    start = time.time()
    line = _line("0.6", start, SPAN)
    # A stream: the store's short lease, renewed while chunks flow.
    assert redis_store.reserve([line], reservation_id="stream", lease_seconds=0.4, now=start).ok
    for _ in range(4):
        time.sleep(0.25)
        assert redis_store.renew("stream", 0.4, now=time.time())
    later = time.time()
    next_line = _line("0.6", later, SPAN)
    assert not redis_store.reserve(
        [next_line], reservation_id="next", lease_seconds=300, now=later
    ).ok
    (state,) = redis_store.settle("stream", Decimal("0.5"), now=time.time())
    assert state.reserved == Decimal(0)
