"""Rolling windows of different lengths never share a budget line, in any store.

Line keys once carried the span as ``:g`` (six significant digits), so a budget whose rolling
window changed from 1234567s to 1234568s (both ``1.23457e+06``) went on counting the old spend
as its own. Spans are now written exactly; a span the old format wrote exactly keeps its key,
so the spend of lines in flight across an upgrade still counts.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.budgets import BudgetGuard
from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.budgets.windows import line_key, window_for
from policyroute.errors import BudgetExceeded
from policyroute.policy.model import WindowSpec

PARAMS = {"max_tokens": 900}


def _rolling(seconds: float) -> WindowSpec:
    return WindowSpec(kind="rolling", seconds=seconds)


def _guard(spans: list[float], store: BudgetStore, limit: str) -> tuple[BudgetGuard, list]:  # type: ignore[type-arg]
    budgets = [budget("long", limit=limit, window=_rolling(s)) for s in spans]
    guard = BudgetGuard(policy(budgets), store, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    return guard, budgets


def test_a_budget_whose_long_window_changed_length_starts_a_line_of_its_own(
    store: BudgetStore,
) -> None:
    # Each call's worst case is $0.001 (1000 tokens at $1/Mtok); the limit admits one.
    before, old = _guard([1_234_567.0], store, "0.0015")
    before.settle(before.admit(attempt(old, params=PARAMS)), Decimal("0.001"))
    with pytest.raises(BudgetExceeded):
        before.admit(attempt(old, params=PARAMS))

    after, new = _guard([1_234_568.0], store, "0.0015")  # the policy edited by one second
    after.settle(after.admit(attempt(new, params=PARAMS)), Decimal("0.001"))


@pytest.mark.parametrize(
    ("first", "second"),
    [(1_234_567.0, 1_234_568.0), (2_592_000.0, 2_592_001.0), (1234.5678, 1234.5679)],
)
def test_distinct_spans_have_distinct_keys(first: float, second: float) -> None:
    assert window_for(_rolling(first), 0.0).key != window_for(_rolling(second), 0.0).key


@pytest.mark.parametrize(
    ("seconds", "key"),
    [
        (21_600.0, "rolling:21600s"),
        (604_800.0, "rolling:604800s"),
        (1.5, "rolling:1.5s"),
        (2_592_000.0, "rolling:2.592e+06s"),  # 30d: what earlier versions wrote, exactly
    ],
)
def test_spans_the_old_format_wrote_exactly_keep_their_key(seconds: float, key: str) -> None:
    assert window_for(_rolling(seconds), 0.0).key == key


def test_a_line_the_old_format_wrote_for_a_rounded_span_is_not_read(store: BudgetStore) -> None:
    span = 1_234_567.0
    now = time.time()
    # What an earlier version wrote for this budget: the span rounded to 1.23457e+06.
    old_key = line_key("long", "*", "rolling:1.23457e+06s")
    bucket = span / 60
    spent = ReserveLine(old_key, Decimal(1), Decimal("0.5"), now + span, bucket, span)
    assert store.reserve([spent], reservation_id="old", lease_seconds=60, now=now).ok
    store.settle("old", Decimal("0.5"), now=now)

    key = line_key("long", "*", window_for(_rolling(span), now).key)

    assert key != old_key
    assert store.state(key, now=now).spent == 0
