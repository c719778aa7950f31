"""warn_at thresholds: each fires once per window and scope, when spend reaches it exactly too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from budgets.helpers import attempt, budget, fixed_counter, make_store, policy
from policyroute.budgets import BudgetGuard
from policyroute.budgets.stores.base import BudgetStore
from policyroute.policy.model import WindowSpec

D = Decimal
NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
DAY = 86_400.0
# 100 input tokens + max_tokens 900 at $1/M each way: $0.001 reserved per call.
PARAMS = {"max_tokens": 900}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetStore]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = make_store("redis", url, f"t-{uuid.uuid4().hex[:8]}")
    else:
        made = make_store(request.param, str(tmp_path / "b.sqlite3"), "t")
    yield made
    made.close()


def _guard(store: BudgetStore, *budgets: object, clock: Clock | None = None) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets),  # type: ignore[arg-type]
        store,
        clock=clock or Clock(),
        token_counter=fixed_counter(100),
    )


@pytest.mark.parametrize(
    ("limit", "fraction", "spend"), [("0.01", 0.07, "0.0007"), ("2", 0.07, "0.14")]
)
def test_spend_that_reaches_a_threshold_exactly_fires_it(
    store: BudgetStore, limit: str, fraction: float, spend: str
) -> None:
    b = budget(limit=limit, warn_at=[fraction])
    g = _guard(store, b)
    (charge,) = g.settle(g.admit(attempt([b], params={"max_tokens": 1})), D(spend))
    assert charge.thresholds_crossed == (fraction,)


def test_a_call_window_reached_exactly_fires_its_threshold() -> None:
    b = budget(limit="1", window=WindowSpec(kind="call"), warn_at=[0.1, 0.5])
    g = _guard(make_store("memory", None, "t"), b)
    (charge,) = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.1"))
    assert charge.thresholds_crossed == (0.1,)


def test_one_call_crossing_two_thresholds_reports_both_once(store: BudgetStore) -> None:
    b = budget(limit="0.01", warn_at=[0.25, 0.5, 0.75])
    g = _guard(store, b)
    first = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.006"))
    second = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.0001"))
    third = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.0015"))
    assert [c[0].thresholds_crossed for c in (first, second, third)] == [(0.25, 0.5), (), (0.75,)]


def test_thresholds_follow_settled_spend_not_the_reservation(store: BudgetStore) -> None:
    b = budget(limit="0.002", warn_at=[0.5])
    g = _guard(store, b)
    # $0.001 reserved, which is half the limit; only $0.0002 spent.
    (low,) = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.0002"))
    assert low.thresholds_crossed == ()
    (high,) = g.settle(g.admit(attempt([b], params=PARAMS)), D("0.0008"))
    assert high.thresholds_crossed == (0.5,)


def test_each_window_fires_its_thresholds_again(store: BudgetStore) -> None:
    b = budget(limit="0.002", warn_at=[0.5])
    clock = Clock()
    g = _guard(store, b, clock=clock)
    reports = []
    for _ in range(2):
        reports.append(g.settle(g.admit(attempt([b], params=PARAMS)), D("0.001")))
    clock.now += DAY
    reports.append(g.settle(g.admit(attempt([b], params=PARAMS)), D("0.001")))
    assert [(r[0].window, r[0].thresholds_crossed) for r in reports] == [
        ("day:2025-06-15", (0.5,)),
        ("day:2025-06-15", ()),
        ("day:2025-06-16", (0.5,)),
    ]


def test_two_sqlite_stores_on_one_file_fire_a_threshold_once(tmp_path: Path) -> None:
    b = budget(limit="0.0024", warn_at=[0.5])
    path = str(tmp_path / "shared.sqlite3")
    one, two = (_guard(make_store("sqlite", path, "t"), b) for _ in range(2))
    try:
        first = one.settle(one.admit(attempt([b], params=PARAMS)), D("0.0006"))
        second = two.settle(two.admit(attempt([b], params=PARAMS)), D("0.0006"))
        third = one.settle(one.admit(attempt([b], params=PARAMS)), D("0.0006"))
        assert [c[0].thresholds_crossed for c in (first, second, third)] == [(), (0.5,), ()]
    finally:
        one.store.close()
        two.store.close()
