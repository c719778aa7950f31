"""Very large limits (a budget meant as "practically unlimited") and worst cases work in every
store.

The SQLite store binds amounts as 64-bit integers of nano-dollars: a limit above about
$9.2 billion (``limit_usd: 1e11``) raised a bare ``OverflowError`` on every reservation, so
the budget refused every call with an error that was not even a store error. Redis keeps
amounts exactly as strings but formatted the limit it reports through a double, so a settle
reported a limit of ``99999999999.00000256`` for a budget of 99999999999.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import BudgetStore, ReserveLine

NOW = 1_000_000.0


def _line(key: str, limit: str, amount: str) -> ReserveLine:
    return ReserveLine(
        key=key, limit=Decimal(limit), amount=Decimal(amount), expires_at=NOW + 86400
    )


@pytest.mark.parametrize("limit", ["99999999999", "1e11", "1e15", "1e30"])
def test_a_huge_limit_admits_and_records_spend_exactly(store: BudgetStore, limit: str) -> None:
    key = "unlimited/*/day:2026-03-29"
    assert store.reserve(
        [_line(key, limit, "0.5")], reservation_id="r1", lease_seconds=60, now=NOW
    ).ok
    (state,) = store.settle("r1", Decimal("0.000000123"), now=NOW + 1)
    assert (state.spent, state.reserved) == (Decimal("0.000000123"), Decimal(0))
    assert store.reserve(
        [_line(key, limit, "2")], reservation_id="r2", lease_seconds=60, now=NOW
    ).ok
    assert store.state(key, now=NOW + 2).reserved == Decimal(2)


def test_a_worst_case_beyond_any_stored_amount_is_refused_not_an_error(store: BudgetStore) -> None:
    key = "big/*/day:2026-03-29"
    result = store.reserve(
        [_line(key, "4000000000", "20000000000")], reservation_id="r1", lease_seconds=60, now=NOW
    )
    assert not result.ok
    assert result.refused is not None
    assert result.refused.reserved == Decimal(0)
    # Nothing was held: a call that fits still gets the whole limit.
    assert store.reserve(
        [_line(key, "4000000000", "3999999999")], reservation_id="r2", lease_seconds=60, now=NOW
    ).ok


@pytest.mark.parametrize("backend", ["memory", "redis"], indirect=True)
def test_a_settle_reports_a_huge_limit_exactly(store: BudgetStore) -> None:
    key = "unlimited/*/day:2026-03-29"
    line = _line(key, "99999999999", "0.5")
    assert store.reserve([line], reservation_id="r1", lease_seconds=60, now=NOW).ok
    (state,) = store.settle("r1", Decimal("0.25"), now=NOW + 1)
    assert state.limit == Decimal("99999999999")
