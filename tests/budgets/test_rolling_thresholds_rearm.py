"""A rolling window's ``warn_at`` thresholds fire again once its spend has aged below them.

A threshold re-armed only when a settle saw the window's spend below it: with bursty traffic
(a burst, an idle hour in which the burst ages out, another burst) no settle ever saw the dip,
so only the first burst ever warned. Each settle now judges the fired thresholds by the spend
before its own charge, which is the dip when there was one.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.budgets.windows import window_for
from policyroute.policy.model import WindowSpec


# Memory and SQLite time leases (and rolling windows) by the ``now`` they are given, which these
# tests move; Redis times them by its server's clock, tested in test_redis_server_clock.py.
@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


KEY = "hourly/*/rolling:3600s"
T0 = 1_000_000.0


def _burst(store: BudgetStore, rid: str, now: float, amount: str) -> tuple[float, ...]:
    window = window_for(WindowSpec(kind="rolling", seconds=3600), now)
    line = ReserveLine(
        key=KEY,
        limit=Decimal(1),
        amount=Decimal(amount),
        expires_at=window.expires_at,
        bucket_seconds=window.bucket_seconds,
        span_seconds=window.span_seconds,
        thresholds=(0.5, 0.9),
    )
    assert store.reserve([line], reservation_id=rid, lease_seconds=60, now=now).ok
    (state,) = store.settle(rid, Decimal(amount), now=now)
    return state.crossed


def test_each_burst_after_an_idle_span_warns_again(store: BudgetStore) -> None:
    assert _burst(store, "a", T0, "0.6") == (0.5,)
    assert _burst(store, "b", T0 + 60, "0.1") == ()
    # Two hours idle: the first burst has aged out, and no settle saw the window empty.
    assert _burst(store, "c", T0 + 7200, "0.6") == (0.5,)
    assert _burst(store, "d", T0 + 7260, "0.35") == (0.9,)


def test_a_threshold_still_reached_before_the_charge_does_not_fire_again(
    store: BudgetStore,
) -> None:
    assert _burst(store, "a", T0, "0.6") == (0.5,)
    # 30 minutes later the first spend still counts: 0.5 stays fired.
    assert _burst(store, "b", T0 + 1800, "0.1") == ()
    # The first spend ages out while the second still counts (0.1): 0.5 is re-armed, and
    # this burst reaches it again.
    assert _burst(store, "c", T0 + 3700, "0.45") == (0.5,)
